"""Reporters for `diff`: the classifier's result as terminal text, JSON, or a pull-request comment."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Sequence

from infra.analysis.changes import BrokenContract, Change, DiffResult, ResourceChanges, Verdict

# rich's cell widths, word division and ratios are imported by the text report's functions: the JSON and
# Markdown reports never load rich (tests/test_architecture.py).

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


def contract_steps(result: DiffResult) -> list[str]:
    """Why a change that loses no data can still fail the prod gate: an application query stops working."""
    stack = result.stack or "prod"
    return [
        "Broken contracts: the applications' queries (contracts/) or views (views/) fail once this is deployed, and",
        f"`diff --stack {stack} --fail-on update-destructive` fails until each is fixed or approved:",
        "  change the query in this pull request (it is checked in its new form), keep what it relies on, or,",
        f"  once no application runs it, approve the table in tenant-bigquery:approveDataLoss of Pulumi.{stack}.yaml",
        '  (README, runbook "Change a column the applications use").',
    ]


def _procedures(result: DiffResult) -> list[list[str]]:
    """The live fixes first (they come before the merge), then the data-loss runbook, then lowered safeties,
    then broken contracts."""
    found = []
    if result.needing_live_fix():
        found.append(live_fix_steps(result))
    if result.needing_runbook():
        found.append(runbook(result))
    if result.lowering_safety():
        found.append(safety_steps(result))
    if result.breaking_contracts():
        found.append(contract_steps(result))
    return found


def _breaks(contract: BrokenContract) -> str:
    return f"breaks {contract.where}: {contract.problem}"


def _title(resource: ResourceChanges) -> str:
    return resource.name if resource.kind == "table" else f"{resource.kind} {resource.name}"


def _reason(change: Change) -> str:
    return f"[lowers a safety: {change.lowers_safety}] {change.reason}" if change.lowers_safety else change.reason


# ---------------------------------------------------------------- text

# Text and the style it is printed in ("" for none, else rich's style names: "bold red").
Span = tuple[str, str]
# How a styled run of text is printed: ANSI escapes in a terminal (`ansi`), as is elsewhere.
Styler = Callable[[str, str], str]


def render_text(result: DiffResult, width: int, styler: Styler | None = None) -> str:
    """The report as rich's Console(width=width) printed it, with the same wrapping of long lines."""
    heading = f"{result.old_label} -> {result.new_label}" + (f", stack {result.stack}" if result.stack else "")
    lines = _printed([(heading, "")], width, styler)
    for table in result.resources:
        approved = f" (approved in {result.stack})" if table.approved else ""
        title = [(_title(table), "bold"), (": ", ""), (str(table.verdict), _STYLES[table.verdict]), (approved, "")]
        lines += ["", *_printed(title, width, styler)]
        # A borderless grid keeps long reasons wrapped inside their own column.
        rows = [
            ([("  ", ""), (str(c.verdict), _STYLES[c.verdict])], [(c.path, "bold")], [(_reason(c), "")])
            for c in table.changes
        ]
        lines += _grid(rows, width, styler)
        if table.migration:
            lines.append(f"  {_migration_line(table)}")
        lines += [f"  {_breaks(contract)}" for contract in table.broken_contracts]
    lines += ["", *_printed([(_summary(result), "")], width, styler)]
    for steps in _procedures(result):
        lines += ["", *steps]
    return "\n".join(lines)


_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35"}


def ansi(*, colour: bool) -> Styler:
    """Escapes as rich writes them (attributes, then the colour); without colour, bold and dim only."""

    def styled(text: str, style: str) -> str:
        codes = ";".join(_SGR[word] for word in style.split() if colour or word in ("bold", "dim"))
        return f"\x1b[{codes}m{text}\x1b[0m" if codes and text else text

    return styled


