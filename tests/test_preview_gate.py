"""`preview-gate`: the deploy refuses a `pulumi preview --json` that deletes or replaces what is not approved.

Every preview here is built as the engine serialises it (tests/preview_documents.py names the Go sources
field by field): a replace, the replacement-step trio of `--show-replacement-steps`, a delete after an
approval run, a still-protected delete, a provider bump, an update, a same, an import, refresh steps, a
failed program, an empty file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT, invoke
from preview_documents import (
    FAILED_PROGRAM,
    PROTECTED_DELETE,
    PROTECTED_REPLACE,
    UNKNOWN_ID,
    dataset_state,
    dataset_urn,
    default_provider_name,
    diagnostic,
    digest,
    explicit_provider_state,
    migration_plan,
    provider_ref,
    provider_urn,
    step,
    table_state,
    table_step,
    table_urn,
    write,
)

from infra.model.registrations import ProgramRun
from infra.pulumi_edge.mockrun import run_stack

TABLE = "gcp:bigquery/table:Table"


def gate(root: Path, stack: str, path: Path, *extra: str) -> tuple[int, list[str], str]:
    result = invoke("preview-gate", "--stack", stack, "--root", str(root), str(path), *extra)
    return result.returncode, result.stdout.splitlines(), result.stderr


def approve(root: Path, *tables: str) -> None:
    prod = root / "Pulumi.prod.yaml"
    entries = "".join(f"    - {table}\n" for table in tables)
    prod.write_text(prod.read_text() + f"  tenant-bigquery:approveDataLoss:\n{entries}")


def protected(stack: str, table: str) -> dict[str, Any]:
    """A prod table as every `up` records it: both protections on."""
    return table_state(stack, table, protect=True, deletion_protection=True)


def replace_trio(stack: str, table: str) -> list[dict[str, Any]]:
    """A table replaced with `--show-replacement-steps`, delete first (the program sets deleteBeforeReplace):
    delete-replaced, replace, create-replacement (pkg/resource/deploy/step_generator.go, the
    deleteBeforeReplace branch); without the flag only the logical `replace` is shown."""
    old = protected(stack, table)
    new = table_state(stack, table, protect=True, deletion_protection=True, exists=False)
    why = {"replace_reasons": ["timePartitioning"], "diff_reasons": ["timePartitioning"]}
    changed = {"timePartitioning.type": "update-replace"}
    return [
        table_step("delete-replaced", stack, table, old=old),
        table_step("replace", stack, table, old=old, new=new, **why, detailed_diff=changed),
        table_step("create-replacement", stack, table, old=old, new=new, **why, detailed_diff=changed),
    ]


def test_the_engine_urn_of_a_table_omits_the_root_stack_type() -> None:
    """deployment.go generateURN skips the root stack's type in the parent chain."""
    assert table_urn("prod", "tenant_profiles") == (
        "urn:pulumi:prod::tenant-bigquery::tenant-bigquery:bigquery:DatasetWithTables"
        "$gcp:bigquery/table:Table::tenants-tenant_profiles"
    )


def test_an_update_a_create_and_an_import_pass_and_are_listed(repo_copy: Path, tmp_path: Path) -> None:
    old = protected("prod", "tenant_profiles")
    document = digest(
        "prod",
        table_step(
            "update",
            "prod",
            "tenant_profiles",
            old=old,
            new=old,
            diff_reasons=["schema"],
            detailed_diff={"schema": "update"},
        ),
        table_step(
            "create",
            "prod",
            "new_table",
            new=table_state("prod", "new_table", protect=True, deletion_protection=True, exists=False),
        ),
        # adoptExisting: an ImportStep has no old state; the new one carries the import id.
        table_step(
            "import",
            "prod",
            "tenant_api_keys",
            new={**protected("prod", "tenant_api_keys"), "importID": "projects/p/datasets/tenants/tables/x"},
        ),
    )
    code, out, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert (code, err) == (0, "")
    # The approver reads what else the commit changes in the run's summary.
    assert out == [
        "3 other change(s):",
        f"  update tenants-tenant_profiles ({TABLE}): schema",
        f"  create tenants-new_table ({TABLE})",
        f"  import tenants-tenant_api_keys ({TABLE})",
        "✓ nothing is deleted or replaced without approval (0 approved).",
    ]


def test_same_and_refresh_steps_change_nothing(repo_copy: Path, tmp_path: Path) -> None:
    """`preview --show-sames` lists `same` steps; `preview --refresh` (the up job) a `refresh` step per
    resource, read from the live resource first (deployment_executor.go Execute -> refresh)."""
    old = protected("prod", "tenant_profiles")
    document = digest(
        "prod",
        step(
            "refresh",
            dataset_urn("prod"),
            provider=provider_ref("prod"),
            old=dataset_state("prod", protect=True),
            new=dataset_state("prod", protect=True),
        ),
        table_step("refresh", "prod", "tenant_profiles", old=old, new=old),
        table_step("same", "prod", "tenant_profiles", old=old, new=old),
        same=1,
    )
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert (code, out) == (0, ["✓ nothing is deleted or replaced without approval (0 approved)."])


