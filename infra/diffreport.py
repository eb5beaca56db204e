"""Reporters for `diff`: the classifier's result as terminal text, JSON, or a pull-request comment."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from infra.changes import Change, DiffResult, TableChanges, Verdict

if TYPE_CHECKING:
    from rich.console import Console

_STYLES = {
    Verdict.NOOP: "dim",
    Verdict.ADDED: "green",
    Verdict.UPDATE: "green",
    Verdict.UPDATE_DESTRUCTIVE: "yellow",
    Verdict.REPLACE: "bold red",
    Verdict.REMOVED: "bold red",
    Verdict.REJECTED: "bold magenta",
}


def runbook(result: DiffResult) -> list[str]:
    """The commands of the README's runbook for the tables that lose data, with their names filled in."""
    stack = result.stack or "prod"
    tables = ["DATASET.TABLE"] if result.compares_files else [t.name for t in result.needing_runbook()]
    return [
        f'Runbook for {", ".join(tables)} (README, runbook "Approve data loss in prod"):',
        "  1. Snapshot: " + "; ".join(f"python -m infra.cli snapshot --stack {stack} --tables {t}" for t in tables),
        f"  2. In a change of its own, list them under tenant-bigquery:approveDataLoss in Pulumi.{stack}.yaml;",
        f"     merge it and `pulumi up --stack {stack}` (a replace needs deletion_protection false in state first).",
        f"  3. Merge this change and `pulumi up --stack {stack}`; a replaced table comes back empty.",
        f"  4. Remove the approval and `pulumi up --stack {stack}`. A stack without protection needs 1 and 3 only.",
        "  Protection does not stop an in-place loss (a dropped column, a shorter partition expiration); the gate",
        f"  `diff --stack {stack} --fail-on update-destructive` does, until the table is approved.",
    ]


def live_fix_steps(result: DiffResult) -> list[str]:
    """Changes the provider would only do by recreating (a new key) or not at all (a removed partition
    expiration): `migrate` makes them on the live tables first, and nothing is lost."""
    stack = result.stack or "prod"
    tables = result.needing_live_fix()
    return [
        f"`python -m infra.cli migrate --stack {stack} --apply` changes the live tables in place first (the",
        "deploy runs it before `pulumi up --refresh`), so nothing is recreated or left undone. It runs:",
        *(f"     {fix};" for t in tables for fix in t.live_fixes),
    ]


def safety_steps(result: DiffResult) -> list[str]:
    """Why the prod gate fails on a change that loses no data yet."""
    stack = result.stack or "prod"
    return [
        f"Lowered safeties of protected stack {stack}: `diff --stack {stack} --fail-on update-destructive` fails",
        "until each is approved like data loss:",
        *(f"  {_title(t)}: {'; '.join(t.lowered_safeties)}" for t in result.lowering_safety()),
        f"  Approve: list each under tenant-bigquery:approveDataLoss in Pulumi.{stack}.yaml (a table as",
        "  dataset.table, the dataset by its id), reviewed, in the same change.",
    ]


def _procedures(result: DiffResult) -> list[list[str]]:
    """The live fixes first (they come before the merge), then the data-loss runbook, then lowered safeties."""
    found = []
    if result.needing_live_fix():
        found.append(live_fix_steps(result))
    if result.needing_runbook():
        found.append(runbook(result))
    if result.lowering_safety():
        found.append(safety_steps(result))
    return found


def _title(resource: TableChanges) -> str:
    return resource.name if resource.kind == "table" else f"{resource.kind} {resource.name}"


def _reason(change: Change) -> str:
    return f"[lowers a safety: {change.lowers_safety}] {change.reason}" if change.lowers_safety else change.reason


# ---------------------------------------------------------------- text


