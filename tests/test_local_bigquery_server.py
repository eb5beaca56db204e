"""Tests of scripts/local_bigquery.py against the real local BigQuery API server.

The server (`local-bigquery` on DuckDB, see scripts/local_bigquery.py) runs in .local-bigquery/venv; these
tests use the session's server (conftest.py) and start their own only to test starting and stopping.
An install failure fails these tests: it is never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from helpers import REPO_ROOT, load_local_bigquery_script
from live_server import make_client

from infra.model.rules import canonical_type

SCRIPT = REPO_ROOT / "scripts" / "local_bigquery.py"
lbq = load_local_bigquery_script()

pytestmark = pytest.mark.live


def canonical(fields: Any) -> list[tuple[str, str, str]]:
    """BigQuery (and this server) report legacy type names; compare schemas in canonical form."""
    return [(f.name, canonical_type(f.field_type) or f.field_type, f.mode or "NULLABLE") for f in fields]


@pytest.fixture(scope="module")
def client(bigquery_server: Any) -> Iterator[bigquery.Client]:
    client = make_client(bigquery_server.endpoint, bigquery_server.project)
    yield client
    client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def dataset(client: bigquery.Client) -> Iterator[bigquery.Dataset]:
    ds = client.create_dataset(f"t_{uuid.uuid4().hex[:12]}")
    yield ds
    client.delete_dataset(ds, delete_contents=True, not_found_ok=True)


SCHEMA = [
    bigquery.SchemaField("event_ts", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("customer_id", "INT64", mode="REQUIRED"),
    bigquery.SchemaField("is_active", "BOOL"),
    bigquery.SchemaField("country", "STRING"),
]
THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


def _partitioned_table(dataset: bigquery.Dataset, name: str) -> bigquery.Table:
    table = bigquery.Table(dataset.table(name), schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field="event_ts", expiration_ms=THIRTY_DAYS_MS
    )
    table.clustering_fields = ["country", "customer_id"]
    table.require_partition_filter = True
    table.labels = {"team": "data", "env": "test"}
    table.description = "events"
    return table


def test_partitioned_clustered_table_round_trips(client: bigquery.Client, dataset: bigquery.Dataset) -> None:
    client.create_table(_partitioned_table(dataset, "events"))

    got = client.get_table(dataset.table("events"))

    assert got.time_partitioning is not None
    assert got.time_partitioning.type_ == "DAY"
    assert got.time_partitioning.field == "event_ts"
    assert got.time_partitioning.expiration_ms == THIRTY_DAYS_MS
    assert got.clustering_fields == ["country", "customer_id"]
    assert got.require_partition_filter is True
    assert got.labels == {"team": "data", "env": "test"}
    assert got.description == "events"
    assert canonical(got.schema) == canonical(SCHEMA)
    # Reported in legacy names, as real BigQuery does.
    assert [f.field_type for f in got.schema] == ["TIMESTAMP", "INTEGER", "BOOLEAN", "STRING"]
    assert [t.table_id for t in client.list_tables(dataset)] == ["events"]


def test_schema_update_adds_a_column(client: bigquery.Client, dataset: bigquery.Dataset) -> None:
    table = client.create_table(_partitioned_table(dataset, "events"))

    table.schema = [*table.schema, bigquery.SchemaField("note", "STRING", mode="NULLABLE")]
    client.update_table(table, ["schema"])

    got = client.get_table(dataset.table("events"))
    assert canonical(got.schema) == [*canonical(SCHEMA), ("note", "STRING", "NULLABLE")]
    assert got.time_partitioning.field == "event_ts"
    assert got.clustering_fields == ["country", "customer_id"]

    errors = client.insert_rows_json(got, [{"event_ts": "2024-05-01T00:00:00Z", "customer_id": 7, "note": "hello"}])
    assert errors == []
    rows = list(
        client.query_and_wait(
            f"SELECT note FROM `{got.full_table_id.replace(':', '.')}` WHERE event_ts >= '2024-01-01'"
        )
    )
    assert [r.note for r in rows] == ["hello"]


def test_insert_rows_and_query_count(client: bigquery.Client, dataset: bigquery.Dataset) -> None:
    table = client.create_table(_partitioned_table(dataset, "events"))
    rows = [
        {"event_ts": f"2024-05-0{day}T12:00:00Z", "customer_id": day, "is_active": day % 2 == 0, "country": "NL"}
        for day in range(1, 6)
    ]
    assert client.insert_rows_json(table, rows) == []

    ref = f"{table.project}.{table.dataset_id}.{table.table_id}"
    job_config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", "2024-05-02T00:00:00Z")]
    )
    result = list(
        client.query_and_wait(
            f"SELECT COUNT(*) AS n, COUNTIF(is_active) AS active FROM `{ref}` WHERE event_ts >= @since",
            job_config=job_config,
        )
    )
    assert (result[0].n, result[0].active) == (4, 2)
    # require_partition_filter is enforced.
    with pytest.raises(Exception, match="filter"):
        client.query_and_wait(f"SELECT COUNT(*) FROM `{ref}`")


def test_stop_ends_the_server_process(bigquery_server: Any) -> None:
    other = lbq.start_server("stop-test")
    try:
        assert lbq.pid_alive(other.pid)
        assert other.endpoint != bigquery_server.endpoint
        run_dir = other.cleanup_dir
        assert run_dir is not None and run_dir.is_dir()
        assert other.data_dir.is_relative_to(lbq.STATE_DIR)
    finally:
        other.stop()
    assert not lbq.pid_alive(other.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(other.pid, 0)
    assert not run_dir.exists()
    other.stop()  # idempotent
    assert bigquery_server.alive()  # the session's server is untouched


def _cli(*args: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.mark.usefixtures("bigquery_server")  # the server is installed (or the install failure reported) first
def test_cli_start_twice_reports_the_same_server() -> None:
    # Its own run dir, so a developer's server in .local-bigquery/ is left alone.
    run_dir = lbq.STATE_DIR / f"pytest-cli-{uuid.uuid4().hex[:8]}"
    try:
        first = _cli("start", "--project", "cli-project", run_dir=run_dir)
        assert first.returncode == 0, first.stderr
        second = _cli("start", "--project", "cli-project", run_dir=run_dir)
        assert second.returncode == 0, second.stderr
        assert first.stdout == second.stdout
        assert "already running" in second.stderr
        info = dict(line.split("=", 1) for line in first.stdout.splitlines())
        assert info["project"] == "cli-project"
        assert info["endpoint"].startswith("http://127.0.0.1:")

        recorded = lbq.recorded_server(run_dir)
        assert recorded is not None and recorded.endpoint == info["endpoint"]
        assert recorded.data_dir == run_dir / "data"

        client = make_client(info["endpoint"], info["project"])
        client.create_dataset("from_cli")
        assert client.get_dataset("from_cli").dataset_id == "from_cli"
        with pytest.raises(NotFound):
            client.get_dataset("missing")
        client.close()  # type: ignore[no-untyped-call]

        status = _cli("status", run_dir=run_dir)
        assert status.returncode == 0 and "status=running" in status.stdout

        stop = _cli("stop", run_dir=run_dir)
        assert stop.returncode == 0, stop.stderr
        assert not lbq.pid_alive(recorded.pid)
        assert not (run_dir / "server.json").exists()
        assert _cli("status", run_dir=run_dir).returncode == 3
        assert _cli("stop", run_dir=run_dir).returncode == 0  # none runs: still fine
    finally:
        _cli("stop", run_dir=run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
