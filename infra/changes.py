"""Old declaration vs new declaration -> what each change does to the data, with the rule behind it.

Pure core: no pulumi or google imports. The rules mirror what pulumi-gcp does, because it wraps
terraform-provider-google's `google_bigquery_table`:
- `resourceBigQueryTableSchemaIsChangeable` decides whether a schema change forces a new table.
  Columns are matched by exact name at each level, so order never matters (and a change of letter
  case is a drop plus an add). Only a column's name, type, mode and fields count; everything else is
  sent in place. It checks only the top of an added column for REQUIRED, not the fields inside it.
- `resourceBigQueryTableColumnDrop` runs `ALTER TABLE DROP COLUMN` for dropped top-level columns.
- `time_partitioning.field`, `range_partitioning.field`, `encryption_configuration`, `project` and
  `dataset_id` are ForceNew, and so is a dataset's `location`.
What BigQuery then accepts or refuses comes from its documentation ("Modifying table schemas",
"Managing partitioned tables").
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from infra import rules
from infra.catalog import (
    Catalog,
    CatalogError,
    Column,
    Problem,
    Table,
    count_columns,
    display_path,
    load_catalog,
    load_schema_file,
    parse_schema,
    read_catalog,
)
from infra.settings import Settings, load_settings, stack_file


class Verdict(StrEnum):
    """What a change does to an existing table, from best to worst."""

    NOOP = "noop"
    ADDED = "added"
    UPDATE = "update"
    UPDATE_DESTRUCTIVE = "update-destructive"
    REPLACE = "replace"
    REMOVED = "removed"
    REJECTED = "rejected"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {verdict: rank for rank, verdict in enumerate(Verdict)}
# Verdicts that lose data or cannot be applied as declared: the runbook applies to them.
NEEDS_RUNBOOK = frozenset({Verdict.UPDATE_DESTRUCTIVE, Verdict.REPLACE, Verdict.REMOVED, Verdict.REJECTED})


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: v.rank, default=Verdict.NOOP)


@dataclass(frozen=True)
class Rule:
    """Who applies a rule (the provider, BigQuery, Pulumi) and where to read it."""

    authority: str
    source: str


SCHEMA_IS_CHANGEABLE = Rule("provider", "terraform-provider-google resourceBigQueryTableSchemaIsChangeable")
SCHEMA_DIFF_SUPPRESS = Rule("provider", "terraform-provider-google bigQueryTableSchemaDiffSuppress")
COLUMN_DROP = Rule("provider", "terraform-provider-google resourceBigQueryTableColumnDrop")
TABLE_UPDATE = Rule("provider", "terraform-provider-google resourceBigQueryTableUpdate")
TIME_PARTITION_FIELD = Rule(
    "provider", "terraform-provider-google google_bigquery_table time_partitioning.field ForceNew"
)
RANGE_PARTITION_FIELD = Rule(
    "provider", "terraform-provider-google google_bigquery_table range_partitioning.field ForceNew"
)
TABLE_IDENTITY = Rule("provider", "terraform-provider-google google_bigquery_table project and dataset_id ForceNew")
DATASET_LOCATION = Rule("provider", "terraform-provider-google google_bigquery_dataset location ForceNew")
ENCRYPTION_KEY = Rule("provider", "terraform-provider-google google_bigquery_table encryption_configuration ForceNew")
EXPIRATION_COMPUTED = Rule(
    "provider", "terraform-provider-google google_bigquery_table time_partitioning.expiration_ms Optional+Computed"
)
PARTITIONING_FIXED = Rule("BigQuery", "BigQuery docs: Managing partitioned tables")
PARTITION_EXPIRATION = Rule("BigQuery", "BigQuery docs: Managing partitioned tables, partition expiration")
PARAMETERIZED_TYPES = Rule("BigQuery", "BigQuery docs: Modifying table schemas, parameterized data types")
COLUMN_TYPE_IN_PLACE = Rule("BigQuery", "BigQuery docs: Modifying table schemas")
PULUMI_CREATE = Rule("Pulumi", "Pulumi: a newly declared resource is created")
PULUMI_DELETE = Rule("Pulumi", "Pulumi: a resource no longer declared is deleted")
REPLACEMENT_TRIGGER = Rule("Pulumi", "Pulumi replacementTrigger from tenant-bigquery:recreate")
REPLACE_ON_CHANGES = Rule("Pulumi", "Pulumi replaceOnChanges from tenant-bigquery:recreateOnSchemaChange")
UNCLASSIFIED = Rule("this tool", "infra/changes.py has no rule for this attribute yet")
RULES = (
    SCHEMA_IS_CHANGEABLE,
    SCHEMA_DIFF_SUPPRESS,
    COLUMN_DROP,
    TABLE_UPDATE,
    TIME_PARTITION_FIELD,
    RANGE_PARTITION_FIELD,
    TABLE_IDENTITY,
    DATASET_LOCATION,
    ENCRYPTION_KEY,
    EXPIRATION_COMPUTED,
    PARTITIONING_FIXED,
    PARTITION_EXPIRATION,
    PARAMETERIZED_TYPES,
    COLUMN_TYPE_IN_PLACE,
    PULUMI_CREATE,
    PULUMI_DELETE,
    REPLACEMENT_TRIGGER,
    REPLACE_ON_CHANGES,
    UNCLASSIFIED,
)

# The Pulumi inputs that infra/resources.py lists in replaceOnChanges for recreateOnSchemaChange.
REPLACE_ON_CHANGE_PROPERTIES = ("schema", "timePartitioning", "rangePartitioning", "clusterings")


@dataclass(frozen=True)
class Change:
    path: str
    verdict: Verdict
    reason: str
    rule: Rule
    pulumi_property: str


def _change(path: str, verdict: Verdict, rule: Rule, text: str, pulumi_property: str = "schema") -> Change:
    return Change(path, verdict, f"{rule.authority}: {text} ({rule.source})", rule, pulumi_property)


@dataclass(frozen=True)
class TableChanges:
    table: str
    changes: tuple[Change, ...]
    approved: bool = False

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.changes)


@dataclass(frozen=True)
class DiffResult:
    old_label: str
    new_label: str
    tables: tuple[TableChanges, ...]
    stack: str | None = None
    unchanged: int = 0
    warnings: tuple[str, ...] = ()
    # Two schema files name no table: the runbook then cannot name one either.
    compares_files: bool = False

    @property
    def verdict(self) -> Verdict:
        return worst(t.verdict for t in self.tables)

    def fails(self, threshold: Verdict) -> bool:
        """A table approved for data loss in the stack's config has passed review: it never fails."""
        return any(t.verdict.rank >= threshold.rank for t in self.tables if not t.approved)

    def needing_runbook(self) -> list[TableChanges]:
        return [t for t in self.tables if t.verdict in NEEDS_RUNBOOK]


