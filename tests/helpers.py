"""Helpers shared by the test modules (fixtures are in conftest.py, the live server's in live_server.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
# The 8 tables the bootstrap processor created, in declaration order (stacks/tenants.yaml).
TENANT_TABLES = [
    "tenant_profiles",
    "tenant_api_keys",
    "tenant_subscriptions",
    "tenant_usage_quotas",
    "tenant_cloud_credentials",
    "tenant_pipeline_configs",
    "scheduled_pipeline_runs",
    "pipeline_execution_queue",
]


def run_cli(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m infra.cli` as a user runs it; no credentials or emulator variable unless `env` sets one."""
    base = {"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=base | (env or {}),
    )


def load_local_bigquery_script() -> ModuleType:
    """scripts/local_bigquery.py, loaded by path under its own name (`local_bigquery` is the server's package)."""
    name = "local_bigquery_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "local_bigquery.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look the module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]
