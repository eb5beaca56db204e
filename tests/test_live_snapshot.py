"""`snapshot` against the real local BigQuery API server: snapshots are taken, the printed restore
command brings the rows back after a forced recreation, and bad requests are refused up front.

Not exercised here: tables with require_partition_filter. The local server runs a snapshot as a
full scan and rejects it on such a table (400); real BigQuery snapshots them without a filter.
The tests snapshot tables without the filter, or a stack copy whose declarations drop it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import bigquery
from live_server import STACK, LiveStack, create_from_plan, recreate_table, sample_row

pytestmark = pytest.mark.live

DAY_MS = 86_400_000


def fill(stack: LiveStack, table_id: str, rows: int = 3) -> list[dict[str, Any]]:
    table = stack.client.get_table(stack.table(table_id))
    data = [sample_row(list(table.schema), n) for n in range(rows)]
    assert stack.client.insert_rows_json(table, data) == []
    return data


def keys(stack: LiveStack, table: str, column: str) -> list[Any]:
    return sorted(row[0] for row in stack.client.query_and_wait(f"SELECT {column} FROM `{table}`"))


def test_snapshot_then_the_printed_restore_brings_the_rows_back(built_stack: LiveStack) -> None:
    fill(built_stack, "tenant_profiles")
    fill(built_stack, "pipeline_execution_queue")
    before = datetime.now(UTC).replace(microsecond=0)

    result = built_stack.cli(
        "snapshot", "--stack", STACK, "--tables", "tenant_profiles,tenants.pipeline_execution_queue"
    )

    assert result.returncode == 0, result.stderr
    backup = f"{built_stack.project}.{built_stack.dataset_id()}_backup"
    lines = result.stdout.splitlines()
    assert lines[0] == f"created backup dataset {backup} (default table expiration 30 d)"
    taken = re.findall(r"^✓ (\S+) -> (\S+)$", result.stdout, re.MULTILINE)
    assert [source for source, _ in taken] == [
        built_stack.table("tenant_profiles"),
        built_stack.table("pipeline_execution_queue"),
    ]
    for source, snapshot in taken:
        assert re.fullmatch(rf"{re.escape(backup)}\.{source.rsplit('.', 1)[1]}__\d{{8}}T\d{{6}}Z", snapshot)
        made = built_stack.client.get_table(snapshot)
        assert made.table_type == "SNAPSHOT"
        assert made.num_rows == 3
        assert made.expires is not None
        assert before + timedelta(days=30) <= made.expires <= datetime.now(UTC) + timedelta(days=30)
        bq = f"    restore: bq cp --restore --force {snapshot.replace('.', ':', 1)} {source.replace('.', ':', 1)}"
        assert bq in lines
    dataset = built_stack.client.get_dataset(backup)
    assert (dataset.location, dataset.default_table_expiration_ms) == ("US", 30 * DAY_MS)
    source_key = built_stack.client.get_dataset(built_stack.dataset_id()).default_encryption_configuration.kms_key_name
    assert dataset.default_encryption_configuration.kms_key_name == source_key is not None

    # A forced recreation: the tables come back empty.
    plan = built_stack.plan()
    for table in ("tenant_profiles", "pipeline_execution_queue"):
        recreate_table(built_stack.client, plan, table)
    assert keys(built_stack, built_stack.table("tenant_profiles"), "tenant_id") == []

    # The restore commands exactly as printed, run with a client.
    for line in lines:
        if line.startswith("    python:  "):
            exec(line.removeprefix("    python:  "), {"client": built_stack.client, "bigquery": bigquery})
    assert keys(built_stack, built_stack.table("tenant_profiles"), "tenant_id") == ["v0", "v1", "v2"]
    assert keys(built_stack, built_stack.table("pipeline_execution_queue"), "queue_entry_id") == ["v0", "v1", "v2"]


def test_a_missing_table_is_refused_before_anything_is_created(built_stack: LiveStack) -> None:
    built_stack.client.delete_table(built_stack.table("tenant_api_keys"))

    result = built_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles,tenant_api_keys")

    assert result.returncode == 1
    assert result.stdout == ""
    missing = built_stack.table("tenant_api_keys")
    assert result.stderr.splitlines() == [
        f"refused: not found in project {built_stack.project}: {missing}; nothing was snapshotted"
    ]
    assert [d.dataset_id for d in built_stack.client.list_datasets() if built_stack.suffix in d.dataset_id] == [
        built_stack.dataset_id()
    ]


def test_a_backup_dataset_in_another_location_is_refused(built_stack: LiveStack) -> None:
    backup = bigquery.Dataset(f"{built_stack.project}.{built_stack.dataset_id()}_backup")
    backup.location = "EU"
    built_stack.client.create_dataset(backup)

    result = built_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles")

    assert result.returncode == 1
    assert result.stderr.startswith(f"refused: backup dataset {built_stack.dataset_id()}_backup is in EU but ")
    assert list(built_stack.client.list_tables(backup)) == []


def test_all_tables_into_an_existing_backup_dataset(live_stack: LiveStack) -> None:
    # The local server cannot snapshot a table that requires a partition filter: declare none here.
    declaration = live_stack.root / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("    require_partition_filter: true\n", ""))
    client = live_stack.client
    create_from_plan(client, live_stack.plan())
    first = live_stack.cli("snapshot", "--stack", STACK, "--all", "--expire-days", "7")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n✓ ") == 8
    backup = client.get_dataset(f"{live_stack.dataset_id()}_backup")
    assert backup.default_table_expiration_ms == 7 * DAY_MS

    second = live_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles", "--expire-days", "7")
    assert second.returncode == 0, second.stderr
    assert "created backup dataset" not in second.stdout
    assert len(list(client.list_tables(backup))) == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "pass either --tables T1,T2 or --all"),
        (("--tables", "tenant_profiles", "--all"), "pass either --tables T1,T2 or --all"),
        (("--tables", "tenants.nope"), "'tenants.nope' names no declared table (declared: tenants.tenant_profiles, "),
        (("--tables", " , "), "name at least one table"),
        (("--all", "--expire-days", "0"), "0 is not in the range x>=1"),
    ],
)
def test_usage_errors_exit_2_before_any_api_call(built_stack: LiveStack, args: tuple[str, ...], message: str) -> None:
    result = built_stack.cli("snapshot", "--stack", STACK, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert [d.dataset_id for d in built_stack.client.list_datasets() if built_stack.suffix in d.dataset_id] == [
        built_stack.dataset_id()
    ]
