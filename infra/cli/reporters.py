"""What each command prints: the one typed mapping from a command's --format to its reporter, and the
reporters of the commands without a module of their own (validate, docs, preview-gate, verify, snapshot,
import-file).

A reporter takes the result object of infra/cli/commands.py and prints it on stdout and stderr; it decides no
exit code (infra/cli/main.py `exit_code` does) and writes no file (the command does). Each command loads its
own reporter's modules only, inside the reporter: `validate` never loads rich, `diff --format json` neither
rich nor the catalog.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec

import click

from infra.model.documents import display_path

if TYPE_CHECKING:
    from rich.console import Console

    from infra.analysis.changes import DiffResult
    from infra.analysis.drift import VerifyReport
    from infra.bigquery_edge.live_migrate import MigrateReport
    from infra.cli import commands
    from infra.model.registrations import ProgramRun

REPO_ROOT = Path(__file__).resolve().parents[2]


def echo(text: str, err: bool = False) -> None:
    click.echo(text, err=err)


def console() -> Console:
    from rich.console import Console

    # Piped output (CI logs, PR comments) gets a wide table instead of rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def validate_text(result: commands.Validated) -> None:
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)
    echo(
        f"✓ {result.datasets} dataset(s), {result.tables} table(s), {result.columns:,} column(s) valid; "
        f"stacks checked: {', '.join(result.stacks) or 'none'}"
    )
    if result.contracts is not None:
        echo(f"✓ {result.contracts} contract(s) resolve against the declarations")


def plan_text(result: ProgramRun) -> None:
    from infra.reports import planreport

    planreport.render_text(result, console())


def plan_json(result: ProgramRun) -> None:
    from infra.reports import planreport

    echo(planreport.render_json(result))


def _diff_warnings(result: DiffResult) -> None:
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)


def diff_text(result: DiffResult) -> None:
    from infra.reports import diffreport

    _diff_warnings(result)
    width = _terminal_width() if sys.stdout.isatty() else 200  # as console() sets it
    colour = _rich_would_colour()
    styler = diffreport.ansi(colour=not os.environ.get("NO_COLOR")) if colour else None
    click.echo(diffreport.render_text(result, width, styler), color=colour)


def _terminal_width() -> int:
    import shutil  # only the text of diff asks: every other command does without it

    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return 80  # rich's width for a terminal that cannot say its own
    return shutil.get_terminal_size().columns


def _rich_would_colour() -> bool:
    """What rich's Console decides for stdout (the report was printed with it, and plan's still is)."""
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        terminal = forced == "1"
    elif (force_color := os.environ.get("FORCE_COLOR")) is not None:
        terminal = force_color != ""
    else:
        terminal = sys.stdout.isatty()
    return terminal and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def diff_json(result: DiffResult) -> None:
    from infra.reports import diffreport

    _diff_warnings(result)
    echo(diffreport.render_json(result))


def diff_markdown(result: DiffResult) -> None:
    from infra.reports import diffreport

    _diff_warnings(result)
    echo(diffreport.render_markdown(result))


def docs_text(result: commands.DocsResult) -> None:
    shown = display_path(result.target)
    if result.written:
        echo(f"wrote {shown}")
    elif not result.up_to_date:
        command = "python -m infra.cli docs" + ("" if result.root == REPO_ROOT else f" --root {result.root}")
        echo(f"{shown} is out of date; run `{command}` and commit the result.", err=True)
    else:
        echo(f"✓ {shown} is up to date")


def gate_text(result: commands.GateResult) -> None:
    if result.others:
        echo(f"{len(result.others)} other change(s):")
        for line in result.others:
            echo(line)
    for step in result.steps:
        echo(str(step))
    if result.refused:
        echo(
            f"refused: {len(result.refused)} delete(s) or replace(s) not approved in Pulumi.{result.stack}.yaml; name "
            'each table in tenant-bigquery:approveDataLoss (runbook "Approve data loss in prod"), or change the '
            "declaration",
            err=True,
        )
    else:
        echo(f"✓ nothing is deleted or replaced without approval ({len(result.steps)} approved).")


def verify_text(stack: str, report: VerifyReport) -> None:
    echo(f"Stack {stack}: project {report.project}, checked through {report.target}")
    for check in report.checks:
        echo(str(check))
    if report.migrations:
        from infra.model.history import migration_line

        for item in report.migrations:
            echo(migration_line(item))
    failed, total = len(report.failures), len(report.checks)
    echo(f"{failed} of {total} checks failed." if failed else f"All {total} checks hold.")


def verify_json(stack: str, report: VerifyReport) -> None:
    echo(json.dumps({"stack": stack, **report.to_json()}, indent=2))


def snapshot_text(result: commands.SnapshotResult) -> None:
    report = result.report
    for dataset in report.created_datasets:
        echo(
            f"created backup dataset {dataset} (default table expiration {result.expire_days} d; "
            "the source dataset's ACL and default key)"
        )
    taken_at, expires = f"{report.taken_at:%Y-%m-%d %H:%M:%S}", f"{report.expires:%Y-%m-%d %H:%M}"
    if report.snapshots:
        echo(f"Snapshots taken at {taken_at} UTC, expiring {expires} UTC:")
    for taken in report.snapshots:
        new_table, over = taken.restore_to_new_table(), taken.restore_over_source()
        echo(f"✓ {taken.source} -> {taken.snapshot}")
        echo(f"    restore into a new table: {new_table.bq}")
        echo(f"      python: {new_table.python}")
        echo(f"    or over the table, losing every row written to it after {taken_at} UTC: {over.bq}")
        echo(f"      python: {over.python}")
    for table, why in report.failures:
        echo(f"✗ {table}: {why}")
    if report.snapshots:
        echo(
            "Restore into a new table first and compare; copy the rows you need into the live table "
            "(INSERT INTO <table> (columns) SELECT columns FROM <restored table>), which also keeps a recreated "
            "table's new schema. A restore over the table puts back the snapshot's rows and schema as they were."
        )
    if not report.ok:
        kept = f"; kept: {len(report.snapshots)} snapshot(s) listed above" if report.snapshots else ""
        created = f", created {', '.join(report.created_datasets)}" if report.created_datasets else ""
        echo(f"{len(report.failures)} of {result.requested} snapshots failed{kept}{created}.", err=True)


def migrate_text(stack: str, report: MigrateReport) -> None:
    from infra.reports import migratereport

    for text in migratereport.render_text(stack, report.to_json()):
        echo(text)


def migrate_markdown(stack: str, report: MigrateReport) -> None:
    from infra.reports import migratereport

    for text in migratereport.render_markdown(stack, report.to_json()):
        echo(text)


def migrate_json(stack: str, report: MigrateReport) -> None:
    echo(json.dumps({"stack": stack, **report.to_json()}, indent=2))


def history_text(result: commands.HistoryResult) -> None:
    from infra.bigquery_edge import live_history
    from infra.reports import historyreport

    rows = None if result.rows is None else live_history.entries_json(result.rows)
    historyreport.render_text(result.stack, result.history_table, rows, console())


def history_json(result: commands.HistoryResult) -> None:
    from infra.bigquery_edge import live_history

    rows = None if result.rows is None else live_history.entries_json(result.rows)
    echo(json.dumps({"stack": result.stack, "history_table": result.history_table, "rows": rows}, indent=2))


def progress(total: int) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    """migrate's progress: a bar on a terminal, else one line per table on stderr."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        task = bar.add_task("migrate", total=total)
        bar.start()

        def update(table: str, status: str) -> None:
            bar.update(task, description=f"{table}: {status}", advance=0 if status == "planning" else 1)

        return update, bar.stop
    done = [0]

    def line(table: str, status: str) -> None:
        if status != "planning":
            done[0] += 1
            echo(f"[{done[0]}/{total}] {table}: {status}", err=True)

    return line, lambda: None


