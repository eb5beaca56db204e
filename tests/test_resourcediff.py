"""The registration diff: every input property and option of every resource has a rule, named by its source."""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pulumi_gcp
import pytest
from helpers import FIXTURE_TABLES, REPO_ROOT

from infra.analysis.changes import DiffResult, Verdict
from infra.analysis.resourcediff import (
    CLASSIFIED_TABLE_PROPERTIES,
    DATASET_RULES,
    OPTIONS,
    TABLE_RULES,
    compare_registrations,
)
from infra.model.declared import BASELINE_TRIGGER, DATASET_TYPE, TABLE_TYPE
from infra.model.registrations import ProgramRun, Registration, Registrations

Plan = Callable[[str], ProgramRun]
PROFILES = "tenants-tenant_profiles"


def camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def sdk_properties(args: type) -> set[str]:
    """Every input property of a pulumi-gcp resource, as the engine names it."""
    parameters = inspect.signature(args).parameters  # the constructor's: TableArgs(dataset_id=..., ...)
    return {camel(p) for p in parameters if p not in ("self", "__self__")}


def test_every_table_input_property_of_the_installed_sdk_has_a_rule() -> None:
    properties = sdk_properties(pulumi_gcp.bigquery.TableArgs)
    assert "schema" in properties and len(properties) > 20
    ruled = set(TABLE_RULES) | CLASSIFIED_TABLE_PROPERTIES
    assert properties - ruled == set(), "a property of bigquery.Table without a rule in infra/analysis/resourcediff.py"
    assert ruled - properties == set(), "a rule for a property bigquery.Table no longer has"


def test_every_dataset_input_property_of_the_installed_sdk_has_a_rule() -> None:
    properties = sdk_properties(pulumi_gcp.bigquery.DatasetArgs)
    assert "location" in properties
    assert properties - set(DATASET_RULES) == set(), "a property of bigquery.Dataset without a rule"
    assert set(DATASET_RULES) - properties == set(), "a rule for a property bigquery.Dataset no longer has"


def test_every_recorded_option_has_a_rule(planned: Plan) -> None:
    for stack in ("dev", "prod"):
        for resource in planned(stack).resources:
            assert set(resource.options) <= set(OPTIONS), resource.name


# ---------------------------------------------------------------- helpers


def registrations(plan: ProgramRun) -> Registrations:
    return plan.registrations()


def changed(
    base: Registrations,
    name: str,
    type_: str = TABLE_TYPE,
    inputs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    approve: list[str] | None = None,
) -> Registrations:
    """`base` with one resource's inputs or options changed (a None value removes the key)."""

    def edit(resource: Registration) -> Registration:
        if (resource.type, resource.name) != (type_, name):
            return resource
        new_inputs, new_options = copy.deepcopy(dict(resource.inputs)), dict(resource.options)
        for target, edits in ((new_inputs, inputs or {}), (new_options, options or {})):
            for key, value in edits.items():
                target.pop(key, None) if value is None else target.__setitem__(key, value)
        return Registration(resource.urn, resource.type, resource.name, resource.parent, new_inputs, new_options)

    config = dict(base.config) | ({"tenant-bigquery:approveDataLoss": approve} if approve is not None else {})
    return Registrations(tuple(edit(r) for r in base.resources), config)


def compare(old: Registrations, new: Registrations) -> DiffResult:
    return compare_registrations(old, new, stack="prod", old_label="base", new_label="now")


def only(result: DiffResult) -> dict[str, tuple[str, Verdict]]:
    return {r.name: (c.path, c.verdict) for r in result.resources for c in r.changes}


@pytest.fixture(scope="module")
def prod(planned_fixture: Plan) -> Registrations:
    return registrations(planned_fixture("prod"))


@pytest.fixture(scope="module")
def dev(planned_fixture: Plan) -> Registrations:
    return registrations(planned_fixture("dev"))


# ---------------------------------------------------------------- properties


def test_the_same_registrations_are_no_changes(prod: Registrations) -> None:
    result = compare(prod, prod)
    assert result.resources == () and result.unchanged == len(FIXTURE_TABLES)


def test_a_property_without_a_rule_is_an_update_not_dropped(prod: Registrations) -> None:
    result = compare(prod, changed(prod, PROFILES, inputs={"somethingNew": True}))
    [resource] = result.resources
    [change] = resource.changes
    assert (change.path, change.verdict) == ("(somethingNew)", Verdict.UPDATE)
    assert change.reason.startswith("unknown: somethingNew none -> true; reported as an update (no rule known)")


