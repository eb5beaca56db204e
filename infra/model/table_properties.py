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
from infra.model.render import clustering_text, partitioning_text, short_text
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
    renamed_columns: dict[str, str] = field(default_factory=dict)  # new name: old name, for `migrate`
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


class TableSpec(msgspec.Struct, forbid_unknown_fields=True):
    description: str = ""
    schema_file: str | None = msgspec.field(default=None, name="schema")
    partitioning: PartitioningSpec | None = None
    require_partition_filter: bool = False
    clustering: list[str] | msgspec.UnsetType = msgspec.UNSET  # not given: not checked; [] is refused
    labels: dict[str, str] = {}
    renamed_columns: dict[str, str] = {}


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


# ---------------------------------------------------------------- the REST form


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
TABLE_PROPERTIES = (SCHEMA, PARTITIONING, PARTITION_FILTER, CLUSTERING, LABELS, DESCRIPTION, ENCRYPTION_KEY)
# The order `diff` lists a table's changes of one verdict in, and a declaration's problems are listed in.
DIFF_ORDER = (DESCRIPTION, LABELS, PARTITIONING, PARTITION_FILTER, CLUSTERING, SCHEMA)
# The order `migrate` plans a table's properties in: its steps and notes follow it.
MIGRATE_ORDER = (SCHEMA, PARTITIONING, ENCRYPTION_KEY, CLUSTERING, PARTITION_FILTER, LABELS, DESCRIPTION)


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
