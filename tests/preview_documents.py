"""`pulumi preview --json` documents as the engine serialises them, for the tests of `preview-gate`.

Source: pulumi/pulumi (the CLI this project pins, read at its mirror's 3.259 tree). The CLI prints
`display.PreviewDigest` (pkg/display/json.go) with json.MarshalIndent, four spaces
(pkg/backend/display/json.go ShowPreviewDigest). Go writes struct fields in declaration order, map keys
sorted, and drops every `omitempty` field whose value is false, zero, nil or empty. Field by field:

PreviewDigest
  config         map of every config key of the stack, secrets blinded (PreludeEvent); kept here: gcp:project.
  steps          one PreviewStep per ResourcePreEvent the display shows (shouldShow in
                 pkg/backend/display/display.go): `same` steps are left out unless `--show-sames` (or the
                 step changes `protect`), the root stack's step is always there, and `create-replacement`
                 and `delete-replaced` only with `--show-replacement-steps`. Default providers
                 (`pulumi:providers:gcp::default_10_2_0`) never appear: their steps are internal
                 (pkg/engine/deployment.go isDefaultProviderStep, pkg/engine/update.go isInternalStep), and
                 ShowEvents drops internal events before the JSON display.
  diagnostics    every non-ephemeral, non-debug DiagEvent: `urn` (absent for a global message), `message`
                 (the engine's `error: ` prefix + text + newline, pkg/engine/eventsink.go StringifyDiag),
                 `severity` (sdk/go/common/diag/sink.go: "info", "info#err", "warning", "error"); `prefix`
                 is never set. Absent when there are none.
  duration       nanoseconds (time.Duration); changeSummary: the SummaryEvent's counts per op, sent even when
                 the deployment failed (pkg/engine/deployment.go run), absent when the preview was cancelled
                 (ShowPreviewDigest stops at the CancelEvent); maybeCorrupt: absent (false). It counts every
                 step whose Logical() is true, hidden `same` steps included, under its op (pkg/engine/update.go
                 previewActions.OnResourceStepPost, internal steps excepted): a replace once, never its
                 create-replacement, delete-replaced or import-replacement, never a refresh (step.go Logical).
PreviewStep
  op, urn        always; op is a StepOp of pkg/resource/deploy/step.go.
  provider       the provider reference `<provider URN>::<id>` (absent for the root stack, a component, or
                 a provider resource). A provider created in the preview has the id UnknownID
                 (sdk/go/common/providers/reference.go).
  oldState       the resource's state before the step (absent for a create), newState after it (absent
                 for a delete): ResourceV3 below (engine.StepEventMetadata Old/New, getPreviewMetadataStep).
  diffReasons / replaceReasons   the changed / replacing keys, absent when empty.
  detailedDiff   no omitempty: `null` unless the step is an update, replace, create-replacement or refresh
                 with a provider diff; then {path: {kind, inputDiff}} (plugin.DiffKind String).
ResourceV3 (sdk/go/common/apitype/core.go, filled by pkg/resource/stack/deployment.go SerializeResource)
  urn, custom, type   always (custom false for the stack and the component).
  id             the provider's id (terraform-provider-google's table id
                 projects/P/datasets/D/tables/T); absent before the resource exists.
  inputs/outputs omitted when empty; secrets read "[secret]" (MassageSecrets). Kept here: the keys the
                 program sends that matter (infra/model/declared.py table_args always sends deletionProtection)
                 and their outputs; the bridge's other keys (`__defaults`, effectiveLabels...) are left out.
  parent         the component; dependencies: the dataset (the tables' depends_on).
  protect        `omitempty`: present only as true. A lifted protect is ABSENT, never false.
  delete, taint, external, retainOnDelete, pendingReplacement...   false: absent. retainOnDelete is the
                 state's (pkg/backend/display/json.go stateForJSONOutput copies it; sdk/go/common/apitype/core.go
                 `json:"retainOnDelete,omitempty"`), set by the `up` that registered the option.
  replacementTrigger   the trigger option the program sends every table (infra/model/declared.py).
  Left out, as no reader here uses them: created, modified, propertyDependencies, sourcePosition.

URNs (pkg/resource/deploy/deployment.go generateURN, sdk/go/common/resource/urn/urn.go New): the parent's
type is prefixed with `$`, except the root stack's, which never appears in a child's URN:
  urn:pulumi:prod::tenant-bigquery::tenant-bigquery:bigquery:DatasetWithTables$gcp:bigquery/table:Table::tenants-x
The project is Pulumi.yaml's `name`; the component type and resource names are infra/contract.py's and
infra/model/declared.py's.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from infra.contract import COMPONENT_TYPE, DATASET_TYPE, TABLE_TYPE
from infra.model.declared import table_resource_name

PROJECT = "tenant-bigquery"
DATASET = "tenants"
GCP_VERSION = "10.2.0"  # requirements.txt
# sdk/go/common/providers/reference.go UnknownID: the id of a provider the preview creates.
UNKNOWN_ID = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# The registry gives each provider it creates a random UUID (providers/registry.go Create): any will do.
PROVIDER_ID = "6f0e5e1a-3a1c-4a52-9a8e-0d2b6c1e9f41"
# pkg/resource/stack/deployment.go computedValuePlaceholder: an output unknown during the preview.
COMPUTED = UNKNOWN_ID
# What a delete of a protected resource fails with, in a preview too: DeleteStep.Apply checks protect
# before its dry-run return (pkg/resource/deploy/step.go deleteProtectedError); previewActions.OnResourceStepPost
# reports it as diag.GetPreviewFailedError ("Preview failed: %v"). URN.Quote uses single quotes off Windows.
PROTECTED_DELETE = (
    'Preview failed: resource "{urn}" cannot be deleted\n'
    "because it is protected. To unprotect the resource, either remove the `protect` flag from the resource "
    "in your Pulumi program and run `pulumi up`, or use the command:\n`pulumi state unprotect '{urn}'`"
)
# What a preview of a protected resource's replacement reports, then carries on planning (a preview, not an
# up, continues past it: pkg/resource/deploy/step_generator.go continueStepsFromDiff, `new.Protect &&
# old.Protect && !IgnoreProtect`). `pulumi preview --ignore-protect` reports neither this nor PROTECTED_DELETE.
PROTECTED_REPLACE = (
    'unable to replace resource "{urn}"\n'
    "as it is currently marked for protection. To unprotect the resource, remove the `protect` flag from the "
    "resource in your Pulumi program and run `pulumi up`"
)
# A program that fails: infra/pulumi_edge/program.py logs each problem and raises RunError, which
# pulumi-language-python-exec logs as an error and exits 1; the language host reports "program exited
# with non-zero exit code: 1" (sdk/python/cmd/pulumi-language-python/main.go), which the engine wraps
# (pkg/resource/deploy/program_source.go) and reports without a URN (deployment_executor.go reportError).
FAILED_PROGRAM = [
    # infra/model/problems.py Problem: file:path: message (what `validate` prints for the same schema)
    "schemas/tenants/tenant_profiles.json:tenant_id.type: type 'STRIN' is not a BigQuery type; use one of "
    "BIGNUMERIC, BOOL, BYTES, DATE, DATETIME, FLOAT64, GEOGRAPHY, INT64, JSON, NUMERIC, RANGE, RECORD, STRING, "
    "TIME, TIMESTAMP",
    "1 problem(s) in the declarations; nothing was changed",
    "an unhandled error occurred: program exited with non-zero exit code: 1",
]


def project_id(stack: str) -> str:
    return f"acme-data-platform-{stack}"


def stack_urn(stack: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"


def component_urn(stack: str) -> str:
    # The component's parent is the root stack: no parent type in its URN.
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}::{DATASET}"


def child_urn(stack: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT_TYPE}${resource_type}::{name}"


def dataset_urn(stack: str) -> str:
    return child_urn(stack, DATASET_TYPE, DATASET)


def table_urn(stack: str, table: str) -> str:
    return child_urn(stack, TABLE_TYPE, table_resource_name(DATASET, table))


def default_provider_name(version: str = GCP_VERSION) -> str:
    """providers/provider.go DefaultName: "default" and the version's parts, joined by underscores."""
    return "default_" + version.replace(".", "_")


