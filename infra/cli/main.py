"""Command line: `python -m infra.cli COMMAND`. Thin: parse, call the core, report.

Offline, except verify, snapshot, migrate, history and import-file, which call the BigQuery API
(infra/bigquery_edge/).

Exit codes:
- 0: success.
- 1: problems found. validate, plan and docs: invalid declarations or stack config; docs --check: the
  data dictionary is out of date; diff: a change at or above --fail-on; verify: a check failed;
  snapshot: one was refused or failed; import-file: refused because the live project differs, or
  the program registers a resource it cannot import; migrate: a table was refused or failed.
- 2: usage errors. diff, preview-gate, verify, snapshot, import-file, migrate and history also exit 2 when nothing
  could be checked: invalid declarations or stack config, missing or refused credentials, an API that cannot be
  reached, does not answer within its deadline, keeps failing or does not answer JSON, an unwritable
  --out. docs exits 2 when docs/tables.md cannot be written (or, with --check, read).
- 130: migrate stopped by SIGINT; the last line says in which state the table is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from infra.cli import commands, reporters
from infra.cli.commands import BadOption, CommandFailed, Interrupted, Refused
from infra.cli.options import VERDICTS, endpoint_option, format_option, root_option, stack_name, stack_option
from infra.cli.reporters import Format
from infra.model.problems import DeclarationError, MissingStackError
from infra.model.rules import SNAPSHOT_EXPIRE_DAYS, check_snapshot_expire_days


class Exit(IntEnum):
    """The exit codes above (README "Deadlines and exit codes of the live commands")."""

    OK = 0
    PROBLEMS = 1  # problems found
    UNCHECKED = 2  # a usage error (click's own code for one, UsageError.exit_code), or nothing could be checked
    INTERRUPTED = 130  # stopped by SIGINT, as a shell reports it (128 + 2)


def exit_code(outcome: bool | Exception, invalid: Exit = Exit.UNCHECKED) -> Exit:
    """The one place an outcome becomes an exit code: whether the command found problems, or what stopped it.

    `invalid` is what invalid declarations or stack config mean: the problems validate, plan and docs look
    for; for every other command, nothing could be checked.
    """
    match outcome:
        case bool():
            return Exit.PROBLEMS if outcome else Exit.OK
        case DeclarationError():
            return invalid
        case Interrupted():
            return Exit.INTERRUPTED
        case Refused():
            return Exit.PROBLEMS
        case _:
            return Exit.UNCHECKED


def finish(problems_found: bool) -> NoReturn:
    sys.exit(exit_code(problems_found))


R = TypeVar("R")


def run(work: Callable[[], R], invalid: Exit = Exit.UNCHECKED) -> R:
    """What `work` returns; what stops it goes to stderr, one line each, and ends the command."""
    try:
        return work()
    except MissingStackError as error:
        raise click.BadParameter(str(error), param_hint="--stack") from None
    except DeclarationError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(error.problems)} problem(s); nothing was changed.", err=True)
        sys.exit(exit_code(error, invalid))
    except BadOption as error:
        if error.option:
            raise click.BadParameter(str(error), param_hint=error.option) from None
        raise click.UsageError(str(error)) from None
    except CommandFailed as error:
        click.echo(f"{error.prefix}: {error}", err=True)
        sys.exit(exit_code(error))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Declarative BigQuery datasets and tables: offline checks and reports, live checks and backups."""


@main.command()
@root_option
@click.option(
    "--contracts",
    "check_contracts",
    is_flag=True,
    help="Also resolve every contracts/<service>/<query>.sql against the declarations (tables, columns, types, "
    "partition filters, REQUIRED columns).",
)
def validate(root: Path, check_contracts: bool) -> None:
    """Check every declaration, schema and stack config against BigQuery's rules."""
    reporters.validate_text(run(lambda: commands.validate(root, check_contracts), invalid=Exit.PROBLEMS))
    finish(problems_found=False)


