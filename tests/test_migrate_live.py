"""`migrate` against the local BigQuery API server, with real rows, through the CLI.

Each test builds the stack from the current declarations, inserts rows, changes the declaration in
its copy of the repository, runs `migrate --apply`, finds every row and value again and runs `verify`.
Never trust a statement's success: the local server accepts some DDL it does not apply (README,
section "Lossless schema changes: `migrate`", names what could not be exercised here).

BigQuery rules relied on, with their documentation:
- ALTER TABLE RENAME COLUMN, ALTER COLUMN SET DATA TYPE, DROP TABLE, ALTER TABLE RENAME TO:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language
- coercible types (what SET DATA TYPE accepts) and casts (what a rebuild may use):
  https://cloud.google.com/bigquery/docs/reference/standard-sql/conversion_rules
- no REQUIRED column can be added to a table with rows; renames and other type changes need a new
  table: https://cloud.google.com/bigquery/docs/managing-table-schemas
- a table's Cloud KMS key changes with tables.patch (encryptionConfiguration):
  https://cloud.google.com/bigquery/docs/customer-managed-encryption
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import bigquery
from helpers import REPO_ROOT, resources_of
from live_server import STACK, LiveStack, stack_on, table_resource, write_stack
from rewriting_proxy import Fault, rewriting_proxy, streaming_buffer, versioned_table_keys

from infra import live, live_migrate
from infra.catalog import load_catalog
from infra.declared import TABLE_TYPE
from infra.settings import load_settings

pytestmark = pytest.mark.live

QUEUE = "pipeline_execution_queue"
PROFILES = "tenant_profiles"
SUBSCRIPTIONS = "tenant_subscriptions"
# Declared wherever migrate --apply runs: it records every run there (infra/history.py).
HISTORY = "migration_history"


@pytest.fixture
def built_stack(bigquery_server: Any, repo_copy: Path) -> Iterator[LiveStack]:
    """A built stack that declares only the tables these tests migrate (each table takes the server a tenth
    of a second to create, and every verify reads each one)."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    document = yaml.safe_load(declaration.read_text())
    document["tables"] = {k: v for k, v in document["tables"].items() if k in (QUEUE, PROFILES, SUBSCRIPTIONS, HISTORY)}
    declaration.write_text(yaml.safe_dump(document, sort_keys=False))
    for schema in (repo_copy / "schemas" / "tenants").glob("*.json"):
        if schema.stem not in document["tables"]:
            schema.unlink()
    with stack_on(bigquery_server, repo_copy, built=True) as stack:
        yield stack


def schema_path(stack: LiveStack, table: str) -> Path:
    return stack.root / "schemas" / "tenants" / f"{table}.json"


def edit_schema(stack: LiveStack, table: str, change: Any) -> None:
    path = schema_path(stack, table)
    columns = json.loads(path.read_text())
    change(columns)
    path.write_text(json.dumps(columns, indent=2))


def edit_declaration(stack: LiveStack, table: str, **entries: Any) -> None:
    path = stack.root / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    for key, value in entries.items():
        if value is None:
            declaration["tables"][table].pop(key, None)
        else:
            declaration["tables"][table][key] = value
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))


def column(columns: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in columns if c["name"] == name)


def profile(n: int, **extra: Any) -> dict[str, Any]:
    row = {
        "tenant_id": f"t{n}",
        "display_name": f"Tenant {n}",
        "legal_name": f"Tenant {n} Ltd",
        "status": "ACTIVE" if n % 2 else "SUSPENDED",
        "tier": "PRO",
        "primary_contact_email": f"ops{n}@example.com",
        "data_residency_region": "US",
        "country_code": "US" if n % 2 else "DE",
        "created_at": f"2026-01-{n + 1:02d}T10:00:00Z",
        "updated_at": f"2026-02-{n + 1:02d}T10:00:00Z",
    }
    return row | extra


