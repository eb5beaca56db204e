"""`preview-gate`: the deploy refuses a `pulumi preview --json` that deletes or replaces what is not approved.

The sample documents have the shape of Pulumi's PreviewDigest (pulumi/pulumi pkg/display/json.go: `steps` of
PreviewStep with `op`, `urn`, `oldState`, `newState`); the op names are the StepOp constants of
pkg/resource/deploy/step.go (`delete`, `replace`, `create-replacement`, `delete-replaced`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import invoke

STACK_URN = "urn:pulumi:{stack}::tenant-bigquery::pulumi:pulumi:Stack::tenant-bigquery-{stack}"
PARENT = "pulumi:pulumi:Stack$tenant-bigquery:bigquery:DatasetWithTables"


def urn(stack: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::tenant-bigquery::{PARENT}${resource_type}::{name}"


def table_urn(stack: str, table: str) -> str:
    return urn(stack, "gcp:bigquery/table:Table", f"tenants-{table}")


def step(op: str, resource_urn: str, **extra: Any) -> dict[str, Any]:
    return {"op": op, "urn": resource_urn, "provider": "", "detailedDiff": None, **extra}


def preview(tmp_path: Path, *steps: dict[str, Any], stack: str = "prod") -> Path:
    document = {
        "config": {"gcp:project": f"acme-data-platform-{stack}"},
        "steps": [step("same", STACK_URN.format(stack=stack)), *steps],
        "duration": 1_000_000_000,
        "changeSummary": {"same": 10},
    }
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(document))
    return path


def gate(root: Path, stack: str, path: Path) -> tuple[int, list[str], str]:
    result = invoke("preview-gate", "--stack", stack, "--root", str(root), str(path))
    return result.returncode, result.stdout.splitlines(), result.stderr


def approve(root: Path, *tables: str) -> None:
    prod = root / "Pulumi.prod.yaml"
    entries = "".join(f"    - {table}\n" for table in tables)
    prod.write_text(prod.read_text() + f"  tenant-bigquery:approveDataLoss:\n{entries}")


def test_updates_and_creates_pass(repo_copy: Path, tmp_path: Path) -> None:
    path = preview(
        tmp_path,
        step("update", table_urn("prod", "tenant_profiles"), diffReasons=["schema"]),
        step("create", table_urn("prod", "new_table")),
    )
    code, out, err = gate(repo_copy, "prod", path)
    assert (code, err) == (0, "")
    # The approver reads what else the commit changes in the run's summary.
    assert out == [
        "2 other change(s):",
        "  update tenants-tenant_profiles (gcp:bigquery/table:Table): schema",
        "  create tenants-new_table (gcp:bigquery/table:Table)",
        "✓ nothing is deleted or replaced without approval (0 approved).",
    ]


@pytest.mark.parametrize("op", ["replace", "delete", "create-replacement", "delete-replaced", "import-replacement"])
def test_an_unapproved_replace_or_delete_of_a_prod_table_fails(repo_copy: Path, tmp_path: Path, op: str) -> None:
    code, out, err = gate(repo_copy, "prod", preview(tmp_path, step(op, table_urn("prod", "tenant_profiles"))))
    assert code == 1
    assert out == [f"✗ {op} tenants-tenant_profiles (gcp:bigquery/table:Table): not approved"]
    assert err.startswith("refused: 1 delete(s) or replace(s) not approved in Pulumi.prod.yaml")


def test_a_replace_reported_as_three_steps_is_one_line(repo_copy: Path, tmp_path: Path) -> None:
    table = table_urn("prod", "tenant_profiles")
    path = preview(tmp_path, step("create-replacement", table), step("replace", table), step("delete-replaced", table))
    code, out, _ = gate(repo_copy, "prod", path)
    assert code == 1
    assert len(out) == 1


def test_a_table_named_in_approve_data_loss_may_be_replaced_and_no_other(repo_copy: Path, tmp_path: Path) -> None:
    approve(repo_copy, "tenants.tenant_profiles")
    path = preview(
        tmp_path,
        step("replace", table_urn("prod", "tenant_profiles")),
        step("replace", table_urn("prod", "tenant_api_keys")),
    )
    code, out, _ = gate(repo_copy, "prod", path)
    assert code == 1
    assert out == [
        "✓ replace tenants-tenant_profiles (gcp:bigquery/table:Table): approved: "
        "tenant-bigquery:approveDataLoss names tenants.tenant_profiles",
        "✗ replace tenants-tenant_api_keys (gcp:bigquery/table:Table): not approved",
    ]


def test_a_dataset_in_approve_data_loss_approves_no_delete(repo_copy: Path, tmp_path: Path) -> None:
    """A dataset id there approves its lowered safeties for `diff --stack`; a replacement still needs the table."""
    approve(repo_copy, "tenants")
    path = preview(
        tmp_path,
        step("replace", urn("prod", "gcp:bigquery/dataset:Dataset", "tenants")),
        step("replace", table_urn("prod", "tenant_profiles")),
    )
    code, out, _ = gate(repo_copy, "prod", path)
    assert code == 1
    assert [line.split(":")[-1].strip() for line in out] == ["not approved", "not approved"]


def test_a_removed_table_whose_protection_an_earlier_run_lifted_may_be_deleted(repo_copy: Path, tmp_path: Path) -> None:
    """Removing a table deletes its approval with its declaration; the state still says it was approved."""
    lifted = {"protect": False, "inputs": {"deletionProtection": False}}
    still_protected = {"protect": True, "inputs": {"deletionProtection": True}}
    path = preview(
        tmp_path,
        step("delete", table_urn("prod", "old_table"), oldState=lifted),
        step("delete", table_urn("prod", "other_table"), oldState=still_protected),
    )
    code, out, _ = gate(repo_copy, "prod", path)
    assert code == 1
    assert out[0].startswith("✓ delete tenants-old_table") and out[0].endswith(
        "an earlier approved run lifted both protections"
    )
    assert out[1] == "✗ delete tenants-other_table (gcp:bigquery/table:Table): not approved"


@pytest.mark.parametrize(
    ("resource_type", "name"),
    [
        ("gcp:bigquery/dataset:Dataset", "tenants"),
        ("pulumi:providers:gcp", "default_8_0_0"),
    ],
)
def test_a_dataset_or_provider_replace_is_never_approved_not_even_in_dev(
    repo_copy: Path, tmp_path: Path, resource_type: str, name: str
) -> None:
    path = preview(tmp_path, step("replace", urn("dev", resource_type, name)), stack="dev")
    code, out, _ = gate(repo_copy, "dev", path)
    assert code == 1
    assert out == [f"✗ replace {name} ({resource_type}): not approved"]


def test_dev_recreates_tables_without_approval(repo_copy: Path, tmp_path: Path) -> None:
    code, out, _ = gate(
        repo_copy, "dev", preview(tmp_path, step("replace", table_urn("dev", "tenant_profiles")), stack="dev")
    )
    assert code == 0
    assert out[0].endswith("approved: the stack sets tenant-bigquery:protect: false (tables are recreated freely)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not JSON (Expecting value, line 1); pass what `pulumi preview --json` printed"),
        ("[]", "expected a JSON object with `steps` (the output of `pulumi preview --json`)"),
        ('{"steps": {}}', "`steps` is not a list"),
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


def migration(tmp_path: Path, **statuses: str) -> Path:
    """What `migrate --format json` prints, per table: planned with steps, refused, or nothing to do."""
    tables = [
        {
            "table": f"tenants.{table}",
            "status": status,
            "steps": [{"kind": "sql"}] if status == "planned" else [],
            "refusals": ["no lossless path"] if status == "refused" else [],
        }
        for table, status in statuses.items()
    ]
    path = tmp_path / "migration.json"
    path.write_text(json.dumps({"project": "p", "apply": False, "ok": True, "tables": tables}))
    return path


def test_a_replace_that_migrate_covers_is_expected_and_nothing_else(repo_copy: Path, tmp_path: Path) -> None:
    """The deploy gates the first preview with the dry-run plan: `migrate --apply` runs before `pulumi up`,
    after which the engine plans no replacement of those tables (the up job gates a refreshed preview
    without --migration)."""
    path = preview(
        tmp_path,
        step("replace", table_urn("prod", "tenant_profiles")),
        step("replace", table_urn("prod", "tenant_api_keys")),
        step("delete", table_urn("prod", "tenant_subscriptions")),
    )
    plan = migration(tmp_path, tenant_profiles="planned", tenant_api_keys="refused", tenant_subscriptions="planned")
    result = invoke("preview-gate", "--stack", "prod", "--root", str(repo_copy), str(path), "--migration", str(plan))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        "✓ replace tenants-tenant_profiles (gcp:bigquery/table:Table): approved: `migrate --apply` brings "
        "tenants.tenant_profiles to the declaration with every row first" in lines
    )
    assert "✗ replace tenants-tenant_api_keys (gcp:bigquery/table:Table): not approved" in lines
    assert "✗ delete tenants-tenant_subscriptions (gcp:bigquery/table:Table): not approved" in lines
    without = gate(repo_copy, "prod", preview(tmp_path, step("replace", table_urn("prod", "tenant_profiles"))))
    assert without[0] == 1


def test_a_migration_file_that_is_not_one_exits_2(repo_copy: Path, tmp_path: Path) -> None:
    path = preview(tmp_path)
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[]")
    result = invoke("preview-gate", "--stack", "prod", "--root", str(repo_copy), str(path), "--migration", str(wrong))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("expected the output of `migrate --format json` (an object with `tables`)")
