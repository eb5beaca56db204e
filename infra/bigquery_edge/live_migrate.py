"""`migrate` against the BigQuery API: read each live table, plan (infra/analysis/migration.py), check the data,
snapshot, apply table by table, and check the result by reading the table again.

A rebuild renames the original away while it copies it (writers fail instead of writing rows the copy
would miss), so its rows are always in the original under one of two names. When a step fails or is
interrupted, the tables are read again and what they are decides what is undone: the original takes its
name back and the copy is deleted, or, when that cannot be decided, nothing is deleted and the state and
the command that continues are printed. Nothing is concluded from a call that did not answer: its request
may have gone through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from infra.analysis import cost, drift
from infra.analysis.migration import (
    COPY,
    FROZEN_SUFFIX,
    Leftover,
    LiveTable,
    MigrationStep,
    TablePlan,
    declared_state,
    labelled_as,
    leftover_name,
    partition_filter,
    plan_table,
    quote,
    unlabel,
    where,
)
from infra.bigquery_edge import live, live_history
from infra.model.history import Run, new_run_id
from infra.model.rules import SNAPSHOT_EXPIRE_DAYS
from infra.model.settings import DEFAULT_PRICE_PER_TIB, Settings
from infra.model.table_properties import Table

SAMPLE_ROWS = 3
# What the API calls each patched property, as update_table names it.
_API_STEPS = {"create", "patch"}  # the step kinds _run_step sends as API calls, not queries
_PATCH_FIELDS = {
    "encryptionConfiguration": "encryption_configuration",
    "timePartitioning": "time_partitioning",
    "labels": "labels",
    "tableConstraints": "table_constraints",
}


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
    cost: cost.TableCost | None = None  # the dry runs of its queries

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "status": self.status,
            "message": self.message,
            "snapshot": self.snapshot,
            "seconds": round(self.seconds, 3),
            "verify": [c.to_json() for c in self.checks],
            "cost": self.cost.to_json() if self.cost else None,
        }


@dataclass(frozen=True)
class MigrateReport:
    project: str
    target: str
    applied: bool
    results: tuple[TableResult, ...]
    price_per_tib: float = DEFAULT_PRICE_PER_TIB
    max_bytes: int | None = None
    run_id: str | None = None  # --apply: the run's id in the locks and the history

    @property
    def ok(self) -> bool:
        return all(r.status in ("nothing", "planned", "applied") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        run = [r.cost for r in self.results if r.cost and r.status in ("planned", "applied", "failed")]
        total = cost.TableCost(tuple(q for c in run for q in c.queries), self.price_per_tib).to_json()
        return {
            "project": self.project,
            "target": self.target,
            "apply": self.applied,
            "run_id": self.run_id,
            "ok": self.ok,
            "cost": {
                "usd_per_tib": self.price_per_tib,
                "max_bytes": self.max_bytes,
                **{key: total[key] for key in ("bytes_processed", "bytes_billed", "usd", "unknown")},
            },
            "tables": [r.to_json() for r in self.results],
        }


def _table_id(conn: live.Connection, settings: Settings, table: Table) -> str:
    return live.live_table_id(conn, settings, table.dataset, table.table_id)


def read_live(conn: live.Connection, settings: Settings, table: Table, *, facts: bool) -> LiveTable:
    """The live table and the tables an earlier rebuild of it left (each recognised by its exact name and the
    run's labels, and counted); with `facts`, also what a rebuild could not carry over (extra API calls)."""
    table_id = _table_id(conn, settings, table)
    client = conn.client
    found = live.table_or_none(conn, table_id)
    dataset = table_id.rsplit(".", 1)[0]
    listing = live.or_none(lambda: list(client.list_tables(dataset, **conn.call()))) or []
    leftovers = tuple(
        _leftover(conn, f"{dataset}.{t.table_id}", named)
        for t in sorted(listing, key=lambda t: t.table_id)
        if (named := leftover_name(table.table_id, t.table_id)) is not None
    )
    if found is None:
        return LiveTable(table_id, None, leftovers=leftovers)
    run = labelled_as(found.labels or {})
    created = found.created.isoformat() if found.created else ""
    if not facts:
        return LiveTable(table_id, live.observed_table(found), leftovers=leftovers, run=run, created=created)
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
        run=run,
        created=created,
    )


def _leftover(conn: live.Connection, table_id: str, named: tuple[str, str]) -> Leftover:
    stamp, role = named
    found = conn.client.get_table(table_id, **conn.call())
    ours = labelled_as(found.labels or {}) == (stamp, role)
    condition = where(partition_filter(live.observed_table(found)))
    (row,) = _query(conn, f"SELECT COUNT(*) FROM {quote(table_id)}{condition}")  # noqa: S608
    return Leftover(table_id, stamp, role if ours else None, int(row[0]))


