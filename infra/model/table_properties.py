"""Every table property, declared once, and the table's typed shapes beside them: the declaration's
struct (`TableSpec`) and the catalog's `Table`, the provider's arguments (`TableArgs`) and the state verify
and migrate compare (`TableState`). Each descriptor says where the declaration sets its property, how it is
loaded and validated, the provider argument it becomes, how the registered inputs read back into the
catalog's terms, how BigQuery's REST Table resource spells it, how `verify` compares and shows it, what a
change does (the classifier of infra/analysis/changes.py and the rule it cites), what `migrate` does with a
live table that differs, and whether a rebuild carries it.

The paths iterate these descriptors instead of naming properties: loading a declaration
(infra/model/catalog.py `_load_dataset`, through `load_properties`), the provider arguments
(infra/model/declared.py `table_args`), the REST resource a rebuild creates (`rest_resource`), the reader of a
live table (infra/analysis/drift.py `observed_state`, from the REST form `table.to_api_repr()` gives: the same
spelling the rebuild writes), verify's declared state and checks (infra/analysis/drift.py), what `migrate`
plans and brings to the declaration (infra/analysis/migration.py `_Planner.properties`,
`MIGRATED_PROPERTIES`), which inputs the column classifier judges and how it reads them
(infra/analysis/resourcediff.py `CLASSIFIED_TABLE_PROPERTIES`, `_as_table` through `fields_from_inputs`).
tests/test_table_properties.py walks every descriptor through every path.

The REST spellings are those of https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#Table:
int64 fields (expirationMs, the range bounds) are JSON strings, unset fields are absent.

Pure core: no pulumi or google imports.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NotRequired, TypedDict

import msgspec

from infra.contract import DATA_LOSS_APPROVED, RETENTION_FOREVER
from infra.model import rules, schema, settings
from infra.model.problems import Problem
from infra.model.render import clustering_text, constraints_text, partitioning_text, short_text
from infra.model.rules import MS_PER_DAY
from infra.model.schema import Column, parse_schema
from infra.model.settings import Settings

# ---------------------------------------------------------------- the table as declared


@dataclass(frozen=True)
class TimePartitioning:
    type: str
    field: str | None = None
    expiration_days: int | None = None
    keep_forever: bool = False


@dataclass(frozen=True)
class RangePartitioning:
    field: str
    start: int
    end: int
    interval: int


@dataclass(frozen=True)
class ForeignKey:
    name: str
    column: str
    table: str  # the referenced table, in the same dataset
    referenced_column: str


@dataclass(frozen=True)
class Constraints:
    """Unenforced primary and foreign keys: BigQuery trusts the data to keep them."""

    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table of the catalog: its identity, and one field per property declared in the catalog."""

    dataset: str
    table_id: str
    description: str
    schema: tuple[Column, ...]
    schema_file: str
    time_partitioning: TimePartitioning | None = None
    range_partitioning: RangePartitioning | None = None
    require_partition_filter: bool = False
    clustering: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    constraints: Constraints | None = None
    renamed_columns: dict[str, str] = field(default_factory=dict)  # new name: old name, for `migrate`
    retired: bool = False  # registered to be kept on removal (infra/model/retirement.py)
    column_masking: str = "repository"  # its dataset's: who attaches data policies (infra/model/catalog.py)

    @property
    def key(self) -> str:
        return f"{self.dataset}.{self.table_id}"


# The keys of tables.<table> in stacks/<dataset>.yaml (infra/model/catalog.py DatasetSpec holds them).


class RangeSpec(msgspec.Struct, forbid_unknown_fields=True):
    field: str
    start: int
    end: int
    interval: int


class PartitioningSpec(msgspec.Struct, forbid_unknown_fields=True):
    field: str | None = None
    type: str | None = None
    expiration_days: int | None = None
    keep_forever: bool = False
    range: RangeSpec | None = None


class ReferenceSpec(msgspec.Struct, forbid_unknown_fields=True):
    table: str
    column: str


class ForeignKeySpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    column: str
    references: ReferenceSpec


class ConstraintsSpec(msgspec.Struct, forbid_unknown_fields=True):
    primary_key: list[str] = []
    foreign_keys: list[ForeignKeySpec] = []


class TableSpec(msgspec.Struct, forbid_unknown_fields=True):
    description: str = ""
    schema_file: str | None = msgspec.field(default=None, name="schema")
    partitioning: PartitioningSpec | None = None
    require_partition_filter: bool = False
    clustering: list[str] | msgspec.UnsetType = msgspec.UNSET  # not given: not checked; [] is refused
    labels: dict[str, str] = {}
    constraints: ConstraintsSpec | None = None
    renamed_columns: dict[str, str] = {}
    retired: bool = False


# ---------------------------------------------------------------- what the provider receives


class RangeArgs(TypedDict):
    start: int
    end: int
    interval: int


class TimePartitioningArgs(TypedDict):
    type: str  # HOUR, DAY, MONTH or YEAR
    field: str | None  # None: by ingestion time
    expiration_ms: int | None  # None: partitions are kept


class RangePartitioningArgs(TypedDict):
    field: str
    range: RangeArgs


class EncryptionArgs(TypedDict):
    kms_key_name: str


class PrimaryKeyArgs(TypedDict):
    columns: list[str]


class ReferencedTableArgs(TypedDict):
    project_id: str
    dataset_id: str  # as deployed: the stack's datasetSuffix appended
    table_id: str


class ColumnReferencesArgs(TypedDict):
    referencing_column: str
    referenced_column: str


