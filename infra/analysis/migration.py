# ruff: noqa: S608 - SQL built from validated column names and API-reported table ids, never from row data
"""Plan how a live table reaches its declaration without losing a row (`migrate`).

Its size (about 700 lines) is every lossless path (rename, widening, options, a checked rebuild) planned
against one live table, each path's SQL next to the BigQuery rule that allows it.

Pure core: no pulumi or google imports. The API edge (infra/bigquery_edge/live_migrate.py) reads the live table
into a LiveTable, hands it here with the declared table, and runs the TablePlan that comes back.

Only differences `pulumi up` would resolve by a replacement, a refusal, or a loss the declaration
does not ask for are planned; everything the provider changes in place is left to it (`notes`).
BigQuery rules relied on (each cited where it is used):
- DDL reference (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language):
  ALTER TABLE RENAME COLUMN, ALTER COLUMN SET DATA TYPE, DROP TABLE, ALTER TABLE RENAME TO.
- Conversion rules (https://cloud.google.com/bigquery/docs/reference/standard-sql/conversion_rules):
  which types coerce (SET DATA TYPE accepts exactly those) and which cast.
- Modifying table schemas (https://cloud.google.com/bigquery/docs/managing-table-schemas): a REQUIRED
  column cannot be added to an existing table; renames and type changes beyond these need a new table.
- Why a rebuild freezes the original by renaming it rather than in a transaction: "DDL statements that create
  or delete permanent entities, such as datasets, tables, and functions, are not supported inside transactions"
  (https://cloud.google.com/bigquery/docs/transactions), and each DML statement commits on its own ("Each DML
  statement initiates an implicit transaction", https://cloud.google.com/bigquery/docs/data-manipulation-language),
  so no lock keeps writers out while rows are copied; a table under another name is one no writer names.
- A dropped table stays restorable for the dataset's time travel window, two to seven days
  (https://cloud.google.com/bigquery/docs/restore-deleted-tables); a query of it fails with Not found
  (https://cloud.google.com/bigquery/docs/access-historical-data), so the fingerprints read live tables only.
- "Tables with primary key constraints cannot be renamed" (TABLE_CONSTRAINTS view, limitations:
  https://cloud.google.com/bigquery/docs/information-schema-table-constraints): a rebuild drops the original's
  primary key before it renames it away, creates the copy without keys, and gives the copy the declared keys
  once it has the table's name (tables.patch: "You can also manage table constraints through the BigQuery API by
  updating the TableConstraints object", https://cloud.google.com/bigquery/docs/primary-foreign-keys).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.analysis.changes import ResourceChanges, Verdict, worst
from infra.analysis.drift import declared_table
from infra.model.catalog import Catalog
from infra.model.column_attributes import PLANNED, ColumnAttribute, Migration, sql_parameters, sql_type_name
from infra.model.declared import declared_table_of
from infra.model.renames import find_column
from infra.model.render import clustering_text, partitioning_text
from infra.model.rules import MIGRATE_SEPARATOR, NAME_STAMP, coerces, name_stamp
from infra.model.schema import Column, carry_data_policies
from infra.model.settings import Settings
from infra.model.table_properties import (
    MIGRATE_ORDER,
    TABLE_PROPERTIES,
    Migrate,
    Table,
    TableArgs,
    TableState,
    rest_resource,
)

# A rebuild's two tables: `<table>__migrate_<stamp>` (the copy) and `<table>__migrate_<stamp>_original` (the
# original, renamed so that no writer reaches it while it is copied), each labelled with the run's stamp and
# its role: a later run tells them from any other table by both, never by the name alone.
FROZEN_SUFFIX = "_original"
RUN_LABEL = "tenant-bigquery-migrate-run"
ROLE_LABEL = "tenant-bigquery-migrate-role"
COPY, ORIGINAL = "copy", "original"
# Conversion rules, "Cast to": a rebuild casts with these; anything else has no lossless path.
CASTS = {
    "INT64": {"BOOL", "NUMERIC", "BIGNUMERIC", "FLOAT64", "STRING"},
    "NUMERIC": {"INT64", "BIGNUMERIC", "FLOAT64", "STRING"},
    "BIGNUMERIC": {"INT64", "NUMERIC", "FLOAT64", "STRING"},
    "FLOAT64": {"INT64", "NUMERIC", "BIGNUMERIC", "STRING"},
    "BOOL": {"INT64", "STRING"},
    "STRING": {"BOOL", "INT64", "NUMERIC", "BIGNUMERIC", "FLOAT64", "BYTES", "DATE", "DATETIME", "TIME", "TIMESTAMP"},
    "BYTES": {"STRING"},
    "DATE": {"STRING", "DATETIME", "TIMESTAMP"},
    "DATETIME": {"STRING", "DATE", "TIME", "TIMESTAMP"},
    "TIME": {"STRING"},
    "TIMESTAMP": {"STRING", "DATE", "DATETIME", "TIME"},
}
# Values that cannot be compared with `!=`, so a round trip cannot prove a cast kept them.
_NOT_COMPARABLE = {"JSON", "GEOGRAPHY", "RECORD", "RANGE"}


# ---------------------------------------------------------------- what the planner compares


def _layout(state: TableState) -> tuple[Any, ...]:
    """What decides where rows live; a rebuild is the only way to change it (not the expiration)."""
    time = state.time_partitioning
    return (time["type"], time["field"]) if time else None, state.range_partitioning


def _partitioning_text(state: TableState) -> str:
    return partitioning_text(state.time_partitioning, state.range_partitioning)


def _partitioning_field(state: TableState) -> str | None:
    if state.range_partitioning is not None:
        return state.range_partitioning["field"]
    return state.time_partitioning["field"] if state.time_partitioning else None


@dataclass(frozen=True)
class LiveTable:
    """The live table as the API reports it, and what a rebuild could not carry over."""

    table_id: str  # project.dataset.table
    state: TableState | None  # None: no such table (what verify compares, infra/analysis/drift.py)
    row_access_policies: int = 0
    iam_bindings: int = 0
    streaming_buffer: bool = False
    leftovers: tuple[Leftover, ...] = ()  # tables named like a rebuild's (<table>__migrate_<stamp>[_original])
    run: tuple[str, str] | None = None  # the run labels on the table itself: (stamp, role)
    created: str = ""  # when the table was created (ISO), said when it stands in a rebuild's way


@dataclass(frozen=True)
class Leftover:
    """A table named like one of a rebuild's; `role` is None unless its labels say the run made it."""

    table_id: str
    stamp: str
    role: str | None
    rows: int


