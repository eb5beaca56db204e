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
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery
from helpers import REPO_ROOT, invoke, resources_of
from live_server import STACK, LiveStack, make_client, stack_on, table_resource, write_stack
from rewriting_proxy import Fault, dry_run_bytes, rewriting_proxy, streaming_buffer, versioned_table_keys

from infra.bigquery_edge import live, live_migrate
from infra.model.catalog import load_catalog
from infra.model.declared import TABLE_TYPE
from infra.model.settings import load_settings

pytestmark = pytest.mark.live

QUEUE = "pipeline_execution_queue"
PROFILES = "tenant_profiles"
SUBSCRIPTIONS = "tenant_subscriptions"
# Declared wherever migrate --apply runs: it records every run there (infra/model/history.py).
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
    # The onboarding contract writes the column: the same pull request renames it there (verify dry-runs it).
    contract = built_stack.root / "contracts" / "onboarding" / "create_profile.sql"
    contract.write_text(contract.read_text().replace(" legal_name,", " registered_name,"))

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

    def interrupted(conn: Any, plan: Any, step: Any, memo: Any = None) -> None:
        if when(step):
            raise KeyboardInterrupt
        run_step(conn, plan, step, memo)

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
    _interrupt_at(monkeypatch, lambda step: step.kind == "compare")  # the copy is made, not yet compared

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


def test_a_rebuild_killed_while_the_original_is_renamed_away_is_undone_by_the_next_run(
    built_stack: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that dies without undoing anything (SIGKILL: its undo never runs) while the original is renamed
    for the copy: the next run reads the tables, renames the original back, and the one after migrates it."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    _interrupt_at(monkeypatch, lambda step: step.action.startswith("INSERT INTO"))
    monkeypatch.setattr(live_migrate, "_undo", lambda conn, plan: "killed")

    with pytest.raises(KeyboardInterrupt) as stopped:
        _migrate_in_process(built_stack)

    tables = {t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())}
    frozen = [t for t in tables if t.endswith("_original")]
    assert QUEUE not in tables and len(frozen) == 1  # the rows are only in the frozen original
    # Not a safe state: the lock stays, and the message says how to take it over.
    assert f"{QUEUE}__migrate_lock" in tables
    run_id = re.search(r"--break-lock (\S+)`", str(stopped.value)).group(1)  # type: ignore[union-attr]
    monkeypatch.undo()
    dry = migrate(built_stack, "--tables", QUEUE)
    assert (
        f"ALTER TABLE `{built_stack.project}.{built_stack.dataset_id()}.{frozen[0]}` RENAME TO `{QUEUE}`" in dry.stdout
    )
    assert f"is locked by run {run_id} " in dry.stdout
    refused = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"--apply --break-lock {run_id}`" in refused.stdout

    restored = migrate(built_stack, "--tables", QUEUE, "--apply", "--break-lock", run_id)
    assert restored.returncode == 1
    assert (
        "the original took its name back from an interrupted rebuild; run python -m infra.cli migrate --stack "
        f"{STACK} --apply" in restored.stdout
    )
    assert read(built_stack, QUEUE, "queue_entry_id") == before
    finished = migrate(built_stack, "--tables", QUEUE, "--apply")

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert [_comparable(r) for r in read(built_stack, QUEUE, "queue_entry_id")] == [_comparable(r) for r in before]
    assert built_stack.client.get_table(built_stack.table(QUEUE)).time_partitioning.type_ == "MONTH"
    assert_verify_passes(built_stack)


# ---------------------------------------------------------------- faults between the CLI and the server


