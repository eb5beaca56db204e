"""The history of `migrate --apply` in BigQuery (infra/model/history.py: its table and columns), and the guard of
one table of one run: its lock (infra/bigquery_edge/live_lock.py), then its history row.

The row is written by a DML INSERT before the table's first change and completed by an UPDATE of that row
after, so a run that dies is seen as `planned` (or `interrupted`). DML, not streaming: rows recently
streamed with tabledata.insertAll cannot be modified by UPDATE for up to 30 minutes (BigQuery, "Transform
data with DML", Limitations), and each DML statement commits on its own (the same page: an implicit
transaction). Every value is a query parameter, never SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import bigquery
from google.cloud.bigquery.table import RowIterator

from infra.analysis.migration import TablePlan, declared_state, partition_filter, quote, where
from infra.bigquery_edge import live, live_lock
from infra.model.history import COLUMNS, HISTORY_TABLE, Entry, Run
from infra.model.settings import Settings
from infra.model.table_properties import Table

# The queries of the table being migrated (infra/bigquery_edge/live_migrate.py `_query` records each one here).
LEDGER: ContextVar[list[dict[str, Any]] | None] = ContextVar("migrate_ledger", default=None)


def record(sql: str, rows: RowIterator) -> None:
    ledger = LEDGER.get()
    if ledger is not None:
        ledger.append({"sql": sql, "job_id": rows.job_id, "bytes_processed": rows.total_bytes_processed})


@contextmanager
def recording(entry: Entry | None) -> Iterator[None]:
    token = LEDGER.set(entry.statements if entry is not None else None)
    try:
        yield
    finally:
        LEDGER.reset(token)


def history_id(conn: live.Connection, settings: Settings) -> str:
    dataset, table = HISTORY_TABLE.split(".")
    return live.live_table_id(conn, settings, dataset, table)


def caller(conn: live.Connection) -> str:
    """The service account email of the client's credentials (google-auth's service account, impersonated,
    external account and Compute Engine credentials have `service_account_email`), else unknown."""
    email = getattr(conn.client._credentials, "service_account_email", None)
    return email if isinstance(email, str) and "@" in email else "unknown"


def _parameters(values: dict[str, Any]) -> list[bigquery.ScalarQueryParameter]:
    return [bigquery.ScalarQueryParameter(name, COLUMNS[name][0], values[name]) for name in values]


def _run(conn: live.Connection, sql: str, values: dict[str, Any]) -> RowIterator:
    config = bigquery.QueryJobConfig(query_parameters=_parameters(values))
    return conn.client.query_and_wait(sql, job_config=config, **conn.query())


def insert(conn: live.Connection, settings: Settings, entry: Entry) -> None:
    values = entry.values()
    names, parameters = ", ".join(values), ", ".join(f"@{name}" for name in values)
    _run(conn, f"INSERT INTO {quote(history_id(conn, settings))} ({names}) VALUES ({parameters})", values)  # noqa: S608


_KEY = ("run_id", "migrated_table", "started_at")


def complete(conn: live.Connection, settings: Settings, entry: Entry) -> None:
    """UPDATE the run's row; started_at in the condition keeps it to one partition."""
    values = entry.values()
    assignments = ", ".join(f"{name} = @{name}" for name in values if name not in _KEY)
    condition = " AND ".join(f"{name} = @{name}" for name in _KEY)
    _run(conn, f"UPDATE {quote(history_id(conn, settings))} SET {assignments} WHERE {condition}", values)  # noqa: S608


def read(conn: live.Connection, settings: Settings, table: str | None) -> list[dict[str, Any]] | None:
    """Every row, newest first (of one table if named); None when the history table does not exist."""
    target = history_id(conn, settings)
    if live.table_or_none(conn, target) is None:
        return None
    condition = "" if table is None else " WHERE migrated_table = @migrated_table"
    sql = f"SELECT * FROM {quote(target)}{condition} ORDER BY started_at DESC, migrated_table"  # noqa: S608
    rows = _run(conn, sql, {} if table is None else {"migrated_table": table})
    return [dict(row.items()) for row in rows]


def _count(conn: live.Connection, table_id: str, condition: str) -> int | None:
    if live.table_or_none(conn, table_id) is None:
        return None
    (row,) = conn.client.query_and_wait(f"SELECT COUNT(*) FROM {quote(table_id)}{condition}", **conn.query())  # noqa: S608
    return int(row[0])