class ForeignKeyArgs(TypedDict):
    name: str
    referenced_table: ReferencedTableArgs
    column_references: ColumnReferencesArgs  # one pair: the provider's column_references has MaxItems 1


class TableConstraintsArgs(TypedDict):
    primary_key: NotRequired[PrimaryKeyArgs]
    foreign_keys: NotRequired[list[ForeignKeyArgs]]


class TableArgs(TypedDict):
    """A table's provider arguments under pulumi-gcp's names (its `TableArgsDict`, which the pure core cannot
    import): mypy checks each key where infra/pulumi_edge/resources.py hands them to the provider, and
    tests/test_declared.py against pulumi-gcp's TableArgs."""

    project: str
    dataset_id: str
    table_id: str
    description: str | None
    schema: str  # BigQuery's JSON schema, as the provider takes it
    labels: dict[str, str] | None
    deletion_protection: bool
    clusterings: list[str] | None
    time_partitioning: NotRequired[TimePartitioningArgs]
    range_partitioning: NotRequired[RangePartitioningArgs]
    require_partition_filter: NotRequired[bool]
    encryption_configuration: NotRequired[EncryptionArgs]
    table_constraints: NotRequired[TableConstraintsArgs]
    ignore_schema_changes: NotRequired[list[str]]  # ["dataPolicies"] under column_masking: governance


@dataclass(frozen=True)
class TableState:
    """A table as verify and migrate compare it, declared or live: one field per property's argument."""

    schema: tuple[Column, ...]
    time_partitioning: TimePartitioningArgs | None
    range_partitioning: RangePartitioningArgs | None
    require_partition_filter: bool
    clustering: tuple[str, ...]
    labels: Mapping[str, str]
    description: str
    kms_key_name: str | None
    table_constraints: TableConstraintsArgs | None = None
    # The versioned name BigQuery reports beside the key (the provider's kms_key_version): shown, not compared.
    kms_key_version: str | None = field(default=None, compare=False)
    # Who owns the columns' data policies (declared side): verify compares them, or only shows them.
    column_masking: str = field(default="repository", compare=False)


# ---------------------------------------------------------------- the descriptor


@dataclass(frozen=True)
class Field:
    """One provider argument of a property, under each name it goes by."""

    state: str  # the field of TableState that verify and migrate compare
    arg: str  # pulumi-gcp's TableArgs argument (TableArgs above)
    engine: str  # the input as the engine, the state file and a preview name it
    rest: str  # the top-level field of BigQuery's REST Table resource


class Compare(Enum):
    """How verify compares a property's declared and live values (infra/analysis/drift.py table_checks)."""

    EXACT = "equal values"
    LABELS = "key by key; Google's own goog- labels on the live table are set aside"
    COLUMNS = "column by column, by name at every depth (the column attributes of infra/model/column_attributes.py)"
    KEY = "equal key names, only where a key is declared or present; the version BigQuery reports is shown"


@dataclass(frozen=True)
class Verify:
    check: str  # the check's name in verify's output
    compare: Compare = Compare.EXACT
    show: Callable[[Any], str] = str
    # Checked only when this holds for the declared or the live state.
    applies: Callable[[TableState], bool] | None = None


@dataclass(frozen=True)
class Loading:
    """What a declared value is checked against: the table's columns, as read from its schema file, and
    where the declaration sets it."""

    columns: tuple[Column, ...]
    file: str
    where: str  # tables.<table>

    @functools.cached_property
    def top(self) -> dict[str, Column]:
        return {c.name.lower(): c for c in self.columns}


@dataclass(frozen=True)
class InCatalog:
    """A property declared in stacks/<dataset>.yaml: a field of `Table`, whose change
    infra/analysis/changes.py TABLE_CLASSIFIERS judges."""

    # Its TableSpec value, checked: the Table fields it fills, and the problems found.
    load: Callable[[TableSpec, Loading], tuple[dict[str, Any], list[Problem]]]
    # The registered inputs (the engine's names) read back into the same Table fields, for the classifier
    # of a change of the registrations (infra/analysis/resourcediff.py _as_table).
    from_inputs: Callable[[Mapping[str, Any]], dict[str, Any]]


class Migrate(Enum):
    """What `migrate` does where the live table's value differs from the declared one."""

    PLANNED = "decided per change (infra/analysis/migration.py PLANNERS): in place, a rebuild, or left to pulumi up"
    NOTED = "left to pulumi up, which changes it in place; the plan says so"
    LEFT = "left to pulumi up, which changes it in place"


@dataclass(frozen=True)
class TableProperty:
    name: str
    declared_by: str  # the key of stacks/<dataset>.yaml under tables.<table> (or the stack setting) that sets it
    summary: str
    # The functions holding its rules (infra/model/rules.py and below).
    validation: tuple[Callable[..., Any], ...]
    fields: tuple[Field, ...]
    send: Callable[[Table, Settings], dict[str, Any]]  # its provider arguments, by TableArgs name
    to_rest: Callable[[Mapping[str, Any]], dict[str, Any]]  # provider arguments -> REST fields
    # REST resource -> TableState fields; `columns` is the resource's schema as the caller's column reader
    # read it (the column attributes are infra/model/schema.py's and the live column reader's business).
    read: Callable[[Mapping[str, Any], tuple[Column, ...]], dict[str, Any]]
    verify: Verify
    # None for a stack setting, whose input infra/analysis/resourcediff.py TABLE_RULES rules.
    in_catalog: InCatalog | None
    change: str  # what a change does, with its source (docs/declaration.md)
    migrate: Migrate
    migrated: bool  # a rebuild creates the table with it, and `migrate` brings it to the declaration

    def value(self, state: TableState) -> Any:
        values = tuple(getattr(state, f.state) for f in self.fields)
        return values if len(values) > 1 else values[0]


