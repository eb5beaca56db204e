"""The one text of partitioning, clustering and a column count, shared by every report.

Pure. `plan`, `docs`, `verify`, `diff` and `migrate` show these through this module only, so a table
reads the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from infra.model.rules import MS_PER_DAY
from infra.model.schema import Column, count_columns

if TYPE_CHECKING:  # the argument types are declared with the properties, which show through this module
    from infra.model.table_properties import RangePartitioningArgs, TimePartitioningArgs

NONE = "none"


def duration_text(ms: int) -> str:
    # Live tables may carry any number of milliseconds; declared ones are whole days.
    return f"{ms // MS_PER_DAY} d" if ms % MS_PER_DAY == 0 else f"{ms} ms"


def partitioning_text(time: TimePartitioningArgs | None, range_: RangePartitioningArgs | None) -> str:
    if range_ is not None:
        rng = range_["range"]
        return f"RANGE on {range_['field']} [{rng['start']}, {rng['end']}) step {rng['interval']}"
    if time is None:
        return NONE
    text = f"{time['type']} on {time['field'] or 'ingestion time'}"
    if time["expiration_ms"]:
        return f"{text}, partitions expire after {duration_text(time['expiration_ms'])}"
    return f"{text}, partitions kept"


def short_text(text: str, limit: int = 60) -> str:
    if not text:
        return "none"
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def clustering_text(columns: Sequence[str] | None) -> str:
    return ", ".join(columns or ()) or NONE


def columns_text(schema: tuple[Column, ...]) -> str:
    """Counted as BigQuery's column limit counts them: a RECORD as its fields."""
    return f"{count_columns(schema)} columns (leaf)"


def constraints_text(primary_key: Sequence[str], foreign_keys: Sequence[tuple[str, str, str, str]]) -> str:
    """Keys as (name, column, referenced table, referenced column); BigQuery does not enforce them."""
    parts = [f"primary key ({', '.join(primary_key)})"] if primary_key else []
    parts += [f"{name}: {column} -> {table}.{referenced}" for name, column, table, referenced in foreign_keys]
    return "; ".join(parts) or NONE


def retention_text(max_time_travel_hours: int, storage_billing_model: str | None) -> str:
    """A dataset's time-travel window and storage billing, as `plan` and `docs` show them."""
    billing = storage_billing_model or "not declared (BigQuery's default, LOGICAL)"
    return (
        f"time travel {max_time_travel_hours} h (changed or deleted data recoverable {max_time_travel_hours // 24} "
        f"days back); storage billing {billing}"
    )
