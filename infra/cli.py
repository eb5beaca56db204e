"""Command line: `python -m infra.cli COMMAND`. Thin: parse, call the core, report.

Offline, except verify, snapshot and import-file, which call the BigQuery API (infra/live.py).

Exit codes: 0 success, 1 problems found (invalid input, failed checks), 2 usage errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table as RichTable

from infra import changes, diffreport
from infra.catalog import Catalog, CatalogError, Table, count_columns, display_path, load_catalog
from infra.settings import SECRET_MASK, Settings, list_stacks, load_settings, read_stack_file

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_TYPE = "gcp:bigquery/table:Table"
DATASET_TYPE = "gcp:bigquery/dataset:Dataset"

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


def fail_with_problems(error: CatalogError, exit_code: int = 1) -> NoReturn:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(error.problems)} problem(s); nothing was changed.", err=True)
    sys.exit(exit_code)


def load_validated(root: Path, stack: str | None = None) -> tuple[Catalog, Settings | None]:
    """The catalog and (optionally) one stack's settings, or exit 1 listing every problem."""
    try:
        catalog = load_catalog(root)
        settings = load_settings(root, stack, catalog) if stack else None
    except CatalogError as error:
        fail_with_problems(error)
    return catalog, settings


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
    except CatalogError as error:
        problems += error.problems
    stacks = list_stacks(root)
    for stack in stacks:
        try:
            load_settings(root, stack, catalog)
        except CatalogError as error:
            problems += error.problems
    if problems:
        fail_with_problems(CatalogError(problems))
    assert catalog is not None
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
    load_validated(root, stack)
    result = plan_stack(root, stack)
    values, secret_keys = read_stack_file(root, stack)
    config = {key: SECRET_MASK if key in secret_keys else value for key, value in sorted(values.items())}
    if output_format == "json":
        document = {
            "stack": stack,
            "config": config,
            "resources": [r.to_json() for r in sorted(result.resources, key=_resource_order)],
            "outputs": result.outputs,
        }
        click.echo(json.dumps(document, indent=2, sort_keys=False))
        return
    render_plan_text(stack, config, sorted(result.resources, key=_resource_order))


def _resource_order(resource: Any) -> tuple[int, str]:
    rank = {DATASET_TYPE: 1, TABLE_TYPE: 2}.get(resource.type, 0)
    return rank, resource.name


def _partitioning_text(inputs: dict[str, Any]) -> str:
    if "timePartitioning" in inputs:
        spec = inputs["timePartitioning"]
        text = f"{spec['type']} on {spec.get('field') or '_PARTITIONTIME'}"
        if spec.get("expirationMs"):
            text += f", {int(spec['expirationMs']) // 86_400_000} d"
        return text
    if "rangePartitioning" in inputs:
        spec = inputs["rangePartitioning"]
        rng = spec["range"]
        return f"range {spec['field']} [{rng['start']}, {rng['end']}) step {rng['interval']}"
    return "-"


def _access_lines(inputs: dict[str, Any]) -> list[str]:
    if "accesses" not in inputs:
        return ["access: BigQuery's default ACL (tenant-bigquery:access is not set)"]
    prefixes = {"specialGroup": "", "groupByEmail": "group:", "userByEmail": "user:"}
    return ["access (the whole ACL):"] + [
        f"  {entry['role']} " + next(prefix + entry[field] for field, prefix in prefixes.items() if field in entry)
        for entry in inputs["accesses"]
    ]


def _key_text(configuration: dict[str, Any] | None) -> str:
    key = (configuration or {}).get("kmsKeyName")
    return f"customer-managed key {key}" if key else "Google-managed key"