def leftover_name(table: str, name: str) -> tuple[str, str] | None:
    """(stamp, role by name) when `name` is exactly one of the rebuild tables of `table`, else None."""
    head = f"{table}{MIGRATE_SEPARATOR}"
    if not name.startswith(head):
        return None
    rest = name[len(head) :]
    stamp, role = (rest[: -len(FROZEN_SUFFIX)], ORIGINAL) if rest.endswith(FROZEN_SUFFIX) else (rest, COPY)
    return (stamp, role) if NAME_STAMP.fullmatch(stamp) else None


def run_labels(stamp: str, role: str) -> dict[str, str]:
    # Label values are lowercase (https://cloud.google.com/bigquery/docs/labels-intro, requirements).
    return {RUN_LABEL: stamp.lower(), ROLE_LABEL: role}


def labelled_as(labels: dict[str, str]) -> tuple[str, str] | None:
    """The (stamp, role) the run labels name, stamp as name_stamp writes it."""
    stamp, role = labels.get(RUN_LABEL), labels.get(ROLE_LABEL)
    if stamp is None or role not in (COPY, ORIGINAL) or not NAME_STAMP.fullmatch(stamp.upper()):
        return None
    return stamp.upper(), role


def declared_state(table: Table, settings: Settings) -> tuple[TableState, TableArgs]:
    """The state the program declares, and the provider arguments it comes from (infra/model/declared.py)."""
    declared = declared_table_of(table, settings)
    return declared_table(declared), declared.args


def table_resource(args: TableArgs, table_id: str) -> dict[str, Any]:
    """The REST table resource (tables.insert) of the provider arguments, under another table id."""
    return {
        "tableReference": {"projectId": args["project"], "datasetId": args["dataset_id"], "tableId": table_id},
        **rest_resource(args),
    }


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class MigrationStep:
    """One statement or API call; `payload` is what the edge sends for the API kinds."""

    kind: str  # sql | patch | create | compare | recheck
    action: str  # the SQL, or the API call as a person would read it
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "action": self.action, "reason": self.reason}


@dataclass(frozen=True)
class DataCheck:
    """Rows matching `predicate` would not survive the change; the plan needs none."""

    what: str
    predicate: str
    column: str  # the live column shown in samples

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "predicate": self.predicate}


@dataclass(frozen=True)
class TablePlan:
    table: str  # dataset.table as declared
    table_id: str  # project.dataset.table live
    steps: tuple[MigrationStep, ...] = ()
    checks: tuple[DataCheck, ...] = ()
    refusals: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    source_filter: str = ""  # WHERE clause the live table's partition filter requires
    rebuild_table: str | None = None
    recovery: bool = False  # the steps finish or undo an earlier, interrupted run; the rebuild is the next run
    resume: str = ""  # the command that continues after an interruption

    @property
    def empty(self) -> bool:
        return not self.steps and not self.refusals

    @property
    def frozen_table(self) -> str | None:
        """The original's name while the rebuild copies it."""
        return f"{self.rebuild_table}{FROZEN_SUFFIX}" if self.rebuild_table else None

    def refused(self, *why: str) -> TablePlan:
        return TablePlan(
            self.table, self.table_id, (), self.checks, (*self.refusals, *why), self.notes, resume=self.resume
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "table_id": self.table_id,
            "rebuild": self.rebuild_table,
            "checks": [c.to_json() for c in self.checks],
            "steps": [s.to_json() for s in self.steps],
            "refusals": list(self.refusals),
            "notes": list(self.notes),
        }


def quote(table_id: str) -> str:
    return f"`{table_id}`"


def migrate_table_id(table_id: str, now: datetime) -> str:
    return f"{table_id}{MIGRATE_SEPARATOR}{name_stamp(now)}"


