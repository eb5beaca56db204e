"""Every table property (infra/model/table_properties.py) through every path: a declaration that changes only it
shows up in the provider arguments, in the REST resource of a rebuild, in the live reader (from that REST
form), in verify's comparison, in both change classifiers, in migrate's plan and in what `migrate` brings to the
declaration; loading a declaration and reading the registered inputs back fill every field of a Table.
A descriptor missing one of these paths fails here."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from google.cloud import bigquery
from helpers import FIXTURE_ROOT

from infra.analysis.changes import TABLE_CLASSIFIERS, classify_table
from infra.analysis.drift import declared_table, observed_state, table_checks
from infra.analysis.migration import MIGRATED_PROPERTIES, PLANNERS, LiveTable, plan_table, table_resource
from infra.analysis.resourcediff import CLASSIFIED_TABLE_PROPERTIES, NO_RULE, TABLE_RULES, compare_registrations
from infra.bigquery_edge.live import observed_table
from infra.model.catalog import DatasetSpec, load_catalog
from infra.model.declared import TABLE_TYPE, DeclaredTable, table_args
from infra.model.documents import load_yaml
from infra.model.registrations import Registration, Registrations
from infra.model.schema import Column
from infra.model.settings import Settings, load_settings
from infra.model.table_properties import (
    DIFF_ORDER,
    LABELS,
    MIGRATE_ORDER,
    TABLE_PROPERTIES,
    Constraints,
    ConstraintsSpec,
    ForeignKey,
    ForeignKeySpec,
    Loading,
    Migrate,
    PartitioningSpec,
    RangePartitioning,
    ReferenceSpec,
    Table,
    TableArgs,
    TableProperty,
    TableSpec,
    TableState,
    load_properties,
    state_fields,
)
from infra.pulumi_edge.mockrun import run_stack

CATALOG = load_catalog(FIXTURE_ROOT)
SETTINGS = load_settings(FIXTURE_ROOT, "prod", CATALOG)
# Partitioned by time, a partition filter required, clustered: every property is set.
BASE = next(t for t in CATALOG.tables() if t.table_id == "tenant_usage_quotas")
SUBJECT = "table t"
# What the table's resource names besides its properties: its identity and the stack's safety.
IDENTITY = {"project", "dataset_id", "table_id", "deletion_protection", "ignore_schema_changes"}

Variant = Callable[[Table, Settings], tuple[Table, Settings]]
NOW = datetime(2024, 1, 1, tzinfo=UTC)
OTHER_KEY = "projects/acme-security-prod/locations/us/keyRings/bigquery-prod/cryptoKeys/other"
KEYS = Constraints(("tenant_id", "usage_date"), (ForeignKey("fk_tenant", "tenant_id", "tenant_profiles", "tenant_id"),))


def _options(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, stack_settings=msgspec.structs.replace(settings.stack_settings, **changes))


# Per property, declarations that change it and nothing else; together they change every provider argument.
VARIANTS: dict[str, dict[str, Variant]] = {
    "schema": {"column added": lambda t, s: (replace(t, schema=(*t.schema, Column("note", "STRING"))), s)},
    "partitioning": {
        "expiration": lambda t, s: (
            replace(t, time_partitioning=replace(t.time_partitioning, expiration_days=365)),  # type: ignore[type-var]
            s,
        ),
        "by range": lambda t, s: (
            replace(t, time_partitioning=None, range_partitioning=RangePartitioning("usage_date", 0, 100, 10)),
            s,
        ),
    },
    "require_partition_filter": {"off": lambda t, s: (replace(t, require_partition_filter=False), s)},
    "clustering": {"another column": lambda t, s: (replace(t, clustering=("usage_date",)), s)},
    "labels": {"added": lambda t, s: (replace(t, labels={**t.labels, "team": "billing"}), s)},
    "description": {"changed": lambda t, s: (replace(t, description="Usage per tenant and day."), s)},
    "constraints": {
        "keys declared": lambda t, s: (replace(t, constraints=KEYS), s),
        "primary key only": lambda t, s: (replace(t, constraints=Constraints(("tenant_id", "usage_date"))), s),
    },
    "encryption key": {"another key": lambda t, s: (t, _options(s, kms_key_name=OTHER_KEY))},
}
# Per property declared in the catalog, a change of its key in stacks/<dataset>.yaml declaring what its first
# VARIANTS entry does; the schema's columns come from its file, which the catalog reads.
SPEC_VARIANTS: dict[str, Callable[[TableSpec], TableSpec]] = {
    "partitioning": lambda s: msgspec.structs.replace(
        s, partitioning=PartitioningSpec(field="usage_date", type="DAY", expiration_days=365)
    ),
    "require_partition_filter": lambda s: msgspec.structs.replace(s, require_partition_filter=False),
    "clustering": lambda s: msgspec.structs.replace(s, clustering=["usage_date"]),
    "labels": lambda s: msgspec.structs.replace(s, labels={"team": "billing"}),
    "description": lambda s: msgspec.structs.replace(s, description="Usage per tenant and day."),
    "constraints": lambda s: msgspec.structs.replace(
        s,
        constraints=ConstraintsSpec(
            ["tenant_id", "usage_date"],
            [ForeignKeySpec("fk_tenant", "tenant_id", ReferenceSpec("tenant_profiles", "tenant_id"))],
        ),
    ),
}
CASES = [(p, name, variant) for p in TABLE_PROPERTIES for name, variant in VARIANTS.get(p.name, {}).items()]


def _declared(table: Table, settings: Settings) -> DeclaredTable:
    return DeclaredTable(table, table_args(table, settings, settings.dataset_id(table.dataset)))


def _differing(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _live(args: TableArgs) -> TableState:
    """The live reader, on the REST resource a rebuild creates from these arguments: BigQuery's Table
    resource as tables.insert takes it and tables.get returns it (REST reference, tables#Table)."""
    return observed_table(bigquery.Table.from_api_repr(table_resource(args, args["table_id"])))


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def engine_inputs(args: TableArgs) -> dict[str, Any]:
    """The arguments as the engine receives them: names in camelCase, None left out, labels as written
    (test_the_engine_inputs_are_what_the_mock_run_records holds this equal to the program's registrations)."""

    def convert(value: Any, key: str = "") -> Any:
        if isinstance(value, dict) and key != "labels":
            return {_camel(k): convert(v, k) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(dict(args))
    return result


def _registrations(args: TableArgs) -> Registrations:
    resource = Registration("urn:t", TABLE_TYPE, "tenants-t", "tenants", engine_inputs(args), {})
    return Registrations((resource,), {})


def test_every_property_has_a_variant_and_together_they_change_every_argument() -> None:
    assert {p.name for p in TABLE_PROPERTIES} == set(VARIANTS), "give each property a declaration that changes it"
    changed: set[str] = set()
    for _, _, variant in CASES:
        changed |= _differing(dict(_declared(BASE, SETTINGS).args), dict(_declared(*variant(BASE, SETTINGS)).args))
    assert changed == {f.arg for p in TABLE_PROPERTIES for f in p.fields}


def test_the_properties_name_every_argument_state_field_and_provider_input() -> None:
    fields = [f for p in TABLE_PROPERTIES for f in p.fields]
    assert set(TableArgs.__annotations__) == IDENTITY | {f.arg for f in fields}
    assert {f.name for f in dataclasses.fields(TableState) if f.compare} == {f.state for f in fields}
    assert set(MIGRATED_PROPERTIES.items()) == {
        (f.state, f.engine) for p in TABLE_PROPERTIES if p.migrated for f in p.fields
    }
    # Each input is ruled once: by the column classifier (declared in the catalog) or by its provider rule.
    assert CLASSIFIED_TABLE_PROPERTIES.isdisjoint(TABLE_RULES)
    assert {f.engine for f in fields} <= CLASSIFIED_TABLE_PROPERTIES | set(TABLE_RULES)
    assert sorted(DIFF_ORDER, key=TABLE_PROPERTIES.index) == [p for p in TABLE_PROPERTIES if p.in_catalog]
    assert sorted(MIGRATE_ORDER, key=TABLE_PROPERTIES.index) == list(TABLE_PROPERTIES)
    assert set(PLANNERS) == {p.name for p in TABLE_PROPERTIES if p.migrate is Migrate.PLANNED}
    assert set(TABLE_CLASSIFIERS) == {p.name for p in TABLE_PROPERTIES if p.in_catalog}


def test_every_table_spec_key_is_a_property_or_a_hint_for_migrate_or_the_retirement() -> None:
    keys = {f.encode_name for f in msgspec.structs.fields(TableSpec)}
    assert keys == {p.declared_by for p in TABLE_PROPERTIES if p.in_catalog} | {"renamed_columns", "retired"}


# What a Table holds besides its properties: its identity, where its schema was read from, migrate's hints,
# whether it is retired (a resource option, infra/model/retirement.py: sent to no provider) and who attaches its
# data policies (its dataset's column_masking).
TABLE_IDENTITY = {"dataset", "table_id", "schema_file", "renamed_columns", "retired", "column_masking"}


def _table_spec(table: Table) -> TableSpec:
    for path in sorted((FIXTURE_ROOT / "stacks").glob("*.yaml")):
        spec = msgspec.convert(load_yaml(path, path.name), DatasetSpec)
        if spec.dataset == table.dataset:
            return spec.tables[table.table_id]
    raise AssertionError(f"no declaration of {table.key}")


def test_each_table_field_is_loaded_and_read_back_from_the_inputs_by_one_property() -> None:
    """The catalog builds a Table from its properties' loads, and diff of the registrations reads the
    registered inputs back through the same properties: each field is one property's, both ways."""
    spec, inputs = _table_spec(BASE), engine_inputs(_declared(BASE, SETTINGS).args)
    owner: dict[str, str] = {}
    for prop in TABLE_PROPERTIES:
        if prop.in_catalog is None:
            continue
        loaded, problems = prop.in_catalog.load(spec, Loading(BASE.schema, "stacks/t.yaml", "tables.t"))
        assert not problems
        assert loaded.keys().isdisjoint(owner), f"{prop.name} loads a field another property loads"
        owner |= dict.fromkeys(loaded, prop.name)
        assert loaded == {k: getattr(BASE, k) for k in loaded}, f"{prop.name} loads what the catalog holds"
        read = prop.in_catalog.from_inputs(inputs)
        assert read.keys() == loaded.keys(), f"{prop.name} reads back the fields it loads"
        if prop is not LABELS:  # the registered labels add the stack's
            assert read == loaded, f"{prop.name} reads its inputs back as declared"
    assert set(owner) == {f.name for f in dataclasses.fields(Table)} - TABLE_IDENTITY


def test_a_declared_key_loads_into_its_property_s_fields() -> None:
    assert set(SPEC_VARIANTS) | {"schema"} == {p.name for p in TABLE_PROPERTIES if p.in_catalog}
    spec = _table_spec(BASE)
    for name, change in SPEC_VARIANTS.items():
        table, _ = next(iter(VARIANTS[name].values()))(BASE, SETTINGS)
        fields, problems = load_properties(change(spec), Loading(BASE.schema, "stacks/t.yaml", "tables.t"))
        assert not problems
        assert replace(BASE, **fields) == table, name


def test_the_declared_state_reads_back_from_the_rebuild_resource_and_passes_verify() -> None:
    declared = _declared(BASE, SETTINGS)
    assert _live(declared.args) == declared_table(declared)
    assert all(check.ok for check in table_checks(SUBJECT, declared_table(declared), _live(declared.args)))


@pytest.mark.parametrize(("prop", "name", "variant"), CASES, ids=[f"{p.name}-{n}" for p, n, _ in CASES])
def test_a_change_of_one_property_shows_in_every_path(prop: TableProperty, name: str, variant: Variant) -> None:
    old, new = _declared(BASE, SETTINGS), _declared(*variant(BASE, SETTINGS))
    args = _differing(dict(old.args), dict(new.args))
    assert args and args <= {f.arg for f in prop.fields}, "provider arguments"

    changed = [f for f in prop.fields if f.arg in args]

    # A rebuild creates the table with every property it carries, and migrate counts those as brought over.
    resource = _differing(table_resource(old.args, "t"), table_resource(new.args, "t"))
    assert resource == ({f.rest for f in changed} if prop.migrated else set()), "the rebuild's REST resource"
    assert prop.migrated == ({f.state for f in prop.fields} <= set(MIGRATED_PROPERTIES))

    live = _live(new.args)
    assert live == declared_table(new), "the live reader reads what the rebuild creates"
    was = _live(old.args)
    read = {f.name for f in dataclasses.fields(TableState) if getattr(live, f.name) != getattr(was, f.name)}
    assert read == {f.state for f in changed}, "the live reader"

    failed = {c.name for c in table_checks(SUBJECT, declared_table(old), live) if not c.ok}
    assert failed == {prop.verify.check}, "verify"

    registered = compare_registrations(
        _registrations(old.args), _registrations(new.args), stack="prod", old_label="a", new_label="b"
    )
    found = [c for r in registered.resources for c in r.changes]
    assert found and {c.pulumi_property for c in found} <= {f.engine for f in prop.fields}, "diff of the registrations"
    assert all(c.citation is not NO_RULE for c in found)
    # What migrate does where the live table is the old declaration: its planner says what it runs or why
    # not; pulumi up's in-place change is noted, or left unsaid.
    plan = plan_table(new.table, variant(BASE, SETTINGS)[1], LiveTable("p.d.t", declared_table(old)), NOW)
    said = [*plan.steps, *plan.notes, *plan.refusals]
    if prop.migrate is Migrate.PLANNED:
        assert said, "migrate's planner"
    else:
        noted = [f"{prop.verify.check}: pulumi up changes it in place"] if prop.migrate is Migrate.NOTED else []
        assert said == noted, "migrate leaves it to pulumi up"

    if prop.in_catalog:
        # The registered inputs read back into the catalog's terms (resourcediff._as_table) classify alike.
        catalog = classify_table(old.table, new.table)
        assert catalog and {c.pulumi_property for c in catalog} <= {f.engine for f in prop.fields}, "diff of catalogs"
        assert sorted((c.path, c.verdict) for c in found) == sorted((c.path, c.verdict) for c in catalog)


def test_the_engine_inputs_are_what_the_mock_run_records() -> None:
    plan = run_stack(FIXTURE_ROOT, "prod")
    recorded = {r.name: r.to_json()["inputs"] for r in plan.resources if r.type == TABLE_TYPE}
    declared = [t for dataset in plan.declared for t in dataset.tables]
    assert declared
    for table in declared:
        assert engine_inputs(table.args) == recorded[f"{table.table.dataset}-{table.table.table_id}"]


def test_the_live_reader_takes_bigquery_s_own_form() -> None:
    """A tables.get answer as the REST reference describes it (tables#Table): int64 fields as strings, unset
    fields absent, the key with the version encrypting it, Google's own labels beside the declared ones."""
    resource = {
        "tableReference": {"projectId": "p", "datasetId": "d", "tableId": "t"},
        "timePartitioning": {"type": "DAY", "field": "usage_date", "expirationMs": "63072000000"},
        "requirePartitionFilter": True,
        "clustering": {"fields": ["tenant_id"]},
        "labels": {"env": "prod", "goog-pulumi-provisioned": "true"},
        "encryptionConfiguration": {"kmsKeyName": f"{OTHER_KEY}/cryptoKeyVersions/3"},
    }
    state = observed_state(resource, ())
    assert state.time_partitioning == {"type": "DAY", "field": "usage_date", "expiration_ms": 63_072_000_000}
    assert (state.range_partitioning, state.require_partition_filter, state.clustering) == (None, True, ("tenant_id",))
    assert (state.description, state.kms_key_name, state.kms_key_version) == (
        "",
        OTHER_KEY,
        f"{OTHER_KEY}/cryptoKeyVersions/3",
    )
    assert state_fields({}, ())["clustering"] == ()
    checks = {c.name: c for c in table_checks(SUBJECT, replace(state, labels={"env": "prod"}), state)}
    assert checks["labels"].ok and checks["encryption key"].ok
