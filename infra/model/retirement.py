"""Retiring a table: this stack stops managing it, and the table and its rows stay in BigQuery.

Two declarations, applied by two `pulumi up` runs, because the engine decides a removed resource's delete from
its state alone (pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: `s.old.RetainOnDelete` skips the
provider's Delete, and `s.old.Protect` refuses the delete before that):

1. `retired: true` under the table: the program registers it with `retainOnDelete` and without `protect`
   (infra/pulumi_edge/resources.py), and the `up` records both in state (pkg/backend/snapshot.go
   sameSnapshotMutation.mustWrite writes a same step whose RetainOnDelete or Protect changed);
2. the table's entry and schema file deleted, its id listed under the dataset's `retired_tables:`: the engine
   forgets the table, and verify neither compares it nor counts it as undeclared.

Pure: the catalog calls `catalog_problems`; the wording every report shares is here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.model.history import HISTORY_TABLE
from infra.model.problems import Problem

if TYPE_CHECKING:
    from infra.model.catalog import Catalog, Dataset

KEPT = "no longer managed; the table and its rows stay in BigQuery"
RETAIN_RULE = "pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: old.RetainOnDelete skips the Delete"
RUNBOOK = 'runbook "Retire a table without deleting it"'


def catalog_problems(catalog: Catalog) -> list[Problem]:
    """A table retired and still declared, listed twice, or the history table `migrate` writes; a foreign key
    to a retired table."""
    problems = []
    for dataset in catalog.datasets:
        problems += _keys_to_retired(dataset)
        declared = {t.table_id for t in dataset.tables}
        seen: set[str] = set()
        for index, table_id in enumerate(dataset.retired_tables):
            where = f"retired_tables.{index}"
            if table_id in seen:
                problems.append(Problem(dataset.declaration_file, where, f"{table_id} is listed twice; keep one"))
            elif table_id in declared:
                problems.append(
                    Problem(
                        dataset.declaration_file,
                        where,
                        f"{table_id} is still declared under tables:; a table leaves the stack in two runs: first "
                        f"`retired: true` under it, then its entry removed and listed here ({RUNBOOK})",
                    )
                )
            seen.add(table_id)
        for table in dataset.tables:
            if table.retired and table.key == HISTORY_TABLE:
                problems.append(
                    Problem(
                        dataset.declaration_file,
                        f"tables.{table.table_id}.retired",
                        "migrate records every run in this table and needs the stack to manage it; keep it declared",
                    )
                )
    return problems


def _keys_to_retired(dataset: Dataset) -> list[Problem]:
    """A foreign key needs its referenced table declared, whose primary key the catalog checks it against
    (table_properties.reference_problems): the keys to a table go while the stack still manages it."""
    retired = {t.table_id for t in dataset.tables if t.retired} | set(dataset.retired_tables)
    return [
        Problem(
            dataset.declaration_file,
            f"tables.{table.table_id}.constraints.foreign_keys.{key.name}.references.table",
            f"{key.table} is retired, so this stack stops managing it and its primary key; remove this foreign key "
            f"in the change that retires it ({RUNBOOK})",
        )
        for table in dataset.tables
        if not table.retired and table.constraints  # a retired table's own keys leave with it
        for key in table.constraints.foreign_keys
        if key.table in retired
    ]
