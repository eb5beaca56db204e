"""Benchmark of the change classifier on the largest corpus schema (2.7 MB, ~13,000 fields).

Goal: classifying two versions costs at most 3x loading both files with `json.load`. The classifier
works on parsed columns, so the goal is measured on `classify_schema` alone; parsing the JSON into
columns (`parse_schema`, which also validates) is timed and reported separately, and so is the whole
path `diff --old/--new` takes (`diff_schema_files`: read, validate, classify).

Usage: python scripts/bench_changes.py
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from infra.analysis.changes import classify_schema  # noqa: E402
from infra.files.filediff import diff_schema_files  # noqa: E402
from infra.model.schema import parse_schema  # noqa: E402

LARGEST = REPO_ROOT / "tests/corpus/mozilla-pipeline-schemas/schemas/firefox-desktop/metrics/metrics.1.bq"
REPEATS = 7


def evolved(schema: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The next version: 200 nested fields dropped, 200 added, 100 descriptions changed."""
    new = copy.deepcopy(schema)
    records = [c for c in _walk(new) if c.get("fields")]
    for index, record in enumerate(records[:200]):
        dropped = record["fields"].pop()
        record["fields"].append({"name": f"added_{index}", "type": "STRING", "mode": "NULLABLE"})
        if index < 100:
            record["fields"][0]["description"] = f"changed {dropped['name']}"
    return new


def _walk(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for column in columns:
        found.append(column)
        found += _walk(column.get("fields", []))
    return found


def best_of(function: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_classifier() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        new_file = Path(tmp) / "metrics.2.bq"
        new_file.write_text(json.dumps(evolved(json.loads(LARGEST.read_text()))))

        def load_both() -> tuple[Any, Any]:
            with LARGEST.open() as old, new_file.open() as new:
                return json.load(old), json.load(new)

        load_time = best_of(load_both)
        old_raw, new_raw = load_both()
        cli_time = best_of(lambda: diff_schema_files(LARGEST, new_file))

    parse_time = best_of(lambda: (parse_schema(old_raw, "old"), parse_schema(new_raw, "new")))
    old_columns, new_columns = parse_schema(old_raw, "old")[0], parse_schema(new_raw, "new")[0]
    classify_time = best_of(lambda: classify_schema(old_columns, new_columns))
    changes = classify_schema(old_columns, new_columns)
    size = LARGEST.stat().st_size / 1e6
    return [
        f"change classifier, {LARGEST.name} ({size:.1f} MB) vs a version with 200 nested fields dropped, 200 added, "
        f"100 descriptions changed ({len(changes)} changes found), best of {REPEATS}:",
        f"  json.load of both files:                      {load_time * 1000:7.1f} ms",
        f"  classify_schema on parsed columns:            {classify_time * 1000:7.1f} ms, "
        f"ratio {classify_time / load_time:.2f} (goal <= 3.00; excludes parsing into columns)",
        f"  parse_schema of both into columns (validates): {parse_time * 1000:6.1f} ms, "
        f"ratio {parse_time / load_time:.2f}",
        f"  parse + classify:                             {(parse_time + classify_time) * 1000:7.1f} ms, "
        f"ratio {(parse_time + classify_time) / load_time:.2f}",
        f"  diff_schema_files (diff --old/--new):         {cli_time * 1000:7.1f} ms, ratio {cli_time / load_time:.2f}",
    ]


if __name__ == "__main__":
    for line in bench_classifier():
        print(line)
