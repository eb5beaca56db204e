"""Old declaration vs new declaration -> what each change does to the data, with the rule behind it.

Its size (about 600 lines) is the provider's schema rule and BigQuery's partitioning and option rules
side by side, each next to the source it cites; they share the recursive column comparison.

Pure core: classifies catalogs, columns and settings already in memory (reading files, git and
stack config is infra/files/filediff.py's and infra/files/basediff.py's job); no pulumi or google imports. The
rules mirror what pulumi-gcp does, because it wraps terraform-provider-google's `google_bigquery_table`:
- `resourceBigQueryTableSchemaIsChangeable` decides whether a schema change forces a new table.
  Columns are matched by exact name at each level, so order never matters (and a change of letter
  case is a drop plus an add). Only a column's name, type, mode and fields count; everything else is
  sent in place. It checks only the top of an added column for REQUIRED, not the fields inside it.
- `resourceBigQueryTableColumnDrop` runs `ALTER TABLE DROP COLUMN` for dropped top-level columns.
- `time_partitioning.field` and `range_partitioning.field` are ForceNew. Every other property of a
  table, a dataset and the resource options has its rule in infra/analysis/resourcediff.py.
What BigQuery then accepts or refuses comes from its documentation ("Modifying table schemas",
"Managing partitioned tables").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from infra.model import retirement, rules
from infra.model.column_attributes import CLASSIFIED, AttributeChange
from infra.model.schema import Column, count_columns, join_path

# Table-level rendering reads the catalog's types: imported by the functions that compare tables, so
# that comparing two schema files (`diff --old/--new`) does not load them.
if TYPE_CHECKING:
    from infra.model.catalog import Catalog
    from infra.model.table_properties import Table


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
class Citation:
    """Who applies a rule (the provider, BigQuery, Pulumi) and where to read it."""

    authority: str
    source: str


SCHEMA_IS_CHANGEABLE = Citation("provider", "terraform-provider-google resourceBigQueryTableSchemaIsChangeable")
SCHEMA_DIFF_SUPPRESS = Citation("provider", "terraform-provider-google bigQueryTableSchemaDiffSuppress")
COLUMN_DROP = Citation("provider", "terraform-provider-google resourceBigQueryTableColumnDrop")
TABLE_UPDATE = Citation("provider", "terraform-provider-google resourceBigQueryTableUpdate")
TIME_PARTITION_FIELD = Citation(
    "provider", "terraform-provider-google google_bigquery_table time_partitioning.field ForceNew"
)
RANGE_PARTITION_FIELD = Citation(
    "provider", "terraform-provider-google google_bigquery_table range_partitioning.field ForceNew"
)
EXPIRATION_COMPUTED = Citation(
    "provider", "terraform-provider-google google_bigquery_table time_partitioning.expiration_ms Optional+Computed"
)
IGNORE_SCHEMA_CHANGES = Citation(
    "provider", "terraform-provider-google resource_bigquery_table.go mergeDataPoliciesIntoMap (ignore_schema_changes)"
)
PARTITIONING_FIXED = Citation("BigQuery", "BigQuery docs: Managing partitioned tables")
PARTITION_EXPIRATION = Citation("BigQuery", "BigQuery docs: Managing partitioned tables, partition expiration")
PARAMETERIZED_TYPES = Citation("BigQuery", "BigQuery docs: Modifying table schemas, parameterized data types")
COLUMN_TYPE_IN_PLACE = Citation("BigQuery", "BigQuery docs: Modifying table schemas")
PULUMI_CREATE = Citation("Pulumi", "Pulumi: a newly declared resource is created")
PULUMI_DELETE = Citation(
    "Pulumi", "pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: refused while state records protect"
)
PULUMI_IMPORT = Citation("Pulumi", "pulumi/pulumi pkg/resource/deploy/step_generator.go generateSteps: isImport")
DROP_REFUSED = Citation("BigQuery", "BigQuery docs: DDL reference, ALTER TABLE DROP COLUMN")
TABLE_CONSTRAINTS = Citation(
    "provider",
    "terraform-provider-google resource_bigquery_table.go: table_constraints Optional, no ForceNew; "
    "resourceBigQueryTableUpdate PUTs the table resource (tables.update), tableConstraints only while declared",
)
PULUMI_RETAIN = Citation("Pulumi", retirement.RETAIN_RULE)


@dataclass(frozen=True)
class Change:
    path: str
    verdict: Verdict
    reason: str
    citation: Citation
    pulumi_property: str
    # What makes the live table what the new declaration says without losing data (`migrate --apply`
    # runs it); after it and a refresh the provider has nothing left to do for this change.
    live_fix: str | None = None
    # Set when the change lowers a safety of a protected stack: why, in a few words. The prod gate
    # treats it like data loss.
    lowers_safety: str | None = None


def _change(
    path: str,
    verdict: Verdict,
    citation: Citation,
    text: str,
    pulumi_property: str = "schema",
    live_fix: str | None = None,
) -> Change:
    return Change(
        path, verdict, f"{citation.authority}: {text} ({citation.source})", citation, pulumi_property, live_fix
    )


@dataclass(frozen=True)
class BrokenContract:
    """An application query (contracts/) that holds against the base and not against the change."""

    contract: str  # <service>/<query>.sql
    line: int
    column: int
    problem: str

    @property
    def where(self) -> str:
        return f"{self.contract}:{self.line}"


@dataclass(frozen=True)
class ResourceChanges:
    """The changes of one registered resource: a table (named dataset.table), a dataset or a component."""

    name: str
    changes: tuple[Change, ...]
    approved: bool = False
    kind: str = "table"
    # What `migrate --apply` runs instead of the replacement or refusal (infra/analysis/migration.py), and the
    # verdict left after it: the prod gate counts that one.
    migration: tuple[str, ...] = ()
    migrated_verdict: Verdict | None = None
    # The contracts the change breaks (infra/analysis/contracts.py): the prod gate treats them like data loss.
    broken_contracts: tuple[BrokenContract, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return worst(c.verdict for c in self.changes)

    @property
    def gate_verdict(self) -> Verdict:
        return self.migrated_verdict if self.migration and self.migrated_verdict else self.verdict

    @property
    def lowered_safeties(self) -> tuple[str, ...]:
        return tuple(c.lowers_safety for c in self.changes if c.lowers_safety)

    @property
    def needs_runbook(self) -> bool:
        """A table that loses data or cannot apply as declared, and neither `migrate` nor a live fix avoids it."""
        if self.kind != "table":
            return False
        if self.migration and self.migrated_verdict:
            return self.migrated_verdict in NEEDS_RUNBOOK
        return worst(c.verdict for c in self.changes if c.live_fix is None) in NEEDS_RUNBOOK

    @property
    def live_fixes(self) -> tuple[str, ...]:
        return tuple(c.live_fix for c in self.changes if c.live_fix)


@dataclass(frozen=True)
class DiffResult:
    old_label: str
    new_label: str
    resources: tuple[ResourceChanges, ...]
    stack: str | None = None
    unchanged: int = 0
    warnings: tuple[str, ...] = ()
    # Two schema files name no table: the runbook then cannot name one either.
    compares_files: bool = False

    @property
    def verdict(self) -> Verdict:
        return worst(t.verdict for t in self.resources)

    def fails(self, threshold: Verdict) -> bool:
        """A resource approved in the stack's approveDataLoss has passed review: it never fails. A lowered
        safety and a broken contract count as update-destructive; a change `migrate` covers counts as what is
        left after it."""
        return any(
            t.gate_verdict.rank >= threshold.rank
            or ((t.lowered_safeties or t.broken_contracts) and threshold.rank <= Verdict.UPDATE_DESTRUCTIVE.rank)
            for t in self.resources
            if not t.approved
        )

    def needing_runbook(self) -> list[ResourceChanges]:
        return [t for t in self.resources if t.needs_runbook]

    def needing_live_fix(self) -> list[ResourceChanges]:
        return [t for t in self.resources if t.live_fixes]

    def lowering_safety(self) -> list[ResourceChanges]:
        return [t for t in self.resources if t.lowered_safeties and not t.approved]

    def breaking_contracts(self) -> list[ResourceChanges]:
        return [t for t in self.resources if t.broken_contracts]


# ---------------------------------------------------------------- schemas


_TYPE_ALIASES = ({"INTEGER", "INT64"}, {"FLOAT", "FLOAT64"}, {"BOOLEAN", "BOOL"})
# The order diff lists a column's attribute changes in; an attribute not named here follows, in declaration order.
_CHANGE_ORDER = ("description", "policyTags", "maxLength", "precision", "roundingMode", "defaultValueExpression")
_CLASSIFIED = sorted(
    CLASSIFIED, key=lambda a: _CHANGE_ORDER.index(a.key) if a.key in _CHANGE_ORDER else len(_CHANGE_ORDER)
)


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
        # An equal column, fields and all, has no change: one comparison instead of a walk of its fields.
        if previous is not None and previous != column:
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
    text = (
        f"{what} is dropped in place with ALTER TABLE DROP COLUMN: its data is lost, the other columns stay. "
        "On a table with row access policies the provider replaces the table instead, recreated empty "
        "(resourceBigQueryTableSchemaIsChangeable asks BigQuery for them)"
    )
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
    if not _same_type(old.type, new.type):
        out.append(_type_change(old, new, path))
        return
    old_mode, new_mode = _mode(old.mode), _mode(new.mode)
    if old_mode != new_mode:
        out.append(_mode_change(old_mode, new_mode, path, record=bool(old.fields and new.fields)))
    _compare_attributes(old, new, path, out)
    if _is_record(old):
        _compare_level(old.fields, new.fields, path, external, out)


def _type_change(old: Column, new: Column, path: str) -> Change:
    text = f"type change {old.type} -> {new.type} forces a new table, recreated empty"
    pair = (rules.canonical_type(old.type) or old.type, rules.canonical_type(new.type) or new.type)
    if rules.coerces(*pair) and _mode(old.mode) == _mode(new.mode):
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


def _compare_attributes(old: Column, new: Column, path: str, out: list[Change]) -> None:
    """The attributes the provider's schema rule ignores: it sends them, and BigQuery decides
    (infra/model/column_attributes.py says what each change does)."""
    for attribute in _CLASSIFIED:
        before, after = attribute.compared_value(old), attribute.compared_value(new)
        if before == after:
            continue
        assert attribute.change_text is not None
        text = attribute.change_text(before, after)
        if attribute.change is AttributeChange.PARAMETER:
            assert attribute.widens is not None
            out.append(_parameter_change(path, text, attribute.widens(new.type, before, after)))
        elif attribute.change is AttributeChange.ELEMENT_TYPE:
            out.append(_change(path, Verdict.REJECTED, COLUMN_TYPE_IN_PLACE, text))
        else:
            out.append(_sent_in_place(path, text))


def _sent_in_place(path: str, text: str) -> Change:
    """A column attribute the provider's schema rule ignores: sent as an update, no data lost."""
    return _change(path, Verdict.UPDATE, SCHEMA_IS_CHANGEABLE, text)