def test_an_unapproved_replace_of_a_prod_table_fails(repo_copy: Path, tmp_path: Path) -> None:
    logical = replace_trio("prod", "tenant_profiles")[1]  # what the preview shows without the flag
    code, out, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", digest("prod", logical)))
    assert code == 1
    assert out == [f"✗ replace tenants-tenant_profiles ({TABLE}): not approved"]
    assert err.startswith("refused: 1 delete(s) or replace(s) not approved in Pulumi.prod.yaml")


def test_the_replacement_trio_is_one_replace_line(repo_copy: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "preview.json", digest("prod", *replace_trio("prod", "tenant_profiles")))
    code, out, _ = gate(repo_copy, "prod", path)
    assert code == 1
    assert out == [f"✗ replace tenants-tenant_profiles ({TABLE}): not approved"]


def test_a_table_named_in_approve_data_loss_may_be_replaced_and_no_other(repo_copy: Path, tmp_path: Path) -> None:
    approve(repo_copy, "tenants.tenant_profiles")
    document = digest("prod", *replace_trio("prod", "tenant_profiles"), *replace_trio("prod", "tenant_api_keys"))
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert code == 1
    assert out == [
        f"✓ replace tenants-tenant_profiles ({TABLE}): approved: "
        "tenant-bigquery:approveDataLoss names tenants.tenant_profiles",
        f"✗ replace tenants-tenant_api_keys ({TABLE}): not approved",
    ]


def test_a_dataset_in_approve_data_loss_approves_no_delete(repo_copy: Path, tmp_path: Path) -> None:
    """A dataset id there approves its lowered safeties for `diff --stack`; a replacement still needs the table."""
    approve(repo_copy, "tenants")
    old, new = dataset_state("prod", protect=True), dataset_state("prod", protect=True, location="EU")
    dataset = step(
        "replace",
        dataset_urn("prod"),
        provider=provider_ref("prod"),
        old=old,
        new=new,
        replace_reasons=["location"],
        diff_reasons=["location"],
        detailed_diff={"location": "update-replace"},
    )
    document = digest("prod", dataset, replace_trio("prod", "tenant_profiles")[1])
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert code == 1
    assert [line.split(":")[-1].strip() for line in out] == ["not approved", "not approved"]


def test_a_removed_table_deleted_after_its_approval_run_passes(repo_copy: Path, tmp_path: Path) -> None:
    """Runbook "Approve data loss in prod": the approval run recorded protect off, which ResourceV3 writes as
    no `protect` at all (omitempty), and deletionProtection false; the removal deletes the approval with
    the declaration, so the state is all that says the loss was reviewed."""
    lifted = table_state("prod", "old_table", protect=False, deletion_protection=False)
    assert "protect" not in lifted
    path = write(tmp_path / "preview.json", digest("prod", table_step("delete", "prod", "old_table", old=lifted)))
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, err) == (0, "")
    assert out == [
        f"✓ delete tenants-old_table ({TABLE}): approved: an earlier approved run lifted both protections",
        "✓ nothing is deleted or replaced without approval (1 approved).",
    ]


def test_the_table_removal_runbook_passes_the_gate(repo_copy: Path, tmp_path: Path) -> None:
    """The state the approval run records is what the program registers with the approval in place: the
    oldState of the removal's delete is built from those registrations, not from a guess."""
    stack_file = repo_copy / "Pulumi.prod.yaml"
    before = stack_file.read_text()
    approve(repo_copy, "tenants.tenant_profiles")
    [table] = [r for r in run_stack(repo_copy, "prod").resources if r.name == "tenants-tenant_profiles"]
    stack_file.write_text(before)  # the removal takes the approval away with the declaration
    recorded = table_state(
        "prod",
        "tenant_profiles",
        protect=table.options["protect"],
        deletion_protection=table.inputs["deletionProtection"],
    )
    assert recorded["urn"] == table.urn
    delete = table_step("delete", "prod", "tenant_profiles", old=recorded)
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", digest("prod", delete)))
    assert (code, out[0]) == (
        0,
        f"✓ delete tenants-tenant_profiles ({TABLE}): approved: an earlier approved run lifted both protections",
    )