def _query(conn: live.Connection, sql: str) -> list[bigquery.Row]:
    rows = conn.client.query_and_wait(sql, **conn.query())
    live_history.record(sql, rows)  # the statement, its job and bytes, for the table's history row
    return list(rows)


def check_sql(plan: TablePlan) -> str:
    """Every data check of the plan in one query: one scan of the columns they name, one count per check."""
    counts = ", ".join(f"COUNTIF({check.predicate}) AS `check_{n}`" for n, check in enumerate(plan.checks))
    return f"SELECT {counts} FROM {live_table_sql(plan)}{where(plan.source_filter)}"  # noqa: S608


def check_data(conn: live.Connection, plan: TablePlan) -> TablePlan:
    """Run the plan's data checks in one query; samples only for a failing one, which refuses the plan."""
    if not plan.checks:
        return plan
    (counts,) = _query(conn, check_sql(plan))
    failures = []
    for n, check in enumerate(plan.checks):
        failing = counts[f"check_{n}"]
        if failing:
            condition = where(f"({check.predicate})", plan.source_filter)
            samples = _query(conn, f"SELECT {check.column} FROM {live_table_sql(plan)}{condition} LIMIT {SAMPLE_ROWS}")  # noqa: S608
            shown = ", ".join(repr(s[0]) for s in samples)
            failures.append(
                f"{failing} row(s) fail the check {check.what} (e.g. {shown}); fix those rows or keep the "
                "declaration, then migrate again"
            )
    return plan.refused(*failures) if failures else plan


def dry_run(conn: live.Connection, what: str, sql: str, basis: str) -> cost.Query:
    """The bytes BigQuery says `sql` would process (nothing runs, nothing is billed): JobStatistics2."""
    statement = sql.splitlines()[0]
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    try:
        job = conn.client.query(sql, job_config=config, **conn.call())
    except api_exceptions.ClientError as error:  # e.g. a table the steps before it create
        why = f"the dry run was refused: {live.why_failed(conn, error)}"
        return cost.Query(what, statement, None, basis=basis, unknown=why)
    processed = job.total_bytes_processed
    unknown = "" if processed is not None else "the dry run reported no bytes processed"
    return cost.Query(what, statement, processed, len(job.referenced_tables), basis, unknown)


def price(conn: live.Connection, settings: Settings, plan: TablePlan) -> cost.TableCost:
    """A dry run of every query the plan runs: the data checks, then each statement. API calls (tables.insert,
    tables.patch) are no queries: metadata operations, free (pricing page, "Free operations")."""
    queries = [dry_run(conn, "data checks", check_sql(plan), "dry run")] if plan.checks else []
    for number, step in enumerate(plan.steps, 1):
        if step.kind in _API_STEPS:
            continue
        texts = [step.action] if step.kind == "sql" else [v for v in step.payload.values() if isinstance(v, str)]
        for text in texts:
            sql, basis = cost.priced_as(text, plan.rebuild_table, plan.table_id, FROZEN_SUFFIX)
            queries.append(dry_run(conn, f"step {number}", sql, basis))
    return cost.TableCost(tuple(queries), settings.stack_settings.on_demand_price_per_tib)


def live_table_sql(plan: TablePlan) -> str:
    return f"`{plan.table_id}`"


def plan(
    conn: live.Connection, settings: Settings, table: Table, now: datetime, spent: int = 0
) -> tuple[TablePlan, cost.TableCost | None]:
    """The plan for one table from its live state and its cost; a rebuild reads what it could not carry over
    first. Over the cap (with `spent` by the tables before it) it is refused before its checks scan anything."""
    chosen = plan_table(table, settings, read_live(conn, settings, table, facts=False), now)
    if chosen.rebuild_table is not None:  # checks come only with a rebuild
        chosen = plan_table(table, settings, read_live(conn, settings, table, facts=True), now)
    if chosen.refusals or not chosen.steps:
        return chosen, None
    priced = price(conn, settings, chosen)
    over = cost.cap_refusal(priced, spent, settings.stack_settings.migration_max_bytes)
    return (chosen.refused(over) if over else check_data(conn, chosen)), priced


