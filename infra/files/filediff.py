"""What `diff --old/--new` compares: two schema files of one table, read and validated, then classified.

Apart from infra/files/basediff.py, which runs git and the program: this path loads neither them nor the catalog.
"""

from __future__ import annotations

import gc
from pathlib import Path

from infra.analysis.changes import DiffResult, ResourceChanges, classify_schema
from infra.model import rules
from infra.model.documents import display_path, load_json
from infra.model.problems import DeclarationError, Problem
from infra.model.schema import Column, count_columns, parse_schema


def diff_schema_files(old: Path, new: Path, *, external: bool = False) -> DiffResult:
    """Two schema files of one table, each validated as `validate` does (every problem of both at once),
    except the column-count limit: a deployed table may already exceed it, so that is a warning."""
    # Two large schemas are hundreds of thousands of objects and no reference cycle: the cycle collector's
    # passes over them would take a quarter of the run (scripts/benchmark.py).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _diff_schema_files(old, new, external)
    finally:
        if collecting:
            gc.enable()


def _diff_schema_files(old: Path, new: Path, external: bool) -> DiffResult:
    problems: list[Problem] = []
    warnings: list[str] = []
    loaded: list[tuple[Column, ...]] = []
    for path in (old, new):
        display = display_path(path)
        try:
            columns, found = parse_schema(load_json(path, display), display)
        except DeclarationError as error:
            problems += error.problems
            continue
        total = count_columns(columns)
        if total > rules.MAX_COLUMNS:
            # Once columns parsed, the count is the only problem parse_schema reports at (top).
            found = [p for p in found if p.path != "(top)"]
            warnings.append(
                f"{display}: {total:,} columns, more than BigQuery's documented {rules.MAX_COLUMNS:,}; "
                "compared anyway, since a deployed table may already have that many"
            )
        problems += found
        loaded.append(columns)
    if problems:
        raise DeclarationError(problems)
    changes = classify_schema(loaded[0], loaded[1], external=external)
    tables = (ResourceChanges(display_path(new), tuple(changes)),) if changes else ()
    return DiffResult(display_path(old), display_path(new), tables, warnings=tuple(warnings), compares_files=True)