def render_plan_text(stack: str, config: dict[str, Any], resources: list[Any]) -> None:
    out = console()
    out.print(f"Stack [bold]{stack}[/bold]: project {config.get('gcp:project', '?')}")
    for dataset in (r for r in resources if r.type == DATASET_TYPE):
        inputs = dataset.inputs
        out.print(
            f"Dataset [bold]{inputs['datasetId']}[/bold] in {inputs.get('location')}: "
            f"protect={dataset.options['protect']}, "
            f"delete contents on destroy={inputs.get('deleteContentsOnDestroy', False)}, "
            f"labels={inputs.get('labels') or {}}"
        )
        for line in _access_lines(inputs):
            out.print(f"  {line}")
        tables = [r.inputs for r in resources if r.type == TABLE_TYPE and r.inputs["datasetId"] == inputs["datasetId"]]
        with_key = [t for t in tables if (t.get("encryptionConfiguration") or {}).get("kmsKeyName")]
        out.print(
            f"  encryption: {_key_text(inputs.get('defaultEncryptionConfiguration'))}; "
            f"tables with a customer-managed key: {len(with_key)} of {len(tables)}"
        )
    grid = RichTable(show_lines=False)
    for heading in (
        "table",
        "columns",
        "partitioning",
        "filter",
        "clustering",
        "protect",
        "deletion prot.",
        "recreate",
    ):
        grid.add_column(heading)
    for table in (r for r in resources if r.type == TABLE_TYPE):
        inputs, options = table.inputs, table.options
        recreate = []
        if options.get("replacementTrigger") is not None:
            recreate.append(f"token {options['replacementTrigger']}")
        if options.get("replaceOnChanges"):
            recreate.append("on schema change")
        grid.add_row(
            f"{inputs['datasetId']}.{inputs['tableId']}",
            str(len(json.loads(inputs["schema"]))),
            _partitioning_text(inputs),
            "required" if inputs.get("requirePartitionFilter") else "-",
            ", ".join(inputs.get("clusterings") or []) or "-",
            "yes" if options["protect"] else "no",
            "yes" if inputs.get("deletionProtection") else "no",
            "; ".join(recreate) or "-",
        )
    out.print(grid)


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
    help="Also apply this stack's config: settings whose change replaces tables (recreate tokens, "
    "recreateOnSchemaChange, key, project, suffix, location) and approveDataLoss.",
)
@root_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@click.option(
    "--fail-on",
    type=click.Choice([v.value for v in changes.Verdict]),
    help="Exit 1 if a change is at least this bad (noop < added < update < update-destructive < replace < removed "
    "< rejected). With --stack, tables in its approveDataLoss do not count.",
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
    """Say what each schema or table change does to the data, before `pulumi up`."""
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
            result = changes.diff_schema_files(old_file, new_file, external=external)
        else:
            result = changes.diff_against_base(root, base, stack)
    except CatalogError as error:
        fail_with_problems(error, exit_code=2)
    except changes.BaseRefError as error:
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

    catalog, _ = load_validated(root)
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
    except CatalogError as error:
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
    default=30,
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
        click.echo(f"created backup dataset {dataset} (default table expiration {expire_days} d)")
    taken_at, expires = f"{report.taken_at:%Y-%m-%d %H:%M:%S}", f"{report.expires:%Y-%m-%d %H:%M}"
    click.echo(f"Snapshots taken at {taken_at} UTC, expiring {expires} UTC:")
    for taken in report.snapshots:
        bq, python = taken.restore_commands()
        click.echo(f"✓ {taken.source} -> {taken.snapshot}")
        click.echo(f"    restore: {bq}")
        click.echo(f"    python:  {python}")
    for table, why in report.failures:
        click.echo(f"✗ {table}: {why}")
    if report.snapshots:
        click.echo(
            "A restore puts back the rows and the schema of the snapshot time. To keep a recreated table's new "
            "schema, copy the rows instead: INSERT INTO <table> (columns) SELECT columns FROM <snapshot>."
        )
    if not report.ok:
        click.echo(f"{len(report.failures)} of {len(chosen)} snapshots failed.", err=True)
        sys.exit(1)


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
        # Tables nobody declares are not imported; every other difference would be adopted as it is.
        blocking = [check for check in report.failures if check.name != live.UNDECLARED]
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
        out.write_text(text, encoding="utf-8")
    click.echo(
        f"{len(document['resources'])} resources; next: pulumi import --stack {stack} "
        f"--file {display_path(out) if out else 'FILE'} --generate-code=false",
        err=True,
    )


if __name__ == "__main__":
    main()
