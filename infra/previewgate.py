"""The deploy gate: a `pulumi preview --json` document -> the deletes and replaces the stack does not approve.

Pure (no pulumi or google imports). The document is Pulumi's PreviewDigest (pulumi/pulumi
pkg/display/json.go: `steps`, each with `op`, `urn`, `oldState`, `newState`); the op names are the
engine's StepOp constants (pkg/resource/deploy/step.go).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.declared import TABLE_TYPE, table_resource_name
from infra.settings import Settings

# Every op that deletes a resource, or creates one in place of another (pkg/resource/deploy/step.go).
DESTRUCTIVE_OPS = frozenset({"delete", "replace", "create-replacement", "delete-replaced", "import-replacement"})


class PreviewDocumentError(Exception):
    """The file is not a `pulumi preview --json` document."""


@dataclass(frozen=True)
class Step:
    op: str
    urn: str
    resource_type: str
    name: str
    approved_by: str | None  # why it may run; None: refused

    def __str__(self) -> str:
        mark, why = ("✓", f"approved: {self.approved_by}") if self.approved_by else ("✗", "not approved")
        return f"{mark} {self.op} {self.name} ({self.resource_type}): {why}"


def parse_urn(urn: str) -> tuple[str, str]:
    """urn:pulumi:<stack>::<project>::<parent$type>::<name> -> (type, name)."""
    parts = urn.split("::", 3)
    if len(parts) != 4 or not parts[0].startswith("urn:pulumi:"):
        raise PreviewDocumentError(f"{urn!r} is not a Pulumi URN")
    return parts[2].rpartition("$")[2], parts[3]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _approval(
    resource_type: str, name: str, step: Mapping[str, Any], settings: Settings, migrated: frozenset[str]
) -> str | None:
    # Only tables can be approved; a dataset, provider or anything else deleted or replaced takes every table with it.
    if resource_type != TABLE_TYPE:
        return None
    for key in settings.options.approve_data_loss:
        # A dataset id there approves only its lowered safeties for `diff`, never a delete.
        if "." in key and table_resource_name(*key.split(".", 1)) == name:
            return f"tenant-bigquery:approveDataLoss names {key}"
    # Only a replace: after `migrate --apply` the table already matches and the engine plans none.
    if step.get("op") != "delete":
        for key in migrated:
            if table_resource_name(*key.split(".", 1)) == name:
                return f"`migrate --apply` brings {key} to the declaration with every row first"
    if not settings.options.protect:
        return "the stack sets tenant-bigquery:protect: false (tables are recreated freely)"
    old = _mapping(step.get("oldState"))
    old_inputs = _mapping(old.get("inputs"))
    # A removed table's approval leaves with its declaration: the run that applied it recorded both
    # protections as off, so the state says a reviewed change already approved its loss.
    if step.get("op") == "delete" and old.get("protect") is False and old_inputs.get("deletionProtection") is False:
        return "an earlier approved run lifted both protections"
    return None


def migrated_tables(document: Any) -> frozenset[str]:
    """The tables (dataset.table) a `migrate --format json` dry run plans to migrate without loss."""
    if not isinstance(document, Mapping) or not isinstance(document.get("tables"), list):
        raise PreviewDocumentError("expected the output of `migrate --format json` (an object with `tables`)")
    return frozenset(
        str(t["table"])
        for t in document["tables"]
        if isinstance(t, Mapping) and t.get("status") == "planned" and t.get("steps") and not t.get("refusals")
    )


def destructive_steps(document: Any, settings: Settings, migrated: frozenset[str] = frozenset()) -> list[Step]:
    """The steps that delete or replace a resource, each with what approves it (or None); `migrated` names
    the tables a checked migration plan covers."""
    if not isinstance(document, Mapping):
        raise PreviewDocumentError("expected a JSON object with `steps` (the output of `pulumi preview --json`)")
    steps = document.get("steps", [])
    if not isinstance(steps, list):
        raise PreviewDocumentError("`steps` is not a list")
    found: dict[str, Step] = {}  # a replace is reported as several steps of one URN: say it once
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or not isinstance(step.get("op"), str) or not isinstance(step.get("urn"), str):
            raise PreviewDocumentError(f"steps[{index}] has no `op` and `urn` strings")
        if step["op"] not in DESTRUCTIVE_OPS:
            continue
        resource_type, name = parse_urn(step["urn"])
        approval = _approval(resource_type, name, step, settings, migrated)
        found.setdefault(step["urn"], Step(step["op"], step["urn"], resource_type, name, approval))
    return list(found.values())


def other_changes(document: Mapping[str, Any]) -> list[str]:
    """The preview's other steps that change something (create, update, import...), for the approver to read."""
    lines = []
    for step in document.get("steps", []):
        op = step.get("op")
        if op in DESTRUCTIVE_OPS or op in {"same", "read"}:
            continue
        resource_type, name = parse_urn(step["urn"])
        reasons = step.get("diffReasons")
        because = f": {', '.join(map(str, reasons))}" if isinstance(reasons, list) and reasons else ""
        lines.append(f"  {op} {name} ({resource_type}){because}")
    return lines


def load_document(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PreviewDocumentError(
            f"not JSON ({error.msg}, line {error.lineno}); pass what `pulumi preview --json` printed"
        ) from None
