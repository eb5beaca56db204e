"""The contracts (contracts/<service>/<query>.sql) resolved offline against the declared catalog.

The repository's own contracts must hold against its own declarations; what a change breaks is tested on the
frozen fixture (tests/fixtures/repo: the tenants catalog and a copy of the contracts), so its table and column
names may be written here.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, REPO_CATALOG, REPO_ROOT, invoke

from infra.analysis import contracts
from infra.model.catalog import Catalog, load_catalog
from infra.model.contracts import Contract, parse_header, read_contracts
from infra.model.schema import Column

FIXTURE_CATALOG = load_catalog(FIXTURE_ROOT)
FIXTURE_CONTRACTS, _ = read_contracts(FIXTURE_ROOT)


def problems_of(catalog: Catalog, shipped: list[Contract] = FIXTURE_CONTRACTS) -> list[str]:
    """Each problem's line, its file named from the fixture's root."""
    lines = [str(p.problem()) for checked in contracts.check_all(shipped, catalog) for p in checked.problems]
    return [line.replace("tests/fixtures/repo/", "") for line in lines]


def test_the_repository_contracts_hold_against_its_declarations() -> None:
    shipped, problems = read_contracts(REPO_ROOT)
    assert problems == []
    assert shipped, "contracts/ ships the platform's own queries"
    assert problems_of(REPO_CATALOG, shipped) == []
    assert all(c.run_by and c.how_often for c in shipped)


def changed(table_id: str, **changes: object) -> Catalog:
    """The fixture catalog with one table changed."""
    [dataset] = FIXTURE_CATALOG.datasets
    tables = tuple(dataclasses.replace(t, **changes) if t.table_id == table_id else t for t in dataset.tables)  # type: ignore[arg-type]
    return Catalog((dataclasses.replace(dataset, tables=tables),))


def columns(table_id: str) -> tuple[Column, ...]:
    return next(t for t in FIXTURE_CATALOG.tables() if t.table_id == table_id).schema


def edit_column(table_id: str, path: str, **changes: object) -> Catalog:
    """The fixture catalog with one column of one table changed (a nested one by its dotted path)."""

    def walk(cols: tuple[Column, ...], path: list[str]) -> tuple[Column, ...]:
        out = []
        for column in cols:
            if column.name == path[0]:
                if len(path) > 1:
                    column = dataclasses.replace(column, fields=walk(column.fields, path[1:]))
                elif changes.get("drop"):
                    continue
                else:
                    column = dataclasses.replace(column, **changes)  # type: ignore[arg-type]
            out.append(column)
        return tuple(out)

    return changed(table_id, schema=walk(columns(table_id), path.split(".")))


BREAKING = {
    "rename": (
        edit_column("tenant_profiles", "legal_name", name="registered_name"),
        "contracts/onboarding/create_profile.sql:13:28: tenants.tenant_profiles has no column legal_name",
    ),
    "drop": (
        edit_column("tenant_api_keys", "key_hash", drop=True),
        "contracts/auth/authenticate.sql:9:7: tenants.tenant_api_keys has no column key_hash",
    ),
    "drop a nested field": (
        edit_column("tenant_subscriptions", "limits.daily_row_quota", drop=True),
        "contracts/usage/open_day.sql:11:56: tenants.tenant_subscriptions.limits has no field daily_row_quota",
    ),
    "narrow a type": (
        edit_column("tenant_subscriptions", "price", type="INT64"),
        "contracts/onboarding/create_subscription.sql:23:39: @price (NUMERIC) cannot go into "
        "tenants.tenant_subscriptions.price (INT64)",
    ),
    "narrow a mode": (
        edit_column("tenant_profiles", "legal_name", mode="REQUIRED"),
        "contracts/onboarding/create_profile.sql:13:28: writes @legal_name, which the header lets be NULL, into "
        "tenants.tenant_profiles.legal_name, which is REQUIRED",
    ),
    "require a partition filter": (
        changed("pipeline_execution_queue", require_partition_filter=True),
        "contracts/queue/sweep.sql:3:8: tenants.pipeline_execution_queue requires a partition filter",
    ),
}


@pytest.mark.parametrize("change", BREAKING, ids=list(BREAKING))
def test_a_change_a_contract_relies_on_is_named_at_file_line_column(change: str) -> None:
    catalog, expected = BREAKING[change]
    found = problems_of(catalog)
    assert any(line.startswith(expected) for line in found), found
    assert all("; " in line for line in found)  # every one says how to fix it


@pytest.mark.parametrize(
    "catalog",
    [
        edit_column("tenant_cloud_credentials", "principal", drop=True),
        edit_column("tenant_profiles", "legal_name", description="changed"),
        changed("tenant_profiles", schema=(*columns("tenant_profiles"), Column("nickname", "STRING"))),
    ],
    ids=["drop an unused column", "a description", "add a column"],
)
def test_a_change_no_contract_touches_passes(catalog: Catalog) -> None:
    assert problems_of(catalog) == []


def one(sql: str, header: str = "") -> list[str]:
    text = f"-- Run by: a test\n-- How often: once\n{header}{sql}"
    run_by, how_often, parameters, problems = parse_header(text, "contracts/svc/q.sql")
    assert problems == []
    contract = Contract("svc/q.sql", "contracts/svc/q.sql", text, run_by, how_often, parameters)
    return [str(p.problem()) for p in contracts.check(contract, FIXTURE_CATALOG).problems]


@pytest.mark.parametrize(
    ("sql", "header", "expected"),
    [
        (
            "SELECT tenant_id FROM `acme-prod`.tenants.tenant_profiles",
            "",
            "contracts/svc/q.sql:3:23: `acme-prod`.tenants.tenant_profiles: write the table as declared, "
            "dataset.table; the tool applies the project",
        ),
        (
            "SELECT tenant_id FROM tenants_prod.tenant_profiles",
            "",
            "contracts/svc/q.sql:3:23: no dataset tenants_prod is declared (tenants); name it as stacks/<dataset>.yaml "
            "does, without the stack's suffix",
        ),
        (
            "SELECT run_id FROM tenants.scheduled_pipeline_runs WHERE tenant_id = 't' OR scheduled_time > '2026-01-01'",
            "",
            "contracts/svc/q.sql:3:20: tenants.scheduled_pipeline_runs requires a partition filter "
            "(require_partition_filter) and this query has none; filter on scheduled_time in WHERE, joined by AND",
        ),
        (
            "UPDATE tenants.tenant_profiles SET tier = 3 WHERE tenant_id = 't'",
            "",
            "contracts/svc/q.sql:3:36: the INT64 value 3 cannot go into tenants.tenant_profiles.tier (STRING); "
            "cast it or change the column",
        ),
        (
            "UPDATE tenants.tenant_profiles SET display_name = NULL WHERE tenant_id = 't'",
            "",
            "contracts/svc/q.sql:3:36: writes NULL into tenants.tenant_profiles.display_name, which is REQUIRED; "
            "write a value, or declare the parameter without NULL",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles WHERE created_at > @since",
            "-- @since DATE\n",
            "contracts/svc/q.sql:4:53: compares created_at (TIMESTAMP) with @since (DATE), which BigQuery does not "
            "coerce to one type; cast one side or change the column",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles WHERE tenant_id = @id",
            "",
            "contracts/svc/q.sql:3:65: @id is not declared; add `-- @id TYPE` to the header",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles",
            "-- @id STRING\n",
            "contracts/svc/q.sql:3:1: @id is declared but not used; remove the line",
        ),
        (
            "INSERT INTO tenants.tenant_profiles VALUES ('t')",
            "",
            "contracts/svc/q.sql:3:13: name the columns the INSERT writes: a column added later shifts positional "
            "values",
        ),
        (
            "SELECT p.tenant_id, status FROM tenants.tenant_profiles AS p JOIN tenants.tenant_api_keys AS k "
            "USING (tenant_id)",
            "",
            "contracts/svc/q.sql:3:21: status is in p and k; qualify it (alias.status)",
        ),
        (
            "SELECT tenant_id FROM tenants.tenant_profiles WHERE",
            "",
            "contracts/svc/q.sql:3:",
        ),
        (
            "SELECT 1; SELECT 2",
            "",
            "contracts/svc/q.sql:1:1: 2 statements; write one query per file",
        ),
        (
            "SELECT schedule.cron_expression.x FROM tenants.tenant_pipeline_configs",
            "",
            "contracts/svc/q.sql:3:8: tenants.tenant_pipeline_configs.schedule.cron_expression is a STRING; "
            "it has no field x",
        ),
    ],
    ids=[
        "project",
        "suffix",
        "filter under OR",
        "literal type",
        "NULL into REQUIRED",
        "parameter type",
        "undeclared parameter",
        "unused parameter",
        "positional insert",
        "ambiguous",
        "syntax",
        "two statements",
        "field of a scalar",
    ],
)
def test_each_problem_is_one_line_at_its_place(sql: str, header: str, expected: str) -> None:
    found = one(sql, header)
    assert any(line.startswith(expected) for line in found), found


def test_a_merge_resolves_its_target_and_source_and_takes_a_partition_filter_in_on() -> None:
    merge = (
        "MERGE tenants.tenant_usage_quotas AS u USING (SELECT tenant_id FROM tenants.tenant_profiles) AS p "
        "ON u.tenant_id = p.tenant_id{on} WHEN MATCHED THEN UPDATE SET api_requests = u.api_requests + 1, "
        "quota_exceeded = NULL WHEN NOT MATCHED THEN INSERT (tenant_id, usage_date) VALUES (p.tenant_id, p.nope)"
    )
    unfiltered = "\n".join(one(merge.format(on="")))
    filtered = "\n".join(one(merge.format(on=" AND u.usage_date = CURRENT_DATE()")))

    assert "tenants.tenant_usage_quotas requires a partition filter" in unfiltered
    assert "tenants.tenant_usage_quotas requires a partition filter" not in filtered
    for found in (unfiltered, filtered):
        assert "writes NULL into tenants.tenant_usage_quotas.quota_exceeded, which is REQUIRED" in found
        assert "p has no column nope; name one of tenant_id" in found
        assert "tenants.tenant_usage_quotas.rows_processed is REQUIRED and the INSERT leaves it out" in found


def test_an_insert_that_leaves_out_a_required_column() -> None:
    found = one("INSERT INTO tenants.tenant_api_keys (tenant_id, key_id) VALUES ('t', 'k')")
    assert (
        "contracts/svc/q.sql:3:13: tenants.tenant_api_keys.name is REQUIRED and the INSERT leaves it out"
        in "\n".join(found)
    )


def test_a_struct_matches_a_record_by_position() -> None:
    found = one(
        "UPDATE tenants.tenant_pipeline_configs SET source = STRUCT('a' AS credential_id, 'b' AS connector_type, "
        "NULL AS options) WHERE tenant_id = 't'"
    )
    assert any("the STRUCT's field credential_id stands where" in line for line in found), found


def test_the_header_says_who_runs_it_how_often_and_types_each_parameter() -> None:
    *_, problems = parse_header("-- @x WHATEVER\n-- @y STRING maybe\nSELECT 1", "f.sql")
    assert [str(p) for p in problems] == [
        "f.sql:1:1: @x: WHATEVER is no parameter type; use one of STRING, BYTES, INT64, FLOAT64, NUMERIC, BIGNUMERIC, "
        "BOOL, DATE, DATETIME, TIME, TIMESTAMP, JSON or ARRAY<...> of one",
        "f.sql:2:1: @y: after the type only NULL may follow (the application may pass NULL)",
        "f.sql:1:1: the header does not say `-- Run by: ...`; add it (who runs the query, how often)",
        "f.sql:1:1: the header does not say `-- How often: ...`; add it (who runs the query, how often)",
    ]


def test_for_stack_names_the_stack_s_dataset_and_keeps_the_lines() -> None:
    contract = next(c for c in FIXTURE_CONTRACTS if c.name == "auth/authenticate.sql")
    text = contracts.for_stack(contract, {"tenants": "tenants_dev"}, "acme-dev")
    assert text.count("\n") == contract.text.count("\n")
    assert "FROM `acme-dev`.tenants_dev.tenant_api_keys AS k" in text
    assert "tenants." not in text.replace("`acme-dev`.tenants_dev.", "")


def test_broken_by_change_names_the_table_and_only_what_the_change_broke() -> None:
    old = FIXTURE_CATALOG
    new = edit_column("tenant_profiles", "legal_name", name="registered_name")
    broken = contracts.broken_by_change(FIXTURE_CONTRACTS, old, new)
    assert list(broken) == ["tenants.tenant_profiles"]
    assert [p.where for p in broken["tenants.tenant_profiles"]] == ["onboarding/create_profile.sql:13"]
    # The same pull request changes the query too: checked in its new form, nothing is broken.
    fixed = [
        dataclasses.replace(c, text=c.text.replace(" legal_name,", " registered_name,"))
        if c.name == "onboarding/create_profile.sql"
        else c
        for c in FIXTURE_CONTRACTS
    ]
    assert contracts.broken_by_change(fixed, old, new) == {}


def _rename_legal_name(root: Path) -> None:
    schema = root / "schemas" / "tenants" / "tenant_profiles.json"
    schema.write_text(schema.read_text().replace('"legal_name"', '"registered_name"'))


def test_validate_contracts_fails_on_a_rename_a_contract_uses(repo_copy: Path) -> None:
    _rename_legal_name(repo_copy)

    assert invoke("validate", "--root", str(repo_copy), cwd=repo_copy).returncode == 0  # without --contracts
    result = invoke("validate", "--contracts", "--root", str(repo_copy), cwd=repo_copy)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "contracts/onboarding/create_profile.sql:13:28: tenants.tenant_profiles has no column legal_name; name a "
        "declared column (schemas/tenants/tenant_profiles.json), or change the query",
        "1 problem(s); nothing was changed.",
    ]


def test_validate_contracts_counts_the_contracts(repo_copy: Path) -> None:
    result = invoke("validate", "--contracts", "--root", str(repo_copy), cwd=repo_copy)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"✓ {len(FIXTURE_CONTRACTS)} contract(s) resolve against the declarations"


# ---------------------------------------------------------------- diff: what a change breaks


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True)


@pytest.fixture
def repo(repo_copy: Path) -> Path:
    """A git repository on branch main whose one commit holds the fixture's catalog, contracts and program."""
    shutil.copytree(REPO_ROOT / "infra", repo_copy / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo_copy, "init", "-q", "-b", "main")
    _git(repo_copy, "add", "-A")
    _git(repo_copy, "commit", "-q", "-m", "base")
    return repo_copy


