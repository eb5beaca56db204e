"""`snapshot` against the real local BigQuery API server: snapshots are taken, the printed restore
command brings the rows back after a forced recreation, and bad requests are refused up front.

Not exercised here: tables with require_partition_filter. The local server runs a snapshot as a
full scan and rejects it on such a table (400); real BigQuery snapshots them without a filter.
The tests snapshot tables without the filter, or a stack copy whose declarations drop it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery
from live_server import STACK, LiveStack, create_from_plan, recreate_table, sample_row
from rewriting_proxy import Fault, rewriting_proxy

from infra.bigquery_edge import live
from infra.model.catalog import load_catalog
from infra.model.settings import load_settings

pytestmark = pytest.mark.live

DAY_MS = 86_400_000


def fill(stack: LiveStack, table_id: str, rows: int = 3) -> list[dict[str, Any]]:
    table = stack.client.get_table(stack.table(table_id))
    data = [sample_row(list(table.schema), n) for n in range(rows)]
    assert stack.client.insert_rows_json(table, data) == []
    return data


def acl(dataset: bigquery.Dataset) -> set[tuple[str, str, str]]:
    return {(e.role or "", e.entity_type or "", str(e.entity_id)) for e in dataset.access_entries}


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
    assert lines[0] == (
        f"created backup dataset {backup} (default table expiration 90 d; the source dataset's ACL and default key)"
    )
    taken = re.findall(r"^✓ (\S+) -> (\S+)$", result.stdout, re.MULTILINE)
    assert [source for source, _ in taken] == [
        built_stack.table("tenant_profiles"),
        built_stack.table("pipeline_execution_queue"),
    ]
    for source, snapshot in taken:
        assert re.fullmatch(rf"{re.escape(backup)}\.{source.rsplit('.', 1)[1]}__\d{{8}}T\d{{9}}Z", snapshot)
        made = built_stack.client.get_table(snapshot)
        assert made.table_type == "SNAPSHOT"
        assert made.num_rows == 3
        assert made.expires is not None
        assert before + timedelta(days=90) <= made.expires <= datetime.now(UTC) + timedelta(days=90)
        bq_snapshot, bq_source = snapshot.replace(".", ":", 1), source.replace(".", ":", 1)
        stamp = snapshot.rsplit("__", 1)[1]
        assert (
            f"    restore into a new table: bq cp --restore --no_clobber {bq_snapshot} {bq_source}__restored_{stamp}"
            in lines
        )
        assert any(
            line.startswith("    or over the table, losing every row written to it after ")
            and line.endswith(f"UTC: bq cp --restore --force {bq_snapshot} {bq_source}")
            for line in lines
        )
    # The backup dataset is as private as its source (BigQuery's default ACL would add project readers and writers).
    dataset = built_stack.client.get_dataset(backup)
    source_dataset = built_stack.client.get_dataset(built_stack.dataset_id())
    assert (dataset.location, dataset.default_table_expiration_ms) == ("US", 90 * DAY_MS)
    assert acl(dataset) == acl(source_dataset)
    assert not any(entry.entity_id in {"projectReaders", "projectWriters"} for entry in dataset.access_entries)
    source_key = source_dataset.default_encryption_configuration.kms_key_name
    assert dataset.default_encryption_configuration.kms_key_name == source_key is not None

    # A forced recreation: the tables come back empty.
    plan = built_stack.plan()
    for table in ("tenant_profiles", "pipeline_execution_queue"):
        recreate_table(built_stack.client, plan, table)
    assert keys(built_stack, built_stack.table("tenant_profiles"), "tenant_id") == []

    # First the safe way: into a new table, beside the live one, exactly as printed.
    python = [line.removeprefix("      python: ") for line in lines if line.startswith("      python: ")]
    new_table, over_source = python[0::2], python[1::2]
    exec(new_table[0], {"client": built_stack.client, "bigquery": bigquery})
    restored = f"{taken[0][0]}__restored_{taken[0][1].rsplit('__', 1)[1]}"
    assert keys(built_stack, restored, "tenant_id") == ["v0", "v1", "v2"]
    assert keys(built_stack, built_stack.table("tenant_profiles"), "tenant_id") == []

    # Then over the tables themselves.
    for line in over_source:
        exec(line, {"client": built_stack.client, "bigquery": bigquery})
    assert keys(built_stack, built_stack.table("tenant_profiles"), "tenant_id") == ["v0", "v1", "v2"]
    assert keys(built_stack, built_stack.table("pipeline_execution_queue"), "queue_entry_id") == ["v0", "v1", "v2"]


def test_two_runs_within_one_second_each_keep_their_snapshot(built_stack: LiveStack) -> None:
    """A rerun right after an interrupted `migrate --apply` snapshots again within the same second."""
    catalog = load_catalog(built_stack.root)
    settings = load_settings(built_stack.root, STACK, catalog)
    [table] = [t for t in catalog.tables() if t.table_id == "tenant_profiles"]
    conn = live.connect(settings.project, built_stack.endpoint)
    second = datetime(2026, 11, 29, 23, 0, 0, tzinfo=UTC)

    first = live.snapshot(conn, settings, [table], 1, now=second + timedelta(milliseconds=100))
    again = live.snapshot(conn, settings, [table], 1, now=second + timedelta(milliseconds=900))

    assert first.ok and again.ok, (first.failures, again.failures)
    assert first.snapshots[0].snapshot != again.snapshots[0].snapshot


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
    assert first.stdout.count("\n✓ ") == 9
    backup = client.get_dataset(f"{live_stack.dataset_id()}_backup")
    assert backup.default_table_expiration_ms == 7 * DAY_MS

    second = live_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles", "--expire-days", "7")
    assert second.returncode == 0, second.stderr
    assert "created backup dataset" not in second.stdout
    assert len(list(client.list_tables(backup))) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "pass either --tables T1,T2 or --all"),
        (("--tables", "tenant_profiles", "--all"), "pass either --tables T1,T2 or --all"),
        (("--tables", "tenants.nope"), "'tenants.nope' names no declared table (declared: tenants.tenant_profiles, "),
        (("--tables", " , "), "name at least one table"),
        (("--all", "--expire-days", "0"), "0 is too short; BigQuery's minimum is one hour, so use at least 1 day"),
        (("--all", "--expire-days", "3000000"), "3,000,000 days from now is past 9999-12-31, the last day a timestamp"),
        # Past int64 milliseconds too: the message names the timestamp's bound, the smaller one.
        (("--all", "--expire-days", "106751991168"), "106,751,991,168 days from now is past 9999-12-31"),
    ],
)
def test_usage_errors_exit_2_before_any_api_call(
    module_built_stack: LiveStack, args: tuple[str, ...], message: str
) -> None:
    stack = module_built_stack
    result = stack.cli("snapshot", "--stack", STACK, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert [d.dataset_id for d in stack.client.list_datasets() if stack.suffix in d.dataset_id] == [stack.dataset_id()]


def test_an_existing_backup_dataset_that_grants_more_than_its_source_is_refused(built_stack: LiveStack) -> None:
    """BigQuery's default ACL lets every project viewer read a dataset: such a backup dataset is refused."""
    backup = bigquery.Dataset(f"{built_stack.project}.{built_stack.dataset_id()}_backup")
    backup.location = "US"
    source = built_stack.client.get_dataset(built_stack.dataset_id())
    backup.default_encryption_configuration = source.default_encryption_configuration
    viewers = bigquery.AccessEntry(role="READER", entity_type="specialGroup", entity_id="projectReaders")
    backup.access_entries = [*source.access_entries, viewers]
    built_stack.client.create_dataset(backup)

    result = built_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles")

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    name = f"{built_stack.dataset_id()}_backup"
    assert line.startswith(
        f"refused: backup dataset {name} grants what {built_stack.dataset_id()} does not "
        "(READER specialGroup projectReaders): anyone in it could read the snapshots; remove those entries"
    )
    assert list(built_stack.client.list_tables(backup)) == []