def test_one_503_of_the_row_access_policy_lookup_is_retried(built_stack: LiveStack) -> None:
    """rowAccessPolicies.list has no client call (infra/bigquery_edge/live_migrate.py `read_live` calls the REST
    method); it goes through the same retry as every other call, so one 503 (BigQuery's backendError, which
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
        "for 1 s: Fault injected by the test proxy: Service Unavailable; the original took its name back from "
    ) in result.stdout
    assert "_original with every row and the partial copy " in result.stdout
    assert seconds < 45
    assert read(built_stack, QUEUE, "queue_entry_id") == before
    assert not [t for t in built_stack.client.list_tables(built_stack.dataset_id()) if "__migrate_" in t.table_id]


def sigint_while_the_copy_runs(stack: LiveStack) -> tuple[int, str]:
    """`migrate --apply` of the queue as a process, SIGINT while the proxy holds the copy's INSERT (so the signal
    arrives mid-rebuild, deterministically): its exit code and stderr."""
    held = Fault(method="POST", path=r"/queries$", body=copy_query(stack), hang=True)
    with rewriting_proxy(stack.endpoint, faults=[held]) as proxy:
        process = replace(stack, endpoint=proxy).start("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
        try:
            assert held.seen.wait(120), "the copy never started"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
    return process.returncode, stderr


def test_sigint_during_a_rebuild_prints_the_state_of_the_table(built_stack: LiveStack) -> None:
    """The proxy holds the copy's INSERT, so the signal arrives while the rebuild runs; the process then
    deletes the partial copy and says so, exiting 130 as a shell reports SIGINT."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    returncode, stderr = sigint_while_the_copy_runs(built_stack)

    assert returncode == 130, stderr
    assert re.fullmatch(
        rf"interrupted: {re.escape(built_stack.table(QUEUE))}: stopped by SIGINT \(Ctrl-C\); the original took its "
        rf"name back from {re.escape(built_stack.table(QUEUE))}__migrate_\w+_original with every row and the partial "
        rf"copy {re.escape(built_stack.table(QUEUE))}__migrate_\w+ was deleted",
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


# ---------------------------------------------------------------- the cost before the approval

TIB = 2**40
CHECKS_BYTES = 5_000_000  # the folded data checks' scan: billed as BigQuery's 10 MB minimum
COPY_BYTES = 2 * TIB  # the copy's SELECT: $12.50 at the default $6.25 per TiB


def _rebuild_with_checks(stack: LiveStack) -> None:
    """A rebuild with two data checks (REQUIRED, a shorter length): the copy, one check query."""
    insert(stack, PROFILES, [profile(n) for n in range(4)])

    def change(cols: list[dict[str, Any]]) -> None:
        column(cols, "legal_name")["mode"] = "REQUIRED"
        column(cols, "country_code")["maxLength"] = "2"

    edit_schema(stack, PROFILES, change)


def _bigquery_bytes(sql: str) -> int | None:
    """What real BigQuery's dry run would report here: the checks and the copy's SELECT read columns, the rest
    (COUNT(*) answered from metadata, DDL) nothing. The local server reports 0 for all of them."""
    if "COUNTIF(" in sql:
        return CHECKS_BYTES
    return COPY_BYTES if sql.startswith("SELECT `") else 0


def _set_config(stack: LiveStack, **values: Any) -> None:
    path = stack.root / f"Pulumi.{STACK}.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"].update({f"tenant-bigquery:{key}": value for key, value in values.items()})
    path.write_text(yaml.safe_dump(config))


def test_the_dry_run_prices_every_query_by_bigquerys_dry_run(built_stack: LiveStack) -> None:
    """Each query of the plan is priced by a dry run (tests/rewriting_proxy.py `dry_run_bytes` names the
    response's source): per statement, per table and in total, in text, JSON and markdown."""
    _rebuild_with_checks(built_stack)
    with rewriting_proxy(built_stack.endpoint, dry_run_bytes(_bigquery_bytes)) as proxy:
        through = replace(built_stack, endpoint=proxy)
        text = migrate(through, "--tables", PROFILES)
        as_json = json.loads(migrate(through, "--tables", PROFILES, "--format", "json").stdout)
        markdown = migrate(through, "--tables", PROFILES, "--format", "markdown")

    assert text.returncode == 0, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert "  cost of the data checks (one query): 4.8 MiB processed, 10.0 MiB billed, < $0.01 (dry run)" in lines
    assert (
        "     cost: 2.0 TiB processed, 2.0 TiB billed, $12.50 (dry run of its SELECT: an INSERT is billed for what it "
        "reads)" in lines
    )
    assert "  cost of the table: 2.0 TiB billed, $12.50" in lines
    assert lines[-2] == (
        "Cost: 2.0 TiB billed, $12.50 at $6.25 per TiB on demand (tenant-bigquery:onDemandPricePerTib); cap per "
        "--apply: none (tenant-bigquery:migrationMaxBytes)."
    )
    (table,) = as_json["tables"]
    billed = COPY_BYTES + 10 * 2**20  # the checks' 5 MB bill as BigQuery's 10 MB minimum
    assert (table["cost"]["bytes_billed"], table["cost"]["unknown"]) == (billed, 0)
    assert table["cost"]["usd"] == pytest.approx(billed / TIB * 6.25)
    assert as_json["cost"] == {
        "usd_per_tib": 6.25,
        "max_bytes": None,
        "bytes_processed": COPY_BYTES + CHECKS_BYTES,
        "bytes_billed": billed,
        "usd": pytest.approx(billed / TIB * 6.25),
        "unknown": 0,
    }
    assert f"| tenants.{PROFILES} | to migrate | 2.0 TiB | $12.50 |" in markdown.stdout.splitlines()
    assert "Cost: 2.0 TiB billed, $12.50 at $6.25 per TiB" in markdown.stdout

    _set_config(built_stack, onDemandPricePerTib=5)
    with rewriting_proxy(built_stack.endpoint, dry_run_bytes(_bigquery_bytes)) as proxy:
        priced = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES)
    assert "  cost of the table: 2.0 TiB billed, $10.00" in priced.stdout.splitlines()