def _require_filter_on_the_queue(root: Path) -> None:
    path = root / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    declaration["tables"]["pipeline_execution_queue"]["require_partition_filter"] = True
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))


def _tables(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {t["table"]: t for t in json.loads(result.stdout)["tables"]}


def test_diff_names_the_contracts_a_change_breaks_and_the_prod_gate_fails_until_approved(repo: Path) -> None:
    _require_filter_on_the_queue(repo)
    gate = ("diff", "--root", str(repo), "--stack", "prod", "--fail-on", "update-destructive")

    failed = invoke(*gate, "--format", "json", cwd=repo)
    text = invoke(*gate, cwd=repo)
    stack_file = repo / "Pulumi.prod.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["tenant-bigquery:approveDataLoss"] = ["tenants.pipeline_execution_queue"]
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    approved = invoke(*gate, "--format", "json", cwd=repo)

    assert failed.returncode == 1, failed.stderr
    queue = _tables(failed)["tenants.pipeline_execution_queue"]
    assert queue["verdict"] in ("update", "noop")  # no data lost: the contracts alone fail the gate
    assert [(c["contract"], c["line"]) for c in queue["brokenContracts"]] == [
        ("queue/complete.sql", 8),
        ("queue/lease.sql", 5),
        ("queue/sweep.sql", 3),
    ]
    assert "  breaks queue/sweep.sql:3: tenants.pipeline_execution_queue requires a partition filter" in text.stdout
    assert (
        "Broken contracts: the applications' queries (contracts/) or views (views/) fail once this is deployed"
        in text.stdout
    )
    assert approved.returncode == 0, approved.stdout + approved.stderr


def test_a_contract_changed_in_the_same_pull_request_is_checked_in_its_new_form(repo: Path) -> None:
    schema = repo / "schemas" / "tenants" / "tenant_profiles.json"
    schema.write_text(schema.read_text().replace('"legal_name"', '"registered_name"'))
    broken = invoke("diff", "--root", str(repo), "--format", "json", cwd=repo)
    contract = repo / "contracts" / "onboarding" / "create_profile.sql"
    contract.write_text(contract.read_text().replace(" legal_name,", " registered_name,"))
    fixed = invoke("diff", "--root", str(repo), "--format", "json", cwd=repo)

    profiles = _tables(broken)["tenants.tenant_profiles"]
    assert profiles["brokenContracts"] == [
        {
            "contract": "onboarding/create_profile.sql",
            "line": 13,
            "column": 28,
            "problem": "tenants.tenant_profiles has no column legal_name; name a declared column "
            "(schemas/tenants/tenant_profiles.json), or change the query",
        }
    ]
    assert "brokenContracts" not in _tables(fixed)["tenants.tenant_profiles"]


def test_a_change_no_contract_uses_breaks_none(repo: Path) -> None:
    schema = repo / "schemas" / "tenants" / "tenant_profiles.json"
    columns = json.loads(schema.read_text())
    schema.write_text(json.dumps([*columns, {"name": "nickname", "type": "STRING"}]))

    result = invoke("diff", "--root", str(repo), "--stack", "prod", "--fail-on", "update-destructive", cwd=repo)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "breaks" not in result.stdout
