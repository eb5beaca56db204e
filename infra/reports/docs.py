"""The data dictionary: catalog -> Markdown (docs/tables.md); and the reference of the declaration file
(docs/declaration.md), from its structs and the table properties. Pure: no pulumi or google imports.

The output depends only on the catalog, never on the machine or the working directory, so the
committed file can be compared byte for byte (`python -m infra.cli docs --check`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin

import msgspec

from infra.analysis.views import check_view
from infra.model.catalog import KEY_MEANINGS, Catalog, Dataset, DatasetSpec
from infra.model.render import clustering_text, columns_text, partitioning_text, retention_text
from infra.model.schema import Column
from infra.model.table_properties import TABLE_PROPERTIES, Table, partitioning_args, table_constraints_text
from infra.model.views import VIEWS_DIR, View

DOCS_FILE = Path("docs") / "tables.md"
# `table.column` written in a description: how the schemas state what a column refers to.
_REFERENCE = re.compile(r"\b([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\b")


@dataclass(frozen=True, order=True)
class Reference:
    """A column whose description names the column it refers to, both in the same dataset."""

    table: str
    column: str
    target_table: str
    target_column: str


def walk(columns: tuple[Column, ...], prefix: str = "", depth: int = 0) -> Iterator[tuple[str, int, Column]]:
    """Every column at every depth, parents first, as (dotted path, depth, column)."""
    for column in columns:
        path = f"{prefix}{column.name}"
        yield path, depth, column
        yield from walk(column.fields, f"{path}.", depth + 1)


def references(dataset: Dataset) -> list[Reference]:
    """Only references a description states as `table.column` of a declared table: never guessed from names."""
    top_level = {table.table_id: {c.name for c in table.schema} for table in dataset.tables}
    found = {
        Reference(table.table_id, path, target_table, target_column)
        for table in dataset.tables
        for path, _, column in walk(table.schema)
        for target_table, target_column in _REFERENCE.findall(column.description)
        if target_column in top_level.get(target_table, set())
        and (target_table, target_column) != (table.table_id, path)
    }
    return sorted(found)


def _html_escaped(text: str) -> str:
    """GitHub renders Markdown cells as HTML: `RANGE<DATE>` would be read as a tag and vanish."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _html_escaped(text).replace("|", "\\|").replace("\n", "<br>") or " "


def _type_text(column: Column) -> str:
    text = column.type
    if column.max_length is not None:
        text += f"({column.max_length})"
    elif column.precision is not None:
        text += f"({column.precision}, {column.scale or 0})"
    elif column.range_element_type:
        text += f"<{column.range_element_type}>"
    # Who may read it: the names as the schema file gives them (short names are mapped per stack).
    if column.policy_tags:
        text += f" · policy tag {', '.join(column.policy_tags)}"
    if column.data_policies:
        text += f" · masked by {', '.join(column.data_policies)}"
    return _html_escaped(text)


