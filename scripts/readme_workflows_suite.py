"""The README's workflows (add a table, change a schema, remove one, force a recreation) on a copy of the
repository, then EVERY offline test in that copy; prints the outcome and the time, beside the time of the
round `make test` runs (only the tests that read the repository's catalog or registrations).

    .venv/bin/python scripts/readme_workflows_suite.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_bad_input_cli.py::test_the_readme_workflows_keep_the_suite_green"


def _round(suite: str) -> tuple[int, float]:
    started = time.monotonic()
    env = {**os.environ, "README_WORKFLOWS_SUITE": suite}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "--no-cov", TEST]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-3000:])
    return result.returncode, time.monotonic() - started


def main() -> int:
    full, full_seconds = _round("full")
    subset, subset_seconds = _round("repository")
    print(f"every offline test in the copy: {'passed' if full == 0 else 'FAILED'} in {full_seconds:.1f} s")
    print(
        f"make test's round (the tests that read the repository): {'passed' if subset == 0 else 'FAILED'} in "
        f"{subset_seconds:.1f} s ({full_seconds / subset_seconds:.1f}x faster to run the full round)"
    )
    return 0 if full == subset == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