def sql_type(column: Column, with_mode: bool = True) -> str:
    """The column's type in GoogleSQL, without NOT NULL (not allowed inside STRUCT<> nor in CAST)."""
    if column.type == "RECORD":
        inner = ", ".join(f"`{f.name}` {sql_type(f)}" for f in column.fields)
        base = f"STRUCT<{inner}>"
    else:
        base = sql_type_name(column)
    return f"ARRAY<{base}>" if with_mode and column.mode == "REPEATED" else base


@dataclass
class _Planner:
    table: Table
    live: LiveTable
    declared: TableState
    approved: bool
    in_place: list[MigrationStep] = field(default_factory=list)
    rebuild_reasons: list[str] = field(default_factory=list)
    checks: list[DataCheck] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    added_any: bool = False

    @property
    def live_state(self) -> TableState:
        assert self.live.state is not None
        return self.live.state

    def pinned(self) -> set[str]:
        """Live columns the table is partitioned or clustered on: DDL on them is left to a rebuild."""
        live = self.live_state
        names = set(live.clustering)
        if field := _partitioning_field(live):
            names.add(field)
        return names

    def keyed(self) -> set[str]:
        """Live columns of a primary or foreign key, which BigQuery neither renames nor retypes ("Fields that are
        part of primary key constraints or foreign key constraints cannot be renamed, or have their type
        changed", TABLE_CONSTRAINTS view, limitations): left to a rebuild too."""
        keys = self.live_state.table_constraints or {}
        names = set(keys.get("primary_key", {}).get("columns", ()))
        return names | {key["column_references"]["referencing_column"] for key in keys.get("foreign_keys", ())}

    # ------------------------------------------------------------ columns

    def columns(self, declared: tuple[Column, ...], live: tuple[Column, ...], parent: str, in_array: bool) -> None:
        matched: set[str] = set()
        for column in declared:
            path = f"{parent}{column.name}"
            found = next((c for c in live if c.name == column.name), None)
            old_path = self.table.renamed_columns.get(path)
            old = old_path.rsplit(".", 1)[-1] if old_path else None
            renamed_from = next((c for c in live if c.name == old), None) if old else None
            if found is not None and renamed_from is not None:
                self.refusals.append(
                    f"columns {path} and {old_path} both exist live, so the hint {path}: {old_path} cannot be "
                    f"followed; copy what you need into {path} and drop {old_path} with pulumi up, or remove the hint"
                )
                matched.add(renamed_from.name)
            if found is None and renamed_from is not None:
                found = renamed_from
                self.rename(path, found, parent, in_array)
            if found is None:
                self.added(column, path)
                continue
            matched.add(found.name)
            self.column(column, found, path, in_array)
        for column in live:
            if column.name not in matched:
                self.dropped_column(column, f"{parent}{column.name}", bool(parent))

    def rename(self, path: str, old: Column, parent: str, in_array: bool) -> None:
        old_path = f"{parent}{old.name}"
        new_name = path.rsplit(".", 1)[-1]
        if parent or in_array or old.name in self.pinned() | self.keyed():
            where = "a nested column" if parent else "a partitioning, clustering or key column"
            self.rebuild_reasons.append(
                f"rename {old_path} -> {path}: {where}, which RENAME COLUMN does not rename in place"
            )
            return
        self.in_place.append(
            MigrationStep(
                "sql",
                f"ALTER TABLE {quote(self.live.table_id)} RENAME COLUMN `{old.name}` TO `{new_name}`",
                f"renamed_columns hint {path}: {old_path}; RENAME COLUMN keeps every value (DDL reference)",
            )
        )

    def added(self, column: Column, path: str) -> None:
        self.added_any = True
        if column.mode == "REQUIRED":
            self.refusals.append(
                f"new column {path} is REQUIRED and existing rows have no value for it (BigQuery cannot add a "
                "REQUIRED column to a table holding rows; the provider would recreate the table empty): declare it "
                "NULLABLE, fill it, then declare it REQUIRED and run migrate again"
            )
        else:
            self.notes.append(f"new column {path}: pulumi up adds it in place")

    def dropped_column(self, column: Column, path: str, nested: bool) -> None:
        self.dropped.append(path)
        if nested or column.name in self.pinned():
            why = "a nested field" if nested else "a partitioning or clustering column"
            self.rebuild_reasons.append(f"drop {path}: {why}, which DROP COLUMN refuses (DDL reference)")
        else:
            self.notes.append(f"dropped column {path}: pulumi up drops it in place (its data is lost; prod approval)")

    def column(self, declared: Column, live: Column, path: str, in_array: bool) -> None:
        if (declared.mode == "REPEATED") != (live.mode == "REPEATED"):
            self.refusals.append(
                f"column {path} changes between REPEATED and {declared.mode if live.mode == 'REPEATED' else live.mode}"
                "; no lossless path: keep the mode, or add a new column and fill it"
            )
            return
        if declared.type == "RECORD" or live.type == "RECORD":
            if declared.type != live.type:
                self.refusals.append(
                    f"column {path} changes between RECORD and {declared.type if live.type == 'RECORD' else live.type}"
                    "; no lossless path: add a new column and fill it"
                )
                return
            self.columns(declared.fields, live.fields, f"{path}.", in_array or declared.mode == "REPEATED")
        else:
            self.scalar(declared, live, path, in_array)
        self.mode(declared, live, path, in_array)

    def scalar(self, declared: Column, live: Column, path: str, in_array: bool) -> None:
        simple = (
            "." not in path
            and not in_array
            and live.mode != "REPEATED"
            and live.name not in self.pinned() | self.keyed()
        )
        source = self.source_path(path, live.name)
        if declared.type != live.type:
            change = f"{live.type} -> {declared.type}"
            if coerces(live.type, declared.type) and declared.precision is None and simple:
                self.set_data_type(declared, path, f"column {path} {change} widens (conversion rules: coercion)")
                return
            if declared.type not in CASTS.get(live.type, set()) or live.type in _NOT_COMPARABLE:
                self.refusals.append(f"column {path} {change}: BigQuery cannot cast it without loss; keep the type")
                return
            widening = coerces(live.type, declared.type)
            self.rebuild_reasons.append(f"column {path} {change}" + ("" if widening else ", every value checked"))
            if not widening:
                self.round_trip(declared, live, path, source)
            return
        for attribute in PLANNED:
            if attribute.applies_to(declared.type) and attribute.compared_value(declared) != attribute.compared_value(
                live
            ):
                self.parameter(attribute, declared, live, path, in_array, simple)

    def parameter(
        self, attribute: ColumnAttribute, declared: Column, live: Column, path: str, in_array: bool, simple: bool
    ) -> None:
        """A difference of a type's parameters (infra/model/column_attributes.py: the attribute's Migration)."""
        assert attribute.migrate_text is not None
        change = attribute.migrate_text(live, declared)
        if attribute.migration is Migration.REFUSED:
            self.refusals.append(f"column {path} {change}: BigQuery cannot cast it without loss; keep the type")
            return
        assert attribute.widens is not None and attribute.fits is not None
        if attribute.widens(declared.type, attribute.compared_value(live), attribute.compared_value(declared)):
            if simple:
                self.set_data_type(declared, path, f"column {path} {change} widens")
            else:
                self.rebuild_reasons.append(f"column {path} {change}")
        elif in_array:
            self.refusals.append(f"column {path} {change}: values inside arrays are not checked; {attribute.keep}")
        else:
            self.rebuild_reasons.append(f"column {path} {change}, every value checked")
            source = self.source_path(path, live.name)
            self.checks.append(DataCheck(*attribute.fits(declared, path, source), source))

    def round_trip(self, declared: Column, live: Column, path: str, source: str) -> None:
        if "." in path and self.in_array_path(path):
            self.refusals.append(f"column {path}: values inside arrays are not checked; keep the type")
            return
        cast = f"SAFE_CAST({source} AS {declared.type})"
        self.checks.append(
            DataCheck(
                f"{path} survives {live.type} -> {declared.type} and back (SAFE_CAST round trip)",
                f"{source} IS NOT NULL AND ({cast} IS NULL OR CAST({cast} AS {live.type}) != {source})",
                source,
            )
        )

    def in_array_path(self, path: str) -> bool:
        columns = self.live_state.schema
        for part in path.split(".")[:-1]:
            found = next((c for c in columns if c.name == part), None)
            if found is None or found.mode == "REPEATED":
                return True
            columns = found.fields
        return False

    def source_path(self, path: str, live_name: str) -> str:
        """The live column's path as SQL, following renames of its parents."""
        parts = path.split(".")
        live_parts = []
        for index in range(len(parts) - 1):
            declared_prefix = ".".join(parts[: index + 1])
            old = self.table.renamed_columns.get(declared_prefix)
            live_parts.append(
                old.rsplit(".", 1)[-1] if old and find_column(self.live_state.schema, old) else parts[index]
            )
        return ".".join(f"`{p}`" for p in [*live_parts, live_name])

    def set_data_type(self, declared: Column, path: str, why: str) -> None:
        self.in_place.append(
            MigrationStep(
                "sql",
                f"ALTER TABLE {quote(self.live.table_id)} ALTER COLUMN `{path}` SET DATA TYPE "
                f"{sql_parameters(declared)}",
                f"{why}; SET DATA TYPE changes it in place (DDL reference)",
            )
        )

    def mode(self, declared: Column, live: Column, path: str, in_array: bool) -> None:
        if declared.mode == live.mode or "REPEATED" in (declared.mode, live.mode):
            return
        if declared.mode == "NULLABLE":
            self.notes.append(f"column {path} REQUIRED -> NULLABLE: pulumi up relaxes it in place")
            return
        if in_array:
            self.refusals.append(f"column {path} NULLABLE -> REQUIRED inside an array is not checked; keep it NULLABLE")
            return
        self.rebuild_reasons.append(f"column {path} NULLABLE -> REQUIRED, no NULL checked")
        source = self.source_path(path, live.name)
        parent = source.rsplit(".", 1)[0] if "." in path else None
        predicate = f"{source} IS NULL" + (f" AND {parent} IS NOT NULL" if parent else "")
        self.checks.append(DataCheck(f"{path} holds no NULL", predicate, source))

    # ------------------------------------------------------------ table properties

    def properties(self) -> None:
        """Each property where the live table differs, in MIGRATE_ORDER: planned (PLANNERS) or left to pulumi up."""
        for prop in MIGRATE_ORDER:
            if prop.migrate is Migrate.PLANNED:
                PLANNERS[prop.name](self)
            elif prop.migrate is Migrate.NOTED and prop.value(self.declared) != prop.value(self.live_state):
                self.notes.append(f"{prop.verify.check}: pulumi up changes it in place")

    def schema(self) -> None:
        self.columns(self.declared.schema, self.live_state.schema, "", False)
        if self.added_any and any("." not in path for path in self.dropped):
            self.rebuild_reasons.append(
                "columns dropped and added in one change, which the provider applies by recreating the table empty "
                "(declare renamed_columns if this is a rename)"
            )

    def partitioning(self) -> None:
        declared, live = self.declared, self.live_state
        want, have = declared.time_partitioning, live.time_partitioning
        if _layout(declared) != _layout(live):
            self.rebuild_reasons.append(
                f"partitioning {_partitioning_text(live)} -> {_partitioning_text(declared)} (the provider recreates "
                "the table or BigQuery refuses the change)"
            )
        elif want is not None and have is not None and want["expiration_ms"] != have["expiration_ms"]:
            if want["expiration_ms"] is None:
                patch = {"timePartitioning": {"type": want["type"], "field": want["field"], "expirationMs": None}}
                self.in_place.append(
                    MigrationStep(
                        "patch",
                        f"tables.patch {self.live.table_id}: timePartitioning.expirationMs = null",
                        "partition expiration removed (keep_forever): the provider sends nothing, so partitions "
                        "would keep expiring; same as ALTER TABLE ... SET OPTIONS (partition_expiration_days = NULL)",
                        patch,
                    )
                )
            else:
                self.notes.append("partition expiration: pulumi up changes it in place")

    def encryption_key(self) -> None:
        declared, live = self.declared, self.live_state
        if declared.kms_key_name == live.kms_key_name:
            return
        if declared.kms_key_name is None:
            self.refusals.append(
                f"the live table is encrypted with {live.kms_key_name} but no key is declared; the provider would "
                "recreate it empty: declare tenant-bigquery:kmsKeyName"
            )
        else:
            self.in_place.append(
                MigrationStep(
                    "patch",
                    f"tables.patch {self.live.table_id}: encryptionConfiguration.kmsKeyName = "
                    f"'{declared.kms_key_name}'",
                    f"key {live.kms_key_name or 'Google-managed'} -> {declared.kms_key_name}: the provider would "
                    "recreate the table empty; re-keying in place keeps it (same as ALTER TABLE ... SET OPTIONS "
                    "(kms_key_name = ...))",
                    {"encryptionConfiguration": {"kmsKeyName": declared.kms_key_name}},
                )
            )


