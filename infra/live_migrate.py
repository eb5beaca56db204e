"""`migrate` against the BigQuery API: read each live table, plan (infra/migration.py), check the data,
snapshot, apply table by table, and check the result by reading the table again.

A failure inside a rebuild before the original is dropped deletes the partial copy and leaves the
original as it was; after the drop, the checked copy holds every row and the next run renames it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.cloud import bigquery

from infra import drift, live, live_history
from infra.catalog import Table
from infra.history import Run, lock_table_id, new_run_id
from infra.migration import (
    MIGRATE_SEPARATOR,
    LiveTable,
    Step,
    TablePlan,
    declared_shape,
    plan_table,
    where,
)
from infra.rules import SNAPSHOT_EXPIRE_DAYS
from infra.settings import Settings

SAMPLE_ROWS = 3
# What the API calls each patched property, as update_table names it.
_PATCH_FIELDS = {"encryptionConfiguration": "encryption_configuration", "timePartitioning": "time_partitioning"}


class MigrationFailed(Exception):
    """A step or a check failed; the message says what state the table is in."""


_STEP_FAILURES: tuple[type[Exception], ...] = (*live.API_FAILURES, MigrationFailed)


class MigrationInterrupted(KeyboardInterrupt):
    """SIGINT inside a table's steps; the message names the table and says what state it is in."""


@dataclass
class TableResult:
    plan: TablePlan
    status: str  # nothing | planned | refused | applied | failed
    message: str = ""
    snapshot: str | None = None
    seconds: float = 0.0
    checks: list[drift.Check] = field(default_factory=list)  # verify, after --apply

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "status": self.status,
            "message": self.message,
            "snapshot": self.snapshot,
            "seconds": round(self.seconds, 3),
            "verify": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class MigrateReport:
    project: str
    target: str
    applied: bool
    results: tuple[TableResult, ...]
    run_id: str | None = None  # --apply: the run's id in the locks and the history

    @property
    def ok(self) -> bool:
        return all(r.status in ("nothing", "planned", "applied") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "target": self.target,
            "apply": self.applied,
            "run_id": self.run_id,
            "ok": self.ok,
            "tables": [r.to_json() for r in self.results],
        }


def _table_id(conn: live.Connection, settings: Settings, table: Table) -> str:
    return f"{conn.project}.{settings.dataset_id(table.dataset)}.{table.table_id}"


def read_live(conn: live.Connection, settings: Settings, table: Table, *, facts: bool) -> LiveTable:
    """The live table; with `facts`, also what a rebuild could not carry over (extra API calls)."""
    table_id = _table_id(conn, settings, table)
    client = conn.client
    found = live._or_none(lambda: client.get_table(table_id, **conn.call()))
    dataset = table_id.rsplit(".", 1)[0]
    listing = live._or_none(lambda: list(client.list_tables(dataset, **conn.call()))) or []
    prefix = f"{table.table_id}{MIGRATE_SEPARATOR}"
    lock = lock_table_id(table_id).rsplit(".", 1)[1]
    leftovers = tuple(
        sorted(f"{dataset}.{t.table_id}" for t in listing if t.table_id.startswith(prefix) and t.table_id != lock)
    )
    if found is None:
        return LiveTable(table_id, None, leftovers=leftovers)
    if not facts:
        return LiveTable(table_id, live.observed_table(found), leftovers=leftovers)
    project, dataset_id, name = table_id.split(".")
    # The Python client has no call for row access policies; this is the REST method rowAccessPolicies.list,
    # under the retry and deadlines of every other call.
    policies = conn.retried(client._connection.api_request)(
        method="GET",
        path=f"/projects/{project}/datasets/{dataset_id}/tables/{name}/rowAccessPolicies",
        timeout=conn.call()["timeout"],
    )
    bindings = client.get_iam_policy(table_id, **conn.call()).bindings
    return LiveTable(
        table_id,
        live.observed_table(found),
        row_access_policies=len(policies.get("rowAccessPolicies") or []),
        iam_bindings=len(bindings),
        streaming_buffer=found.streaming_buffer is not None,
        leftovers=leftovers,
    )


def _query(conn: live.Connection, sql: str) -> list[bigquery.Row]:
    rows = conn.client.query_and_wait(sql, **conn.query())
    live_history.record(sql, rows)  # the statement, its job and bytes, for the table's history row
    return list(rows)