def test_an_unknown_option_is_an_update_not_dropped(prod: Registrations) -> None:
    result = compare(prod, changed(prod, PROFILES, options={"deletedWith": "urn:x"}))
    assert only(result) == {"tenants.tenant_profiles": ("(option deletedWith)", Verdict.UPDATE)}


@pytest.mark.parametrize(
    ("name", "type_", "inputs", "path", "verdict"),
    [
        (PROFILES, TABLE_TYPE, {"expirationTime": 1_900_000_000_000}, "(expirationTime)", Verdict.UPDATE_DESTRUCTIVE),
        (PROFILES, TABLE_TYPE, {"friendlyName": "Profiles"}, "(friendlyName)", Verdict.UPDATE),
        (PROFILES, TABLE_TYPE, {"project": "elsewhere"}, "(project)", Verdict.REPLACE),
        ("tenants", DATASET_TYPE, {"description": "Other words"}, "(description)", Verdict.UPDATE),
        ("tenants", DATASET_TYPE, {"labels": {"env": "prod"}}, "(labels)", Verdict.UPDATE),
        ("tenants", DATASET_TYPE, {"project": "elsewhere"}, "(project)", Verdict.REPLACE),
        ("tenants", DATASET_TYPE, {"location": "us"}, "(location)", Verdict.NOOP),
        ("tenants", DATASET_TYPE, {"location": "EU"}, "(location)", Verdict.REPLACE),
    ],
)
def test_provider_rules_of_single_properties(
    prod: Registrations, name: str, type_: str, inputs: dict[str, Any], path: str, verdict: Verdict
) -> None:
    """terraform-provider-google resource_bigquery_table.go / resource_bigquery_dataset.go: ForceNew properties
    replace (project, location), CaseDiffSuppress on the dataset location, everything else is updated in place
    (resourceBigQueryTableUpdate, resourceBigQueryDatasetUpdate)."""
    result = compare(prod, changed(prod, name, type_, inputs=inputs))
    [resource] = result.resources
    # A replaced dataset's delete is also judged on what it holds (below): here only the property's rule.
    own = [c for c in resource.changes if c.path != "(dataset replaced)"]
    assert [(c.path, c.verdict) for c in own] == [(path, verdict)]
    assert "terraform-provider-google resource_bigquery_" in own[0].reason


def test_a_replaced_dataset_is_refused_while_it_holds_tables_unless_state_deletes_its_contents(
    prod: Registrations, dev: Registrations
) -> None:
    """terraform-provider-google resource_bigquery_dataset.go resourceBigQueryDatasetDelete sends
    deleteContents from state; BigQuery refuses to delete a dataset holding tables without it (REST datasets.delete).
    With it, the tables go with the dataset, and the engine leaves them as they are (pulumi/pulumi
    pkg/resource/deploy/step_generator.go calculateDependentReplacements: property dependencies only)."""
    refused = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"location": "EU"}))
    [dataset] = refused.resources
    assert (dataset.kind, dataset.verdict) == ("dataset", Verdict.REJECTED)
    assert dataset.changes[0].path == "(dataset replaced)"
    assert dev.resources and any(r.inputs.get("deleteContentsOnDestroy") for r in dev.resources)
    emptied = compare(dev, changed(dev, "tenants", DATASET_TYPE, inputs={"location": "EU"}))
    tables = [r for r in emptied.resources if r.kind == "table"]
    assert len(tables) == len(FIXTURE_TABLES) and emptied.unchanged == 0
    assert {t.verdict for t in tables} == {Verdict.REMOVED}
    assert not any(r.kind == "component" for r in emptied.resources)


def test_ignore_changes_keeps_a_property_from_being_sent(prod: Registrations) -> None:
    """step_generator.go diff: processIgnoreChanges puts the old value back for an ignored property."""
    new = changed(prod, PROFILES, inputs={"labels": {"env": "x"}}, options={"ignoreChanges": ["labels"]})
    result = compare(changed(prod, PROFILES, options={"ignoreChanges": ["labels"]}), new)
    assert {c.verdict for r in result.resources for c in r.changes} == {Verdict.NOOP}


def test_a_replacement_while_importing_is_refused(prod: Registrations) -> None:
    """step_generator.go continueStepsFromDiff: a replacement of a resource whose goal has an ID is an error."""
    importing = changed(prod, PROFILES, options={"import": "projects/p/datasets/tenants/tables/tenant_profiles"})
    result = compare(importing, changed(importing, PROFILES, inputs={"project": "elsewhere"}))
    assert result.resources[0].verdict is Verdict.REJECTED