def provider_urn(stack: str, name: str) -> str:
    # Default providers have no parent (deployment.go defaultProviderURN); an explicit one's is the stack.
    return f"urn:pulumi:{stack}::{PROJECT}::pulumi:providers:gcp::{name}"


def provider_ref(stack: str, name: str = default_provider_name(), provider_id: str = PROVIDER_ID) -> str:
    return f"{provider_urn(stack, name)}::{provider_id}"


def table_state(
    stack: str,
    table: str,
    *,
    protect: bool,
    deletion_protection: bool,
    provider: str | None = None,
    exists: bool = True,
    retain_on_delete: bool = False,
) -> dict[str, Any]:
    """A table's ResourceV3; `exists` False: the new state of a table the preview creates (no id, outputs unknown)."""
    project = project_id(stack)
    inputs = {
        "datasetId": DATASET,
        "deletionProtection": deletion_protection,
        "project": project,
        "schema": '[{"mode":"REQUIRED","name":"tenant_id","type":"STRING"}]',
        "tableId": table,
    }
    outputs = (
        {**inputs, "id": f"projects/{project}/datasets/{DATASET}/tables/{table}", "numRows": 0}
        if exists
        else {**inputs, "id": COMPUTED, "numRows": COMPUTED}
    )
    state: dict[str, Any] = {"urn": table_urn(stack, table), "custom": True}
    if exists:
        state["id"] = outputs["id"]
    state.update(type=TABLE_TYPE, inputs=inputs, outputs=outputs, parent=component_urn(stack))
    if protect:
        state["protect"] = True  # omitempty: written only when true
    state["dependencies"] = [dataset_urn(stack)]
    state["provider"] = provider or provider_ref(stack)
    if retain_on_delete:
        state["retainOnDelete"] = True  # omitempty, after importID and before replacementTrigger in ResourceV3
    state["replacementTrigger"] = "baseline"
    return state