# The layout is rich's, without its Console and Table: they took longer than the whole comparison on a
# report of a few hundred changes (scripts/benchmark.py). What follows is the part of rich.table and
# rich.text the report used, on rich's own word division, cell widths and ratios;
# tests/test_diffreport.py holds the output byte for byte equal to rich's.


def _printed(spans: list[Span], width: int, styler: Styler | None) -> list[str]:
    """Console.print of one text: wrapped at words, words longer than a line folded."""
    return [_styled(spans, line, styler) for line in _wrap("".join(t for t, _ in spans), width, "fold")]


# (no_wrap, overflow) of the grid's columns: the verdict, the path, the reason.
_GRID_COLUMNS = ((True, "ellipsis"), (False, "fold"), (False, "ellipsis"))
_GRID_PADDING = (2, 2, 0)  # Table.grid(padding=(0, 2)): two spaces right of every column but the last


def _grid(rows: Sequence[Sequence[list[Span]]], width: int, styler: Styler | None) -> list[str]:
    """Table.grid(padding=(0, 2)) of `rows` at `width`: wrapped cells, padded to their column's width."""
    from rich.cells import cell_len

    if not rows:
        return []
    texts = [["".join(t for t, _ in cell) for cell in row] for row in rows]
    widths = [
        min(max(max(map(cell_len, row[i].splitlines()), default=0) for row in texts) + _GRID_PADDING[i], width) or 1
        for i in range(len(_GRID_COLUMNS))
    ]
    if sum(widths) > width:
        widths = _collapsed(widths, [not no_wrap for no_wrap, _ in _GRID_COLUMNS], width)
    lines = []
    for row, text in zip(rows, texts, strict=True):
        cells = [
            [
                _styled(spans, line, styler) + " " * padding
                for line in _wrap(cell, column_width - padding, overflow, no_wrap=no_wrap, pad=True)
            ]
            if column_width > padding
            else [" " * column_width]  # a column squeezed into its padding shows nothing
            for spans, cell, column_width, padding, (no_wrap, overflow) in zip(
                row, text, widths, _GRID_PADDING, _GRID_COLUMNS, strict=True
            )
        ]
        for index in range(max(map(len, cells))):
            lines.append("".join(c[index] if index < len(c) else " " * w for c, w in zip(cells, widths, strict=True)))
    return lines


def _collapsed(widths: list[int], wrapable: list[bool], max_width: int) -> list[int]:
    """Table._calculate_column_widths past the width: the widest wrapable columns shrink to the next widest,
    then, if that is not enough, every column evenly."""
    from rich._ratio import ratio_reduce

    excess = sum(widths) - max_width
    while excess > 0:
        widest = max(w for w, wraps in zip(widths, wrapable, strict=True) if wraps)
        next_widest = max(w if wraps and w != widest else 0 for w, wraps in zip(widths, wrapable, strict=True))
        shrinking = [int(wraps and w == widest) for w, wraps in zip(widths, wrapable, strict=True)]
        if widest == next_widest:
            break
        widths = ratio_reduce(excess, shrinking, [min(excess, widest - next_widest)] * len(widths), widths)
        excess = sum(widths) - max_width
    if excess > 0:
        widths = ratio_reduce(excess, [1] * len(widths), widths, widths)
    return widths


# A printed line: where it starts and ends in the text, then what truncation or padding added.
_Line = tuple[int, int, str]


