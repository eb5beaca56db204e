"""Shared fixtures: the repository, copies of it to break, the real program under mocks, the local server."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURE_ROOT, REPO_ROOT, load_local_bigquery_script
from live_server import LiveStack, create_from_plan, delete_datasets, make_client, write_stack

from infra.mockrun import PlanResult, plan_stack

# Real-world schemas (MPL-2.0, see its README), copied in so CI needs nothing outside the clone.
CORPUS = REPO_ROOT / "tests" / "corpus" / "mozilla-pipeline-schemas"


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture catalog and stack files, to break one thing at a time."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_ROOT, root)
    return root


@pytest.fixture(scope="session")
def planned() -> Callable[[str], PlanResult]:
    """The real program's registrations per stack of the repository, computed once per session."""
    cache: dict[str, PlanResult] = {}

    def plan(stack: str) -> PlanResult:
        if stack not in cache:
            cache[stack] = plan_stack(REPO_ROOT, stack)
        return cache[stack]

    return plan


@pytest.fixture(scope="session")
def bigquery_server() -> Iterator[Any]:
    """One local BigQuery API server for the session's live tests, on free ports; always stopped.

    An install failure fails the tests that need it, never skips them.
    """
    lbq = load_local_bigquery_script()
    try:
        lbq.ensure_installed()
        failure = None
    except lbq.InstallError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(f"installing the local BigQuery server failed: {failure}", pytrace=False)
    with lbq.running_server("live-tests") as server:
        yield server


@pytest.fixture
def live_stack(bigquery_server: Any, repo_copy: Path) -> Iterator[LiveStack]:
    """A stack of its own on the shared server, in a copy of the repository; nothing created yet."""
    suffix = write_stack(repo_copy, bigquery_server.project)
    client = make_client(bigquery_server.endpoint, bigquery_server.project)
    yield LiveStack(repo_copy, bigquery_server.project, suffix, bigquery_server.endpoint, client)
    delete_datasets(client, suffix)
    client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def built_stack(live_stack: LiveStack) -> LiveStack:
    """The live stack's dataset and tables, created through the client from the plan's inputs: what the
    bootstrap processor (or a `pulumi up`) leaves in the project."""
    create_from_plan(live_stack.client, live_stack.plan())
    return live_stack