# ---------------------------------------------------------------- schemas


_TYPE_ALIASES = ({"INTEGER", "INT64"}, {"FLOAT", "FLOAT64"}, {"BOOLEAN", "BOOL"})
# ALTER COLUMN SET DATA TYPE can make these coercions in place; the provider never uses it.
_DDL_COERCIBLE = {
    ("INT64", "NUMERIC"),
    ("INT64", "BIGNUMERIC"),
    ("INT64", "FLOAT64"),
    ("NUMERIC", "BIGNUMERIC"),
    ("NUMERIC", "FLOAT64"),
}


def _same_type(old: str, new: str) -> bool:
    """The provider's equality: case-insensitive, three alias pairs, and STRUCT is not RECORD."""
    old, new = old.upper(), new.upper()
    return old == new or any(old in pair and new in pair for pair in _TYPE_ALIASES)


def _mode(mode: str | None) -> str:
    return (mode or "NULLABLE").upper()


def _is_record(column: Column) -> bool:
    return column.type.upper() in ("RECORD", "STRUCT")


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def classify_schema(old: Sequence[Column], new: Sequence[Column], *, external: bool = False) -> list[Change]:
    """Every difference between two versions of a table's columns, each with its verdict and rule."""
    changes: list[Change] = []
    _compare_level(tuple(old), tuple(new), "", external, changes)
    return changes