def test_a_delete_whose_deletion_protection_is_still_on_fails(repo_copy: Path, tmp_path: Path) -> None:
    """`pulumi state unprotect` by hand lifts only protect: the provider's delete would still refuse
    (resourceBigQueryTableDelete reads deletion_protection from the state), and nobody approved it."""
    unprotected = table_state("prod", "old_table", protect=False, deletion_protection=True)
    path = write(tmp_path / "preview.json", digest("prod", table_step("delete", "prod", "old_table", old=unprotected)))
    code, out, _ = gate(repo_copy, "prod", path)
    assert (code, out) == (1, [f"✗ delete tenants-old_table ({TABLE}): not approved"])


def test_a_still_protected_delete_is_a_failed_preview(repo_copy: Path, tmp_path: Path) -> None:
    """The engine fails the preview at a protected delete (step.go DeleteStep.Apply, before its dry-run
    return): the step is listed, an error follows, and the steps after it are never planned."""
    urn = table_urn("prod", "old_table")
    document = digest(
        "prod",
        table_step("delete", "prod", "old_table", old=protected("prod", "old_table")),
        diagnostics=[diagnostic(PROTECTED_DELETE.format(urn=urn), "error", urn)],
    )
    path = write(tmp_path / "preview.json", document)
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f'error: {path}: the preview failed (1 error(s), the first: Preview failed: resource "{urn}" cannot be '
        "deleted); the engine stopped before planning every step, so nothing can be approved: fix the error "
        "and preview again"
    ]


def test_a_failed_program_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    """The program stops before registering anything but the stack; the engine bails before planning any
    delete (deployment_executor.go Execute), so `steps` holds the stack alone and would read as harmless."""
    document = digest(
        "prod",
        diagnostics=[
            diagnostic("adoptExisting is on: ...", "warning"),
            *(diagnostic(message, "error") for message in FAILED_PROGRAM),
        ],
    )
    path = write(tmp_path / "preview.json", document)
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f"error: {path}: the preview failed (3 error(s), the first: {FAILED_PROGRAM[0]}); the engine stopped "
        "before planning every step, so nothing can be approved: fix the error and preview again"
    ]


def test_a_provider_bump_passes(repo_copy: Path, tmp_path: Path) -> None:
    """A new pulumi-gcp registers default_10_3_0 and deletes default_10_2_0, but default providers' steps are
    internal and never reach the JSON (pkg/engine/update.go isInternalStep). The tables point at the new
    provider, created in the preview with the unknown id: those the bump leaves alone are hidden `same`
    steps (providerChanged finds no replacing config change), one it updates is listed."""
    old = protected("prod", "tenant_profiles")
    bumped = provider_ref("prod", default_provider_name("10.3.0"), UNKNOWN_ID)
    new = {**old, "provider": bumped}
    document = digest(
        "prod",
        step(
            "update",
            table_urn("prod", "tenant_profiles"),
            provider=bumped,
            old=old,
            new=new,
            diff_reasons=["labels"],
            detailed_diff={"labels": "update"},
        ),
    )
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert code == 0
    assert out[-1] == "✓ nothing is deleted or replaced without approval (0 approved)."


@pytest.mark.parametrize("name", ["gcp-prod", default_provider_name("10.1.0")])
def test_a_provider_delete_passes_and_its_replace_does_not(repo_copy: Path, tmp_path: Path, name: str) -> None:
    """Deleting a provider resource only unloads its plugin (providers/registry.go Delete, reached through
    step.go getProvider for every pulumi:providers: type); what it managed has steps of its own."""
    other = explicit_provider_state("prod", "other")
    moved = {**other, "inputs": {**other["inputs"], "project": "elsewhere"}}
    document = digest(
        "prod",
        step("delete", provider_urn("prod", name), old=explicit_provider_state("prod", name)),
        step(
            "replace",
            other["urn"],
            old=other,
            new=moved,
            replace_reasons=["project"],
            detailed_diff={"project": "update-replace"},
        ),
    )
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert code == 1
    assert out == [
        f"✓ delete {name} (pulumi:providers:gcp): approved: deleting a provider resource touches nothing in GCP "
        "(pulumi/pulumi providers/registry.go Delete)",
        "✗ replace other (pulumi:providers:gcp): not approved",
    ]


def test_a_dataset_or_provider_replace_is_never_approved_not_even_in_dev(repo_copy: Path, tmp_path: Path) -> None:
    old, new = dataset_state("dev", protect=False), dataset_state("dev", protect=False, location="EU")
    provider = explicit_provider_state("dev", "gcp-dev")
    moved = {**provider, "inputs": {**provider["inputs"], "project": "elsewhere"}}
    document = digest(
        "dev",
        step(
            "replace", dataset_urn("dev"), provider=provider_ref("dev"), old=old, new=new, replace_reasons=["location"]
        ),
        step("replace", provider["urn"], old=provider, new=moved, replace_reasons=["project"]),
    )
    code, out, _ = gate(repo_copy, "dev", write(tmp_path / "preview.json", document))
    assert code == 1
    assert out == [
        "✗ replace tenants (gcp:bigquery/dataset:Dataset): not approved",
        "✗ replace gcp-dev (pulumi:providers:gcp): not approved",
    ]


