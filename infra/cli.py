"""Command line: `python -m infra.cli COMMAND`. Thin: parse, call the core, report.

Offline, except verify, snapshot, migrate and import-file, which call the BigQuery API (infra/live.py).

Exit codes:
- 0: success.
- 1: problems found. validate, plan and docs: invalid declarations or stack config; docs --check: the
  data dictionary is out of date; diff: a change at or above --fail-on; verify: a check failed;
  snapshot: one was refused or failed; import-file: refused because the live project differs, or
  the program registers a resource it cannot import; migrate: a table was refused or failed.
- 2: usage errors. diff, verify, snapshot and import-file also exit 2 when nothing could be checked:
  invalid declarations or stack config, missing or refused credentials, an unreachable API, an
  unwritable --out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from infra import basediff, changes, diffreport, planreport
from infra.catalog import Catalog, Table, catalog_warnings, load_catalog
from infra.documents import display_path
from infra.problems import DeclarationError
from infra.schema import count_columns
from infra.settings import Settings, list_stacks, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPO_ROOT,
    show_default="the repository",
    help="Folder holding stacks/, schemas/ and Pulumi.<stack>.yaml.",
)
stack_option = click.option("--stack", "stack", required=True, help="Stack name: reads Pulumi.<stack>.yaml.")


def console() -> Console:
    # Piped output (CI logs, PR comments) gets a wide table instead of rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def fail_with_problems(error: DeclarationError, exit_code: int = 1) -> NoReturn:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(error.problems)} problem(s); nothing was changed.", err=True)
    sys.exit(exit_code)


def load_validated(root: Path) -> Catalog:
    """The catalog, or exit 1 listing every problem."""
    try:
        return load_catalog(root)
    except DeclarationError as error:
        fail_with_problems(error)


def require_stack(root: Path, stack: str) -> None:
    if not (root / f"Pulumi.{stack}.yaml").is_file():
        known = ", ".join(list_stacks(root)) or "none"
        raise click.BadParameter(f"no Pulumi.{stack}.yaml in {root}; known stacks: {known}", param_hint="--stack")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Declarative BigQuery datasets and tables: offline checks and reports, live checks and backups."""


@main.command()
@root_option
def validate(root: Path) -> None:
    """Check every declaration, schema and stack config against BigQuery's rules."""
    problems = []
    catalog = None
    try:
        catalog = load_catalog(root)
    except DeclarationError as error:
        problems += error.problems
    stacks = list_stacks(root)
    for stack in stacks:
        try:
            load_settings(root, stack, catalog)
        except DeclarationError as error:
            problems += error.problems
    if problems:
        fail_with_problems(DeclarationError(problems))
    assert catalog is not None
    for warning in catalog_warnings(catalog):
        click.echo(f"warning: {warning}", err=True)
    tables = catalog.tables()
    columns = sum(count_columns(t.schema) for t in tables)
    click.echo(
        f"✓ {len(catalog.datasets)} dataset(s), {len(tables)} table(s), {columns:,} column(s) valid; "
        f"stacks checked: {', '.join(stacks) or 'none'}"
    )