def queue_entry(n: int, **extra: Any) -> dict[str, Any]:
    row = {
        "tenant_id": f"t{n % 3}",
        "queue_entry_id": f"q{n}",
        "run_id": f"r{n}",
        "pipeline_id": f"p{n % 2}",
        "pipeline_version": n,
        # Recent: the declared partitions expire after 90 days.
        "scheduled_time": f"2026-11-{n % 28 + 1:02d}T08:00:00Z",
        "priority": 10 * n,
        "state": "READY",
        "attempt": n % 4,
        "max_attempts": 5,
        "enqueued_at": f"2026-{n % 2 + 10}-{n % 28 + 1:02d}T07:00:00Z",
        "created_at": f"2026-10-{n % 28 + 1:02d}T07:00:00Z",
        "updated_at": f"2026-11-{n % 28 + 1:02d}T07:00:00Z",
        "last_error": {"code": f"E{n}", "message": f"failed {n}" if n % 2 else None},
    }
    return row | extra


def insert(stack: LiveStack, table: str, rows: list[dict[str, Any]]) -> None:
    assert stack.client.insert_rows_json(stack.table(table), rows) == []


def read(stack: LiveStack, table: str, key: str) -> list[dict[str, Any]]:
    rows = stack.client.query_and_wait(f"SELECT * FROM `{stack.table(table)}` ORDER BY {key}")
    return [dict(row.items()) for row in rows]


def migrate(stack: LiveStack, *args: str) -> Any:
    return stack.cli("migrate", "--stack", STACK, *args)


def pulumi_up_in_place(stack: LiveStack, table: str) -> None:
    """What `pulumi up --refresh` then changes in place (descriptions, labels), as the provider sends it."""
    resource = next(r for r in resources_of(stack.plan(), TABLE_TYPE) if r.inputs["tableId"] == table)
    declared = bigquery.Table.from_api_repr(table_resource(dict(resource.inputs)))
    stack.client.update_table(declared, ["schema", "labels", "description"])


def assert_verify_passes(stack: LiveStack) -> None:
    result = stack.cli("verify", "--stack", STACK)
    assert [line for line in result.stdout.splitlines() if line.startswith("✗")] == []
    assert result.returncode == 0, result.stderr


def test_rename_a_column_in_place_keeps_every_value(built_stack: LiveStack) -> None:
    insert(built_stack, PROFILES, [profile(n) for n in range(5)])
    before = read(built_stack, PROFILES, "tenant_id")
    edit_schema(built_stack, PROFILES, lambda cols: column(cols, "legal_name").update(name="registered_name"))
    edit_declaration(built_stack, PROFILES, renamed_columns={"registered_name": "legal_name"})

    dry = migrate(built_stack, "--tables", PROFILES)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    rename = f"ALTER TABLE `{built_stack.table(PROFILES)}` RENAME COLUMN `legal_name` TO `registered_name`"
    assert f"  1. {rename}" in dry.stdout.splitlines()
    assert read(built_stack, PROFILES, "tenant_id") == before  # a dry run changes nothing
    as_json = json.loads(migrate(built_stack, "--tables", PROFILES, "--format", "json").stdout)
    assert (as_json["apply"], as_json["ok"]) == (False, True)
    (table,) = as_json["tables"]
    assert (table["status"], table["rebuild"], [s["action"] for s in table["steps"]]) == ("planned", None, [rename])

    applied = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"✓ tenants.{PROFILES}: migrated" in applied.stdout
    after = read(built_stack, PROFILES, "tenant_id")
    assert after == [
        {**{k: v for k, v in row.items() if k != "legal_name"}, "registered_name": row["legal_name"]} for row in before
    ]
    # The local server drops a column's description on RENAME COLUMN (BigQuery keeps it); pulumi up sets it again.
    pulumi_up_in_place(built_stack, PROFILES)
    assert_verify_passes(built_stack)
    again = migrate(built_stack, "--tables", PROFILES)
    assert f"✓ tenants.{PROFILES}: nothing to migrate" in again.stdout