# ---------------------------------------------------------------- loading and validating a declaration


def label_problems(labels: dict[str, str], file: str, where: str) -> list[Problem]:
    return [Problem(file, f"{where}.{key}" if key else where, message) for key, message in rules.check_labels(labels)]


def check_partitioning(
    spec: PartitioningSpec, columns: dict[str, Column], file: str, where: str
) -> tuple[TimePartitioning | None, RangePartitioning | None, list[Problem]]:
    problems: list[Problem] = []

    def fail(path: str, message: str) -> None:
        problems.append(Problem(file, f"{where}.{path}", message))

    if spec.range is not None:
        for key in ("field", "type", "expiration_days"):
            if getattr(spec, key) is not None:
                fail(key, "range partitioning takes only range: {field, start, end, interval}; remove it")
        if spec.keep_forever:
            fail("keep_forever", "keep_forever applies only to time partitioning; remove it")
        rng = spec.range
        column = columns.get(rng.field.lower())
        if column is None:
            fail("range.field", f"column {rng.field!r} is not a top-level column of the schema")
        elif column.type != "INT64" or column.mode == "REPEATED":
            fail(
                "range.field",
                f"range partitioning needs a non-REPEATED INT64 column; {rng.field!r} is {column.mode} {column.type}",
            )
        bounds = {"start": rng.start, "end": rng.end, "interval": rng.interval}
        bound_problems = [(key, m) for key, value in bounds.items() if (m := rules.check_range_bound(value))]
        for key, bound_problem in bound_problems:
            fail(f"range.{key}", bound_problem)
        if not bound_problems and (message := rules.check_range_partitioning(rng.field, *bounds.values())):
            fail("range", message)
        return (
            None,
            RangePartitioning(_spelled(rng.field, columns) or rng.field, rng.start, rng.end, rng.interval),
            problems,
        )

    granularity = (spec.type or "").upper()
    if granularity not in rules.PARTITION_TYPES:
        got = f"; got {spec.type!r}" if spec.type is not None else ""
        fail("type", f"time partitioning needs type: one of {', '.join(rules.PARTITION_TYPES)} (or use range:){got}")
    if spec.expiration_days is not None and (message := rules.check_expiration_days(spec.expiration_days)):
        fail("expiration_days", f"{message}; to keep data, set keep_forever: true instead")
    if spec.expiration_days is not None and spec.keep_forever:
        fail("keep_forever", "set either expiration_days or keep_forever: true, not both")
    if spec.expiration_days is None and not spec.keep_forever:
        fail(
            "expiration_days",
            "say how long partitions live: expiration_days: N, or keep_forever: true "
            "(this project's retention rule, enforced by the policy pack too)",
        )
    if spec.field is not None:
        column = columns.get(spec.field.lower())
        if column is None:
            fail("field", f"column {spec.field!r} is not a top-level column of the schema")
        elif column.mode == "REPEATED":
            fail("field", f"the partitioning column {spec.field!r} must not be REPEATED")
        elif granularity in rules.PARTITION_TYPES:
            message = rules.check_time_partition_column(column.name, column.type, granularity)
            if message:
                fail("field", message)
    partitioning = TimePartitioning(granularity, _spelled(spec.field, columns), spec.expiration_days, spec.keep_forever)
    return partitioning, None, problems


def check_partition_filter(spec: TableSpec, file: str, where: str) -> list[Problem]:
    if spec.require_partition_filter and spec.partitioning is None:
        return [
            Problem(file, f"{where}.require_partition_filter", "needs partitioning:; remove it or partition the table")
        ]
    return []


def _spelled(name: str | None, columns: dict[str, Column]) -> str | None:
    """A column as the schema spells it: BigQuery matches names ignoring case, the provider compares them exactly."""
    if name is None:
        return None
    column = columns.get(name.lower())
    return column.name if column else name


def check_clustering(clustering: list[str], columns: dict[str, Column], file: str, where: str) -> list[Problem]:
    problems = []
    if not 1 <= len(clustering) <= rules.MAX_CLUSTERING_COLUMNS:
        problems.append(
            Problem(file, where, f"clustering takes 1 to {rules.MAX_CLUSTERING_COLUMNS} columns; got {len(clustering)}")
        )
    seen: set[str] = set()
    for name in clustering:
        column = columns.get(name.lower())
        if name.lower() in seen:
            problems.append(Problem(file, f"{where}.{name}", "listed twice; keep one"))
        seen.add(name.lower())
        if column is None:
            problems.append(
                Problem(
                    file, f"{where}.{name}", "not a top-level column of the schema; clustering needs a top-level column"
                )
            )
        elif column.mode == "REPEATED":
            problems.append(Problem(file, f"{where}.{name}", "a REPEATED column cannot be a clustering column"))
        elif column.type not in rules.CLUSTERING_TYPES:
            problems.append(
                Problem(
                    file,
                    f"{where}.{name}",
                    f"a {column.type} column cannot be a clustering column; "
                    f"use one of {', '.join(sorted(rules.CLUSTERING_TYPES))}",
                )
            )
    return problems