@functools.cache  # reasons repeat: a schema's 100 changed descriptions have one
def _wrap(text: str, width: int, overflow: str, *, no_wrap: bool = False, pad: bool = False) -> tuple[_Line, ...]:
    """Text.wrap: lines broken at words (folding longer words when overflow is "fold"), whitespace past the
    width dropped, lines still too long cut (with "…" when overflow is "ellipsis"), padded to the width."""
    from rich._wrap import divide_line
    from rich.cells import cell_len, set_cell_size

    lines: list[_Line] = []
    offset = 0
    for line in text.split("\n"):
        breaks = [] if no_wrap else divide_line(line, width, fold=overflow == "fold")
        for start, end in itertools.pairwise([0, *breaks, len(line)]):
            if not no_wrap and end - start > width:
                trailing = end - start - len(line[start:end].rstrip())
                end -= min(trailing, end - start - width)
            shown, added = line[start:end], ""
            size = cell_len(shown)
            if size > width:
                kept = set_cell_size(shown, width - 1 if overflow == "ellipsis" else width)
                prefix = kept if shown.startswith(kept) else kept[:-1]  # a wide character cut in half: a space
                end = start + len(prefix)
                added = kept[len(prefix) :] + ("…" if overflow == "ellipsis" else "")
            elif pad:
                added = " " * (width - size)
            lines.append((offset + start, offset + end, added))
        offset += len(line) + 1
    return tuple(lines)


def _styled(spans: list[Span], line: _Line, styler: Styler | None) -> str:
    """One printed line of `spans`; "…" takes the style of the character it stands for."""
    start, end, added = line
    text = "".join(t for t, _ in spans)
    if styler is None:
        return text[start:end] + added
    styles = [style for t, style in spans for _ in t]
    runs = itertools.groupby(range(start, end), key=lambda i: styles[i])
    printed = "".join(styler("".join(text[i] for i in run), style) for style, run in runs)
    if added.startswith("…"):
        return printed + styler("…", styles[end] if end < len(styles) else "") + added[1:]
    return printed + added


def _summary(result: DiffResult) -> str:
    unchanged = f"; {result.unchanged} unchanged" if result.unchanged else ""
    if not result.resources:
        return "No changes." if result.compares_files or result.stack else f"No table changes{unchanged}."
    counts = [
        f"{count} {kind}(s)"
        for kind in ("provider", "dataset", "table", "component")
        if (count := sum(r.kind == kind for r in result.resources))
    ]
    listed = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else counts[0]
    return f"{listed} changed, worst: {result.verdict}{unchanged}."


# ---------------------------------------------------------------- json


def render_json(result: DiffResult) -> str:
    with_stack = result.stack is not None
    document = {
        f"{kind}s": [_resource_json(t, with_stack) for t in result.resources if t.kind == kind]
        for kind in (("table", "dataset", "component", "provider") if with_stack else ("table",))
    }
    return json.dumps(document, indent=2)


def _resource_json(resource: ResourceChanges, with_stack: bool) -> dict[str, object]:
    document: dict[str, object] = {
        resource.kind: resource.name,
        "verdict": str(resource.verdict),
        "changes": [_change_json(c, with_stack) for c in resource.changes],
    }
    if with_stack:
        document["approved"] = resource.approved
    if resource.migration:
        document["migration"] = {"runs": list(resource.migration), "verdict_after": str(resource.gate_verdict)}
    if resource.broken_contracts:
        document["brokenContracts"] = [
            {"contract": c.contract, "line": c.line, "column": c.column, "problem": c.problem}
            for c in resource.broken_contracts
        ]
    return document


def _change_json(change: Change, with_stack: bool) -> dict[str, object]:
    document: dict[str, object] = {"path": change.path, "verdict": str(change.verdict), "reason": change.reason}
    if with_stack:
        document |= {"property": change.pulumi_property, "lowersSafety": change.lowers_safety}
    return document


def _migration_line(table: ResourceChanges) -> str:
    return f"migrate covers it (no row lost; {table.gate_verdict} after it): `migrate --apply` runs " + "; ".join(
        table.migration
    )


# ---------------------------------------------------------------- markdown


def render_markdown(result: DiffResult) -> str:
    """A pull-request comment: one line per table, its changes folded, and the runbook when needed."""
    import html  # only here: the text and JSON reports do without it

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
            *(f"- {html.escape(_breaks(contract), quote=False)}" for contract in table.broken_contracts),
            "",
            "</details>",
            "",
        ]
    for steps in _procedures(result):
        lines += ["```text", *steps, "```", ""]
    return "\n".join(lines)