def test_a_new_partitioning_rebuilds_the_table_with_every_row(built_stack: LiveStack) -> None:
    rows = [queue_entry(n) for n in range(40)]
    insert(built_stack, QUEUE, rows)

    def change(cols: list[dict[str, Any]]) -> None:
        column(cols, "priority")["type"] = "NUMERIC"  # widening, carried by the rebuild as a CAST
        column(column(cols, "last_error")["fields"], "message")["name"] = "detail"  # nested: only a rebuild renames it

    edit_schema(built_stack, QUEUE, change)
    edit_declaration(
        built_stack,
        QUEUE,
        partitioning={"field": "enqueued_at", "type": "MONTH", "expiration_days": 400},
        renamed_columns={"last_error.detail": "last_error.message"},
    )

    dry = migrate(built_stack, "--tables", QUEUE)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (
        "partitioning DAY on scheduled_time, partitions expire after 90 d -> MONTH on enqueued_at, partitions expire "
        "after 400 d" in dry.stdout
    )
    assert "INSERT INTO" in dry.stdout and "CAST(`priority` AS NUMERIC)" in dry.stdout
    assert len(read(built_stack, QUEUE, "queue_entry_id")) == 40

    started = time.monotonic()
    applied = migrate(built_stack, "--tables", QUEUE, "--apply")
    elapsed = time.monotonic() - started

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"✓ tenants.{QUEUE}: migrated (rebuild through " in applied.stdout
    after = read(built_stack, QUEUE, "queue_entry_id")
    expected = [
        {
            **row,
            "priority": Decimal(row["priority"]),
            "last_error": {"code": row["last_error"]["code"], "detail": row["last_error"]["message"]},
        }
        for row in sorted(rows, key=lambda r: r["queue_entry_id"])
    ]
    assert [_comparable(r) for r in after] == [_comparable(r) for r in expected]
    live = built_stack.client.get_table(built_stack.table(QUEUE))
    assert (live.time_partitioning.type_, live.time_partitioning.field) == ("MONTH", "enqueued_at")
    assert live.clustering_fields == ["tenant_id", "state"]
    assert_verify_passes(built_stack)  # exactly the declared table: nothing left for pulumi up
    tables = [t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())]
    assert not [t for t in tables if "__migrate_" in t]
    assert f"✓ tenants.{QUEUE}: nothing to migrate" in migrate(built_stack, "--tables", QUEUE).stdout
    print(f"rebuild of 40 rows through the CLI: {elapsed:.1f} s")


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """Rows read back hold datetimes and Decimals; rows inserted hold ISO strings and ints."""
    out = {}
    for key, value in row.items():
        if value is None:
            continue
        if hasattr(value, "isoformat"):
            value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        out[key] = value
    return out