def _load_partitioning(spec: TableSpec, loading: Loading) -> tuple[dict[str, Any], list[Problem]]:
    if spec.partitioning is None:
        return {"time_partitioning": None, "range_partitioning": None}, []
    time, range_, problems = check_partitioning(
        spec.partitioning, loading.top, loading.file, f"{loading.where}.partitioning"
    )
    return {"time_partitioning": time, "range_partitioning": range_}, problems


def _load_clustering(spec: TableSpec, loading: Loading) -> tuple[dict[str, Any], list[Problem]]:
    if isinstance(spec.clustering, msgspec.UnsetType):
        return {"clustering": ()}, []
    problems = check_clustering(spec.clustering, loading.top, loading.file, f"{loading.where}.clustering")
    return {"clustering": tuple(_spelled(name, loading.top) or name for name in spec.clustering)}, problems


def check_constraints(
    spec: ConstraintsSpec, columns: dict[str, Column], table_id: str, file: str, where: str
) -> tuple[Constraints, list[Problem]]:
    """What one table can tell of its keys; the referenced tables are `reference_problems`' business."""
    problems: list[Problem] = []

    def key_column(name: str, path: str) -> str:
        column = columns.get(name.lower())
        if column is None:
            problems.append(
                Problem(file, path, f"{name!r} is not a top-level column of the schema; keys take top-level columns")
            )
            return name
        if (message := rules.check_key_column(column.type, column.mode or "NULLABLE")) is not None:
            problems.append(Problem(file, path, message))
        return column.name

    if not spec.primary_key and not spec.foreign_keys:
        problems.append(Problem(file, where, "declare primary_key: or foreign_keys:, or remove constraints:"))
    if len(spec.primary_key) > rules.MAX_PRIMARY_KEY_COLUMNS:
        problems.append(
            Problem(
                file,
                f"{where}.primary_key",
                f"a primary key takes at most {rules.MAX_PRIMARY_KEY_COLUMNS} columns; got {len(spec.primary_key)} "
                f"({rules.CONSTRAINTS_DOC})",
            )
        )
    if len({name.lower() for name in spec.primary_key}) < len(spec.primary_key):
        problems.append(Problem(file, f"{where}.primary_key", "a column is listed twice; keep one"))
    primary_key = tuple(key_column(name, f"{where}.primary_key.{name}") for name in spec.primary_key)

    if len(spec.foreign_keys) > rules.MAX_FOREIGN_KEYS:
        problems.append(
            Problem(
                file,
                f"{where}.foreign_keys",
                f"a table takes at most {rules.MAX_FOREIGN_KEYS} foreign keys; got {len(spec.foreign_keys)} "
                f"({rules.CONSTRAINTS_DOC})",
            )
        )
    foreign_keys, names = [], set()
    for key in spec.foreign_keys:
        at = f"{where}.foreign_keys.{key.name}"
        if (message := rules.check_constraint_name(key.name)) is not None:
            problems.append(Problem(file, f"{at}.name", message))
        if key.name.lower() in names:
            problems.append(Problem(file, f"{at}.name", "two foreign keys of the table share this name; rename one"))
        names.add(key.name.lower())
        referenced = key.references.table
        if "." in referenced:
            problems.append(
                Problem(
                    file,
                    f"{at}.references.table",
                    f"{referenced!r}: a foreign key references a table of its own dataset (BigQuery keeps "
                    f"primary and foreign key relations within one dataset, {rules.CONSTRAINTS_DOC}); name the "
                    "table without its dataset",
                )
            )
        elif referenced == table_id:
            problems.append(
                Problem(
                    file,
                    f"{at}.references.table",
                    f"a foreign key cannot refer to a column of its own table ({rules.CONSTRAINTS_DOC})",
                )
            )
        column = key_column(key.column, f"{at}.column")
        foreign_keys.append(ForeignKey(key.name, column, referenced, key.references.column))
    return Constraints(primary_key, tuple(foreign_keys)), problems


def reference_problems(tables: tuple[Table, ...], file: str, retired: frozenset[str] = frozenset()) -> list[Problem]:
    """Each foreign key of a dataset's tables against the table it references: declared in the same dataset,
    its primary key exactly the referenced column (a foreign key's values are present in the primary key column
    of the referenced table: BigQuery docs "Use primary and foreign keys"), of the same type."""
    by_id = {t.table_id: t for t in tables}
    problems: list[Problem] = []
    for table in tables:
        for key in table.constraints.foreign_keys if table.constraints else ():
            at = f"tables.{table.table_id}.constraints.foreign_keys.{key.name}.references"
            target = by_id.get(key.table)
            if "." in key.table or key.table == table.table_id or key.table in retired:
                continue  # said where the table's own keys are checked; a retired one's in infra/model/retirement.py
            if target is None:
                problems.append(
                    Problem(
                        file, f"{at}.table", f"{key.table!r} is not a table of this dataset; declare it or fix the name"
                    )
                )
                continue
            primary_key = target.constraints.primary_key if target.constraints else ()
            if [c.lower() for c in primary_key] != [key.referenced_column.lower()]:
                got = f"its primary key is ({', '.join(primary_key)})" if primary_key else "it declares no primary key"
                problems.append(
                    Problem(
                        file,
                        f"{at}.column",
                        f"{key.table}.{key.referenced_column} must be {key.table}'s primary key, on its own ({got}): "
                        "a foreign key references the primary key of the referenced table, one column per key (the "
                        "provider's column_references holds one pair)",
                    )
                )
                continue
            referencing = {c.name.lower(): c for c in table.schema}.get(key.column.lower())
            referenced = {c.name.lower(): c for c in target.schema}.get(key.referenced_column.lower())
            if referencing is not None and referenced is not None and referencing.type != referenced.type:
                problems.append(
                    Problem(
                        file,
                        f"tables.{table.table_id}.constraints.foreign_keys.{key.name}.column",
                        f"{key.column} is {referencing.type} but {key.table}.{referenced.name} is {referenced.type}; "
                        "a foreign key column has the type of the primary key it references",
                    )
                )
    return problems