def test_dev_recreates_tables_without_approval(repo_copy: Path, tmp_path: Path) -> None:
    code, out, _ = gate(repo_copy, "dev", write(tmp_path / "preview.json", digest("dev", *replace_trio("dev", "x"))))
    assert code == 0
    assert out[0].endswith("approved: the stack sets tenant-bigquery:protect: false (tables are recreated freely)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # What reaches the file when `pulumi preview` fails before its display starts (e.g. no login).
        ("", "not JSON (Expecting value, line 1); pass what `pulumi preview --json` printed"),
        ("[]", "expected a JSON object with `steps` (the output of `pulumi preview --json`)"),
        ('{"steps": {}}', "`steps` is not a list"),
        ('{"diagnostics": {}}', "`diagnostics` is not a list"),
        ('{"steps": [{"op": "delete"}]}', "steps[0] has no `op` and `urn` strings"),
        ('{"steps": [{"op": "delete", "urn": "tenants"}]}', "'tenants' is not a Pulumi URN"),
    ],
)
def test_a_file_that_is_no_preview_exits_2_with_one_line(
    repo_copy: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "preview.json"
    path.write_text(content)
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [f"error: {path}: {message}"]


def test_a_missing_file_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    code, _, err = gate(repo_copy, "prod", tmp_path / "nope.json")
    assert code == 2
    assert err.splitlines() == [f"error: cannot read {tmp_path / 'nope.json'}: No such file or directory"]


def lifted_delete(stack: str) -> dict[str, Any]:
    """The delete of a removed table after its approval run: approved, so only the document's own faults fail it."""
    lifted = table_state(stack, "old_table", protect=False, deletion_protection=False)
    return table_step("delete", stack, "old_table", old=lifted)


def test_a_preview_that_changes_nothing_passes(repo_copy: Path, tmp_path: Path) -> None:
    """Nothing to do: the digest still lists the root stack's `same` step (json.go ShowPreviewDigest keeps
    `isRootStack(m)` steps whatever shouldShow says) and counts it (changeSummary {"same": 1})."""
    document = digest("prod")
    assert [s["op"] for s in document["steps"]] == ["same"] and document["changeSummary"] == {"same": 1}
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert (code, out) == (0, ["✓ nothing is deleted or replaced without approval (0 approved)."])


def test_a_preview_of_another_stack_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    """Every URN names the stack previewed (deployment.go generateURN): prod's delete gated with dev's
    settings (no protect there) would pass."""
    path = write(
        tmp_path / "preview.json", digest("prod", table_step("delete", "prod", "x", old=protected("prod", "x")))
    )
    code, out, err = gate(repo_copy, "dev", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f"error: {path}: steps[0] is a resource of stack 'prod' in project 'tenant-bigquery', not of stack 'dev' "
        "in 'tenant-bigquery': gate what `pulumi preview --stack dev --json` printed"
    ]


def test_a_preview_of_another_project_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    """The URN's project is Pulumi.yaml's `name` of the program previewed (urn.go New, from source.Project()):
    a preview of another project's program (here every URN says tenant-bigquery-eu) is not this one's."""
    previewed = json.dumps(digest("dev", *replace_trio("dev", "x")))
    other = previewed.replace("::tenant-bigquery::", "::tenant-bigquery-eu::")
    path = write(tmp_path / "preview.json", json.loads(other))
    code, out, err = gate(repo_copy, "dev", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f"error: {path}: steps[0] is a resource of stack 'dev' in project 'tenant-bigquery-eu', not of stack 'dev' "
        "in 'tenant-bigquery': gate what `pulumi preview --stack dev --json` printed"
    ]


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read the file"), ("runtime: python\n", "name:")])
def test_a_project_without_a_name_exits_2(repo_copy: Path, tmp_path: Path, content: str | None, message: str) -> None:
    pulumi_yaml = repo_copy / "Pulumi.yaml"
    if content is None:
        pulumi_yaml.unlink()
    else:
        pulumi_yaml.write_text(content)
    code, _, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", digest("prod")))
    line = err.splitlines()[0]  # a missing one is the gate's own line; a nameless one, a declaration problem
    assert code == 2 and line.removeprefix("error: ").startswith(f"{pulumi_yaml}") and message in line


def without_root_stack(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "steps": document["steps"][1:]}


def summary(document: dict[str, Any], **counts: int) -> dict[str, Any]:
    return {**document, "changeSummary": {**document["changeSummary"], **counts}}


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


ANOTHER_PREVIEW = "so they are not one preview's: preview again"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "no step of the root stack (pulumi:pulumi:Stack), which every preview lists"),
        ({"steps": []}, "no step of the root stack (pulumi:pulumi:Stack), which every preview lists"),
        (without_root_stack(digest("prod", lifted_delete("prod"))), "no step of the root stack"),
        # A summary that counts a delete the steps do not list (an edited or truncated file).
        (
            summary(digest("prod"), delete=1),
            f"`changeSummary` disagrees with the steps (delete: 1 counted, 0 listed), {ANOTHER_PREVIEW}",
        ),
        (
            summary(digest("prod", lifted_delete("prod")), delete=0),
            f"`changeSummary` disagrees with the steps (delete: 0 counted, 1 listed), {ANOTHER_PREVIEW}",
        ),
        # The engine never counts a replacement's halves (step.go CreateStep.Logical is false when replacing).
        (
            summary(digest("prod", *replace_trio("prod", "x")), **{"create-replacement": 1}),
            f"`changeSummary` disagrees with the steps (create-replacement: 1 counted, 1 listed), {ANOTHER_PREVIEW}",
        ),
        (summary(digest("prod"), destroy=1), "`changeSummary` does not map engine step ops to counts"),
        (summary(digest("prod"), delete=True), "`changeSummary` does not map engine step ops to counts"),
        # A cancelled preview: ShowPreviewDigest breaks at the CancelEvent, before the SummaryEvent.
        (without(digest("prod"), "changeSummary"), "no `changeSummary`: the preview did not finish; preview again"),
        # An op the engine does not have (step.go StepOps) would pass as harmless.
        (digest("prod", table_step("destroy", "prod", "x", old=protected("prod", "x"))), "is none of the engine's"),
        (
            digest("prod", diagnostics=[{**diagnostic("boom", "error"), "severity": "ERROR"}]),
            "diagnostics[0].severity is 'ERROR', none of the engine's (info, info#err, warning, error)",
        ),
        (digest("prod", diagnostics=[{"message": "boom\n"}]), "diagnostics[0].severity is null, none of the engine's"),
        ({**digest("prod"), "diagnostics": ["boom"]}, "diagnostics[0] is 'boom', not an object"),
        (
            digest("prod", {**lifted_delete("prod"), "replaceReasons": "schema"}),
            "steps[1].replaceReasons is not a list of property names",
        ),
    ],
)
def test_a_document_that_is_no_complete_preview_exits_2(
    repo_copy: Path, tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    path = write(tmp_path / "preview.json", document)
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out) == (2, [])
    [line] = err.splitlines()
    assert line.startswith(f"error: {path}: ") and message in line


