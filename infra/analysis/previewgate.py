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

from infra.analysis.migration import MIGRATED_PROPERTIES
from infra.model import retirement
from infra.model.declared import TABLE_TYPE, table_resource_name
from infra.model.settings import Settings

# Every op the engine has (pkg/resource/deploy/step.go StepOps): any other is no engine's document.
STEP_OPS = frozenset(
    {
        "same",
        "create",
        "update",
        "delete",
        "replace",
        "create-replacement",
        "delete-replaced",
        "read",
        "read-replacement",
        "refresh",
        "discard",
        "discard-replaced",
        "remove-pending-replace",
        "import",
        "import-replacement",
        "diff",
        "extend-parameterize",
    }
)
# Every op that deletes a resource, or creates one in place of another (pkg/resource/deploy/step.go).
DESTRUCTIVE_OPS = frozenset({"delete", "replace", "create-replacement", "delete-replaced", "import-replacement"})
# changeSummary counts each step whose Logical() is true under its op (pkg/engine/update.go
# previewActions.OnResourceStepPost), and the JSON lists every step but a `same` and a non-logical
# replacement step (pkg/backend/display/display.go shouldShow). So for these ops the two agree exactly...
LISTED_AND_COUNTED_OPS = frozenset({"create", "update", "delete", "replace", "import", "discard"})
# ...and these, whose steps' Logical() is false (step.go: a replacement's halves, refresh), are never counted.
# (`same` is counted for every resource but listed only with --show-sames; `read` only when its outputs changed.)
UNCOUNTED_OPS = frozenset(
    {
        "create-replacement",
        "delete-replaced",
        "read-replacement",
        "refresh",
        "discard-replaced",
        "remove-pending-replace",
        "import-replacement",
        "extend-parameterize",
    }
)
# Provider resources are typed pulumi:providers:<package> (sdk/go/common/providers/reference.go IsProviderType).
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
# The root stack resource, whose step the digest always lists (pkg/backend/display/json.go ShowPreviewDigest:
# `shouldShow(m, opts) || isRootStack(m)`), `same` when nothing changes.
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# sdk/go/common/diag/sink.go Severity; the digest drops "debug".
SEVERITIES = ("info", "info#err", "warning", "error")
# What `migrate` brings to the declaration: a replace for any other reason stays.
MIGRATED_INPUTS = frozenset(MIGRATED_PROPERTIES.values())


class PreviewDocumentError(Exception):
    """The file is not a `pulumi preview --json` document (or not a `migrate --format json` plan)."""


@dataclass(frozen=True)
class PreviewStep:
    op: str
    urn: str
    resource_type: str
    name: str
    approved_by: str | None  # why it may run; None: refused

    def __str__(self) -> str:
        mark, why = ("✓", f"approved: {self.approved_by}") if self.approved_by else ("✗", "not approved")
        return f"{mark} {self.op} {self.name} ({self.resource_type}): {why}"


@dataclass(frozen=True)
class Urn:
    stack: str
    project: str
    qualified_type: str  # parent types and the type, joined by `$`
    name: str

    @property
    def type(self) -> str:
        return self.qualified_type.rpartition("$")[2]


def parse_urn(urn: str) -> Urn:
    """urn:pulumi:<stack>::<project>::<parent$type>::<name> (sdk/go/common/resource/urn/urn.go: the name is
    everything after the third `::`)."""
    parts = urn.split("::", 3)
    if len(parts) != 4 or not parts[0].startswith("urn:pulumi:"):
        raise PreviewDocumentError(f"{urn!r} is not a Pulumi URN")
    return Urn(parts[0].removeprefix("urn:pulumi:"), parts[1], parts[2], parts[3])


