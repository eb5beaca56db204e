"""One `migrate --apply` per table at a time, arbitrated by BigQuery: the lock on `<table>` is the marker
table `<table>__migrate_lock`, created through tables.insert. BigQuery answers a second create of one table
id with 409 `duplicate` ("Already Exists"; REST reference tables.insert, cloud.google.com/bigquery/docs/
error-messages: duplicate, 409, "trying to create a job, dataset, or table that already exists"), so of
two runs exactly one creates it. The marker's description records its holder (infra/model/history.py `Run`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from infra.bigquery_edge import live
from infra.model.history import Run, describe_holder, lock_table_id


class LockHeld(Exception):
    """Another run holds the table's lock; the message names it and since when."""

    def __init__(self, table_id: str, holder: dict[str, Any]):
        self.holder = holder
        super().__init__(f"{table_id} is locked by {describe_holder(holder, datetime.now(UTC))}")


def holder(conn: live.Connection, table_id: str) -> dict[str, Any] | None:
    """Who holds the lock on `table_id`, or None when nobody does."""
    marker = live.table_or_none(conn, lock_table_id(table_id))
    if marker is None:
        return None
    try:
        found = json.loads(marker.description or "")
    except ValueError:
        found = None
    held = found if isinstance(found, dict) else {"run_id": "unknown"}
    # A marker someone made by hand still says since when.
    if "started_at" not in held and marker.created is not None:
        held["started_at"] = marker.created.isoformat()
    return held


def acquire(conn: live.Connection, table_id: str, run: Run) -> bool:
    """Take the lock; False when the dataset does not exist (there is nothing to change). Raises LockHeld."""
    marker = bigquery.Table(lock_table_id(table_id))
    marker.description = json.dumps(run.holder())
    marker.labels = {"tenant-bigquery": "migrate-lock", "run-id": run.run_id.lower()}
    try:
        conn.client.create_table(marker, **conn.call())
    except api_exceptions.NotFound:
        return False
    except api_exceptions.Conflict:
        held = holder(conn, table_id) or {"run_id": "unknown"}
        # A create retried after a lost answer meets this run's own marker.
        if held.get("run_id") != run.run_id:
            raise LockHeld(table_id, held) from None
    return True


def release(conn: live.Connection, table_id: str, run_id: str) -> None:
    """Delete the marker if this run holds it (with one more request deadline: the run's may be what ended)."""
    cleanup = conn.for_cleanup()
    held = holder(cleanup, table_id)
    if held is not None and held.get("run_id") == run_id:
        cleanup.client.delete_table(lock_table_id(table_id), not_found_ok=True, **cleanup.call())


def break_lock(conn: live.Connection, table_id: str, run_id: str) -> bool:
    """`--break-lock RUN_ID`: delete the marker only when that run holds it; True when it was deleted."""
    held = holder(conn, table_id)
    if held is None or held.get("run_id") != run_id:
        return False
    conn.client.delete_table(lock_table_id(table_id), not_found_ok=True, **conn.call())
    return True
