"""One declaration per column attribute: every module that reads, sends, compares or changes one iterates these.

Each `ColumnAttribute` says, for one key of BigQuery's schema JSON (REST reference, tables: TableFieldSchema,
https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#TableFieldSchema: int64 values as strings,
policyTags as {"names": [...]}, dataPolicies as [{"name": ...}] (DataPolicyOption), rangeElementType as {"type": ...}):
- the `Column` field it fills and the types it applies to, with its value check (infra/model/schema.py reads it);
- how the program sends it (`Column.to_api`, the provider's `schema` input) and how the live table's REST
  form reads back (`column_from_api`, infra/bigquery_edge/live.py);
- how verify words a difference (infra/analysis/drift.py);
- what a change does (`AttributeChange`, classified in infra/analysis/changes.py) and what migrate plans (`Migration`,
  infra/analysis/migration.py). The provider's rule: terraform-provider-google resourceBigQueryTableSchemaIsChangeable
  compares only a column's name, type, mode and fields (a change there can force a new table); every other
  attribute is sent as an update and BigQuery decides. A rebuild creates the table from the declared schema
  (tables.insert of what `to_api` sends), so it carries every attribute.

Tests derived from these (tests/test_column_attributes.py) fail for an attribute any path leaves out.
Pure: no pulumi or google imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from infra.model import rules

if TYPE_CHECKING:
    from infra.model.schema import Column


class AttributeChange(Enum):
    """What a change of the attribute does to an existing table."""

    # Compared by resourceBigQueryTableSchemaIsChangeable: infra/analysis/changes.py's walk of the columns decides.
    STRUCTURE = "structure"
    # Ignored by that rule: sent as an update, and BigQuery applies it to the column; no data lost.
    IN_PLACE = "in place"
    # Ignored by that rule and sent: BigQuery widens a parameterized type in place and refuses to narrow it
    # (BigQuery docs: Modifying table schemas, parameterized data types); `widens` says which one it is.
    PARAMETER = "parameter"
    # Ignored by that rule and sent: to BigQuery a type change, which it refuses in place (apply fails).
    ELEMENT_TYPE = "element type"


class Migration(Enum):
    """What migrate plans when the live column differs from the declared one there."""

    STRUCTURE = "structure"  # the planner's walk: coercion, cast, relaxed or checked mode, rebuild
    LEFT_TO_PULUMI = "left to pulumi up"  # nothing: the provider sends it in place
    SET_DATA_TYPE = "set data type"  # widened by ALTER COLUMN SET DATA TYPE, narrowed by a checked rebuild
    REFUSED = "refused"  # no lossless path


class _Unset:
    """A value check found nothing to keep (the problem is reported)."""


UNSET = _Unset()
Check = Callable[[Any], tuple[Any, tuple[str, ...]]]


def _kept(value: Any) -> tuple[Any, tuple[str, ...]]:
    return value, ()


def _same(value: Any) -> Any:
    return value


def _whole_number(value: Any) -> tuple[int | None, tuple[str, ...]]:
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int):
        return None, ("must be a whole number",)
    return value, ()


def _int64(value: Any) -> int | None:
    """An int64 of the REST form: a string (an integer from a hand-made resource is taken too)."""
    return None if value is None else int(value)


@dataclass(frozen=True)
class ColumnAttribute:
    key: str  # in BigQuery's schema JSON
    attribute: str  # the Column field
    change: AttributeChange
    migration: Migration
    types: tuple[str, ...] = ()  # the types it applies to; () for every type
    required_for: tuple[str, ...] = ()  # types a column must have it for
    # Read on every column (name, fields and these): the rest are parameters, read only when present.
    basic: bool = False
    # A JSON null counts as absent (rangeElementType), where for the others it is a value to check.
    null_is_absent: bool = False
    misplaced_hint: str = "; remove it"
    absent: Any = None  # what `check` gets for a basic key the column leaves out
    check: Check = _kept  # a present value of the file -> (the Column value or UNSET, problems)
    send: Callable[[Any], Any] = _same  # the Column value -> the JSON value; None: not sent
    read: Callable[[Any], Any] = _same  # the REST value (None when absent) -> the Column value
    # verify names both values; False: it only says the attribute differs (a description is too long for that).
    shows_values: bool = True
    # What a change compares: the Column value, or several (precision and scale are one decimal bound).
    compared: Callable[[Column], Any] | None = None
    # The words of a change in diff (old, new as `compared` gives them).
    change_text: Callable[[Any, Any], str] | None = None
    widens: Callable[[str, Any, Any], bool] | None = None  # PARAMETER: (type, old, new) keeps every value
    # SQL: the parameters of the type in ALTER COLUMN SET DATA TYPE ("(10)", "(10, 2)"), and the type's own
    # part in any type (RANGE's "<DATE>").
    sql_parameters: Callable[[Column], str] | None = None
    sql_type: Callable[[Column], str] | None = None
    # migrate: the words of a difference (live, declared), what a data check of a narrowing proves and the
    # predicate of the rows that fail it (declared, its path, the live value's SQL), and what to keep when the
    # values cannot be checked (inside arrays).
    migrate_text: Callable[[Column, Column], str] | None = None
    fits: Callable[[Column, str, str], tuple[str, str]] | None = None
    keep: str = "keep it"
    # A part of another attribute's change (SCALE of PRECISION's): compared, worded and planned there.
    part_of: str | None = None
    # A check of this attribute with those read before it, run once they are read: (its key, the check).
    joint: tuple[str, Callable[[str, Mapping[str, Any]], str | None]] | None = None

    @property
    def label(self) -> str:
        return self.attribute.replace("_", " ")

    def value(self, column: Column) -> Any:
        return getattr(column, self.attribute)

    def compared_value(self, column: Column) -> Any:
        return self.compared(column) if self.compared else self.value(column)

    def applies_to(self, type_: str) -> bool:
        return not self.types or type_ in self.types

    def misplaced(self, type_: str) -> str:
        return f"{self.key} applies only to {' and '.join(self.types)}, not {type_}{self.misplaced_hint}"

    def verify_difference(self, path: str, want: Any, have: Any) -> str:
        if not self.shows_values:
            return f"column {path} {self.label} differs"
        return f"column {path} {self.label} is {have}, declared {want}"


def _type(raw: Any) -> tuple[str, tuple[str, ...]]:
    type_ = rules.canonical_type(raw) if isinstance(raw, str) else None
    if type_ is None:
        return "STRING", (f"type {raw!r} is not a BigQuery type; use one of {', '.join(rules.CANONICAL_TYPES)}",)
    return type_, ()


def _mode(raw: Any) -> tuple[str, tuple[str, ...]]:
    mode = raw.upper() if isinstance(raw, str) else None
    if mode == "":
        mode = "NULLABLE"
    if mode not in rules.MODES:
        return "NULLABLE", (f"mode {raw!r} is invalid; use NULLABLE, REQUIRED or REPEATED",)
    return mode, ()


def _description(raw: Any) -> tuple[str, tuple[str, ...]]:
    description = raw or ""
    if not isinstance(description, str):
        return "", ("description must be a string",)
    message = rules.check_description(description, rules.MAX_COLUMN_DESCRIPTION)
    return description, (message,) if message else ()


def _max_length(raw: Any) -> tuple[int | None, tuple[str, ...]]:
    value, problems = _whole_number(raw)
    if value is not None and value < 1:
        problems = ("maxLength must be at least 1",)
    return value, problems


def _rounding_mode(raw: Any) -> tuple[Any, tuple[str, ...]]:
    if raw not in rules.ROUNDING_MODES:
        return UNSET, (f"roundingMode must be one of {', '.join(rules.ROUNDING_MODES)}",)
    return raw, ()


def _collation(raw: Any) -> tuple[Any, tuple[str, ...]]:
    if raw not in rules.COLLATIONS:
        return UNSET, ("collation must be 'und:ci' or ''",)
    return raw, ()


def _default_value(raw: Any) -> tuple[Any, tuple[str, ...]]:
    if not isinstance(raw, str):
        return UNSET, ("defaultValueExpression must be a SQL expression string",)
    return raw, ()


_POLICY_TAG_FORM = "projects/P/locations/L/taxonomies/T/policyTags/X"
_DATA_POLICY_FORM = "projects/P/locations/L/dataPolicies/ID"


def _policy_tags(raw: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = raw.get("names") if isinstance(raw, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return (), ('policyTags must be {"names": ["projects/.../policyTags/..." or a short name]}',)
    if len(names) > 1:
        return tuple(names), ("a column can carry at most one policy tag; keep one",)
    problems = (rules.check_policy_name(n, rules.POLICY_TAG_NAME, _POLICY_TAG_FORM, "policyTags") for n in names)
    return tuple(names), tuple(p for p in problems if p)


def _data_policies(raw: Any) -> tuple[Any, tuple[str, ...]]:
    options = raw if isinstance(raw, list) else None
    if options is None or not all(isinstance(o, dict) and set(o) == {"name"} for o in options):
        return UNSET, ('dataPolicies must be a list of {"name": "projects/.../dataPolicies/..." or a short name}',)
    names = [o["name"] for o in options]
    if not all(isinstance(n, str) for n in names):
        return UNSET, ("each data policy's name must be a string",)
    problems = [rules.check_policy_name(n, rules.DATA_POLICY_NAME, _DATA_POLICY_FORM, "dataPolicies") for n in names]
    if len(names) > rules.MAX_DATA_POLICIES_PER_COLUMN:
        problems.append(
            f"{len(names)} data policies; BigQuery attaches at most {rules.MAX_DATA_POLICIES_PER_COLUMN} to a column"
        )
    if len(set(names)) < len(names):
        problems.append("a data policy is listed twice; list each once")
    return tuple(names), tuple(p for p in problems if p)


def policies_check(type_: str, values: Mapping[str, Any]) -> str | None:
    """Policy tags and data policies exclude each other on one column (reported at dataPolicies)."""
    if values.get("policy_tags") and values.get("data_policies"):
        return (
            "a column carries policy tags or data policies, not both (BigQuery docs, Mask column data: "
            "limitations); keep one"
        )
    return None


def _masking_text(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    """A data policy change for a reviewer: who reads the raw values afterwards; the stored data never changes."""
    if not old:
        return (
            f"masked by {', '.join(new)} from now: only its raw-access grantees read the values, other readers see "
            "them masked (or are refused); in place, the data does not change"
        )
    if not new:
        return (
            f"data policies {', '.join(old)} removed: every reader of the table reads the raw values; in place, "
            "the data does not change"
        )
    return (
        f"data policies {', '.join(old)} -> {', '.join(new)}: who reads the raw values changes to the new policies' "
        "grantees, the masking to theirs; in place, the data does not change"
    )


def _range_element(raw: Any) -> tuple[Any, tuple[str, ...]]:
    element = raw.get("type") if isinstance(raw, dict) else None
    element = element.upper() if isinstance(element, str) else element
    if element not in rules.RANGE_ELEMENT_TYPES:
        return UNSET, ('a RANGE column needs rangeElementType {"type": DATE, DATETIME or TIMESTAMP}',)
    return element, ()


def _decimal(column: Column) -> tuple[int | None, int | None]:
    return column.precision, column.scale


def _decimal_fits(declared: Column, path: str, source: str) -> tuple[str, str]:
    digits, scale = rules.decimal_bounds(declared.type, declared.precision, declared.scale)
    predicate = f"ROUND({source}, {scale}) != {source} OR ABS({source}) >= POW(10, {digits})"
    return f"{path} fits {sql_parameters(declared)}", predicate


def _decimal_sql(column: Column) -> str:
    if column.precision is None:
        return ""
    return f"({column.precision}{f', {column.scale}' if column.scale is not None else ''})"


_DECIMAL_TYPES = tuple(rules.NUMERIC_BOUNDS)


def decimal_check(type_: str, values: Mapping[str, Any]) -> str | None:
    """Precision and scale together (reported at precision), once either is read for a decimal type."""
    if type_ not in rules.NUMERIC_BOUNDS or not ("precision" in values or "scale" in values):
        return None
    return rules.check_numeric_parameters(type_, values.get("precision"), values.get("scale"))


TYPE = ColumnAttribute(
    "type",
    "type",
    AttributeChange.STRUCTURE,
    Migration.STRUCTURE,
    basic=True,
    check=_type,
    read=lambda raw: rules.canonical_type(raw) or raw.upper(),
)
MODE = ColumnAttribute(
    "mode",
    "mode",
    AttributeChange.STRUCTURE,
    Migration.STRUCTURE,
    basic=True,
    absent="NULLABLE",
    check=_mode,
    read=lambda raw: (raw or "NULLABLE").upper(),
)
DESCRIPTION = ColumnAttribute(
    "description",
    "description",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    basic=True,
    check=_description,
    send=lambda value: value or None,
    read=lambda raw: raw or "",
    shows_values=False,
    change_text=lambda old, new: "column description changed, in place",
)
MAX_LENGTH = ColumnAttribute(
    "maxLength",
    "max_length",
    AttributeChange.PARAMETER,
    Migration.SET_DATA_TYPE,
    types=("STRING", "BYTES"),
    check=_max_length,
    send=lambda value: None if value is None else str(value),
    read=_int64,
    change_text=lambda old, new: f"maxLength {old} -> {new}",
    widens=lambda type_, old, new: rules.length_widens(old, new),
    sql_parameters=lambda column: "" if column.max_length is None else f"({column.max_length})",
    migrate_text=lambda live, declared: (
        f"length {live.max_length or 'unlimited'} -> {declared.max_length or 'unlimited'}"
    ),
    fits=lambda declared, path, source: (
        f"{path} fits {declared.max_length} {'bytes' if declared.type == 'BYTES' else 'characters'}",
        f"LENGTH({source}) > {declared.max_length}",
    ),
    keep="keep the length",
)
PRECISION = ColumnAttribute(
    "precision",
    "precision",
    AttributeChange.PARAMETER,
    Migration.SET_DATA_TYPE,
    types=_DECIMAL_TYPES,
    check=_whole_number,
    send=lambda value: None if value is None else str(value),
    read=_int64,
    compared=_decimal,
    change_text=lambda old, new: f"precision/scale ({old[0]}, {old[1]}) -> ({new[0]}, {new[1]})",
    widens=rules.decimal_widens,
    sql_parameters=_decimal_sql,
    migrate_text=lambda live, declared: f"{sql_parameters(live)} -> {sql_parameters(declared)}",
    fits=lambda declared, path, source: _decimal_fits(declared, path, source),
)
# Part of the decimal bound PRECISION compares (and words, and migrates) as one change.
SCALE = ColumnAttribute(
    "scale",
    "scale",
    AttributeChange.PARAMETER,
    Migration.SET_DATA_TYPE,
    types=_DECIMAL_TYPES,
    check=_whole_number,
    send=lambda value: None if value is None else str(value),
    read=_int64,
    compared=_decimal,
    part_of="precision",
    joint=("precision", decimal_check),
)
ROUNDING_MODE = ColumnAttribute(
    "roundingMode",
    "rounding_mode",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    types=_DECIMAL_TYPES,
    misplaced_hint="",
    check=_rounding_mode,
    send=lambda value: value or None,
    change_text=lambda old, new: (
        f"roundingMode {old} -> {new}, in place; it applies to values written from now on, existing values stay "
        "as stored"
    ),
)
COLLATION = ColumnAttribute(
    "collation",
    "collation",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    types=("STRING",),
    check=_collation,
    read=lambda raw: raw or None,
    change_text=lambda old, new: (
        f"collation {old!r} -> {new!r} is sent in place; whether BigQuery accepts a new collation on an existing "
        "column is not documented: try it on dev first"
    ),
)
DEFAULT_VALUE_EXPRESSION = ColumnAttribute(
    "defaultValueExpression",
    "default_value_expression",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    check=_default_value,
    send=lambda value: value or None,
    change_text=lambda old, new: (
        "default value changed, in place; applies to rows written from now on, existing rows keep theirs"
    ),
)
POLICY_TAGS = ColumnAttribute(
    "policyTags",
    "policy_tags",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    check=_policy_tags,
    send=lambda value: {"names": list(value)} if value else None,
    read=lambda raw: tuple(raw.get("names", ())) if raw is not None else (),
    change_text=lambda old, new: "policy tag changed, in place: who may read this column changes, the data does not",
)
# Sent in the schema when this repository owns masking; under column_masking: governance the catalog refuses the key
# and the program sets ignore_schema_changes: [dataPolicies] (infra/model/declared.py).
DATA_POLICIES = ColumnAttribute(
    "dataPolicies",
    "data_policies",
    AttributeChange.IN_PLACE,
    Migration.LEFT_TO_PULUMI,
    check=_data_policies,
    send=lambda value: [{"name": n} for n in value] if value else None,
    read=lambda raw: tuple(o["name"] for o in raw) if raw else (),
    change_text=_masking_text,
    joint=("dataPolicies", policies_check),
)
RANGE_ELEMENT_TYPE = ColumnAttribute(
    "rangeElementType",
    "range_element_type",
    AttributeChange.ELEMENT_TYPE,
    Migration.REFUSED,
    types=("RANGE",),
    required_for=("RANGE",),
    null_is_absent=True,
    check=_range_element,
    send=lambda value: {"type": value} if value else None,
    read=lambda raw: raw["type"].upper() if raw else None,
    change_text=lambda old, new: (
        f"RANGE<{old}> -> RANGE<{new}> is a type change BigQuery refuses in place; the provider compares only "
        "the type name RANGE and sends it, so apply fails"
    ),
    sql_type=lambda column: f"<{column.range_element_type}>",
    migrate_text=lambda live, declared: f"{sql_type_name(live)} -> {sql_type_name(declared)}",
)

# In the order of BigQuery's schema JSON as this repository writes it: the basic keys, then (after `fields`)
# the parameters.
ATTRIBUTES = (
    TYPE,
    MODE,
    DESCRIPTION,
    MAX_LENGTH,
    PRECISION,
    SCALE,
    ROUNDING_MODE,
    COLLATION,
    DEFAULT_VALUE_EXPRESSION,
    POLICY_TAGS,
    DATA_POLICIES,
    RANGE_ELEMENT_TYPE,
)
BASIC = tuple(a for a in ATTRIBUTES if a.basic)
PARAMETERS = tuple(a for a in ATTRIBUTES if not a.basic)
# Types whose columns always carry a parameter (RANGE its element type): never read on the basic path.
PARAMETERIZED_TYPES = frozenset(t for a in ATTRIBUTES for t in a.required_for)
# verify: the differences that name their values first.
VERIFIED = (*[a for a in ATTRIBUTES if a.shows_values], *[a for a in ATTRIBUTES if not a.shows_values])
# diff and migrate: one change per attribute outside the column walk (SCALE's is PRECISION's).
CLASSIFIED = tuple(a for a in ATTRIBUTES if a.change is not AttributeChange.STRUCTURE and a.part_of is None)
PLANNED = tuple(a for a in CLASSIFIED if a.migration in (Migration.SET_DATA_TYPE, Migration.REFUSED))


def sql_parameters(column: Column) -> str:
    """The type with its parameters, as ALTER COLUMN SET DATA TYPE takes it: STRING(10), NUMERIC(10, 2)."""
    return column.type + "".join(a.sql_parameters(column) for a in ATTRIBUTES if a.sql_parameters)


def sql_type_name(column: Column) -> str:
    """A scalar column's type in GoogleSQL, with the part that belongs to the type (RANGE<DATE>)."""
    return column.type + "".join(a.sql_type(column) for a in ATTRIBUTES if a.sql_type and a.applies_to(column.type))