@main.command()
@stack_option
@root_option
@format_option(reporters.PLAN)
def plan(stack: str, root: Path, output_format: Format) -> None:
    """Run the real Pulumi program under mocks and show what the stack declares."""
    reporters.PLAN(output_format, run(lambda: commands.plan(root, stack), invalid=Exit.PROBLEMS))
    finish(problems_found=False)


@main.command()
@click.option("--old", "old_file", type=click.Path(dir_okay=False, path_type=Path), help="Old schema file.")
@click.option("--new", "new_file", type=click.Path(dir_okay=False, path_type=Path), help="New schema file.")
@click.option("--external", is_flag=True, help="With --old/--new: an external table, whose columns are never dropped.")
@click.option(
    "--base",
    metavar="GITREF",
    help="Compare the catalog at this git ref with the working tree [default: the merge base with origin/HEAD, "
    "else main, else master].",
)
@click.option(
    "--stack",
    "stack",
    callback=stack_name,
    help="Compare what the program registers for this stack at --base and in the working tree: every input "
    "and option of the dataset, tables and component; approveDataLoss marks approved ones.",
)
@root_option
@format_option(reporters.DIFF)
@click.option(
    "--fail-on",
    type=click.Choice(VERDICTS),
    help="Exit 1 if a change is at least this bad (noop < added < update < update-destructive < replace < removed "
    "< rejected). With --stack, a lowered safety counts as update-destructive, and what its approveDataLoss "
    "approves does not count.",
)
def diff(
    old_file: Path | None,
    new_file: Path | None,
    external: bool,
    base: str | None,
    stack: str | None,
    root: Path,
    output_format: Format,
    fail_on: str | None,
) -> None:
    """Say what each change does to the data, before `pulumi up`."""
    if (old_file is None) != (new_file is None):
        raise click.UsageError("--old and --new go together")
    if old_file is not None and (base or stack):
        raise click.UsageError("--old/--new compare two files; --base and --stack compare the catalog")
    if external and old_file is None:
        raise click.UsageError("--external applies to --old/--new; catalog tables are native tables")
    result = run(lambda: commands.diff(root, old_file, new_file, external, base, stack))
    reporters.DIFF(output_format, result)
    if fail_on is None:
        finish(problems_found=False)
    from infra.analysis.changes import Verdict  # loaded by diff already; at the top, by every command

    finish(problems_found=result.fails(Verdict(fail_on)))


@main.command()
@root_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the committed file is not what would be written.")
def docs(root: Path, check: bool) -> None:
    """Render the data dictionary, docs/tables.md, from the declarations and schemas."""
    result = run(lambda: commands.docs(root, check), invalid=Exit.PROBLEMS)
    reporters.docs_text(result)
    finish(problems_found=not result.up_to_date)


@main.command("preview-gate")
@stack_option
@root_option
@click.argument("preview_file", metavar="PREVIEW_JSON", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--migration",
    "migration_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="What `migrate --format json` planned: a replace of a table it migrates without loss is expected.",
)
def preview_gate(stack: str, root: Path, preview_file: Path, migration_file: Path | None) -> None:
    """Refuse a preview that deletes or replaces what the stack does not approve.

    PREVIEW_JSON is what `pulumi preview --stack STACK --json` printed. Exit 0 when every delete and
    replace is approved (a table in approveDataLoss; any table in a stack without protect; with
    --migration, a table this stack's `migrate` plan brings to the declaration first, for keys it handles;
    a removed table whose protections an earlier run lifted; the delete of a provider resource), 1 when
    one is not, 2 when a file or the stack config cannot be read, the preview failed (an error
    diagnostic: its steps are incomplete) or a file is no complete preview, or no migrate plan, of this
    stack (README: "The deploy gate").
    """
    result = run(lambda: commands.preview_gate(root, stack, preview_file, migration_file))
    reporters.gate_text(result)
    finish(problems_found=bool(result.refused))