def check_data(conn: live.Connection, plan: TablePlan) -> TablePlan:
    """Run the plan's data checks (each scans the columns it names); a failing one refuses the plan."""
    failures = []
    for check in plan.checks:
        condition = where(f"({check.predicate})", plan.source_filter)
        (row,) = _query(conn, f"SELECT COUNT(*) FROM {live_table_sql(plan)}{condition}")  # noqa: S608
        if row[0]:
            samples = _query(conn, f"SELECT {check.column} FROM {live_table_sql(plan)}{condition} LIMIT {SAMPLE_ROWS}")  # noqa: S608
            shown = ", ".join(repr(s[0]) for s in samples)
            failures.append(
                f"{row[0]} row(s) fail the check {check.what} (e.g. {shown}); fix those rows or keep the "
                "declaration, then migrate again"
            )
    return plan.refused(*failures) if failures else plan


def live_table_sql(plan: TablePlan) -> str:
    return f"`{plan.table_id}`"


def plan(conn: live.Connection, settings: Settings, table: Table, now: datetime) -> TablePlan:
    """The plan for one table from its live state; a rebuild reads what it could not carry over first."""
    first = plan_table(table, settings, read_live(conn, settings, table, facts=False), now)
    if first.rebuild_table is None:
        return first  # checks come only with a rebuild
    second = plan_table(table, settings, read_live(conn, settings, table, facts=True), now)
    return second if second.refusals else check_data(conn, second)


def _run_step(conn: live.Connection, plan: TablePlan, step: Step) -> None:
    client = conn.client
    if step.kind == "sql":
        _query(conn, step.action)
    elif step.kind == "create":
        client.create_table(bigquery.Table.from_api_repr(step.payload), **conn.call())
    elif step.kind == "patch":
        target = bigquery.Table(plan.table_id)
        target._properties.update(step.payload)
        client.update_table(target, [_PATCH_FIELDS[key] for key in step.payload], **conn.call())
    elif step.kind == "count":
        (source,), (copied,) = _query(conn, step.payload["source"]), _query(conn, step.payload["target"])
        if source[0] != copied[0]:
            raise MigrationFailed(f"the copy holds {copied[0]} rows, the original {source[0]}")


def apply_plan(conn: live.Connection, plan: TablePlan) -> None:
    """Run every step in order; inside a rebuild, undo the copy if anything fails before the drop."""
    dropped = False
    for step in plan.steps:
        try:
            _run_step(conn, plan, step)
        except _STEP_FAILURES as error:
            why = str(error) if isinstance(error, MigrationFailed) else live.why_failed(conn, error)
            raise MigrationFailed(_failure_state(conn, plan, dropped, why)) from None
        except KeyboardInterrupt:
            # Ctrl-C (SIGINT): say in which state the table is, then stop.
            state = _failure_state(conn, plan, dropped, "stopped by SIGINT (Ctrl-C)")
            raise MigrationInterrupted(f"{plan.table_id}: {state}") from None
        dropped = dropped or step.action == f"DROP TABLE `{plan.table_id}`"


def _failure_state(conn: live.Connection, plan: TablePlan, dropped: bool, why: str) -> str:
    if plan.rebuild_table is None:
        return f"{why}; the statements before it stay applied, run migrate again to continue"
    if dropped:
        return (
            f"{why} after the original was dropped: every row is in {plan.rebuild_table} (counted before the "
            "drop); run migrate again to rename it back"
        )
    cleanup = conn.for_cleanup()  # the run's deadline may be what failed
    try:
        cleanup.client.delete_table(plan.rebuild_table, not_found_ok=True, **cleanup.call())
    except live.API_FAILURES as error:
        return (
            f"{why}; the original table is untouched, but the partial copy {plan.rebuild_table} could not be "
            f"deleted ({live.why_failed(conn, error)}): delete it"
        )
    return f"{why}; the original table is untouched and the partial copy {plan.rebuild_table} was deleted"


Progress = Callable[[str, str], None]