# ---------------------------------------------------------------- the replacement trigger


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        (None, BASELINE_TRIGGER, Verdict.NOOP),
        (None, "tenants.tenant_profiles=1", Verdict.NOOP),
        (BASELINE_TRIGGER, None, Verdict.NOOP),
        (BASELINE_TRIGGER, "tenants.tenant_profiles=1", Verdict.REPLACE),
        ("tenants.tenant_profiles=1", BASELINE_TRIGGER, Verdict.REPLACE),
        ("tenants.tenant_profiles=1", "tenants.tenant_profiles=2", Verdict.REPLACE),
    ],
    ids=["first-baseline", "first-token", "dropped", "set", "removed", "changed"],
)
def test_replacement_trigger_null_semantics(
    dev: Registrations, before: str | None, after: str, verdict: Verdict
) -> None:
    """pulumi/pulumi pkg/resource/deploy/step_generator.go shouldTriggerReplace: unknowns replace, a null on
    either side never does, otherwise any change replaces."""
    old = changed(dev, PROFILES, options={"replacementTrigger": before})
    result = compare(old, changed(dev, PROFILES, options={"replacementTrigger": after}))
    [change] = result.resources[0].changes
    assert (change.path, change.verdict) == ("(option replacementTrigger)", verdict)
    assert "shouldTriggerReplace" in change.reason


def test_the_first_deploy_of_this_version_recreates_nothing(prod: Registrations) -> None:
    """What the previous program registered (no trigger, no delete-before-replace) -> this one: option changes
    only, none of them a replacement."""
    previous = prod
    for resource in prod.resources:
        if resource.type == TABLE_TYPE:
            options = {"replacementTrigger": None, "deleteBeforeReplace": False}
            previous = changed(previous, resource.name, options=options)
    result = compare(previous, prod)
    assert result.verdict is Verdict.NOOP
    assert not result.fails(Verdict.UPDATE)


def test_a_replacement_the_engine_makes_without_delete_before_replace_says_409(dev: Registrations) -> None:
    """pulumi-terraform-bridge pkg/tfbridge/provider.go Diff: delete-before-replace only with `len(replaces) > 0`;
    a trigger replacement gets a bare DiffSome from the engine, so it would create first."""
    old = changed(dev, PROFILES, options={"deleteBeforeReplace": False})
    new = changed(old, PROFILES, options={"replacementTrigger": "tenants.tenant_profiles=1"})
    [change] = [c for c in compare(old, new).resources[0].changes if c.verdict is Verdict.REPLACE]
    assert "409 Already Exists" in change.reason
    with_option = compare(dev, changed(dev, PROFILES, options={"replacementTrigger": "tenants.tenant_profiles=1"}))
    assert "409" not in with_option.resources[0].changes[0].reason


# ---------------------------------------------------------------- lowered safeties of a protected stack


LOWERINGS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any], str]] = {
    "dataset-protect": ("tenants", DATASET_TYPE, {}, {"protect": False}, "Pulumi protect turned off"),
    "table-protect": (PROFILES, TABLE_TYPE, {}, {"protect": False}, "Pulumi protect turned off"),
    "deletion-protection": (PROFILES, TABLE_TYPE, {"deletionProtection": False}, {}, "deletionProtection turned off"),
    "delete-contents": ("tenants", DATASET_TYPE, {"deleteContentsOnDestroy": True}, {}, "deleteContentsOnDestroy"),
    "dataset-key": ("tenants", DATASET_TYPE, {"defaultEncryptionConfiguration": None}, {}, "key removed"),
    "table-key": (PROFILES, TABLE_TYPE, {"encryptionConfiguration": None}, {}, "key removed"),
    "time-travel": ("tenants", DATASET_TYPE, {"maxTimeTravelHours": "48"}, {}, "time-travel window shortened"),
}


@pytest.mark.parametrize("case", LOWERINGS)
def test_lowering_a_safety_fails_the_prod_gate_until_approved(prod: Registrations, case: str) -> None:
    name, type_, inputs, options, why = LOWERINGS[case]
    result = compare(prod, changed(prod, name, type_, inputs=inputs, options=options))
    key = "tenants.tenant_profiles" if type_ == TABLE_TYPE else "tenants"
    approved = compare(prod, changed(prod, name, type_, inputs=inputs, options=options, approve=[key]))

    [resource] = [r for r in result.resources if r.lowered_safeties]
    assert why in resource.lowered_safeties[0]
    assert result.fails(Verdict.UPDATE_DESTRUCTIVE)
    assert result.fails(Verdict.REPLACE) is (case == "table-key")  # a removed table key also replaces the table
    assert not approved.fails(Verdict.UPDATE_DESTRUCTIVE)


