"""Benchmarks that print figures (never timed tests).

1. The Pulumi program under mocks against a hand-written program that registers the same resources
   with literal arguments, at 8 tables (the repository) and at 1,000 generated tables. Goal: ratio <= 1.10.
   Both run in one process, interleaved, and the median of the repeats is compared.
2. `diff --base HEAD --stack prod` (both runs of the program and the comparison) at 8 tables and at the
   generated count: unchanged, and with a stack label added to every table. Goal at 8 tables: < 2 s.
3. The change classifier (scripts/bench_changes.py), when present.
4. The command line as whole processes, median of the repeats, interleaved with its baseline: `validate`
   of the repository against `python -c "import json, yaml"`, and `diff --old/--new` of the 2.7 MB corpus
   schema and an edited copy against `json.load` of both files in one process. Goal: ratio <= 3. `validate
   --contracts` is measured against the same baseline (it loads sqlglot, which `validate` never does).
5. The offline check of every contract (contracts/*/*.sql) in one process, parser warmed: per query, median of the
   repeats. Goal: < 10 ms per query.

Usage: python scripts/benchmark.py [--repeats N] [--tables N] [--command-line-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import pulumi  # noqa: E402
import pulumi_gcp as gcp  # noqa: E402
import yaml  # noqa: E402

from infra.model.declared import COMPONENT_TYPE, DATASET_TYPE, TABLE_TYPE  # noqa: E402
from infra.model.settings import read_stack_file  # noqa: E402
from infra.pulumi_edge.mockrun import run_program  # noqa: E402
from infra.pulumi_edge.program import run  # noqa: E402

STACK = "prod"


def generated_root(target: Path, tables: int) -> Path:
    """A root with `tables` tables: the repository's 8 schemas and options, cycled under new names."""
    shutil.copy(REPO_ROOT / f"Pulumi.{STACK}.yaml", target)
    declaration = yaml.safe_load((REPO_ROOT / "stacks" / "tenants.yaml").read_text())
    originals = list(declaration["tables"].items())
    schema_dir = target / "schemas" / "tenants"
    schema_dir.mkdir(parents=True)
    (target / "stacks").mkdir()
    declaration["tables"] = {}
    for index in range(tables):
        name, options = originals[index % len(originals)]
        table_id = name if index < len(originals) else f"{name}_{index}"
        shutil.copy(REPO_ROOT / "schemas" / "tenants" / f"{name}.json", schema_dir / f"{table_id}.json")
        declaration["tables"][table_id] = options
    (target / "stacks" / "tenants.yaml").write_text(yaml.safe_dump(declaration))
    return target


def hand_written_program(root: Path) -> Callable[[], None]:
    """What someone would write by hand: the same resources, options and outputs, literal arguments,
    no loading and no validation."""
    recorded = run_program(STACK, read_stack_file(root, STACK)[0], lambda: run(root))
    dataset = next(r for r in recorded.resources if r.type == DATASET_TYPE)
    tables = [r for r in recorded.resources if r.type == TABLE_TYPE]
    literal_dataset = _snake(dataset.inputs)
    literal_tables = [(t.name, _snake(t.inputs), t.options) for t in tables]
    literal_outputs = recorded.outputs

    def program() -> None:
        parent = pulumi.ComponentResource(COMPONENT_TYPE, "tenants", None, None)
        created = gcp.bigquery.Dataset(
            "tenants", **literal_dataset, opts=pulumi.ResourceOptions(parent=parent, protect=True)
        )
        for name, args, options in literal_tables:
            opts = pulumi.ResourceOptions(
                parent=parent,
                protect=options["protect"],
                delete_before_replace=options["deleteBeforeReplace"],
                replacement_trigger=options["replacementTrigger"],
                depends_on=[created],
            )
            gcp.bigquery.Table(name, **args, opts=opts)
        parent.register_outputs({"dataset_id": created.dataset_id, "table_ids": literal_outputs["tables"]})
        pulumi.export("datasets", {"tenants": created.dataset_id})
        pulumi.export("tables", literal_outputs["tables"])

    return program