def _load_constraints(spec: TableSpec, loading: Loading) -> tuple[dict[str, Any], list[Problem]]:
    if spec.constraints is None:
        return {"constraints": None}, []
    table_id = loading.where.removeprefix("tables.")
    constraints, problems = check_constraints(
        spec.constraints, loading.top, table_id, loading.file, f"{loading.where}.constraints"
    )
    return {"constraints": constraints}, problems


def _load_description(spec: TableSpec, loading: Loading) -> tuple[dict[str, Any], list[Problem]]:
    message = rules.check_description(spec.description, rules.MAX_TABLE_DESCRIPTION)
    problems = [Problem(loading.file, f"{loading.where}.description", message)] if message is not None else []
    return {"description": spec.description}, problems


# ---------------------------------------------------------------- provider arguments


def merged_labels(declared: dict[str, str], settings: Settings) -> dict[str, str]:
    # Stack-wide labels (env, cost centre) win over declared ones.
    return {**declared, **settings.stack_settings.labels}


def table_labels(table: Table, settings: Settings) -> dict[str, str]:
    """Declared and stack labels, plus the decisions the policy pack must see in the table's inputs."""
    labels = merged_labels(table.labels, settings)
    if table.time_partitioning is not None and table.time_partitioning.keep_forever:
        labels.update([RETENTION_FOREVER])  # partitions never expire, on purpose (keep_forever: true)
    if settings.approves_data_loss(table.key):
        labels.update([DATA_LOSS_APPROVED])  # deletion protection is lifted, on purpose (approveDataLoss)
    return labels


def time_partitioning_args(partitioning: TimePartitioning) -> TimePartitioningArgs:
    days = partitioning.expiration_days
    return {
        "type": partitioning.type,
        "field": partitioning.field,
        "expiration_ms": days * MS_PER_DAY if days else None,
    }


def range_partitioning_args(partitioning: RangePartitioning) -> RangePartitioningArgs:
    return {
        "field": partitioning.field,
        "range": {"start": partitioning.start, "end": partitioning.end, "interval": partitioning.interval},
    }


def partitioning_args(table: Table) -> tuple[TimePartitioningArgs | None, RangePartitioningArgs | None]:
    """A table's partitioning as the provider receives it; the same without stack settings (docs, diff)."""
    time, range_ = table.time_partitioning, table.range_partitioning
    return (
        time_partitioning_args(time) if time is not None else None,
        range_partitioning_args(range_) if range_ is not None else None,
    )


def _send_partitioning(table: Table, _: Settings) -> dict[str, Any]:
    time, range_ = partitioning_args(table)
    return {
        **({"time_partitioning": time} if time is not None else {}),
        **({"range_partitioning": range_} if range_ is not None else {}),
    }


def _send_partition_filter(table: Table, _: Settings) -> dict[str, Any]:
    # Only when true: the provider reads it back only when true (resourceBigQueryTableRead), so an
    # explicit false would differ from an imported table's state.
    return {"require_partition_filter": True} if table.require_partition_filter else {}


def _send_key(_: Table, settings: Settings) -> dict[str, Any]:
    # Named on every table, not only inherited from the dataset default: the provider reads the
    # table's key back, and a configuration without it would plan a replacement on the next run.
    key = settings.stack_settings.kms_key_name
    return {"encryption_configuration": {"kms_key_name": key}} if key is not None else {}


def constraints_args(constraints: Constraints, project: str, dataset_id: str) -> TableConstraintsArgs:
    """The keys as the provider takes them; a referenced table by the project and deployed (suffixed) dataset id
    declared.py gives its own table."""
    args: TableConstraintsArgs = {}
    if constraints.primary_key:
        args["primary_key"] = {"columns": list(constraints.primary_key)}
    if constraints.foreign_keys:
        args["foreign_keys"] = [
            {
                "name": key.name,
                "referenced_table": {"project_id": project, "dataset_id": dataset_id, "table_id": key.table},
                "column_references": {"referencing_column": key.column, "referenced_column": key.referenced_column},
            }
            for key in constraints.foreign_keys
        ]
    return args


def _send_constraints(table: Table, settings: Settings) -> dict[str, Any]:
    # Only when declared: the provider sends it only when set (resourceTable, GetOk).
    if table.constraints is None:
        return {}
    return {
        "table_constraints": constraints_args(table.constraints, settings.project, settings.dataset_id(table.dataset))
    }


def constraints_of(args: TableConstraintsArgs | None) -> Constraints | None:
    if args is None:
        return None
    return Constraints(
        tuple(args.get("primary_key", {}).get("columns", ())),
        tuple(
            ForeignKey(
                key["name"],
                key["column_references"]["referencing_column"],
                key["referenced_table"]["table_id"],
                key["column_references"]["referenced_column"],
            )
            for key in args.get("foreign_keys", ())
        ),
    )


def table_constraints_text(constraints: Constraints | None) -> str:
    if constraints is None:
        return constraints_text((), ())
    keys = [(k.name, k.column, k.table, k.referenced_column) for k in constraints.foreign_keys]
    return constraints_text(constraints.primary_key, keys)


# ---------------------------------------------------------------- the REST form