def _run_step(conn: live.Connection, plan: TablePlan, step: MigrationStep, memo: dict[str, Any] | None = None) -> None:
    """One step; `memo` carries the comparison's fingerprint to the re-check."""
    client = conn.client
    memo = {} if memo is None else memo
    if step.kind == "sql":
        _query(conn, step.action)
    elif step.kind == "create":
        client.create_table(bigquery.Table.from_api_repr(step.payload), **conn.call())
    elif step.kind == "patch":
        target = bigquery.Table(plan.table_id)
        target._properties.update(step.payload)
        client.update_table(target, [_PATCH_FIELDS[key] for key in step.payload], **conn.call())
    elif step.kind == "compare":
        source, copied = _fingerprint(conn, step.payload["source"]), _fingerprint(conn, step.payload["target"])
        if source != copied:
            raise MigrationFailed(
                f"the copy differs from the original (rows {copied[0]} and {source[0]}, fingerprints "
                f"{'equal' if source[1:] == copied[1:] else 'different'})"
            )
        memo["fingerprint"] = source
    elif step.kind == "recheck" and _fingerprint(conn, step.payload["source"]) != memo.get("fingerprint"):
        raise MigrationFailed(
            f"{plan.frozen_table} changed after it was copied (a write in flight at the freeze landed in it); "
            f"nothing was deleted: {plan.table_id} is the migrated table; copy the rows it lacks from "
            f"{plan.frozen_table}, then DROP TABLE {quote(plan.frozen_table or '')}"
        )


def _fingerprint(conn: live.Connection, sql: str) -> tuple[Any, ...]:
    (row,) = _query(conn, sql)
    return (row[0], row[1], row[2])


def apply_plan(conn: live.Connection, plan: TablePlan) -> None:
    """Run every step in order; on a failure or SIGINT, read the tables again and act on what they are."""
    memo: dict[str, Any] = {}
    for step in plan.steps:
        try:
            _run_step(conn, plan, step, memo)
        except MigrationFailed as error:
            if step.kind == "recheck":
                raise  # the swap is done: nothing to undo, and the original is kept
            raise MigrationFailed(_failure_state(conn, plan, str(error))) from None
        except _STEP_FAILURES as error:
            raise MigrationFailed(_failure_state(conn, plan, live.why_failed(conn, error))) from None
        except KeyboardInterrupt:
            # Ctrl-C (SIGINT): say in which state the table is, then stop.
            state = _failure_state(conn, plan, "stopped by SIGINT (Ctrl-C)")
            raise MigrationInterrupted(f"{plan.table_id}: {state}") from None


@dataclass(frozen=True)
class _Tables:
    """What a rebuild's three names hold, read after a failure: None where there is no such table."""

    table: bigquery.Table | None
    copy: bigquery.Table | None
    frozen: bigquery.Table | None


def _read_tables(conn: live.Connection, plan: TablePlan) -> _Tables:
    def get(table_id: str | None) -> bigquery.Table | None:
        return None if table_id is None else live.table_or_none(conn, table_id)

    return _Tables(get(plan.table_id), get(plan.rebuild_table), get(plan.frozen_table))


def _failure_state(conn: live.Connection, plan: TablePlan, why: str) -> str:
    resume = f"run {plan.resume} to continue" if plan.resume else "run migrate again to continue"
    if plan.rebuild_table is None:
        return f"{why}; the statements before it stay applied, {resume}"
    cleanup = conn.for_cleanup()  # the run's deadline may be what failed
    try:
        return f"{why}; {_undo(cleanup, plan)}"
    except _STEP_FAILURES as error:
        return (
            f"{why}; then reading or restoring the tables failed ({live.why_failed(cleanup, error)}), so nothing "
            f"more was deleted: the rows are in {plan.table_id} or {plan.frozen_table}; {resume}"
        )


