"""diff's text report lays itself out without rich's Console and Table (infra/reports/diffreport.py): it must print
byte for byte what they printed, piped (no styles) and in a terminal (rich's escapes), at any width that fits
its verdicts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.analysis.changes import SCHEMA_IS_CHANGEABLE, Change, DiffResult, ResourceChanges, Verdict
from infra.files.filediff import diff_schema_files
from infra.reports import diffreport
from infra.reports.diffreport import _STYLES, _migration_line, _procedures, _reason, _summary, _title

# rich reads NO_COLOR, TERM, ... from the environment: the Consoles below see none of the shell's.
pytestmark = pytest.mark.usefixtures("no_terminal_settings")

CORPUS = Path(__file__).resolve().parent / "corpus" / "mozilla-pipeline-schemas"
LARGEST = CORPUS / "schemas" / "firefox-desktop" / "metrics" / "metrics.1.bq"


def rich_text(result: DiffResult, out: Console) -> None:
    """The report as it was printed with rich, the reference for the layout."""

    def styled(verdict: Verdict) -> str:
        return f"[{_STYLES[verdict]}]{verdict}[/{_STYLES[verdict]}]"

    heading = f"{result.old_label} -> {result.new_label}"
    out.print(escape(heading + (f", stack {result.stack}" if result.stack else "")))
    for table in result.resources:
        approved = f" (approved in {result.stack})" if table.approved else ""
        out.print(f"\n[bold]{escape(_title(table))}[/bold]: {styled(table.verdict)}{escape(approved)}")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_column()
        for change in table.changes:
            grid.add_row(f"  {styled(change.verdict)}", f"[bold]{escape(change.path)}[/bold]", escape(_reason(change)))
        out.print(grid)
        if table.migration:
            out.print(escape(f"  {_migration_line(table)}"), soft_wrap=True)
    out.print(f"\n{_summary(result)}")
    for steps in _procedures(result):
        out.print()
        for line in steps:
            out.print(escape(line), soft_wrap=True)


def change(path: str, verdict: Verdict, text: str, **extra: str) -> Change:
    return Change(path, verdict, f"provider: {text}", SCHEMA_IS_CHANGEABLE, "schema", **extra)


# What the tests' repositories do not show: long paths and words, wide characters, every verdict, a
# migration, a lowered safety, a dataset.
HANDMADE = DiffResult(
    "merge base with main (0123456789ab)",
    "working tree",
    (
        ResourceChanges(
            "tenants.events_with_a_rather_long_table_name_that_does_not_fit_a_narrow_terminal",
            (
                change("a" * 90, Verdict.ADDED, "new NULLABLE column, added in place"),
                change("payload.details", Verdict.UPDATE, "説明が変更されました、その場で更新されます " * 3),
                change("id", Verdict.UPDATE_DESTRUCTIVE, "x" * 130 + " then short words after a very long one"),
                change("kind", Verdict.REJECTED, "type change STRING -> INT64  with  double  spaces   "),
                change("note", Verdict.NOOP, "order of the columns changed; nothing is sent", live_fix="ALTER …"),
            ),
            migration=("ALTER TABLE `p.tenants.events` RENAME COLUMN a TO b",),
            migrated_verdict=Verdict.UPDATE,
        ),
        ResourceChanges("tenants.audit", (change("[bold]not markup[/bold]", Verdict.REPLACE, "dropped [x]"),)),
        ResourceChanges(
            "tenants",
            (Change("labels.team", Verdict.UPDATE, "updated in place", SCHEMA_IS_CHANGEABLE, "labels", None, "off"),),
            kind="dataset",
            approved=True,
        ),
    ),
    stack="prod",
    unchanged=3,
)


def corpus_result() -> DiffResult:
    history = sorted((CORPUS / "history").iterdir())[0]
    old, new = sorted(history.glob("*.bq"))[:2]
    return diff_schema_files(old, new)


@pytest.mark.parametrize("width", [200, 120, 80, 50, 30])
@pytest.mark.parametrize("terminal", [False, True])
def test_the_text_report_prints_what_rich_printed(tmp_path: Path, width: int, terminal: bool) -> None:
    results = [HANDMADE, corpus_result(), DiffResult("old.json", "new.json", (), compares_files=True)]
    if width == 200:
        edited = tmp_path / "edited.bq"
        edited.write_text(LARGEST.read_text().replace('"description": "', '"description": "Edited. ', 50))
        results.append(diff_schema_files(LARGEST, edited))
    for result in results:
        out = io.StringIO()
        rich_text(
            result,
            Console(
                file=out,
                width=width,
                force_terminal=terminal,
                color_system="standard" if terminal else None,
                highlight=False,
            ),
        )
        styler = diffreport.ansi(colour=True) if terminal else None
        assert diffreport.render_text(result, width, styler) + "\n" == out.getvalue()


def test_without_colour_a_terminal_still_shows_bold_and_dim() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="standard", no_color=True, highlight=False)
    rich_text(HANDMADE, console)
    assert diffreport.render_text(HANDMADE, 100, diffreport.ansi(colour=False)) + "\n" == out.getvalue()


def test_a_terminal_that_cannot_say_its_width_gets_rich_s_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.cli import reporters

    monkeypatch.setenv("COLUMNS", "132")
    monkeypatch.setenv("TERM", "dumb")
    assert reporters._terminal_width() == 80
    monkeypatch.setenv("TERM", "xterm")
    assert reporters._terminal_width() == 132