def _constraints_rest(args: Mapping[str, Any]) -> dict[str, Any]:
    if "table_constraints" not in args:
        return {}
    spec = args["table_constraints"]
    rest: dict[str, Any] = {}
    if "primary_key" in spec:
        rest["primaryKey"] = {"columns": list(spec["primary_key"]["columns"])}
    if "foreign_keys" in spec:
        rest["foreignKeys"] = [
            {
                "name": key["name"],
                "referencedTable": {
                    "projectId": key["referenced_table"]["project_id"],
                    "datasetId": key["referenced_table"]["dataset_id"],
                    "tableId": key["referenced_table"]["table_id"],
                },
                "columnReferences": [
                    {
                        "referencingColumn": key["column_references"]["referencing_column"],
                        "referencedColumn": key["column_references"]["referenced_column"],
                    }
                ],
            }
            for key in spec["foreign_keys"]
        ]
    return {"tableConstraints": rest}


def _read_constraints(resource: Mapping[str, Any], _: tuple[Column, ...]) -> dict[str, Any]:
    """tables#TableConstraints: present only when the table has a key; a foreign key's columnReferences is a
    list, of which the provider takes one pair (a longer one reads as its first pair, and shows in verify as
    declared otherwise only if that pair differs)."""
    rest = resource.get("tableConstraints") or {}
    if not rest.get("primaryKey") and not rest.get("foreignKeys"):
        return {"table_constraints": None}
    args: TableConstraintsArgs = {}
    if rest.get("primaryKey"):
        args["primary_key"] = {"columns": list(rest["primaryKey"].get("columns", ()))}
    if rest.get("foreignKeys"):
        args["foreign_keys"] = [
            {
                "name": key.get("name", ""),
                "referenced_table": {
                    "project_id": key["referencedTable"]["projectId"],
                    "dataset_id": key["referencedTable"]["datasetId"],
                    "table_id": key["referencedTable"]["tableId"],
                },
                "column_references": {
                    "referencing_column": pair["referencingColumn"],
                    "referenced_column": pair["referencedColumn"],
                },
            }
            for key in rest["foreignKeys"]
            for pair in key.get("columnReferences", ())[:1]
        ]
    return {"table_constraints": args}


