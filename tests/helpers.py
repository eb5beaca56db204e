"""Helpers shared by the test modules (fixtures are in conftest.py, the live server's in live_server.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from infra.model.catalog import load_catalog
from infra.model.registrations import ProgramRun, Registration

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the repository declares today: tests about the repository's own catalog read it, so adding,
# changing or removing a table as the README says keeps them true.
REPO_CATALOG = load_catalog(REPO_ROOT)
# A frozen copy of the tenants catalog and stack files: generic behaviour is tested on it, so that
# what the repository declares can change freely.
FIXTURE_ROOT = REPO_ROOT / "tests" / "fixtures" / "repo"
FIXTURE_TABLES = [t.table_id for t in load_catalog(FIXTURE_ROOT).tables()]


# What rich and the CLI read of the terminal they print to: a developer's shell sets some of them.
TERMINAL_VARIABLES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "COLUMNS", "TERM")


def invoke(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in this process (click's runner): the same result shape as run_cli, at a fraction of its cost.

    Like run_cli, no emulator variable reaches the command unless `env` sets one.
    """
    from click.testing import CliRunner

    from infra.bigquery_edge.live import EMULATOR_HOST_ENV
    from infra.cli.main import main

    previous = Path.cwd()
    os.chdir(cwd)  # paths in messages are shown relative to the working directory
    try:
        # Neither the emulator nor the developer's terminal settings reach the command unless `env` says so.
        environment: dict[str, str | None] = {
            EMULATOR_HOST_ENV: None,
            **dict.fromkeys(TERMINAL_VARIABLES),
            **(env or {}),
        }
        result = CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


# Coverage measures subprocesses through COVERAGE_* variables (pyproject.toml: patch = subprocess). The
# session fixture in conftest.py moves them here, so that only `python -m infra.cli` is measured, not git,
# the base run of a copied tree or the nested suite, whose files are not the repository's.
CLI_COVERAGE_ENV: dict[str, str] = {}


def cli_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """What `python -m infra.cli` gets in a test: no credentials or emulator variable unless `env` sets one."""
    base = {"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull}
    return base | CLI_COVERAGE_ENV | (env or {})


def run_cli(
    *args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m infra.cli` as a user runs it (see cli_environment)."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=cli_environment(env),
    )


def resources_of(run: ProgramRun, type_: str) -> list[Registration]:
    """The run's registrations of one resource type, in registration order; a view, registered as a Table
    with `view`, is not among the tables (`views_of`)."""
    return [r for r in run.resources if r.type == type_ and "view" not in r.inputs]


def views_of(run: ProgramRun) -> list[Registration]:
    return [r for r in run.resources if "view" in r.inputs]


def count_yaml_reads(monkeypatch: Any) -> Counter[str]:
    """How often each YAML file (declarations, stack files) is read from here on, by resolved path."""
    from infra.model import catalog, documents, settings

    reads: Counter[str] = Counter()

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads[str(Path(path).resolve())] += 1
        return documents.load_yaml(path, *args, **kwargs)

    for module in (catalog, settings):
        monkeypatch.setattr(module, "load_yaml", counted)
    return reads


def load_local_bigquery_script() -> ModuleType:
    """scripts/local_bigquery.py, loaded by path under its own name (`local_bigquery` is the server's package)."""
    name = "local_bigquery_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "local_bigquery.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look the module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]
