"""Ten rounds of `migrate --apply` with a writer running INSERT/UPDATE/DELETE beside it, against the local
BigQuery API server; prints rounds completed and refused, writes acknowledged, writer errors, duration.

Each round builds a stack, changes the queue table's declaration (a rebuild on even rounds, an in-place
SET DATA TYPE on odd ones), migrates once half the writes are done while the writer goes on until all
are acknowledged (tests/test_migrate_live.py `Writer`), and
checks that the table holds exactly what the acknowledged writes imply, whether migrate finished or not.

    .venv/bin/python scripts/soak_migrate_writers.py [--rounds 10] [--writes 400]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import FIXTURE_ROOT, load_local_bigquery_script  # noqa: E402
from live_server import stack_on  # noqa: E402
from test_migrate_live import (  # noqa: E402
    QUEUE,
    column,
    edit_declaration,
    edit_schema,
    held_by,
    insert,
    migrate_while_writing,
    queue_entry,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--writes", type=int, default=400)
    args = parser.parse_args()
    lbq = load_local_bigquery_script()
    lbq.ensure_installed()
    completed = refused = writes = errors = lost = 0
    started = time.monotonic()
    with lbq.running_server("soak-migrate") as server, tempfile.TemporaryDirectory() as scratch:
        for number in range(args.rounds):
            root = Path(scratch) / f"round{number}"
            shutil.copytree(FIXTURE_ROOT, root)
            with stack_on(server, root, built=True) as stack:
                insert(stack, QUEUE, [queue_entry(n) for n in range(40)])
                if number % 2 == 0:
                    month = {"field": "scheduled_time", "type": "MONTH", "expiration_days": 90}
                    edit_declaration(stack, QUEUE, partitioning=month)
                else:
                    edit_schema(stack, QUEUE, lambda cols: column(cols, "attempt").update(type="NUMERIC"))
                result, writer = migrate_while_writing(stack, args.writes, number, before=args.writes // 2)
                exact = held_by(stack) == writer.expected
                completed += result.returncode == 0
                refused += result.returncode != 0
                writes, errors, lost = writes + writer.writes, errors + writer.errors, lost + (not exact)
                kind = "rebuild" if number % 2 == 0 else "in place"
                print(
                    f"round {number + 1} ({kind}): migrate exit {result.returncode}, {writer.writes} writes "
                    f"acknowledged, {writer.errors} writer errors, table {'exact' if exact else 'DIFFERS'}",
                    flush=True,
                )
    print(
        f"{args.rounds} rounds: {completed} completed, {refused} refused; {writes} writes acknowledged, "
        f"{errors} writer errors; {lost} rounds where the table differs from the log; "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