def test_a_cost_the_server_does_not_report_is_unknown_never_0(built_stack: LiveStack) -> None:
    """A dry run answered without totalBytesProcessed, and one refused (400, BigQuery's answer to a query it
    cannot run), go through the same code path: unknown, never 0, and under a cap refused (fail closed)."""
    _rebuild_with_checks(built_stack)
    silent = dry_run_bytes(lambda sql: None if sql.startswith("SELECT `") else _bigquery_bytes(sql))
    refused = Fault(method="POST", path=r"/jobs$", body="COUNTIF(", status=400)
    with rewriting_proxy(built_stack.endpoint, silent, faults=[refused]) as proxy:
        text = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES)
        (table,) = json.loads(
            migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--format", "json").stdout
        )["tables"]

    assert text.returncode == 0, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert "     cost: unknown: the dry run reported no bytes processed" in lines
    assert any(
        line.startswith("  cost of the data checks (one query): unknown: the dry run was refused: ") for line in lines
    )
    assert "  cost of the table: unknown" in lines
    assert lines[-2].startswith("Cost: unknown (2 quer(ies) unknown) at $6.25 per TiB")
    assert (table["cost"]["bytes_billed"], table["cost"]["usd"], table["cost"]["unknown"]) == (None, None, 2)

    _set_config(built_stack, migrationMaxBytes=TIB)
    schema_before = built_stack.client.get_table(built_stack.table(PROFILES)).schema
    with rewriting_proxy(built_stack.endpoint, silent) as proxy:
        capped = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--apply")

    assert capped.returncode == 1
    assert (
        "  refused: the cost of 1 of its queries is unknown (step 4: the dry run reported no bytes processed) and "
        f"tenant-bigquery:migrationMaxBytes = {TIB} caps what one --apply may process, so it is refused (fail "
        "closed): take the cap out of the stack for the run that migrates it"
    ) in capped.stdout.splitlines()
    assert built_stack.client.get_table(built_stack.table(PROFILES)).schema == schema_before


def test_a_table_over_the_cap_is_refused_before_anything_runs(built_stack: LiveStack) -> None:
    _rebuild_with_checks(built_stack)
    _set_config(built_stack, migrationMaxBytes=TIB)
    before = read(built_stack, PROFILES, "tenant_id")
    # The run's history row is written (the first fault claims it); every other statement counts.
    history = Fault(method="POST", path=r"/queries$", body="migration_history", before=lambda: None)
    queries = Fault(method="POST", path=r"/queries$", before=lambda: None)
    with rewriting_proxy(built_stack.endpoint, dry_run_bytes(_bigquery_bytes), faults=[history, queries]) as proxy:
        refused = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--apply")

    assert refused.returncode == 1
    assert f"✗ tenants.{PROFILES}: refused, nothing changed" in refused.stdout
    assert (
        f"  refused: estimated {COPY_BYTES + 10 * 2**20} bytes billed (2.0 TiB) exceed "
        f"tenant-bigquery:migrationMaxBytes = {TIB} (1.0 TiB): raise the cap or migrate the table in a run of its own"
    ) in refused.stdout.splitlines()
    assert queries.count == 0  # not even the data checks scanned the table
    assert read(built_stack, PROFILES, "tenant_id") == before
    datasets = [d.dataset_id for d in built_stack.client.list_datasets() if built_stack.suffix in d.dataset_id]
    assert datasets == [built_stack.dataset_id()]  # no snapshot either

    _set_config(built_stack, migrationMaxBytes=3 * TIB)
    with rewriting_proxy(built_stack.endpoint, dry_run_bytes(_bigquery_bytes)) as proxy:
        applied = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "cap per --apply: 3298534883328 bytes (3.0 TiB)" in applied.stdout.splitlines()[-2]