def test_widening_types_in_place_keeps_every_value(built_stack: LiveStack) -> None:
    rows = [queue_entry(n) for n in range(6)]
    insert(built_stack, QUEUE, rows)

    def change(cols: list[dict[str, Any]]) -> None:
        column(cols, "attempt")["type"] = "NUMERIC"
        column(cols, "max_attempts")["type"] = "FLOAT64"

    edit_schema(built_stack, QUEUE, change)

    applied = migrate(built_stack, "--tables", QUEUE, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    table = f"`{built_stack.table(QUEUE)}`"
    assert f"  1. ALTER TABLE {table} ALTER COLUMN `attempt` SET DATA TYPE NUMERIC" in applied.stdout
    assert f"  2. ALTER TABLE {table} ALTER COLUMN `max_attempts` SET DATA TYPE FLOAT64" in applied.stdout
    assert "rebuild" not in applied.stdout
    after = read(built_stack, QUEUE, "queue_entry_id")
    assert [(r["queue_entry_id"], r["attempt"], r["max_attempts"]) for r in after] == [
        (row["queue_entry_id"], Decimal(row["attempt"]), float(row["max_attempts"])) for row in rows
    ]
    assert_verify_passes(built_stack)


def test_numeric_to_bignumeric_is_planned_in_place(built_stack: LiveStack) -> None:
    # BigQuery coerces NUMERIC to BIGNUMERIC, so SET DATA TYPE applies in place (conversion rules);
    # the local server refuses that statement, so only the plan is checked here.
    edit_schema(built_stack, SUBSCRIPTIONS, lambda cols: column(cols, "price").update(type="BIGNUMERIC"))

    dry = migrate(built_stack, "--tables", SUBSCRIPTIONS)

    assert dry.returncode == 0, dry.stdout + dry.stderr
    table = f"`{built_stack.table('tenant_subscriptions')}`"
    assert f"  1. ALTER TABLE {table} ALTER COLUMN `price` SET DATA TYPE BIGNUMERIC" in dry.stdout


def test_a_longer_string_is_planned_in_place_and_a_change_the_server_ignores_is_caught(
    built_stack: LiveStack,
) -> None:
    built_stack.client.update_table(_with_max_length(built_stack, "country_code", 2), ["schema"])
    insert(built_stack, PROFILES, [profile(n) for n in range(3)])
    edit_schema(built_stack, PROFILES, lambda cols: column(cols, "country_code").update(maxLength="8"))

    applied = migrate(built_stack, "--tables", PROFILES, "--apply")

    # The local server accepts SET DATA TYPE STRING(8) but keeps STRING(2): migrate reads the table
    # again instead of trusting the statement, and says so.
    table = f"`{built_stack.table(PROFILES)}`"
    assert f"  1. ALTER TABLE {table} ALTER COLUMN `country_code` SET DATA TYPE STRING(8)" in applied.stdout
    assert applied.returncode == 1
    assert "applied, but the table still differs: ALTER TABLE" in applied.stdout
    assert len(read(built_stack, PROFILES, "tenant_id")) == 3


def _with_max_length(stack: LiveStack, name: str, length: int) -> bigquery.Table:
    table = stack.client.get_table(stack.table(PROFILES))
    table.schema = [
        bigquery.SchemaField.from_api_repr({**f.to_api_repr(), "maxLength": str(length)}) if f.name == name else f
        for f in table.schema
    ]
    return table


def test_a_new_key_and_a_removed_partition_expiration_apply_in_place(built_stack: LiveStack) -> None:
    rows = [queue_entry(n) for n in range(4)]
    insert(built_stack, QUEUE, rows)
    new_key = "projects/acme-security-prod/locations/us/keyRings/bigquery-prod/cryptoKeys/tenants-2027"
    write_stack(built_stack.root, built_stack.project, kmsKeyName=new_key)
    _keep_suffix(built_stack)
    edit_declaration(built_stack, QUEUE, partitioning={"field": "scheduled_time", "type": "DAY", "keep_forever": True})

    applied = migrate(built_stack, "--tables", QUEUE, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    lines = applied.stdout.splitlines()
    table_id = built_stack.table(QUEUE)
    assert f"  1. tables.patch {table_id}: timePartitioning.expirationMs = null" in lines
    assert f"  2. tables.patch {table_id}: encryptionConfiguration.kmsKeyName = '{new_key}'" in lines
    live = built_stack.client.get_table(table_id)
    assert live.encryption_configuration.kms_key_name == new_key
    assert live.time_partitioning.expiration_ms is None
    assert [r["queue_entry_id"] for r in read(built_stack, QUEUE, "queue_entry_id")] == [
        r["queue_entry_id"] for r in rows
    ]
    # What pulumi up --refresh then does in place: the dataset's default key and the retention label.
    dataset = built_stack.client.get_dataset(built_stack.dataset_id())
    dataset.default_encryption_configuration = bigquery.EncryptionConfiguration(kms_key_name=new_key)
    built_stack.client.update_dataset(dataset, ["default_encryption_configuration"])
    pulumi_up_in_place(built_stack, QUEUE)
    result = built_stack.cli("verify", "--stack", STACK)
    failing = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    # Only the tables this test did not migrate still carry the old key.
    assert failing and all("encryption key" in line and QUEUE not in line for line in failing)


def test_the_versioned_table_key_bigquery_reports_is_no_rekey_run_after_run(built_stack: LiveStack) -> None:
    """Real BigQuery reports each table's key with its version (tests/rewriting_proxy.py names the sources):
    the declared key is the same key, so `migrate --apply` plans and applies nothing, every run."""
    with rewriting_proxy(built_stack.endpoint, versioned_table_keys(3)) as proxy:
        runs = [migrate(replace(built_stack, endpoint=proxy), "--apply") for _ in range(2)]

    for result in runs:
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[-1] == "4 table(s): 4 nothing to migrate."
    names = [d.dataset_id for d in built_stack.client.list_datasets()]
    assert built_stack.dataset_id() + "_backup" not in names  # nothing applied, so nothing was snapshotted


def test_a_rebuild_is_refused_while_bigquery_reports_a_streaming_buffer(built_stack: LiveStack) -> None:
    """The local server never reports a streaming buffer; the proxy adds the one real BigQuery reports
    after streaming inserts (tests/rewriting_proxy.py names the source)."""
    insert(built_stack, PROFILES, [profile(n) for n in range(3)])
    edit_schema(built_stack, PROFILES, lambda cols: column(cols, "legal_name").update(mode="REQUIRED"))

    with rewriting_proxy(built_stack.endpoint, streaming_buffer(built_stack.table(PROFILES))) as proxy:
        result = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--apply")

    assert result.returncode == 1
    assert "  refused: the table has an active streaming buffer, whose rows a copy may miss" in result.stdout
    assert built_stack.client.get_table(built_stack.table(PROFILES)).schema[2].mode == "NULLABLE"
    assert len(read(built_stack, PROFILES, "tenant_id")) == 3


def _keep_suffix(stack: LiveStack) -> None:
    """write_stack draws a new dataset suffix; keep the one the tables were built under."""
    path = stack.root / f"Pulumi.{STACK}.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"]["tenant-bigquery:datasetSuffix"] = stack.suffix
    path.write_text(yaml.safe_dump(config))


def test_required_and_shorter_columns_rebuild_when_every_value_fits(built_stack: LiveStack) -> None:
    rows = [profile(n) for n in range(6)]
    insert(built_stack, PROFILES, rows)

    def change(cols: list[dict[str, Any]]) -> None:
        column(cols, "legal_name")["mode"] = "REQUIRED"
        column(cols, "country_code")["maxLength"] = "2"

    edit_schema(built_stack, PROFILES, change)

    applied = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "  data check: legal_name holds no NULL: no row may match `legal_name` IS NULL" in applied.stdout
    assert "  data check: country_code fits 2 characters: no row may match LENGTH(`country_code`) > 2" in applied.stdout
    after = read(built_stack, PROFILES, "tenant_id")
    assert [_comparable(r) for r in after] == [_comparable(r) for r in sorted(rows, key=lambda r: r["tenant_id"])]
    live = {f.name: f for f in built_stack.client.get_table(built_stack.table(PROFILES)).schema}
    assert (live["legal_name"].mode, live["country_code"].max_length) == ("REQUIRED", 2)
    assert_verify_passes(built_stack)


def test_data_that_does_not_fit_is_refused_and_the_table_is_untouched(built_stack: LiveStack) -> None:
    rows = [profile(n) for n in range(5)] + [profile(5, legal_name=None), profile(6, country_code="USA")]
    insert(built_stack, PROFILES, rows)
    before = read(built_stack, PROFILES, "tenant_id")
    schema_before = built_stack.client.get_table(built_stack.table(PROFILES)).schema

    def change(cols: list[dict[str, Any]]) -> None:
        column(cols, "legal_name")["mode"] = "REQUIRED"
        column(cols, "country_code")["maxLength"] = "2"

    edit_schema(built_stack, PROFILES, change)

    applied = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert applied.returncode == 1
    assert f"✗ tenants.{PROFILES}: refused, nothing changed" in applied.stdout
    assert "  refused: 1 row(s) fail the check legal_name holds no NULL (e.g. None)" in applied.stdout
    assert "  refused: 1 row(s) fail the check country_code fits 2 characters (e.g. 'USA')" in applied.stdout
    assert read(built_stack, PROFILES, "tenant_id") == before
    assert built_stack.client.get_table(built_stack.table(PROFILES)).schema == schema_before
    datasets = [d.dataset_id for d in built_stack.client.list_datasets() if built_stack.suffix in d.dataset_id]
    assert datasets == [built_stack.dataset_id()]  # not even a snapshot was taken


def test_dropping_a_clustering_column_needs_the_approval_then_rebuilds(built_stack: LiveStack) -> None:
    rows = [profile(n) for n in range(4)]
    insert(built_stack, PROFILES, rows)
    edit_schema(built_stack, PROFILES, lambda cols: cols.remove(column(cols, "status")))
    edit_declaration(built_stack, PROFILES, clustering=["tenant_id"])

    refused = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert refused.returncode == 1
    assert "  refused: the rebuild would drop status and their data: approve the table" in refused.stdout
    assert len(read(built_stack, PROFILES, "tenant_id")) == 4

    path = built_stack.root / f"Pulumi.{STACK}.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"]["tenant-bigquery:approveDataLoss"] = [f"tenants.{PROFILES}"]
    path.write_text(yaml.safe_dump(config))
    applied = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = read(built_stack, PROFILES, "tenant_id")
    expected = [{k: v for k, v in row.items() if k != "status"} for row in rows]
    assert [_comparable(r) for r in after] == [_comparable(r) for r in expected]
    assert built_stack.client.get_table(built_stack.table(PROFILES)).clustering_fields == ["tenant_id"]