@main.command()
@stack_option
@root_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan(stack: str, root: Path, output_format: str) -> None:
    """Run the real Pulumi program under mocks and show what the stack declares."""
    from infra.mockrun import plan_stack

    require_stack(root, stack)
    try:
        result = plan_stack(root, stack)
    except DeclarationError as error:
        fail_with_problems(error)
    if output_format == "json":
        click.echo(planreport.render_json(result))
    else:
        planreport.render_text(result, console())


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
    help="Compare what the program registers for this stack at --base and in the working tree: every input "
    "and option of the dataset, tables and component; approveDataLoss marks approved ones.",
)
@root_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@click.option(
    "--fail-on",
    type=click.Choice([v.value for v in changes.Verdict]),
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
    output_format: str,
    fail_on: str | None,
) -> None:
    """Say what each change does to the data, before `pulumi up`."""
    if (old_file is None) != (new_file is None):
        raise click.UsageError("--old and --new go together")
    if old_file is not None and (base or stack):
        raise click.UsageError("--old/--new compare two files; --base and --stack compare the catalog")
    if external and old_file is None:
        raise click.UsageError("--external applies to --old/--new; catalog tables are native tables")
    if stack:
        require_stack(root, stack)
    try:
        if old_file is not None and new_file is not None:
            result = basediff.diff_schema_files(old_file, new_file, external=external)
        else:
            result = basediff.diff_against_base(root, base, stack)
    except DeclarationError as error:
        fail_with_problems(error, exit_code=2)
    except basediff.BaseRefError as error:
        raise click.UsageError(f"--base: {error}") from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output_format == "json":
        click.echo(diffreport.render_json(result))
    elif output_format == "markdown":
        click.echo(diffreport.render_markdown(result))
    else:
        diffreport.render_text(result, console())
    if fail_on is not None and result.fails(changes.Verdict(fail_on)):
        sys.exit(1)


