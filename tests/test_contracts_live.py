"""Every contract run on the local BigQuery API server against the declared tables, with sample parameters:
a query that resolves offline (tests/test_contracts.py) but does not run is caught here. The server runs
sqlglot itself (30.30.0, as requirements.txt pins) on DuckDB, so this holds the queries to what executes, not
only to what parses; `verify`'s dry run holds them to BigQuery itself."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api_core.exceptions import GoogleAPICallError
from google.cloud import bigquery
from helpers import REPO_ROOT
from live_server import STACK, LiveStack, stack_on

from infra.analysis import contracts
from infra.bigquery_edge import live_contracts
from infra.model.catalog import load_catalog
from infra.model.contracts import CONTRACTS_DIR, Contract, read_contracts
from infra.model.settings import load_settings
from infra.model.views import VIEWS_DIR

pytestmark = pytest.mark.live
SHIPPED, _ = read_contracts(REPO_ROOT)


@pytest.fixture(scope="module")
def repository_stack(bigquery_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The repository's own declarations and contracts, its tables created on the server as declared."""
    root = tmp_path_factory.mktemp("contracts") / "repo"
    for folder in ("stacks", "schemas", CONTRACTS_DIR, VIEWS_DIR):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    for stack_file in REPO_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, root)
    with stack_on(bigquery_server, root, built=True) as stack:
        yield stack


def run(stack: LiveStack, contract: Contract) -> None:
    catalog = load_catalog(stack.root)
    sql = contracts.stack_sql(contract, catalog, load_settings(stack.root, STACK, catalog))
    config = bigquery.QueryJobConfig(query_parameters=live_contracts.query_parameters(contract))
    stack.client.query(sql, job_config=config).result()


@pytest.mark.parametrize("contract", SHIPPED, ids=[c.name for c in SHIPPED])
def test_each_contract_runs_against_the_declared_tables(repository_stack: LiveStack, contract: Contract) -> None:
    run(repository_stack, contract)


def _edit_schema(root: Path, table: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    path = root / "schemas" / "tenants" / f"{table}.json"
    columns = json.loads(path.read_text())
    change(columns)
    path.write_text(json.dumps(columns))


def _column(columns: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in columns if c["name"] == name)


# The fixture's tables (tests/fixtures/repo), built changed: the contract each change breaks no longer runs.
BREAKING: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "rename": (
        lambda root: _edit_schema(root, "tenant_profiles", lambda c: _column(c, "legal_name").update(name="x")),
        "onboarding/create_profile.sql",
        "legal_name",
    ),
    "drop": (
        lambda root: _edit_schema(root, "tenant_api_keys", lambda c: c.remove(_column(c, "key_hash"))),
        "auth/authenticate.sql",
        "key_hash",
    ),
    "narrow": (
        lambda root: _edit_schema(root, "tenant_api_keys", lambda c: _column(c, "key_hash").update(type="STRING")),
        "auth/authenticate.sql",
        "",
    ),
}
# Requiring a partition filter on the queue breaks only DML whose target is the queue (queue/sweep.sql), and the
# local server exempts a DML target from the filter (local_bigquery/sql/rules/tables.py `_check`:
# `requirePartitionFilter and not is_target`); BigQuery does not, which the offline check and verify's dry run
# hold (tests/test_contracts.py, and verify below). A read without the filter fails here too:
READ_UNFILTERED = "SELECT queue_entry_id FROM tenants.pipeline_execution_queue WHERE state = 'QUEUED'"


@pytest.mark.parametrize("change", BREAKING, ids=list(BREAKING))
def test_a_change_a_contract_relies_on_stops_it_running(bigquery_server: Any, repo_copy: Path, change: str) -> None:
    edit, contract_name, said = BREAKING[change]
    edit(repo_copy)
    shipped, _ = read_contracts(repo_copy)
    with stack_on(bigquery_server, repo_copy, built=True) as stack:
        failures = {}
        for contract in shipped:
            try:
                run(stack, contract)
            except GoogleAPICallError as error:
                failures[contract.name] = str(error)
    assert contract_name in failures, sorted(failures)
    assert said in failures[contract_name]


def test_the_server_refuses_a_read_without_the_partition_filter_a_table_requires(
    bigquery_server: Any, repo_copy: Path
) -> None:
    path = repo_copy / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    declaration["tables"]["pipeline_execution_queue"]["require_partition_filter"] = True
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))
    contract = Contract("queue/peek.sql", "contracts/queue/peek.sql", READ_UNFILTERED, "a test", "once", ())
    with stack_on(bigquery_server, repo_copy, built=True) as stack, pytest.raises(GoogleAPICallError) as refused:
        run(stack, contract)
    assert "without a filter over column(s) 'scheduled_time'" in str(refused.value)


# ---------------------------------------------------------------- verify's dry run


def test_verify_dry_runs_every_contract_against_the_live_tables(repository_stack: LiveStack) -> None:
    result = repository_stack.cli("verify", "--stack", STACK)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("✓ contract", "✗ contract"))]
    assert lines == [f"✓ contract {c.name} dry run: BigQuery takes it against the live tables" for c in SHIPPED]


def _narrow_key_hash(stack: LiveStack) -> None:
    """tenant_api_keys made again with key_hash a STRING, as a narrowing that went live would leave it."""
    table = stack.client.get_table(stack.table("tenant_api_keys"))
    table.schema = [bigquery.SchemaField(f.name, "STRING", f.mode) if f.name == "key_hash" else f for f in table.schema]
    stack.client.delete_table(table.reference)
    stack.client.create_table(bigquery.Table(table.reference, schema=table.schema))


LIVE_DRIFT: dict[str, tuple[Callable[[LiveStack], object], str]] = {
    "rename": (
        lambda s: s.client.query(f"ALTER TABLE `{s.table('tenant_profiles')}` RENAME COLUMN legal_name TO x").result(),
        "onboarding/create_profile.sql",
    ),
    "drop": (
        lambda s: s.client.query(f"ALTER TABLE `{s.table('tenant_api_keys')}` DROP COLUMN key_hash").result(),
        "auth/authenticate.sql",
    ),
    "narrow": (_narrow_key_hash, "auth/authenticate.sql"),
}


@pytest.mark.parametrize("drift", LIVE_DRIFT, ids=list(LIVE_DRIFT))
def test_verify_names_the_contract_a_live_change_breaks(built_stack: LiveStack, drift: str) -> None:
    change, contract = LIVE_DRIFT[drift]
    change(built_stack)

    result = built_stack.cli("verify", "--stack", STACK)

    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith(f"✗ contract {contract} dry run: ")]
    assert failed, result.stdout
    assert "BigQuery refuses it: " in failed[0]
    assert f"contracts/{contract} or the live table" in failed[0]
