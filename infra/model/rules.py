"""BigQuery's documented rules as small named checks.

Each check returns a message that says how to fix the input, or None when the input is fine.
Sources: BigQuery docs "Specifying a schema", "Creating partitioned tables", "Creating clustered
tables", "Quotas and limits", "Labels"; the pulumi-gcp/terraform-provider-google type aliases.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from infra.contract import DATA_LOSS_APPROVED, RETENTION_FOREVER

if TYPE_CHECKING:
    from datetime import datetime

# Every documented spelling maps to the one this repo emits. STRUCT must become RECORD: the
# provider does not treat them as equal and would plan a replace on every run.
TYPE_ALIASES: dict[str, str] = {
    "STRING": "STRING",
    "BYTES": "BYTES",
    "INTEGER": "INT64",
    "INT64": "INT64",
    "FLOAT": "FLOAT64",
    "FLOAT64": "FLOAT64",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BOOLEAN": "BOOL",
    "BOOL": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "DATETIME": "DATETIME",
    "GEOGRAPHY": "GEOGRAPHY",
    "JSON": "JSON",
    "RECORD": "RECORD",
    "STRUCT": "RECORD",
    "RANGE": "RANGE",
}
CANONICAL_TYPES = sorted(set(TYPE_ALIASES.values()))
MODES = ("NULLABLE", "REQUIRED", "REPEATED")

MAX_COLUMN_NAME_LENGTH = 300
MAX_COLUMNS = 10_000
MAX_NESTING_LEVELS = 15
MAX_TABLE_DESCRIPTION = 16_384
MAX_COLUMN_DESCRIPTION = 1_024
MAX_LABELS = 64
MAX_CLUSTERING_COLUMNS = 4
MAX_RANGE_PARTITIONS = 10_000

RESERVED_COLUMN_PREFIXES = (
    "_TABLE_",
    "_FILE_",
    "_PARTITION",
    "_ROW_TIMESTAMP",
    "__ROOT__",
    "_COLIDENTIFIER",
    "_CHANGE_SEQUENCE_NUMBER",
    "_CHANGE_TYPE",
    "_CHANGE_TIMESTAMP",
)
TIME_PARTITION_GRANULARITIES: dict[str, tuple[str, ...]] = {
    "DATE": ("DAY", "MONTH", "YEAR"),
    "TIMESTAMP": ("HOUR", "DAY", "MONTH", "YEAR"),
    "DATETIME": ("HOUR", "DAY", "MONTH", "YEAR"),
}
PARTITION_TYPES = ("HOUR", "DAY", "MONTH", "YEAR")
CLUSTERING_TYPES = frozenset(
    {"BIGNUMERIC", "BOOL", "DATE", "DATETIME", "GEOGRAPHY", "INT64", "NUMERIC", "RANGE", "STRING", "TIMESTAMP"}
)
RANGE_ELEMENT_TYPES = ("DATE", "DATETIME", "TIMESTAMP")
ROUNDING_MODES = ("ROUND_HALF_AWAY_FROM_ZERO", "ROUND_HALF_EVEN")
COLLATIONS = ("und:ci", "")
# (max precision - scale, max scale) of NUMERIC(P, S) and BIGNUMERIC(P, S) (GoogleSQL data types, parameterized
# decimal type: "max(1, S) <= P <= S + 29", "0 <= S <= 9"; "P <= S + 38", "0 <= S <= 38").
NUMERIC_BOUNDS = {"NUMERIC": (29, 9), "BIGNUMERIC": (38, 38)}
# (integer digits, scale) an unparameterized column holds (GoogleSQL data types, decimal types): NUMERIC
# "Precision: 38, Scale: 9", max 9.9...9E+28, exactly what NUMERIC(38, 9) holds; BIGNUMERIC "approximately 76.8
# digits (the 77th digit is partial), Scale: 38", max 5.7...E+38: a 39th integer digit no BIGNUMERIC(P, S) holds.
_UNPARAMETERIZED_DECIMAL = {"NUMERIC": (29, 9), "BIGNUMERIC": (39, 38)}
# Conversion rules, "Coerce to": the only type changes ALTER COLUMN SET DATA TYPE makes in place.
COERCIONS = {"INT64": frozenset({"NUMERIC", "BIGNUMERIC", "FLOAT64"}), "NUMERIC": frozenset({"BIGNUMERIC", "FLOAT64"})}

_STRICT_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# "Flexible column names" (BigQuery docs, Specify a schema): letters, numbers and marks of any
# language, connector and dash punctuation, spaces and these characters.
_FLEXIBLE_SPECIALS = frozenset("&%=+:'<>#|")
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
# Pulumi carries every number as a double (pulumi/pulumi sdk/python/lib/pulumi/runtime/rpc.py
# serialize_property: number_value=float(value)), which the bridge turns back into an int
# (pulumi-terraform-bridge pkg/tfbridge/schema.go makeTerraformInput): an integer a double cannot hold
# (some beyond 2**53) arrives rounded.
MAX_EXACT_NUMBER = 2**53
MS_PER_DAY = 86_400_000
# BigQuery locations (docs: BigQuery locations), in the spelling the API reports: multi-regions upper case.
LOCATIONS = (
    "US",
    "EU",
    *[
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "me-central1",
        "me-central2",
        "me-west1",
        "africa-south1",
    ],
)
_DATASET_ID = re.compile(r"[A-Za-z0-9_]+\Z")
_TABLE_ID = re.compile(r"[a-z][a-z0-9_]*\Z")


def canonical_type(raw: str) -> str | None:
    return TYPE_ALIASES.get(raw.upper())


def _is_flexible_name_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LNM" or category in ("Pc", "Pd", "Zs") or char in _FLEXIBLE_SPECIALS


# The ASCII characters the rule allows, so that the usual name is checked without unicodedata.
_FLEXIBLE_ASCII = frozenset(c for c in map(chr, range(128)) if _is_flexible_name_char(c))


# Names repeat: in nested records, and between the two files `diff --old/--new` reads.
@functools.cache
def check_column_name(name: str) -> str | None:
    if not (name.isascii() and _FLEXIBLE_ASCII.issuperset(name)) and not all(map(_is_flexible_name_char, name)):
        bad = "".join(sorted({c for c in name if not _is_flexible_name_char(c)}))
        return (
            f"column name {name!r} has characters BigQuery does not allow in column names ({bad!r}); "
            "use letters, digits, spaces, '_', '-' or any of & % = + : ' < > # |"
        )
    if len(name) > MAX_COLUMN_NAME_LENGTH:
        return f"column name is {len(name)} characters; BigQuery allows at most {MAX_COLUMN_NAME_LENGTH}"
    upper = name.upper()
    if upper.startswith(RESERVED_COLUMN_PREFIXES):
        prefix = next(p for p in RESERVED_COLUMN_PREFIXES if upper.startswith(p))
        return f"column name {name!r} starts with the reserved prefix {prefix}; rename the column"
    return None


def column_name_cost(name: str) -> str | None:
    """A warning for a valid name outside the classic rule, which some BigQuery interfaces need handled."""
    if _STRICT_COLUMN_NAME.match(name):
        return None
    return (
        f"column name {name!r} is a flexible column name: the BigQuery Storage Read and Write APIs need special "
        "handling for it and legacy SQL cannot query it; rename it to letters, digits and underscores, "
        "starting with a letter or underscore, to avoid that"
    )


def check_location(location: str) -> str | None:
    """The location in the spelling BigQuery reports, or None when BigQuery has no such location."""
    return next((known for known in LOCATIONS if known.lower() == location.lower()), None)


def check_expiration_days(days: int) -> str | None:
    if days < 1:
        return f"{days} is too short; BigQuery's minimum is one hour, so use at least 1 day"
    if days * MS_PER_DAY > MAX_INT64:
        return (
            f"{days:,} days exceed what BigQuery stores (int64 milliseconds); use at most {MAX_INT64 // MS_PER_DAY:,}"
        )
    return None


# A project id (Resource Manager REST reference, projects: projectId "must be 6 to 30 lowercase ASCII letters,
# digits, or hyphens", start with a letter, no trailing hyphen), optionally behind a legacy domain scope
# (`example.com:my-project`; the domain part as in terraform-provider-google verify/validation.go
# ProjectRegex, "copied from the official Google Cloud auto-generated client").
_PROJECT_ID = re.compile(r"(?:(?:[-a-z0-9]{1,63}\.)*[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?:)?[a-z][-a-z0-9]{4,28}[a-z0-9]\Z")


def check_project_id(project: str) -> str | None:
    """migrate writes the project into SQL and every resource names it: only a real project id passes."""
    if _PROJECT_ID.match(project):
        return None
    return (
        f"{project!r} is not a GCP project id: 6 to 30 lowercase letters, digits and hyphens, starting with a "
        "letter and not ending with a hyphen (or a domain-scoped id such as example.com:my-project); "
        "use the project's id, not its name or number"
    )


# How long snapshots (`snapshot`, and `migrate` before it changes a table) are kept: the prod approval
# runbook can take two deploys that each wait up to 30 days for approval (GitHub fails a waiting job
# after 30 days), plus review time; 90 days outlasts it.
SNAPSHOT_EXPIRE_DAYS = 90
# A snapshot's expiration is a timestamp (the REST reference's JobConfigurationTableCopy
# .destinationExpirationTime, "Timestamp format": google.protobuf.Timestamp, which ends with the year 9999,
# as do BigQuery's TIMESTAMP type and Python's datetime).
LAST_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def check_snapshot_expire_days(days: int, now: datetime) -> str | None:
    """`snapshot --expire-days`: the snapshots expire `days` after `now`, and a new backup dataset takes
    `days` as its default table expiration."""
    latest = (LAST_TIMESTAMP - now).days - 1  # a day to spare: the snapshots are taken moments later
    # The timestamp's bound is the smaller (9999-12-31 in ms is far below int64): name it, never int64's.
    if days > latest:
        last = f"{LAST_TIMESTAMP:%Y-%m-%d}"
        return f"{days:,} days from now is past {last}, the last day a timestamp holds; use at most {latest:,}"
    return check_expiration_days(days)


def check_dataset_id(dataset_id: str) -> str | None:
    if not _DATASET_ID.match(dataset_id) or len(dataset_id) > 1024:
        return f"dataset id {dataset_id!r} is invalid; use 1 to 1,024 letters, digits and underscores"
    return None


# `migrate` names the tables of a run `<table>__migrate_<stamp>` (infra/analysis/migration.py): a declared id
# holding the
# separator could be taken for one of them, or collide with one.
MIGRATE_SEPARATOR = "__migrate_"


def check_table_id(table_id: str) -> str | None:
    if not _TABLE_ID.match(table_id) or len(table_id.encode()) > 1024:
        return (
            f"table id {table_id!r} is invalid; this project requires snake_case table ids "
            "(a lowercase letter first, then lowercase letters, digits and underscores), "
            "stricter than BigQuery"
        )
    if MIGRATE_SEPARATOR in table_id:
        return (
            f"table id {table_id!r} holds {MIGRATE_SEPARATOR!r}, which migrate reserves for the tables of a "
            "rebuild; choose another id"
        )
    return None


def check_description(text: str, limit: int) -> str | None:
    if len(text) > limit:
        return f"description is {len(text):,} characters; BigQuery allows at most {limit:,}; shorten it"
    return None


def _is_label_char(char: str) -> bool:
    # International characters are allowed, but only in lowercase.
    return char in "_-" or char.isdigit() or (char.isalpha() and char == char.lower())


# Labels the program sets itself and the policy pack trusts: declaring one by hand would bypass a policy.
PROGRAM_LABELS = {
    RETENTION_FOREVER[0]: "the program sets it for partitioning keep_forever: true",
    DATA_LOSS_APPROVED[0]: "the program sets it for tables in tenant-bigquery:approveDataLoss",
}


def check_labels(labels: dict[str, str]) -> list[tuple[str, str]]:
    """Problems as (label key, message); an empty key means the whole label set."""
    problems: list[tuple[str, str]] = [
        (key, f"label {key!r} is reserved: {reason}; remove it")
        for key, reason in PROGRAM_LABELS.items()
        if key in labels
    ]
    if len(labels) > MAX_LABELS:
        problems.append(("", f"{len(labels)} labels; BigQuery allows at most {MAX_LABELS}"))
    for key, value in labels.items():
        if not 1 <= len(key) <= 63 or not (key[0].isalpha() and key[0] == key[0].lower()):
            problems.append((key, "label key must be 1 to 63 characters and start with a lowercase letter"))
        elif not all(_is_label_char(c) for c in key):
            problems.append((key, "label key may use only lowercase letters, digits, '_' and '-'"))
        if not isinstance(value, str):
            problems.append((key, "label value must be a string; quote it in YAML"))
        elif len(value) > 63 or not all(_is_label_char(c) for c in value):
            problems.append((key, "label value must be 0 to 63 lowercase letters, digits, '_' or '-'"))
    return problems


def check_numeric_parameters(type_: str, precision: int | None, scale: int | None) -> str | None:
    if scale is not None and precision is None:
        return "scale without precision is invalid; set precision too"
    if precision is None:
        return None
    max_integer_digits, max_scale = NUMERIC_BOUNDS[type_]
    actual_scale = scale or 0
    if not 0 <= actual_scale <= max_scale:
        return f"{type_} scale must be between 0 and {max_scale}"
    if not 1 <= precision - actual_scale <= max_integer_digits:
        return (
            f"{type_} needs 1 <= precision - scale <= {max_integer_digits}; "
            f"got precision {precision}, scale {actual_scale}"
        )
    return None


def coerces(old_type: str, new_type: str) -> bool:
    """BigQuery converts `old_type` to `new_type` in place (ALTER COLUMN SET DATA TYPE)."""
    return new_type in COERCIONS.get(old_type, ())


def decimal_bounds(type_: str, precision: int | None, scale: int | None) -> tuple[int, int]:
    """(integer digits, scale) a NUMERIC or BIGNUMERIC column holds; S is 0 when only P is given."""
    if precision is None:
        return _UNPARAMETERIZED_DECIMAL[type_]
    return precision - (scale or 0), scale or 0


def decimal_widens(type_: str, old: tuple[int | None, int | None], new: tuple[int | None, int | None]) -> bool:
    """Every value the (precision, scale) `old` holds fits `new`: a widening, never a narrowing."""
    (old_digits, old_scale), (new_digits, new_scale) = decimal_bounds(type_, *old), decimal_bounds(type_, *new)
    return new_digits >= old_digits and new_scale >= old_scale


def length_widens(old: int | None, new: int | None) -> bool:
    """A maxLength change keeps every value: unlimited (None) is the longest."""
    return new is None or (old is not None and new > old)


def check_time_partition_column(column: str, column_type: str, granularity: str) -> str | None:
    allowed = TIME_PARTITION_GRANULARITIES.get(column_type)
    if allowed is None:
        return (
            f"column {column!r} is {column_type}, which cannot be a time-partitioning column; use a top-level "
            "DATE, TIMESTAMP or DATETIME column (or range partitioning on INT64)"
        )
    if granularity not in allowed:
        return (
            f"column {column!r} is {column_type}, which can be partitioned by {', '.join(allowed)}, not {granularity}; "
            "choose one of those, or a TIMESTAMP or DATETIME column for HOUR"
        )
    return None


def check_range_bound(value: int) -> str | None:
    """A range partitioning start, end or interval: BigQuery stores INT64 (REST reference, tables:
    RangePartitioning.range; the provider sends strconv.FormatInt(int64(...))), and it must survive Pulumi's
    numbers."""
    if not MIN_INT64 <= value <= MAX_INT64:
        return (
            f"{value} is outside BigQuery's INT64 range ({MIN_INT64:,} to {MAX_INT64:,}), which range partitioning "
            "bounds are stored in; use a value within it"
        )
    if int(float(value)) != value:
        return (
            f"{value} would reach BigQuery as {int(float(value))}: Pulumi sends every number as a 64-bit float, "
            f"exact for every integer up to {MAX_EXACT_NUMBER:,} either way; use one it holds exactly"
        )
    return None


def check_range_partitioning(column: str, start: int, end: int, interval: int) -> str | None:
    if interval <= 0:
        return f"interval of the ranges on {column!r} must be greater than 0 (got {interval})"
    if start >= end:
        return f"start ({start}) must be less than end ({end}) of the ranges on {column!r}; swap or widen them"
    partitions = -(-(end - start) // interval)
    if partitions > MAX_RANGE_PARTITIONS:
        return (
            f"{partitions:,} ranges on {column!r} ({start} to {end} by {interval}); BigQuery allows at most "
            f"{MAX_RANGE_PARTITIONS:,}; widen the interval or narrow start..end"
        )
    return None


# What name_stamp writes, and nothing else: how a rebuild's tables are told from any other table.
NAME_STAMP = re.compile(r"\d{8}T\d{9}Z")


def name_stamp(moment: datetime) -> str:
    """The UTC time in the ids of tables this tool creates (snapshots, rebuild copies): valid in a table id,
    and to the millisecond, so that two runs within one second never reach for the same name."""
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z"


# Primary and foreign keys, unenforced (BigQuery docs "Use primary and foreign keys",
# https://cloud.google.com/bigquery/docs/primary-foreign-keys, and its limitations in "TABLE_CONSTRAINTS view",
# https://cloud.google.com/bigquery/docs/information-schema-table-constraints).
KEY_TYPES = frozenset({"BIGNUMERIC", "BOOL", "DATE", "DATETIME", "INT64", "NUMERIC", "STRING", "TIMESTAMP"})
MAX_PRIMARY_KEY_COLUMNS = 16
MAX_FOREIGN_KEYS = 64
_CONSTRAINT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}\Z")
CONSTRAINTS_DOC = "BigQuery docs: TABLE_CONSTRAINTS view, limitations"


def check_key_column(column_type: str, mode: str) -> str | None:
    """A primary or foreign key column: a top-level, non-REPEATED column of a key type (the caller found it
    among the top-level columns)."""
    if mode == "REPEATED":
        return f"a REPEATED column cannot be a key column ({CONSTRAINTS_DOC})"
    if column_type not in KEY_TYPES:
        types = ", ".join(sorted(KEY_TYPES))
        return f"a {column_type} column cannot be a key column; use one of {types} ({CONSTRAINTS_DOC})"
    return None


def check_constraint_name(name: str) -> str | None:
    if _CONSTRAINT_NAME.fullmatch(name) is None:
        return (
            f"foreign key name {name!r}: use letters, digits and underscores, a letter or underscore first, "
            "at most 300 characters (this project's rule, as for column names)"
        )
    return None


# ---------------------------------------------------------------- column-level security: policy tags, data policies
# TableFieldSchema (REST reference, tables): policyTags.names "projects/1/locations/eu/taxonomies/2/policyTags/3",
# at most 1; dataPolicies[] DataPolicyOption.name "projects/project_id/locations/location_id/dataPolicies/
# data_policy_id". BigQuery docs "Mask column data", data policies directly on a column, Limitations: "You can't
# apply both policy tags and data policies to the same column", "a maximum of eight data policies to a column",
# "a maximum of 1,000 unique data policies" per table, and by default no masking of partitioning or clustering
# columns.
POLICY_TAG_NAME = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/taxonomies/[^/\s]+/policyTags/[^/\s]+\Z")
DATA_POLICY_NAME = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/dataPolicies/[^/\s]+\Z")
# A name a schema file uses in place of a project's resource name, resolved per stack (tenant-bigquery:policyTags,
# tenant-bigquery:dataPolicies): schema files are shared by every stack, resource names are not.
SHORT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
MAX_DATA_POLICIES_PER_COLUMN = 8
MAX_DATA_POLICIES_PER_TABLE = 1_000
# Who attaches data policies to a dataset's columns (stacks/<dataset>.yaml column_masking).
MASKING_OWNERS = ("repository", "governance")


def check_policy_name(name: str, full: re.Pattern[str], form: str, setting: str) -> str | None:
    """A policy tag's or data policy's name in a schema file: the resource name, or a short name of the stack."""
    if full.match(name) or SHORT_NAME.match(name):
        return None
    return (
        f"{name!r} is neither a resource name {form} nor a short name (lowercase letter first, then lowercase "
        f"letters, digits, '_' or '-'; up to 63) that each stack's tenant-bigquery:{setting} maps to one; use one"
    )


def check_column_masking(owner: str) -> str | None:
    if owner in MASKING_OWNERS:
        return None
    return (
        f"column_masking {owner!r} is not an owner; use repository (the schema files declare dataPolicies) or "
        "governance (another team attaches them and this repository leaves them alone)"
    )


# A dataset's time-travel window (BigQuery docs "Data retention with time travel and fail-safe",
# cloud.google.com/bigquery/docs/time-travel; REST Dataset.maxTimeTravelHours, 168 when unset): 2 to 7 days
# in whole days. The declaration defaults to the maximum, the longest recovery BigQuery offers.
MIN_TIME_TRAVEL_HOURS = 48
MAX_TIME_TRAVEL_HOURS = 168
# REST Dataset.storageBillingModel (LOGICAL when unset, "Introduction to datasets": storage billing models).
STORAGE_BILLING_MODELS = ("LOGICAL", "PHYSICAL")


def check_time_travel_hours(hours: int) -> str | None:
    if not MIN_TIME_TRAVEL_HOURS <= hours <= MAX_TIME_TRAVEL_HOURS or hours % 24:
        return (
            f"{hours} h is no time-travel window BigQuery accepts; use a multiple of 24 from "
            f"{MIN_TIME_TRAVEL_HOURS} to {MAX_TIME_TRAVEL_HOURS} (2 to 7 days; BigQuery docs: time travel)"
        )
    return None


def check_storage_billing_model(model: str) -> str | None:
    if model not in STORAGE_BILLING_MODELS:
        return f"{model!r} is no storage billing model; use LOGICAL or PHYSICAL (upper case, as BigQuery names them)"
    return None
