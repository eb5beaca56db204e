"""Declarations (stacks/*.yaml) + schema files -> a typed, canonical catalog, collecting every problem.

Pure core: no pulumi or google imports. Every problem is reported as
`<file>:<field path>: <how to fix it>`, all of them at once, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from infra.model import retirement, rules
from infra.model.documents import display_path, list_folder, load_json, load_yaml, real_path
from infra.model.history import schema_problems
from infra.model.problems import DeclarationError, Problem, struct_problems
from infra.model.renames import check_renamed_columns
from infra.model.schema import Column, data_policy_paths, join_path, parse_schema
from infra.model.table_properties import (
    Loading,
    Table,
    TableSpec,
    label_problems,
    load_properties,
    reference_problems,
)
from infra.model.views import KEY_MEANINGS as VIEW_KEY_MEANINGS
from infra.model.views import View, ViewSpec, authorization_problems, load_views, orphan_view_files


@dataclass(frozen=True)
class Dataset:
    dataset_id: str
    description: str
    labels: dict[str, str]
    tables: tuple[Table, ...]
    declaration_file: str
    retired_tables: tuple[str, ...] = ()  # retired from this stack, kept in BigQuery (infra/model/retirement.py)
    max_time_travel_hours: int = rules.MAX_TIME_TRAVEL_HOURS
    storage_billing_model: str | None = None  # None: BigQuery's default (LOGICAL), never sent
    views: tuple[View, ...] = ()


@dataclass(frozen=True)
class Catalog:
    datasets: tuple[Dataset, ...]

    def tables(self) -> list[Table]:
        return [t for d in self.datasets for t in d.tables]

    def views(self) -> list[View]:
        return [v for d in self.datasets for v in d.views]


# ---------------------------------------------------------------- declarations (stacks/*.yaml)


class DatasetSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dataset: str
    description: str = ""
    labels: dict[str, str] = {}
    column_masking: str = "repository"
    max_time_travel_hours: int = rules.MAX_TIME_TRAVEL_HOURS
    storage_billing_model: str | None = None
    tables: dict[str, TableSpec] = {}
    views: dict[str, ViewSpec] = {}
    retired_tables: list[str] = []


# What each key of stacks/<dataset>.yaml means, by its path; a table property's key is said by its
# descriptor (infra/model/table_properties.py). docs/declaration.md is generated from these, DatasetSpec above
# and TableSpec (infra/model/table_properties.py).
KEY_MEANINGS = {
    "dataset": "the dataset's id (letters, digits and underscores); the stack's datasetSuffix is appended",
    "description": "the dataset's description",
    "labels": "key: value labels of the dataset; the stack's labels are added and win",
    "column_masking": "who attaches data policies to the columns: repository (default; the schema files declare "
    "dataPolicies and `pulumi up` sends them) or governance (another team attaches them: dataPolicies is refused in "
    "the schema files and every table sets ignore_schema_changes: [dataPolicies], so no update strips them)",
    "max_time_travel_hours": "the time-travel window in hours: how far back changed or deleted rows and tables can be "
    "recovered; a multiple of 24 from 48 to 168, default 168 (the maximum), always sent",
    "storage_billing_model": "LOGICAL or PHYSICAL bytes billed for storage; left out: not sent (BigQuery's LOGICAL); "
    "BigQuery allows one change per 14 days",
    "tables": "one entry per table, keyed by its id (snake_case); none when the dataset holds views only",
    "tables.<table>.renamed_columns": "new name: old name of columns renamed since the live table was made; "
    "`migrate` renames them in place instead of dropping and adding (dotted paths for nested fields)",
    "tables.<table>.retired": "true: the next `pulumi up` records that the table is kept when it leaves the stack "
    "(Pulumi retainOnDelete, protect off); then delete its entry and list it under retired_tables "
    '(runbook "Retire a table without deleting it")',
    "retired_tables": "ids of tables retired from this stack and kept in BigQuery with their rows: not managed, "
    "not compared by `verify` and not reported as undeclared",
    "tables.<table>.partitioning.type": "time partitioning's granularity: HOUR, DAY, MONTH or YEAR",
    "tables.<table>.partitioning.field": "the top-level DATE, TIMESTAMP or DATETIME column; left out: ingestion time",
    "tables.<table>.partitioning.expiration_days": "days a partition is kept (time partitioning)",
    "tables.<table>.partitioning.keep_forever": "partitions never expire, on purpose (instead of expiration_days; "
    "labels the table retention: forever)",
    "tables.<table>.partitioning.range": "integer-range partitioning instead of time partitioning",
    "tables.<table>.partitioning.range.field": "the top-level INT64 column",
    "tables.<table>.partitioning.range.start": "the first range's start (inclusive)",
    "tables.<table>.partitioning.range.end": "the last range's end (exclusive)",
    "tables.<table>.partitioning.range.interval": "the width of each range",
    "tables.<table>.constraints.primary_key": "the columns whose values are unique and not NULL in every row "
    "(1 to 16 top-level columns of BIGNUMERIC, BOOL, DATE, DATETIME, INT64, NUMERIC, STRING or TIMESTAMP); "
    "BigQuery does not check the rows",
    "tables.<table>.constraints.foreign_keys": "at most 64 foreign keys, one column each",
    "tables.<table>.constraints.foreign_keys.name": "the key's name, unique in the table (letters, digits and "
    "underscores)",
    "tables.<table>.constraints.foreign_keys.column": "the top-level column of this table whose values are the "
    "referenced table's primary key, or NULL",
    "tables.<table>.constraints.foreign_keys.references": "the key it references",
    "tables.<table>.constraints.foreign_keys.references.table": "a table of the same dataset, without the dataset",
    "tables.<table>.constraints.foreign_keys.references.column": "that table's primary key (one column), of the same "
    "type",
    **VIEW_KEY_MEANINGS,
}


def _load_dataset(
    root: Path, path: Path, referenced: set[Path], unreadable: set[str], skipped: list[str], view_files: set[Path]
) -> tuple[Dataset | None, list[Problem]]:
    file = display_path(path)
    raw = load_yaml(path, file)
    if not isinstance(raw, dict):
        unreadable.add("*")
        return None, [Problem(file, "", "expected a mapping with dataset:, description:, labels: and tables:")]
    try:
        spec = msgspec.convert(raw, DatasetSpec)
    except msgspec.ValidationError:
        # Its schema files are not orphans, only undeclared until the declaration is fixed.
        unreadable.add(raw["dataset"] if isinstance(raw.get("dataset"), str) else "*")
        return None, struct_problems(raw, DatasetSpec, file)

    problems: list[Problem] = []
    if (message := rules.check_dataset_id(spec.dataset)) is not None:
        problems.append(Problem(file, "dataset", message))
    if (message := rules.check_description(spec.description, rules.MAX_TABLE_DESCRIPTION)) is not None:
        problems.append(Problem(file, "description", message))
    problems += label_problems(spec.labels, file, "labels")
    if (message := rules.check_column_masking(spec.column_masking)) is not None:
        problems.append(Problem(file, "column_masking", message))
    if (message := rules.check_time_travel_hours(spec.max_time_travel_hours)) is not None:
        problems.append(Problem(file, "max_time_travel_hours", message))
    model = spec.storage_billing_model
    if model is not None and (message := rules.check_storage_billing_model(model)) is not None:
        problems.append(Problem(file, "storage_billing_model", message))
    if not spec.tables and not spec.views:
        problems.append(Problem(file, "tables", "declare at least one table or view"))

    tables = []
    schema_dir = root / "schemas" / spec.dataset
    try:
        list_folder(schema_dir, missing_ok=True)  # a missing one: each table says its file is not found
    except DeclarationError as error:  # one line for the folder, not one per table
        unreadable.add(spec.dataset)
        skipped += [f"{spec.dataset}.{table_id}" for table_id in spec.tables]
        return None, [*problems, *error.problems]
    for table_id, table_spec in spec.tables.items():
        where = f"tables.{table_id}"
        if (message := rules.check_table_id(table_id)) is not None:
            problems.append(Problem(file, where, message))
        schema_path = schema_dir / (table_spec.schema_file or f"{table_id}.json")
        try:
            real_schema = real_path(schema_path)
        except DeclarationError as error:
            problems += error.problems
            referenced.add(schema_path)  # said here; not an orphan as well
            skipped.append(f"{spec.dataset}.{table_id}")
            continue
        # Resolved against the real root: a symlinked file or folder must not pull in files from elsewhere.
        if not real_schema.is_relative_to(real_path(root) / "schemas" / spec.dataset):
            problems.append(
                Problem(
                    file,
                    f"{where}.schema",
                    f"must name a file inside schemas/{spec.dataset}/ (schemas are part of the declaration); "
                    "move the file there",
                )
            )
            referenced.add(real_schema)  # refused above; not an orphan as well
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
        referenced.add(real_schema)
        schema_display = display_path(schema_path)
        try:
            columns, schema_problems = parse_schema(load_json(schema_path, schema_display), schema_display)
        except DeclarationError as error:
            problems += error.problems
            skipped.append(f"{spec.dataset}.{table_id}")
            continue
        problems += schema_problems
        if not columns:
            continue  # nothing to check partitioning or clustering against; the schema problem says why
        fields, property_problems = load_properties(table_spec, Loading(columns, file, where))
        problems += property_problems
        problems += _masking_problems(columns, fields, spec.column_masking, file, schema_display)
        problems += [
            Problem(file, f"{where}.renamed_columns.{new}", message)
            for new, message in check_renamed_columns(table_spec.renamed_columns, columns)
        ]
        tables.append(
            Table(
                dataset=spec.dataset,
                table_id=table_id,
                schema_file=schema_display,
                renamed_columns=dict(table_spec.renamed_columns),
                retired=table_spec.retired,
                column_masking=spec.column_masking,
                **fields,
            )
        )
    problems += reference_problems(tuple(tables), file, frozenset(spec.retired_tables))
    for index, retired_id in enumerate(spec.retired_tables):
        if (message := rules.check_table_id(retired_id)) is not None:
            problems.append(Problem(file, f"retired_tables.{index}", message))
    views, view_problems, used = load_views(root, spec.dataset, spec.views, set(spec.tables), file)
    problems += view_problems
    view_files |= used
    dataset = Dataset(
        spec.dataset,
        spec.description,
        dict(spec.labels),
        tuple(tables),
        file,
        retired_tables=tuple(spec.retired_tables),
        max_time_travel_hours=spec.max_time_travel_hours,
        storage_billing_model=spec.storage_billing_model,
        views=tuple(views),
    )
    return dataset, problems


def _masking_problems(
    columns: tuple[Column, ...], fields: dict[str, Any], owner: str, declaration: str, file: str
) -> list[Problem]:
    """Data policies against the table: who owns them, and BigQuery's limits (infra/model/rules.py)."""
    masked = list(data_policy_paths(columns))
    if owner == "governance":
        return [
            Problem(
                file,
                f"{path}.dataPolicies",
                f"{declaration} sets column_masking: governance, so the governance team attaches data policies and "
                "this repository leaves them alone; remove the key, or set column_masking: repository",
            )
            for path, _ in masked
        ]
    problems = []
    time, rng = fields.get("time_partitioning"), fields.get("range_partitioning")
    layout = {
        *(c.lower() for c in fields.get("clustering", ())),
        *(p.field.lower() for p in (time, rng) if p is not None and p.field),
    }
    problems += [
        Problem(
            file,
            f"{path}.dataPolicies",
            "BigQuery does not mask a partitioning or clustering column by default (Mask column data: limitations); "
            "mask another column, or protect this one with a policy tag",
        )
        for path, _ in masked
        if path.lower() in layout
    ]
    unique = {name for _, names in masked for name in names}
    if len(unique) > rules.MAX_DATA_POLICIES_PER_TABLE:
        problems.append(
            Problem(
                file,
                "(top)",
                f"{len(unique):,} distinct data policies; BigQuery allows a table at most "
                f"{rules.MAX_DATA_POLICIES_PER_TABLE:,}: share policies between columns",
            )
        )
    return problems