def test_an_error_whose_message_is_not_text_is_one_clean_line(repo_copy: Path, tmp_path: Path) -> None:
    """PreviewDiagnostic.Message is a Go string (pkg/display/json.go): anything else is no engine's."""
    error = {**diagnostic("boom", "error"), "message": {"text": ["boom"]}}
    path = write(tmp_path / "preview.json", digest("prod", diagnostics=[error]))
    code, _, err = gate(repo_copy, "prod", path)
    assert (code, err.splitlines()) == (2, [f"error: {path}: diagnostics[0].message is an object, not text"])


def test_a_duplicate_key_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    """Go's encoder writes each field once (json.MarshalIndent of a struct), so only an edited file has a key
    twice; Python's reader would keep the second silently, here turning a delete into a `same`. The file is
    the builder's output with one key repeated by hand, as no producer writes it."""
    path = write(
        tmp_path / "preview.json", digest("prod", table_step("delete", "prod", "x", old=protected("prod", "x")))
    )
    text = path.read_text()
    path.write_text(text.replace('"op": "delete",', '"op": "delete", "op": "same",', 1))
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f"error: {path}: the key 'op' appears twice in one object, so the file was edited: pass it as written"
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply to read; pass what `pulumi preview --json` printed"),
        (
            '{"duration": ' + "9" * 5000 + "}",
            "holds a number too long to read; pass what `pulumi preview --json` printed",
        ),
        ("null", "expected a JSON object with `steps` (the output of `pulumi preview --json`)"),
        ('"preview"', "expected a JSON object with `steps` (the output of `pulumi preview --json`)"),
    ],
)
def test_an_unreadable_document_exits_2_with_one_line(
    repo_copy: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "preview.json"
    path.write_text(content)
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, out, err.splitlines()) == (2, [], [f"error: {path}: {message}"])


def migration(tmp_path: Path, stack: str = "prod", **statuses: str) -> Path:
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(migration_plan(stack, **statuses), indent=2))
    return path