def test_widening_the_acl_fails_the_gate_and_narrowing_does_not(prod: Registrations) -> None:
    [dataset] = [r for r in prod.resources if r.type == DATASET_TYPE]
    accesses = list(dataset.inputs["accesses"])
    reader = {"role": "READER", "groupByEmail": "everyone@acme.example"}
    engineers = "data-platform-engineers@acme.example"
    promoted = [{**a, "role": "OWNER"} if a.get("groupByEmail") == engineers else a for a in accesses]

    wider = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"accesses": [*accesses, reader]}))
    higher = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"accesses": promoted}))
    narrower = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"accesses": accesses[:-1]}))

    assert wider.resources[0].lowered_safeties == ("ACL widened: READER groupByEmail=everyone@acme.example",)
    assert wider.fails(Verdict.UPDATE_DESTRUCTIVE) and not wider.fails(Verdict.REPLACE)
    assert higher.fails(Verdict.UPDATE_DESTRUCTIVE)
    assert narrower.resources[0].lowered_safeties == ()
    assert not narrower.fails(Verdict.UPDATE_DESTRUCTIVE)


def test_an_unprotected_stack_has_no_safeties_to_lower(dev: Registrations) -> None:
    reader = {"role": "READER", "groupByEmail": "everyone@acme.example"}
    [dataset] = [r for r in dev.resources if r.type == DATASET_TYPE]
    new = changed(dev, "tenants", DATASET_TYPE, inputs={"accesses": [*dataset.inputs["accesses"], reader]})
    assert not compare(dev, new).fails(Verdict.UPDATE_DESTRUCTIVE)


def test_an_explicit_false_now_left_out_is_reported_as_nothing(prod: Registrations) -> None:
    """The previous program sent requirePartitionFilter false; now it is left out (the provider reads it back
    only when true, resource_bigquery_table.go resourceBigQueryTableRead): reported, as a noop."""
    queue = "tenants-pipeline_execution_queue"
    result = compare(changed(prod, queue, inputs={"requirePartitionFilter": False}), prod)
    assert only(result) == {"tenants.pipeline_execution_queue": ("(requirePartitionFilter)", Verdict.NOOP)}


def test_a_base_with_provider_labels_dropped_now_updates_every_resource(prod: Registrations) -> None:
    """A base an earlier version validated may hold gcp:defaultLabels; dropping it changes the default
    provider's inputs (pulumi/pulumi pkg/resource/deploy/default_providers.go newRegisterDefaultProviderEvent),
    which then drops those labels from every resource (terraform-provider-google tpgresource/labels.go
    setLabelsFields): never "No changes." A changed gcp:project is said too, as the provider's own noop."""
    base = Registrations(prod.resources, {**prod.config, "gcp:defaultLabels": {"team": "data"}})
    moved = Registrations(prod.resources, {**prod.config, "gcp:project": "elsewhere"})

    [provider] = compare(base, prod).resources
    [project] = compare(prod, moved).resources

    assert (provider.kind, provider.name, provider.verdict) == ("provider", "default gcp provider", Verdict.UPDATE)
    assert provider.changes[0].path == "(gcp:defaultLabels)"
    assert "labels in BigQuery change" in provider.changes[0].reason
    assert (project.kind, project.verdict, project.changes[0].path) == ("provider", Verdict.NOOP, "(gcp:project)")


def test_acl_order_and_a_left_out_acl_send_nothing(prod: Registrations) -> None:
    """resource_bigquery_dataset.go access: TypeSet (resourceBigqueryDatasetAccessHash: emails in lower case,
    legacy roles as IAM names) and Optional+Computed; terraform-plugin-sdk helper/schema/schema.go diffSet."""
    [dataset] = [r for r in prod.resources if r.type == DATASET_TYPE]
    accesses = list(dataset.inputs["accesses"])
    spelt = [
        {**a, "role": "roles/bigquery.dataViewer", "groupByEmail": a["groupByEmail"].upper()}
        if a.get("role") == "READER"
        else a
        for a in reversed(accesses)
    ]

    for inputs in ({"accesses": spelt}, {"accesses": None}):
        result = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs=inputs))
        assert only(result) == {"tenants": ("(accesses)", Verdict.NOOP)}
        assert not result.fails(Verdict.UPDATE)