def _compare_level(
    old: tuple[Column, ...], new: tuple[Column, ...], parent: str, external: bool, out: list[Change]
) -> None:
    top_level = not parent
    old_by_name = {c.name: c for c in old}
    new_by_name = {c.name: c for c in new}
    for column in new:
        previous = old_by_name.get(column.name)
        if previous is not None:
            _compare_column(previous, column, _join(parent, column.name), external, out)

    kept_old_order = [c.name for c in old if c.name in new_by_name]
    kept_new_order = [c.name for c in new if c.name in old_by_name]
    if kept_old_order != kept_new_order:
        where = f"fields of {parent}" if parent else "columns"
        out.append(
            _change(
                f"{parent}.(field order)" if parent else "(column order)",
                Verdict.NOOP,
                SCHEMA_DIFF_SUPPRESS,
                f"order of the {where} changed; columns are compared by name, so nothing is sent",
            )
        )

    added = [c for c in new if c.name not in old_by_name]
    dropped = [c for c in old if c.name not in new_by_name]
    # The provider refuses in-place drops alongside top-level additions: that is how a rename looks.
    drop_with_add = top_level and bool(dropped) and bool(added)
    for column in added:
        out.append(_added_column(column, _join(parent, column.name), dropped if drop_with_add else []))
    for column in dropped:
        out.append(_dropped_column(column, _join(parent, column.name), top_level, external, added))


def _added_column(column: Column, path: str, dropped_alongside: list[Column]) -> Change:
    mode = _mode(column.mode)
    if mode == "REQUIRED":
        return _change(
            path,
            Verdict.REPLACE,
            SCHEMA_IS_CHANGEABLE,
            "a new REQUIRED column forces a new table, recreated empty (BigQuery itself refuses to add a "
            "REQUIRED column to an existing table: add it NULLABLE)",
        )
    if dropped_alongside:
        names = ", ".join(c.name for c in dropped_alongside)
        return _change(
            path,
            Verdict.REPLACE,
            SCHEMA_IS_CHANGEABLE,
            f"a column added in the same change as dropping {names} forces a new table, recreated empty "
            f"(a rename looks like this){_rename_hint(dropped_alongside, column, is_new=True)}",
        )
    existing_rows = "an empty array" if mode == "REPEATED" else "NULL"
    text = f"new {mode} column, added in place; existing rows read {existing_rows}"
    required_inside = _required_fields(column.fields, path)
    if required_inside:
        text += (
            f". Its REQUIRED fields ({', '.join(required_inside)}) are fine: BigQuery accepts REQUIRED fields "
            "inside a new RECORD, and the provider checks only the added column's own mode"
        )
    return _change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text)


def _required_fields(columns: tuple[Column, ...], parent: str) -> list[str]:
    found: list[str] = []
    for column in columns:
        path = _join(parent, column.name)
        if _mode(column.mode) == "REQUIRED":
            found.append(path)
        found += _required_fields(column.fields, path)
    return found


def _dropped_column(column: Column, path: str, top_level: bool, external: bool, added: list[Column]) -> Change:
    what = f"{path} (a RECORD of {count_columns(column.fields)} field(s))" if column.fields else path
    if external:
        text = f"dropping {what} from an external table forces a new table (never dropped in place)"
        return _change(path, Verdict.REPLACE, SCHEMA_IS_CHANGEABLE, text)
    if not top_level:
        text = (
            f"dropping the nested field {what} forces a new table, recreated empty "
            "(only top-level columns are dropped in place)"
        )
        return _change(path, Verdict.REPLACE, SCHEMA_IS_CHANGEABLE, text)
    if added:
        names = ", ".join(c.name for c in added)
        hint = "".join(_rename_hint([column], a, is_new=False) for a in added)
        text = (
            f"dropping {what} in the same change as adding {names} forces a new table, recreated empty "
            f"(a rename looks like this){hint}"
        )
        return _change(path, Verdict.REPLACE, SCHEMA_IS_CHANGEABLE, text)
    text = f"{what} is dropped in place with ALTER TABLE DROP COLUMN: its data is lost, the other columns stay"
    return _change(path, Verdict.UPDATE_DESTRUCTIVE, COLUMN_DROP, text)