# What migrate plans for each property whose descriptor says Migrate.PLANNED, by name; every other property is
# left to pulumi up, which changes it in place. tests/test_table_properties.py holds the two to the same properties.
PLANNERS: dict[str, Callable[[_Planner], None]] = {
    "schema": _Planner.schema,
    "partitioning": _Planner.partitioning,
    "encryption key": _Planner.encryption_key,
}


def partition_filter(state: TableState) -> str:
    """A condition every row meets, for tables that require a partition filter in every query."""
    if not state.require_partition_filter or not (state.time_partitioning or state.range_partitioning):
        return ""
    field = _partitioning_field(state)
    column = f"`{field}`" if field else "_PARTITIONTIME"
    return f"({column} IS NULL OR {column} IS NOT NULL)"


def where(*conditions: str) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


def plan_table(
    table: Table, settings: Settings, live: LiveTable, now: datetime, *, approved: bool | None = None
) -> TablePlan:
    """What migrate does to one table; a plan with refusals changes nothing."""
    declared, args = declared_state(table, settings)
    resume = f"python -m infra.cli migrate --stack {settings.stack} --apply"
    left = _leftover_steps(table, live, resume)
    if isinstance(left, TablePlan):
        return left
    cleanup, strangers = left
    if live.state is None:
        return TablePlan(table.key, live.table_id, notes=("not found: pulumi up creates it",), resume=resume)

    planner = _Planner(table, live, declared, settings.approves_data_loss(table.key) if approved is None else approved)
    planner.notes.extend(strangers)
    planner.properties()
    base = TablePlan(table.key, live.table_id, cleanup, tuple(planner.checks), (), tuple(planner.notes), resume=resume)
    if planner.refusals:
        return base.refused(*planner.refusals)
    if not planner.rebuild_reasons:
        steps = (*cleanup, *planner.in_place)
        return TablePlan(table.key, live.table_id, steps, (), (), tuple(planner.notes), resume=resume)

    refusals = []
    if planner.dropped and not planner.approved:
        refusals.append(
            f"the rebuild would drop {', '.join(planner.dropped)} and their data: approve the table in "
            'tenant-bigquery:approveDataLoss (runbook "Approve data loss in prod"), or keep the columns'
        )
    for count, what, todo in (
        (live.row_access_policies, "row access policies", "a copy would read only the rows you may see; drop them"),
        (live.iam_bindings, "table IAM bindings", "a new table would not have them; remove them"),
    ):
        if count:
            refusals.append(
                f"the table has {count} {what}, which a rebuild does not carry over ({todo}, migrate, "
                "then restore them)"
            )
    if live.streaming_buffer:
        refusals.append(
            "the table has an active streaming buffer, whose rows a copy may miss: stop streaming, wait until "
            "BigQuery reports no streaming buffer, then migrate"
        )
    if refusals:
        return base.refused(*refusals)
    return TablePlan(
        table.key,
        live.table_id,
        (*cleanup, *_rebuild_steps(planner, args, now)),
        tuple(planner.checks),
        (),
        (),  # the rebuilt table is exactly the declared one: nothing is left to pulumi up
        partition_filter(live.state),
        migrate_table_id(live.table_id, now),
        resume=resume,
    )


