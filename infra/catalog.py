"""Declarations + schema files -> a typed, canonical catalog, collecting every problem.

Pure core: no pulumi or google imports. Every problem is reported as
`<file>:<field path>: <how to fix it>`, all of them at once, never as a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra import rules
from infra.renames import check_renamed_columns


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class CatalogError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# Not frozen: a frozen dataclass costs 6x more to build, which dominates loading a 13,000-field schema.
@dataclass(slots=True)
class Column:
    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    fields: tuple[Column, ...] = ()
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    rounding_mode: str | None = None
    collation: str | None = None
    default_value_expression: str | None = None
    policy_tags: tuple[str, ...] = ()
    range_element_type: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The column in BigQuery's schema JSON, canonical spelling, stable key order."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        if self.fields:
            out["fields"] = [f.to_api() for f in self.fields]
        # The REST API carries int64 values as strings; sending them the same way avoids a diff.
        if self.max_length is not None:
            out["maxLength"] = str(self.max_length)
        if self.precision is not None:
            out["precision"] = str(self.precision)
        if self.scale is not None:
            out["scale"] = str(self.scale)
        if self.rounding_mode:
            out["roundingMode"] = self.rounding_mode
        if self.collation is not None:
            out["collation"] = self.collation
        if self.default_value_expression:
            out["defaultValueExpression"] = self.default_value_expression
        if self.policy_tags:
            out["policyTags"] = {"names": list(self.policy_tags)}
        if self.range_element_type:
            out["rangeElementType"] = {"type": self.range_element_type}
        return out


def schema_to_api(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    return [c.to_api() for c in columns]


def count_columns(columns: tuple[Column, ...]) -> int:
    """Leaf columns at every depth: BigQuery's limit counts nested and repeated fields, and a RECORD
    counts as the fields it holds (real deployed schemas have more fields than 10,000 this way)."""
    return sum(count_columns(c.fields) if c.fields else 1 for c in columns)


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

    @property
    def key(self) -> str:
        return f"{self.dataset}.{self.table_id}"


@dataclass(frozen=True)
class Dataset:
    dataset_id: str
    description: str
    labels: dict[str, str]
    tables: tuple[Table, ...]
    declaration_file: str


@dataclass(frozen=True)
class Catalog:
    datasets: tuple[Dataset, ...]

    def tables(self) -> list[Table]:
        return [t for d in self.datasets for t in d.tables]


# ---------------------------------------------------------------- declarations (stacks/*.yaml)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RangeSpec(_Strict):
    field: str
    start: int
    end: int
    interval: int


class PartitioningSpec(_Strict):
    field: str | None = None
    type: str | None = None
    expiration_days: int | None = None
    keep_forever: bool = False
    range: RangeSpec | None = None


class TableSpec(_Strict):
    description: str = ""
    # `schema` would shadow a BaseModel attribute; the YAML key is still `schema`.
    schema_file: str | None = Field(None, alias="schema")
    partitioning: PartitioningSpec | None = None
    require_partition_filter: bool = False
    clustering: list[str] = []
    labels: dict[str, str] = {}
    renamed_columns: dict[str, str] = {}

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class DatasetSpec(_Strict):
    dataset: str
    description: str = ""
    labels: dict[str, str] = {}
    tables: dict[str, TableSpec]


_PYDANTIC_MESSAGES = {
    "missing": "is required; add it",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "string_type": "must be a string (quote it in YAML)",
    "list_type": "must be a list, e.g. [a, b]",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Walk the model along loc (minus the unknown key) to list what is allowed there."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                info = next((f for f in current.model_fields.values() if f.alias == part), None)
            current = info.annotation if info else None
        elif isinstance(part, str) and current is not None and getattr(current, "__origin__", None) is dict:
            current = current.__args__[1]
        else:
            args = [a for a in getattr(current, "__args__", ()) if a is not type(None)]
            current = args[-1] if args else None
            if isinstance(current, type) and issubclass(current, BaseModel):
                info = current.model_fields.get(str(part))
                current = info.annotation if info else current
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    args = [a for a in getattr(current, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
    return [f.alias or name for name, f in args[0].model_fields.items()] if args else []


def pydantic_problems(error: ValidationError, model: type[BaseModel], file: str, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = prefix + ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, loc))
            message = f"unknown key; check the spelling (allowed here: {allowed})"
        else:
            message = _PYDANTIC_MESSAGES.get(item["type"], item["msg"])
            if item["type"] != "missing" and isinstance(item.get("input"), str | int | float | bool):
                message += f"; got {item['input']!r}"
        problems.append(Problem(file, path, message))
    return problems


# ---------------------------------------------------------------- YAML and JSON with line numbers


# libyaml's parser when PyYAML was built with it: ten times faster than the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """PyYAML keeps the last of two equal keys silently; a duplicated table entry must be an error."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; keep one entry", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# YAML 1.2's core schema, which Pulumi reads stack files with: `yes`, `no`, `on`, `off` are strings,
# `010` is ten, and a date stays a string. PyYAML alone implements YAML 1.1.
_YAML_11_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "null", "timestamp")}
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_11_TAGS]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    _UniqueKeyLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _construct_yaml12_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_yaml12_int)


