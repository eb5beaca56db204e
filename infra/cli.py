"""Offline command line: `python -m infra.cli COMMAND`. Thin: parse, call the core, report.

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

from infra.catalog import Catalog, CatalogError, count_columns, load_catalog
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


def fail_with_problems(error: CatalogError) -> NoReturn:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(error.problems)} problem(s); nothing was changed.", err=True)
    sys.exit(1)


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
    """Declarative BigQuery datasets and tables: offline checks and reports."""


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
    grid = RichTable(show_lines=False)
    for heading in ("table", "columns", "partitioning", "filter", "clustering", "protect", "deletion prot.", "recreate"):
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


if __name__ == "__main__":
    main()