def unlabel(table_id: str, why: str) -> MigrationStep:
    return MigrationStep(
        "patch",
        f"tables.patch {table_id}: labels {RUN_LABEL}, {ROLE_LABEL} removed",
        why,
        {"labels": {RUN_LABEL: None, ROLE_LABEL: None}},
    )


def _leftover_steps(
    table: Table, live: LiveTable, resume: str
) -> TablePlan | tuple[tuple[MigrationStep, ...], list[str]]:
    """What the tables an earlier rebuild left call for, decided from what each one is and holds: the steps
    that finish or undo that run, a refusal naming what to do, or (steps first, notes) when the table can be
    migrated after those steps. A table holding rows no other table holds is never dropped."""
    name = live.table_id.rsplit(".", 1)[1]
    strangers = [
        f"{t.table_id} is named like a rebuild's table but carries no labels of that run: not migrate's, left alone"
        for t in live.leftovers
        if t.role is None
    ]
    frozen = [t for t in live.leftovers if t.role == ORIGINAL]
    copies = [t for t in live.leftovers if t.role == COPY]
    stamps = {t.stamp for t in frozen}

    def refuse(*why: str) -> TablePlan:
        state = "; ".join(f"{t.table_id} ({t.role or 'not migrate’s'}, {t.rows} rows)" for t in live.leftovers)
        what = f"{live.table_id} {'exists' if live.state else 'is missing'}; {state}"
        return TablePlan(table.key, live.table_id, refusals=(*why, f"state: {what}"), resume=resume)

    if len(frozen) > 1:
        return refuse("two interrupted rebuilds left originals behind; keep the one holding every row")
    steps: list[MigrationStep] = []
    if live.state is None:
        if frozen:
            (original,) = frozen
            steps += [
                MigrationStep(
                    "sql", f"DROP TABLE {quote(c.table_id)}", "the copy holds only rows of the frozen original"
                )
                for c in copies
                if c.stamp == original.stamp
            ]
            steps.append(
                MigrationStep(
                    "sql",
                    f"ALTER TABLE {quote(original.table_id)} RENAME TO `{name}`",
                    "an earlier rebuild stopped while the original was renamed away for the copy: it holds every "
                    "row acknowledged before the run (no writer reached it), so it takes its name back",
                )
            )
            steps.append(unlabel(live.table_id, "the run labels go with the run"))
            return TablePlan(table.key, live.table_id, tuple(steps), recovery=True, resume=resume)
        if copies or strangers:
            holder = (copies or [t for t in live.leftovers if t.role is None])[0]
            return refuse(
                f"{live.table_id} is missing and {holder.table_id} may hold its rows: check it, then "
                f"ALTER TABLE {quote(holder.table_id)} RENAME TO `{name}` and run {resume}"
            )
        return ((), strangers)
    labelled = live.run
    for original in frozen:
        if labelled != (original.stamp, COPY):
            return refuse(
                f"{live.table_id} was created at {live.created or 'an unknown time'}, after the rebuild of "
                f"{original.stamp} renamed the original to {original.table_id}, which holds its rows (pulumi up or "
                f"a load job without CREATE_NEVER creates the table again): copy any rows written to the new table "
                f"into it (INSERT INTO {quote(original.table_id)} SELECT * FROM {quote(live.table_id)}), "
                f"DROP TABLE {quote(live.table_id)}, then run {resume}"
            )
        steps.append(unlabel(live.table_id, "the copy, checked equal to the original, took the table's name"))
        steps.append(
            MigrationStep(
                "sql",
                f"DROP TABLE {quote(original.table_id)}",
                "the rebuild it belongs to swapped the checked copy in; time travel keeps it recoverable",
            )
        )
    for copy in copies:
        if copy.stamp in stamps:
            continue  # the copy of a frozen original: handled with it (refused above, or finished)
        if labelled != (copy.stamp, ORIGINAL) and copy.rows:
            return refuse(
                f"{copy.table_id} holds {copy.rows} rows and {live.table_id} is not the table it was copied from: "
                f"compare the two, keep what you need, DROP TABLE {quote(copy.table_id)}, then run {resume}"
            )
        steps.append(
            MigrationStep(
                "sql", f"DROP TABLE {quote(copy.table_id)}", "a partial copy of the table, which still holds its rows"
            )
        )
    if labelled is not None and not frozen:
        steps.append(unlabel(live.table_id, "an earlier rebuild marked it and stopped before renaming it"))
    return (tuple(steps), strangers)


