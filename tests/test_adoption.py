"""Adopting what the bootstrap processor created: the `adoptExisting` import option (under Pulumi's
mocks), the `pulumi import --file` document, and verify/import-file refusing a live table that
differs from its declaration before anything is imported (against the local BigQuery API server).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from helpers import FIXTURE_ROOT, invoke
from live_server import STACK, LiveStack

from infra.analysis import adoption
from infra.model.declared import COMPONENT_TYPE, DATASET_TYPE, TABLE_TYPE
from infra.model.problems import DeclarationError
from infra.model.registrations import ProgramRun
from infra.model.settings import parse_settings, read_stack_file
from infra.pulumi_edge import mockrun
from infra.pulumi_edge.mockrun import run_program, run_stack
from infra.pulumi_edge.program import run

PROJECTS = {"dev": "acme-data-platform-dev", "prod": "acme-data-platform-prod"}


class OptionRecorder(mockrun.RecordingMonitor):
    """Also records ignoreChanges, which the plan's options leave out."""

    ignore_changes: ClassVar[dict[str, list[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:
        OptionRecorder.ignore_changes[request.name] = list(request.ignoreChanges)
        return super().RegisterResource(request)


def adopting(stack: str, monkeypatch: pytest.MonkeyPatch) -> ProgramRun:
    monkeypatch.setattr(mockrun, "RecordingMonitor", OptionRecorder)
    OptionRecorder.ignore_changes = {}
    values, secret_keys = read_stack_file(FIXTURE_ROOT, stack)
    return run_program(stack, {**values, "tenant-bigquery:adoptExisting": True}, lambda: run(FIXTURE_ROOT), secret_keys)


def expected_ids(stack: str) -> dict[str, str]:
    project = PROJECTS[stack]
    ids = {"tenants": f"projects/{project}/datasets/tenants"}
    for table in yaml.safe_load((FIXTURE_ROOT / "stacks" / "tenants.yaml").read_text())["tables"]:
        ids[f"tenants-{table}"] = f"projects/{project}/datasets/tenants/tables/{table}"
    return ids


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_adopt_existing_imports_every_dataset_and_table_by_its_provider_id(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = adopting(stack, monkeypatch)

    custom = [r for r in result.resources if r.type in (DATASET_TYPE, TABLE_TYPE)]
    assert len(custom) == 10
    assert {r.name: r.options.get("import") for r in custom} == expected_ids(stack)
    component = next(r for r in result.resources if r.type == COMPONENT_TYPE)
    assert "import" not in component.options
    # What an import cannot read back as declared is ignored for this one `up` only.
    ignored = OptionRecorder.ignore_changes
    assert ignored["tenants-tenant_profiles"] == ["deletionProtection", "labels"]
    assert [ignored[r.name] for r in custom if r.type == DATASET_TYPE] == [["deleteContentsOnDestroy", "labels"]]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_without_adopt_existing_nothing_is_imported(planned: Any, stack: str) -> None:
    assert all("import" not in r.options for r in planned(stack).resources)


def test_adopt_existing_must_be_a_boolean() -> None:
    values, _ = read_stack_file(FIXTURE_ROOT, "prod")
    with pytest.raises(DeclarationError) as error:
        parse_settings("prod", {**values, "tenant-bigquery:adoptExisting": "yes"}, "Pulumi.prod.yaml")
    assert [str(p) for p in error.value.problems] == [
        "Pulumi.prod.yaml:config.tenant-bigquery:adoptExisting: must be true or false; got 'yes'"
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_import_file_covers_every_registered_resource_as_the_program_names_it(
    planned: Any, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_stack(FIXTURE_ROOT, stack)
    document = adoption.import_document(run)
    entries = document["resources"]
    by_name = {e["name"]: e for e in entries}

    assert list(document) == ["resources"]
    assert len(by_name) == len(entries) == len(run.resources) == 11
    # Same type, logical name and parent (type and name) as each registration: the same URNs.
    assert sorted((e["type"], e["logicalName"]) for e in entries) == sorted((r.type, r.name) for r in run.resources)
    for resource in run.resources:
        entry = next(e for e in entries if (e["type"], e["logicalName"]) == (resource.type, resource.name))
        if resource.type == COMPONENT_TYPE:
            assert entry == {
                "type": COMPONENT_TYPE,
                "name": "tenants-component",
                "logicalName": "tenants",
                "component": True,
            }
        else:
            parent = by_name[entry["parent"]]
            assert (parent["type"], parent["logicalName"]) == (COMPONENT_TYPE, "tenants")
            assert resource.parent.endswith(f"{COMPONENT_TYPE}::tenants")
            assert entry["version"] == adoption.GCP_VERSION
    # The same ids as the adoptExisting import option.
    imported = {r.name: r.options["import"] for r in adopting(stack, monkeypatch).resources if "import" in r.options}
    assert {e["logicalName"]: e["id"] for e in entries if "id" in e} == imported == expected_ids(stack)


def test_import_file_skip_verify_writes_the_document_offline(tmp_path: Path) -> None:
    out = tmp_path / "import.json"

    result = invoke("import-file", "--stack", "prod", "--root", str(FIXTURE_ROOT), "--skip-verify", "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(out.read_text()) == adoption.import_document(run_stack(FIXTURE_ROOT, "prod"))
    assert result.stderr.splitlines()[-1] == (
        f"11 resources; next: pulumi import --stack prod --file {out} --generate-code=false"
    )
    to_stdout = invoke("import-file", "--stack", "prod", "--root", str(FIXTURE_ROOT), "--skip-verify")
    assert to_stdout.returncode == 0
    assert json.loads(to_stdout.stdout) == json.loads(out.read_text())


# ---------------------------------------------------------------- against the local server
# built_stack (conftest.py) is what the bootstrap processor left: the declared dataset and tables.


@pytest.mark.live
def test_an_environment_that_matches_gets_its_import_file(built_stack: LiveStack, tmp_path: Path) -> None:
    out = tmp_path / "import.json"

    result = built_stack.cli("import-file", "--stack", STACK, "--out", str(out))

    assert result.returncode == 0, result.stderr
    ids = [e["id"] for e in json.loads(out.read_text())["resources"] if "id" in e]
    assert f"projects/{built_stack.project}/datasets/{built_stack.dataset_id()}" in ids
    assert len(ids) == 10


@pytest.mark.live
def test_a_mismatching_live_table_is_reported_before_any_import(built_stack: LiveStack, tmp_path: Path) -> None:
    # The old script created tenant_usage_quotas with a shorter partition expiration.
    table = built_stack.client.get_table(built_stack.table("tenant_usage_quotas"))
    table.time_partitioning.expiration_ms = 365 * 86_400_000
    built_stack.client.update_table(table, ["time_partitioning"])
    expected = (
        f"✗ table {built_stack.dataset_id()}.tenant_usage_quotas partitioning: "
        "is DAY on usage_date, partitions expire after 365 d; declared DAY on usage_date, partitions expire after 730 d"
    )

    checked = built_stack.cli("verify", "--stack", STACK)
    assert checked.returncode == 1
    assert [line for line in checked.stdout.splitlines() if line.startswith("✗")] == [expected]

    out = tmp_path / "import.json"
    refused = built_stack.cli("import-file", "--stack", STACK, "--out", str(out))
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.splitlines()[0] == expected
    assert refused.stderr.splitlines()[1].startswith("refused: 1 difference(s) between the live project")
    assert not out.exists()


@pytest.mark.live
def test_undeclared_tables_do_not_block_the_import_file(built_stack: LiveStack) -> None:
    from google.cloud import bigquery

    extra = bigquery.Table(built_stack.table("scratch"), schema=[bigquery.SchemaField("a", "STRING")])
    built_stack.client.create_table(extra)

    result = built_stack.cli("import-file", "--stack", STACK)

    assert result.returncode == 0, result.stderr
    assert "scratch" not in result.stdout