def _parameter_change(path: str, change: str, widened: bool) -> Change:
    if widened:
        return _change(path, Verdict.UPDATE, PARAMETERIZED_TYPES, f"{change} widens the type in place; values stay")
    text = f"{change} narrows the type, which BigQuery refuses in place (existing values might not fit); apply fails"
    return _change(path, Verdict.REJECTED, PARAMETERIZED_TYPES, text)


# ---------------------------------------------------------------- tables


def classify_table(old: Table, new: Table, table_ref: str | None = None) -> list[Change]:
    """Every difference between two declarations of one table, schema included, by each property's
    classifier (infra/model/table_properties.py); `table_ref` (project.dataset.table) names the live table in the
    SQL a reason suggests."""
    from infra.model.table_properties import DIFF_ORDER

    ref = table_ref or f"<project>.{new.key}"
    changes = [change for prop in DIFF_ORDER for change in TABLE_CLASSIFIERS[prop.name](old, new, ref)]
    return changes + masking_owner_changes(old, new)


def masking_owner_changes(old: Table, new: Table) -> list[Change]:
    """The dataset's column_masking switched: whether the provider keeps data policies the schema leaves out."""
    if old.column_masking == new.column_masking:
        return []
    if new.column_masking == "governance":
        text = (
            "column_masking repository -> governance: ignore_schema_changes [dataPolicies] is set (state only); "
            "from now every update keeps the data policies the live columns carry, the governance team's included"
        )
    else:
        text = (
            "column_masking governance -> repository: ignore_schema_changes is removed (state only); from the next "
            "update the schema is authoritative, so data policies it does not declare are stripped and those "
            "columns' readers read the raw values: declare the ones to keep before this applies"
        )
    return [_change("(column_masking)", Verdict.UPDATE, IGNORE_SCHEMA_CHANGES, text, "ignoreSchemaChanges")]