def _rebuild_steps(planner: _Planner, args: TableArgs, now: datetime) -> list[MigrationStep]:
    live = planner.live
    assert live.state is not None
    target = migrate_table_id(live.table_id, now)
    declared = planner.declared
    reasons = "; ".join(planner.rebuild_reasons)
    resource = table_resource(args, target.rsplit(".", 1)[1])
    if planner.table.column_masking == "governance":
        # Created with the data policies the governance team attached, as the provider keeps them on an update.
        carry_data_policies(resource["schema"]["fields"], live.state.schema)
    layout = f"partitioning {_partitioning_text(declared)}, clustering {clustering_text(declared.clustering)}"
    names, expressions = [], []
    for column in declared.schema:
        path = column.name
        old = planner.table.renamed_columns.get(path)
        found = find_column(live.state.schema, path)
        if found is None and old is not None:
            found = find_column(live.state.schema, old)
        if found is None:
            continue  # a new column: NULL in every copied row
        names.append(f"`{column.name}`")
        expressions.append(_expression(column, found, f"`{found.name}`", planner.table.renamed_columns, path))
    source_filter = where(partition_filter(live.state))
    target_filter = where(partition_filter(declared))
    stamp = name_stamp(now)
    resource["labels"] = {**resource.get("labels", {}), **run_labels(stamp, COPY)}
    keys = resource.pop("tableConstraints", None)  # the copy is renamed: it gets its keys after (module docstring)
    unkeyed = (
        [
            MigrationStep(
                "sql",
                f"ALTER TABLE {quote(live.table_id)} DROP PRIMARY KEY",
                "BigQuery renames no table with a primary key; the original is renamed away next, and dropped "
                "at the end (DDL reference: ALTER TABLE DROP PRIMARY KEY)",
            )
        ]
        if (live.state.table_constraints or {}).get("primary_key")
        else []
    )
    keyed = (
        [
            MigrationStep(
                "patch",
                f"tables.patch {live.table_id}: tableConstraints = the declared keys",
                "the rebuilt table takes its declared primary and foreign keys once it has its name",
                {"tableConstraints": keys},
            )
        ]
        if keys
        else []
    )
    frozen = f"{target}{FROZEN_SUFFIX}"
    name = live.table_id.rsplit(".", 1)[1]
    projected = ", ".join(f"{e} AS {n}" for e, n in zip(expressions, names, strict=True))
    source = _fingerprint(projected, frozen, source_filter)
    return [
        MigrationStep(
            "create",
            f"tables.insert {target}: the declared table ({len(declared.schema)} columns, {layout})",
            f"rebuild because {reasons}; created through the API with exactly the declared arguments, labelled "
            "with the run",
            resource,
        ),
        MigrationStep(
            "patch",
            f"tables.patch {live.table_id}: labels {RUN_LABEL} = '{stamp.lower()}', {ROLE_LABEL} = '{ORIGINAL}'",
            "marks the original, so that a later run knows it for this run's original under any name",
            {"labels": run_labels(stamp, ORIGINAL)},
        ),
        *unkeyed,
        MigrationStep(
            "sql",
            f"ALTER TABLE {quote(live.table_id)} RENAME TO `{frozen.rsplit('.', 1)[1]}`",
            "freezes the original: from here writers to the table fail (not found) instead of writing rows the "
            "copy would miss; every write acknowledged before is in it (DDL reference: RENAME TO)",
        ),
        MigrationStep(
            "sql",
            f"INSERT INTO {quote(target)} ({', '.join(names)})\nSELECT {', '.join(expressions)}\n"
            f"FROM {quote(frozen)}{source_filter}",
            "copies every row with an explicit column mapping (renames and casts); scans the table once",
        ),
        MigrationStep(
            "compare",
            f"row count and content fingerprint: {frozen} (through the copy's expressions) = {target}",
            "the copy must hold exactly the original's rows and values (a count alone misses a changed value)",
            {"source": source, "target": _fingerprint(", ".join(f"{n} AS {n}" for n in names), target, target_filter)},
        ),
        MigrationStep(
            "sql",
            f"ALTER TABLE {quote(target)} RENAME TO `{name}`",
            "the checked copy takes the table's name; writers reach it from here (DDL reference: RENAME TO)",
        ),
        *keyed,
        unlabel(live.table_id, "the run labels go with the run: the table is exactly the declared one"),
        MigrationStep(
            "recheck",
            f"content fingerprint of {frozen}: unchanged since the comparison",
            "a write in flight at the freeze could land in the original late; then it is kept and the run stops",
            {"source": source},
        ),
        MigrationStep(
            "sql",
            f"DROP TABLE {quote(frozen)}",
            "last, once the checked copy is the table; the snapshot taken first and time travel keep it recoverable",
        ),
    ]


