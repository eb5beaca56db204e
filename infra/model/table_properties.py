"""Every table property, declared once: where the declaration sets it, the rule that validates it, the
provider argument it becomes, how BigQuery's REST Table resource spells it, how `verify` compares and
shows it, what a change does (the classifier of infra/analysis/changes.py and the rule it cites) and whether a
rebuild carries it.

The paths iterate these descriptors instead of naming properties: the provider arguments
(infra/model/declared.py `table_args`), the REST resource a rebuild creates (`rest_resource`), the reader of a
live table (infra/analysis/drift.py `observed_state`, from the REST form `table.to_api_repr()` gives: the same
spelling the rebuild writes), verify's declared state and checks (infra/analysis/drift.py), what `migrate` brings
to the declaration (infra/analysis/migration.py `MIGRATED_PROPERTIES`) and which inputs the column classifier
judges (infra/analysis/resourcediff.py `CLASSIFIED_TABLE_PROPERTIES`). tests/test_table_properties.py walks every
descriptor through every path.

The REST spellings are those of https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#Table:
int64 fields (expirationMs, the range bounds) are JSON strings, unset fields are absent.

Pure core: no pulumi or google imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypedDict

from infra.contract import DATA_LOSS_APPROVED, RETENTION_FOREVER
from infra.model import catalog, rules, schema, settings
from infra.model.catalog import RangePartitioning, Table, TimePartitioning
from infra.model.render import clustering_text, partitioning_text, short_text
from infra.model.rules import MS_PER_DAY
from infra.model.schema import Column
from infra.model.settings import Settings


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


# ---------------------------------------------------------------- the descriptor


@dataclass(frozen=True)
class Field:
    """One provider argument of a property, under each name it goes by."""

    state: str  # the field of TableState that verify and migrate compare
    arg: str  # pulumi-gcp's TableArgs argument (infra/model/declared.py TableArgs)
    engine: str  # the input as the engine, the state file and a preview name it
    rest: str  # the top-level field of BigQuery's REST Table resource


class Compare(Enum):
    """How verify compares a property's declared and live values (infra/analysis/drift.py table_checks)."""

    EXACT = "equal values"
    LABELS = "key by key; Google's own goog- labels on the live table are set aside"
    COLUMNS = "column by column, by name at every depth (the column attributes of infra/analysis/drift.py)"
    KEY = "equal key names, only where a key is declared or present; the version BigQuery reports is shown"


@dataclass(frozen=True)
class Verify:
    check: str  # the check's name in verify's output
    compare: Compare = Compare.EXACT
    show: Callable[[Any], str] = str
    # Checked only when this holds for the declared or the live state.
    applies: Callable[[TableState], bool] | None = None


@dataclass(frozen=True)
class TableProperty:
    name: str
    declared_by: str  # the key of stacks/<dataset>.yaml under tables.<table> (or the stack setting) that sets it
    summary: str
    # The functions holding its rules (infra/model/rules.py, infra/model/catalog.py).
    validation: tuple[Callable[..., Any], ...]
    fields: tuple[Field, ...]
    send: Callable[[Table, Settings], dict[str, Any]]  # its provider arguments, by TableArgs name
    to_rest: Callable[[Mapping[str, Any]], dict[str, Any]]  # provider arguments -> REST fields
    # REST resource -> TableState fields; `columns` is the resource's schema as the caller's column reader
    # read it (the column attributes are infra/model/schema.py's and the live column reader's business).
    read: Callable[[Mapping[str, Any], tuple[Column, ...]], dict[str, Any]]
    verify: Verify
    # Declared in stacks/<dataset>.yaml, so infra/analysis/changes.py TABLE_CLASSIFIERS judges a change of
    # it; False for a stack setting, whose input infra/analysis/resourcediff.py TABLE_RULES rules.
    in_catalog: bool
    change: str  # what a change does, with its source (docs/declaration.md)
    migrated: bool  # a rebuild creates the table with it, and `migrate` brings it to the declaration

    def value(self, state: TableState) -> Any:
        values = tuple(getattr(state, f.state) for f in self.fields)
        return values if len(values) > 1 else values[0]


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
    in_catalog=True,
    change="per column: the provider's schema rule (terraform-provider-google "
    "resourceBigQueryTableSchemaIsChangeable) decides between in place and a new table",
    migrated=True,
)
PARTITIONING = TableProperty(
    name="partitioning",
    declared_by="partitioning",
    summary="time partitioning (type, field, expiration_days or keep_forever) or integer-range partitioning "
    "(range: field, start, end, interval)",
    validation=(
        catalog.check_partitioning,
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
    in_catalog=True,
    change="a new field forces a new table (terraform-provider-google time_partitioning.field and "
    "range_partitioning.field ForceNew); another type or ranges, or partitioning added or removed, BigQuery "
    "refuses (Managing partitioned tables); the expiration changes in place, and a removed one is kept "
    "(time_partitioning.expiration_ms Optional+Computed)",
    migrated=True,
)
PARTITION_FILTER = TableProperty(
    name="require_partition_filter",
    declared_by="require_partition_filter",
    summary="every query must filter on the partitioning column (needs partitioning:)",
    validation=(catalog.check_partition_filter,),
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
    in_catalog=True,
    change=_IN_PLACE,
    migrated=True,
)
CLUSTERING = TableProperty(
    name="clustering",
    declared_by="clustering",
    summary="1 to 4 top-level columns the table is clustered on, in order",
    validation=(catalog.check_clustering,),
    fields=(Field("clustering", "clusterings", "clusterings", "clustering"),),
    send=lambda table, _: {"clusterings": list(table.clustering) or None},
    to_rest=lambda args: {"clustering": {"fields": args["clusterings"]}} if args["clusterings"] else {},
    read=lambda resource, _: {"clustering": tuple((resource.get("clustering") or {}).get("fields", ()))},
    verify=Verify("clustering", show=clustering_text),
    in_catalog=True,
    change=_IN_PLACE,
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
    in_catalog=True,
    change=_IN_PLACE,
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
    in_catalog=True,
    change=_IN_PLACE,
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
    in_catalog=False,
    change="forces a new table (terraform-provider-google resource_bigquery_table.go ResourceBigQueryTable: "
    "ForceNew); `migrate --apply` re-keys the table in place first",
    migrated=True,
)

# In the order verify lists its checks.
TABLE_PROPERTIES = (SCHEMA, PARTITIONING, PARTITION_FILTER, CLUSTERING, LABELS, DESCRIPTION, ENCRYPTION_KEY)
# The order `diff` lists a table's changes of one verdict in.
DIFF_ORDER = (DESCRIPTION, LABELS, PARTITIONING, PARTITION_FILTER, CLUSTERING, SCHEMA)


def property_args(table: Table, settings: Settings) -> dict[str, Any]:
    """Every property's provider arguments (infra/model/declared.py table_args adds the table's identity)."""
    return {arg: value for p in TABLE_PROPERTIES for arg, value in p.send(table, settings).items()}


def rest_resource(args: Mapping[str, Any]) -> dict[str, Any]:
    """The REST Table resource of the provider arguments, without its tableReference."""
    return {field: value for p in TABLE_PROPERTIES for field, value in p.to_rest(args).items()}


def state_fields(resource: Mapping[str, Any], columns: tuple[Column, ...]) -> dict[str, Any]:
    """The TableState fields of a REST Table resource whose schema reads as `columns`."""
    return {name: value for p in TABLE_PROPERTIES for name, value in p.read(resource, columns).items()}
