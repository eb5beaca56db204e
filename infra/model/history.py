"""The migration history and the per-table lock of `migrate --apply`: names, columns, the row of one table
of one run, and the lock's holder. Pure: infra/bigquery_edge/live_history.py and live_lock.py talk to
BigQuery.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from infra.model.problems import Problem
from infra.model.rules import name_stamp

if TYPE_CHECKING:  # the catalog imports this module to check the history table's declaration
    from infra.model.catalog import Catalog

# The one table that records every run, dataset.table as declared (stacks/tenants.yaml declares it like
# any other table, so it gets the stack's ACL, key and protections).
HISTORY_TABLE = "tenants.migration_history"
# A table's lock is a marker table beside it; validate refuses declared ids holding `__migrate_`.
LOCK_SUFFIX = "__migrate_lock"

OUTCOMES = ("planned", "applied", "failed", "refused", "interrupted")

# What migrate writes: column -> (type, whether every row has a value).
COLUMNS: dict[str, tuple[str, bool]] = {
    "run_id": ("STRING", True),
    "migrated_table": ("STRING", True),
    "started_at": ("TIMESTAMP", True),
    "finished_at": ("TIMESTAMP", False),
    "outcome": ("STRING", True),
    "commit_sha": ("STRING", False),
    "stack": ("STRING", True),
    "caller": ("STRING", False),
    "steps": ("STRING", False),
    "statements": ("STRING", False),
    "snapshot": ("STRING", False),
    "rows_before": ("INT64", False),
    "rows_after": ("INT64", False),
    "bytes_processed": ("INT64", False),
    "message": ("STRING", False),
    "duration_seconds": ("FLOAT64", False),
}


def schema_problems(catalog: Catalog) -> list[Problem]:
    """The declared history table must hold every column migrate writes, as it writes them."""
    table = next((t for t in catalog.tables() if t.key == HISTORY_TABLE), None)
    if table is None:
        return []  # migrate --apply refuses to change anything without it
    declared = {c.name.lower(): c for c in table.schema}
    problems = []
    for name, (kind, always) in COLUMNS.items():
        column = declared.get(name)
        if column is None:
            problems.append(Problem(table.schema_file, name, f"migrate writes this column: add it as {kind}"))
        elif column.type != kind or column.mode == "REPEATED" or (column.mode == "REQUIRED" and not always):
            mode, what = ("REQUIRED or NULLABLE", "a") if always else ("NULLABLE", "NULL or a")
            message = f"migrate writes {what} {kind} here: declare it {mode} {kind}"
            problems.append(Problem(table.schema_file, name, message))
    return problems


def new_run_id(now: datetime) -> str:
    return f"{name_stamp(now)}-{secrets.token_hex(3)}"


def lock_table_id(table_id: str) -> str:
    """project.dataset.table -> the marker table that locks it."""
    return f"{table_id}{LOCK_SUFFIX}"


@dataclass(frozen=True)
class Run:
    """Who runs this `migrate --apply`: written into the lock and every history row."""

    run_id: str
    stack: str
    commit: str | None
    caller: str
    started_at: datetime

    def holder(self) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "caller": self.caller,
            "commit": self.commit or "unknown",
            "stack": self.stack,
            "started_at": self.started_at.isoformat(),
        }


def describe_holder(holder: dict[str, Any], now: datetime) -> str:
    """`run R (caller C, commit X, stack S) since T (N min ago)` from a lock's description."""
    since = holder.get("started_at") or "an unknown time"
    ago = ""
    try:
        minutes = (now - datetime.fromisoformat(str(since))).total_seconds() / 60
        ago = f", {minutes:.0f} min ago"
    except (TypeError, ValueError):
        pass
    return (
        f"run {holder.get('run_id', 'unknown')} (caller {holder.get('caller', 'unknown')}, commit "
        f"{str(holder.get('commit', 'unknown'))[:12]}, stack {holder.get('stack', 'unknown')}) since {since}{ago}"
    )


@dataclass
class Entry:
    """One row of the history: one table of one run."""

    run_id: str
    migrated_table: str
    started_at: datetime
    outcome: str
    stack: str
    commit_sha: str | None
    caller: str
    steps: list[dict[str, str]] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    finished_at: datetime | None = None
    snapshot: str | None = None
    rows_before: int | None = None
    rows_after: int | None = None
    message: str = ""

    @property
    def bytes_processed(self) -> int | None:
        known = [s["bytes_processed"] for s in self.statements if s.get("bytes_processed") is not None]
        return sum(known) if known else None

    @property
    def duration_seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()

    def values(self) -> dict[str, Any]:
        """Every column's value, in COLUMNS' order (steps and statements as JSON text)."""
        row = asdict(self)
        row |= {"bytes_processed": self.bytes_processed, "duration_seconds": self.duration_seconds}
        row["steps"], row["statements"] = json.dumps(self.steps), json.dumps(self.statements)
        return {name: row[name] for name in COLUMNS}


def last_migrations(rows: list[dict[str, Any]] | None, tables: list[str], why: str = "") -> list[dict[str, Any]]:
    """Per table, the newest applied row of the history (`rows`, newest first), or why there is none."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows or []:
        if row.get("outcome") == "applied":
            newest.setdefault(str(row["migrated_table"]), row)
    none = why or ("never migrated by migrate --apply" if rows is not None else "no migration history table yet")
    out = []
    for table in tables:
        last = newest.get(table)
        finished = last.get("finished_at") if last else None
        out.append(
            {
                "table": table,
                "commit": last.get("commit_sha") if last else None,
                "run_id": last.get("run_id") if last else None,
                "finished_at": finished.isoformat() if isinstance(finished, datetime) else finished,
                "note": "" if last else none,
            }
        )
    return out


def migration_line(item: dict[str, Any]) -> str:
    """verify's line about one table's last migration: information, never a failed check."""
    if item["run_id"] is None:
        return f"· table {item['table']}: {item['note']}"
    return (
        f"· table {item['table']}: last migrated to the declaration of commit {item['commit'] or 'unknown'} "
        f"(run {item['run_id']}, finished {item['finished_at']})"
    )