def _partitioning_rest(args: Mapping[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {}
    if "time_partitioning" in args:
        spec = args["time_partitioning"]
        time = {"type": spec["type"]}
        if spec["field"]:
            time["field"] = spec["field"]
        if spec["expiration_ms"]:
            time["expirationMs"] = str(spec["expiration_ms"])
        resource["timePartitioning"] = time
    if "range_partitioning" in args:
        rng = args["range_partitioning"]
        resource["rangePartitioning"] = {"field": rng["field"], "range": {k: str(v) for k, v in rng["range"].items()}}
    return resource


def _read_partitioning(resource: Mapping[str, Any], _: tuple[Column, ...]) -> dict[str, Any]:
    time, rng = resource.get("timePartitioning"), resource.get("rangePartitioning")
    return {
        "time_partitioning": {
            "type": str(time.get("type")),
            "field": time.get("field"),
            "expiration_ms": int(time["expirationMs"]) if time.get("expirationMs") else None,
        }
        if time is not None
        else None,
        "range_partitioning": {
            "field": rng["field"],
            "range": {k: int(rng["range"][k]) for k in ("start", "end", "interval")},
        }
        if rng is not None
        else None,
    }


# BigQuery reports a table's key with the version that encrypts it, `.../cryptoKeys/K/cryptoKeyVersions/N`;
# the provider keeps the key and sets the rest aside as kms_key_version, so a declared key matches
# (terraform-provider-google resource_bigquery_table.go, flattenEncryptionConfiguration: this pattern).
_KEY_VERSION = re.compile(r"(projects/.*/locations/.*/keyRings/.*/cryptoKeys/.*)/cryptoKeyVersions/.*")


def _read_key(resource: Mapping[str, Any], _: tuple[Column, ...]) -> dict[str, Any]:
    reported = (resource.get("encryptionConfiguration") or {}).get("kmsKeyName")
    versioned = _KEY_VERSION.search(reported or "")
    if versioned:
        return {"kms_key_name": versioned.group(1), "kms_key_version": reported}
    return {"kms_key_name": reported or None, "kms_key_version": None}


def _partitioned(state: TableState) -> bool:
    return bool(state.time_partitioning or state.range_partitioning)


# ---------------------------------------------------------------- the registered inputs, in the catalog's terms


@functools.lru_cache(maxsize=4096)
def registered_columns(schema: str) -> tuple[Column, ...]:
    """Parsed once per distinct schema: equal schemas then share their columns, which compare at once."""
    columns, _ = parse_schema(json.loads(schema), "(registered schema)")
    return tuple(columns)


def _partitioning_from_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    time, rng = inputs.get("timePartitioning"), inputs.get("rangePartitioning")
    expiration = int(time["expirationMs"]) // MS_PER_DAY if time and time.get("expirationMs") else None
    keep_forever = RETENTION_FOREVER in (inputs.get("labels") or {}).items()
    return {
        "time_partitioning": TimePartitioning(time["type"], time.get("field"), expiration, keep_forever)
        if time
        else None,
        "range_partitioning": RangePartitioning(
            rng["field"], *(int(rng["range"][k]) for k in ("start", "end", "interval"))
        )
        if rng
        else None,
    }


def _constraints_from_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    spec = inputs.get("tableConstraints")
    if spec is None:
        return {"constraints": None}
    return {
        "constraints": Constraints(
            tuple((spec.get("primaryKey") or {}).get("columns", ())),
            tuple(
                ForeignKey(
                    key.get("name", ""),
                    key["columnReferences"]["referencingColumn"],
                    key["referencedTable"]["tableId"],
                    key["columnReferences"]["referencedColumn"],
                )
                for key in spec.get("foreignKeys", ())
            ),
        )
    }


# ---------------------------------------------------------------- the properties

_IN_PLACE = "in place (terraform-provider-google resourceBigQueryTableUpdate)"

SCHEMA = TableProperty(
    name="schema",
    declared_by="schema",
    summary="the table's schema file in schemas/<dataset>/ (BigQuery's JSON schema format); left out: <table>.json",
    validation=(schema.parse_schema,),  # with the column rules of rules.py
    fields=(Field("schema", "schema", "schema", "schema"),),
    send=lambda table, _: {"schema": json.dumps(schema.schema_to_api(table.schema))},
    to_rest=lambda args: {"schema": {"fields": json.loads(args["schema"])}},
    read=lambda _, columns: {"schema": columns},
    verify=Verify("schema", Compare.COLUMNS),
    # The columns infra/model/catalog.py read from the schema file (its path rules are the catalog's).
    in_catalog=InCatalog(
        load=lambda _, loading: ({"schema": loading.columns}, []),
        from_inputs=lambda inputs: {"schema": registered_columns(inputs.get("schema") or "[]")},
    ),
    change="per column: the provider's schema rule (terraform-provider-google "
    "resourceBigQueryTableSchemaIsChangeable) decides between in place and a new table",
    migrate=Migrate.PLANNED,
    migrated=True,
)
PARTITIONING = TableProperty(
    name="partitioning",
    declared_by="partitioning",
    summary="time partitioning (type, field, expiration_days or keep_forever) or integer-range partitioning "
    "(range: field, start, end, interval)",
    validation=(
        check_partitioning,
        rules.check_time_partition_column,
        rules.check_expiration_days,
        rules.check_range_bound,
        rules.check_range_partitioning,
    ),
    fields=(
        Field("time_partitioning", "time_partitioning", "timePartitioning", "timePartitioning"),
        Field("range_partitioning", "range_partitioning", "rangePartitioning", "rangePartitioning"),
    ),
    send=_send_partitioning,
    to_rest=_partitioning_rest,
    read=_read_partitioning,
    verify=Verify("partitioning", show=lambda both: partitioning_text(*both)),
    in_catalog=InCatalog(load=_load_partitioning, from_inputs=_partitioning_from_inputs),
    change="a new field forces a new table (terraform-provider-google time_partitioning.field and "
    "range_partitioning.field ForceNew); another type or ranges, or partitioning added or removed, BigQuery "
    "refuses (Managing partitioned tables); the expiration changes in place, and a removed one is kept "
    "(time_partitioning.expiration_ms Optional+Computed)",
    migrate=Migrate.PLANNED,
    migrated=True,
)
PARTITION_FILTER = TableProperty(
    name="require_partition_filter",
    declared_by="require_partition_filter",
    summary="every query must filter on the partitioning column (needs partitioning:)",
    validation=(check_partition_filter,),
    fields=(
        Field(
            "require_partition_filter", "require_partition_filter", "requirePartitionFilter", "requirePartitionFilter"
        ),
    ),
    send=_send_partition_filter,
    to_rest=lambda args: {"requirePartitionFilter": True} if args.get("require_partition_filter") else {},
    read=lambda resource, _: {"require_partition_filter": bool(resource.get("requirePartitionFilter"))},
    verify=Verify(
        "partition filter", show=lambda required: "required" if required else "not required", applies=_partitioned
    ),
    in_catalog=InCatalog(
        load=lambda spec, loading: (
            {"require_partition_filter": spec.require_partition_filter},
            check_partition_filter(spec, loading.file, loading.where),
        ),
        from_inputs=lambda inputs: {"require_partition_filter": bool(inputs.get("requirePartitionFilter"))},
    ),
    change=_IN_PLACE,
    migrate=Migrate.NOTED,
    migrated=True,
)
CLUSTERING = TableProperty(
    name="clustering",
    declared_by="clustering",
    summary="1 to 4 top-level columns the table is clustered on, in order",
    validation=(check_clustering,),
    fields=(Field("clustering", "clusterings", "clusterings", "clustering"),),
    send=lambda table, _: {"clusterings": list(table.clustering) or None},
    to_rest=lambda args: {"clustering": {"fields": args["clusterings"]}} if args["clusterings"] else {},
    read=lambda resource, _: {"clustering": tuple((resource.get("clustering") or {}).get("fields", ()))},
    verify=Verify("clustering", show=clustering_text),
    in_catalog=InCatalog(
        load=_load_clustering, from_inputs=lambda inputs: {"clustering": tuple(inputs.get("clusterings") or ())}
    ),
    change=_IN_PLACE,
    migrate=Migrate.NOTED,
    migrated=True,
)
LABELS = TableProperty(
    name="labels",
    declared_by="labels",
    summary="key: value labels; the stack's labels are added and win (tenant-bigquery:labels)",
    validation=(rules.check_labels,),
    fields=(Field("labels", "labels", "labels", "labels"),),
    send=lambda table, settings: {"labels": table_labels(table, settings) or None},
    to_rest=lambda args: {"labels": args["labels"]} if args["labels"] else {},
    read=lambda resource, _: {"labels": dict(resource.get("labels") or {})},
    verify=Verify("labels", Compare.LABELS),
    in_catalog=InCatalog(
        load=lambda spec, loading: (
            {"labels": dict(spec.labels)},
            label_problems(spec.labels, loading.file, f"{loading.where}.labels"),
        ),
        from_inputs=lambda inputs: {"labels": dict(inputs.get("labels") or {})},
    ),
    change=_IN_PLACE,
    # Unnoted: a live table carries Google's own labels and a migration run's beside the declared ones.
    migrate=Migrate.LEFT,
    migrated=True,
)
DESCRIPTION = TableProperty(
    name="description",
    declared_by="description",
    summary="the table's description",
    validation=(rules.check_description,),
    fields=(Field("description", "description", "description", "description"),),
    send=lambda table, _: {"description": table.description or None},
    to_rest=lambda args: {"description": args["description"]} if args["description"] else {},
    read=lambda resource, _: {"description": resource.get("description") or ""},
    verify=Verify("description", show=short_text),
    in_catalog=InCatalog(
        load=_load_description, from_inputs=lambda inputs: {"description": inputs.get("description") or ""}
    ),
    change=_IN_PLACE,
    migrate=Migrate.LEFT,
    migrated=True,
)
CONSTRAINTS = TableProperty(
    name="constraints",
    declared_by="constraints",
    summary="unenforced keys: primary_key (1 to 16 top-level columns) and foreign_keys (name, column, references: "
    "{table, column}: the primary key of a table of the same dataset)",
    validation=(check_constraints, reference_problems, rules.check_key_column, rules.check_constraint_name),
    fields=(Field("table_constraints", "table_constraints", "tableConstraints", "tableConstraints"),),
    send=_send_constraints,
    to_rest=_constraints_rest,
    read=_read_constraints,
    verify=Verify("constraints", show=lambda args: table_constraints_text(constraints_of(args))),
    in_catalog=InCatalog(load=_load_constraints, from_inputs=_constraints_from_inputs),
    change="in place (terraform-provider-google resource_bigquery_table.go: table_constraints Optional, no ForceNew; "
    "resourceBigQueryTableUpdate sends the whole table with tables.update, without tableConstraints once removed)",
    migrate=Migrate.NOTED,
    migrated=True,
)
ENCRYPTION_KEY = TableProperty(
    name="encryption key",
    declared_by="tenant-bigquery:kmsKeyName (Pulumi.<stack>.yaml)",
    summary="the customer-managed Cloud KMS key of every table, a stack setting",
    validation=(settings._kms_key_problems,),  # with contract.KMS_KEY
    fields=(Field("kms_key_name", "encryption_configuration", "encryptionConfiguration", "encryptionConfiguration"),),
    send=_send_key,
    to_rest=lambda args: (
        {"encryptionConfiguration": {"kmsKeyName": args["encryption_configuration"]["kms_key_name"]}}
        if "encryption_configuration" in args
        else {}
    ),
    read=_read_key,
    verify=Verify("encryption key", Compare.KEY),
    in_catalog=None,
    change="forces a new table (terraform-provider-google resource_bigquery_table.go ResourceBigQueryTable: "
    "ForceNew); `migrate --apply` re-keys the table in place first",
    migrate=Migrate.PLANNED,
    migrated=True,
)

# In the order verify lists its checks.
TABLE_PROPERTIES = (
    SCHEMA,
    PARTITIONING,
    PARTITION_FILTER,
    CLUSTERING,
    LABELS,
    DESCRIPTION,
    CONSTRAINTS,
    ENCRYPTION_KEY,
)
# The order `diff` lists a table's changes of one verdict in, and a declaration's problems are listed in.
DIFF_ORDER = (DESCRIPTION, LABELS, PARTITIONING, PARTITION_FILTER, CLUSTERING, SCHEMA, CONSTRAINTS)
# The order `migrate` plans a table's properties in: its steps and notes follow it.
MIGRATE_ORDER = (SCHEMA, PARTITIONING, ENCRYPTION_KEY, CLUSTERING, PARTITION_FILTER, LABELS, DESCRIPTION, CONSTRAINTS)


def load_properties(spec: TableSpec, loading: Loading) -> tuple[dict[str, Any], list[Problem]]:
    """The Table fields of every property the catalog declares, and their problems."""
    fields: dict[str, Any] = {}
    problems: list[Problem] = []
    for side in (p.in_catalog for p in DIFF_ORDER if p.in_catalog):
        loaded, found = side.load(spec, loading)
        fields |= loaded
        problems += found
    return fields, problems


def fields_from_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The Table fields of a registered table's inputs (the engine's names)."""
    return {
        name: value
        for p in TABLE_PROPERTIES
        if p.in_catalog
        for name, value in p.in_catalog.from_inputs(inputs).items()
    }


def property_args(table: Table, settings: Settings) -> dict[str, Any]:
    """Every property's provider arguments (infra/model/declared.py table_args adds the table's identity)."""
    return {arg: value for p in TABLE_PROPERTIES for arg, value in p.send(table, settings).items()}


def rest_resource(args: Mapping[str, Any]) -> dict[str, Any]:
    """The REST Table resource of the provider arguments, without its tableReference."""
    return {field: value for p in TABLE_PROPERTIES for field, value in p.to_rest(args).items()}


def state_fields(resource: Mapping[str, Any], columns: tuple[Column, ...]) -> dict[str, Any]:
    """The TableState fields of a REST Table resource whose schema reads as `columns`."""
    return {name: value for p in TABLE_PROPERTIES for name, value in p.read(resource, columns).items()}
