"""`renamed_columns: {new: old}` under a table in stacks/<dataset>.yaml: the hints `migrate` follows.

Pure: catalog.py calls check_renamed_columns while loading, migration.py reads the hints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.model.schema import Column


def find_column(columns: tuple[Column, ...], path: str) -> Column | None:
    """The column at a dotted path (`a.b`: field b of RECORD a), or None."""
    *parents, name = path.split(".")
    for parent in parents:
        found = next((c for c in columns if c.name == parent), None)
        if found is None:
            return None
        columns = found.fields
    return next((c for c in columns if c.name == name), None)


def check_renamed_columns(renamed: dict[str, str], columns: tuple[Column, ...]) -> list[tuple[str, str]]:
    """(new name, how to fix it) for every hint that cannot be right; an empty list when all are."""
    problems = []
    for new, old in renamed.items():
        if not old or not new:
            problems.append((new, "a hint is `new name: old name`, both non-empty"))
        elif new.rsplit(".", 1)[0] != old.rsplit(".", 1)[0] and "." in new + old:
            problems.append((new, f"{old!r} and {new!r} must have the same parent: a rename keeps a column in place"))
        elif find_column(columns, new) is None:
            problems.append((new, f"{new!r} is not a column of the schema; the new name must be declared"))
        elif find_column(columns, old) is not None:
            problems.append((new, f"{old!r} is still declared; a renamed column's old name must be gone"))
    olds = list(renamed.values())
    problems += [
        (new, f"{old!r} is renamed twice; keep one hint") for new, old in renamed.items() if olds.count(old) > 1
    ]
    return problems
