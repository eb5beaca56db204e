"""Text for `migrate`: per table its status, every statement and API call with why, refusals, what is
left to `pulumi up`, and after --apply the verify checks. Pure: it reads the report's JSON form."""

from __future__ import annotations

from typing import Any

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
    lines.append(f"{len(report['tables'])} table(s): {summary}.")
    return lines


def _table_lines(table: dict[str, Any]) -> list[str]:
    mark = {"refused": "✗", "failed": "✗"}.get(table["status"], "✓")
    head = f"{mark} {table['table']}: {STATUS_TEXT[table['status']]}"
    if table["rebuild"]:
        head += f" (rebuild through {table['rebuild']})"
    lines = [head]
    if table["snapshot"]:
        lines.append(f"  snapshot first: {table['snapshot']}")
    for check in table["checks"]:
        lines.append(f"  data check: {check['what']}: no row may match {check['predicate']}")
    for number, step in enumerate(table["steps"], 1):
        first, *rest = step["action"].splitlines()
        lines.append(f"  {number}. {first}")
        lines += [f"     {line}" for line in rest]
        lines.append(f"     why: {step['reason']}")
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