def migrate(
    conn: live.Connection,
    settings: Settings,
    tables: Sequence[Table],
    *,
    apply: bool,
    progress: Progress | None = None,
    now: datetime | None = None,
    run: Run | None = None,
    break_lock: str | None = None,
) -> MigrateReport:
    """Plan every table (checks included); with `apply`, lock, record, snapshot and migrate them one by one."""
    when = now or datetime.now(UTC)
    say = progress or (lambda table, status: None)
    run = run or Run(new_run_id(when), "unknown", None, live_history.caller(conn), when)
    results = []
    with live._api_errors(conn):
        for table in tables:
            say(table.key, "planning")
            started = datetime.now(UTC)
            result = _one(conn, settings, table, when, run if apply else None, break_lock)
            result.seconds = (datetime.now(UTC) - started).total_seconds()
            say(table.key, result.status)
            results.append(result)
    return MigrateReport(conn.project, conn.target, apply, tuple(results), run.run_id if apply else None)


def _one(
    conn: live.Connection, settings: Settings, table: Table, when: datetime, run: Run | None, break_lock: str | None
) -> TableResult:
    """One table; with `run` (--apply) under its lock and recorded in the history."""
    table_id = _table_id(conn, settings, table)
    if run is None:
        table_plan = plan(conn, settings, table, when)
        result = TableResult(table_plan, "refused" if table_plan.refusals else "nothing")
        result.status = "planned" if not table_plan.refusals and table_plan.steps else result.status
        result.message = live_history.held_note(conn, table_id)
        return result
    guard = live_history.Guard(conn, settings, table, table_id, run)
    if (refused := guard.take(break_lock)) is not None:
        return TableResult(TablePlan(table.key, table_id), "refused", refused)
    try:
        table_plan = plan(conn, settings, table, when)
        if table_plan.refusals:
            result = TableResult(table_plan, "refused")
            result.message = guard.finish("refused", "; ".join(table_plan.refusals), plan=table_plan)
            return result
        if not table_plan.steps:
            return TableResult(table_plan, "nothing", "; ".join(guard.release()))
        if (refused := guard.start(table_plan)) is not None:
            recorded = guard.finish("refused", refused, plan=table_plan)
            return TableResult(table_plan, "refused", _joined(refused, recorded))
        result = _apply_one(conn, settings, table, TableResult(table_plan, "planned"), when, guard)
    except KeyboardInterrupt as stop:
        state = str(stop) if isinstance(stop, MigrationInterrupted) else f"{table_id}: stopped by SIGINT (Ctrl-C)"
        raise MigrationInterrupted(_joined(state, guard.finish("interrupted", state))) from None
    except live.API_FAILURES as error:  # a call outside the steps: the run stops, the table is released
        guard.finish("failed", live.describe(conn, error))
        raise
    count = guard.after(live_history.declared_filter(table, settings)) if result.status == "applied" else None
    done = guard.finish(result.status, result.message, snapshot=result.snapshot, rows_after=count)
    result.message = _joined(result.message, done)
    return result


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _apply_one(
    conn: live.Connection,
    settings: Settings,
    table: Table,
    result: TableResult,
    now: datetime,
    guard: live_history.Guard,
) -> TableResult:
    table_plan = result.plan
    # A table that is gone (a rebuild interrupted after the drop) has nothing to snapshot: its copy is the data.
    if live._or_none(lambda: conn.client.get_table(table_plan.table_id, **conn.call())) is not None:
        try:
            taken = live.snapshot(conn, settings, [table], SNAPSHOT_EXPIRE_DAYS, now=now)
        except live.SnapshotRefused as error:
            return replace(result, status="failed", message=f"not migrated: no snapshot ({error})")
        if not taken.ok:
            why = "; ".join(reason for _, reason in taken.failures)
            return replace(result, status="failed", message=f"not migrated: the snapshot failed ({why})")
        result.snapshot = taken.snapshots[0].snapshot
        if guard.entry is not None:
            guard.entry.snapshot = result.snapshot
    try:
        with live_history.recording(guard.entry):
            apply_plan(conn, table_plan)
    except MigrationFailed as error:
        return replace(result, status="failed", message=str(error))
    again = plan_table(table, settings, read_live(conn, settings, table, facts=False), now)
    found = conn.client.get_table(table_plan.table_id, **conn.call())
    subject = f"table {table_plan.table_id.split('.', 1)[1]}"
    checks = drift.table_checks(subject, declared_shape(table, settings)[0], live.observed_table(found))
    if again.steps or again.refusals:
        left = "; ".join((*(s.action.splitlines()[0] for s in again.steps), *again.refusals))
        return replace(result, status="failed", checks=checks, message=f"applied, but the table still differs: {left}")
    return replace(result, status="applied", checks=checks)