@pytest.mark.parametrize(
    ("grant", "refusal"),
    [
        (
            lambda stack: list(
                stack.client.query_and_wait(
                    f"CREATE ROW ACCESS POLICY ops ON `{stack.table(PROFILES)}` "
                    "GRANT TO ('group:ops@acme.example') FILTER USING (status = 'ACTIVE')"
                )
            ),
            "  refused: the table has 1 row access policies, which a rebuild does not carry over",
        ),
        (
            lambda stack: stack.client.set_iam_policy(
                stack.table(PROFILES),
                _policy(stack, {"role": "roles/bigquery.dataViewer", "members": {"group:ops@acme.example"}}),
            ),
            "  refused: the table has 1 table IAM bindings, which a rebuild does not carry over",
        ),
    ],
    ids=["row-access-policy", "iam-binding"],
)
def test_a_rebuild_is_refused_when_it_would_not_carry_access_over(
    built_stack: LiveStack, grant: Any, refusal: str
) -> None:
    insert(built_stack, PROFILES, [profile(n) for n in range(3)])
    grant(built_stack)
    edit_schema(built_stack, PROFILES, lambda cols: column(cols, "legal_name").update(mode="REQUIRED"))

    result = migrate(built_stack, "--tables", PROFILES, "--apply")

    assert result.returncode == 1
    assert refusal in result.stdout
    assert built_stack.client.get_table(built_stack.table(PROFILES)).schema[2].mode == "NULLABLE"
    # A row access policy hides every row from anyone it does not grant (this test's client too): what a
    # copy would have lost. Lifted, all rows are still there.
    list(built_stack.client.query_and_wait(f"DROP ALL ROW ACCESS POLICIES ON `{built_stack.table(PROFILES)}`"))
    assert len(read(built_stack, PROFILES, "tenant_id")) == 3


