"""Shared fixtures: the repository, copies of it to break, the real program under mocks, the local server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CLI_COVERAGE_ENV, FIXTURE_ROOT, REPO_ROOT, TERMINAL_VARIABLES, load_local_bigquery_script
from live_server import LiveStack, stack_on

from infra.model.registrations import ProgramRun
from infra.pulumi_edge.mockrun import run_stack

# Real-world schemas (MPL-2.0, see its README), copied in so CI needs nothing outside the clone.
CORPUS = REPO_ROOT / "tests" / "corpus" / "mozilla-pipeline-schemas"


@pytest.fixture(scope="session", autouse=True)
def coverage_for_the_cli_only() -> Iterator[None]:
    """See helpers.CLI_COVERAGE_ENV; coverage has set its variables by the time session fixtures run."""
    CLI_COVERAGE_ENV.update({key: os.environ.pop(key) for key in list(os.environ) if key.startswith("COVERAGE_")})
    yield
    os.environ.update(CLI_COVERAGE_ENV)


@pytest.fixture
def no_terminal_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the developer's terminal variables (NO_COLOR, TERM=dumb, ...) reaches a rich Console a test builds:
    what helpers.invoke does for the CLI."""
    for name in TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture catalog and stack files, to break one thing at a time."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_ROOT, root)
    return root


def _planner(root: Path) -> Callable[[str], ProgramRun]:
    cache: dict[str, ProgramRun] = {}

    def plan(stack: str) -> ProgramRun:
        if stack not in cache:
            cache[stack] = run_stack(root, stack)
        return cache[stack]

    return plan


@pytest.fixture(scope="session")
def planned() -> Callable[[str], ProgramRun]:
    """The real program's registrations per stack of the repository, computed once per session. Tests of the
    repository's own declarations read these, and must hold for any valid repository (tables added or removed)."""
    return _planner(REPO_ROOT)


@pytest.fixture(scope="session")
def planned_fixture() -> Callable[[str], ProgramRun]:
    """The same for the frozen tenants catalog in tests/fixtures/repo: tests of generic behaviour that name
    its tables read these."""
    return _planner(FIXTURE_ROOT)


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
    with stack_on(bigquery_server, repo_copy, built=False) as stack:
        yield stack


@pytest.fixture
def built_stack(bigquery_server: Any, repo_copy: Path) -> Iterator[LiveStack]:
    """A stack of its own whose dataset and tables exist as declared."""
    with stack_on(bigquery_server, repo_copy, built=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def module_built_stack(bigquery_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One built stack for a module's tests that leave it as they found it (building one takes a second)."""
    root = tmp_path_factory.mktemp("module") / "repo"
    shutil.copytree(FIXTURE_ROOT, root)
    with stack_on(bigquery_server, root, built=True) as stack:
        yield stack