def _rename_hint(dropped: list[Column], added: Column, *, is_new: bool) -> str:
    match = [d for d in dropped if _same_type(d.type, added.type) and _mode(d.mode) == _mode(added.mode)]
    if len(match) != 1:
        return ""
    old, new = (match[0].name, added.name)
    if old.lower() == new.lower():
        return (
            f". {old} -> {new} differs only in letter case: BigQuery treats them as one column, but the "
            "provider matches names exactly; keep the old spelling"
        )
    if not is_new:
        return ""
    return (
        f". If {old} -> {new} is a rename: BigQuery's ALTER TABLE RENAME COLUMN would keep the data, "
        "but the provider does not use it"
    )


def _compare_column(old: Column, new: Column, path: str, external: bool, out: list[Change]) -> None:
    if old is new:
        return
    if not _same_type(old.type, new.type):
        out.append(_type_change(old, new, path))
        return
    old_mode, new_mode = _mode(old.mode), _mode(new.mode)
    if old_mode != new_mode:
        out.append(_mode_change(old_mode, new_mode, path, record=bool(old.fields and new.fields)))
    if (old.description or "") != (new.description or ""):
        out.append(_change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, "column description changed, in place"))
    if tuple(old.policy_tags) != tuple(new.policy_tags):
        text = "policy tag changed, in place: who may read this column changes, the data does not"
        out.append(_change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text))
    _compare_parameters(old, new, path, out)
    if _is_record(old):
        _compare_level(old.fields, new.fields, path, external, out)


def _type_change(old: Column, new: Column, path: str) -> Change:
    text = f"type change {old.type} -> {new.type} forces a new table, recreated empty"
    pair = (rules.canonical_type(old.type), rules.canonical_type(new.type))
    if pair in _DDL_COERCIBLE and _mode(old.mode) == _mode(new.mode):
        text += (
            f". BigQuery's ALTER COLUMN SET DATA TYPE could widen {pair[0]} to {pair[1]} in place, "
            "but the provider does not use it"
        )
    return _change(path, Verdict.REPLACE, SCHEMA_IS_CHANGEABLE, text)


def _mode_change(old: str, new: str, path: str, *, record: bool) -> Change:
    if old == "REQUIRED" and new == "NULLABLE":
        text = "REQUIRED relaxed to NULLABLE in place; existing values stay"
        return _change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text)
    text = f"mode change {old} -> {new} forces a new table, recreated empty (only REQUIRED -> NULLABLE is in place)"
    if record:
        text += (
            ". On some runs the provider compares this RECORD's fields first and skips its mode "
            "(Go map order); BigQuery then refuses the update instead"
        )
    return _change(path, Verdict.REPLACE, SCHEMA_IS_CHANGEABLE, text)


def _compare_parameters(old: Column, new: Column, path: str, out: list[Change]) -> None:
    """Parameters the provider never replaces for: it sends them, and BigQuery decides."""
    if old.max_length != new.max_length:
        widened = new.max_length is None or (old.max_length is not None and new.max_length > old.max_length)
        out.append(_parameter_change(path, f"maxLength {old.max_length} -> {new.max_length}", widened))
    if (old.precision, old.scale) != (new.precision, new.scale):
        change = f"precision/scale ({old.precision}, {old.scale}) -> ({new.precision}, {new.scale})"
        out.append(_parameter_change(path, change, _numeric_widened(old, new)))
    if old.rounding_mode != new.rounding_mode:
        text = (
            f"roundingMode {old.rounding_mode} -> {new.rounding_mode}, in place; it applies to values written "
            "from now on, existing values stay as stored"
        )
        out.append(_change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text))
    if old.default_value_expression != new.default_value_expression:
        text = "default value changed, in place; applies to rows written from now on, existing rows keep theirs"
        out.append(_change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text))
    if old.collation != new.collation:
        text = (
            f"collation {old.collation!r} -> {new.collation!r} is sent in place; whether BigQuery accepts a "
            "new collation on an existing column is not documented: try it on dev first"
        )
        out.append(_change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text))
    if old.range_element_type != new.range_element_type:
        text = (
            f"RANGE<{old.range_element_type}> -> RANGE<{new.range_element_type}> is a type change BigQuery "
            "refuses in place; the provider compares only the type name RANGE and sends it, so apply fails"
        )
        out.append(_change(path, Verdict.REJECTED, COLUMN_TYPE_IN_PLACE, text))