def description_changes(old: Table, new: Table, _: str) -> list[Change]:
    if old.description == new.description:
        return []
    text = "table description changed, in place"
    return [_change("(description)", Verdict.UPDATE, TABLE_UPDATE, text, "description")]


def label_changes(old: Table, new: Table, _: str) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(old.labels.keys() | new.labels.keys()):
        before, after = old.labels.get(key), new.labels.get(key)
        if before != after:
            text = f"label {key}: {before} -> {after}, in place"
            changes.append(_change(f"(labels.{key})", Verdict.UPDATE, TABLE_UPDATE, text, "labels"))
    return changes


def partition_filter_changes(old: Table, new: Table, _: str) -> list[Change]:
    if old.require_partition_filter == new.require_partition_filter:
        return []
    text = (
        "require_partition_filter switched on, in place: queries without a partition filter start failing"
        if new.require_partition_filter
        else "require_partition_filter switched off, in place"
    )
    return [_change("(require_partition_filter)", Verdict.UPDATE, TABLE_UPDATE, text, "requirePartitionFilter")]


def clustering_changes(old: Table, new: Table, _: str) -> list[Change]:
    from infra.model.render import clustering_text

    if old.clustering == new.clustering:
        return []
    text = (
        f"clustering {clustering_text(old.clustering)} -> {clustering_text(new.clustering)}, in place; "
        "no data lost, new data is clustered the new way"
    )
    return [_change("(clustering)", Verdict.UPDATE, TABLE_UPDATE, text, "clusterings")]