def import_file_text(result: commands.ImportFile) -> None:
    """The document on stdout, unless the command wrote it to --out; or why it was refused."""
    if result.document is None:
        for check in result.blockers:
            echo(str(check), err=True)
        echo(
            f"refused: {len(result.blockers)} difference(s) between the live project and the declarations; align "
            'them first (runbook "Adopt what the bootstrap processor created"), or pass --skip-verify to '
            "import the live state as it is.",
            err=True,
        )
        return
    if result.out is None:
        click.echo(import_document_text(result.document), nl=False)
    echo(
        f"{len(result.document['resources'])} resources; next: pulumi import --stack {result.stack} "
        f"--file {display_path(result.out) if result.out else 'FILE'} --generate-code=false",
        err=True,
    )


def import_document_text(document: dict[str, Any]) -> str:
    """The `pulumi import --file` document as import-file prints or writes it."""
    return json.dumps(document, indent=2) + "\n"


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


P = ParamSpec("P")


@dataclass(frozen=True)
class Reporters(Generic[P]):
    """A command's reporter per --format, the first its default; mypy checks each against the command's result."""

    by_format: Mapping[Format, Callable[P, None]]

    def formats(self) -> list[str]:
        return [str(output_format) for output_format in self.by_format]

    def __call__(self, output_format: Format, *args: P.args, **kwargs: P.kwargs) -> None:
        self.by_format[output_format](*args, **kwargs)


# The one mapping from a command's --format to its reporter; a command's --format choices are its keys.
PLAN: Reporters[[ProgramRun]] = Reporters({Format.TEXT: plan_text, Format.JSON: plan_json})
DIFF: Reporters[[DiffResult]] = Reporters(
    {Format.TEXT: diff_text, Format.JSON: diff_json, Format.MARKDOWN: diff_markdown}
)
VERIFY: Reporters[[str, VerifyReport]] = Reporters({Format.TEXT: verify_text, Format.JSON: verify_json})
MIGRATE: Reporters[[str, MigrateReport]] = Reporters(
    {Format.TEXT: migrate_text, Format.JSON: migrate_json, Format.MARKDOWN: migrate_markdown}
)
HISTORY: Reporters[[commands.HistoryResult]] = Reporters({Format.TEXT: history_text, Format.JSON: history_json})