def _diagram(dataset: Dataset, edges: list[Reference]) -> list[str]:
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        same_name = edge.column.rpartition(".")[2] == edge.target_column
        name = edge.column if same_name else f"{edge.column} → {edge.target_column}"
        labels.setdefault((edge.table, edge.target_table), []).append(name)
    # Node ids are t1, t2, ... and the table id only a quoted label: a bare `end`, `class`, `style` or
    # `graph` is Mermaid syntax, and "end" in lower case breaks a flowchart (Mermaid's flowchart syntax page).
    node = {table.table_id: f"t{index}" for index, table in enumerate(dataset.tables, start=1)}
    lines = ["```mermaid", "flowchart LR"]
    lines += [f'  {node[table.table_id]}["{_mermaid_text(table.table_id)}"]' for table in dataset.tables]
    lines += [
        f'  {node[source]} -->|"{_mermaid_text(", ".join(names))}"| {node[target]}'
        for (source, target), names in labels.items()
    ]
    return [*lines, "```", ""]


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: its own quotes as the entity code Mermaid reads."""
    return text.replace('"', "#quot;")


# (dataset.table, column path) -> the contracts (contracts/<service>/<query>.sql) that use the column.
UsedBy = dict[tuple[str, str], list[str]]


_MASKING_OWNER = {
    "repository": "Column masking: this repository's (each column's data policies are listed with its type).",
    "governance": "Column masking: the governance team's; `verify --stack <env>` lists the data policies attached.",
}


def _table_section(table: Table, used_by: UsedBy | None) -> list[str]:
    lines = [f"### `{table.key}`", "", table.description or "_No description._", ""]
    lines.append(f"- Schema: `schemas/{table.dataset}/{Path(table.schema_file).name}`, {columns_text(table.schema)}")
    lines.append(f"- Partitioning: {partitioning_text(*partitioning_args(table))}")
    if table.time_partitioning or table.range_partitioning:
        lines.append(f"- Partition filter: {'required' if table.require_partition_filter else 'not required'}")
    lines.append(f"- Clustering: {clustering_text(table.clustering)}")
    if table.constraints is not None:
        lines.append(f"- Keys (unenforced): {table_constraints_text(table.constraints)}")
    if table.labels:
        lines.append("- Labels: " + ", ".join(f"`{k}={v}`" for k, v in sorted(table.labels.items())))
    if table.retired:
        lines.append("- Retired: kept in BigQuery with its rows once its declaration is removed")
    if used_by is None:
        lines += ["", "| Column | Type | Mode | Description |", "| --- | --- | --- | --- |"]
    else:
        lines += ["", "| Column | Type | Mode | Description | Used by |", "| --- | --- | --- | --- | --- |"]
    for path, depth, column in walk(table.schema):
        indent = "&emsp;" * depth
        row = f"| {indent}`{path}` | {_type_text(column)} | {column.mode} | {_cell(column.description)} |"
        if used_by is not None:
            row += f" {_cell(', '.join(used_by.get((table.key, path), [])))} |"
        lines.append(row)
    return [*lines, ""]


def _view_section(view: View, catalog: Catalog) -> list[str]:
    checked = check_view(view, catalog)
    lines = [f"### View `{view.key}`", "", view.description or "_No description._", ""]
    lines.append(f"- Query: `{VIEWS_DIR}/{view.dataset}/{view.view_id}.sql`")
    lines.append("- Reads: " + (", ".join(f"`{t}`" for t in sorted(checked.tables)) or "no table"))
    columns_read = sorted(f"`{table}.{path}`" for table, path in checked.uses)
    lines.append("- Columns read: " + (", ".join(columns_read) or "none"))
    authorized = ", ".join(f"`{d}`" for d in view.authorized_on)
    lines.append(
        f"- Authorized on: {authorized} (its readers need no access to those tables)"
        if authorized
        else "- Authorized on: none"
    )
    if view.labels:
        lines.append("- Labels: " + ", ".join(f"`{k}={v}`" for k, v in sorted(view.labels.items())))
    lines += ["", "| Column | Type |", "| --- | --- |"]
    lines += [f"| `{name}` | {type_ or 'computed'} |" for name, type_ in checked.columns]
    return [*lines, ""]


def render_data_dictionary(catalog: Catalog, used_by: UsedBy | None = None) -> str:
    """With `used_by` (a repository with contracts/), each column says which contracts use it."""
    sources = "stacks/*.yaml and schemas/" if used_by is None else "stacks/*.yaml, schemas/ and contracts/"
    if catalog.views():
        sources = sources.replace(" and ", ", ") + " and views/"
    lines = [
        "# Data dictionary",
        "",
        f"<!-- Generated by `python -m infra.cli docs` from {sources}; edit those, not this file. -->",
        "",
    ]
    for dataset in catalog.datasets:
        lines += [f"## Dataset `{dataset.dataset_id}`", "", dataset.description or "_No description._", ""]
        lines.append(f"Declared in `stacks/{Path(dataset.declaration_file).name}`.")
        if dataset.labels:
            lines.append("Labels: " + ", ".join(f"`{k}={v}`" for k, v in sorted(dataset.labels.items())) + ".")
        lines.append(_MASKING_OWNER[dataset.tables[0].column_masking if dataset.tables else "repository"])
        retention = retention_text(dataset.max_time_travel_hours, dataset.storage_billing_model)
        lines.append(f"{retention[0].upper()}{retention[1:]}.")
        lines.append("")
        edges = references(dataset)
        if edges:
            lines += [
                "### How the tables refer to each other",
                "",
                "An arrow from A to B labelled `column` means a description in A names that column's target as "
                "`B.column`: references the schemas state, never guessed from column names.",
                "",
                *_diagram(dataset, edges),
            ]
        if used_by is not None:
            lines += [
                "Used by: the contracts (contracts/<service>/<query>.sql, the applications' queries) that name the "
                'column; change such a column as the README\'s runbook "Change a column the applications use" says.',
                "",
            ]
        for table in dataset.tables:
            lines += _table_section(table, used_by)
        if dataset.retired_tables:
            kept = ", ".join(f"`{t}`" for t in dataset.retired_tables)
            lines += [f"Retired, kept in BigQuery and no longer managed here: {kept}.", ""]
        for view in dataset.views:
            lines += _view_section(view, catalog)
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- the declaration file's reference

DECLARATION_FILE = Path("docs") / "declaration.md"


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a not in (type(None), msgspec.UnsetType))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return "mapping"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}".replace("to mapping", "to mappings")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    return {str: "string", int: "integer", bool: "boolean"}[annotation]


def _default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    if field.default is msgspec.UNSET:
        return "not set"
    if field.default is msgspec.NODEFAULT:
        return "empty"
    return "none" if field.default is None else f"`{json.dumps(field.default)}`"


def _key_rows(struct: type[msgspec.Struct], prefix: str, meanings: dict[str, str]) -> Iterator[str]:
    nested: list[tuple[type[msgspec.Struct], str]] = []
    for field in msgspec.structs.fields(struct):
        path = f"{prefix}{field.encode_name}"
        yield f"| `{path}` | {_type_name(field.type)} | {_default_text(field)} | {_cell(meanings[path])} |"
        for inner in (field.type, *get_args(field.type)):
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                # A mapping of structs (tables:) is keyed by a name: `tables.<table>.`.
                key = f"<{field.encode_name.removesuffix('s')}>." if get_origin(field.type) is dict else ""
                nested.append((inner, f"{path}.{key}"))
    for inner_struct, inner_prefix in nested:
        yield from _key_rows(inner_struct, inner_prefix, meanings)


def _function_name(function: Callable[..., Any]) -> str:
    return f"`{function.__module__.removeprefix('infra.')}.{function.__qualname__}`"


def declaration_meanings() -> dict[str, str]:
    """Every key's meaning: the structural keys' from the catalog, each table property's from its descriptor."""
    table = "tables.<table>."
    return KEY_MEANINGS | {f"{table}{p.declared_by}": p.summary for p in TABLE_PROPERTIES if p.in_catalog}


