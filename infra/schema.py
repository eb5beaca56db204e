"""Schema files (BigQuery's JSON: `bq show --schema`) -> typed, canonical columns, collecting every problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra import rules
from infra.problems import Problem


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
    total = 0
    for column in columns:  # a loop, not sum() over a generator: half the time on 13,000 fields
        total += count_columns(column.fields) if column.fields else 1
    return total


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


# A leaf with only these keys, all strings when valid, so that equal keys mean equal columns.
_PLAIN_LEAF_KEYS = frozenset({"name", "type", "mode", "description"})


class _SchemaParser:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        # Leaves repeat (the largest corpus schema has 10,203, 762 of them distinct): each is read once.
        self.valid_leaves: dict[tuple[tuple[str, Any], ...], Column] = {}

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
                    join_path(parent_path, column.name),
                    f"duplicate column name (same as {seen[folded]!r} ignoring case); rename or remove one",
                )
            else:
                seen[folded] = column.name
            columns.append(column)
        return tuple(columns)

    def column(self, item: Any, parent_path: str, index: int, level: int) -> Column | None:
        key = tuple(item.items()) if isinstance(item, dict) and _PLAIN_LEAF_KEYS.issuperset(item) else None
        try:
            known = self.valid_leaves.get(key) if key is not None else None
        except TypeError:  # a list or an object as a value: invalid, read it to say why
            key = known = None
        if known is not None:
            return known
        problems = len(self.problems)
        column = self.read_column(item, parent_path, index, level)
        if key is not None and column is not None and len(self.problems) == problems:
            self.valid_leaves[key] = column
        return column

    def read_column(self, item: Any, parent_path: str, index: int, level: int) -> Column | None:
        if not isinstance(item, dict):
            self.fail(
                join_path(parent_path, f"[{index}]"), "each column must be a JSON object with at least name and type"
            )
            return None
        name = item.get("name")
        if isinstance(name, str) and name:
            where = f"{parent_path}.{name}" if parent_path else name
            message = rules.check_column_name(name)
            if message:
                self.fail(where, message)
        else:
            where = join_path(parent_path, f"[{index}]")
            self.fail(where + ".name", "every column needs a non-empty string name")
            name = f"[{index}]"
        basic = _BASIC_COLUMN_KEYS.issuperset(item)
        if not basic and (unknown := sorted(item.keys() - _COLUMN_KEYS)):
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

        if basic and type_ != "RANGE":  # the common case: no parameters
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


def join_path(parent: str, name: str) -> str:
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