@dataclass
class Guard:
    """One table of one `migrate --apply`: its lock, then its history row."""

    conn: live.Connection
    settings: Settings
    table: Table
    table_id: str
    run: Run
    entry: Entry | None = None
    locked: bool = False

    def take(self, break_lock: str | None) -> str | None:
        """Lock the table; the refusal when another run holds it."""
        broken = ""
        if break_lock is not None and live_lock.break_lock(self.conn, self.table_id, break_lock):
            broken = f"broke the lock of run {break_lock} (--break-lock); "
        try:
            self.locked = live_lock.acquire(self.conn, self.table_id, self.run)
        except live_lock.LockHeld as held:
            refusal = (
                f"{broken}{held}; another `migrate --apply` is changing it. Wait for it to end. If it is gone "
                "(its job ended or was killed), read the table's state (`migrate --stack "
                f"{self.run.stack}` without --apply), then take the lock over with `migrate --stack "
                f"{self.run.stack} --apply --break-lock {held.holder.get('run_id', 'unknown')}`"
            )
            self.finish("refused", refusal)
            return refusal
        return None

    def start(self, plan: TablePlan) -> str | None:
        """The row `planned`, before any change; the refusal when it cannot be written."""
        if self.table.key == HISTORY_TABLE:
            return (
                f"{HISTORY_TABLE} is the migration history, which migrate writes while it runs, so migrate never "
                "changes it: change it only as `pulumi up` does in place (new NULLABLE columns, descriptions), "
                "or snapshot it and rebuild it by hand"
            )
        target = history_id(self.conn, self.settings)
        if live.table_or_none(self.conn, target) is None:
            return (
                f"not migrated: every run is recorded in {target}, which does not exist yet; create it first: "
                f"pulumi up --stack {self.run.stack} --target '**::{HISTORY_TABLE.replace('.', '-')}'"
            )
        entry = self._entry("planned", plan)
        try:
            entry.rows_before = _count(self.conn, self.table_id, where(plan.source_filter))
            insert(self.conn, self.settings, entry)
        except live.API_FAILURES as error:
            why = live.why_failed(self.conn, error)
            return f"not migrated: its history row could not be written to {target} ({why})"
        self.entry = entry
        return None

    def _entry(self, outcome: str, plan: TablePlan | None) -> Entry:
        run = self.run
        steps = [{"kind": s.kind, "action": s.action, "reason": s.reason} for s in (plan.steps if plan else ())]
        now = datetime.now(UTC)
        return Entry(run.run_id, self.table.key, now, outcome, run.stack, run.commit, run.caller, steps)

    def after(self, condition: str) -> int | None:
        return _count(self.conn, self.table_id, condition)

    def finish(
        self,
        outcome: str,
        message: str,
        *,
        plan: TablePlan | None = None,
        snapshot: str | None = None,
        rows_after: int | None = None,
    ) -> str:
        """Complete the row (or write it whole, for a table refused before it started), then release the
        lock; after SIGINT only while the table stands under its name. Returns what could not be done."""
        conn = self.conn.for_cleanup()
        entry, new = (self.entry, False) if self.entry is not None else (self._entry(outcome, plan), True)
        entry.outcome, entry.message, entry.finished_at = outcome, message, datetime.now(UTC)
        entry.snapshot, entry.rows_after = snapshot or entry.snapshot, rows_after
        problems = []
        try:
            if not new:
                complete(conn, self.settings, entry)
            elif live.table_or_none(conn, history_id(conn, self.settings)):
                insert(conn, self.settings, entry)
        except live.API_FAILURES as error:
            problems.append(f"its history row was not completed ({live.why_failed(conn, error)})")
        if outcome != "interrupted" or self._safe(conn):
            problems += self.release()
        if self.locked:
            problems.append(
                f"its lock is kept until the table is whole again: check its state (`migrate --stack "
                f"{self.run.stack}`), then `migrate --stack {self.run.stack} --apply --break-lock {self.run.run_id}`"
            )
        return "; ".join(problems)

    def release(self) -> list[str]:
        if not self.locked:
            return []
        try:
            live_lock.release(self.conn, self.table_id, self.run.run_id)
        except live.API_FAILURES as error:
            return [f"its lock was not released ({live.why_failed(self.conn, error)})"]
        self.locked = False
        return []

    def _safe(self, conn: live.Connection) -> bool:
        """After SIGINT: the table stands under its name, so another run may read and continue it."""
        try:
            return live.table_or_none(conn, self.table_id) is not None
        except live.API_FAILURES:
            return False


def declared_filter(table: Table, settings: Settings) -> str:
    """The WHERE a COUNT(*) of the migrated table needs (its declared partition filter)."""
    return where(partition_filter(declared_state(table, settings)[0]))


def held_note(conn: live.Connection, table_id: str) -> str:
    """For the dry run: who holds the table's lock, if anyone (it takes none)."""
    held = live_lock.holder(conn, table_id)
    if held is None:
        return ""
    return str(live_lock.LockHeld(table_id, held)) + "; `--apply` refuses it until that run releases it"


def entries_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows as JSON: times in ISO 8601, steps and statements parsed."""
    out = []
    for row in rows:
        item = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        for key in ("steps", "statements"):
            with suppress(ValueError):  # a row written by hand keeps its text
                item[key] = json.loads(item.get(key) or "[]")
        out.append(item)
    return out