def _schema_files(schemas_dir: Path, unreadable: set[str]) -> tuple[list[Path], list[Problem]]:
    """schemas/*/*.json of the datasets whose orphans can be told; a folder that cannot be listed is a problem
    (a glob would skip it silently)."""
    if not schemas_dir.is_dir() or "*" in unreadable:
        return [], []
    paths: list[Path] = []
    problems: list[Problem] = []
    try:
        for name in list_folder(schemas_dir):
            folder = schemas_dir / name
            if name in unreadable or folder.is_file():
                continue
            try:
                paths += [folder / file for file in list_folder(folder) if file.endswith(".json")]
            except DeclarationError as error:
                problems += error.problems
    except DeclarationError as error:
        problems += error.problems
    return paths, problems


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
            where = join_path(parent, column.name)
            if (message := rules.column_name_cost(column.name)) is not None:
                yield Problem(file, where, message)
            yield from walk(column.fields, where, file)

    return [warning for table in catalog.tables() for warning in walk(table.schema, "", table.schema_file)]


def load_catalog(root: Path) -> Catalog:
    """Load and validate every stacks/*.yaml and its schemas; raise DeclarationError with all problems."""
    read = read_catalog(root)
    if read.problems:
        raise DeclarationError(read.problems)
    return read.catalog