def test_the_data_checks_of_a_rebuild_scan_the_table_once(built_stack: LiveStack) -> None:
    """Two checks, one query: the first fault claims every statement holding the second check's predicate,
    the second every other one holding the first's. Before: one COUNT(*) query per check."""
    _rebuild_with_checks(built_stack)
    both = Fault(method="POST", path=r"/queries$", body="LENGTH(`country_code`) > 2", before=lambda: None)
    only_first = Fault(method="POST", path=r"/queries$", body="`legal_name` IS NULL", before=lambda: None)
    with rewriting_proxy(built_stack.endpoint, faults=[both, only_first]) as proxy:
        applied = migrate(replace(built_stack, endpoint=proxy), "--tables", PROFILES, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (both.count, only_first.count) == (1, 0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("migrationMaxBytes", 0, "0 caps nothing: give the bytes one migrate --apply may process, a positive integer"),
        ("migrationMaxBytes", "10GiB", "must be a whole number; got '10GiB'"),
        ("onDemandPricePerTib", -1, "-1.0 is no price: give BigQuery's on-demand USD per TiB of your location"),
        ("onDemandPricePerTib", "cheap", "must be a number; got 'cheap'"),
    ],
)
def test_a_bad_cost_setting_is_one_line_naming_file_and_key(
    repo_copy: Path, key: str, value: Any, message: str
) -> None:
    path = repo_copy / "Pulumi.dev.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"][f"tenant-bigquery:{key}"] = value
    path.write_text(yaml.safe_dump(config))

    result = invoke("validate", "--root", str(repo_copy))

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Pulumi.dev.yaml:config.tenant-bigquery:{key}: {message}" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the ways a rebuild lost rows (issue 18)


