"""The prod gate: approveDataLoss lifts both protections for exactly the tables it names."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import FIXTURE_ROOT, resources_of

from infra.model.catalog import load_catalog
from infra.model.problems import DeclarationError
from infra.model.registrations import ProgramRun
from infra.model.settings import parse_settings, read_stack_file
from infra.pulumi_edge.mockrun import run_program
from infra.pulumi_edge.program import run

TABLE = "gcp:bigquery/table:Table"
DATASET = "gcp:bigquery/dataset:Dataset"


def plan_prod(**extra: Any) -> ProgramRun:
    config, secret_keys = read_stack_file(FIXTURE_ROOT, "prod")
    config = {**config, **{f"tenant-bigquery:{key}": value for key, value in extra.items()}}
    return run_program("prod", config, lambda: run(FIXTURE_ROOT), secret_keys)


def protection(result: ProgramRun) -> dict[str, tuple[bool, bool]]:
    """Per table: (Pulumi protect, BigQuery deletion protection)."""
    return {
        r.inputs["tableId"]: (r.options["protect"], bool(r.inputs.get("deletionProtection")))
        for r in resources_of(result, TABLE)
    }


def test_without_approval_every_prod_table_is_protected_twice() -> None:
    result = plan_prod()
    assert set(protection(result).values()) == {(True, True)}
    assert len(protection(result)) == 9


@pytest.mark.parametrize(
    "approved", [["tenants.tenant_profiles"], ["tenants.tenant_api_keys", "tenants.scheduled_pipeline_runs"]]
)
def test_approval_lifts_both_protections_for_exactly_the_named_tables(approved: list[str]) -> None:
    result = plan_prod(approveDataLoss=approved)

    names = {table.split(".")[1] for table in approved}
    assert {t: p for t, p in protection(result).items() if t in names} == {t: (False, False) for t in names}
    assert set(p for t, p in protection(result).items() if t not in names) == {(True, True)}
    [dataset] = resources_of(result, DATASET)
    assert dataset.options["protect"] is True


def test_approval_changes_nothing_else_about_the_tables() -> None:
    before = {r.name: r for r in resources_of(plan_prod(), TABLE)}
    after = {r.name: r for r in resources_of(plan_prod(approveDataLoss=["tenants.tenant_profiles"]), TABLE)}

    def without_protection(resource: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = {k: v for k, v in resource.inputs.items() if k != "deletionProtection"}
        # The marker label the policy pack reads (infra/pulumi_edge/resources.py table_labels) may follow the approval.
        inputs["labels"] = {k: v for k, v in inputs["labels"].items() if k != "data-loss"}
        options = {k: v for k, v in resource.options.items() if k != "protect"}
        return inputs, options

    assert {n: without_protection(r) for n, r in before.items()} == {n: without_protection(r) for n, r in after.items()}


@pytest.mark.parametrize(
    ("approval", "path"),
    [
        (["tenants.nope"], "approveDataLoss.tenants.nope"),
        (["tenants.*"], "approveDataLoss.tenants.*"),
        (["*"], "approveDataLoss.*"),
        (["tenant_profiles"], "approveDataLoss.tenant_profiles"),
    ],
)
def test_approval_must_name_declared_tables_one_by_one(approval: list[str], path: str) -> None:
    config, _ = read_stack_file(FIXTURE_ROOT, "prod")
    with pytest.raises(DeclarationError) as raised:
        approving = {**config, "tenant-bigquery:approveDataLoss": approval}
        parse_settings("prod", approving, "Pulumi.prod.yaml", load_catalog(FIXTURE_ROOT))
    [problem] = raised.value.problems
    assert str(problem).startswith(f"Pulumi.prod.yaml:config.tenant-bigquery:{path}: names no declared table; ")
    assert "approve tables one by one as dataset.table" in problem.message


def test_approval_must_be_a_list_of_strings() -> None:
    config, _ = read_stack_file(FIXTURE_ROOT, "prod")
    with pytest.raises(DeclarationError) as raised:
        parse_settings("prod", {**config, "tenant-bigquery:approveDataLoss": "tenants.tenant_profiles"}, "P.yaml")
    assert [str(p) for p in raised.value.problems] == [
        "P.yaml:config.tenant-bigquery:approveDataLoss: must be a list, e.g. [a, b]; got 'tenants.tenant_profiles'"
    ]
