"""The migrate planner on fixtures, without a server: which change takes which lossless path, and why.

The live side is the declared table with one thing changed, as the API would report it.
BigQuery rules behind each path (see infra/analysis/migration.py):
https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language,
https://cloud.google.com/bigquery/docs/reference/standard-sql/conversion_rules,
https://cloud.google.com/bigquery/docs/managing-table-schemas.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, REPO_ROOT, invoke

from infra.analysis.migration import (
    MIGRATED_PROPERTIES,
    Leftover,
    LiveTable,
    TablePlan,
    declared_state,
    leftover_name,
    plan_table,
)
from infra.analysis.resourcediff import CLASSIFIED_TABLE_PROPERTIES
from infra.model.catalog import load_catalog
from infra.model.schema import Column
from infra.model.settings import Settings, load_settings
from infra.model.table_properties import Constraints, ForeignKey, Table, TableState, TimePartitioningArgs

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
TABLE_ID = "acme-data-platform-prod.tenants.pipeline_execution_queue"


@pytest.fixture(scope="module")
def prod() -> tuple[Table, Settings]:
    catalog = load_catalog(FIXTURE_ROOT)
    table = next(t for t in catalog.tables() if t.table_id == "pipeline_execution_queue")
    return table, load_settings(FIXTURE_ROOT, "prod", catalog)


def live_of(table: Table, settings: Settings, **changes: Any) -> LiveTable:
    state, _ = declared_state(table, settings)
    keys = ("streaming_buffer", "row_access_policies", "leftovers", "run", "created")
    facts = {k: changes.pop(k) for k in keys if k in changes}
    return LiveTable(TABLE_ID, dataclasses.replace(state, **changes), **facts)


def with_column(columns: tuple[Column, ...], column: str, **changes: Any) -> tuple[Column, ...]:
    return tuple(dataclasses.replace(c, **changes) if c.name == column else c for c in columns)


def plan(table: Table, settings: Settings, live: LiveTable) -> TablePlan:
    return plan_table(table, settings, live, NOW)


def test_a_table_as_declared_plans_nothing(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    result = plan(table, settings, live_of(table, settings))
    assert result.empty and result.notes == ()


def test_a_missing_table_is_left_to_pulumi_up(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    result = plan(table, settings, LiveTable(TABLE_ID, None))
    assert result.empty and result.notes == ("not found: pulumi up creates it",)


def test_a_rename_hint_renames_in_place_and_is_done_once_the_old_column_is_gone(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    hinted = dataclasses.replace(table, renamed_columns={"lease_owner": "leased_by"})
    live = live_of(table, settings, schema=with_column(table.schema, "lease_owner", name="leased_by"))

    result = plan(hinted, settings, live)

    assert [s.action for s in result.steps] == [f"ALTER TABLE `{TABLE_ID}` RENAME COLUMN `leased_by` TO `lease_owner`"]
    assert plan(hinted, settings, live_of(table, settings)).empty  # already renamed: nothing to do


def test_renaming_a_clustering_column_rebuilds(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    hinted = dataclasses.replace(table, renamed_columns={"state": "queue_state"})
    live = live_of(
        table,
        settings,
        schema=with_column(table.schema, "state", name="queue_state"),
        clustering=("tenant_id", "queue_state"),
    )

    result = plan(hinted, settings, live)

    kinds = ["create", "patch", "sql", "sql", "compare", "sql", "patch", "recheck", "sql"]
    assert [s.kind for s in result.steps] == kinds
    copy = f"{TABLE_ID}__migrate_20261129T200000000Z"
    assert result.rebuild_table == copy
    # The original is renamed away (frozen) before the copy and dropped only last, after the swap.
    assert (
        result.steps[2].action
        == f"ALTER TABLE `{TABLE_ID}` RENAME TO `pipeline_execution_queue__migrate_20261129T200000000Z_original`"
    )
    assert "`queue_state`" in result.steps[3].action and f"FROM `{copy}_original`" in result.steps[3].action
    assert "FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(" in result.steps[4].payload["source"]
    assert result.steps[5].action == f"ALTER TABLE `{copy}` RENAME TO `pipeline_execution_queue`"
    assert result.steps[8].action == f"DROP TABLE `{copy}_original`"
    assert result.steps[0].payload["labels"]["tenant-bigquery-migrate-role"] == "copy"


KEYED = Constraints(("queue_entry_id",), (ForeignKey("fk_tenant", "tenant_id", "tenant_profiles", "tenant_id"),))


def test_a_rebuild_of_a_keyed_table_unkeys_the_original_and_keys_the_copy_once_it_has_the_name(
    prod: tuple[Table, Settings],
) -> None:
    """BigQuery renames no table with a primary key (TABLE_CONSTRAINTS view, limitations): the original loses
    its key before it is renamed away, the copy is created without keys and gets the declared ones last."""
    table, settings = prod
    keyed = dataclasses.replace(table, constraints=KEYED, renamed_columns={"state": "queue_state"})
    state, _ = declared_state(keyed, settings)
    live = live_of(
        keyed,
        settings,
        schema=with_column(table.schema, "state", name="queue_state"),
        clustering=("tenant_id", "queue_state"),
        table_constraints=state.table_constraints,
    )

    steps = plan(keyed, settings, live).steps

    assert "tableConstraints" not in steps[0].payload
    unkey = next(i for i, s in enumerate(steps) if s.action == f"ALTER TABLE `{TABLE_ID}` DROP PRIMARY KEY")
    freeze = next(i for i, s in enumerate(steps) if s.action.startswith(f"ALTER TABLE `{TABLE_ID}` RENAME TO"))
    swap = next(i for i, s in enumerate(steps) if s.action.endswith("RENAME TO `pipeline_execution_queue`"))
    key = next(i for i, s in enumerate(steps) if "tableConstraints" in s.payload)
    assert unkey < freeze < swap < key
    assert steps[key].payload["tableConstraints"] == {
        "primaryKey": {"columns": ["queue_entry_id"]},
        "foreignKeys": [
            {
                "name": "fk_tenant",
                "referencedTable": {
                    "projectId": "acme-data-platform-prod",
                    "datasetId": "tenants",
                    "tableId": "tenant_profiles",
                },
                "columnReferences": [{"referencingColumn": "tenant_id", "referencedColumn": "tenant_id"}],
            }
        ],
    }


def test_a_key_column_is_renamed_or_widened_by_a_rebuild(prod: tuple[Table, Settings]) -> None:
    """BigQuery neither renames nor retypes a column of a key in place (TABLE_CONSTRAINTS view, limitations)."""
    table, settings = prod
    keyed = dataclasses.replace(table, constraints=Constraints(("priority",)))
    state, _ = declared_state(keyed, settings)
    widened = dataclasses.replace(keyed, schema=with_column(table.schema, "priority", type="NUMERIC"))
    narrow = live_of(keyed, settings, table_constraints=state.table_constraints)
    assert plan(widened, settings, narrow).rebuild_table is not None
    unkeyed = dataclasses.replace(widened, constraints=None)
    assert plan(unkeyed, settings, live_of(table, settings)).rebuild_table is None


def test_widening_in_place_and_on_a_partitioning_column(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    narrow = with_column(table.schema, "priority", type="INT64")
    numeric = dataclasses.replace(table, schema=with_column(table.schema, "priority", type="NUMERIC"))

    result = plan(numeric, settings, live_of(table, settings, schema=narrow))

    assert [s.action for s in result.steps] == [
        f"ALTER TABLE `{TABLE_ID}` ALTER COLUMN `priority` SET DATA TYPE NUMERIC"
    ]


@pytest.mark.parametrize(
    ("live_type", "declared_type", "expected"),
    [
        ("STRING", "INT64", "rebuild"),  # every value checked by a SAFE_CAST round trip
        ("INT64", "BOOL", "rebuild"),
        ("DATE", "INT64", "refused"),  # no cast at all
        ("JSON", "STRING", "refused"),  # JSON values cannot be compared after a round trip
    ],
)
def test_other_type_changes(prod: tuple[Table, Settings], live_type: str, declared_type: str, expected: str) -> None:
    table, settings = prod
    declared = dataclasses.replace(table, schema=with_column(table.schema, "run_id", type=declared_type))
    live = live_of(table, settings, schema=with_column(table.schema, "run_id", type=live_type))

    result = plan(declared, settings, live)

    if expected == "rebuild":
        assert result.rebuild_table is not None
        (check,) = result.checks
        assert "SAFE_CAST(`run_id` AS " in check.predicate
    else:
        assert result.refusals and not result.steps


def test_a_new_required_column_is_refused_with_the_way_through(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    declared = dataclasses.replace(table, schema=(*table.schema, Column("shard", "INT64", "REQUIRED")))

    result = plan(declared, settings, live_of(table, settings))

    (why,) = result.refusals
    assert why.startswith("new column shard is REQUIRED") and why.endswith(
        "then declare it REQUIRED and run migrate again"
    )


def test_a_new_partitioning_is_a_rebuild_and_a_removed_expiration_a_patch(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    month: TimePartitioningArgs = {"type": "MONTH", "field": "scheduled_time", "expiration_ms": 90 * 86_400_000}
    assert plan(table, settings, live_of(table, settings, time_partitioning=month)).rebuild_table is not None

    assert table.time_partitioning is not None
    kept = dataclasses.replace(table.time_partitioning, expiration_days=None, keep_forever=True)
    forever = dataclasses.replace(table, time_partitioning=kept)
    result = plan(forever, settings, live_of(table, settings))
    assert [s.action for s in result.steps] == [f"tables.patch {TABLE_ID}: timePartitioning.expirationMs = null"]


@pytest.mark.parametrize(
    ("facts", "refusal"),
    [
        ({"streaming_buffer": True}, "the table has an active streaming buffer"),
        ({"row_access_policies": 2}, "the table has 2 row access policies"),
    ],
)
def test_a_rebuild_refuses_what_it_would_not_carry_over(
    prod: tuple[Table, Settings], facts: dict[str, Any], refusal: str
) -> None:
    table, settings = prod
    month: TimePartitioningArgs = {"type": "MONTH", "field": "scheduled_time", "expiration_ms": 90 * 86_400_000}
    live = live_of(table, settings, time_partitioning=month, **facts)

    result = plan(table, settings, live)

    assert not result.steps
    assert result.refusals[0].startswith(refusal)


STAMP = "20261128T100000000Z"
COPY_ID = f"{TABLE_ID}__migrate_{STAMP}"


def test_a_leftover_copy_is_dropped_when_the_table_it_was_copied_from_holds_its_rows(
    prod: tuple[Table, Settings],
) -> None:
    table, settings = prod
    leftover = Leftover(COPY_ID, STAMP, "copy", 12)
    marked = plan(table, settings, live_of(table, settings, leftovers=(leftover,), run=(STAMP, "original")))
    assert [s.action for s in marked.steps] == [
        f"DROP TABLE `{COPY_ID}`",
        f"tables.patch {TABLE_ID}: labels tenant-bigquery-migrate-run, tenant-bigquery-migrate-role removed",
    ]
    empty = plan(table, settings, live_of(table, settings, leftovers=(replace(leftover, rows=0),)))
    assert [s.action for s in empty.steps] == [f"DROP TABLE `{COPY_ID}`"]


def test_a_copy_holding_rows_the_table_may_lack_is_never_dropped(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    result = plan(table, settings, live_of(table, settings, leftovers=(Leftover(COPY_ID, STAMP, "copy", 12),)))
    assert not result.steps
    assert result.refusals[0].startswith(f"{COPY_ID} holds 12 rows and {TABLE_ID} is not the table it was copied")


def test_a_table_created_again_while_the_original_is_frozen_is_refused(prod: tuple[Table, Settings]) -> None:
    """pulumi up (or a load job with CREATE_IF_NEEDED) created the table while the rows are in the frozen original."""
    table, settings = prod
    frozen = Leftover(f"{COPY_ID}_original", STAMP, "original", 40)
    result = plan(table, settings, live_of(table, settings, leftovers=(frozen,), created="2026-11-28T11:00:00+00:00"))
    assert not result.steps
    assert "created at 2026-11-28T11:00:00+00:00, after the rebuild of 20261128T100000000Z" in result.refusals[0]
    assert "python -m infra.cli migrate --stack prod --apply" in result.refusals[0]


def test_a_missing_table_takes_its_name_back_from_the_frozen_original(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    leftovers = (Leftover(COPY_ID, STAMP, "copy", 3), Leftover(f"{COPY_ID}_original", STAMP, "original", 40))
    result = plan_table(table, settings, LiveTable(TABLE_ID, None, leftovers=leftovers), NOW)
    assert result.recovery
    assert [s.action for s in result.steps][:2] == [
        f"DROP TABLE `{COPY_ID}`",
        f"ALTER TABLE `{COPY_ID}_original` RENAME TO `pipeline_execution_queue`",
    ]


def test_a_table_only_named_like_a_leftover_is_left_alone(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    stranger = Leftover(COPY_ID, STAMP, None, 5)
    result = plan(table, settings, live_of(table, settings, leftovers=(stranger,)))
    assert not result.steps and "carries no labels of that run: not migrate's, left alone" in result.notes[0]
    gone = plan_table(table, settings, LiveTable(TABLE_ID, None, leftovers=(stranger,)), NOW)
    assert not gone.steps and gone.refusals  # never "nothing to migrate" while it may hold the rows


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"pipeline_execution_queue__migrate_{STAMP}", (STAMP, "copy")),
        (f"pipeline_execution_queue__migrate_{STAMP}_original", (STAMP, "original")),
        ("pipeline_execution_queue__migrate_lock", None),  # the lock's marker
        ("pipeline_execution_queue__migrate_keep", None),
        (f"pipeline_execution_queue__migrate_{STAMP}x", None),
        (f"other__migrate_{STAMP}", None),
    ],
)
def test_leftovers_are_told_by_their_exact_stamp(name: str, expected: tuple[str, str] | None) -> None:
    assert leftover_name("pipeline_execution_queue", name) == expected


def test_nested_rename_maps_the_record_field_by_field(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    error = next(c for c in table.schema if c.name == "last_error")
    renamed = dataclasses.replace(error, fields=with_column(error.fields, "message", name="detail"))
    declared = dataclasses.replace(
        table,
        schema=tuple(renamed if c.name == "last_error" else c for c in table.schema),
        renamed_columns={"last_error.detail": "last_error.message"},
    )

    result = plan(declared, settings, live_of(table, settings))

    assert (
        "IF(`last_error` IS NULL, NULL, STRUCT(`last_error`.`code` AS `code`, `last_error`.`message` AS `detail`))"
        in result.steps[3].action
    )


# ---------------------------------------------------------------- validate: the hints


def write_hints(root: Path, hints: dict[str, str]) -> None:
    path = root / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    declaration["tables"]["tenant_profiles"]["renamed_columns"] = hints
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ({"full_name": "legal_name"}, "'full_name' is not a column of the schema; the new name must be declared"),
        ({"display_name": "legal_name"}, "'legal_name' is still declared; a renamed column's old name must be gone"),
    ],
)
def test_validate_names_a_wrong_hint_in_one_line(repo_copy: Path, hints: dict[str, str], message: str) -> None:
    write_hints(repo_copy, hints)

    result = invoke("validate", "--root", str(repo_copy), cwd=repo_copy)

    assert result.returncode == 1
    (new,) = hints
    assert (
        result.stderr.splitlines()[0] == f"stacks/tenants.yaml:tables.tenant_profiles.renamed_columns.{new}: {message}"
    )


def test_validate_accepts_a_hint_whose_new_name_is_declared(repo_copy: Path) -> None:
    write_hints(repo_copy, {"display_name": "name"})
    result = invoke("validate", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 0, result.stderr


def test_the_declared_state_ignores_nothing_the_program_declares(prod: tuple[Table, Settings]) -> None:
    table, settings = prod
    state, args = declared_state(table, settings)
    assert state == TableState(
        schema=table.schema,
        time_partitioning={"type": "DAY", "field": "scheduled_time", "expiration_ms": 90 * 86_400_000},
        range_partitioning=None,
        require_partition_filter=False,
        clustering=("tenant_id", "state"),
        labels=args["labels"] or {},
        description=table.description,
        kms_key_name=settings.stack_settings.kms_key_name,
    )
    assert args["table_id"] == "pipeline_execution_queue"


# ---------------------------------------------------------------- diff: what migrate covers


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=GIT_ENV)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin",
}


def _widen_priority_after_a_base_commit(repo_copy: Path) -> None:
    """The program and catalog committed as the base, then a widening migrate covers: INT64 to NUMERIC."""
    shutil.copytree(REPO_ROOT / "infra", repo_copy / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo_copy, "init", "-q", "-b", "main")
    _git(repo_copy, "add", "-A")
    _git(repo_copy, "commit", "-q", "-m", "base")
    path = repo_copy / "schemas" / "tenants" / "pipeline_execution_queue.json"
    columns = json.loads(path.read_text())
    next(c for c in columns if c["name"] == "priority")["type"] = "NUMERIC"
    path.write_text(json.dumps(columns, indent=2))


def test_diff_marks_a_covered_change_and_the_prod_gate_counts_it_as_losing_no_data(repo_copy: Path) -> None:
    _widen_priority_after_a_base_commit(repo_copy)
    args = ("diff", "--root", str(repo_copy), "--base", "main", "--stack", "prod", "--fail-on", "update-destructive")

    gated = invoke(*args, "--format", "json", cwd=repo_copy)
    text = invoke(*args, cwd=repo_copy)

    assert gated.returncode == 0, gated.stdout + gated.stderr  # a replace as declared, lossless through migrate
    (table,) = json.loads(gated.stdout)["tables"]
    assert table["verdict"] == "replace"
    assert table["migration"] == {
        "runs": [
            "ALTER TABLE `acme-data-platform-prod.tenants.pipeline_execution_queue` ALTER COLUMN `priority` "
            "SET DATA TYPE NUMERIC"
        ],
        "verdict_after": "update",
    }
    assert "migrate covers it (no row lost; update after it): `migrate --apply` runs ALTER TABLE" in text.stdout
    assert "Runbook for" not in text.stdout  # nothing is lost, so no data-loss runbook


@pytest.mark.parametrize(
    ("config", "replacing"),
    [
        (
            {"tenant-bigquery:recreate": {"tenants.pipeline_execution_queue": "2026-12-07"}},
            "(option replacementTrigger)",
        ),
        ({}, None),
    ],
    ids=["recreate-token", "nothing-else"],
)
def test_the_gate_counts_what_a_migration_leaves_and_every_change_it_does_not_address(
    repo_copy: Path, config: dict[str, Any], replacing: str | None
) -> None:
    """A widening migrate covers, together with a new recreate token: the engine decides the trigger before
    and apart from the provider's diff (pulumi/pulumi pkg/resource/deploy/step_generator.go
    shouldTriggerReplace), so after the migration the table is still replaced, and the gate must fail."""
    _widen_priority_after_a_base_commit(repo_copy)
    stack_file = repo_copy / "Pulumi.prod.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update(config)
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    args = ("diff", "--root", str(repo_copy), "--base", "main", "--stack", "prod", "--fail-on", "update-destructive")

    gated = invoke(*args, "--format", "json", cwd=repo_copy)

    (table,) = json.loads(gated.stdout)["tables"]
    assert table["migration"]["runs"], table
    if replacing is None:
        assert (gated.returncode, table["migration"]["verdict_after"]) == (0, "update")
    else:
        assert gated.returncode == 1, gated.stdout + gated.stderr
        assert table["migration"]["verdict_after"] == "replace"
        assert any(c["path"] == replacing and c["verdict"] == "replace" for c in table["changes"])


def test_every_field_the_migration_compares_names_its_provider_input() -> None:
    """A TableState field without its input would let diff count a change migrate does not make as made."""
    compared = {f.name for f in dataclasses.fields(TableState) if f.compare}
    assert set(MIGRATED_PROPERTIES) == compared
    assert set(MIGRATED_PROPERTIES.values()) <= CLASSIFIED_TABLE_PROPERTIES | {"encryptionConfiguration"}
