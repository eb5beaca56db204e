"""The real Pulumi program under Pulumi's mocks: what every stack registers, and the invariants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from helpers import REPO_CATALOG, REPO_ROOT, resources_of

from infra.contract import RETENTION_FOREVER
from infra.model.declared import BASELINE_TRIGGER, COMPONENT_TYPE, DATASET_TYPE, SCHEMA_PROPERTIES, TABLE_TYPE
from infra.model.registrations import ProgramRun
from infra.model.rules import CANONICAL_TYPES
from infra.model.schema import resolve_names, schema_to_api
from infra.model.settings import load_settings
from infra.pulumi_edge import mockrun
from infra.pulumi_edge.mockrun import run_program, run_stack
from infra.pulumi_edge.program import run

STACKS = ("dev", "prod")
TABLES = {t.table_id: t for t in REPO_CATALOG.tables()}

Plan = Callable[[str], ProgramRun]


def tables_of(result: ProgramRun) -> dict[str, Any]:
    return {r.inputs["tableId"]: r for r in resources_of(result, TABLE_TYPE)}


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_dataset_and_table_is_registered(planned: Plan, stack: str) -> None:
    result = planned(stack)
    # Components register asynchronously: two datasets may arrive in either order.
    assert sorted(r.inputs["datasetId"] for r in resources_of(result, DATASET_TYPE)) == sorted(
        d.dataset_id for d in REPO_CATALOG.datasets
    )
    assert sorted(tables_of(result)) == sorted(TABLES)


@pytest.mark.parametrize("stack", STACKS)
def test_every_table_sends_its_schema_in_canonical_form(planned: Plan, stack: str) -> None:
    def walk(columns: list[dict[str, Any]], path: str) -> None:
        for column in columns:
            where = f"{path}{column['name']}"
            assert column["type"] in CANONICAL_TYPES, where
            assert column["mode"] in {"NULLABLE", "REQUIRED", "REPEATED"}, where
            walk(column.get("fields", []), f"{where}.")

    # Short policy names become the stack's resource names (infra/model/declared.py declared_table_of).
    names = load_settings(REPO_ROOT, stack, REPO_CATALOG).stack_settings
    for table_id, resource in tables_of(planned(stack)).items():
        sent = json.loads(resource.inputs["schema"])
        declared = resolve_names(TABLES[table_id].schema, names.policy_tags, names.data_policies)
        assert sent == schema_to_api(declared), table_id
        walk(sent, f"{table_id}:")


@pytest.mark.parametrize("stack", STACKS)
def test_partitioning_and_clustering(planned: Plan, stack: str) -> None:
    for table_id, resource in tables_of(planned(stack)).items():
        inputs = resource.inputs
        declared = TABLES[table_id]
        assert inputs.get("clusterings", []) == list(declared.clustering)
        partitioning = declared.time_partitioning
        if partitioning is not None:
            sent = inputs["timePartitioning"]
            assert (sent["type"], sent.get("field")) == (partitioning.type, partitioning.field)
            if partitioning.expiration_days is not None:
                assert sent["expirationMs"] == partitioning.expiration_days * 86_400_000
            # require_partition_filter is set at table level, never inside time_partitioning (deprecated there)
            assert inputs.get("requirePartitionFilter", False) is declared.require_partition_filter
            assert "requirePartitionFilter" not in sent
        elif declared.range_partitioning is None:
            assert "timePartitioning" not in inputs and "rangePartitioning" not in inputs


@pytest.mark.parametrize("stack", STACKS)
def test_labels_combine_declaration_and_stack(planned: Plan, stack: str) -> None:
    result = planned(stack)
    stack_labels = stack_config(stack)["tenant-bigquery:labels"]
    datasets = {r.name: r for r in resources_of(result, DATASET_TYPE)}
    for declared_dataset in REPO_CATALOG.datasets:
        assert datasets[declared_dataset.dataset_id].inputs["labels"] == {**declared_dataset.labels, **stack_labels}
    for table_id, resource in tables_of(result).items():
        partitioning = TABLES[table_id].time_partitioning
        # infra/model/declared.py adds the program's label for partitions kept on purpose (keep_forever: true).
        kept = dict([RETENTION_FOREVER]) if partitioning is not None and partitioning.keep_forever else {}
        assert resource.inputs["labels"] == {**TABLES[table_id].labels, **stack_labels, **kept}


def test_prod_protects_everything_twice(planned: Plan) -> None:
    result = planned("prod")
    for resource in [*resources_of(result, DATASET_TYPE), *resources_of(result, TABLE_TYPE)]:
        assert resource.options["protect"] is True, resource.name
    for resource in resources_of(result, TABLE_TYPE):
        assert resource.inputs["deletionProtection"] is True, resource.name
        assert resource.options["replaceOnChanges"] == []
        assert resource.options["replacementTrigger"] == BASELINE_TRIGGER


def test_no_prod_dataset_deletes_contents_on_destroy(planned: Plan) -> None:
    for dataset in resources_of(planned("prod"), DATASET_TYPE):
        assert dataset.inputs["deleteContentsOnDestroy"] is False


def test_dev_recreates_on_schema_change_and_is_unprotected(planned: Plan) -> None:
    result = planned("dev")
    for resource in resources_of(result, TABLE_TYPE):
        assert resource.options["protect"] is False
        assert resource.inputs["deletionProtection"] is False
        assert resource.options["replaceOnChanges"] == SCHEMA_PROPERTIES
    assert resources_of(result, DATASET_TYPE)[0].inputs["deleteContentsOnDestroy"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_children_belong_to_one_component_with_a_namespaced_type(planned: Plan, stack: str) -> None:
    result = planned(stack)
    components = sorted(resources_of(result, COMPONENT_TYPE), key=lambda c: c.name)
    datasets = sorted(REPO_CATALOG.datasets, key=lambda d: d.dataset_id)
    assert [c.name for c in components] == [d.dataset_id for d in datasets]
    for component, dataset in zip(components, datasets, strict=True):
        # urn:pulumi:STACK::PROJECT::[PARENT-TYPE$]TYPE::NAME
        _, _, qualified_type, name = component.urn.split("::")
        assert (qualified_type.rsplit("$", 1)[-1], name) == (
            "tenant-bigquery:bigquery:DatasetWithTables",
            dataset.dataset_id,
        )
        children = [r for r in result.resources if r.parent == component.urn]
        assert sorted(c.name for c in children) == sorted(
            [
                dataset.dataset_id,
                *(f"{dataset.dataset_id}-{t.table_id}" for t in dataset.tables),
                *(f"{dataset.dataset_id}-{v.view_id}" for v in dataset.views),
            ]
        )
    assert {r.parent for r in result.resources if r.type != COMPONENT_TYPE} == {c.urn for c in components}


@pytest.mark.parametrize("stack", STACKS)
def test_logical_names_are_deterministic(planned: Plan, stack: str) -> None:
    names = sorted(r.name for r in resources_of(planned(stack), TABLE_TYPE))
    assert names == sorted(f"tenants-{t}" for t in TABLES)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs_name_the_dataset_and_every_table(planned: Plan, stack: str) -> None:
    outputs = planned(stack).outputs
    project = stack_config(stack)["gcp:project"]
    assert outputs["datasets"] == {d.dataset_id: d.dataset_id for d in REPO_CATALOG.datasets}
    assert outputs["tables"] == {t.key: f"{project}.{t.key}" for t in REPO_CATALOG.tables()}
    assert outputs.get("views", {}) == {v.key: f"{project}.{v.key}" for v in REPO_CATALOG.views()}


def with_config(repo_copy: Path, stack: str, **changes: Any) -> ProgramRun:
    path = repo_copy / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"].update({f"tenant-bigquery:{k}": v for k, v in changes.items()})
    path.write_text(yaml.safe_dump(document))
    return run_stack(repo_copy, stack)


def test_dataset_suffix_and_location(repo_copy: Path) -> None:
    result = with_config(repo_copy, "dev", datasetSuffix="_dev", location="EU", defaultTableExpirationDays=30)
    dataset = resources_of(result, DATASET_TYPE)[0]
    assert dataset.name == "tenants"  # the logical name never churns with the suffix
    assert dataset.inputs["datasetId"] == "tenants_dev"
    assert dataset.inputs["location"] == "EU"
    assert dataset.inputs["defaultTableExpirationMs"] == 30 * 86_400_000
    assert {r.inputs["datasetId"] for r in resources_of(result, TABLE_TYPE)} == {"tenants_dev"}
    assert result.outputs["tables"]["tenants.tenant_profiles"] == "acme-data-platform-dev.tenants_dev.tenant_profiles"


def test_recreate_token_targets_the_named_tables(repo_copy: Path) -> None:
    result = with_config(repo_copy, "dev", recreate={"tenants.tenant_profiles": "2026-11-25"})
    triggers = {r.inputs["tableId"]: r.options["replacementTrigger"] for r in resources_of(result, TABLE_TYPE)}
    assert triggers.pop("tenant_profiles") == "tenants.tenant_profiles=2026-11-25"
    assert set(triggers.values()) == {BASELINE_TRIGGER}


def test_recreate_everything_with_one_token(repo_copy: Path) -> None:
    result = with_config(repo_copy, "dev", recreate={"*": "reset-1"})
    assert {r.options["replacementTrigger"] for r in resources_of(result, TABLE_TYPE)} == {"*=reset-1"}
    assert resources_of(result, DATASET_TYPE)[0].options["replacementTrigger"] is None


@pytest.mark.parametrize("stack", STACKS)
def test_every_table_and_the_dataset_delete_before_they_replace(planned: Plan, stack: str) -> None:
    """pulumi/pulumi step_generator.go continueStepsFromDiff: `deleteBeforeReplace := diff.DeleteBeforeReplace`
    unless the option is set; pulumi-terraform-bridge provider.go Diff reports delete-first only for
    replacements the provider forces (`len(replaces) > 0 && ...`), even though pulumi-gcp provider/resources.go
    marks google_bigquery_table DeleteBeforeReplace (and not google_bigquery_dataset). A trigger or
    replaceOnChanges replacement would otherwise create a table whose id exists: 409 Already Exists."""
    result = planned(stack)
    for resource in [*resources_of(result, DATASET_TYPE), *resources_of(result, TABLE_TYPE)]:
        assert resource.options["deleteBeforeReplace"] is True, resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_table_sends_a_non_null_trigger(planned: Plan, stack: str) -> None:
    """step_generator.go shouldTriggerReplace: a null trigger on either side never replaces, so a table
    without a token sends the baseline and setting or removing a token is a value-to-value change."""
    settings = load_settings(REPO_ROOT, stack)
    for table in resources_of(planned(stack), TABLE_TYPE):
        token = settings.recreate_token("tenants", table.inputs["tableId"])
        assert table.options["replacementTrigger"] == (token or BASELINE_TRIGGER)


def test_require_partition_filter_is_sent_only_when_true(repo_copy: Path) -> None:
    """terraform-provider-google resource_bigquery_table.go resourceBigQueryTableRead sets
    require_partition_filter only when BigQuery returns true: an explicit false differs from an import."""
    result = with_config(repo_copy, "dev")
    sent = {r.inputs["tableId"]: r.inputs.get("requirePartitionFilter") for r in resources_of(result, TABLE_TYPE)}
    assert sent["pipeline_execution_queue"] is None  # partitioned, filter not required
    assert sent["tenant_usage_quotas"] is True


def test_a_table_entry_wins_over_the_wildcard(repo_copy: Path) -> None:
    result = with_config(repo_copy, "dev", recreate={"*": "a", "tenants.*": "b", "tenants.tenant_api_keys": "c"})
    triggers = {r.inputs["tableId"]: r.options["replacementTrigger"] for r in resources_of(result, TABLE_TYPE)}
    assert triggers["tenant_api_keys"] == "tenants.tenant_api_keys=c"
    assert triggers["tenant_profiles"] == "tenants.*=b"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[ProgramRun]:
    """What each run's recording monitor saw, kept even when the program raises."""
    results: list[ProgramRun] = []

    class KeepingMonitor(mockrun.RecordingMonitor):
        def __init__(self, result: ProgramRun):
            super().__init__(result)
            results.append(result)

    monkeypatch.setattr(mockrun, "RecordingMonitor", KeepingMonitor)
    return results