def _kind(value: Any) -> str:
    """A value as a JSON reader names it, for messages (a repr of a nested value would be neither short nor JSON)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list) else "a number"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _lifted(old: Mapping[str, Any]) -> bool:
    """The state shows both protections off, as the run that applied an approval recorded them."""
    # ResourceV3 writes `protect` only when true (json:"protect,omitempty"): off is its absence.
    protect_off = old.get("protect", False) is False
    # The program always sends deletionProtection (infra/model/declared.py table_args) and the provider's delete
    # reads the state's value (terraform-provider-google resourceBigQueryTableDelete): both must say false.
    return protect_off and all(
        _mapping(old.get(side)).get("deletionProtection") is False for side in ("inputs", "outputs")
    )


def _retained(old: Mapping[str, Any]) -> bool:
    """The state records retainOnDelete and no protect: the engine's delete forgets the resource and calls no
    provider (step.go DeleteStep.Apply checks protect first, then skips the provider's Delete for
    old.RetainOnDelete). ResourceV3 writes both only when true (json:"retainOnDelete,omitempty")."""
    return old.get("retainOnDelete") is True and old.get("protect", False) is False


def _view(old: Mapping[str, Any]) -> bool:
    """The state records a view (inputs `view`, as the program registers one) and no protect: it holds no rows,
    so its delete or replace loses none, and its file rebuilds it (infra/pulumi_edge/resources.py view_options)."""
    return "view" in _mapping(old.get("inputs")) and old.get("protect", False) is False


def _migrates(step: Mapping[str, Any]) -> bool:
    """Every key that makes the engine replace the table is one `migrate` brings to the declaration.

    replaceReasons are the provider's replacing top-level keys (pulumi-terraform-bridge pkg/tfbridge/provider.go
    Diff trims each detailed-diff path at its first `.` or `[`). The engine writes none for a replacement it
    decides itself (step_generator.go: a changed replacement trigger, a dependent's replace): that stays refused.
    """
    reasons = step.get("replaceReasons")
    return isinstance(reasons, list) and bool(reasons) and set(reasons) <= MIGRATED_INPUTS


def _approval(urn: Urn, step: Mapping[str, Any], settings: Settings, migrated: frozenset[str]) -> str | None:
    op, resource_type, name = step.get("op"), urn.type, urn.name
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
    # The old state decides: a table replaced by a view of its name loses the table's rows.
    if _view(_mapping(step.get("oldState"))):
        return "a view (state records `view`): it holds no rows, and its file rebuilds it"
    # Only the removal: a replacement's delete-replaced keeps the old table too, and its create then fails.
    if op == "delete" and _retained(_mapping(step.get("oldState"))):
        return f"retired (state records retainOnDelete): {retirement.KEPT}"
    for key in settings.stack_settings.approve_data_loss:
        # A dataset id there approves only its lowered safeties for `diff`, never a delete.
        if "." in key and table_resource_name(*key.split(".", 1)) == name:
            return f"tenant-bigquery:approveDataLoss names {key}"
    # Only a replace: after `migrate --apply` the table already matches and the engine plans none.
    if op != "delete" and _migrates(step):
        for key in migrated:
            if table_resource_name(*key.split(".", 1)) == name:
                return f"`migrate --apply` brings {key} to the declaration with every row first"
    if not settings.stack_settings.protect:
        return "the stack sets tenant-bigquery:protect: false (tables are recreated freely)"
    # A removed table's approval leaves with its declaration: the run that applied it recorded both
    # protections as off, so the state says a reviewed change already approved its loss.
    if op == "delete" and _lifted(_mapping(step.get("oldState"))):
        return "an earlier approved run lifted both protections"
    return None


def migrated_tables(document: Any, settings: Settings) -> frozenset[str]:
    """The tables (dataset.table) a `migrate --format json` dry run of this stack plans to migrate without loss.

    The plan names its stack and GCP project (infra/cli/reporters.py migrate_json, live_migrate.MigrateReport):
    a plan of another stack or project says nothing about this one's tables.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("tables"), list):
        raise PreviewDocumentError("expected the output of `migrate --format json` (an object with `tables`)")
    again = f"plan this stack's migrations with `migrate --stack {settings.stack} --format json`"
    stack, project = document.get("stack"), document.get("project")
    if not isinstance(stack, str) or not isinstance(project, str):
        raise PreviewDocumentError(f"the plan names no `stack` and `project` it was made for; {again}")
    if stack != settings.stack:
        raise PreviewDocumentError(f"the plan is for stack {stack!r}, not {settings.stack!r}; {again}")
    if project != settings.project:
        raise PreviewDocumentError(
            f"the plan is for project {project!r}, but stack {settings.stack} deploys to {settings.project!r}; {again}"
        )
    # Only a dry run's plan describes what `migrate --apply` will do next (MigrateReport.to_json `apply`).
    if document.get("apply") is not False:
        raise PreviewDocumentError(
            f"the plan is no dry run (`apply` is {_kind(document.get('apply'))}, not false); {again}"
        )
    planned: set[str] = set()
    for index, table in enumerate(document["tables"]):
        name = _mapping(table).get("table")
        if not isinstance(name, str) or not all(name.partition(".")[::2]):
            raise PreviewDocumentError(f"tables[{index}].table is {_kind(name)}, not dataset.table")
        if table.get("status") != "planned":
            continue
        # A dry run marks a table planned only with steps and no refusals (live_migrate.py _one), each
        # step written by migration.MigrationStep.to_json.
        steps = table.get("steps")
        if not isinstance(steps, list) or not steps or not all(_is_step(step) for step in steps):
            raise PreviewDocumentError(
                f"tables[{index}].steps is {_kind(steps)}, not a non-empty list of steps (objects with `kind` and "
                f"`action` text); {again}"
            )
        if table.get("refusals"):
            raise PreviewDocumentError(f"tables[{index}] is planned and refused at once; {again}")
        planned.add(name)
    return frozenset(planned)


def _is_step(step: Any) -> bool:
    return isinstance(step, Mapping) and all(isinstance(step.get(key), str) for key in ("kind", "action"))


def preview_errors(document: Mapping[str, Any]) -> list[str]:
    """The error diagnostics of the preview, each message's first line.

    The digest keeps every non-ephemeral diagnostic (pkg/backend/display/json.go ShowPreviewDigest) with
    its severity (sdk/go/common/diag/sink.go: "error"); an error means the engine stopped early (a failed
    program bails before any delete is planned: pkg/resource/deploy/deployment_executor.go Execute), so
    the steps are not the whole plan. A diagnostic of another shape is no engine's: refused.
    """
    diagnostics = document.get("diagnostics", [])
    if not isinstance(diagnostics, list):
        raise PreviewDocumentError("`diagnostics` is not a list")
    errors = []
    for index, diagnostic in enumerate(diagnostics):
        if not isinstance(diagnostic, Mapping):
            raise PreviewDocumentError(f"diagnostics[{index}] is {_kind(diagnostic)}, not an object")
        severity, message = diagnostic.get("severity"), diagnostic.get("message", "")
        if severity not in SEVERITIES:
            raise PreviewDocumentError(
                f"diagnostics[{index}].severity is {_kind(severity)}, none of the engine's ({', '.join(SEVERITIES)})"
            )
        # PreviewDiagnostic.Message is a Go string (pkg/display/json.go).
        if not isinstance(message, str):
            raise PreviewDocumentError(f"diagnostics[{index}].message is {_kind(message)}, not text")
        if severity == "error":
            # The engine prefixes the severity itself (pkg/engine/eventsink.go StringifyDiag).
            lines = [line.strip() for line in message.strip().removeprefix("error: ").splitlines()]
            errors.append(next((line for line in lines if line), "(no message)"))
    return errors


def _checked_steps(document: Any, stack: str, project: str) -> list[tuple[Urn, Mapping[str, Any]]]:
    """The steps of a complete preview of `stack` in `project`, each with its URN; anything else is refused.

    A preview always lists the root stack's step and a changeSummary that agrees with its steps (the
    module's constants say how); every URN names the stack and project previewed (deployment.go generateURN).
    """
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
    checked = []
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or not isinstance(step.get("op"), str) or not isinstance(step.get("urn"), str):
            raise PreviewDocumentError(f"steps[{index}] has no `op` and `urn` strings")
        if step["op"] not in STEP_OPS:
            raise PreviewDocumentError(f"steps[{index}].op {step['op']!r} is none of the engine's step ops")
        urn = parse_urn(step["urn"])
        if (urn.stack, urn.project) != (stack, project):
            raise PreviewDocumentError(
                f"steps[{index}] is a resource of stack {urn.stack!r} in project {urn.project!r}, not of stack "
                f"{stack!r} in {project!r}: gate what `pulumi preview --stack {stack} --json` printed"
            )
        reasons = step.get("replaceReasons", [])
        if not isinstance(reasons, list) or not all(isinstance(reason, str) for reason in reasons):
            raise PreviewDocumentError(f"steps[{index}].replaceReasons is not a list of property names")
        checked.append((urn, step))
    if not any(urn.qualified_type == ROOT_STACK_TYPE for urn, _ in checked):
        raise PreviewDocumentError(
            f"no step of the root stack ({ROOT_STACK_TYPE}), which every preview lists: pass what "
            "`pulumi preview --json` printed"
        )
    _check_summary(document.get("changeSummary"), [step["op"] for _, step in checked])
    return checked


def _check_summary(summary: Any, ops: list[str]) -> None:
    if summary is None:
        # ShowPreviewDigest sets it from the SummaryEvent, the engine's last; a cancelled preview has none.
        raise PreviewDocumentError("no `changeSummary`: the preview did not finish; preview again")
    if not isinstance(summary, Mapping) or not all(
        op in STEP_OPS and isinstance(count, int) and not isinstance(count, bool) and count >= 0
        for op, count in summary.items()
    ):
        raise PreviewDocumentError("`changeSummary` does not map engine step ops to counts")
    listed = {op: ops.count(op) for op in STEP_OPS}
    wrong = [
        f"{op}: {summary.get(op, 0)} counted, {listed[op]} listed"
        for op in sorted(STEP_OPS)
        if (op in LISTED_AND_COUNTED_OPS and summary.get(op, 0) != listed[op])
        or (op in UNCOUNTED_OPS and summary.get(op, 0))
        or (op == "same" and summary.get(op, 0) < listed[op])
    ]
    if wrong:
        raise PreviewDocumentError(
            f"`changeSummary` disagrees with the steps ({'; '.join(wrong)}), so they are not one preview's: "
            "preview again"
        )


def destructive_steps(
    document: Any, settings: Settings, project: str, migrated: frozenset[str] = frozenset()
) -> list[PreviewStep]:
    """The steps that delete or replace a resource, each with what approves it (or None); `project` is the
    Pulumi project (Pulumi.yaml `name`), `migrated` names the tables a checked migration plan covers. A
    document that is no complete preview of this stack is refused as unusable."""
    found: dict[str, PreviewStep] = {}  # a replace is reported as several steps of one URN: say it once, as a replace
    for urn, step in _checked_steps(document, settings.stack, project):
        if step["op"] not in DESTRUCTIVE_OPS:
            continue
        if step["urn"] not in found or step["op"] == "replace":
            approval = _approval(urn, step, settings, migrated)
            found[step["urn"]] = PreviewStep(step["op"], step["urn"], urn.type, urn.name, approval)
    return list(found.values())


def other_changes(document: Mapping[str, Any]) -> list[str]:
    """The preview's other steps that change something (create, update, import...), for the approver to read;
    call it on a document destructive_steps took."""
    lines = []
    for step in document["steps"]:
        op = step["op"]
        # A refresh step only reads the live resource (`preview --refresh`, deployment_executor.go refresh).
        if op in DESTRUCTIVE_OPS or op in {"same", "read", "refresh"}:
            continue
        urn = parse_urn(step["urn"])
        reasons = step.get("diffReasons")
        because = f": {', '.join(map(str, reasons))}" if isinstance(reasons, list) and reasons else ""
        lines.append(f"  {op} {urn.name} ({urn.type}){because}")
    return lines


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Go's encoder writes each struct field and map key once; Python's reader would keep the last silently.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise PreviewDocumentError(
                f"the key {key!r} appears twice in one object, so the file was edited: pass it as written"
            )
        seen[key] = value
    return seen


def load_document(text: str, producer: str = "pulumi preview --json") -> Any:
    """The JSON document `producer` printed; anything else raises PreviewDocumentError with one line."""
    again = f"pass what `{producer}` printed"
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise PreviewDocumentError(f"not JSON ({error.msg}, line {error.lineno}); {again}") from None
    except RecursionError:
        raise PreviewDocumentError(f"nested too deeply to read; {again}") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise PreviewDocumentError(f"holds a number too long to read; {again}") from None