def schema_changes(old: Table, new: Table, _: str) -> list[Change]:
    return [_drop_of_a_key_column(c, old) for c in classify_schema(old.schema, new.schema)]


def _drop_of_a_key_column(change: Change, old: Table) -> Change:
    """BigQuery's ALTER TABLE DROP COLUMN refuses a column the table is clustered or partitioned on."""
    if change.citation is not COLUMN_DROP:
        return change
    partition_field = old.time_partitioning.field if old.time_partitioning else None
    if old.range_partitioning:
        partition_field = old.range_partitioning.field
    if change.path == partition_field:
        text = (
            f"{change.path} is the partitioning column: the partitioning changes with it, which replaces the "
            "table, recreated empty (BigQuery would refuse to drop it in place)"
        )
        citation = RANGE_PARTITION_FIELD if old.range_partitioning else TIME_PARTITION_FIELD
        return _change(change.path, Verdict.REPLACE, citation, text)
    if change.path in old.clustering:
        text = (
            f"{change.path} is a clustering column: the provider runs ALTER TABLE DROP COLUMN before it updates "
            "the clustering (resourceBigQueryTableUpdate), and BigQuery refuses to drop a clustering column, so "
            "apply fails. Remove it from clustering in an earlier change, or recreate the table"
        )
        return _change(change.path, Verdict.REJECTED, DROP_REFUSED, text)
    return change


def partitioning_changes(old: Table, new: Table, table_ref: str) -> list[Change]:
    from infra.model.render import partitioning_text
    from infra.model.table_properties import partitioning_args

    old_time, new_time = old.time_partitioning, new.time_partitioning
    old_range, new_range = old.range_partitioning, new.range_partitioning
    if (old_time, old_range) == (new_time, new_range):
        return []
    old_field = old_time.field if old_time else old_range.field if old_range else None
    new_field = new_time.field if new_time else new_range.field if new_range else None
    was, now = partitioning_text(*partitioning_args(old)), partitioning_text(*partitioning_args(new))

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
            "optional and computed): BigQuery keeps the expiration and goes on deleting old partitions. `migrate "
            f"--apply` clears it on the live table first ({fix}), then `pulumi up --refresh` applies the rest"
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