def render_text(result: DiffResult, out: Console) -> None:
    # rich only here: the JSON and markdown reports do without it.
    from rich.markup import escape
    from rich.table import Table as RichTable

    heading = f"{result.old_label} -> {result.new_label}"
    out.print(escape(heading + (f", stack {result.stack}" if result.stack else "")))
    for table in result.resources:
        approved = f" (approved in {result.stack})" if table.approved else ""
        out.print(f"\n[bold]{escape(_title(table))}[/bold]: {_styled(table.verdict)}{escape(approved)}")
        # A borderless grid keeps long reasons wrapped inside their own column.
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_column()
        for change in table.changes:
            grid.add_row(f"  {_styled(change.verdict)}", f"[bold]{escape(change.path)}[/bold]", escape(_reason(change)))
        out.print(grid)
        if table.migration:
            out.print(escape(f"  {_migration_line(table)}"), soft_wrap=True)
    out.print(f"\n{_summary(result)}")
    for steps in _procedures(result):
        out.print()
        for line in steps:
            out.print(escape(line), soft_wrap=True)


def _styled(verdict: Verdict) -> str:
    return f"[{_STYLES[verdict]}]{verdict}[/{_STYLES[verdict]}]"


def _summary(result: DiffResult) -> str:
    unchanged = f"; {result.unchanged} unchanged" if result.unchanged else ""
    if not result.resources:
        return "No changes." if result.compares_files or result.stack else f"No table changes{unchanged}."
    counts = [
        f"{count} {kind}(s)"
        for kind in ("dataset", "table", "component")
        if (count := sum(r.kind == kind for r in result.resources))
    ]
    listed = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else counts[0]
    return f"{listed} changed, worst: {result.verdict}{unchanged}."


# ---------------------------------------------------------------- json


def render_json(result: DiffResult) -> str:
    with_stack = result.stack is not None
    document = {
        f"{kind}s": [_resource_json(t, with_stack) for t in result.resources if t.kind == kind]
        for kind in (("table", "dataset", "component") if with_stack else ("table",))
    }
    return json.dumps(document, indent=2)


def _resource_json(resource: TableChanges, with_stack: bool) -> dict[str, object]:
    document: dict[str, object] = {
        resource.kind: resource.name,
        "verdict": str(resource.verdict),
        "changes": [_change_json(c, with_stack) for c in resource.changes],
    }
    if with_stack:
        document["approved"] = resource.approved
    if resource.migration:
        document["migration"] = {"runs": list(resource.migration), "verdict_after": str(resource.gate_verdict)}
    return document


def _change_json(change: Change, with_stack: bool) -> dict[str, object]:
    document: dict[str, object] = {"path": change.path, "verdict": str(change.verdict), "reason": change.reason}
    if with_stack:
        document |= {"property": change.pulumi_property, "lowersSafety": change.lowers_safety}
    return document


def _migration_line(table: TableChanges) -> str:
    return f"migrate covers it (no row lost; {table.gate_verdict} after it): `migrate --apply` runs " + "; ".join(
        table.migration
    )


# ---------------------------------------------------------------- markdown


def render_markdown(result: DiffResult) -> str:
    """A pull-request comment: one line per table, its changes folded, and the runbook when needed."""
    stack = f", stack `{result.stack}`" if result.stack else ""
    lines = [
        "### Changes: what `pulumi up` does to the data",
        "",
        f"{html.escape(result.old_label)} → {html.escape(result.new_label)}{stack}. {_summary(result)}",
        "",
    ]
    for table in result.resources:
        approved = f" (approved in {result.stack})" if table.approved else ""
        kind = "" if table.kind == "table" else f"{table.kind} "
        lines += [
            f"<details><summary>{kind}<code>{html.escape(table.name)}</code>: <b>{table.verdict}</b>{approved}, "
            f"{len(table.changes)} change(s)</summary>",
            "",
            *(f"- `{c.path}` **{c.verdict}**: {html.escape(_reason(c), quote=False)}" for c in table.changes),
            *([f"- {html.escape(_migration_line(table), quote=False)}"] if table.migration else []),
            "",
            "</details>",
            "",
        ]
    for steps in _procedures(result):
        lines += ["```text", *steps, "```", ""]
    return "\n".join(lines)