def dataset_state(stack: str, *, protect: bool, location: str = "US") -> dict[str, Any]:
    project = project_id(stack)
    inputs = {"datasetId": DATASET, "location": location, "project": project}
    state: dict[str, Any] = {
        "urn": dataset_urn(stack),
        "custom": True,
        "id": f"projects/{project}/datasets/{DATASET}",
        "type": DATASET_TYPE,
        "inputs": inputs,
        "outputs": {**inputs, "id": f"projects/{project}/datasets/{DATASET}"},
        "parent": component_urn(stack),
    }
    if protect:
        state["protect"] = True
    state["provider"] = provider_ref(stack)
    return state


def explicit_provider_state(stack: str, name: str) -> dict[str, Any]:
    """A provider resource an earlier program declared (this program declares none)."""
    inputs = {"project": project_id(stack), "version": GCP_VERSION}
    return {
        "urn": provider_urn(stack, name),
        "custom": True,
        "id": PROVIDER_ID,
        "type": "pulumi:providers:gcp",
        "inputs": inputs,
        "outputs": inputs,
        "parent": stack_urn(stack),
    }


def step(
    op: str,
    urn: str,
    *,
    provider: str | None = None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    diff_reasons: list[str] | None = None,
    replace_reasons: list[str] | None = None,
    detailed_diff: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A PreviewStep; `detailed_diff` maps a property path to its DiffKind string (inputDiff false)."""
    result: dict[str, Any] = {"op": op, "urn": urn}
    if provider:
        result["provider"] = provider
    if old is not None:
        result["oldState"] = old
    if new is not None:
        result["newState"] = new
    if diff_reasons:
        result["diffReasons"] = diff_reasons
    if replace_reasons:
        result["replaceReasons"] = replace_reasons
    result["detailedDiff"] = (
        None
        if detailed_diff is None
        else {path: {"kind": kind, "inputDiff": False} for path, kind in sorted(detailed_diff.items())}
    )
    return result


def stack_step(stack: str) -> dict[str, Any]:
    """The root stack's step, in every preview: `same` (its exports change only when `up` registers them)."""
    state = {"urn": stack_urn(stack), "custom": False, "type": "pulumi:pulumi:Stack"}
    old = {**state, "outputs": {"datasets": {DATASET: DATASET}}}
    return step("same", stack_urn(stack), old=old, new=state)


def table_step(op: str, stack: str, table: str, **states: Any) -> dict[str, Any]:
    return step(op, table_urn(stack, table), provider=provider_ref(stack), **states)


def diagnostic(message: str, severity: str, urn: str | None = None) -> dict[str, Any]:
    """A PreviewDiagnostic: the engine's severity prefix is part of the message (none for info)."""
    result: dict[str, Any] = {}
    if urn:
        result["urn"] = urn
    prefix = "" if severity.startswith("info") else f"{severity}: "
    result.update(message=f"{prefix}{message}\n", severity=severity)
    return result


# The ops of steps whose Logical() is false (pkg/resource/deploy/step.go: CreateStep, DeleteStep, ReadStep and
# ImportStep when replacing; RefreshStep, RemovePendingReplaceStep, ExtensionParameterizeStep): never counted.
NOT_LOGICAL = frozenset(
    {
        "create-replacement",
        "delete-replaced",
        "discard-replaced",
        "read-replacement",
        "import-replacement",
        "refresh",
        "remove-pending-replace",
        "extend-parameterize",
    }
)


def digest(
    stack: str, *steps: dict[str, Any], diagnostics: list[dict[str, Any]] | None = None, same: int = 0
) -> dict[str, Any]:
    """A PreviewDigest: the root stack's step first, then `steps`; changeSummary counts the logical ops, and
    `same` more resources that are unchanged and so not listed."""
    all_steps = [stack_step(stack), *steps]
    summary: dict[str, int] = {"same": 1 + same}
    for each in steps:
        if each["op"] not in NOT_LOGICAL:
            summary[each["op"]] = summary.get(each["op"], 0) + 1
    document: dict[str, Any] = {"config": {"gcp:project": project_id(stack)}, "steps": all_steps}
    if diagnostics:
        document["diagnostics"] = diagnostics
    document.update(duration=2_345_678_901, changeSummary=dict(sorted(summary.items())))
    return document


def write(path: Path, document: dict[str, Any]) -> Path:
    """As the CLI prints it: json.MarshalIndent with four spaces, a newline (fmt.Println)."""
    path.write_text(json.dumps(document, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def migration_plan(stack: str, project: str | None = None, **statuses: str) -> dict[str, Any]:
    """What `migrate --stack STACK --format json` prints (infra/cli/reporters.py migrate_json, run here: `stack`, then
    live_migrate.MigrateReport.to_json with the stack's GCP project), per table (`statuses` keys: table ids of the
    tenants dataset) a dry run's status: planned with a statement, refused, or nothing to do."""
    from infra.analysis.migration import MigrationStep, TablePlan
    from infra.bigquery_edge.live_migrate import MigrateReport, TableResult
    from infra.cli.reporters import migrate_json

    project = project or project_id(stack)
    results = []
    for table, status in statuses.items():
        plan = TablePlan(f"{DATASET}.{table}", f"{project}.{DATASET}.{table}")
        if status == "planned":
            alter = f"ALTER TABLE `{plan.table_id}` ALTER COLUMN `tenant_id` SET DATA TYPE STRING"
            plan = TablePlan(plan.table, plan.table_id, steps=(MigrationStep("sql", alter, "a widened type"),))
        elif status == "refused":
            plan = plan.refused("no lossless path")
        results.append(TableResult(plan, status))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        migrate_json(stack, MigrateReport(project, "the BigQuery API", applied=False, results=tuple(results)))
    document: dict[str, Any] = json.loads(printed.getvalue())
    return document
