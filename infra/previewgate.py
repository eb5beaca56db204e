"""The deploy gate: a `pulumi preview --json` document -> the deletes and replaces the stack does not approve.

Pure (no pulumi or google imports). The document is Pulumi's PreviewDigest (pulumi/pulumi
pkg/display/json.go: `steps`, each with `op`, `urn`, `oldState`, `newState`, the states being
sdk/go/common/apitype ResourceV3 with its omitempty fields absent; `diagnostics`); the op names are
the engine's StepOp constants (pkg/resource/deploy/step.go).
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
# Provider resources are typed pulumi:providers:<package> (sdk/go/common/providers/reference.go IsProviderType).
PROVIDER_TYPE_PREFIX = "pulumi:providers:"


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


def _lifted(old: Mapping[str, Any]) -> bool:
    """The state shows both protections off, as the run that applied an approval recorded them."""
    # ResourceV3 writes `protect` only when true (json:"protect,omitempty"): off is its absence.
    protect_off = old.get("protect", False) is False
    # The program always sends deletionProtection (infra/declared.py table_args) and the provider's delete
    # reads the state's value (terraform-provider-google resourceBigQueryTableDelete): both must say false.
    return protect_off and all(
        _mapping(old.get(side)).get("deletionProtection") is False for side in ("inputs", "outputs")
    )


def _approval(
    resource_type: str, name: str, step: Mapping[str, Any], settings: Settings, migrated: frozenset[str]
) -> str | None:
    op = step.get("op")
    if resource_type.startswith(PROVIDER_TYPE_PREFIX):
        # The engine deletes a provider resource through its registry, which only unloads the plugin; whatever
        # the provider managed is deleted or replaced by steps of its own, gated here. A replace means
        # changed provider settings: refused.
        if op == "delete":
            return "deleting a provider resource touches nothing in GCP (pulumi/pulumi providers/registry.go Delete)"
        return None
    # Only tables can be approved; a dataset deleted or replaced takes every table with it.
    if resource_type != TABLE_TYPE:
        return None
    for key in settings.options.approve_data_loss:
        # A dataset id there approves only its lowered safeties for `diff`, never a delete.
        if "." in key and table_resource_name(*key.split(".", 1)) == name:
            return f"tenant-bigquery:approveDataLoss names {key}"
    # Only a replace: after `migrate --apply` the table already matches and the engine plans none.
    if op != "delete":
        for key in migrated:
            if table_resource_name(*key.split(".", 1)) == name:
                return f"`migrate --apply` brings {key} to the declaration with every row first"
    if not settings.options.protect:
        return "the stack sets tenant-bigquery:protect: false (tables are recreated freely)"
    # A removed table's approval leaves with its declaration: the run that applied it recorded both
    # protections as off, so the state says a reviewed change already approved its loss.
    if op == "delete" and _lifted(_mapping(step.get("oldState"))):
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


def preview_errors(document: Mapping[str, Any]) -> list[str]:
    """The error diagnostics of the preview, each message's first line.

    The digest keeps every non-ephemeral diagnostic (pkg/backend/display/json.go ShowPreviewDigest) with
    its severity (sdk/go/common/diag/sink.go: "error"); an error means the engine stopped early (a failed
    program bails before any delete is planned: pkg/resource/deploy/deployment_executor.go Execute), so
    the steps are not the whole plan.
    """
    diagnostics = document.get("diagnostics", [])
    if not isinstance(diagnostics, list):
        raise PreviewDocumentError("`diagnostics` is not a list")
    errors = []
    for diagnostic in diagnostics:
        if isinstance(diagnostic, Mapping) and diagnostic.get("severity") == "error":
            message = str(diagnostic.get("message") or "").strip()
            # The engine prefixes the severity itself (pkg/engine/eventsink.go StringifyDiag).
            errors.append(message.removeprefix("error: ").splitlines()[0] if message else "(no message)")
    return errors


def destructive_steps(document: Any, settings: Settings, migrated: frozenset[str] = frozenset()) -> list[Step]:
    """The steps that delete or replace a resource, each with what approves it (or None); `migrated` names
    the tables a checked migration plan covers. A failed preview is refused as unusable: it may lack steps."""
    if not isinstance(document, Mapping):
        raise PreviewDocumentError("expected a JSON object with `steps` (the output of `pulumi preview --json`)")
    errors = preview_errors(document)
    if errors:
        raise PreviewDocumentError(
            f"the preview failed ({len(errors)} error(s), the first: {errors[0]}); the engine stopped before "
            "planning every step, so nothing can be approved: fix the error and preview again"
        )
    steps = document.get("steps", [])
    if not isinstance(steps, list):
        raise PreviewDocumentError("`steps` is not a list")
    found: dict[str, Step] = {}  # a replace is reported as several steps of one URN: say it once, as a replace
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or not isinstance(step.get("op"), str) or not isinstance(step.get("urn"), str):
            raise PreviewDocumentError(f"steps[{index}] has no `op` and `urn` strings")
        if step["op"] not in DESTRUCTIVE_OPS:
            continue
        resource_type, name = parse_urn(step["urn"])
        if step["urn"] not in found or step["op"] == "replace":
            approval = _approval(resource_type, name, step, settings, migrated)
            found[step["urn"]] = Step(step["op"], step["urn"], resource_type, name, approval)
    return list(found.values())


def other_changes(document: Mapping[str, Any]) -> list[str]:
    """The preview's other steps that change something (create, update, import...), for the approver to read."""
    lines = []
    for step in document.get("steps", []):
        op = step.get("op")
        # A refresh step only reads the live resource (`preview --refresh`, deployment_executor.go refresh).
        if op in DESTRUCTIVE_OPS or op in {"same", "read", "refresh"}:
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
