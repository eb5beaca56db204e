"""Helpers for the tests against the local BigQuery API server (its fixtures are in conftest.py).

Each test gets its own stack file, `Pulumi.live.yaml`, in a copy of the repository: prod's config
with the server's project and a unique dataset suffix, so tests sharing one server never meet.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from helpers import FIXTURE_ROOT, cli_environment, invoke, resources_of, run_cli, views_of

from infra.model.declared import DATASET_TYPE, TABLE_TYPE
from infra.model.registrations import ProgramRun
from infra.pulumi_edge.mockrun import run_stack

STACK = "live"
# Inputs only the provider acts on; BigQuery has no such property.
PROVIDER_ONLY = {"deletionProtection", "deleteContentsOnDestroy"}


@dataclass
class LiveStack:
    root: Path
    project: str
    suffix: str
    endpoint: str
    client: bigquery.Client

    def dataset_id(self, declared: str = "tenants") -> str:
        return declared + self.suffix

    def table(self, table_id: str, declared: str = "tenants") -> str:
        return f"{self.project}.{self.dataset_id(declared)}.{table_id}"

    def plan(self) -> ProgramRun:
        return run_stack(self.root, STACK)

    def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        endpoint: bool = True,
        process: bool = False,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """The CLI against this stack, in this process unless `process` asks for `python -m infra.cli`
        (which fails the test when it runs longer than `timeout` seconds)."""
        command = self._command(args, endpoint)
        return run_cli(*command, env=env, timeout=timeout) if process else invoke(*command, env=env)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`python -m infra.cli` against this stack, running: for a test that signals it."""
        command = [sys.executable, "-m", "infra.cli", *self._command(args, endpoint=True)]
        return subprocess.Popen(
            command, stdout=PIPE, stderr=PIPE, text=True, env=cli_environment(env), preexec_fn=_default_sigint
        )

    def _command(self, args: tuple[str, ...], endpoint: bool) -> list[str]:
        return [*args, "--root", str(self.root), *(["--endpoint", self.endpoint] if endpoint else [])]


def _default_sigint() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored, which the child inherits
    # (POSIX exec keeps an ignored disposition), so the signal the tests send would do nothing.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_client(endpoint: str, project: str) -> bigquery.Client:
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint},
    )