def _parameter_change(path: str, change: str, widened: bool) -> Change:
    if widened:
        return _change(path, Verdict.UPDATE, PARAMETERIZED_TYPES, f"{change} widens the type in place; values stay")
    text = f"{change} narrows the type, which BigQuery refuses in place (existing values might not fit); apply fails"
    return _change(path, Verdict.REJECTED, PARAMETERIZED_TYPES, text)


def _numeric_widened(old: Column, new: Column) -> bool:
    if new.precision is None:
        return True
    if old.precision is None:
        return False
    old_scale, new_scale = old.scale or 0, new.scale or 0
    return new_scale >= old_scale and new.precision - new_scale >= old.precision - old_scale


def classify_raw_schemas(old: Any, new: Any, *, external: bool = False) -> list[Change]:
    """Classify two schemas as parsed from JSON. Deployed tables can exceed the documented column
    limit (the corpus has one), so that check alone is waived; any other problem raises CatalogError."""
    old_columns = _parse_tolerating_column_limit(old, "old")
    new_columns = _parse_tolerating_column_limit(new, "new")
    return classify_schema(old_columns, new_columns, external=external)


def _parse_tolerating_column_limit(raw: Any, name: str) -> tuple[Column, ...]:
    columns, problems = parse_schema(raw, name)
    if count_columns(columns) > rules.MAX_COLUMNS:
        # Over the limit, the only problem reported at (top) is the column count itself.
        problems = [p for p in problems if p.path != "(top)"]
    if problems:
        raise CatalogError(problems)
    return columns


# ---------------------------------------------------------------- tables


def classify_table(old: Table, new: Table) -> list[Change]:
    """Every difference between two declarations of one table, schema included."""
    changes: list[Change] = []
    if old.description != new.description:
        text = "table description changed, in place"
        changes.append(_change("(description)", Verdict.UPDATE, TABLE_UPDATE, text, "description"))
    for key in sorted(old.labels.keys() | new.labels.keys()):
        before, after = old.labels.get(key), new.labels.get(key)
        if before != after:
            text = f"label {key}: {before} -> {after}, in place"
            changes.append(_change(f"(labels.{key})", Verdict.UPDATE, TABLE_UPDATE, text, "labels"))
    changes += _partitioning_changes(old, new)
    if old.require_partition_filter != new.require_partition_filter:
        text = (
            "require_partition_filter switched on, in place: queries without a partition filter start failing"
            if new.require_partition_filter
            else "require_partition_filter switched off, in place"
        )
        changes.append(
            _change("(require_partition_filter)", Verdict.UPDATE, TABLE_UPDATE, text, "requirePartitionFilter")
        )
    if old.clustering != new.clustering:
        text = (
            f"clustering [{', '.join(old.clustering)}] -> [{', '.join(new.clustering)}], in place; "
            "no data lost, new data is clustered the new way"
        )
        changes.append(_change("(clustering)", Verdict.UPDATE, TABLE_UPDATE, text, "clusterings"))
    changes += classify_schema(old.schema, new.schema)
    for name in _unclassified_fields(old):
        if getattr(old, name) != getattr(new, name):
            text = f"{name} changed; assumed to recreate the table until a rule classifies it"
            changes.append(_change(f"({name})", Verdict.REPLACE, UNCLASSIFIED, text, name))
    return changes


# Table attributes classify_table handles; schema_file is where the schema came from, not what it is.
CLASSIFIED_TABLE_FIELDS = frozenset(
    {
        "dataset",
        "table_id",
        "description",
        "schema",
        "schema_file",
        "time_partitioning",
        "range_partitioning",
        "require_partition_filter",
        "clustering",
        "labels",
    }
)


def _unclassified_fields(table: Table) -> list[str]:
    return [f.name for f in fields(table) if f.name not in CLASSIFIED_TABLE_FIELDS]