# ---------------------------------------------------------------- the dataset's time travel, billing model and ACL


def test_a_window_change_says_how_far_back_data_can_be_recovered(prod: Registrations) -> None:
    """max_time_travel_hours has no ForceNew (resource_bigquery_dataset.go ResourceBigQueryDataset) and is sent by
    resourceBigQueryDatasetUpdate: in place. What it means is BigQuery's (docs: time travel)."""
    shorter = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"maxTimeTravelHours": "48"}))
    [change] = shorter.resources[0].changes
    assert (change.path, change.verdict) == ("(maxTimeTravelHours)", Verdict.UPDATE)
    assert "can then be recovered only 48 h back instead of 168 h" in change.reason
    assert "resource_bigquery_dataset.go max_time_travel_hours" in change.citation.source

    base = changed(prod, "tenants", DATASET_TYPE, inputs={"maxTimeTravelHours": "72"})
    [longer] = compare(base, prod).resources[0].changes
    assert "recovered 168 h back instead of 72 h" in longer.reason
    assert longer.lowers_safety is None
    [unsent] = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"maxTimeTravelHours": None})).resources
    assert unsent.changes[0].verdict is Verdict.NOOP and "no longer sent" in unsent.changes[0].reason


def test_a_billing_model_change_names_bigquerys_14_day_rule(prod: Registrations) -> None:
    result = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"storageBillingModel": "PHYSICAL"}))
    [change] = result.resources[0].changes
    assert (change.path, change.verdict) == ("(storageBillingModel)", Verdict.UPDATE)
    assert "refuses another change of the dataset's billing model for 14 days" in change.reason


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_any_dataset_update_without_a_declared_acl_is_named(planned_fixture: Plan, stack: str) -> None:
    """The provider's update is a PUT of the whole dataset (resource_bigquery_dataset.go
    resourceBigQueryDatasetUpdate: Method "PUT"; BigQuery REST datasets.update "replaces the entire dataset
    resource"), which re-sent the ACL of the last refresh before resourceBigQueryDatasetUpdateEncoder
    (pulumi/pulumi-gcp#3908): named on every update while no ACL is declared, a lowered safety when protected."""
    base = changed(registrations(planned_fixture(stack)), "tenants", DATASET_TYPE, inputs={"accesses": None})
    result = compare(base, changed(base, "tenants", DATASET_TYPE, inputs={"description": "Tenants."}))

    [resource] = result.resources
    notes = [c for c in resource.changes if c.path == "(accesses)"]
    assert [c.verdict for c in notes] == [Verdict.NOOP]
    assert "pulumi/pulumi-gcp#3908" in notes[0].citation.source
    assert "set tenant-bigquery:access to own the ACL" in notes[0].reason
    assert result.fails(Verdict.UPDATE_DESTRUCTIVE) is (stack == "prod")
    approved = changed(base, "tenants", DATASET_TYPE, inputs={"description": "Tenants."}, approve=["tenants"])
    assert not compare(base, approved).fails(Verdict.UPDATE_DESTRUCTIVE)


def test_no_acl_note_where_the_acl_is_declared_or_nothing_is_sent(prod: Registrations) -> None:
    declared = compare(prod, changed(prod, "tenants", DATASET_TYPE, inputs={"description": "Tenants."}))
    assert [c.path for c in declared.resources[0].changes] == ["(description)"]
    base = changed(prod, "tenants", DATASET_TYPE, inputs={"accesses": None})
    state_only = compare(base, changed(base, "tenants", DATASET_TYPE, options={"ignoreChanges": ["labels"]}))
    assert "(accesses)" not in [c.path for r in state_only.resources for c in r.changes]


def test_the_pinned_provider_leaves_an_unchanged_acl_out_of_a_dataset_update() -> None:
    """terraform-provider-google-beta v7.45.0 added resourceBigQueryDatasetUpdateEncoder (access deleted from the
    PUT unless d.HasChange("access"), commit 38685ebec9); pulumi-gcp took it in 9.35.0 (#3930, upstream at the
    v7.45.0 tag). An older pin re-sends the ACL of the last refresh on every update (pulumi/pulumi-gcp#3908)."""
    [pin] = [
        line for line in (REPO_ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pulumi-gcp")
    ]
    version = tuple(int(part) for part in pin.split("==")[1].split("."))
    assert version >= (9, 35, 0), pin
    assert metadata.version("pulumi-gcp") == pin.split("==")[1]  # the installed SDK is the pinned one