def _read_text(path: Path, display: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([Problem(display, "", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise CatalogError([Problem(display, "", "not UTF-8 text; save the file as UTF-8")]) from None


def load_yaml(path: Path, display: str, raw_scalars_under: str | None = None) -> Any:
    """The document, YAML 1.2. With raw_scalars_under, the plain values of that top-level mapping stay
    the text as written: Pulumi hands a program each stack setting as that text."""
    text = _read_text(path, display)
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if raw_scalars_under is not None:
                _keep_raw_scalars(node, raw_scalars_under)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else ""
        raise CatalogError([Problem(display, line, f"invalid YAML: {exc.problem}; fix the syntax")]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([Problem(display, "", f"invalid YAML: {exc}")]) from None


def _keep_raw_scalars(document: yaml.Node, key: str) -> None:
    if not isinstance(document, yaml.MappingNode):
        return
    for key_node, value_node in document.value:
        if key_node.value == key and isinstance(value_node, yaml.MappingNode):
            for _, setting in value_node.value:
                if isinstance(setting, yaml.ScalarNode):
                    setting.tag = "tag:yaml.org,2002:str"


def load_json(path: Path, display: str) -> Any:
    text = _read_text(path, display)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            [Problem(display, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}; fix the syntax")]
        ) from None
    except RecursionError:
        raise CatalogError(
            [
                Problem(
                    display,
                    "",
                    f"nested too deeply to read; BigQuery allows at most {rules.MAX_NESTING_LEVELS} levels of RECORD",
                )
            ]
        ) from None


def display_path(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


# ---------------------------------------------------------------- schema files


_BASIC_COLUMN_KEYS = frozenset({"name", "type", "mode", "description", "fields"})
_COLUMN_KEYS = {
    "name",
    "type",
    "mode",
    "description",
    "fields",
    "maxLength",
    "precision",
    "scale",
    "roundingMode",
    "collation",
    "defaultValueExpression",
    "policyTags",
    "rangeElementType",
}


class _SchemaParser:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, path, message))

    def columns(self, raw: Any, parent_path: str, level: int) -> tuple[Column, ...]:
        if not isinstance(raw, list):
            hint = " (a table resource? keep only its schema.fields list)" if isinstance(raw, dict) else ""
            self.fail(parent_path or "(top)", f"expected a JSON list of columns, as `bq show --schema` prints{hint}")
            return ()
        columns: list[Column] = []
        seen: dict[str, str] = {}
        for index, item in enumerate(raw):
            column = self.column(item, parent_path, index, level)
            if column is None:
                continue
            folded = column.name.lower()
            if folded in seen:
                self.fail(
                    _join(parent_path, column.name),
                    f"duplicate column name (same as {seen[folded]!r} ignoring case); rename or remove one",
                )
            else:
                seen[folded] = column.name
            columns.append(column)
        return tuple(columns)

    def column(self, item: Any, parent_path: str, index: int, level: int) -> Column | None:
        if not isinstance(item, dict):
            self.fail(_join(parent_path, f"[{index}]"), "each column must be a JSON object with at least name and type")
            return None
        name = item.get("name")
        if isinstance(name, str) and name:
            where = f"{parent_path}.{name}" if parent_path else name
            message = rules.check_column_name(name)
            if message:
                self.fail(where, message)
        else:
            where = _join(parent_path, f"[{index}]")
            self.fail(where + ".name", "every column needs a non-empty string name")
            name = f"[{index}]"
        unknown = sorted(item.keys() - _COLUMN_KEYS)
        if unknown:
            self.fail(
                where,
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_COLUMN_KEYS))}",
            )

        raw_type = item.get("type")
        type_ = rules.canonical_type(raw_type) if isinstance(raw_type, str) else None
        if type_ is None:
            self.fail(
                where + ".type",
                f"type {raw_type!r} is not a BigQuery type; use one of {', '.join(rules.CANONICAL_TYPES)}",
            )
            type_ = "STRING"

        raw_mode = item.get("mode", "NULLABLE")
        mode = raw_mode.upper() if isinstance(raw_mode, str) else None
        if mode == "":
            mode = "NULLABLE"
        if mode not in rules.MODES:
            self.fail(where + ".mode", f"mode {raw_mode!r} is invalid; use NULLABLE, REQUIRED or REPEATED")
            mode = "NULLABLE"

        description = item.get("description") or ""
        if not isinstance(description, str):
            self.fail(where + ".description", "description must be a string")
            description = ""
        elif (message := rules.check_description(description, rules.MAX_COLUMN_DESCRIPTION)) is not None:
            self.fail(where + ".description", message)

        fields: tuple[Column, ...] = ()
        if type_ == "RECORD":
            if not item.get("fields"):
                self.fail(where + ".fields", "a RECORD column needs a non-empty fields list")
            elif level >= rules.MAX_NESTING_LEVELS:
                # Not read further: the depth is the problem, and reading on would not end for a cyclic-looking file.
                self.fail(
                    where + ".fields",
                    f"RECORD nesting deeper than {rules.MAX_NESTING_LEVELS} levels; BigQuery allows at most "
                    f"{rules.MAX_NESTING_LEVELS}: flatten the inner records",
                )
            else:
                fields = self.columns(item["fields"], where, level + 1)
        elif "fields" in item:
            self.fail(
                where + ".fields", f"only RECORD columns have fields; remove it or make the type RECORD, not {type_}"
            )

        if type_ != "RANGE" and _BASIC_COLUMN_KEYS.issuperset(item):  # the common case: no parameters
            return Column(name, type_, mode, description, fields)
        return Column(
            name=name,
            type=type_,
            mode=mode,
            description=description,
            fields=fields,
            **self.parameters(item, type_, where),
        )

    def parameters(self, item: dict[str, Any], type_: str, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "maxLength" in item:
            if type_ not in ("STRING", "BYTES"):
                self.fail(where + ".maxLength", f"maxLength applies only to STRING and BYTES, not {type_}; remove it")
            else:
                value = self.integer(item["maxLength"], where + ".maxLength")
                if value is not None and value < 1:
                    self.fail(where + ".maxLength", "maxLength must be at least 1")
                out["max_length"] = value
        for key, attribute in (("precision", "precision"), ("scale", "scale")):
            if key in item:
                if type_ not in rules.NUMERIC_BOUNDS:
                    self.fail(
                        where + f".{key}", f"{key} applies only to NUMERIC and BIGNUMERIC, not {type_}; remove it"
                    )
                else:
                    out[attribute] = self.integer(item[key], where + f".{key}")
        if type_ in rules.NUMERIC_BOUNDS and ("precision" in item or "scale" in item):
            message = rules.check_numeric_parameters(type_, out.get("precision"), out.get("scale"))
            if message:
                self.fail(where + ".precision", message)
        if "roundingMode" in item:
            value = item["roundingMode"]
            if type_ not in rules.NUMERIC_BOUNDS:
                self.fail(where + ".roundingMode", f"roundingMode applies only to NUMERIC and BIGNUMERIC, not {type_}")
            elif value not in rules.ROUNDING_MODES:
                self.fail(where + ".roundingMode", f"roundingMode must be one of {', '.join(rules.ROUNDING_MODES)}")
            else:
                out["rounding_mode"] = value
        if "collation" in item:
            value = item["collation"]
            if type_ != "STRING":
                self.fail(where + ".collation", f"collation applies only to STRING, not {type_}; remove it")
            elif value not in rules.COLLATIONS:
                self.fail(where + ".collation", "collation must be 'und:ci' or ''")
            else:
                out["collation"] = value
        if "defaultValueExpression" in item:
            value = item["defaultValueExpression"]
            if not isinstance(value, str):
                self.fail(where + ".defaultValueExpression", "defaultValueExpression must be a SQL expression string")
            else:
                out["default_value_expression"] = value
        if "policyTags" in item:
            out["policy_tags"] = self.policy_tags(item["policyTags"], where + ".policyTags")
        range_element = item.get("rangeElementType")
        if type_ == "RANGE":
            element = range_element.get("type") if isinstance(range_element, dict) else None
            element = element.upper() if isinstance(element, str) else element
            if element not in rules.RANGE_ELEMENT_TYPES:
                self.fail(
                    where + ".rangeElementType",
                    'a RANGE column needs rangeElementType {"type": DATE, DATETIME or TIMESTAMP}',
                )
            else:
                out["range_element_type"] = element
        elif range_element is not None:
            self.fail(where + ".rangeElementType", f"rangeElementType applies only to RANGE, not {type_}; remove it")
        return out

    def integer(self, value: Any, where: str) -> int | None:
        if isinstance(value, bool):
            value = None
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int):
            self.fail(where, "must be a whole number")
            return None
        return value

    def policy_tags(self, value: Any, where: str) -> tuple[str, ...]:
        names = value.get("names") if isinstance(value, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.fail(where, 'policyTags must be {"names": ["projects/.../policyTags/..."]}')
            return ()
        if len(names) > 1:
            self.fail(where, "a column can carry at most one policy tag; keep one")
        return tuple(names)


def _join(parent: str, name: str) -> str:
    if not parent:
        return name
    return f"{parent}{name}" if name.startswith("[") else f"{parent}.{name}"


def parse_schema(raw: Any, file: str) -> tuple[tuple[Column, ...], list[Problem]]:
    parser = _SchemaParser(file)
    columns = parser.columns(raw, "", 1)
    if raw == []:
        parser.fail(
            "(top)",
            "no columns; a table needs at least one column (to remove the table, delete its entry under tables: "
            "in stacks/<dataset>.yaml)",
        )
    total = count_columns(columns)
    if total > rules.MAX_COLUMNS:
        parser.fail(
            "(top)",
            f"{total:,} columns, counting leaf fields at every depth (nested and repeated included, "
            "a RECORD counted as its fields); "
            f"BigQuery allows at most {rules.MAX_COLUMNS:,} per table; split the table or drop fields",
        )
    return columns, parser.problems


# ---------------------------------------------------------------- the catalog


def _top_level(columns: tuple[Column, ...]) -> dict[str, Column]:
    return {c.name.lower(): c for c in columns}


def _check_partitioning(
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
        message = rules.check_range_partitioning(rng.start, rng.end, rng.interval)
        if message:
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
            message = rules.check_time_partition_column(column.type, granularity)
            if message:
                fail("field", message)
    partitioning = TimePartitioning(granularity, _spelled(spec.field, columns), spec.expiration_days, spec.keep_forever)
    return partitioning, None, problems


def _spelled(name: str | None, columns: dict[str, Column]) -> str | None:
    """A column as the schema spells it: BigQuery matches names ignoring case, the provider compares them exactly."""
    if name is None:
        return None
    column = columns.get(name.lower())
    return column.name if column else name


def _check_clustering(clustering: list[str], columns: dict[str, Column], file: str, where: str) -> list[Problem]:
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


def _label_problems(labels: dict[str, str], file: str, where: str) -> list[Problem]:
    return [Problem(file, f"{where}.{key}" if key else where, message) for key, message in rules.check_labels(labels)]


def _load_dataset(
    root: Path, path: Path, referenced: set[Path], unreadable: set[str], skipped: list[str]
) -> tuple[Dataset | None, list[Problem]]:
    file = display_path(path)
    raw = load_yaml(path, file)
    if not isinstance(raw, dict):
        unreadable.add("*")
        return None, [Problem(file, "", "expected a mapping with dataset:, description:, labels: and tables:")]
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as error:
        # Its schema files are not orphans, only undeclared until the declaration is fixed.
        unreadable.add(raw["dataset"] if isinstance(raw.get("dataset"), str) else "*")
        return None, pydantic_problems(error, DatasetSpec, file)

    problems: list[Problem] = []
    if (message := rules.check_dataset_id(spec.dataset)) is not None:
        problems.append(Problem(file, "dataset", message))
    if (message := rules.check_description(spec.description, rules.MAX_TABLE_DESCRIPTION)) is not None:
        problems.append(Problem(file, "description", message))
    problems += _label_problems(spec.labels, file, "labels")
    if not spec.tables:
        problems.append(Problem(file, "tables", "declare at least one table"))

    tables = []
    schema_dir = root / "schemas" / spec.dataset
    for table_id, table_spec in spec.tables.items():
        where = f"tables.{table_id}"
        if (message := rules.check_table_id(table_id)) is not None:
            problems.append(Problem(file, where, message))
        schema_path = schema_dir / (table_spec.schema_file or f"{table_id}.json")
        # Resolved against the real root: a symlinked file or folder must not pull in files from elsewhere.
        if not schema_path.resolve().is_relative_to(root.resolve() / "schemas" / spec.dataset):
            problems.append(
                Problem(
                    file,
                    f"{where}.schema",
                    f"must name a file inside schemas/{spec.dataset}/ (schemas are part of the declaration); "
                    "move the file there",
                )
            )
            referenced.add(schema_path.resolve())  # refused above; not an orphan as well
            skipped.append(f"{spec.dataset}.{table_id}")
            continue
        if not schema_path.is_file():
            problems.append(
                Problem(
                    file,
                    f"{where}.schema",
                    f"schema file {display_path(schema_path)} not found; create it or point schema: at the right file",
                )
            )
            skipped.append(f"{spec.dataset}.{table_id}")
            continue
        referenced.add(schema_path.resolve())
        schema_display = display_path(schema_path)
        try:
            columns, schema_problems = parse_schema(load_json(schema_path, schema_display), schema_display)
        except CatalogError as error:
            problems += error.problems
            skipped.append(f"{spec.dataset}.{table_id}")
            continue
        problems += schema_problems
        if not columns:
            continue  # nothing to check partitioning or clustering against; the schema problem says why
        if (message := rules.check_description(table_spec.description, rules.MAX_TABLE_DESCRIPTION)) is not None:
            problems.append(Problem(file, f"{where}.description", message))
        problems += _label_problems(table_spec.labels, file, f"{where}.labels")
        top = _top_level(columns)
        time_partitioning = range_partitioning = None
        if table_spec.partitioning is not None:
            time_partitioning, range_partitioning, partition_problems = _check_partitioning(
                table_spec.partitioning, top, file, f"{where}.partitioning"
            )
            problems += partition_problems
        if table_spec.require_partition_filter and table_spec.partitioning is None:
            problems.append(
                Problem(
                    file, f"{where}.require_partition_filter", "needs partitioning:; remove it or partition the table"
                )
            )
        if "clustering" in table_spec.model_fields_set:
            problems += _check_clustering(table_spec.clustering, top, file, f"{where}.clustering")
        problems += [
            Problem(file, f"{where}.renamed_columns.{new}", message)
            for new, message in check_renamed_columns(table_spec.renamed_columns, columns)
        ]
        tables.append(
            Table(
                dataset=spec.dataset,
                table_id=table_id,
                description=table_spec.description,
                schema=columns,
                schema_file=schema_display,
                time_partitioning=time_partitioning,
                range_partitioning=range_partitioning,
                require_partition_filter=table_spec.require_partition_filter,
                clustering=tuple(_spelled(name, top) or name for name in table_spec.clustering),
                labels=dict(table_spec.labels),
                renamed_columns=dict(table_spec.renamed_columns),
            )
        )
    dataset = Dataset(spec.dataset, spec.description, dict(spec.labels), tuple(tables), file)
    return dataset, problems


@dataclass(frozen=True)
class CatalogRead:
    """Everything that could be loaded, every problem, and what could not be read at all."""

    catalog: Catalog
    problems: list[Problem]
    unreadable: list[str]


def catalog_warnings(catalog: Catalog) -> list[Problem]:
    """Valid declarations with a known cost: said by `validate`, never an error."""

    def walk(columns: tuple[Column, ...], parent: str, file: str) -> Iterator[Problem]:
        for column in columns:
            where = _join(parent, column.name)
            if (message := rules.column_name_cost(column.name)) is not None:
                yield Problem(file, where, message)
            yield from walk(column.fields, where, file)

    return [warning for table in catalog.tables() for warning in walk(table.schema, "", table.schema_file)]


def load_catalog(root: Path) -> Catalog:
    """Load and validate every stacks/*.yaml and its schemas; raise CatalogError with all problems."""
    read = read_catalog(root)
    if read.problems:
        raise CatalogError(read.problems)
    return read.catalog


def read_catalog(root: Path) -> CatalogRead:
    """Load what loads, invalid parts included (a deployed catalog stays comparable after a rule
    tightens); `unreadable` names declaration files and tables that could not be read at all."""
    stacks_dir = root / "stacks"
    if not stacks_dir.is_dir():
        raise CatalogError(
            [Problem(display_path(stacks_dir), "", "no such folder; --root must hold stacks/ and schemas/")]
        )
    declarations = sorted([*stacks_dir.glob("*.yaml"), *stacks_dir.glob("*.yml")])
    if not declarations:
        raise CatalogError([Problem(display_path(stacks_dir), "", "no *.yaml declarations; add one file per dataset")])

    problems: list[Problem] = []
    datasets: list[Dataset] = []
    referenced: set[Path] = set()
    unreadable: set[str] = set()
    unread: list[str] = []
    declared_in: dict[str, str] = {}
    for path in declarations:
        if not path.resolve().is_relative_to(root.resolve() / "stacks"):
            problems.append(
                Problem(
                    display_path(path),
                    "",
                    "a link to a file outside stacks/; declarations are part of the repository: copy the file here",
                )
            )
            unreadable.add("*")
            continue
        try:
            dataset, dataset_problems = _load_dataset(root, path, referenced, unreadable, unread)
        except CatalogError as error:
            problems += error.problems
            unreadable.add("*")
            unread.append(display_path(path))
            continue
        problems += dataset_problems
        if dataset is None:
            unread.append(display_path(path))
            continue
        if dataset.dataset_id in declared_in:
            problems.append(
                Problem(
                    dataset.declaration_file,
                    "dataset",
                    f"dataset {dataset.dataset_id!r} is also declared in {declared_in[dataset.dataset_id]}; "
                    "one file per dataset",
                )
            )
            continue
        declared_in[dataset.dataset_id] = dataset.declaration_file
        datasets.append(dataset)

    schemas_dir = root / "schemas"
    for schema_path in sorted(schemas_dir.glob("*/*.json")) if schemas_dir.is_dir() else []:
        if schema_path.resolve() in referenced or {"*", schema_path.parent.name} & unreadable:
            continue
        dataset_id = schema_path.parent.name
        if dataset_id in declared_in:
            hint = f"add an entry under tables: in {declared_in[dataset_id]} or delete the file"
        else:
            hint = f"no stacks/*.yaml declares dataset {dataset_id!r}; declare it or delete the file"
        problems.append(Problem(display_path(schema_path), "", f"schema file not used by any table; {hint}"))

    return CatalogRead(Catalog(tuple(datasets)), problems, unread)
