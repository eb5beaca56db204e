"""`verify` against the real local BigQuery API server.

A dataset built through the client from the plan's own inputs passes every check (so the plan and
verify agree); then each kind of drift fails exactly the check that names it.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml
from google.cloud import bigquery
from helpers import FIXTURE_ROOT, FIXTURE_TABLES, REPO_ROOT, resources_of
from live_server import STACK, LiveStack, create_from_plan, stack_on, table_resource
from rewriting_proxy import Fault, rewriting_proxy, versioned_table_keys

from infra.analysis import drift
from infra.bigquery_edge import live
from infra.model.catalog import load_catalog
from infra.model.declared import TABLE_TYPE
from infra.model.settings import load_settings

pytestmark = pytest.mark.live
DAY_MS = 86_400_000


def verify_report(stack: LiveStack) -> drift.VerifyReport:
    catalog = load_catalog(stack.root)
    settings = load_settings(stack.root, STACK, catalog)
    return live.verify(live.connect(settings.project, stack.endpoint), catalog, settings)


def test_a_dataset_built_from_the_plan_passes_every_check(module_built_stack: LiveStack) -> None:
    report = verify_report(module_built_stack)

    assert report.failures == []
    ds = module_built_stack.dataset_id()
    subjects = {c.subject for c in report.checks}
    assert subjects == {f"dataset {ds}"} | {f"table {ds}.{t}" for t in FIXTURE_TABLES}
    names = {(c.subject, c.name) for c in report.checks}
    for table in FIXTURE_TABLES:
        for name in ("exists", "schema", "partitioning", "clustering", "labels", "description"):
            assert (f"table {ds}.{table}", name) in names


def test_verify_prints_the_old_guides_checklist(module_built_stack: LiveStack) -> None:
    result = module_built_stack.cli("verify", "--stack", STACK)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ds = module_built_stack.dataset_id()
    stack = module_built_stack
    assert lines[0] == f"Stack {STACK}: project {stack.project}, checked through {stack.endpoint}"
    # The old guide: the dataset exists, all 8 tables exist with the right schemas, the time-series
    # tables are partitioned.
    assert f"✓ dataset {ds} exists" in lines
    assert f"✓ dataset {ds} location: US" in lines
    assert f"✓ dataset {ds} time travel window: 168 h" in lines
    for table in FIXTURE_TABLES:
        assert f"✓ table {ds}.{table} exists" in lines
        assert any(line.startswith(f"✓ table {ds}.{table} schema: ") for line in lines)
    for table, partitioning in [
        ("tenant_usage_quotas", "DAY on usage_date, partitions expire after 730 d"),
        ("scheduled_pipeline_runs", "DAY on scheduled_time, partitions expire after 400 d"),
        ("pipeline_execution_queue", "DAY on scheduled_time, partitions expire after 90 d"),
    ]:
        assert f"✓ table {ds}.{table} partitioning: {partitioning}" in lines
    assert f"✓ table {ds}.tenant_usage_quotas partition filter: required" in lines
    assert f"✓ table {ds}.tenant_profiles partitioning: none" in lines
    assert f"✓ table {ds}.tenant_subscriptions clustering: tenant_id, status, plan_code" in lines
    assert f"✓ dataset {ds} undeclared tables: none" in lines
    assert not [line for line in lines if line.startswith("✗")]
    # A line per table says which commit's declaration it was last migrated to: information, not a check.
    notes = [line for line in lines if line.startswith("· table ")]
    assert "· table tenants.tenant_profiles: never migrated by migrate --apply" in notes
    assert lines[-1] == f"All {len(lines) - 2 - len(notes)} checks hold."
    assert result.stderr == ""


def test_the_versioned_table_key_bigquery_reports_matches_the_declared_key(module_built_stack: LiveStack) -> None:
    """Real BigQuery reports a table's key as `.../cryptoKeys/K/cryptoKeyVersions/N` (the proxy's rewrite
    names its sources); the provider keeps `.../cryptoKeys/K` (resource_bigquery_table.go,
    flattenEncryptionConfiguration), which is what the stack declares."""
    key = yaml.safe_load((module_built_stack.root / f"Pulumi.{STACK}.yaml").read_text())["config"][
        "tenant-bigquery:kmsKeyName"
    ]
    with rewriting_proxy(module_built_stack.endpoint, versioned_table_keys(3)) as proxy:
        result = replace(module_built_stack, endpoint=proxy).cli("verify", "--stack", STACK)

    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("✗")] == []
    assert result.returncode == 0, result.stdout + result.stderr
    ds = module_built_stack.dataset_id()
    for table in FIXTURE_TABLES:  # the version BigQuery reported stays visible
        assert f"✓ table {ds}.{table} encryption key: {key} (BigQuery reports version 3)" in lines
    assert f"✓ dataset {ds} default encryption key: {key}" in lines


def _update(client: bigquery.Client, table_id: str, change: Callable[[bigquery.Table], list[str]]) -> None:
    table = client.get_table(table_id)
    client.update_table(table, change(table))


def _add_column(table: bigquery.Table) -> list[str]:
    table.schema = [*table.schema, bigquery.SchemaField("note", "STRING")]
    return ["schema"]


def _relax_column(table: bigquery.Table) -> list[str]:
    table.schema = [
        bigquery.SchemaField.from_api_repr({**f.to_api_repr(), "mode": "NULLABLE"}) if f.name == "tenant_id" else f
        for f in table.schema
    ]
    return ["schema"]


def _nested_field_added(stack: LiveStack) -> None:
    # The local server ignores nested columns added by a schema update, so the table is made with it.
    resource = next(
        r for r in resources_of(stack.plan(), TABLE_TYPE) if r.inputs["tableId"] == "tenant_pipeline_configs"
    )
    api = table_resource(dict(resource.inputs))
    schedule = next(f for f in api["schema"]["fields"] if f["name"] == "schedule")
    schedule["fields"].append({"name": "jitter", "type": "INT64", "mode": "NULLABLE"})
    stack.client.delete_table(stack.table("tenant_pipeline_configs"))
    stack.client.create_table(bigquery.Table.from_api_repr(api))


def _reorder_clustering(table: bigquery.Table) -> list[str]:
    table.clustering_fields = ["tenant_id", "plan_code", "status"]
    return ["clustering_fields"]


def _shorten_expiration(table: bigquery.Table) -> list[str]:
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="scheduled_time", expiration_ms=30 * DAY_MS)
    return ["time_partitioning"]


def _drop_filter(table: bigquery.Table) -> list[str]:
    table.require_partition_filter = False
    return ["require_partition_filter"]


def _remove_label(table: bigquery.Table) -> list[str]:
    table.labels = {"managed-by": None}
    return ["labels"]


def _rewrite_description(table: bigquery.Table) -> list[str]:
    table.description = "Pipelines."
    return ["description"]


def _remove_dataset_label(stack: LiveStack) -> None:
    dataset = stack.client.get_dataset(stack.dataset_id())
    dataset.labels = {"component": None}
    stack.client.update_dataset(dataset, ["labels"])


def _shorten_time_travel(stack: LiveStack) -> None:
    dataset = stack.client.get_dataset(stack.dataset_id())
    dataset.max_time_travel_hours = 48
    stack.client.update_dataset(dataset, ["max_time_travel_hours"])


def _undeclared_table(stack: LiveStack) -> None:
    table = bigquery.Table(stack.table("legacy_events"), schema=[bigquery.SchemaField("a", "STRING")])
    stack.client.create_table(table)


# Each drift, and the one line verify must print for it ({ds} is the suffixed dataset). They are applied
# together, so each drifts a check of its own.
DRIFTS: dict[str, tuple[Callable[[LiveStack], None], str]] = {
    "drop a table": (
        lambda s: s.client.delete_table(s.table("tenant_api_keys")),
        "✗ table {ds}.tenant_api_keys exists: not found",
    ),
    "add a column": (
        lambda s: _update(s.client, s.table("tenant_profiles"), _add_column),
        "✗ table {ds}.tenant_profiles schema: undeclared column note (STRING NULLABLE)",
    ),
    "relax a column": (
        lambda s: _update(s.client, s.table("pipeline_execution_queue"), _relax_column),
        "✗ table {ds}.pipeline_execution_queue schema: column tenant_id mode is NULLABLE, declared REQUIRED",
    ),
    "add a nested field": (
        _nested_field_added,
        "✗ table {ds}.tenant_pipeline_configs schema: undeclared column schedule.jitter (INT64 NULLABLE)",
    ),
    "change clustering": (
        lambda s: _update(s.client, s.table("tenant_subscriptions"), _reorder_clustering),
        "✗ table {ds}.tenant_subscriptions clustering: is tenant_id, plan_code, status; "
        "declared tenant_id, status, plan_code",
    ),
    "change partition expiration": (
        lambda s: _update(s.client, s.table("scheduled_pipeline_runs"), _shorten_expiration),
        "✗ table {ds}.scheduled_pipeline_runs partitioning: is DAY on scheduled_time, partitions expire after 30 d; "
        "declared DAY on scheduled_time, partitions expire after 400 d",
    ),
    "drop the partition filter": (
        lambda s: _update(s.client, s.table("tenant_usage_quotas"), _drop_filter),
        "✗ table {ds}.tenant_usage_quotas partition filter: is not required; declared required",
    ),
    "remove a table label": (
        lambda s: _update(s.client, s.table("tenant_cloud_credentials"), _remove_label),
        "✗ table {ds}.tenant_cloud_credentials labels: missing managed-by=pulumi",
    ),
    "remove a dataset label": (_remove_dataset_label, "✗ dataset {ds} labels: missing component=tenancy"),
    "shorten the time travel window": (
        _shorten_time_travel,
        "✗ dataset {ds} time travel window: is 48 h; declared 168 h: changed or deleted data can be recovered "
        "only 48 h back",
    ),
    "rewrite a description": (
        lambda s: _update(s.client, s.table("tenant_pipeline_configs"), _rewrite_description),
        "✗ table {ds}.tenant_pipeline_configs description: is 'Pipelines.'; "
        "declared 'Pipeline definitions and schedules, one row per pipeline ve…'",
    ),
    "add an undeclared table": (
        _undeclared_table,
        "✗ table {ds}.legacy_events undeclared: a TABLE that no declaration lists",
    ),
}


@pytest.fixture(scope="module")
def drifted(
    bigquery_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveStack, subprocess.CompletedProcess[str]]]:
    """Every drift applied to one built stack (each touches its own object), then one `verify`."""
    root = tmp_path_factory.mktemp("drifted") / "repo"
    shutil.copytree(FIXTURE_ROOT, root)
    with stack_on(bigquery_server, root, built=True) as stack:
        for apply, _ in DRIFTS.values():
            apply(stack)
        yield stack, stack.cli("verify", "--stack", STACK)


def _failed_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("✗")]


@pytest.mark.parametrize("drift", list(DRIFTS))
def test_verify_names_each_drift(drifted: tuple[LiveStack, subprocess.CompletedProcess[str]], drift: str) -> None:
    stack, result = drifted
    assert DRIFTS[drift][1].format(ds=stack.dataset_id()) in _failed_lines(result)


def test_verify_fails_exactly_the_drifted_checks(drifted: tuple[LiveStack, subprocess.CompletedProcess[str]]) -> None:
    stack, result = drifted

    assert result.returncode == 1, result.stderr
    expected = [line.format(ds=stack.dataset_id()) for _, line in DRIFTS.values()]
    assert sorted(_failed_lines(result)) == sorted(expected)
    assert result.stdout.splitlines()[-1].startswith(f"{len(DRIFTS)} of ")


def test_a_dataset_in_another_location_is_named(live_stack: LiveStack) -> None:
    create_from_plan(live_stack.client, live_stack.plan(), location="EU")

    failures = [str(c) for c in verify_report(live_stack).failures]

    assert failures == [f"✗ dataset {live_stack.dataset_id()} location: is EU; declared US"]


def test_a_missing_dataset_fails_every_table(live_stack: LiveStack) -> None:
    result = live_stack.cli("verify", "--stack", STACK)

    assert result.returncode == 1
    ds = live_stack.dataset_id()
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert failed == [f"✗ dataset {ds} exists: not found in project {live_stack.project}"] + [
        f"✗ table {ds}.{t} exists: not found" for t in FIXTURE_TABLES
    ]


def test_json_format(drifted: tuple[LiveStack, subprocess.CompletedProcess[str]]) -> None:
    stack, _ = drifted

    result = stack.cli("verify", "--stack", STACK, "--format", "json")

    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert (document["stack"], document["project"], document["ok"]) == (STACK, stack.project, False)
    failed = [c for c in document["checks"] if not c["ok"]]
    assert len(failed) == len(DRIFTS)
    subject = f"table {stack.dataset_id()}.tenant_api_keys"
    assert {"subject": subject, "check": "exists", "ok": False, "detail": "not found"} in failed


def test_the_emulator_variable_of_the_client_library_is_honoured(module_built_stack: LiveStack) -> None:
    stack = module_built_stack
    environment = {live.EMULATOR_HOST_ENV: stack.endpoint}

    result = stack.cli("verify", "--stack", STACK, endpoint=False, env=environment, process=True)

    assert result.returncode == 0, result.stderr
    assert f"checked through {module_built_stack.endpoint}" in result.stdout


# ---------------------------------------------------------------- nothing could be checked: exit 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_credentials_is_one_line_exit_2(live_stack: LiveStack) -> None:
    result = live_stack.cli(
        "verify", "--stack", STACK, endpoint=False, env={"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/adc.json"}
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no Google Cloud credentials found; run `gcloud auth application-default login` or set "
        "GOOGLE_APPLICATION_CREDENTIALS (or pass --endpoint / set BIGQUERY_EMULATOR_HOST for a local server)"
    ]


def test_an_unreachable_endpoint_is_one_line_exit_2(live_stack: LiveStack) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"

    result = live_stack.cli("verify", "--stack", STACK, "--endpoint", endpoint, endpoint=False)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: cannot reach {endpoint} (ConnectionError); check the endpoint or network"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "localhost:9050"), "must be a URL such as http://127.0.0.1:9050"),
        (("--format", "xml"), "'xml' is not one of 'text', 'json'"),
    ],
)
def test_usage_errors_exit_2(live_stack: LiveStack, args: tuple[str, ...], message: str) -> None:
    result = live_stack.cli("verify", "--stack", STACK, *args, endpoint=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_stack_and_invalid_declarations_exit_2(live_stack: LiveStack) -> None:
    unknown = live_stack.cli("verify", "--stack", "staging")
    assert unknown.returncode == 2
    assert "Pulumi.staging.yaml: no such stack file; known stacks: dev, live, prod" in unknown.stderr

    declaration = live_stack.root / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("clustering: [tenant_id]", "clustering: [tenant]"))
    invalid = live_stack.cli("verify", "--stack", STACK)
    assert invalid.returncode == 2
    assert invalid.stderr.splitlines()[-1] == "1 problem(s); nothing was changed."
    assert "Traceback" not in invalid.stderr


def test_labels_google_and_the_provider_add_are_not_drift(built_stack: LiveStack) -> None:
    """pulumi-gcp >= 8 labels what it creates goog-pulumi-provisioned=true, outside the declared labels."""
    table = built_stack.client.get_table(built_stack.table("tenant_profiles"))
    table.labels = {**table.labels, "goog-pulumi-provisioned": "true"}
    built_stack.client.update_table(table, ["labels"])
    dataset = built_stack.client.get_dataset(built_stack.dataset_id())
    dataset.labels = {**dataset.labels, "goog-pulumi-provisioned": "true"}
    built_stack.client.update_dataset(dataset, ["labels"])

    assert verify_report(built_stack).failures == []


# ---------------------------------------------------------------- faults between the CLI and the server

# Short deadlines (README, "Deadlines and exit codes of the live commands"), so each fault ends in seconds.
SHORT = {"TENANT_BIGQUERY_REQUEST_SECONDS": "1", "TENANT_BIGQUERY_RUN_SECONDS": "20"}
# What a captive portal answers in place of the API: 200 and an HTML page.
CAPTIVE_PORTAL = b"<html><head><title>Sign in to the network</title></head><body>Accept the terms</body></html>"


def _through(stack: LiveStack, proxy: str) -> LiveStack:
    return replace(stack, endpoint=proxy)


def test_an_endpoint_that_never_answers_fails_within_the_request_deadline(module_built_stack: LiveStack) -> None:
    """requests waits forever for an answer unless given a timeout, and google-cloud-bigquery gives none
    (google/cloud/bigquery/retry.py DEFAULT_TIMEOUT = None); as a process, so the old hang fails the test.
    The one attempt takes the whole request deadline, so nothing is retried (api_core retry_base.py
    `_retry_error_helper` gives up when the deadline passes before the next attempt): said so, not "retried"."""
    stack = module_built_stack
    hang = Fault(hang=True)
    with rewriting_proxy(stack.endpoint, faults=[hang]) as proxy:
        started = time.monotonic()
        result = _through(stack, proxy).cli("verify", "--stack", STACK, env=SHORT, process=True, timeout=60)
        seconds = time.monotonic() - started

    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(proxy)} did not answer GET /bigquery/v2/projects/{stack.project}/\S+ within 1 s "
        r"\((ReadTimeout|ConnectTimeout): no answer within 1 s, so no time was left to retry\); check the endpoint "
        r"or network",
        line,
    ), line
    assert seconds < 30
    assert hang.count >= 1


def test_an_endpoint_that_stops_answering_after_a_503_was_retried(module_built_stack: LiveStack) -> None:
    """The first request's 503 is retried after at most `initial` = 1 s (api_core retry_base.py
    exponential_sleep_generator: uniform(0, initial)), well within the 3 s deadline; the retry then hangs."""
    stack = module_built_stack
    deadlines = {"TENANT_BIGQUERY_REQUEST_SECONDS": "3", "TENANT_BIGQUERY_RUN_SECONDS": "20"}
    dataset = r"/datasets/[^/]+$"  # one request: verify reads the tables in parallel
    unavailable = Fault(method="GET", path=dataset, status=503, times=1)
    hang = Fault(method="GET", path=dataset, hang=True)
    with rewriting_proxy(stack.endpoint, faults=[unavailable, hang]) as proxy:
        result = _through(stack, proxy).cli("verify", "--stack", STACK, env=deadlines, process=True, timeout=60)

    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(proxy)} did not answer GET /bigquery/v2/projects/{stack.project}/\S+ within 3 s "
        r"\(ReadTimeout, retried for 3 s\); check the endpoint or network",
        line,
    ), line
    assert (unavailable.count, hang.count) == (1, 1)


def test_the_run_deadline_cuts_a_request_short(module_built_stack: LiveStack) -> None:
    stack = module_built_stack
    deadlines = {"TENANT_BIGQUERY_REQUEST_SECONDS": "30", "TENANT_BIGQUERY_RUN_SECONDS": "2"}
    with rewriting_proxy(stack.endpoint, faults=[Fault(hang=True)]) as proxy:
        started = time.monotonic()
        result = _through(stack, proxy).cli("verify", "--stack", STACK, env=deadlines, process=True, timeout=60)
        seconds = time.monotonic() - started

    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(proxy)} did not answer GET /bigquery/v2/projects/{stack.project}/\S+ until the run's "
        r"deadline of 2 s \(TENANT_BIGQUERY_RUN_SECONDS\) passed \(ReadTimeout\); check the endpoint or network",
        line,
    ), line
    assert seconds < 20


def test_a_persistent_503_names_the_status_and_the_request(module_built_stack: LiveStack) -> None:
    stack = module_built_stack
    unavailable = Fault(method="GET", path=r"/datasets/[^/]+$", status=503)
    # 3 s, not SHORT's 1: on a loaded machine one attempt can take a second, and then is said as not retried.
    deadlines = {**SHORT, "TENANT_BIGQUERY_REQUEST_SECONDS": "3"}
    with rewriting_proxy(stack.endpoint, faults=[unavailable]) as proxy:
        result = _through(stack, proxy).cli("verify", "--stack", STACK, env=deadlines)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {proxy} answered 503 Service Unavailable to GET /bigquery/v2/projects/{stack.project}/datasets/"
        f"{stack.dataset_id()}, retried for 3 s: Fault injected by the test proxy: Service Unavailable"
    ]
    assert unavailable.count >= 2  # retried


@pytest.mark.parametrize("command", [("verify",), ("import-file",), ("migrate",), ("migrate", "--apply")])
def test_a_body_that_is_not_json_is_one_line_exit_2(module_built_stack: LiveStack, command: tuple[str, ...]) -> None:
    """google-cloud-core reads every answer with `response.json()` (google/cloud/_http/__init__.py
    `JSONConnection.api_request`), which raises requests' JSONDecodeError on an HTML page."""
    stack = module_built_stack
    with rewriting_proxy(stack.endpoint, faults=[Fault(raw=CAPTIVE_PORTAL)]) as proxy:
        result = _through(stack, proxy).cli(*command, "--stack", STACK, env=SHORT)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {proxy} answered with a body that is not JSON ({CAPTIVE_PORTAL.decode()[:60]!r}); is a proxy or "
        "captive portal in the way? check the endpoint or network"
    )
    assert "Traceback" not in result.stderr