def test_invalid_declarations_register_nothing_and_raise_a_run_error(
    repo_copy: Path, recorded: list[ProgramRun]
) -> None:
    schema = repo_copy / "schemas" / "tenants" / "tenant_profiles.json"
    schema.write_text(schema.read_text().replace('"STRING"', '"STRNG"', 1))
    config = yaml.safe_load((repo_copy / "Pulumi.prod.yaml").read_text())["config"]
    with pytest.raises(pulumi.RunError, match=r"1 problem\(s\) in the declarations; nothing was changed"):
        run_program("prod", config, lambda: run(repo_copy))
    [result] = recorded
    assert result.resources == []


def test_invalid_stack_config_registers_nothing(repo_copy: Path, recorded: list[ProgramRun]) -> None:
    config = yaml.safe_load((repo_copy / "Pulumi.prod.yaml").read_text())["config"]
    config["tenant-bigquery:protect"] = "sometimes"
    with pytest.raises(pulumi.RunError):
        run_program("prod", config, lambda: run(repo_copy))
    [result] = recorded
    assert result.resources == []


def test_the_recording_monitor_sees_what_a_valid_program_registers(repo_copy: Path, recorded: list[ProgramRun]) -> None:
    """The check above can fail: the same monitor records every registration of a valid run."""
    config = yaml.safe_load((repo_copy / "Pulumi.prod.yaml").read_text())["config"]
    result = run_program("prod", config, lambda: run(repo_copy))
    assert recorded == [result]
    assert len(result.resources) == 11