def test_a_replace_that_migrate_covers_is_expected_and_nothing_else(repo_copy: Path, tmp_path: Path) -> None:
    """The deploy gates the first preview with the dry-run plan: `migrate --apply` runs before `pulumi up`,
    after which the engine plans no replacement of those tables (the up job gates a refreshed preview
    without --migration)."""
    removed = table_step("delete", "prod", "tenant_subscriptions", old=protected("prod", "tenant_subscriptions"))
    document = digest(
        "prod", replace_trio("prod", "tenant_profiles")[1], replace_trio("prod", "tenant_api_keys")[1], removed
    )
    path = write(tmp_path / "preview.json", document)
    plan = migration(tmp_path, tenant_profiles="planned", tenant_api_keys="refused", tenant_subscriptions="planned")
    code, lines, _ = gate(repo_copy, "prod", path, "--migration", str(plan))
    assert code == 1
    assert lines == [
        f"✓ replace tenants-tenant_profiles ({TABLE}): approved: `migrate --apply` brings "
        "tenants.tenant_profiles to the declaration with every row first",
        f"✗ replace tenants-tenant_api_keys ({TABLE}): not approved",
        f"✗ delete tenants-tenant_subscriptions ({TABLE}): not approved",
    ]
    assert gate(repo_copy, "prod", path)[0] == 1


def test_a_protected_replace_fails_a_preview_without_ignore_protect_even_when_migrate_covers_it(
    repo_copy: Path, tmp_path: Path
) -> None:
    """Why the deploy's first preview passes --ignore-protect (.github/workflows/pulumi-up.yml): prod's tables are
    protected in state and in the program, so the engine reports an error for each replace
    (step_generator.go continueStepsFromDiff), and a preview with an error is no basis for an approval. With
    the flag the same steps come without it (replace_trio: protect on both sides), and the gate approves the
    migrated table and refuses the rest from the stack's `protect` setting and its approvals (previewgate.py
    `_approval`; the state's protections count only for a delete, `_lifted`)."""
    urn = table_urn("prod", "tenant_profiles")
    document = digest(
        "prod",
        replace_trio("prod", "tenant_profiles")[1],
        diagnostics=[diagnostic(PROTECTED_REPLACE.format(urn=urn), "error", urn)],
    )
    plan = migration(tmp_path, tenant_profiles="planned")
    code, out, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", document), "--migration", str(plan))
    assert (code, out) == (2, [])
    assert f'the first: unable to replace resource "{urn}")' in err
    without_error = write(tmp_path / "ignored.json", digest("prod", replace_trio("prod", "tenant_profiles")[1]))
    assert gate(repo_copy, "prod", without_error, "--migration", str(plan))[0] == 0


def test_a_replace_is_judged_by_the_stacks_protect_setting_not_by_the_state(repo_copy: Path, tmp_path: Path) -> None:
    """previewgate.py `_approval`: a replace is approved by the stack's settings (approveDataLoss, `protect`) or
    the migration plan; the state's protections (`_lifted`) approve only a delete. So a replace whose state shows
    both protections off stays refused in prod, and the README and the workflow say so."""
    lifted = table_state("prod", "tenant_profiles", protect=False, deletion_protection=False)
    new = table_state("prod", "tenant_profiles", protect=True, deletion_protection=True, exists=False)
    step = table_step("replace", "prod", "tenant_profiles", old=lifted, new=new, replace_reasons=["clustering"])
    path = write(tmp_path / "preview.json", digest("prod", step))
    assert gate(repo_copy, "prod", path)[1] == [f"✗ replace tenants-tenant_profiles ({TABLE}): not approved"]
    readme = (REPO_ROOT / "README.md").read_text()
    workflow = (REPO_ROOT / ".github" / "workflows" / "pulumi-up.yml").read_text()
    assert "the gate decides a replace from the stack's settings" in readme
    assert "The gate decides a replace from the\n        # stack's settings" in workflow


def test_a_migration_file_that_is_not_one_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[]")
    code, _, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", digest("prod")), "--migration", str(wrong))
    assert code == 2
    assert err.strip().endswith("expected the output of `migrate --format json` (an object with `tables`)")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apply": True}, "the plan is no dry run (`apply` is true, not false)"),
        ({"apply": None}, "the plan is no dry run (`apply` is null, not false)"),
        ({"steps": "ALTER TABLE"}, "tables[0].steps is 'ALTER TABLE', not a non-empty list of steps"),
        ({"steps": []}, "tables[0].steps is an array, not a non-empty list of steps"),
        ({"steps": [1]}, "tables[0].steps is an array, not a non-empty list of steps"),
        ({"steps": [{"kind": "sql"}]}, "tables[0].steps is an array, not a non-empty list of steps"),
        ({"refusals": ["no lossless path"]}, "tables[0] is planned and refused at once"),
    ],
)
def test_a_migration_plan_that_migrate_would_not_write_exits_2(
    repo_copy: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """`migrate --format json` without --apply writes `apply: false` (live_migrate.MigrateReport.to_json) and
    marks a table planned only with steps and no refusals (live_migrate.py _one), each step
    an object of `kind`, `action` and `reason` text (migration.MigrationStep.to_json). Any truthy `steps` counted."""
    plan = migration_plan("prod", tenant_profiles="planned")
    if "apply" in change:
        plan["apply"] = change["apply"]
    else:
        plan["tables"][0].update(change)
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(plan, indent=2))
    preview = write(tmp_path / "preview.json", digest("prod", replace_trio("prod", "tenant_profiles")[1]))
    code, out, err = gate(repo_copy, "prod", preview, "--migration", str(path))
    assert (code, out) == (2, [])
    [line] = err.splitlines()
    assert line.startswith(f"error: {path}: {message}"), line