def render_declaration_reference() -> str:
    meanings = declaration_meanings()
    header = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines = [
        "# The declaration file: `stacks/<dataset>.yaml`",
        "",
        "<!-- Generated from infra/model/catalog.py (the dataset's struct) and infra/model/table_properties.py (the "
        "table's, and its properties) by `python scripts/declaration_reference.py`; edit those, not this file. -->",
        "",
        "One file per dataset; each table's columns are a schema file `schemas/<dataset>/<table>.json` "
        "(BigQuery's JSON schema format). A key not listed here is an error.",
        "",
        "## Keys",
        "",
        *header,
        *_key_rows(DatasetSpec, "", meanings),
        "",
        "## Table properties",
        "",
        "What each table property becomes on its way to BigQuery and back: the provider argument "
        "(pulumi-gcp `TableArgs`, and the input as the engine names it), the field of BigQuery's REST Table "
        "resource that a rebuild writes and `verify` reads, how `verify` compares it, what a change does, and "
        "whether `migrate` brings it to the declaration.",
        "",
    ]
    for prop in TABLE_PROPERTIES:
        declared = f"`{prop.declared_by}`" if prop.in_catalog else _html_escaped(prop.declared_by)
        lines += [
            f"### {prop.name}",
            "",
            f"- Declared by: {declared}: {_html_escaped(prop.summary)}",
            f"- Validated by: {', '.join(_function_name(f) for f in prop.validation)}",
            "- Provider argument: " + ", ".join(f"`{f.arg}` (`{f.engine}`)" for f in prop.fields),
            "- REST field: " + ", ".join(f"`{f.rest}`" for f in prop.fields),
            f"- `verify`: the check `{prop.verify.check}`, {prop.verify.compare.value}",
            f"- A change: {_html_escaped(prop.change)}",
            f"- `migrate`: {'a rebuild creates the table with it' if prop.migrated else 'not carried by a rebuild'}; "
            f"where the live table differs, {prop.migrate.value}",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"