def _fingerprint(columns: str, table_id: str, condition: str) -> str:
    """Row count and an order-free fingerprint of the rows' values: FARM_FINGERPRINT of each row's JSON
    (https://cloud.google.com/bigquery/docs/reference/standard-sql/hash_functions), summed exactly and XORed."""
    row = f"FARM_FINGERPRINT(TO_JSON_STRING(STRUCT({columns})))"
    return (
        f"SELECT COUNT(*), SUM(CAST(f AS BIGNUMERIC)), BIT_XOR(f) FROM (SELECT {row} AS f "
        f"FROM {quote(table_id)}{condition})"
    )


def _same_structure(declared: Column, live: Column, renamed: dict[str, str], path: str) -> bool:
    if (declared.name, declared.type, declared.mode) != (live.name, live.type, live.mode):
        return False
    if len(declared.fields) != len(live.fields) or any(k.startswith(f"{path}.") for k in renamed):
        return False
    return all(
        (found := find_column(live.fields, f.name)) is not None
        and _same_structure(f, found, renamed, f"{path}.{f.name}")
        for f in declared.fields
    )


def _expression(declared: Column, live: Column, source: str, renamed: dict[str, str], path: str) -> str:
    """SQL reading the live value at `source` as the declared column (renames, casts, nested records)."""
    if declared.type == "RECORD":
        if _same_structure(declared, live, renamed, path) and declared.name == live.name:
            return source
        element = "e" if declared.mode == "REPEATED" else source
        fields = []
        for sub in declared.fields:
            sub_path = f"{path}.{sub.name}"
            old = renamed.get(sub_path)
            found = find_column(live.fields, sub.name) or (
                find_column(live.fields, old.rsplit(".", 1)[-1]) if old else None
            )
            if found is None:
                fields.append(f"CAST(NULL AS {sql_type(sub)}) AS `{sub.name}`")
            else:
                inner = _expression(sub, found, f"{element}.`{found.name}`", renamed, sub_path)
                fields.append(f"{inner} AS `{sub.name}`")
        if declared.mode == "REPEATED":
            return f"ARRAY(SELECT AS STRUCT {', '.join(fields)} FROM UNNEST({source}) AS e WITH OFFSET AS o ORDER BY o)"
        return f"IF({source} IS NULL, NULL, STRUCT({', '.join(fields)}))"
    if declared.type == live.type:
        return source
    if declared.mode == "REPEATED":
        return f"ARRAY(SELECT CAST(e AS {declared.type}) FROM UNNEST({source}) AS e WITH OFFSET AS o ORDER BY o)"
    return f"CAST({source} AS {declared.type})"


