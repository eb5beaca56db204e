"""Shared fixtures: the repository, copies of it to break, and the real program under mocks."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from infra.mockrun import PlanResult, plan_stack

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real-world schemas (MPL-2.0, see its README), copied in so CI needs nothing outside the clone.
CORPUS = REPO_ROOT / "tests" / "corpus" / "mozilla-pipeline-schemas"


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A writable copy of stacks/, schemas/ and the stack files, to break one thing at a time."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("stacks", "schemas"):
        shutil.copytree(REPO_ROOT / name, root / name)
    for stack_file in REPO_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, root / stack_file.name)
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


def load_local_bigquery_script() -> ModuleType:
    """scripts/local_bigquery.py, loaded by path under its own name (`local_bigquery` is the server's package)."""
    name = "local_bigquery_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "local_bigquery.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look the module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture(scope="session")
def bigquery_server() -> Iterator[Any]:
    """One local BigQuery API server for the session's live tests, on free ports; always stopped.

    An install failure fails the tests that need it, never skips them (DESIGN.md section 6).
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
