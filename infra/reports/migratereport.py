"""Text and markdown for `migrate`: per table its status, every statement and API call with why and what it
costs, refusals, what is left to `pulumi up`, and after --apply the verify checks. Pure: it reads the report's
JSON form."""

from __future__ import annotations

import re
from typing import Any

from infra.analysis.cost import CAP_SETTING, PRICE_SETTING, bytes_text, usd_text

STATUS_TEXT = {
    "nothing": "nothing to migrate",
    "planned": "to migrate",
    "refused": "refused, nothing changed",
    "applied": "migrated",
    "failed": "failed",
}


def render_text(stack: str, report: dict[str, Any]) -> list[str]:
    mode = "applied table by table" if report["apply"] else "dry run, nothing changed; --apply runs it"
    lines = [f"Stack {stack}: project {report['project']} through {report['target']} ({mode})"]
    if report.get("run_id"):
        lines.append(
            f"Run {report['run_id']}: its locks and history rows (python -m infra.cli history --stack {stack})"
        )
    for table in report["tables"]:
        lines += _table_lines(table)
    counts: dict[str, int] = {}
    for table in report["tables"]:
        counts[table["status"]] = counts.get(table["status"], 0) + 1
    summary = ", ".join(f"{n} {STATUS_TEXT[status]}" for status, n in counts.items())
    lines.append(total_text(report["cost"]))
    lines.append(f"{len(report['tables'])} table(s): {summary}.")
    return lines


def total_text(total: dict[str, Any]) -> str:
    """The run's cost in one line: what the tables it migrates process, at the stack's price, and the cap."""
    cap = f"{total['max_bytes']} bytes ({bytes_text(total['max_bytes'])})" if total["max_bytes"] else "none"
    known = "" if not total["unknown"] else f" ({total['unknown']} quer(ies) unknown)"
    return (
        f"Cost: {_amount(total)}{known} at ${total['usd_per_tib']:g} per TiB on demand ({PRICE_SETTING}); "
        f"cap per --apply: {cap} ({CAP_SETTING})."
    )


def _amount(cost: dict[str, Any]) -> str:
    if cost["bytes_billed"] is None:
        return "unknown"
    return f"{bytes_text(cost['bytes_billed'])} billed, {usd_text(cost['usd'])}"


def _query_text(query: dict[str, Any]) -> str:
    if query["bytes_processed"] is None:
        return f"unknown: {query['unknown']}"
    return (
        f"{bytes_text(query['bytes_processed'])} processed, {bytes_text(query['bytes_billed'])} billed, "
        f"{usd_text(query['usd'])} ({query['basis']})"
    )


def _table_lines(table: dict[str, Any]) -> list[str]:
    mark = {"refused": "✗", "failed": "✗"}.get(table["status"], "✓")
    head = f"{mark} {table['table']}: {STATUS_TEXT[table['status']]}"
    if table["rebuild"]:
        head += f" (rebuild through {table['rebuild']})"
    lines = [head]
    if table["snapshot"]:
        lines.append(f"  snapshot first: {table['snapshot']}")
    queries = (table["cost"] or {}).get("queries", [])
    for check in table["checks"]:
        lines.append(f"  data check: {check['what']}: no row may match {check['predicate']}")
    lines += [f"  cost of the data checks (one query): {_query_text(q)}" for q in queries if q["what"] == "data checks"]
    for number, step in enumerate(table["steps"], 1):
        first, *rest = step["action"].splitlines()
        lines.append(f"  {number}. {first}")
        lines += [f"     {line}" for line in rest]
        lines.append(f"     why: {step['reason']}")
        lines += [f"     cost: {_query_text(q)}" for q in queries if q["what"] == f"step {number}"]
    if table["cost"] and queries:
        lines.append(f"  cost of the table: {_amount(table['cost'])}")
    lines += [f"  refused: {why}" for why in table["refusals"]]
    if table["message"]:
        lines.append(f"  {table['message']}")
    lines += [f"  left to pulumi up: {note}" for note in table["notes"]]
    failing = [c for c in table["verify"] if not c["ok"]]
    if table["verify"]:
        held = len(table["verify"]) - len(failing)
        lines.append(f"  verify: {held} of {len(table['verify'])} checks hold")
        lines += [f"  ✗ {c['subject']} {c['check']}: {c['detail']} (pulumi up applies it in place)" for c in failing]
    return lines


def render_markdown(stack: str, report: dict[str, Any]) -> list[str]:
    """The deploy's run summary: a row per table with its cost, the total, and the text report in a fence."""
    mode = "applied" if report["apply"] else "dry run, nothing changed"
    lines = [f"### migrate: stack {stack} ({mode})", "", "| table | status | bytes billed | cost |"]
    lines.append("|---|---|---|---|")
    for table in report["tables"]:
        cost = table["cost"]
        billed = bytes_text(cost["bytes_billed"]) if cost else ""
        amount = usd_text(cost["usd"]) if cost else ""
        lines.append(f"| {table['table']} | {STATUS_TEXT[table['status']]} | {billed} | {amount} |")
    text = render_text(stack, report)
    # Longer than any run of backticks in it (table ids are quoted in them), so nothing inside renders.
    fence = "`" * max(3, 1 + max((len(run) for line in text for run in re.findall(r"`+", line)), default=0))
    return [*lines, "", total_text(report["cost"]), "", fence + "text", *text, fence]