def _undo(conn: live.Connection, plan: TablePlan) -> str:
    """Bring the tables back to the original, decided from what they are now (a call that failed may have
    been carried out); never delete a table unless another holds its rows."""
    assert plan.rebuild_table is not None and plan.frozen_table is not None
    stamp = plan.rebuild_table.rsplit("_", 1)[1]
    seen = _read_tables(conn, plan)
    table_is = labelled_as(seen.table.labels or {}) if seen.table is not None else None
    resume = f"run {plan.resume} to continue"
    if seen.table is not None and table_is == (stamp, COPY):
        frozen = f"; {plan.frozen_table} still holds the original" if seen.frozen is not None else ""
        return f"the checked copy is already the table{frozen}; {resume} (it finishes the swap)"
    if seen.table is not None and seen.frozen is not None:
        return (
            f"{plan.table_id} exists again (created at {seen.table.created}, after the original was renamed to "
            f"{plan.frozen_table}, which holds its rows: a load job without CREATE_NEVER, or pulumi up, creates "
            "it); nothing was deleted; copy any rows written to the new table into the original, DROP TABLE "
            f"{quote(plan.table_id)}, then {resume}"
        )
    if seen.table is None and seen.frozen is None:
        copy = f"; {plan.rebuild_table} holds the copy" if seen.copy is not None else ""
        return f"neither {plan.table_id} nor {plan.frozen_table} exists{copy}; nothing was deleted; {resume}"
    restored = ""
    if seen.table is None:
        assert seen.frozen is not None
        if seen.copy is not None:
            conn.client.delete_table(plan.rebuild_table, not_found_ok=True, **conn.call())
        _query(conn, f"ALTER TABLE {quote(plan.frozen_table)} RENAME TO `{plan.table_id.rsplit('.', 1)[1]}`")
        restored = f"the original took its name back from {plan.frozen_table} with every row"
    else:  # the original never left its name (or took it back): the copy holds only rows it holds
        if seen.copy is not None:
            conn.client.delete_table(plan.rebuild_table, not_found_ok=True, **conn.call())
        restored = "the original table is untouched"
    _run_step(conn, plan, unlabel(plan.table_id, "the run labels go with the run"))
    copy = f" and the partial copy {plan.rebuild_table} was deleted" if seen.copy is not None else ""
    return f"{restored}{copy}"


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
    spent = 0  # bytes billed by the tables before, against the cap on one run
    with live.api_errors(conn):
        for table in tables:
            say(table.key, "planning")
            started = datetime.now(UTC)
            result = _one(conn, settings, table, when, spent, run if apply else None, break_lock)
            if result.status in ("planned", "applied", "failed") and result.cost is not None:
                spent += result.cost.known_billed
            result.seconds = (datetime.now(UTC) - started).total_seconds()
            say(table.key, result.status)
            results.append(result)
    stack_settings = settings.stack_settings
    return MigrateReport(
        conn.project,
        conn.target,
        apply,
        tuple(results),
        stack_settings.on_demand_price_per_tib,
        stack_settings.migration_max_bytes,
        run.run_id if apply else None,
    )


def _one(
    conn: live.Connection,
    settings: Settings,
    table: Table,
    when: datetime,
    spent: int,
    run: Run | None,
    break_lock: str | None,
) -> TableResult:
    """One table; with `run` (--apply) under its lock and recorded in the history; `spent`: what the tables
    before it are billed, against the cap on one run."""
    table_id = _table_id(conn, settings, table)
    if run is None:
        table_plan, priced = plan(conn, settings, table, when, spent)
        result = TableResult(table_plan, "refused" if table_plan.refusals else "nothing", cost=priced)
        result.status = "planned" if not table_plan.refusals and table_plan.steps else result.status
        result.message = live_history.held_note(conn, table_id)
        return result
    guard = live_history.Guard(conn, settings, table, table_id, run)
    if (refused := guard.take(break_lock)) is not None:
        return TableResult(TablePlan(table.key, table_id), "refused", refused)
    try:
        table_plan, priced = plan(conn, settings, table, when, spent)
        if table_plan.refusals:
            result = TableResult(table_plan, "refused", cost=priced)
            result.message = guard.finish("refused", "; ".join(table_plan.refusals), plan=table_plan)
            return result
        if not table_plan.steps:
            return TableResult(table_plan, "nothing", "; ".join(guard.release()))
        if (refused := guard.start(table_plan)) is not None:
            recorded = guard.finish("refused", refused, plan=table_plan)
            return TableResult(table_plan, "refused", _joined(refused, recorded), cost=priced)
        planned = TableResult(table_plan, "planned", cost=priced)
        result = _apply_one(conn, settings, table, planned, when, guard)
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
    if live.table_or_none(conn, table_plan.table_id) is not None:
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
    if table_plan.recovery:
        why = f"the original took its name back from an interrupted rebuild; run {table_plan.resume} to migrate it"
        return replace(result, status="failed", message=why)
    again = plan_table(table, settings, read_live(conn, settings, table, facts=False), now)
    found = conn.client.get_table(table_plan.table_id, **conn.call())
    subject = f"table {table_plan.table_id.split('.', 1)[1]}"
    checks = drift.table_checks(subject, declared_state(table, settings)[0], live.observed_table(found))
    if again.steps or again.refusals:
        left = "; ".join((*(s.action.splitlines()[0] for s in again.steps), *again.refusals))
        return replace(result, status="failed", checks=checks, message=f"applied, but the table still differs: {left}")
    return replace(result, status="applied", checks=checks)