def _gone_watcher(stack: LiveStack, gate: Fault) -> threading.Thread:
    """Opens `gate` (every request held from then on) the moment the table is missing, read straight from
    the server: whatever statement made it so, the run is then stuck where only a leftover holds the rows."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if live.or_none(lambda: stack.client.get_table(stack.table(QUEUE))) is None:
                gate.path = ""
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_lost_answer_to_the_statement_that_moves_the_original_loses_nothing(built_stack: LiveStack) -> None:
    """Issue 18, way 1: the statement that takes the original away (today's DROP, the freeze's RENAME) is
    carried out but its answer never comes, and the run is stopped (SIGINT: a cancelled CI job). The run
    reads the tables again instead of assuming the statement failed: every row is back in the table."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    # The statement itself (the client's json.dumps writes `"query": "`), not the history row that quotes it.
    lost = Fault(
        method="POST", path=r"/queries$", body=f'"query": "ALTER TABLE `{built_stack.table(QUEUE)}` RENAME', lost=True
    )
    with rewriting_proxy(built_stack.endpoint, faults=[lost]) as proxy:
        process = replace(built_stack, endpoint=proxy).start("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
        try:
            assert lost.seen.wait(120), "the original was never moved"
            give_up = time.monotonic() + 60
            while live.or_none(lambda: built_stack.client.get_table(built_stack.table(QUEUE))) is not None:
                assert time.monotonic() < give_up, "the server never carried the statement out"
                time.sleep(0.01)  # the server carried the statement out; its answer is held
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()

    assert process.returncode == 130, stderr
    assert "the original took its name back" in stderr.splitlines()[-1], stderr
    assert read(built_stack, QUEUE, "queue_entry_id") == before
    assert not [t for t in built_stack.client.list_tables(built_stack.dataset_id()) if "__migrate_" in t.table_id]
    finished = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert [_comparable(r) for r in read(built_stack, QUEUE, "queue_entry_id")] == [_comparable(r) for r in before]


def test_a_leftover_holding_the_rows_survives_pulumi_up_creating_the_table_again(built_stack: LiveStack) -> None:
    """Issue 18, way 2: the run is killed (SIGKILL) while only a leftover holds the rows, then pulumi up
    creates the table again, empty. The next migrate refuses, names the state and the steps that continue,
    and deletes nothing; following those steps migrates every row."""
    _new_partitioning(built_stack)
    before = read(built_stack, QUEUE, "queue_entry_id")
    gate = Fault(path=r"^(?!)", hang=True)  # matches nothing until the watcher opens it
    with rewriting_proxy(built_stack.endpoint, faults=[gate]) as proxy:
        watcher = _gone_watcher(built_stack, gate)
        process = replace(built_stack, endpoint=proxy).start("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
        try:
            assert gate.seen.wait(120), "the table never went missing"
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
        finally:
            process.kill()
            watcher.join()
    resource = next(r for r in resources_of(built_stack.plan(), TABLE_TYPE) if r.inputs["tableId"] == QUEUE)
    built_stack.client.create_table(bigquery.Table.from_api_repr(table_resource(dict(resource.inputs))))  # pulumi up

    # The killed run still holds the table's lock: named, and broken only on request.
    locked = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert locked.returncode == 1, locked.stdout
    run_id = re.search(r"--break-lock (\S+)`", locked.stdout).group(1)  # type: ignore[union-attr]
    refused = migrate(built_stack, "--tables", QUEUE, "--apply", "--break-lock", run_id)

    assert refused.returncode == 1, refused.stdout
    assert "after the rebuild of" in refused.stdout and f"DROP TABLE `{built_stack.table(QUEUE)}`" in refused.stdout
    assert f"python -m infra.cli migrate --stack {STACK} --apply" in refused.stdout
    leftovers = [
        t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id()) if "__migrate_" in t.table_id
    ]
    assert leftovers, "the leftover holding the rows was dropped"
    holder = f"{built_stack.project}.{built_stack.dataset_id()}.{leftovers[-1]}"
    (count,) = built_stack.client.query_and_wait(f"SELECT COUNT(*) FROM `{holder}`")
    assert count[0] == len(before)
    # The steps it printed: the new table is empty, so drop it; then migrate.
    built_stack.client.delete_table(built_stack.table(QUEUE))
    assert migrate(built_stack, "--tables", QUEUE, "--apply").returncode == 1  # takes its name back
    finished = migrate(built_stack, "--tables", QUEUE, "--apply")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert [_comparable(r) for r in read(built_stack, QUEUE, "queue_entry_id")] == [_comparable(r) for r in before]


def test_a_table_only_named_like_a_leftover_is_never_dropped(built_stack: LiveStack) -> None:
    """Issue 18, way 3: leftovers were found by the name prefix alone. A table of someone else's named
    `<table>__migrate_<anything>`, or even `<table>__migrate_<a stamp>` but without the run's labels, stays."""
    _new_partitioning(built_stack)
    dataset = built_stack.dataset_id()
    names = [f"{QUEUE}__migrate_keep", f"{QUEUE}__migrate_20250101T000000000Z"]
    for name in names:
        list(
            built_stack.client.query_and_wait(f"CREATE TABLE `{built_stack.project}.{dataset}.{name}` AS SELECT 1 AS x")
        )

    applied = migrate(built_stack, "--tables", QUEUE, "--apply")

    assert applied.returncode == 0, applied.stdout + applied.stderr
    tables = {t.table_id for t in built_stack.client.list_tables(dataset)}
    assert set(names) <= tables
    for name in names:
        (row,) = built_stack.client.query_and_wait(f"SELECT x FROM `{built_stack.project}.{dataset}.{name}`")
        assert row[0] == 1


def test_validate_refuses_a_declared_id_a_rebuild_could_take_for_its_own(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    document = yaml.safe_load(declaration.read_text())
    first = next(iter(document["tables"]))
    document["tables"][f"{first}__migrate_keep"] = document["tables"].pop(first)
    declaration.write_text(yaml.safe_dump(document, sort_keys=False))
    schemas = repo_copy / "schemas" / "tenants"
    (schemas / f"{first}.json").rename(schemas / f"{first}__migrate_keep.json")

    result = invoke("validate", "--root", str(repo_copy))

    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if "__migrate_" in line]
    assert (
        f"stacks/tenants.yaml:tables.{first}__migrate_keep: table id '{first}__migrate_keep' holds '__migrate_'" in line
    )


# ---------------------------------------------------------------- writers during migrate --apply