def _policy(stack: LiveStack, binding: dict[str, Any]) -> Any:
    policy = stack.client.get_iam_policy(stack.table(PROFILES))
    policy.bindings = [binding]
    return policy


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    """Stop the run like a killed job (KeyboardInterrupt) just before the first step `when` matches."""
    run_step = live_migrate._run_step

    def interrupted(conn: Any, plan: Any, step: Any) -> None:
        if when(step):
            raise KeyboardInterrupt
        run_step(conn, plan, step)

    monkeypatch.setattr(live_migrate, "_run_step", interrupted)


def _migrate_in_process(stack: LiveStack) -> None:
    catalog = load_catalog(stack.root)
    settings = load_settings(stack.root, STACK, catalog)
    table = next(t for t in catalog.tables() if t.table_id == QUEUE)
    live_migrate.migrate(live.connect(settings.project, stack.endpoint), settings, [table], apply=True)


def _new_partitioning(stack: LiveStack) -> list[dict[str, Any]]:
    rows = [queue_entry(n) for n in range(12)]
    insert(stack, QUEUE, rows)
    edit_declaration(stack, QUEUE, partitioning={"field": "scheduled_time", "type": "MONTH", "expiration_days": 90})
    return rows


def test_a_rebuild_interrupted_before_the_drop_leaves_the_original_intact(
    built_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    _interrupt_at(monkeypatch, lambda step: step.kind == "count")  # the copy is made, not yet counted

    with pytest.raises(KeyboardInterrupt):
        _migrate_in_process(built_stack)

    assert read(built_stack, QUEUE, "queue_entry_id") == before
    live_table = built_stack.client.get_table(built_stack.table(QUEUE))
    assert live_table.time_partitioning.type_ == "DAY"
    tables = [t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())]
    assert not [t for t in tables if "__migrate_" in t]  # the partial copy was deleted
    monkeypatch.undo()
    finished = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert [_comparable(r) for r in read(built_stack, QUEUE, "queue_entry_id")] == [_comparable(r) for r in before]