def read_catalog(root: Path) -> CatalogRead:
    """Load what loads, invalid parts included (a deployed catalog stays comparable after a rule
    tightens); `unreadable` names declaration files and tables that could not be read at all."""
    stacks_dir = root / "stacks"
    if not stacks_dir.is_dir():
        raise DeclarationError(
            [Problem(display_path(stacks_dir), "", "no such folder; --root must hold stacks/ and schemas/")]
        )
    declarations = [stacks_dir / name for name in list_folder(stacks_dir) if name.endswith((".yaml", ".yml"))]
    if not declarations:
        raise DeclarationError(
            [Problem(display_path(stacks_dir), "", "no *.yaml declarations; add one file per dataset")]
        )

    problems: list[Problem] = []
    datasets: list[Dataset] = []
    referenced: set[Path] = set()
    unreadable: set[str] = set()
    unread: list[str] = []
    declared_in: dict[str, str] = {}
    view_files: set[Path] = set()
    for path in declarations:
        try:
            if not real_path(path).is_relative_to(real_path(root) / "stacks"):
                problems.append(
                    Problem(
                        display_path(path),
                        "",
                        "a link to a file outside stacks/; declarations are part of the repository: copy the file here",
                    )
                )
                unreadable.add("*")
                continue
            dataset, dataset_problems = _load_dataset(root, path, referenced, unreadable, unread, view_files)
        except DeclarationError as error:
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

    schema_paths, listing_problems = _schema_files(root / "schemas", unreadable)
    problems += listing_problems
    for schema_path in schema_paths:
        try:
            if schema_path in referenced or real_path(schema_path) in referenced:
                continue
        except DeclarationError as error:
            problems += error.problems
            continue
        dataset_id = schema_path.parent.name
        if dataset_id in declared_in:
            hint = f"add an entry under tables: in {declared_in[dataset_id]} or delete the file"
        else:
            hint = f"no stacks/*.yaml declares dataset {dataset_id!r}; declare it or delete the file"
        problems.append(Problem(display_path(schema_path), "", f"schema file not used by any table; {hint}"))

    if "*" not in unreadable:
        problems += orphan_view_files(root, declared_in, view_files, unreadable)
    if "*" not in unreadable:
        views = {d.dataset_id: d.views for d in datasets} | {name: () for name in unreadable}
        problems += authorization_problems(views, declared_in)
    catalog = Catalog(tuple(datasets))
    return CatalogRead(catalog, [*problems, *schema_problems(catalog), *retirement.catalog_problems(catalog)], unread)
