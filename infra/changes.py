"""Old declaration vs new declaration -> what each change does to the data, with the rule behind it.

Pure core: classifies catalogs, columns and settings already in memory (reading files, git and
stack config is infra/basediff.py's job); no pulumi or google imports. The rules mirror what
pulumi-gcp does, because it wraps terraform-provider-google's `google_bigquery_table`:
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from infra import rules
from infra.catalog import Catalog, Table
from infra.declared import SCHEMA_PROPERTIES
from infra.schema import Column, count_columns, join_path

if TYPE_CHECKING:
    from infra.settings import Settings


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
)


@dataclass(frozen=True)
class Change:
    path: str
    verdict: Verdict
    reason: str
    rule: Rule
    pulumi_property: str
    # SQL that makes the live table what the new declaration says without losing data; after it and
    # `pulumi refresh` the provider has nothing left to do for this change.
    live_fix: str | None = None


def _change(
    path: str, verdict: Verdict, rule: Rule, text: str, pulumi_property: str = "schema", live_fix: str | None = None
) -> Change:
    return Change(path, verdict, f"{rule.authority}: {text} ({rule.source})", rule, pulumi_property, live_fix)


@dataclass(frozen=True)
class TableChanges:
    table: str
    changes: tuple[Change, ...]
    approved: bool = False
    # What `migrate --apply` runs instead of the replacement or refusal (infra/migration.py), and the
    # verdict left after it: the prod gate counts that one.
    migration: tuple[str, ...] = ()
    migrated_verdict: Verdict | None = None

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.changes)

    @property
    def gate_verdict(self) -> Verdict:
        return self.migrated_verdict if self.migration and self.migrated_verdict else self.verdict

    @property
    def needs_runbook(self) -> bool:
        """Loses data or cannot apply as declared, and no live fix avoids it."""
        return worst(c.verdict for c in self.changes if c.live_fix is None) in NEEDS_RUNBOOK

    @property
    def live_fixes(self) -> tuple[str, ...]:
        return tuple(c.live_fix for c in self.changes if c.live_fix)


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
        return any(t.gate_verdict.rank >= threshold.rank for t in self.tables if not t.approved)

    def needing_runbook(self) -> list[TableChanges]:
        return [t for t in self.tables if t.needs_runbook]

    def needing_live_fix(self) -> list[TableChanges]:
        return [t for t in self.tables if t.live_fixes]


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
            _compare_column(previous, column, join_path(parent, column.name), external, out)

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
        out.append(_added_column(column, join_path(parent, column.name), dropped if drop_with_add else []))
    for column in dropped:
        out.append(_dropped_column(column, join_path(parent, column.name), top_level, external, added))


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
        path = join_path(parent, column.name)
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
        out.append(_sent_in_place(path, "column description changed, in place"))
    if tuple(old.policy_tags) != tuple(new.policy_tags):
        text = "policy tag changed, in place: who may read this column changes, the data does not"
        out.append(_sent_in_place(path, text))
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
        out.append(_sent_in_place(path, text))
    if old.default_value_expression != new.default_value_expression:
        text = "default value changed, in place; applies to rows written from now on, existing rows keep theirs"
        out.append(_sent_in_place(path, text))
    if old.collation != new.collation:
        text = (
            f"collation {old.collation!r} -> {new.collation!r} is sent in place; whether BigQuery accepts a "
            "new collation on an existing column is not documented: try it on dev first"
        )
        out.append(_sent_in_place(path, text))
    if old.range_element_type != new.range_element_type:
        text = (
            f"RANGE<{old.range_element_type}> -> RANGE<{new.range_element_type}> is a type change BigQuery "
            "refuses in place; the provider compares only the type name RANGE and sends it, so apply fails"
        )
        out.append(_change(path, Verdict.REJECTED, COLUMN_TYPE_IN_PLACE, text))


def _sent_in_place(path: str, text: str) -> Change:
    """A column attribute the provider's schema rule ignores: sent as an update, no data lost."""
    return _change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text)


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


# ---------------------------------------------------------------- tables