def constraint_changes(old: Table, new: Table, _: str) -> list[Change]:
    """Unenforced keys change in place and touch no row; BigQuery trusts them, so rows that break a new key give
    wrong results to the joins it optimises (BigQuery docs: Use primary and foreign keys)."""
    from infra.model.table_properties import Constraints, table_constraints_text

    before, after = old.constraints or Constraints(), new.constraints or Constraints()
    changes: list[Change] = []
    if before.primary_key != after.primary_key:
        was, now = (table_constraints_text(Constraints(c.primary_key)) for c in (before, after))
        text = f"primary key {was} -> {now}, in place; no row is read or changed"
        if after.primary_key:
            text += ": BigQuery does not enforce it, so the rows must already be unique and not NULL on it"
        changes.append(
            _change("(constraints.primary_key)", Verdict.UPDATE, TABLE_CONSTRAINTS, text, "tableConstraints")
        )
    old_keys = {k.name: k for k in before.foreign_keys}
    new_keys = {k.name: k for k in after.foreign_keys}
    for name in sorted(old_keys.keys() | new_keys.keys()):
        was_key, now_key = old_keys.get(name), new_keys.get(name)
        if was_key == now_key:
            continue
        was, now = (table_constraints_text(Constraints((), (k,))) if k else "none" for k in (was_key, now_key))
        text = f"foreign key {was} -> {now}, in place; no row is read or changed"
        changes.append(
            _change(f"(constraints.foreign_keys.{name})", Verdict.UPDATE, TABLE_CONSTRAINTS, text, "tableConstraints")
        )
    return changes


# Each table property declared in the catalog (infra/model/table_properties.py, `in_catalog`), by name:
# what a change of it does. tests/test_table_properties.py holds the two to the same properties.
TABLE_CLASSIFIERS: dict[str, Callable[[Table, Table, str], list[Change]]] = {
    "schema": schema_changes,
    "partitioning": partitioning_changes,
    "require_partition_filter": partition_filter_changes,
    "clustering": clustering_changes,
    "labels": label_changes,
    "description": description_changes,
    "constraints": constraint_changes,
}


# ---------------------------------------------------------------- catalogs


def classify_catalogs(old: Catalog, new: Catalog) -> tuple[list[ResourceChanges], int]:
    """Per table (sorted by dataset.table) its changes; and how many tables are unchanged."""
    old_tables = {t.key: t for t in old.tables()}
    new_tables = {t.key: t for t in new.tables()}
    result: list[ResourceChanges] = []
    unchanged = 0
    for key in sorted(old_tables.keys() | new_tables.keys()):
        before, after = old_tables.get(key), new_tables.get(key)
        if before is None:
            changes = [table_added()]
        elif after is None:
            changes = [table_retired() if before.retired else table_removed()]
        else:
            changes = classify_table(before, after)
            if after.retired and not before.retired:
                changes.append(table_retiring())
        if not changes:
            unchanged += 1
            continue
        result.append(ResourceChanges(key, tuple(changes)))
    return result, unchanged


def table_added(imported: bool = False) -> Change:
    if imported:
        text = "adopted with Pulumi's import option: the live table is imported as it is, nothing is created"
        return _change("(table)", Verdict.ADDED, PULUMI_IMPORT, text, "table")
    text = "new table, created empty; no existing data is touched"
    return _change("(table)", Verdict.ADDED, PULUMI_CREATE, text, "table")


def table_retired() -> Change:
    """The removal of a table whose state records retainOnDelete and no protect (`retired: true` at the base)."""
    text = (
        f"{retirement.KEPT}: Pulumi deletes it from its state only; list it under retired_tables so verify "
        f"does not report it as undeclared ({retirement.RUNBOOK})"
    )
    return _change("(table)", Verdict.NOOP, PULUMI_RETAIN, text, "table")


def table_retiring() -> Change:
    """`retired: true` newly declared: what the next `up` records."""
    text = (
        "retired: the next up records retainOnDelete and lifts protect, in Pulumi's state only, so the table's "
        f"removal afterwards leaves it and its rows in BigQuery ({retirement.RUNBOOK})"
    )
    return _change("(retired)", Verdict.NOOP, PULUMI_RETAIN, text, "retainOnDelete")


def table_removed() -> Change:
    text = (
        "no longer declared: the table is deleted with all of its rows (a protected stack refuses "
        "unless an earlier up applied its approval in tenant-bigquery:approveDataLoss while still declared)"
    )
    return _change("(table)", Verdict.REMOVED, PULUMI_DELETE, text, "table")
