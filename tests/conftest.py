"""Shared fixtures: the repository, copies of it to break, and the real program under mocks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

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
