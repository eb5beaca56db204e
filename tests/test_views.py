"""Views (stacks/<dataset>.yaml `views:`, views/<dataset>/<view>.sql): bad declarations through the CLI, one line
each; the SQL through the contracts' checker; what the program registers; what `diff` and its gate say when a
schema change breaks a view. On a copy of the frozen fixture catalog, with a views dataset added."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO_CATALOG, REPO_ROOT, invoke, views_of
from live_server import STACK, sample_row, stack_on

from infra.analysis import drift
from infra.analysis.views import check_view
from infra.model.declared import DATASET_TYPE
from infra.model.schema import column_from_api
from infra.pulumi_edge.mockrun import run_stack

VIEW_SQL = """-- The tenant's recent usage.
SELECT u.tenant_id, u.usage_date, u.api_requests
FROM tenants.tenant_usage_quotas AS u
WHERE u.usage_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)
"""


def add_views(root: Path, views: dict[str, dict[str, object]] | None = None, sql: str = VIEW_SQL) -> None:
    """A dataset `reports` with one view `usage` (or `views`), its SQL in views/reports/usage.sql."""
    declaration = {"dataset": "reports", "views": views or {"usage": {"authorized_on": ["tenants"]}}}
    (root / "stacks" / "reports.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    folder = root / "views" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "usage.sql").write_text(sql)


def validate(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return invoke("validate", *options, "--root", str(root), cwd=root)


def refusal(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("problem(s); nothing was changed."), result.stderr
    return lines[:-1]


def test_the_repositorys_own_views_are_clean() -> None:
    """Whatever views the repository declares resolve against its declarations (as its contracts must)."""
    assert [str(p) for v in REPO_CATALOG.views() for p in check_view(v, REPO_CATALOG).problems] == []
    assert all(check_view(v, REPO_CATALOG).columns for v in REPO_CATALOG.views())


def test_a_valid_view_validates_with_and_without_contracts(repo_copy: Path) -> None:
    add_views(repo_copy)
    assert validate(repo_copy).returncode == 0
    checked = validate(repo_copy, "--contracts")
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("views", "line"),
    [
        (
            {"Usage": {}},
            "stacks/reports.yaml:views.Usage: view id 'Usage' is invalid; this project requires snake_case",
        ),
        (
            {"usage": {}, "missing": {}},
            "stacks/reports.yaml:views.missing: its SQL file views/reports/missing.sql is not there; write the query",
        ),
        (
            {"usage": {"authorized_on": ["nowhere"]}},
            "stacks/reports.yaml:views.usage.authorized_on: no dataset nowhere is declared (reports, tenants)",
        ),
        (
            {"usage": {"authorized_on": ["reports"]}},
            "stacks/reports.yaml:views.usage.authorized_on: reports is the view's own dataset",
        ),
        (
            {"usage": {"authorized_on": ["tenants", "tenants"]}},
            "stacks/reports.yaml:views.usage.authorized_on: tenants is listed twice; keep one",
        ),
        ({"usage": {"labels": {"Bad": "x"}}}, "stacks/reports.yaml:views.usage.labels.Bad: "),
        ({"usage": {"query": "SELECT 1"}}, "stacks/reports.yaml:views.usage.query: unknown key"),
    ],
)
def test_each_bad_view_declaration_is_one_line(repo_copy: Path, views: dict[str, dict[str, object]], line: str) -> None:
    add_views(repo_copy, views)
    problems = refusal(validate(repo_copy))
    assert [p for p in problems if p.startswith(line)] == problems[:1], problems


def test_a_view_named_like_a_table_of_its_dataset_is_refused(repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    declaration["views"] = {"tenant_profiles": {}}
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))
    (repo_copy / "views" / "tenants").mkdir(parents=True)
    (repo_copy / "views" / "tenants" / "tenant_profiles.sql").write_text(
        "SELECT tenant_id FROM tenants.tenant_profiles"
    )
    [problem] = refusal(validate(repo_copy))
    assert problem.startswith(
        "stacks/tenants.yaml:views.tenant_profiles: tenants.tenant_profiles is declared as a table too; rename one"
    )


def test_an_sql_file_no_view_declares_and_an_empty_one_are_named(repo_copy: Path) -> None:
    add_views(repo_copy)
    (repo_copy / "views" / "reports" / "old.sql").write_text("SELECT 1")
    [problem] = refusal(validate(repo_copy))
    assert problem == (
        "views/reports/old.sql: view SQL not used by any view; add an entry under views: in "
        "stacks/reports.yaml or delete the file"
    )
    (repo_copy / "views" / "reports" / "old.sql").unlink()
    (repo_copy / "views" / "reports" / "usage.sql").write_text("\n")
    [problem] = refusal(validate(repo_copy))
    assert problem == "views/reports/usage.sql: empty; write the view's query (one SELECT)"


def test_an_authorized_view_needs_the_acl_the_stack_owns(repo_copy: Path) -> None:
    add_views(repo_copy)
    path = repo_copy / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"]["tenant-bigquery:access"]
    path.write_text(yaml.safe_dump(document))
    [problem] = refusal(validate(repo_copy))
    assert problem.startswith(
        "Pulumi.dev.yaml:config.tenant-bigquery:access: view reports.usage is authorized on tenants, an entry of "
        "the dataset ACL, which this stack owns only once access is set"
    )


@pytest.mark.parametrize(
    ("sql", "line"),
    [
        (
            "SELECT u.tenant_id, u.seats\nFROM tenants.tenant_usage_quotas AS u\nWHERE u.usage_date > '2026-01-01'",
            "views/reports/usage.sql:1:21: tenants.tenant_usage_quotas has no column seats",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_usage_quotas",
            "views/reports/usage.sql:1:23: tenants.tenant_usage_quotas requires a partition filter",
        ),
        (
            "DELETE FROM tenants.tenant_profiles WHERE TRUE",
            "views/reports/usage.sql:1:1: a view is one SELECT, not DELETE",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles WHERE tenant_id = @tenant",
            "views/reports/usage.sql:1:1: @tenant: a view takes no parameters",
        ),
        ("SELECT * FROM tenants.tenant_profiles", "views/reports/usage.sql:1:1: name the view's columns instead of *"),
        (
            "SELECT tenant_id, status AS tenant_id FROM tenants.tenant_profiles",
            "views/reports/usage.sql:1:1: two columns are named tenant_id",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles",
            None,
        ),
    ],
)
def test_the_view_sql_is_checked_by_the_contracts_parser(repo_copy: Path, sql: str, line: str | None) -> None:
    add_views(repo_copy, {"usage": {}}, sql)
    result = validate(repo_copy, "--contracts")
    if line is None:
        assert result.returncode == 0, result.stderr
        return
    [problem] = refusal(result)
    assert problem.startswith(line), problem


def test_a_view_authorized_on_a_dataset_it_does_not_read_is_named(repo_copy: Path) -> None:
    add_views(repo_copy, {"usage": {"authorized_on": ["tenants"]}}, "SELECT 1 AS one")
    [problem] = refusal(validate(repo_copy, "--contracts"))
    assert problem.startswith("views/reports/usage.sql:1:1: the view is authorized on tenants and reads none")


# ---------------------------------------------------------------- what the program registers


def test_the_program_sends_the_view_with_the_stacks_datasets_and_authorizes_it(repo_copy: Path) -> None:
    add_views(repo_copy)
    document = yaml.safe_load((repo_copy / "Pulumi.dev.yaml").read_text())
    document["config"]["tenant-bigquery:datasetSuffix"] = "_dev"
    (repo_copy / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    run = run_stack(repo_copy, "dev")
    project = document["config"]["gcp:project"]

    [view] = views_of(run)
    assert view.name == "reports-usage" and view.component == "reports"
    inputs = view.inputs
    assert inputs["datasetId"] == "reports_dev" and inputs["tableId"] == "usage"
    assert inputs["view"]["useLegacySql"] is False
    assert f"FROM `{project}`.tenants_dev.tenant_usage_quotas AS u" in inputs["view"]["query"]
    # BigQuery derives a view's schema; a view holds no data, so no key and no protection.
    assert "schema" not in inputs and "encryptionConfiguration" not in inputs
    assert inputs["deletionProtection"] is False and not view.options.get("protect")
    assert view.options["deleteBeforeReplace"] is True
    datasets = {r.name: r for r in run.resources if r.type == DATASET_TYPE}
    entry = {"view": {"projectId": project, "datasetId": "reports_dev", "tableId": "usage"}}
    assert entry in datasets["tenants"].inputs["accesses"]
    assert not any("view" in e for e in datasets["reports"].inputs["accesses"])
    assert run.outputs["views"] == {"reports.usage": f"{project}.reports_dev.usage"}


def test_plan_shows_the_view_and_its_authorization(repo_copy: Path) -> None:
    add_views(repo_copy)
    result = invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 0, result.stderr
    assert "authorized view acme-data-platform-dev.reports.usage" in result.stdout
    assert "View reports.usage: 3 columns, reads tenants.tenant_usage_quotas; authorized on tenants" in result.stdout


# ---------------------------------------------------------------- diff: a schema change that breaks a view


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True)


def test_diff_names_a_view_a_schema_change_breaks_and_the_prod_gate_fails(repo_copy: Path) -> None:
    shutil.copytree(REPO_ROOT / "infra", repo_copy / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    add_views(repo_copy)
    shutil.rmtree(repo_copy / "contracts")  # the view alone breaks
    _git(repo_copy, "init", "-q", "-b", "main")
    _git(repo_copy, "add", "-A")
    _git(repo_copy, "commit", "-q", "-m", "base")
    schema_path = repo_copy / "schemas" / "tenants" / "tenant_usage_quotas.json"
    schema = [c for c in json.loads(schema_path.read_text()) if c["name"] != "api_requests"]
    schema_path.write_text(json.dumps(schema, indent=2))

    gate = ("diff", "--root", str(repo_copy), "--stack", "prod", "--fail-on", "update-destructive")
    failed = invoke(*gate, "--format", "json", cwd=repo_copy)
    text = invoke(*gate, cwd=repo_copy)

    assert failed.returncode == 1, failed.stderr
    [usage] = [t for t in json.loads(failed.stdout)["tables"] if t["table"] == "tenants.tenant_usage_quotas"]
    assert [(c["contract"], c["line"]) for c in usage["brokenContracts"]] == [("views/reports/usage.sql", 2)]
    assert "  breaks views/reports/usage.sql:2: tenants.tenant_usage_quotas has no column api_requests" in text.stdout


# ---------------------------------------------------------------- verify on the local server


def test_verify_checks_the_view_its_query_schema_and_authorization_live(bigquery_server: Any, repo_copy: Path) -> None:
    """The local server creates views, returns their derived schema and keeps a dataset's view entries; verify
    compares the query (white space aside), the columns, and the authorization on the source dataset."""
    add_views(repo_copy)
    with stack_on(bigquery_server, repo_copy, built=True) as stack:
        usage = stack.client.get_table(stack.table("tenant_usage_quotas"))
        row = sample_row(list(usage.schema), 1) | {"tenant_id": "t1", "usage_date": date.today().isoformat()}
        assert stack.client.insert_rows_json(usage, [row | {"api_requests": 5}]) == []
        verified = stack.cli("verify", "--stack", STACK)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        view_id = f"{stack.project}.{stack.dataset_id('reports')}.usage"
        assert f"✓ view {stack.dataset_id('reports')}.usage query" in verified.stdout
        assert (
            f"✓ view {stack.dataset_id('reports')}.usage schema: 3 columns as the query gives them" in verified.stdout
        )
        rows = list(stack.client.query(f"SELECT tenant_id, api_requests FROM `{view_id}`").result())
        assert [(r.tenant_id, r.api_requests) for r in rows] == [("t1", 5)]

        live_view = stack.client.get_table(view_id)
        live_view.view_query = f"SELECT tenant_id FROM `{stack.table('tenant_profiles')}`"
        stack.client.update_table(live_view, ["view_query"])
        dataset = stack.client.get_dataset(stack.dataset_id())
        dataset.access_entries = [e for e in dataset.access_entries if e.entity_type != "view"]
        stack.client.update_dataset(dataset, ["access_entries"])
        drifted = stack.cli("verify", "--stack", STACK)

    assert drifted.returncode == 1
    failures = [line for line in drifted.stdout.splitlines() if line.startswith("✗")]
    assert any(
        line.startswith(f"✗ view {stack.dataset_id('reports')}.usage query: is 'SELECT tenant_id") for line in failures
    )
    assert f"✗ dataset {stack.dataset_id()} access: missing view:{view_id}" in failures


def test_verify_reads_a_view_in_bigquerys_rest_form() -> None:
    """BigQuery's REST Table resource of a view (REST reference, tables: Table.type VIEW, Table.view
    ViewDefinition {query, useLegacySql}, Table.schema derived from the query, legacy type names): the local
    server does not derive the schema again when a view's query is updated, so a schema drift is fed here."""
    fields: list[dict[str, Any]] = [
        {"name": "tenant_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "usage_date", "type": "DATE"},
    ]
    resource = {
        "kind": "bigquery#table",
        "type": "VIEW",
        "tableReference": {"projectId": "p", "datasetId": "reports", "tableId": "usage"},
        "view": {
            "query": "SELECT u.tenant_id,\n  u.usage_date FROM `p`.tenants.tenant_usage_quotas AS u",
            "useLegacySql": False,
        },
        "schema": {"fields": fields},
        "labels": {"env": "dev", "goog-pulumi-provisioned": "true"},
        "creationTime": "1767225600000",
    }
    columns = tuple(column_from_api(field) for field in fields)
    live = drift.observed_view(resource, columns)
    declared = drift.ViewState(
        "SELECT u.tenant_id, u.usage_date FROM `p`.tenants.tenant_usage_quotas AS u",
        False,
        (("tenant_id", "STRING"), ("usage_date", "DATE"), ("api_requests", "INT64")),
        {"env": "dev"},
        "",
    )
    checks = {c.name: c for c in drift.view_checks("view reports.usage", declared, live)}
    assert checks["query"].ok and checks["labels"].ok and checks["legacy SQL"].ok
    assert str(checks["schema"]) == "✗ view reports.usage schema: missing column api_requests"
    retyped = drift.ViewState(declared.query, False, (("tenant_id", "INT64"), ("usage_date", None)), {"env": "dev"}, "")
    assert (
        str(drift.view_checks("v", retyped, live)[-1])
        == "✗ v schema: column tenant_id is STRING, the query gives INT64"
    )


def test_diff_says_a_view_stores_no_rows_and_names_its_authorization(repo_copy: Path) -> None:
    shutil.copytree(REPO_ROOT / "infra", repo_copy / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    add_views(repo_copy, {"usage": {}})
    _git(repo_copy, "init", "-q", "-b", "main")
    _git(repo_copy, "add", "-A")
    _git(repo_copy, "commit", "-q", "-m", "base")
    add_views(repo_copy)  # now authorized on tenants
    authorized = invoke("diff", "--root", str(repo_copy), "--stack", "prod", "--fail-on", "update-destructive")
    (repo_copy / "stacks" / "reports.yaml").write_text(yaml.safe_dump({"dataset": "reports", "tables": {}}))
    shutil.rmtree(repo_copy / "views")
    (repo_copy / "stacks" / "reports.yaml").unlink()
    removed = invoke("diff", "--root", str(repo_copy), "--stack", "prod", "--format", "json", cwd=repo_copy)

    assert authorized.returncode == 1  # a widened ACL in prod waits for its approval
    assert "ACL widened: authorized view acme-data-platform-prod.reports.usage" in authorized.stdout
    assert removed.returncode == 0, removed.stderr
    [view] = [t for t in json.loads(removed.stdout)["tables"] if t["table"] == "reports.usage"]
    assert view["verdict"] == "update"
    assert "the view is deleted; it holds no rows" in view["changes"][0]["reason"]


def test_approve_data_loss_naming_a_view_says_a_view_needs_none(repo_copy: Path) -> None:
    """A view holds no rows: preview-gate approves its delete or replace itself (analysis/previewgate.py)."""
    add_views(repo_copy, {"usage": {}})
    stack_file = repo_copy / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + "  tenant-bigquery:approveDataLoss:\n    - reports.usage\n")
    assert refusal(validate(repo_copy)) == [
        "Pulumi.prod.yaml:config.tenant-bigquery:approveDataLoss.reports.usage: reports.usage is a view: it holds "
        "no rows, so its removal or replace needs no approval; remove it here"
    ]
