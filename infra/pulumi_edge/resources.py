"""The Pulumi component: one declared dataset -> a gcp.bigquery.Dataset and its Tables.

What each resource receives is infra/model/declared.py's typed arguments; this module adds only the Pulumi side.
mypy checks every argument name against pulumi-gcp's signatures (a misspelt one matches no overload);
the nested values (partitioning, encryption, access) are our TypedDicts, the provider's `...ArgsDict`
shapes without `pulumi.Input`, which mypy does not accept as theirs: hence `type: ignore[arg-type]`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from infra.model.declared import (
    ADOPT_IGNORE_DATASET,
    ADOPT_IGNORE_TABLE,
    COMPONENT_TYPE,
    SCHEMA_PROPERTIES,
    DeclaredDataset,
    DeclaredTable,
    DeclaredView,
    dataset_import_id,
    replacement_trigger,
    table_import_id,
    table_resource_name,
)
from infra.model.settings import Settings
from infra.model.table_properties import Table


def table_options(
    table: Table,
    settings: Settings,
    parent: pulumi.Resource,
    dataset: pulumi.Resource,
    referenced: list[pulumi.Resource] | None = None,
) -> pulumi.ResourceOptions:
    stack_settings = settings.stack_settings
    adopt = stack_settings.adopt_existing
    return pulumi.ResourceOptions(
        parent=parent,
        # The tables its foreign keys reference first: their keys exist when its constraints are written.
        depends_on=[dataset, *(referenced or ())],
        # An approved destructive change needs both protections off, for that table only. A retired table's
        # removal must reach the engine's retainOnDelete, which comes after its protect check (step.go
        # DeleteStep.Apply): both are recorded by the `up` before the removal (infra/model/retirement.py).
        protect=stack_settings.protect and not settings.approves_data_loss(table.key) and not table.retired,
        retain_on_delete=True if table.retired else None,
        replace_on_changes=SCHEMA_PROPERTIES if stack_settings.recreate_on_schema_change else None,
        replacement_trigger=replacement_trigger(table, settings),
        # The bridge asks for delete-first only on replacements the provider itself forces; a replacement
        # from the trigger or replaceOnChanges would create first and fail: the table id already exists.
        delete_before_replace=True,
        import_=table_import_id(settings.project, settings.dataset_id(table.dataset), table.table_id)
        if adopt
        else None,
        ignore_changes=ADOPT_IGNORE_TABLE if adopt else None,
    )


def view_options(
    view: DeclaredView, settings: Settings, parent: pulumi.Resource, depends_on: list[pulumi.Resource]
) -> pulumi.ResourceOptions:
    adopt = settings.stack_settings.adopt_existing
    args = view.args
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=depends_on,
        # No protect: a view holds no rows, and its file rebuilds it as it was.
        delete_before_replace=True,  # the view id exists until the old one is deleted
        import_=table_import_id(settings.project, args["dataset_id"], args["table_id"]) if adopt else None,
        ignore_changes=ADOPT_IGNORE_TABLE if adopt else None,
    )


class DatasetWithTables(pulumi.ComponentResource):
    """A BigQuery dataset and every table its declaration lists; its views are its children too (`add_views`)."""

    dataset_id: pulumi.Output[str]
    table_ids: dict[str, str]

    def __init__(self, declared: DeclaredDataset, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        dataset = declared.dataset
        super().__init__(COMPONENT_TYPE, dataset.dataset_id, None, opts)
        adopt = settings.stack_settings.adopt_existing
        self.dataset = gcp.bigquery.Dataset(
            dataset.dataset_id,
            **declared.args,  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=settings.stack_settings.protect,
                delete_before_replace=True,  # a new location or project: the dataset id exists until deleted
                import_=dataset_import_id(settings.project, settings.dataset_id(dataset.dataset_id)) if adopt else None,
                ignore_changes=ADOPT_IGNORE_DATASET if adopt else None,
            ),
        )
        # Ids are known before anything exists: plain strings, with depends_on for the ordering,
        # cost the engine far less than an Output per table.
        dataset_id = declared.args["dataset_id"]
        tables: dict[str, gcp.bigquery.Table] = {}
        for table in _referenced_first(declared.tables):
            tables[table.table.table_id] = gcp.bigquery.Table(
                table_resource_name(dataset.dataset_id, table.table.table_id),
                **table.args,  # type: ignore[arg-type]
                opts=table_options(
                    table.table,
                    settings,
                    parent=self,
                    dataset=self.dataset,
                    referenced=[tables[t] for t in sorted(_referenced(table)) if t in tables],
                ),
            )
        self.tables = {table.table.table_id: tables[table.table.table_id] for table in declared.tables}
        self.dataset_id = self.dataset.dataset_id
        self.table_ids = {table_id: f"{settings.project}.{dataset_id}.{table_id}" for table_id in self.tables}
        self.register_outputs({"dataset_id": self.dataset_id, "table_ids": self.table_ids})


def _referenced(table: DeclaredTable) -> set[str]:
    """The tables of its dataset that its foreign keys reference (validate allows no other)."""
    constraints = table.table.constraints
    return {key.table for key in constraints.foreign_keys} - {table.table.table_id} if constraints else set()


def _referenced_first(tables: tuple[DeclaredTable, ...]) -> list[DeclaredTable]:
    """The declaration's order, each table after those it references; a cycle of keys keeps the rest in order
    (the engine takes no cycle of depends_on)."""
    ordered: list[DeclaredTable] = []
    done: set[str] = set()

    def visit(table: DeclaredTable, path: set[str]) -> None:
        table_id = table.table.table_id
        if table_id in done or table_id in path:
            return
        for other in tables:
            if other.table.table_id in _referenced(table):
                visit(other, path | {table_id})
        done.add(table_id)
        ordered.append(table)

    for table in tables:
        visit(table, set())
    return ordered


def add_views(
    component: DatasetWithTables,
    declared: DeclaredDataset,
    settings: Settings,
    tables: Mapping[str, pulumi.Resource],
    sources: Mapping[str, frozenset[str]],
) -> dict[str, pulumi.Resource]:
    """The dataset's views, children of its component, each after the dataset and the tables it reads (`sources`,
    by dataset.view): BigQuery resolves a view's query when it is written. Registered once every table is."""
    return {
        view.view.view_id: gcp.bigquery.Table(
            table_resource_name(declared.dataset.dataset_id, view.view.view_id),
            **view.args,  # type: ignore[arg-type]
            opts=view_options(
                view, settings, component, [component.dataset, *(tables[t] for t in sorted(sources[view.view.key]))]
            ),
        )
        for view in declared.views
    }