# ---------------------------------------------------------------- diff: which changes migrate covers

# diff names the rebuild's table by its pattern: the time is the one migrate runs at.
_PLACEHOLDER_TIME = datetime(2000, 1, 1)
# The provider input of each TableState field a rebuild creates the table with: what a migration brings to
# the declaration, so that after it and a refresh the provider finds no difference there. Every other change
# of the table (a replacement trigger, which the engine decides before and apart from the provider's diff:
# pulumi/pulumi pkg/resource/deploy/step_generator.go shouldTriggerReplace; a ForceNew input such as tableId
# or project; the dataset's replacement) stays as it is.
MIGRATED_PROPERTIES = {f.state: f.engine for p in TABLE_PROPERTIES if p.migrated for f in p.fields}


def mark_migration(
    changes: ResourceChanges, old: Catalog, new: Catalog, old_settings: Settings, new_settings: Settings
) -> ResourceChanges:
    """The table's changes, with what `migrate --apply` runs when it reaches the new declaration from the
    old one without losing a row (its data checks permitting); the verdict left is what pulumi up does."""
    before = next((t for t in old.tables() if t.key == changes.name), None)
    after = next((t for t in new.tables() if t.key == changes.name), None)
    if before is None or after is None or changes.verdict.rank < Verdict.UPDATE_DESTRUCTIVE.rank:
        return changes
    state, _ = declared_state(before, old_settings)
    table_id = f"{new_settings.project}.{new_settings.dataset_id(after.dataset)}.{after.table_id}"
    plan = plan_table(after, new_settings, LiveTable(table_id, state), _PLACEHOLDER_TIME)
    if plan.refusals or not plan.steps:
        return changes
    left = Verdict.UPDATE_DESTRUCTIVE if any(n.startswith("dropped column") for n in plan.notes) else Verdict.UPDATE
    if plan.checks:
        # Only the live rows can pass a data check, so offline the change still counts as it is declared.
        left = changes.verdict
    migrated = set(MIGRATED_PROPERTIES.values())
    left = worst([left, *(c.verdict for c in changes.changes if c.pulumi_property not in migrated)])
    stamp = name_stamp(_PLACEHOLDER_TIME)
    runs = [
        step.action.splitlines()[0].replace(stamp, "<UTC time>").replace(stamp.lower(), "<utc time>")
        for step in plan.steps
        if step.kind not in ("compare", "recheck")
    ]
    runs += [f"data check: {check.what}" for check in plan.checks]
    return dataclasses.replace(changes, migration=tuple(runs), migrated_verdict=left)