def write_stack(root: Path, project: str, **config: Any) -> str:
    """Pulumi.live.yaml: prod's config (of the copy under test: its policy names are mapped for its own schemas),
    the server's project, a unique dataset suffix; returns the suffix."""
    prod = root / "Pulumi.prod.yaml"
    values = yaml.safe_load((prod if prod.is_file() else FIXTURE_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    suffix = f"_t{uuid.uuid4().hex[:10]}"
    values |= {"gcp:project": project, "tenant-bigquery:datasetSuffix": suffix}
    values |= {f"tenant-bigquery:{key}": value for key, value in config.items()}
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": values}))
    return suffix


# ---------------------------------------------------------------- the plan's inputs as API resources


def _take(inputs: dict[str, Any], key: str) -> Any:
    return inputs.pop(key, None)


def _int64(value: Any) -> str:
    # The engine's numbers are floats; the API carries int64 as strings.
    return str(int(value))


def dataset_resource(inputs: dict[str, Any]) -> dict[str, Any]:
    """The REST resource the provider creates from a Dataset's inputs (camelCase, as the engine has them)."""
    inputs = {k: v for k, v in inputs.items() if k not in PROVIDER_ONLY}
    resource: dict[str, Any] = {
        "datasetReference": {"projectId": _take(inputs, "project"), "datasetId": _take(inputs, "datasetId")},
        "location": _take(inputs, "location"),
    }
    for key in ("description", "labels", "defaultEncryptionConfiguration", "storageBillingModel"):
        if (value := _take(inputs, key)) is not None:
            resource[key] = value
    if (hours := _take(inputs, "maxTimeTravelHours")) is not None:
        resource["maxTimeTravelHours"] = hours  # a string already, as the provider's schema types it
    if (expiration := _take(inputs, "defaultTableExpirationMs")) is not None:
        resource["defaultTableExpirationMs"] = _int64(expiration)
    if (accesses := _take(inputs, "accesses")) is not None:
        resource["access"] = accesses
    assert not inputs, f"map these Dataset inputs to the API in tests/live_server.py: {sorted(inputs)}"
    return resource


def table_resource(inputs: dict[str, Any]) -> dict[str, Any]:
    """The REST resource the provider creates from a Table's inputs."""
    inputs = {k: v for k, v in inputs.items() if k not in PROVIDER_ONLY}
    resource: dict[str, Any] = {
        "tableReference": {
            "projectId": _take(inputs, "project"),
            "datasetId": _take(inputs, "datasetId"),
            "tableId": _take(inputs, "tableId"),
        },
        "schema": {"fields": json.loads(_take(inputs, "schema"))},
    }
    for key in ("description", "labels", "requirePartitionFilter", "encryptionConfiguration"):
        if (value := _take(inputs, key)) is not None:
            resource[key] = value
    if clustering := _take(inputs, "clusterings"):
        resource["clustering"] = {"fields": clustering}
    if (time := _take(inputs, "timePartitioning")) is not None:
        resource["timePartitioning"] = {k: _int64(v) if k == "expirationMs" else v for k, v in time.items() if v}
    if (rng := _take(inputs, "rangePartitioning")) is not None:
        bounds = {k: _int64(v) for k, v in rng["range"].items()}
        resource["rangePartitioning"] = {"field": rng["field"], "range": bounds}
    if (keys := _take(inputs, "tableConstraints")) is not None:
        # The provider's one column_references pair becomes the API's list (expandForeignKey).
        foreign = [{**k, "columnReferences": [k["columnReferences"]]} for k in keys.get("foreignKeys", ())]
        resource["tableConstraints"] = {**keys, **({"foreignKeys": foreign} if foreign else {})}
    assert not inputs, f"map these Table inputs to the API in tests/live_server.py: {sorted(inputs)}"
    return resource


def view_resource(inputs: dict[str, Any]) -> dict[str, Any]:
    """The REST resource the provider creates from a view's inputs: `view` {query, useLegacySql}, no schema."""
    inputs = {k: v for k, v in inputs.items() if k not in PROVIDER_ONLY}
    resource: dict[str, Any] = {
        "tableReference": {
            "projectId": _take(inputs, "project"),
            "datasetId": _take(inputs, "datasetId"),
            "tableId": _take(inputs, "tableId"),
        },
        "view": _take(inputs, "view"),
    }
    for key in ("description", "labels"):
        if (value := _take(inputs, key)) is not None:
            resource[key] = value
    assert not inputs, f"map these view inputs to the API in tests/live_server.py: {sorted(inputs)}"
    return resource


def create_from_plan(client: bigquery.Client, plan: ProgramRun, *, location: str | None = None) -> None:
    """Create every dataset, table and view the plan registers, as the provider would (optionally elsewhere)."""
    for resource in resources_of(plan, DATASET_TYPE):
        api = dataset_resource(dict(resource.inputs))
        if location is not None:
            api["location"] = location
        client.create_dataset(bigquery.Dataset.from_api_repr(api))
    for resource in resources_of(plan, TABLE_TYPE):
        client.create_table(bigquery.Table.from_api_repr(table_resource(dict(resource.inputs))))
    for resource in views_of(plan):  # after the tables they read
        client.create_table(bigquery.Table.from_api_repr(view_resource(dict(resource.inputs))))


def recreate_table(client: bigquery.Client, plan: ProgramRun, table_id: str) -> None:
    """What a forced recreation does: delete the table, create it empty from the declaration."""
    resource = next(r for r in resources_of(plan, TABLE_TYPE) if r.inputs["tableId"] == table_id)
    api = table_resource(dict(resource.inputs))
    ref = api["tableReference"]
    client.delete_table(f"{ref['projectId']}.{ref['datasetId']}.{ref['tableId']}")
    client.create_table(bigquery.Table.from_api_repr(api))


def sample_row(fields: list[bigquery.SchemaField], n: int) -> dict[str, Any]:
    """A row with every REQUIRED column filled (and a few NULLABLE ones), unique per n."""
    values: dict[str, Any] = {
        "STRING": f"v{n}",
        "INTEGER": n,
        "INT64": n,
        "TIMESTAMP": f"2026-01-{n % 28 + 1:02d}T12:00:00Z",
        "DATE": f"2026-01-{n % 28 + 1:02d}",
        "BOOLEAN": n % 2 == 0,
        "BOOL": n % 2 == 0,
        "FLOAT": n / 2,
        "FLOAT64": n / 2,
        "NUMERIC": str(n),
        "JSON": json.dumps({"n": n}),
    }
    row: dict[str, Any] = {}
    for field in fields:
        if field.mode == "REPEATED":
            continue
        if field.field_type in ("RECORD", "STRUCT"):
            if field.mode == "REQUIRED":
                row[field.name] = sample_row(list(field.fields), n)
        elif field.mode == "REQUIRED" or field.field_type in ("STRING", "INTEGER", "INT64"):
            row[field.name] = values[field.field_type]
    return row


def delete_datasets(client: bigquery.Client, suffix: str) -> None:
    for dataset in client.list_datasets():
        if suffix in dataset.dataset_id:
            client.delete_dataset(dataset.reference, delete_contents=True, not_found_ok=True)


@contextmanager
def stack_on(server: Any, root: Path, *, built: bool) -> Iterator[LiveStack]:
    """A stack of its own on the shared server, in the repository copy `root`; its datasets deleted after.

    `built`: its dataset and tables created through the client from the plan's inputs, which is what the
    bootstrap processor (or a `pulumi up`) leaves in the project.
    """
    suffix = write_stack(root, server.project)
    client = make_client(server.endpoint, server.project)
    stack = LiveStack(root, server.project, suffix, server.endpoint, client)
    try:
        if built:
            create_from_plan(client, stack.plan())
        yield stack
    finally:
        delete_datasets(client, suffix)
        client.close()  # type: ignore[no-untyped-call]