def test_a_rebuild_interrupted_after_the_drop_is_finished_by_the_next_run(
    built_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    _interrupt_at(monkeypatch, lambda step: "RENAME TO" in step.action)

    with pytest.raises(KeyboardInterrupt) as stopped:
        _migrate_in_process(built_stack)

    tables = [t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())]
    copies = [t for t in tables if "__migrate_" in t and not t.endswith("__migrate_lock")]
    assert len(copies) == 1  # the original is gone; the counted copy holds every row
    # Not a safe state: the lock stays, and the message says how to take it over.
    assert f"{QUEUE}__migrate_lock" in tables
    run_id = re.search(r"--break-lock (\S+)`", str(stopped.value)).group(1)  # type: ignore[union-attr]
    monkeypatch.undo()
    dry = migrate(built_stack, "--tables", QUEUE)
    copy = f"{built_stack.dataset_id()}.{copies[0]}"
    assert f"  1. ALTER TABLE `{built_stack.project}.{copy}` RENAME TO `{QUEUE}`" in dry.stdout
    assert f"is locked by run {run_id} " in dry.stdout
    refused = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"--apply --break-lock {run_id}`" in refused.stdout

    finished = migrate(built_stack, "--tables", QUEUE, "--apply", "--break-lock", run_id)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert [_comparable(r) for r in read(built_stack, QUEUE, "queue_entry_id")] == [_comparable(r) for r in before]
    assert built_stack.client.get_table(built_stack.table(QUEUE)).time_partitioning.type_ == "MONTH"
    assert_verify_passes(built_stack)


# ---------------------------------------------------------------- faults between the CLI and the server


def test_one_503_of_the_row_access_policy_lookup_is_retried(built_stack: LiveStack) -> None:
    """rowAccessPolicies.list has no client call (infra/live_migrate.py `read_live` calls the REST method);
    it goes through the same retry as every other call, so one 503 (BigQuery's backendError, which
    google-cloud-bigquery retries: retry.py `_should_retry`) does not end the dry run."""
    _new_partitioning(built_stack)
    once = Fault(method="GET", path=r"/rowAccessPolicies$", status=503, times=1)
    with rewriting_proxy(built_stack.endpoint, faults=[once]) as proxy:
        result = migrate(replace(built_stack, endpoint=proxy), "--tables", QUEUE)

    assert once.count == 1
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INSERT INTO" in result.stdout


