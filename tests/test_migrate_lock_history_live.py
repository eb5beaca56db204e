"""`migrate --apply`'s lock and history against the local BigQuery API server, through the CLI.

BigQuery facts relied on:
- tables.insert of a table id that exists answers 409 with reason `duplicate` ("Already Exists"):
  cloud.google.com/bigquery/docs/error-messages, and the local server does the same
  (tests/test_migrate_live.py's runs meet it); the lock is that create (infra/bigquery_edge/live_lock.py `acquire`).
- each DML statement commits on its own (an implicit transaction), and rows streamed by insertAll cannot be
  updated for a while: cloud.google.com/bigquery/docs/data-manipulation-language, "Limitations"; so the
  history row is an INSERT completed by an UPDATE (infra/bigquery_edge/live_history.py `insert`, `complete`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from live_server import STACK, LiveStack, stack_on
from rewriting_proxy import Fault, rewriting_proxy
from test_migrate_live import QUEUE, _new_partitioning, copy_query, read, sigint_while_the_copy_runs

pytestmark = pytest.mark.live


@pytest.fixture
def built_stack(bigquery_server: Any, repo_copy: Path) -> Iterator[LiveStack]:
    with stack_on(bigquery_server, repo_copy, built=True) as stack:
        yield stack


def history_rows(stack: LiveStack, *args: str) -> list[dict[str, Any]]:
    shown = stack.cli("history", "--stack", STACK, "--format", "json", *args)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    rows: list[dict[str, Any]] = json.loads(shown.stdout)["rows"]
    return rows


def test_two_concurrent_applies_one_proceeds_the_other_refuses_naming_the_holder(built_stack: LiveStack) -> None:
    """Process A is held by the proxy at its rebuild's copy (it holds the lock then); process B, straight at
    the server, meets A's marker table: BigQuery's 409 on tables.insert refuses it, naming A."""
    rows = _new_partitioning(built_stack)
    go_on = threading.Event()

    def hold() -> None:
        go_on.wait(120)

    held = Fault(method="POST", path=r"/queries$", body=copy_query(built_stack), before=hold)
    with rewriting_proxy(built_stack.endpoint, faults=[held]) as proxy:
        first = replace(built_stack, endpoint=proxy).start("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
        try:
            assert held.seen.wait(120), "the copy never started"
            second = built_stack.cli("migrate", "--stack", STACK, "--tables", QUEUE, "--apply", process=True)
        finally:
            go_on.set()
            stdout, stderr = first.communicate(timeout=120)

    assert first.returncode == 0, stdout + stderr
    assert second.returncode == 1, second.stdout + second.stderr
    run_id = next(line.split()[1].rstrip(":") for line in stdout.splitlines() if line.startswith("Run "))
    assert f"is locked by run {run_id} (caller unknown, commit " in second.stdout
    assert "another `migrate --apply` is changing it" in second.stdout
    # Nothing lost: every row is in the migrated table, and the lock is gone.
    assert len(read(built_stack, QUEUE, "queue_entry_id")) == len(rows)
    assert built_stack.client.get_table(built_stack.table(QUEUE)).time_partitioning.type_ == "MONTH"
    names = [t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())]
    assert not [n for n in names if "__migrate_" in n]
    outcomes = {(r["run_id"] == run_id, r["outcome"]) for r in history_rows(built_stack, "--table", QUEUE)}
    assert outcomes == {(True, "applied"), (False, "refused")}


def test_the_history_holds_one_row_per_table_per_run_and_verify_names_the_commit(built_stack: LiveStack) -> None:
    rows = _new_partitioning(built_stack)
    sha = "0123456789abcdef0123456789abcdef01234567"
    applied = built_stack.cli("migrate", "--stack", STACK, "--apply", env={"GITHUB_SHA": sha})
    assert applied.returncode == 0, applied.stdout + applied.stderr

    (row,) = history_rows(built_stack)  # only the table that changed has a row
    assert row["migrated_table"] == f"tenants.{QUEUE}" and row["outcome"] == "applied"
    assert row["commit_sha"] == sha and row["stack"] == STACK and row["caller"] == "unknown"
    assert row["rows_before"] == row["rows_after"] == len(rows)
    assert row["snapshot"].startswith(f"{built_stack.project}.{built_stack.dataset_id()}_backup.{QUEUE}__")
    kinds = ["create", "patch", "sql", "sql", "compare", "sql", "patch", "recheck", "sql"]  # the freeze and swap
    assert [s["kind"] for s in row["steps"]] == kinds
    executed = [s["sql"].split()[0] for s in row["statements"]]
    assert executed[:2] == ["ALTER", "INSERT"] and executed[-1] == "DROP"
    assert all(s["job_id"] for s in row["statements"])
    assert row["bytes_processed"] is not None and row["finished_at"] and row["duration_seconds"] >= 0
    assert f"\nRun {row['run_id']}: " in applied.stdout

    text = built_stack.cli("history", "--stack", STACK, "--table", QUEUE)
    assert text.returncode == 0, text.stderr
    assert row["run_id"] in text.stdout and "applied" in text.stdout

    verified = built_stack.cli("verify", "--stack", STACK)
    assert verified.returncode == 0, verified.stdout
    assert (
        f"· table tenants.{QUEUE}: last migrated to the declaration of commit {sha} (run {row['run_id']}, "
        in verified.stdout
    )
    assert "· table tenants.tenant_profiles: never migrated by migrate --apply" in verified.stdout


def test_an_interrupted_run_is_visible_in_the_history(built_stack: LiveStack) -> None:
    """SIGINT while the copy runs: the row written before the first step says `interrupted`."""
    _new_partitioning(built_stack)
    returncode, stderr = sigint_while_the_copy_runs(built_stack)
    assert returncode == 130, stderr
    (row,) = history_rows(built_stack)
    assert row["outcome"] == "interrupted" and "stopped by SIGINT" in row["message"]
    # The original stands under its name: a safe state, so the lock was released.
    assert f"{QUEUE}__migrate_lock" not in [
        t.table_id for t in built_stack.client.list_tables(built_stack.dataset_id())
    ]


def test_the_dry_run_takes_no_lock_but_reports_a_held_one(built_stack: LiveStack) -> None:
    _new_partitioning(built_stack)
    marker = f"{built_stack.table(QUEUE)}__migrate_lock"
    from google.cloud import bigquery

    held = bigquery.Table(marker)
    held.description = json.dumps({"run_id": "20260101T000000000Z-abcdef", "started_at": "2026-01-01T00:00:00+00:00"})
    built_stack.client.create_table(held)

    dry = built_stack.cli("migrate", "--stack", STACK, "--tables", QUEUE)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "is locked by run 20260101T000000000Z-abcdef (caller unknown" in dry.stdout
    assert "since 2026-01-01T00:00:00+00:00" in dry.stdout
    refused = built_stack.cli("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
    assert refused.returncode == 1 and "--break-lock 20260101T000000000Z-abcdef`" in refused.stdout
    wrong = built_stack.cli("migrate", "--stack", STACK, "--tables", QUEUE, "--apply", "--break-lock", "other")
    assert wrong.returncode == 1  # only the named run's lock is broken
    broken = built_stack.cli(
        "migrate", "--stack", STACK, "--tables", QUEUE, "--apply", "--break-lock", "20260101T000000000Z-abcdef"
    )
    assert broken.returncode == 0, broken.stdout + broken.stderr
    assert history_rows(built_stack)[0]["outcome"] == "applied"


def test_the_history_table_itself_is_never_migrated(built_stack: LiveStack) -> None:
    from test_migrate_live import edit_declaration

    edit_declaration(
        built_stack, "migration_history", partitioning={"field": "started_at", "type": "MONTH", "keep_forever": True}
    )
    result = built_stack.cli("migrate", "--stack", STACK, "--tables", "migration_history", "--apply")
    assert result.returncode == 1, result.stdout
    assert "is the migration history, which migrate writes while it runs, so migrate never changes it" in result.stdout
    assert built_stack.client.get_table(built_stack.table("migration_history")).time_partitioning.type_ == "DAY"


def test_without_the_history_table_apply_refuses_and_says_how_to_create_it(built_stack: LiveStack) -> None:
    _new_partitioning(built_stack)
    built_stack.client.delete_table(built_stack.table("migration_history"))
    result = built_stack.cli("migrate", "--stack", STACK, "--tables", QUEUE, "--apply")
    assert result.returncode == 1, result.stdout
    assert "which does not exist yet; create it first: pulumi up --stack live --target" in result.stdout
    assert built_stack.client.get_table(built_stack.table(QUEUE)).time_partitioning.type_ == "DAY"
    shown = built_stack.cli("history", "--stack", STACK)
    assert shown.returncode == 0 and "does not exist yet" in shown.stdout