@main.command()
@root_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the committed file is not what would be written.")
def docs(root: Path, check: bool) -> None:
    """Render the data dictionary, docs/tables.md, from the declarations and schemas."""
    from infra.docs import DOCS_FILE, render_data_dictionary

    catalog = load_validated(root)
    target = root / DOCS_FILE
    text = render_data_dictionary(catalog)
    if check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            command = "python -m infra.cli docs" + ("" if root == REPO_ROOT else f" --root {root}")
            click.echo(f"{display_path(target)} is out of date; run `{command}` and commit the result.", err=True)
            sys.exit(1)
        click.echo(f"✓ {display_path(target)} is up to date")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {display_path(target)}")


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
    replace is approved (a table in approveDataLoss, any table in a stack without protect, or with
    --migration a table `migrate` brings to the declaration first), 1 when one is not, 2 when a file or
    the stack config cannot be read.
    """
    from infra import previewgate

    require_stack(root, stack)
    try:
        settings = load_settings(root, stack, load_catalog(root))
    except DeclarationError as error:
        fail_with_problems(error, exit_code=2)
    reading = preview_file
    try:
        migrated: frozenset[str] = frozenset()
        if migration_file is not None:
            reading = migration_file
            migrated = previewgate.migrated_tables(
                previewgate.load_document(migration_file.read_text(encoding="utf-8"))
            )
        reading = preview_file
        document = previewgate.load_document(preview_file.read_text(encoding="utf-8"))
        steps = previewgate.destructive_steps(document, settings, migrated)
        others = previewgate.other_changes(document)
    except OSError as error:
        click.echo(f"error: cannot read {display_path(reading)}: {error.strerror or error}", err=True)
        sys.exit(2)
    except (UnicodeDecodeError, previewgate.PreviewDocumentError) as error:
        click.echo(f"error: {display_path(reading)}: {error}", err=True)
        sys.exit(2)
    if others:
        click.echo(f"{len(others)} other change(s):")
        for line in others:
            click.echo(line)
    for step in steps:
        click.echo(str(step))
    refused = [step for step in steps if step.approved_by is None]
    if refused:
        click.echo(
            f"refused: {len(refused)} delete(s) or replace(s) not approved in Pulumi.{stack}.yaml; name each table in "
            'tenant-bigquery:approveDataLoss (runbook "Approve data loss in prod"), or change the declaration',
            err=True,
        )
        sys.exit(1)
    click.echo(f"✓ nothing is deleted or replaced without approval ({len(steps)} approved).")


# ---------------------------------------------------------------- live commands (the BigQuery API)


def _endpoint_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter("must be a URL such as http://127.0.0.1:9050")
    return value


endpoint_option = click.option(
    "--endpoint",
    metavar="URL",
    callback=_endpoint_url,
    help="A local BigQuery API server, used with anonymous credentials [default: $BIGQUERY_EMULATOR_HOST, "
    "else Google's API with Application Default Credentials].",
)


def load_for_live(root: Path, stack: str) -> tuple[Catalog, Settings]:
    """The validated catalog and stack settings, as for plan; invalid input exits 2: nothing was checked."""
    require_stack(root, stack)
    try:
        catalog = load_catalog(root)
        return catalog, load_settings(root, stack, catalog)
    except DeclarationError as error:
        fail_with_problems(error, exit_code=2)


def live_failure(error: Exception) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(stack: str, root: Path, endpoint: str | None, output_format: str) -> None:
    """Check the live project against the declarations, one line per check.

    Exit 0 when every check holds, 1 when one fails, 2 when nothing could be checked.
    """
    from infra import live

    catalog, settings = load_for_live(root, stack)
    try:
        report = live.verify(live.connect(settings.project, endpoint), catalog, settings)
    except live.LiveError as error:
        live_failure(error)
    if output_format == "json":
        click.echo(json.dumps({"stack": stack, **report.to_json()}, indent=2))
    else:
        click.echo(f"Stack {stack}: project {report.project}, checked through {report.target}")
        for check in report.checks:
            click.echo(str(check))
        failed = len(report.failures)
        total = len(report.checks)
        click.echo(f"{failed} of {total} checks failed." if failed else f"All {total} checks hold.")
    sys.exit(0 if report.ok else 1)


def select_tables(catalog: Catalog, names: str | None, all_tables: bool) -> list[Table]:
    """--tables (table or dataset.table, comma-separated) or --all, as declared tables."""
    if all_tables == (names is not None):
        raise click.UsageError("pass either --tables T1,T2 or --all")
    declared = catalog.tables()
    if all_tables:
        return declared
    chosen: list[Table] = []
    for name in (n.strip() for n in (names or "").split(",") if n.strip()):
        matches = [t for t in declared if name in (t.key, t.table_id)]
        if len(matches) != 1:
            why = "names no declared table" if not matches else "is declared in several datasets; write dataset.table"
            known = ", ".join(t.key for t in declared)
            raise click.BadParameter(f"{name!r} {why} (declared: {known})", param_hint="--tables")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    if not chosen:
        raise click.BadParameter("name at least one table", param_hint="--tables")
    return chosen


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option("--tables", metavar="T1,T2", help="Tables to snapshot: table or dataset.table, comma-separated.")
@click.option("--all", "all_tables", is_flag=True, help="Snapshot every declared table.")
@click.option(
    "--expire-days",
    type=click.IntRange(min=1),
    # The prod runbook can take two deploys that each wait up to 30 days for approval (GitHub fails a
    # waiting job after 30 days), plus review time: 90 days outlasts it.
    default=90,
    show_default=True,
    help="Days until the snapshots expire; also the default table expiration of a new backup dataset.",
)
def snapshot(
    stack: str, root: Path, endpoint: str | None, tables: str | None, all_tables: bool, expire_days: int
) -> None:
    """Snapshot tables into <dataset>_backup before a forced recreation, and say how to restore them.

    Exit 0 when every snapshot was taken, 1 when one was refused or failed, 2 when nothing could be done.
    """
    from infra import live

    catalog, settings = load_for_live(root, stack)
    chosen = select_tables(catalog, tables, all_tables)
    try:
        report = live.snapshot(live.connect(settings.project, endpoint), settings, chosen, expire_days)
    except live.SnapshotRefused as error:
        click.echo(f"refused: {error}", err=True)
        sys.exit(1)
    except live.LiveError as error:
        live_failure(error)
    for dataset in report.created_datasets:
        click.echo(
            f"created backup dataset {dataset} (default table expiration {expire_days} d; "
            "the source dataset's ACL and default key)"
        )
    taken_at, expires = f"{report.taken_at:%Y-%m-%d %H:%M:%S}", f"{report.expires:%Y-%m-%d %H:%M}"
    if report.snapshots:
        click.echo(f"Snapshots taken at {taken_at} UTC, expiring {expires} UTC:")
    for taken in report.snapshots:
        new_table, over = taken.restore_to_new_table(), taken.restore_over_source()
        click.echo(f"✓ {taken.source} -> {taken.snapshot}")
        click.echo(f"    restore into a new table: {new_table.bq}")
        click.echo(f"      python: {new_table.python}")
        click.echo(f"    or over the table, losing every row written to it after {taken_at} UTC: {over.bq}")
        click.echo(f"      python: {over.python}")
    for table, why in report.failures:
        click.echo(f"✗ {table}: {why}")
    if report.snapshots:
        click.echo(
            "Restore into a new table first and compare; copy the rows you need into the live table "
            "(INSERT INTO <table> (columns) SELECT columns FROM <restored table>), which also keeps a recreated "
            "table's new schema. A restore over the table puts back the snapshot's rows and schema as they were."
        )
    if not report.ok:
        kept = f"; kept: {len(report.snapshots)} snapshot(s) listed above" if report.snapshots else ""
        created = f", created {', '.join(report.created_datasets)}" if report.created_datasets else ""
        click.echo(f"{len(report.failures)} of {len(chosen)} snapshots failed{kept}{created}.", err=True)
        sys.exit(1)


def _progress(total: int) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    """A progress bar on a terminal, else one line per table on stderr."""
    if sys.stderr.isatty():
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
            click.echo(f"[{done[0]}/{total}] {table}: {status}", err=True)

    return line, lambda: None


@main.command()
@stack_option
@root_option
@endpoint_option
@click.option(
    "--tables", metavar="T1,T2", help="Only these tables: table or dataset.table, comma-separated [default: all]."
)
@click.option("--apply", "apply_changes", is_flag=True, help="Snapshot, then migrate; without it nothing changes.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def migrate(
    stack: str, root: Path, endpoint: str | None, tables: str | None, apply_changes: bool, output_format: str
) -> None:
    """Bring live tables to the declaration without losing a row: renames, widened types, new keys and
    partitioning, by DDL in place or a checked rebuild.

    Exit 0 when every table has a lossless path (dry run) or now matches (--apply), 1 when one is refused
    or failed (that table is unchanged, the message says why), 2 when nothing could be done.
    """
    from infra import live, live_migrate, migratereport

    catalog, settings = load_for_live(root, stack)
    chosen = select_tables(catalog, tables, tables is None)
    progress, stop = _progress(len(chosen))
    try:
        report = live_migrate.migrate(
            live.connect(settings.project, endpoint), settings, chosen, apply=apply_changes, progress=progress
        )
    except live.LiveError as error:
        stop()
        live_failure(error)
    stop()
    if output_format == "json":
        click.echo(json.dumps({"stack": stack, **report.to_json()}, indent=2))
    else:
        for text in migratereport.render_text(stack, report.to_json()):
            click.echo(text)
    sys.exit(0 if report.ok else 1)


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
    from infra import adoption
    from infra.mockrun import plan_stack

    catalog, settings = load_for_live(root, stack)
    if not skip_verify:
        from infra import live

        try:
            report = live.verify(live.connect(settings.project, endpoint), catalog, settings)
        except live.LiveError as error:
            live_failure(error)
        blocking = report.import_blockers
        if blocking:
            for check in blocking:
                click.echo(str(check), err=True)
            click.echo(
                f"refused: {len(blocking)} difference(s) between the live project and the declarations; align "
                'them first (runbook "Adopt what the bootstrap processor created"), or pass --skip-verify to '
                "import the live state as it is.",
                err=True,
            )
            sys.exit(1)
    try:
        document = adoption.import_document(plan_stack(root, stack))
    except adoption.AdoptionError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as error:
            click.echo(f"error: cannot write {display_path(out)}: {error.strerror or error}", err=True)
            sys.exit(2)
    click.echo(
        f"{len(document['resources'])} resources; next: pulumi import --stack {stack} "
        f"--file {display_path(out) if out else 'FILE'} --generate-code=false",
        err=True,
    )


if __name__ == "__main__":
    main()