@main.command()
@stack_option
@root_option
@endpoint_option
@format_option(reporters.VERIFY)
def verify(stack: str, root: Path, endpoint: str | None, output_format: Format) -> None:
    """Check the live project against the declarations, one line per check.

    Exit 0 when every check holds, 1 when one fails, 2 when nothing could be checked.
    """
    report = run(lambda: commands.verify(root, stack, endpoint))
    reporters.VERIFY(output_format, stack, report)
    finish(problems_found=not report.ok)


def _expire_days(ctx: click.Context, param: click.Parameter, days: int) -> int:
    if (problem := check_snapshot_expire_days(days, datetime.now(UTC))) is not None:
        raise click.BadParameter(problem)
    return days


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option("--tables", metavar="T1,T2", help="Tables to snapshot: table or dataset.table, comma-separated.")
@click.option("--all", "all_tables", is_flag=True, help="Snapshot every declared table.")
@click.option(
    "--expire-days",
    type=int,
    callback=_expire_days,
    default=SNAPSHOT_EXPIRE_DAYS,
    show_default=True,
    help="Days until the snapshots expire; also the default table expiration of a new backup dataset.",
)
def snapshot(
    stack: str, root: Path, endpoint: str | None, tables: str | None, all_tables: bool, expire_days: int
) -> None:
    """Snapshot tables into <dataset>_backup before a forced recreation, and say how to restore them.

    Exit 0 when every snapshot was taken, 1 when one was refused or failed, 2 when nothing could be done.
    """
    if all_tables == (tables is not None):
        raise click.UsageError("pass either --tables T1,T2 or --all")
    result = run(lambda: commands.snapshot(root, stack, endpoint, tables, expire_days))
    reporters.snapshot_text(result)
    finish(problems_found=not result.report.ok)


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option(
    "--tables", metavar="T1,T2", help="Only these tables: table or dataset.table, comma-separated [default: all]."
)
@click.option("--apply", "apply_changes", is_flag=True, help="Snapshot, then migrate; without it nothing changes.")
@click.option(
    "--break-lock",
    metavar="RUN_ID",
    help="With --apply: first delete the locks that run holds (it is gone: README, runbook of migrate's lock).",
)
@format_option(reporters.MIGRATE)
def migrate(
    stack: str,
    root: Path,
    endpoint: str | None,
    tables: str | None,
    apply_changes: bool,
    break_lock: str | None,
    output_format: Format,
) -> None:
    """Bring live tables to the declaration without losing a row: renames, widened types, new keys and
    partitioning, by DDL in place or a checked rebuild.

    Exit 0 when every table has a lossless path (dry run) or now matches (--apply), 1 when one is refused
    or failed (that table is unchanged, the message says why), 2 when nothing could be done.
    """
    if break_lock is not None and not apply_changes:
        raise click.UsageError("--break-lock takes over a lock for a run: pass --apply too")
    report = run(lambda: commands.migrate(root, stack, endpoint, tables, apply_changes, reporters.progress, break_lock))
    reporters.MIGRATE(output_format, stack, report)
    finish(problems_found=not report.ok)


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option("--table", metavar="T", help="Only this table: table or dataset.table [default: every table].")
@format_option(reporters.HISTORY)
def history(stack: str, root: Path, endpoint: str | None, table: str | None, output_format: Format) -> None:
    """Every `migrate --apply` of the stack, one row per table per run, newest first (README: migrate).

    Exit 0 when the history was read (or does not exist yet), 2 when it could not be read.
    """
    reporters.HISTORY(output_format, run(lambda: commands.history(root, stack, endpoint, table)))
    finish(problems_found=False)


@main.command("import-file")
@stack_option
@root_option
@endpoint_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the file here [default: stdout].")
@click.option("--skip-verify", is_flag=True, help="Write it without checking the live project first.")
def import_file(stack: str, root: Path, endpoint: str | None, out: Path | None, skip_verify: bool) -> None:
    """A `pulumi import --file` document adopting the existing dataset and tables.

    It first runs verify and refuses (exit 1) while a declared dataset or table differs from the live one.
    """
    result = run(lambda: commands.import_file(root, stack, endpoint, skip_verify, out))
    reporters.import_file_text(result)
    finish(problems_found=result.document is None)