def migrated_replace(reasons: list[str] | None) -> dict[str, Any]:
    """The logical replace of tenant_profiles, the provider naming `reasons` as what replaces it."""
    replace = replace_trio("prod", "tenant_profiles")[1]
    if reasons is None:
        return {k: v for k, v in replace.items() if k != "replaceReasons"}
    return {**replace, "replaceReasons": reasons}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (migration_plan("dev", tenant_profiles="planned"), "the plan is for stack 'dev', not 'prod'"),
        (
            migration_plan("prod", "acme-data-platform-staging", tenant_profiles="planned"),
            "the plan is for project 'acme-data-platform-staging', but stack prod deploys to 'acme-data-platform-prod'",
        ),
        (
            without(migration_plan("prod", tenant_profiles="planned"), "stack"),
            "the plan names no `stack` and `project` it was made for",
        ),
    ],
)
def test_a_migration_plan_of_another_stack_or_project_exits_2(
    repo_copy: Path, tmp_path: Path, plan: dict[str, Any], message: str
) -> None:
    """A plan says what `migrate --apply` does to its own stack's tables (its `stack`, reporters.migrate_json;
    its `project`, the GCP project it read); this stack's replace is not covered by it."""
    path = write(tmp_path / "preview.json", digest("prod", migrated_replace(["timePartitioning"])))
    plan_path = write(tmp_path / "migration.json", plan)
    code, out, err = gate(repo_copy, "prod", path, "--migration", str(plan_path))
    assert (code, out) == (2, [])
    assert err.splitlines() == [
        f"error: {plan_path}: {message}; plan this stack's migrations with `migrate --stack prod --format json`"
    ]