def _snake(inputs: Mapping[str, Any]) -> dict[str, Any]:
    def convert(key: str) -> str:
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {convert(k): walk(v) for k, v in value.items()}
        return value

    return {convert(k): walk(v) for k, v in inputs.items() if k != "labels"} | {"labels": inputs.get("labels")}


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def bench_program(tables: int, repeats: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = REPO_ROOT if tables == 8 else generated_root(Path(tmp), tables)
        config = read_stack_file(root, STACK)[0]
        baseline = hand_written_program(root)
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(repeats):
            ours.append(timed(lambda: run_program(STACK, config, lambda: run(root))))
            theirs.append(timed(lambda: run_program(STACK, config, baseline)))
        schema_bytes = sum(p.stat().st_size for p in (root / "schemas").glob("*/*.json"))
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    return [
        f"program under mocks, {tables:>5} tables ({schema_bytes / 1e6:.2f} MB of schemas), median of {repeats}: "
        f"ours {ours_median:.3f} s, hand-written {theirs_median:.3f} s, ratio {ours_median / theirs_median:.3f} "
        f"(goal <= 1.10)"
    ]


def bench_diff(tables: int, repeats: int) -> list[str]:
    """`diff --base HEAD --stack prod` as a user runs it, in a git repository of `tables` tables."""
    with tempfile.TemporaryDirectory() as tmp:
        root = generated_root(Path(tmp), tables) if tables != 8 else Path(tmp)
        if tables == 8:
            for name in ("stacks", "schemas"):
                shutil.copytree(REPO_ROOT / name, root / name)
            shutil.copy(REPO_ROOT / f"Pulumi.{STACK}.yaml", root)
        shutil.copytree(REPO_ROOT / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__"))
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"]
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
            subprocess.run([*git, *args], cwd=root, check=True)
        command = [sys.executable, "-m", "infra.cli", "diff", "--base", "HEAD", "--stack", STACK, "--root", str(root)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

        def diff() -> str:
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
            return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()

        results = []
        for case in ("unchanged", "a stack label on every table"):
            if case != "unchanged":
                stack_file = root / f"Pulumi.{STACK}.yaml"
                document = yaml.safe_load(stack_file.read_text())
                document["config"]["tenant-bigquery:labels"]["team"] = "data"
                stack_file.write_text(yaml.safe_dump(document))
            summary = diff()
            seconds = statistics.median(timed(diff) for _ in range(repeats))
            results.append(f"diff --base HEAD --stack {STACK}, {tables:>5} tables, {case}: {seconds:.2f} s ({summary})")
    return results


def bench_command_line(repeats: int) -> list[str]:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_changes import LARGEST, evolved

    python = sys.executable
    # Bytecode as an installed tool has it (PYTHONDONTWRITEBYTECODE would otherwise recompile edited modules).
    subprocess.run([python, "-m", "compileall", "-q", "infra"], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        edited = Path(tmp) / "edited.bq"
        edited.write_text(json.dumps(evolved(json.loads(LARGEST.read_text()))))
        load_both = "import json, sys\nfor name in sys.argv[1:]:\n    with open(name) as f: json.load(f)"
        cli = [python, "-m", "infra.cli"]
        files = [str(LARGEST), str(edited)]
        cases = [
            ("validate", [*cli, "validate"], [python, "-c", "import json, yaml"]),
            ("validate --contracts", [*cli, "validate", "--contracts"], [python, "-c", "import json, yaml"]),
            *(
                (
                    f"diff --old/--new --format {output}, 2.7 MB schema",
                    [*cli, "diff", "--old", files[0], "--new", files[1], "--format", output],
                    [python, "-c", load_both, *files],
                )
                for output in ("text", "json")
            ),
        ]
        results = []
        for name, ours, baseline in cases:
            times: dict[str, list[float]] = {"ours": [], "baseline": []}
            for _ in range(repeats):
                for key, command in (("ours", ours), ("baseline", baseline)):
                    times[key].append(
                        timed(
                            partial(
                                subprocess.run,
                                command,
                                cwd=REPO_ROOT,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                check=True,
                            )
                        )
                    )
            ours_median, base_median = statistics.median(times["ours"]), statistics.median(times["baseline"])
            results.append(
                f"{name} as a process, median of {repeats}: {ours_median * 1000:.0f} ms, baseline "
                f"{base_median * 1000:.0f} ms, ratio {ours_median / base_median:.1f} "
                + ("(sqlglot's import included; asked for only)" if "--contracts" in ours else "(goal <= 3)")
            )
    return results


def bench_contracts(repeats: int) -> list[str]:
    from infra.analysis.contracts import check_all
    from infra.model.catalog import load_catalog
    from infra.model.contracts import read_contracts

    catalog = load_catalog(REPO_ROOT)
    shipped, _ = read_contracts(REPO_ROOT)
    check_all(shipped, catalog)  # the parser's first use builds its tables
    seconds = statistics.median(timed(partial(check_all, shipped, catalog)) for _ in range(repeats))
    per_query = seconds / len(shipped) * 1000
    return [
        f"offline check of {len(shipped)} contracts, median of {repeats}: {seconds * 1000:.1f} ms, "
        f"{per_query:.2f} ms per query (goal < 10 ms)"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--command-line-only", action="store_true", help="Only the whole-process figures (4).")
    args = parser.parse_args()
    for line in bench_command_line(max(args.repeats, 11)):
        print(line, flush=True)
    for line in bench_contracts(max(args.repeats, 11)):
        print(line, flush=True)
    if args.command_line_only:
        return
    for line in bench_program(8, args.repeats):
        print(line, flush=True)
    for line in bench_program(args.tables, max(3, args.repeats // 2)):
        print(line, flush=True)
    for tables in (8, args.tables):
        for line in bench_diff(tables, 3):
            print(line, flush=True)
    if (REPO_ROOT / "scripts" / "bench_changes.py").is_file():
        sys.path.insert(0, str(REPO_ROOT / "scripts"))
        from bench_changes import bench_classifier

        for line in bench_classifier():
            print(line, flush=True)


if __name__ == "__main__":
    main()