def test_a_401_from_an_endpoint_is_one_line_exit_2(module_built_stack: LiveStack) -> None:
    """On a 401 google-auth's AuthorizedSession refreshes the credentials and tries again
    (google/auth/transport/requests.py `AuthorizedSession.request`, DEFAULT_REFRESH_STATUS_CODES), and
    AnonymousCredentials.refresh raises InvalidOperation (google/auth/credentials.py)."""
    stack = module_built_stack
    with rewriting_proxy(stack.endpoint, faults=[Fault(status=401)]) as proxy:
        result = _through(stack, proxy).cli("verify", "--stack", STACK, env=SHORT)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {proxy} answered 401 Unauthorized: it asks for credentials, and --endpoint sends none; use a "
        "server that needs none, or unset it to use Application Default Credentials"
    ]


@pytest.mark.parametrize("endpoint", ["http://", "http://:9050", "https://127.0.0.1:port"])
def test_an_endpoint_without_a_host_is_one_line_exit_2(live_stack: LiveStack, endpoint: str) -> None:
    result = live_stack.cli("verify", "--stack", STACK, "--endpoint", endpoint, endpoint=False)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: --endpoint {endpoint!r} is not a URL with a host; use e.g. http://127.0.0.1:9050"
    ]


def test_a_deadline_that_is_not_a_number_is_one_line_exit_2(live_stack: LiveStack) -> None:
    result = live_stack.cli("verify", "--stack", STACK, env={"TENANT_BIGQUERY_RUN_SECONDS": "soon"})

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: TENANT_BIGQUERY_RUN_SECONDS='soon' is not a number of seconds; use e.g. 600"
    ]