@pytest.mark.parametrize(
    "reasons",
    [
        ["tableId"],  # ForceNew in the provider: a new table, whatever migrate does to the old one
        ["schema", "tableId"],
        None,  # a changed replacement trigger: the engine replaces without asking the provider (step_generator.go)
    ],
)
def test_migrate_approves_a_replace_only_for_what_it_migrates(
    repo_copy: Path, tmp_path: Path, reasons: list[str] | None
) -> None:
    """replaceReasons are the provider's replacing keys (PreviewStep.ReplaceReasons, pkg/display/json.go, from
    the bridge's Diff: top-level names); migrate brings only migration.MIGRATED_PROPERTIES to the declaration."""
    plan = write(tmp_path / "migration.json", migration_plan("prod", tenant_profiles="planned"))
    for covered, expected in ((["schema", "timePartitioning"], 0), (reasons, 1)):
        path = write(tmp_path / "preview.json", digest("prod", migrated_replace(covered)))
        code, out, _ = gate(repo_copy, "prod", path, "--migration", str(plan))
        assert code == expected, (covered, out)
    assert out == [f"✗ replace tenants-tenant_profiles ({TABLE}): not approved"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda plan: plan["tables"][0].update(table="tenant_profiles"),
            "tables[0].table is 'tenant_profiles', not dataset.table",
        ),
        (lambda plan: plan["tables"][0].pop("table"), "tables[0].table is null, not dataset.table"),
        (lambda plan: plan["tables"].append(["x"]), "tables[1].table is null, not dataset.table"),
    ],
)
def test_a_migration_entry_that_names_no_table_exits_2(
    repo_copy: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    path = write(tmp_path / "preview.json", digest("prod", migrated_replace(["timePartitioning"])))
    plan = migration_plan("prod", tenant_profiles="planned")
    edit(plan)  # by hand: migrate always writes dataset.table (TablePlan.table, the catalog key)
    plan_path = write(tmp_path / "migration.json", plan)
    code, _, err = gate(repo_copy, "prod", path, "--migration", str(plan_path))
    assert (code, err.splitlines()) == (2, [f"error: {plan_path}: {message}"])


def test_an_unreadable_migration_plan_exits_2_naming_it(repo_copy: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "preview.json", digest("prod"))
    plan_path = tmp_path / "migration.json"
    plan_path.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    code, _, err = gate(repo_copy, "prod", path, "--migration", str(plan_path))
    assert (code, err.splitlines()) == (
        2,
        [f"error: {plan_path}: nested too deeply to read; pass what `migrate --format json` printed"],
    )


# ---------------------------------------------------------------- runbook "Retire a table without deleting it"


def test_the_removal_of_a_retired_table_passes_as_kept(repo_copy: Path, tmp_path: Path) -> None:
    """The delete's oldState is what the retiring run recorded: the program's registration with `retired: true`
    (protect off, retainOnDelete on), built from those registrations, not from a guess. The engine then forgets
    the table and calls no provider (step.go DeleteStep.Apply)."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    before = declaration.read_text()
    declaration.write_text(before.replace("  tenant_profiles:\n", "  tenant_profiles:\n    retired: true\n", 1))
    [table] = [r for r in run_stack(repo_copy, "prod").resources if r.name == "tenants-tenant_profiles"]
    recorded = table_state(
        "prod",
        "tenant_profiles",
        protect=table.options["protect"],
        deletion_protection=table.inputs["deletionProtection"],
        retain_on_delete=table.options["retainOnDelete"],
    )
    assert recorded["retainOnDelete"] is True and "protect" not in recorded
    assert recorded["inputs"]["deletionProtection"] is True  # not lifted: the provider's delete never runs
    delete = table_step("delete", "prod", "tenant_profiles", old=recorded)
    code, out, err = gate(repo_copy, "prod", write(tmp_path / "preview.json", digest("prod", delete)))
    assert (code, err) == (0, "")
    assert out == [
        f"✓ delete tenants-tenant_profiles ({TABLE}): approved: retired (state records retainOnDelete): no longer "
        "managed; the table and its rows stay in BigQuery",
        "✓ nothing is deleted or replaced without approval (1 approved).",
    ]


def test_retain_on_delete_approves_neither_a_protected_delete_nor_a_replace(repo_copy: Path, tmp_path: Path) -> None:
    """Still protected in state (by hand: the program never registers both), the engine refuses the delete before it
    reads retainOnDelete, unless protect is ignored: this is the form of the deploy's `pulumi preview
    --ignore-protect` (with a migration), which reports no error for it. A replacement keeps the old table and
    its create fails with Already Exists. Neither is what retiring means, so neither passes as kept."""
    protected_retained = table_state("prod", "old_table", protect=True, deletion_protection=True, retain_on_delete=True)
    retained = table_state("prod", "tenant_profiles", protect=False, deletion_protection=True, retain_on_delete=True)
    document = digest(
        "prod",
        table_step("delete", "prod", "old_table", old=protected_retained),
        table_step("replace", "prod", "tenant_profiles", old=retained, new=retained, replace_reasons=["schema"]),
    )
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert (code, out) == (
        1,
        [
            f"✗ delete tenants-old_table ({TABLE}): not approved",
            f"✗ replace tenants-tenant_profiles ({TABLE}): not approved",
        ],
    )


def recorded_view(run: ProgramRun) -> dict[str, Any]:
    """The repository's view as an `up` records it: the program's registration (inputs `view`, no protect,
    deletion protection off) in a table's ResourceV3, under the view's own URN."""
    [view] = [r for r in run.resources if r.name == "tenant_views-tenant_usage"]
    assert "protect" not in {k for k, v in view.options.items() if v}
    state = table_state("prod", "tenant_usage", protect=False, deletion_protection=False)
    inputs = {**view.inputs}
    state.update(urn=view.urn, parent=view.parent, inputs=inputs, outputs={**inputs, "id": state["id"]})
    return state


def test_a_view_removed_or_replaced_in_prod_passes_and_a_table_replaced_by_a_view_does_not(
    repo_copy: Path, tmp_path: Path, planned: Callable[[str], ProgramRun]
) -> None:
    """A view holds no rows (README, Views): its delete or replace loses none; the old state says what is lost."""
    view = recorded_view(planned("prod"))
    urn = view["urn"]
    table = {**protected("prod", "tenant_profiles")}
    as_view = {**view, "urn": table["urn"], "parent": table["parent"]}
    approved = "approved: a view (state records `view`): it holds no rows, and its file rebuilds it"
    delete = digest("prod", step("delete", urn, provider=provider_ref("prod"), old=view))
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "delete.json", delete))
    assert (code, out[0]) == (0, f"✓ delete tenant_views-tenant_usage ({TABLE}): {approved}")
    document = digest(
        "prod",
        step("replace", urn, provider=provider_ref("prod"), old=view, new=view, replace_reasons=["project"]),
        table_step("replace", "prod", "tenant_profiles", old=table, new=as_view, replace_reasons=["view"]),
    )
    code, out, _ = gate(repo_copy, "prod", write(tmp_path / "preview.json", document))
    assert (code, out) == (
        1,
        [
            f"✓ replace tenant_views-tenant_usage ({TABLE}): {approved}",
            f"✗ replace tenants-tenant_profiles ({TABLE}): not approved",
        ],
    )