def _partitioning_changes(old: Table, new: Table) -> list[Change]:
    old_time, new_time = old.time_partitioning, new.time_partitioning
    old_range, new_range = old.range_partitioning, new.range_partitioning
    if (old_time, old_range) == (new_time, new_range):
        return []
    old_field = old_time.field if old_time else old_range.field if old_range else None
    new_field = new_time.field if new_time else new_range.field if new_range else None
    was, now = _describe_partitioning(old), _describe_partitioning(new)

    if old_range or new_range:
        if old_range and new_range and old_range.field == new_range.field:
            text = f"range partitioning {was} -> {now}: BigQuery cannot change the ranges in place, so apply fails"
            return [_change("(partitioning.range)", Verdict.REJECTED, PARTITIONING_FIXED, text, "rangePartitioning")]
        text = f"partitioning {was} -> {now}: range_partitioning.field changes, forcing a new table, recreated empty"
        return [_change("(partitioning)", Verdict.REPLACE, RANGE_PARTITION_FIELD, text, "rangePartitioning")]

    if old_field != new_field:
        # Adding or removing a column-partitioned spec changes the field too: the provider replaces.
        text = f"partitioning {was} -> {now}: time_partitioning.field changes, forcing a new table, recreated empty"
        return [_change("(partitioning.field)", Verdict.REPLACE, TIME_PARTITION_FIELD, text, "timePartitioning")]
    if old_time is None or new_time is None:
        direction = "partition an unpartitioned table" if new_time else "remove a table's partitioning"
        text = (
            f"partitioning {was} -> {now}: BigQuery cannot {direction} in place and the provider sends it as an "
            "update, so apply fails; recreate the table (tenant-bigquery:recreate) to do it"
        )
        return [_change("(partitioning)", Verdict.REJECTED, PARTITIONING_FIXED, text, "timePartitioning")]
    if old_time.type != new_time.type:
        text = (
            f"partition granularity {old_time.type} -> {new_time.type}: BigQuery cannot change it in place and the "
            "provider sends it as an update, so apply fails; recreate the table (tenant-bigquery:recreate) to do it"
        )
        return [_change("(partitioning.type)", Verdict.REJECTED, PARTITIONING_FIXED, text, "timePartitioning")]
    return _expiration_change(old_time.expiration_days, new_time.expiration_days)


def _expiration_change(old_days: int | None, new_days: int | None) -> list[Change]:
    path = "(partitioning.expiration_days)"
    if old_days == new_days:
        return []
    if new_days is None:
        text = (
            f"expiration removed, but nothing is sent: expiration_ms is optional and computed, so the {old_days}-day "
            "expiration stays in BigQuery and partitions keep expiring; only sending expiration_ms 0 stops it, "
            "which infra/resources.py does not do"
        )
        return [_change(path, Verdict.NOOP, EXPIRATION_COMPUTED, text, "timePartitioning")]
    if old_days is not None and new_days > old_days:
        text = f"partition expiration {old_days} -> {new_days} days, in place; partitions are kept longer"
        return [_change(path, Verdict.UPDATE, PARTITION_EXPIRATION, text, "timePartitioning")]
    text = (
        f"partition expiration {old_days or 'none'} -> {new_days} days, in place: BigQuery deletes every partition "
        f"older than {new_days} days"
    )
    return [_change(path, Verdict.UPDATE_DESTRUCTIVE, PARTITION_EXPIRATION, text, "timePartitioning")]


def _describe_partitioning(table: Table) -> str:
    if table.time_partitioning:
        spec = table.time_partitioning
        return f"{spec.type} on {spec.field or '_PARTITIONTIME'}"
    if table.range_partitioning:
        rng = table.range_partitioning
        return f"range {rng.field} [{rng.start}, {rng.end}) step {rng.interval}"
    return "none"


# ---------------------------------------------------------------- catalogs and stacks


@dataclass(frozen=True)
class StackView:
    """One stack's settings at the base (None when absent or unreadable there) and in the working tree."""

    name: str
    old: Settings | None
    new: Settings