def copy_query(stack: LiveStack) -> str:
    """The start of jobs.query's body for the rebuild's copy, not the history row (whose parameters quote the
    plan's steps): google-cloud-bigquery sends `{"query": ...}` through json.dumps' default separators
    (google/cloud/_http `api_request`)."""
    return f'"query": "INSERT INTO `{stack.table(QUEUE)}__migrate_'


def test_a_persistent_503_of_a_query_ends_within_the_request_deadline(built_stack: LiveStack) -> None:
    """query_and_wait's job_retry restarts a query for 40 minutes by default (google-cloud-bigquery
    retry.py DEFAULT_JOB_RETRY); with the request deadline it ends in seconds, the rebuild undone. As a
    process, so the old wait fails the test at its timeout."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    unavailable = Fault(method="POST", path=r"/queries$", body=copy_query(built_stack), status=503)
    short = {"TENANT_BIGQUERY_REQUEST_SECONDS": "1", "TENANT_BIGQUERY_RUN_SECONDS": "60"}
    with rewriting_proxy(built_stack.endpoint, faults=[unavailable]) as proxy:
        started = time.monotonic()
        result = replace(built_stack, endpoint=proxy).cli(
            "migrate", "--stack", STACK, "--tables", QUEUE, "--apply", env=short, process=True, timeout=90
        )
        seconds = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"answered 503 Service Unavailable to POST /bigquery/v2/projects/{built_stack.project}/queries, retried "
        "for 1 s: Fault injected by the test proxy: Service Unavailable; the original table is untouched and the "
        "partial copy"
    ) in result.stdout
    assert seconds < 45
    assert read(built_stack, QUEUE, "queue_entry_id") == before
    assert not [t for t in built_stack.client.list_tables(built_stack.dataset_id()) if "__migrate_" in t.table_id]


def test_sigint_during_a_rebuild_prints_the_state_of_the_table(built_stack: LiveStack) -> None:
    """The proxy holds the copy's INSERT, so the signal arrives while the rebuild runs; the process then
    deletes the partial copy and says so, exiting 130 as a shell reports SIGINT."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    held = Fault(method="POST", path=r"/queries$", body=copy_query(built_stack), hang=True)
    with rewriting_proxy(built_stack.endpoint, faults=[held]) as proxy:
        process = replace(built_stack, endpoint=proxy).start("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
        try:
            assert held.seen.wait(120), "the copy never started"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()

    assert process.returncode == 130, stderr
    assert re.fullmatch(
        rf"interrupted: {re.escape(built_stack.table(QUEUE))}: stopped by SIGINT \(Ctrl-C\); the original table is "
        rf"untouched and the partial copy {re.escape(built_stack.table(QUEUE))}__migrate_\w+ was deleted",
        stderr.splitlines()[-1],
    ), stderr
    assert "Aborted!" not in stderr
    assert read(built_stack, QUEUE, "queue_entry_id") == before
    assert not [t for t in built_stack.client.list_tables(built_stack.dataset_id()) if "__migrate_" in t.table_id]


def test_the_snapshot_migrate_takes_expires_when_the_readme_says(built_stack: LiveStack) -> None:
    section = (REPO_ROOT / "README.md").read_text().split("### Lossless schema changes: `migrate`")[1]
    [days] = re.findall(r"expiring after (\d+) days", section.split("\n### ")[0])
    insert(built_stack, PROFILES, [profile(n) for n in range(2)])
    edit_schema(built_stack, PROFILES, lambda cols: column(cols, "legal_name").update(name="registered_name"))
    edit_declaration(built_stack, PROFILES, renamed_columns={"registered_name": "legal_name"})
    started = datetime.now(UTC)

    applied = migrate(built_stack, "--tables", PROFILES, "--apply", "--format", "json")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    [table] = json.loads(applied.stdout)["tables"]
    expires = built_stack.client.get_table(table["snapshot"]).expires
    assert started + timedelta(days=int(days)) <= expires <= datetime.now(UTC) + timedelta(days=int(days))