def classify_table(old: Table, new: Table, table_ref: str | None = None) -> list[Change]:
    """Every difference between two declarations of one table, schema included; `table_ref`
    (project.dataset.table) names the live table in the SQL a reason suggests."""
    changes: list[Change] = []
    if old.description != new.description:
        text = "table description changed, in place"
        changes.append(_change("(description)", Verdict.UPDATE, TABLE_UPDATE, text, "description"))
    for key in sorted(old.labels.keys() | new.labels.keys()):
        before, after = old.labels.get(key), new.labels.get(key)
        if before != after:
            text = f"label {key}: {before} -> {after}, in place"
            changes.append(_change(f"(labels.{key})", Verdict.UPDATE, TABLE_UPDATE, text, "labels"))
    changes += _partitioning_changes(old, new, table_ref or f"<project>.{new.key}")
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
    return changes


# Table attributes classify_table handles (a test keeps this equal to Table's fields); schema_file is
# where the schema came from, not what it is; renamed_columns are hints for `migrate`, sent to nobody.
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
        "renamed_columns",
    }
)


def _partitioning_changes(old: Table, new: Table, table_ref: str) -> list[Change]:
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
    return _expiration_change(old_time.expiration_days, new_time.expiration_days, new_time.keep_forever, table_ref)


def _expiration_change(old_days: int | None, new_days: int | None, keep_forever: bool, table_ref: str) -> list[Change]:
    path = "(partitioning.expiration_days)"
    if old_days == new_days:
        return []
    if new_days is None:
        fix = f"ALTER TABLE `{table_ref}` SET OPTIONS (partition_expiration_days = NULL)"
        what = "keep_forever: true replaces" if keep_forever else "removing"
        text = (
            f"{what} the {old_days}-day partition expiration, but the provider sends nothing (expiration_ms is "
            "optional and computed): BigQuery keeps the expiration and goes on deleting old partitions. Clear it "
            f"on the live table first: {fix}; then `pulumi refresh`, then apply"
        )
        return [_change(path, Verdict.REJECTED, EXPIRATION_COMPUTED, text, "timePartitioning", fix)]
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

    def table_ref(self, table: Table) -> str:
        """project.dataset.table of the live table, as SQL names it."""
        return f"{self.new.project}.{self.new.dataset_id(table.dataset)}.{table.table_id}"


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
            changes = classify_table(before, after, stack.table_ref(after) if stack else None)
            if stack is not None:
                changes = _apply_stack(changes, stack, after)
        if not changes:
            unchanged += 1
            continue
        # A removed table's approval was applied while it was declared and is deleted with it (runbook).
        settings = None if stack is None else stack.old if after is None else stack.new
        approved = settings is not None and settings.approves_data_loss(key)
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
    if old.options.kms_key_name != new.options.kms_key_name:
        changes.append(_key_change(stack, table, old.options.kms_key_name, new.options.kms_key_name))
    return changes


def _key_change(stack: StackView, table: Table, old_key: str | None, new_key: str | None) -> Change:
    text = (
        f"stack {stack.name}: table encryption key {old_key or 'Google-managed'} -> {new_key or 'Google-managed'}; "
        "the table is deleted and recreated empty"
    )
    if new_key is None:
        return _change("(encryption)", Verdict.REPLACE, ENCRYPTION_KEY, text, "encryptionConfiguration")
    # BigQuery re-keys a table in place; once `pulumi refresh` records the key, the provider sees no change.
    fix = f"ALTER TABLE `{stack.table_ref(table)}` SET OPTIONS (kms_key_name = '{new_key}')"
    text += f". To keep its rows, re-key it in place before merging: {fix}; then `pulumi refresh --stack {stack.name}`"
    return _change("(encryption)", Verdict.REPLACE, ENCRYPTION_KEY, text, "encryptionConfiguration", fix)


def _recreated_on_change(change: Change, stack: str) -> Change:
    # The provider sends nothing for a noop or a removed expiration, so replaceOnChanges sees no change either.
    sends_nothing = change.verdict is Verdict.NOOP or change.rule is EXPIRATION_COMPUTED
    if sends_nothing or change.pulumi_property not in SCHEMA_PROPERTIES:
        return change
    text = (
        f"stack {stack} recreates the table, empty, on any schema, partitioning or clustering change; "
        f"without that setting: {change.reason}"
    )
    return _change(change.path, Verdict.REPLACE, REPLACE_ON_CHANGES, text, change.pulumi_property)