def classify_catalogs(old: Catalog, new: Catalog, stack: StackView | None = None) -> tuple[list[TableChanges], int]:
    """Per table (sorted by dataset.table) its changes; and how many tables are unchanged."""
    old_tables = {t.key: t for t in old.tables()}
    new_tables = {t.key: t for t in new.tables()}
    result: list[TableChanges] = []
    unchanged = 0
    for key in sorted(old_tables.keys() | new_tables.keys()):
        before, after = old_tables.get(key), new_tables.get(key)
        if before is None:
            text = "new table, created empty; no existing data is touched"
            changes = [_change("(table)", Verdict.ADDED, PULUMI_CREATE, text, "table")]
        elif after is None:
            text = (
                "no longer declared: the table is deleted with all of its rows (a protected stack refuses "
                "unless an earlier up applied its approval in tenant-bigquery:approveDataLoss while still declared)"
            )
            changes = [_change("(table)", Verdict.REMOVED, PULUMI_DELETE, text, "table")]
        else:
            changes = classify_table(before, after)
            if stack is not None:
                changes = _apply_stack(changes, stack, after)
        if not changes:
            unchanged += 1
            continue
        approved = stack is not None and stack.new.approves_data_loss(key)
        result.append(TableChanges(key, tuple(changes), approved))
    return result, unchanged


def _apply_stack(changes: list[Change], stack: StackView, table: Table) -> list[Change]:
    """What the stack's config adds: recreateOnSchemaChange, and settings whose change replaces the table."""
    if stack.new.options.recreate_on_schema_change:
        changes = [_recreated_on_change(c, stack.name) for c in changes]
    if stack.old is None:
        return changes
    old, new = stack.old, stack.new
    replacing = [
        ("(project)", TABLE_IDENTITY, "GCP project", old.project, new.project, "project"),
        (
            "(dataset)",
            TABLE_IDENTITY,
            "dataset id",
            old.dataset_id(table.dataset),
            new.dataset_id(table.dataset),
            "datasetId",
        ),
        ("(location)", DATASET_LOCATION, "dataset location", old.options.location, new.options.location, "location"),
        (
            "(encryption)",
            ENCRYPTION_KEY,
            "table encryption key",
            old.options.kms_key_name or "Google-managed",
            new.options.kms_key_name or "Google-managed",
            "encryptionConfiguration",
        ),
        (
            "(recreate)",
            REPLACEMENT_TRIGGER,
            "forced-recreation token",
            old.recreate_token(table.dataset, table.table_id) or "none",
            new.recreate_token(table.dataset, table.table_id) or "none",
            "replacementTrigger",
        ),
    ]
    for path, rule, what, before, after, pulumi_property in replacing:
        if before != after:
            text = f"stack {stack.name}: {what} {before} -> {after}; the table is deleted and recreated empty"
            changes.append(_change(path, Verdict.REPLACE, rule, text, pulumi_property))
    return changes


def _recreated_on_change(change: Change, stack: str) -> Change:
    if change.verdict is Verdict.NOOP or change.pulumi_property not in REPLACE_ON_CHANGE_PROPERTIES:
        return change
    text = (
        f"stack {stack} recreates the table, empty, on any schema, partitioning or clustering change; "
        f"without that setting: {change.reason}"
    )
    return _change(change.path, Verdict.REPLACE, REPLACE_ON_CHANGES, text, change.pulumi_property)


def diff_schema_files(old: Path, new: Path, *, external: bool = False) -> DiffResult:
    """Two schema files of one table, each validated as `validate` does (every problem of both at once)."""
    problems: list[Problem] = []
    loaded: list[tuple[Column, ...]] = []
    for path in (old, new):
        try:
            loaded.append(load_schema_file(path))
        except CatalogError as error:
            problems += error.problems
    if problems:
        raise CatalogError(problems)
    changes = classify_schema(loaded[0], loaded[1], external=external)
    table = TableChanges(display_path(new), tuple(changes))
    return DiffResult(display_path(old), display_path(new), (table,), compares_files=True)


# ---------------------------------------------------------------- the catalog at a git ref


class BaseRefError(Exception):
    """The --base ref cannot be resolved or read; the message says how to fix it."""


DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")
_CATALOG_PATHS = ("stacks", "schemas", "Pulumi.*.yaml")


