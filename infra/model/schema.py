"""Schema files (BigQuery's JSON: `bq show --schema`) -> typed, canonical columns, collecting every problem."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from infra.model import rules
from infra.model.column_attributes import (
    ATTRIBUTES,
    BASIC,
    PARAMETERIZED_TYPES,
    PARAMETERS,
    UNSET,
    ColumnAttribute,
)
from infra.model.problems import Problem

# How each attribute is sent (infra/model/column_attributes.py).
_SENT_BASIC = tuple((a.attribute, a.key, a.send) for a in BASIC)
_SENT_PARAMETERS = tuple((a.attribute, a.key, a.send) for a in PARAMETERS)
# The basic attributes as the parser checks them, unpacked once: every column of a schema reads all three.
_CHECKED_BASIC = tuple((a.attribute, a.key, a.absent, a.check) for a in BASIC)


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
    data_policies: tuple[str, ...] = ()
    range_element_type: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The column in BigQuery's schema JSON, canonical spelling, stable key order: the basic keys, its
        fields, then its parameters, each as its attribute sends it (infra/model/column_attributes.py)."""
        out: dict[str, Any] = {"name": self.name}
        for attribute, key, send in _SENT_BASIC:
            if (sent := send(getattr(self, attribute))) is not None:
                out[key] = sent
        if self.fields:
            out["fields"] = [f.to_api() for f in self.fields]
        for attribute, key, send in _SENT_PARAMETERS:
            # Unset (None, no policy tags) is never sent: skipping it first keeps a 13,000-field schema fast.
            if (value := getattr(self, attribute)) is not None and value != () and (sent := send(value)) is not None:
                out[key] = sent
        return out


def column_from_api(resource: dict[str, Any]) -> Column:
    """A column of a table's REST form (tables.get), in the catalog's canonical form."""
    values = {a.attribute: a.read(resource.get(a.key)) for a in ATTRIBUTES}
    return Column(name=resource["name"], fields=tuple(column_from_api(f) for f in resource.get("fields", ())), **values)


def schema_to_api(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    return [c.to_api() for c in columns]


# ---------------------------------------------------------------- policy tags and data policies, per stack


def short_names(columns: tuple[Column, ...], parent: str = "") -> Iterator[tuple[str, str, str]]:
    """(column path, key, name) of every policy tag and data policy named by a short name (rules.SHORT_NAME):
    each stack maps it to its own project's resource (tenant-bigquery:policyTags, tenant-bigquery:dataPolicies)."""
    for column in columns:
        path = join_path(parent, column.name)
        for key, names in (("policyTags", column.policy_tags), ("dataPolicies", column.data_policies)):
            yield from ((path, key, n) for n in names if rules.SHORT_NAME.match(n))
        yield from short_names(column.fields, path)


def resolve_names(
    columns: tuple[Column, ...], policy_tags: Mapping[str, str], data_policies: Mapping[str, str]
) -> tuple[Column, ...]:
    """The columns with every short name replaced by the stack's resource name (validated: each is mapped)."""

    def resolved(column: Column) -> Column:
        tags = tuple(policy_tags.get(n, n) for n in column.policy_tags)
        policies = tuple(data_policies.get(n, n) for n in column.data_policies)
        fields = tuple(resolved(f) for f in column.fields)
        if (tags, policies, fields) == (column.policy_tags, column.data_policies, column.fields):
            return column
        return replace(column, policy_tags=tags, data_policies=policies, fields=fields)

    if not policy_tags and not data_policies:
        return columns
    return tuple(resolved(c) for c in columns)


def without_data_policies(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """The columns as verify compares them when governance owns masking: data policies set aside."""
    return tuple(
        replace(c, data_policies=(), fields=without_data_policies(c.fields)) if c.data_policies or c.fields else c
        for c in columns
    )


def data_policy_paths(columns: tuple[Column, ...], parent: str = "") -> Iterator[tuple[str, tuple[str, ...]]]:
    """(column path, names) of every column carrying data policies, at every depth."""
    for column in columns:
        path = join_path(parent, column.name)
        if column.data_policies:
            yield path, column.data_policies
        yield from data_policy_paths(column.fields, path)


def policy_tag_paths(columns: tuple[Column, ...], parent: str = "") -> Iterator[tuple[str, tuple[str, ...]]]:
    """(column path, names) of every column carrying a policy tag, at every depth."""
    for column in columns:
        path = join_path(parent, column.name)
        if column.policy_tags:
            yield path, column.policy_tags
        yield from policy_tag_paths(column.fields, path)


def carry_data_policies(fields: list[dict[str, Any]], live: tuple[Column, ...]) -> None:
    """Give each field that declares no data policies those of the live column of its name, at every depth: what
    the provider does under ignore_schema_changes = [dataPolicies] (terraform-provider-google
    resource_bigquery_table.go mergeDataPoliciesIntoMap), for a table created in the live one's place."""
    by_name = {c.name: c for c in live}
    for field in fields:
        found = by_name.get(field["name"])
        if found is None:
            continue
        if "dataPolicies" not in field and found.data_policies:
            field["dataPolicies"] = [{"name": n} for n in found.data_policies]
        if "fields" in field:
            carry_data_policies(field["fields"], found.fields)


def count_columns(columns: tuple[Column, ...]) -> int:
    """Leaf columns at every depth: BigQuery's limit counts nested and repeated fields, and a RECORD
    counts as the fields it holds (real deployed schemas have more fields than 10,000 this way)."""
    total = 0
    for column in columns:  # a loop, not sum() over a generator: half the time on 13,000 fields
        total += count_columns(column.fields) if column.fields else 1
    return total


_BASIC_COLUMN_KEYS = frozenset({"name", "fields", *(a.key for a in BASIC)})
_COLUMN_KEYS = {"name", "fields", *(a.key for a in ATTRIBUTES)}


# A leaf with only these keys, all strings when valid, so that equal keys mean equal columns.
_PLAIN_LEAF_KEYS = frozenset({"name", *(a.key for a in BASIC)})


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

        basics: dict[str, Any] = {}
        for attribute, key, absent, check in _CHECKED_BASIC:
            basics[attribute], problems = check(item.get(key, absent))
            for message in problems:
                self.fail(f"{where}.{key}", message)
        type_ = basics["type"]

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

        if basic and type_ not in PARAMETERIZED_TYPES:  # the common case: no parameters
            return Column(name=name, fields=fields, **basics)
        return Column(name=name, fields=fields, **basics, **self.parameters(item, type_, where))

    def checked(self, attribute: ColumnAttribute, raw: Any, where: str) -> Any:
        value, problems = attribute.check(raw)
        for message in problems:
            self.fail(f"{where}.{attribute.key}", message)
        return value

    def parameters(self, item: dict[str, Any], type_: str, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attribute in PARAMETERS:
            raw = item.get(attribute.key)
            present = raw is not None if attribute.null_is_absent else attribute.key in item
            if present or type_ in attribute.required_for:
                if not attribute.applies_to(type_):
                    self.fail(f"{where}.{attribute.key}", attribute.misplaced(type_))
                elif (value := self.checked(attribute, raw, where)) is not UNSET:
                    out[attribute.attribute] = value
            if attribute.joint and (message := attribute.joint[1](type_, out)):
                self.fail(f"{where}.{attribute.joint[0]}", message)
        return out


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