def test_the_readme_states_the_deadlines_the_code_sets() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| per (request|run): .*? \| (\d+) s \| (\d+) s \| `(\w+)` \|$", readme, re.MULTILINE)

    assert {variable: (kind, float(google), float(local)) for kind, google, local, variable in rows} == {
        live.REQUEST_SECONDS_ENV: ("request", live.GOOGLE_DEADLINES.request, live.LOCAL_DEADLINES.request),
        live.RUN_SECONDS_ENV: ("run", live.GOOGLE_DEADLINES.run, live.LOCAL_DEADLINES.run),
    }


def test_verify_compares_the_keys_the_local_server_keeps(bigquery_server: Any, tmp_path: Any) -> None:
    """The local server keeps tableConstraints as tables.insert sent them and answers them in tables.get's REST
    form (tables#TableConstraints: columnReferences a list): a table built from the plan passes, a key dropped
    out of band is named."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_ROOT, root)
    declaration = root / "stacks" / "tenants.yaml"
    document = yaml.safe_load(declaration.read_text())
    tenant = {
        "name": "fk_tenant",
        "column": "tenant_id",
        "references": {"table": "tenant_profiles", "column": "tenant_id"},
    }
    document["tables"]["tenant_profiles"]["constraints"] = {"primary_key": ["tenant_id"]}
    document["tables"]["tenant_api_keys"]["constraints"] = {"primary_key": ["key_id"], "foreign_keys": [tenant]}
    declaration.write_text(yaml.safe_dump(document, sort_keys=False))
    with stack_on(bigquery_server, root, built=True) as stack:
        assert not verify_report(stack).failures
        keys = stack.client.get_table(stack.table("tenant_api_keys")).to_api_repr()["tableConstraints"]
        assert keys["foreignKeys"][0]["referencedTable"]["datasetId"] == stack.dataset_id()
        resource = stack.client.get_table(stack.table("tenant_api_keys")).to_api_repr()
        del resource["tableConstraints"]["foreignKeys"]
        stack.client._connection.api_request(  # type: ignore[no-untyped-call]  # tables.update: the whole resource
            "PUT", f"/projects/{stack.project}/datasets/{stack.dataset_id()}/tables/tenant_api_keys", data=resource
        )
        failures = [str(c) for c in verify_report(stack).failures]
    assert failures == [
        f"✗ table {stack.dataset_id()}.tenant_api_keys constraints: is primary key (key_id); declared primary key "
        "(key_id); fk_tenant: tenant_id -> tenant_profiles.tenant_id"
    ]


# ---------------------------------------------------------------- a retired table (runbook "Retire a table ...")
RETIRED = "tenant_cloud_credentials"  # no contract names it, so its removal breaks none


def _retire_in_declaration(stack: LiveStack, listed: list[str]) -> None:
    """The runbook's last step: the entry and schema file gone, `listed` under retired_tables."""
    path = stack.root / "stacks" / "tenants.yaml"
    document = yaml.safe_load(path.read_text())
    del document["tables"][RETIRED]
    document["retired_tables"] = listed
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (stack.root / "schemas" / "tenants" / f"{RETIRED}.json").unlink()