def test_an_existing_backup_dataset_with_another_key_is_refused(built_stack: LiveStack) -> None:
    backup = bigquery.Dataset(f"{built_stack.project}.{built_stack.dataset_id()}_backup")
    backup.location = "US"
    backup.access_entries = built_stack.client.get_dataset(built_stack.dataset_id()).access_entries
    built_stack.client.create_dataset(backup)  # no default key: Google-managed

    result = built_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles")

    assert result.returncode == 1
    assert "has default key none (Google-managed) but" in result.stderr
    assert "bq update --default_kms_key" in result.stderr
    assert list(built_stack.client.list_tables(backup)) == []


class _ForbiddenSecondCopy:
    """The real client, except that the second snapshot job is refused as a missing permission would be."""

    def __init__(self, client: bigquery.Client):
        self._client, self._copies = client, 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def copy_table(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._copies += 1
            refused = self._copies == 2
        if refused:
            raise api_exceptions.Forbidden("Access Denied: bigquery.tables.createSnapshot")  # type: ignore[no-untyped-call]
        return self._client.copy_table(*args, **kwargs)


def test_a_permission_error_after_the_first_snapshot_reports_what_was_created(
    built_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = live.connect(built_stack.project, built_stack.endpoint)
    flaky = replace(real, client=cast(bigquery.Client, _ForbiddenSecondCopy(real.client)))
    monkeypatch.setattr(live, "connect", lambda project, endpoint=None: flaky)

    result = built_stack.cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles,tenant_api_keys")

    assert result.returncode == 1, result.stdout + result.stderr
    backup = f"{built_stack.project}.{built_stack.dataset_id()}_backup"
    assert f"created backup dataset {backup}" in result.stdout
    assert len(re.findall(r"^✓ ", result.stdout, re.MULTILINE)) == 1
    assert f"✗ {built_stack.table('tenant_api_keys')}: Access Denied: bigquery.tables.createSnapshot" in result.stdout
    assert result.stderr.splitlines()[-1] == (
        f"1 of 2 snapshots failed; kept: 1 snapshot(s) listed above, created {backup}."
    )
    assert len(list(built_stack.client.list_tables(backup))) == 1


def test_the_longest_expiration_is_the_last_day_of_the_timestamp_range(built_stack: LiveStack) -> None:
    """A snapshot expires at a timestamp (JobConfigurationTableCopy.destinationExpirationTime, a
    google.protobuf.Timestamp: up to 9999-12-31); a day is kept to spare for the moments before the snapshot.
    The limit is read from the CLI's own message: a limit computed here would be a day off across UTC midnight."""
    days = (date(9999, 12, 31) - datetime.now(UTC).date()).days  # days to its last day, give or take midnight
    snapshot = ("snapshot", "--stack", STACK, "--tables", "tenant_profiles", "--expire-days")

    refused = built_stack.cli(*snapshot, str(days))
    assert refused.returncode == 2
    said = re.search(r"past 9999-12-31, the last day a timestamp holds; use at most ([0-9,]+)$", refused.stderr.strip())
    assert said, refused.stderr
    latest = int(said.group(1).replace(",", ""))
    assert latest in (days - 2, days - 1)  # a day to spare, and the CLI may read the date after midnight
    assert built_stack.cli(*snapshot, str(latest + 1)).returncode == 2
    taken = built_stack.cli(*snapshot, str(latest))
    assert taken.returncode == 0, taken.stderr
    assert "expiring 9999-12-" in taken.stdout


def _another_run_creates(stack: LiveStack, **extra: Any) -> Fault:
    """A fault that lets another run create the backup dataset just before this run's datasets.insert,
    which the server then answers with its own 409 (BigQuery's error table: duplicate, 409)."""
    other_run = live.connect(stack.project, stack.endpoint)

    def create() -> None:
        source = stack.client.get_dataset(stack.dataset_id())
        if extra:
            source.access_entries = [*source.access_entries, bigquery.AccessEntry(**extra)]
        live._create_backup_dataset(other_run, source, 90)

    return Fault(method="POST", path=r"/datasets$", times=1, before=create)


def test_a_backup_dataset_another_run_created_meanwhile_is_checked_and_used(built_stack: LiveStack) -> None:
    race = _another_run_creates(built_stack)
    with rewriting_proxy(built_stack.endpoint, faults=[race]) as proxy:
        result = replace(built_stack, endpoint=proxy).cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles")

    assert race.count == 1
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created backup dataset" not in result.stdout  # the other run did
    assert f"✓ {built_stack.table('tenant_profiles')} -> " in result.stdout
    assert len(list(built_stack.client.list_tables(f"{built_stack.dataset_id()}_backup"))) == 1


def test_a_backup_dataset_another_run_created_with_a_broader_acl_is_refused(built_stack: LiveStack) -> None:
    race = _another_run_creates(built_stack, role="READER", entity_type="specialGroup", entity_id="projectReaders")
    with rewriting_proxy(built_stack.endpoint, faults=[race]) as proxy:
        result = replace(built_stack, endpoint=proxy).cli("snapshot", "--stack", STACK, "--tables", "tenant_profiles")

    assert result.returncode == 1
    name = f"{built_stack.dataset_id()}_backup"
    assert (
        f"✗ {built_stack.table('tenant_profiles')}: backup dataset {name} grants what {built_stack.dataset_id()} "
        "does not (READER specialGroup projectReaders)"
    ) in result.stdout
    assert result.stderr.splitlines() == ["1 of 1 snapshots failed."]
    assert list(built_stack.client.list_tables(name)) == []