def diff_against_base(root: Path, base: str | None, stack: str | None) -> DiffResult:
    """The catalog at `base` (default: the merge base with the default branch) vs the working tree."""
    new_catalog = load_catalog(root)
    new_settings = load_settings(root, stack, new_catalog) if stack else None
    git = _Git(root)
    commit, label = git.resolve(base)
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tenant-bigquery-base-") as tmp:
        old_root = Path(tmp)
        git.extract(commit, old_root)
        old_catalog, problems = _load_catalog_leniently(old_root, label)
        warnings += [f"{_relative(p, old_root)} (at {label}; compared as far as it loads)" for p in problems]
        old_settings = None
        if stack and stack_file(old_root, stack).is_file():
            try:
                old_settings = load_settings(old_root, stack)
            except CatalogError as error:
                warnings += [f"{_relative(p, old_root)} (at {label})" for p in error.problems]
                warnings.append(f"stack {stack}: its settings at {label} are unreadable; their changes are not shown")
    view = StackView(stack, old_settings, new_settings) if stack and new_settings else None
    tables, unchanged = classify_catalogs(old_catalog, new_catalog, view)
    return DiffResult(label, "working tree", tuple(tables), stack, unchanged, tuple(warnings))


def _relative(problem: Problem, root: Path) -> Problem:
    prefix = root.as_posix() + "/"
    file = problem.file[len(prefix) :] if problem.file.startswith(prefix) else problem.file
    return Problem(file, problem.path, problem.message)


def _load_catalog_leniently(root: Path, label: str) -> tuple[Catalog, list[Problem]]:
    """The base was deployed as it was, so rules added since must not hide its tables: load what
    loads, and refuse only when a declared table cannot be read at all."""
    if not (root / "stacks").is_dir():
        return Catalog(()), []
    read = read_catalog(root)
    if read.unreadable:
        prefix = root.as_posix() + "/"
        unreadable = [name.removeprefix(prefix) for name in read.unreadable]
        raise CatalogError(
            [_relative(p, root) for p in read.problems]
            + [
                Problem(
                    "--base",
                    label,
                    f"cannot read {', '.join(unreadable)} there; fix the ref's catalog or pick another --base",
                )
            ]
        )
    return read.catalog, read.problems


class _Git:
    def __init__(self, root: Path):
        executable = shutil.which("git")
        if executable is None:
            raise BaseRefError("git is not installed; compare two files with --old/--new instead")
        self.executable = executable
        self.root = root
        self.prefix = self.run("rev-parse", "--show-prefix").decode().strip()
        # From a subfolder, ls-tree and archive list only that subfolder: run them from the top.
        self.root = Path(self.run("rev-parse", "--show-toplevel").decode().strip())

    def run(self, *args: str) -> bytes:
        completed = subprocess.run(  # noqa: S603 - fixed git executable, refs verified below
            [self.executable, "-C", str(self.root), *args], capture_output=True, check=False
        )
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()
            detail = message[0] if message else f"git {args[0]} failed"
            if "not a git repository" in detail:
                detail = f"{self.root} is not inside a git repository; compare two files with --old/--new instead"
            raise BaseRefError(detail)
        return completed.stdout

    def commit_of(self, ref: str) -> str | None:
        try:
            commit = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        except BaseRefError:
            return None
        return commit.decode().strip()

    def resolve(self, base: str | None) -> tuple[str, str]:
        """The commit to compare with and how to name it."""
        if base is not None:
            commit = self.commit_of(base)
            if commit is None:
                raise BaseRefError(f"no commit {base!r} in this repository; pass a branch, tag or commit")
            return commit, f"{base} ({commit[:12]})"
        for branch in DEFAULT_BRANCHES:
            if self.commit_of(branch) is not None:
                commit = self.run("merge-base", "HEAD", branch).decode().strip()
                return commit, f"merge base with {branch} ({commit[:12]})"
        raise BaseRefError(f"no default branch ({', '.join(DEFAULT_BRANCHES)}) to compare with; pass --base REF")

    def extract(self, commit: str, target: Path) -> None:
        """stacks/, schemas/ and Pulumi.*.yaml as they were at `commit` (those that existed)."""
        tree = f"{commit}:{self.prefix}"
        names = self.run("ls-tree", "--name-only", "-z", tree).decode().split("\0")
        wanted = [n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in _CATALOG_PATHS)]
        if not wanted:
            return
        archive = self.run("archive", "--format=tar", tree, "--", *wanted)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