def test_a_retired_table_is_kept_and_not_reported_as_undeclared(built_stack: LiveStack) -> None:
    """On the local server: the live table stays where the engine left it (the engine's forgetting is the
    preview gate's and diff's to show, tests/test_preview_gate.py and tests/test_runbooks.py); verify neither
    compares it nor fails on it, migrate plans nothing for it, and a listed table that is gone is said."""
    _retire_in_declaration(built_stack, [RETIRED, "already_dropped"])
    result = built_stack.cli("verify", "--stack", STACK)
    lines = result.stdout.splitlines()
    ds = built_stack.dataset_id()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"✓ table {ds}.{RETIRED} retired: no longer managed; the table and its rows stay in BigQuery, "
        "retired_tables lists it"
    ) in lines
    assert f"✓ table {ds}.already_dropped retired: not in the dataset any more; remove it from retired_tables" in lines
    assert f"✓ dataset {ds} undeclared tables: none" in lines
    assert not [line for line in lines if line.startswith(f"✓ table {ds}.{RETIRED} ") and "retired" not in line]
    migrate = built_stack.cli("migrate", "--stack", STACK)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert RETIRED not in migrate.stdout


def test_a_removed_table_that_retired_tables_does_not_list_is_undeclared(built_stack: LiveStack) -> None:
    _retire_in_declaration(built_stack, [])
    result = built_stack.cli("verify", "--stack", STACK)
    assert result.returncode == 1
    ds = built_stack.dataset_id()
    assert [line for line in result.stdout.splitlines() if line.startswith("✗")] == [
        f"✗ table {ds}.{RETIRED} undeclared: a TABLE that no declaration lists"
    ]