@dataclass
class Writer:
    """INSERT, UPDATE and DELETE through DML, one at a time, as the platform's queue writers do; every write
    BigQuery acknowledged is applied to `expected` (queue_entry_id -> priority). A failed write (the table
    is renamed away during a rebuild's copy: not found) is retried after a pause, as the README advises."""

    client: bigquery.Client
    table_id: str
    expected: dict[str, int]
    writes: int = 0
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    seed: int = 0

    def run(self, limit: int) -> None:
        chooser = random.Random(self.seed)
        n = 0
        while not self.stop.is_set() and self.writes < limit:
            n += 1
            kind = chooser.choice(("insert", "insert", "update", "delete")) if self.expected else "insert"
            key = chooser.choice(sorted(self.expected)) if kind != "insert" else f"w{self.seed}-{n}"
            value = chooser.randrange(1_000_000)
            sql = {
                "insert": f"INSERT INTO `{self.table_id}` (tenant_id, queue_entry_id, run_id, pipeline_id, "
                "pipeline_version, scheduled_time, priority, state, attempt, max_attempts, enqueued_at, "
                "created_at, updated_at) VALUES ('t0', @key, 'r', 'p', 1, TIMESTAMP '2026-11-02 08:00:00', "
                "@value, 'READY', 0, 5, TIMESTAMP '2026-11-02 07:00:00', TIMESTAMP '2026-11-02 07:00:00', "
                "TIMESTAMP '2026-11-02 07:00:00')",
                "update": f"UPDATE `{self.table_id}` SET priority = @value WHERE queue_entry_id = @key",
                "delete": f"DELETE FROM `{self.table_id}` WHERE queue_entry_id = @key",
            }[kind]
            parameters = [
                bigquery.ScalarQueryParameter("key", "STRING", key),
                bigquery.ScalarQueryParameter("value", "INT64", value),
            ]
            try:
                list(self.client.query_and_wait(sql, job_config=bigquery.QueryJobConfig(query_parameters=parameters)))
            except api_exceptions.GoogleAPICallError:
                self.errors += 1
                time.sleep(0.02)
                continue
            self.writes += 1
            if kind == "delete":
                del self.expected[key]
            else:
                self.expected[key] = value


def held_by(stack: LiveStack) -> dict[str, int]:
    rows = stack.client.query_and_wait(f"SELECT queue_entry_id, priority FROM `{stack.table(QUEUE)}`")
    return {row[0]: int(row[1]) for row in rows}


def migrate_while_writing(stack: LiveStack, writes: int, seed: int, before: int = 5) -> tuple[Any, Writer]:
    """`migrate --apply` with a writer running: `before` writes first, then migrate, the writer going on
    throughout and after it until `writes` are acknowledged (a test stops it shortly after migrate)."""
    writer = Writer(make_client(stack.endpoint, stack.project), stack.table(QUEUE), held_by(stack), seed=seed)
    thread = threading.Thread(target=writer.run, args=(writes,), daemon=True)
    thread.start()
    while writer.writes < before and thread.is_alive():
        time.sleep(0.01)
    try:
        result = migrate(stack, "--tables", QUEUE, "--apply")
    finally:
        if before < writes // 2:
            time.sleep(0.2)  # a few writes to the migrated table too
            writer.stop.set()
        thread.join()
    return result, writer


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda stack: edit_declaration(
                stack, QUEUE, partitioning={"field": "scheduled_time", "type": "MONTH", "expiration_days": 90}
            ),
            id="rebuild",
        ),
        pytest.param(
            lambda stack: edit_schema(stack, QUEUE, lambda cols: column(cols, "attempt").update(type="NUMERIC")),
            id="in-place",
        ),
    ],
)
def test_every_acknowledged_write_is_in_the_table_after_migrate(built_stack: LiveStack, change: Any) -> None:
    """Issue 18, way 5: a row inserted between the count and the drop was lost, an UPDATE or DELETE during the
    copy undone. With a writer running through the whole run, the table afterwards holds exactly what the
    acknowledged writes imply, whether migrate finished or refused."""
    insert(built_stack, QUEUE, [queue_entry(n) for n in range(12)])
    change(built_stack)

    result, writer = migrate_while_writing(built_stack, writes=300, seed=1)

    assert held_by(built_stack) == writer.expected
    assert result.returncode == 0, result.stdout + result.stderr
    assert writer.writes > 5
