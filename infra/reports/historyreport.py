"""Text for `history`: one row per table per run, newest first, as a rich table. Pure: it reads the JSON form
of the rows (infra/bigquery_edge/live_history.py `entries_json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console


def _counts(row: dict[str, Any]) -> str:
    before, after = row.get("rows_before"), row.get("rows_after")
    if before is None and after is None:
        return ""
    return f"{'?' if before is None else before} -> {'?' if after is None else after}"


def render_text(stack: str, history_table: str, rows: list[dict[str, Any]] | None, console: Console) -> None:
    if rows is None:
        console.print(f"Stack {stack}: {history_table} does not exist yet (pulumi up creates it); no run recorded.")
        return
    console.print(f"Stack {stack}: {len(rows)} row(s) of {history_table}, newest first")
    table = Table(show_lines=False)
    for name in ("started", "table", "outcome", "run", "commit", "caller", "seconds", "rows", "bytes", "snapshot"):
        table.add_column(name)
    for row in rows:
        duration = row.get("duration_seconds")
        table.add_row(
            str(row.get("started_at") or ""),
            str(row["migrated_table"]),
            str(row["outcome"]),
            str(row["run_id"]),
            str(row.get("commit_sha") or "unknown")[:12],
            str(row.get("caller") or "unknown"),
            "" if duration is None else f"{duration:.1f}",
            _counts(row),
            "unknown" if row.get("bytes_processed") is None else f"{row['bytes_processed']:,}",
            str(row.get("snapshot") or ""),
        )
    console.print(table)
    for row in rows:
        if row.get("message"):
            console.print(f"{row['run_id']} {row['migrated_table']}: {row['message']}", soft_wrap=True)