def _declare_dataset_keys(root: Any, keys: str) -> None:
    path = root / "stacks" / "tenants.yaml"
    text = path.read_text()
    path.write_text(text.replace("tables:\n", f"{keys}tables:\n", 1))


def test_the_declared_window_and_billing_model_reach_bigquery_and_are_verified(live_stack: LiveStack) -> None:
    """Built from the plan's inputs (the provider sends both: resourceBigQueryDatasetCreate), then changed out of
    band: the server stores and reports both fields, so this runs end to end, the REST form included
    (maxTimeTravelHours an int64 string)."""
    _declare_dataset_keys(live_stack.root, "max_time_travel_hours: 96\nstorage_billing_model: PHYSICAL\n")
    create_from_plan(live_stack.client, live_stack.plan())
    ds = live_stack.dataset_id()
    assert live_stack.client.get_dataset(ds).to_api_repr()["maxTimeTravelHours"] == "96"  # the REST form

    built = live_stack.cli("verify", "--stack", STACK)
    assert built.returncode == 0, built.stdout
    assert f"✓ dataset {ds} time travel window: 96 h" in built.stdout.splitlines()
    assert f"✓ dataset {ds} storage billing model: PHYSICAL" in built.stdout.splitlines()

    dataset = live_stack.client.get_dataset(ds)
    dataset.max_time_travel_hours = 168
    dataset.storage_billing_model = "LOGICAL"
    live_stack.client.update_dataset(dataset, ["max_time_travel_hours", "storage_billing_model"])
    changed = live_stack.cli("verify", "--stack", STACK)

    assert changed.returncode == 1
    assert _failed_lines(changed) == [f"✗ dataset {ds} storage billing model: is LOGICAL; declared PHYSICAL"]
    assert f"✓ dataset {ds} time travel window: is 168 h, longer than the declared 96 h" in changed.stdout