def test_runtime_config_arrives_as_strings_and_is_typed_the_same(repo_copy: Path) -> None:
    """The engine hands structured config as JSON strings; the program must read it like the YAML."""
    config = yaml.safe_load((repo_copy / "Pulumi.prod.yaml").read_text())["config"]
    as_engine_sends = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    from_strings = run_program("prod", as_engine_sends, lambda: run(repo_copy))
    from_yaml = run_stack(repo_copy, "prod")

    def registered(result: ProgramRun) -> list[dict[str, Any]]:
        return sorted((r.to_json() for r in result.resources), key=lambda r: (r["type"], r["name"]))

    assert registered(from_strings) == registered(from_yaml)


def test_the_entry_point_pulumi_runs_registers_the_same_resources(planned: Plan) -> None:
    """Pulumi runs `main: infra/` as a directory, not as a package: the path set-up must hold."""
    import runpy

    config = stack_config("prod")

    def entry_point() -> None:
        runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__")

    via_entry_point = run_program("prod", config, entry_point)
    assert sorted(r.name for r in via_entry_point.resources) == sorted(r.name for r in planned("prod").resources)


def test_a_misspelt_key_from_the_engine_stops_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real `pulumi up` hands the program the whole config map in PULUMI_CONFIG; a key nothing reads
    (prod's protect silently kept at its default otherwise) stops the run before anything is registered."""
    config = stack_config("prod")
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**config, "tenant-bigqeury:protect": "false"}))
    with pytest.raises(Exception, match=r"1 problem\(s\) in the declarations; nothing was changed") as raised:
        run_program("prod", config, lambda: run(REPO_ROOT))
    assert isinstance(raised.value, pulumi.RunError)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_table_is_registered_after_the_tables_its_foreign_keys_reference(planned: Plan, stack: str) -> None:
    """A fresh `up` creates the referenced table first, so its primary key exists when the foreign key is
    written: the SDK sends a registration once its depends_on URNs resolve (sdk/python/lib/pulumi/runtime/
    _depends_on.py), which the engine returns when the step is done (pkg/resource/deploy/source_eval.go
    RegisterResource waits on step.done)."""
    run = planned(stack)
    urns = {r.key: r.urn for r in run.resources if r.type == TABLE_TYPE}
    keyed = [t for t in REPO_CATALOG.tables() if t.constraints and t.constraints.foreign_keys]
    assert keyed  # the repository declares foreign keys: this checks something
    for table in keyed:
        [registered] = [r for r in run.resources if r.urn == urns[table.key]]
        assert table.constraints is not None
        for key in table.constraints.foreign_keys:
            assert urns[f"{table.dataset}.{key.table}"] in registered.dependencies, (table.key, key.name)
