"""Guards derived from infra/model/column_attributes.py: every column attribute survives every path.

For each attribute: a column with it set is read and written back unchanged, the real program sends it, the
live table's REST form reads back into the same column (also through the live reader, from google-cloud-bigquery's
Table), a live column differing only there fails verify, and a change of it gets a verdict from diff and a
decision from migrate. An attribute missing from a path fails here, named.

Every column below is in BigQuery's schema JSON (REST reference, tables: TableFieldSchema,
https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#TableFieldSchema): int64 values as strings,
policyTags as {"names": [...]}, dataPolicies as [{"name": ...}] (DataPolicyOption), rangeElementType as
{"type": ...}; `bq show --schema` prints this form and
tables.get returns it inside schema.fields.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import bigquery
from helpers import FIXTURE_ROOT, invoke

from infra.analysis.changes import Verdict, classify_schema
from infra.analysis.drift import schema_differences
from infra.analysis.migration import LiveTable, TablePlan, declared_state, plan_table
from infra.bigquery_edge import live
from infra.model.catalog import load_catalog
from infra.model.column_attributes import ATTRIBUTES, AttributeChange, ColumnAttribute, Migration, sql_parameters
from infra.model.declared import TABLE_TYPE
from infra.model.schema import Column, column_from_api, parse_schema
from infra.model.settings import Settings, load_settings
from infra.model.table_properties import Table
from infra.pulumi_edge.mockrun import run_stack

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
TABLE = "pipeline_execution_queue"
TABLE_ID = f"acme-data-platform-prod.tenants.{TABLE}"
POLICY_TAG = "projects/acme-data-platform-prod/locations/us/taxonomies/7/policyTags/{}"
DATA_POLICY = "projects/acme-data-platform-prod/locations/us/dataPolicies/{}"

# Per attribute (its schema JSON key): a column with it set, as declared, and the same column differing only
# there, as the live table might report it.
EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "type": ({"type": "DATE"}, {"type": "DATETIME"}),
    "mode": ({"type": "STRING", "mode": "REQUIRED"}, {"type": "STRING", "mode": "NULLABLE"}),
    "description": ({"type": "STRING", "description": "who asked"}, {"type": "STRING", "description": "who"}),
    "maxLength": ({"type": "STRING", "maxLength": "10"}, {"type": "STRING", "maxLength": "20"}),
    "precision": ({"type": "NUMERIC", "precision": "10"}, {"type": "NUMERIC", "precision": "11"}),
    "scale": (
        {"type": "NUMERIC", "precision": "12", "scale": "3"},
        {"type": "NUMERIC", "precision": "12", "scale": "4"},
    ),
    "roundingMode": (
        {"type": "NUMERIC", "roundingMode": "ROUND_HALF_EVEN"},
        {"type": "NUMERIC", "roundingMode": "ROUND_HALF_AWAY_FROM_ZERO"},
    ),
    "collation": ({"type": "STRING", "collation": "und:ci"}, {"type": "STRING", "collation": ""}),
    "defaultValueExpression": (
        {"type": "STRING", "defaultValueExpression": "'none'"},
        {"type": "STRING", "defaultValueExpression": "'other'"},
    ),
    "policyTags": (
        {"type": "STRING", "policyTags": {"names": [POLICY_TAG.format(1)]}},
        {"type": "STRING", "policyTags": {"names": [POLICY_TAG.format(2)]}},
    ),
    "dataPolicies": (
        {"type": "STRING", "dataPolicies": [{"name": DATA_POLICY.format("raw_only")}]},
        {"type": "STRING", "dataPolicies": [{"name": DATA_POLICY.format("mask_sha256")}]},
    ),
    "rangeElementType": (
        {"type": "RANGE", "rangeElementType": {"type": "DATE"}},
        {"type": "RANGE", "rangeElementType": {"type": "TIMESTAMP"}},
    ),
}


def name_of(attribute: ColumnAttribute) -> str:
    return f"with_{attribute.attribute}"


def as_file(attribute: ColumnAttribute, index: int) -> dict[str, Any]:
    """The declared column as the schema file holds it and to_api writes it: name, type, mode, the rest."""
    example = EXAMPLES[attribute.key][index]
    return {"name": name_of(attribute), "type": example["type"], "mode": example.get("mode", "NULLABLE")} | example


def parsed(column: dict[str, Any]) -> Column:
    (result,), problems = parse_schema([column], "example.json")
    assert problems == [], problems
    return result


BY_KEY = pytest.mark.parametrize("attribute", ATTRIBUTES, ids=[a.key for a in ATTRIBUTES])


def test_every_attribute_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(a.key for a in ATTRIBUTES)


@BY_KEY
def test_a_set_attribute_survives_reading_and_writing(attribute: ColumnAttribute) -> None:
    column = parsed(as_file(attribute, 0))
    assert attribute.value(column) != attribute.value(Column("x", "STRING")), "the example sets it"
    assert column.to_api() == as_file(attribute, 0)
    assert parsed(column.to_api()) == column


@BY_KEY
def test_the_rest_form_reads_back_into_the_declared_column(attribute: ColumnAttribute) -> None:
    # What tables.get returns is what the program sent (BigQuery omits unset fields).
    assert column_from_api(as_file(attribute, 0)) == parsed(as_file(attribute, 0))


@BY_KEY
def test_the_live_reader_reads_every_attribute(attribute: ColumnAttribute) -> None:
    # verify and migrate read a live table through google-cloud-bigquery's Table, built from tables.get.
    resource = {
        "tableReference": {"projectId": "p", "datasetId": "tenants", "tableId": TABLE},
        "schema": {"fields": [as_file(attribute, 0)]},
    }

    state = live.observed_table(bigquery.Table.from_api_repr(resource))

    assert state.schema == (parsed(as_file(attribute, 0)),), f"the live reader drops {attribute.key}"


def test_the_program_sends_every_attribute(repo_copy: Path) -> None:
    schema_file = repo_copy / "schemas" / "tenants" / f"{TABLE}.json"
    declared = [as_file(a, 0) for a in ATTRIBUTES]
    schema_file.write_text(json.dumps([*json.loads(schema_file.read_text()), *declared], indent=2))

    result = run_stack(repo_copy, "dev")

    (table,) = [r for r in result.resources if r.type == TABLE_TYPE and r.inputs["tableId"] == TABLE]
    sent = {c["name"]: c for c in json.loads(table.inputs["schema"])}
    for attribute, column in zip(ATTRIBUTES, declared, strict=True):
        assert sent[column["name"]].get(attribute.key) == column[attribute.key], attribute.key


@BY_KEY
def test_a_live_column_differing_only_there_fails_verify(attribute: ColumnAttribute) -> None:
    declared = parsed(as_file(attribute, 0))
    live = column_from_api(as_file(attribute, 1))

    differences = schema_differences((declared,), (live,))

    assert differences, f"verify misses a {attribute.key} drift"
    assert all(f"column {declared.name} {attribute.label} " in d for d in differences), differences


@BY_KEY
def test_a_change_gets_a_verdict_from_diff(attribute: ColumnAttribute) -> None:
    changes = classify_schema((parsed(as_file(attribute, 1)),), (parsed(as_file(attribute, 0)),))

    assert [c.path for c in changes] == [name_of(attribute)], f"diff misses a {attribute.key} change"
    allowed = {
        AttributeChange.STRUCTURE: set(Verdict),
        AttributeChange.IN_PLACE: {Verdict.UPDATE},
        AttributeChange.PARAMETER: {Verdict.UPDATE, Verdict.REJECTED},
        AttributeChange.ELEMENT_TYPE: {Verdict.REJECTED},
    }[attribute.change]
    assert changes[0].verdict in allowed


@pytest.fixture(scope="module")
def prod() -> tuple[Table, Settings]:
    catalog = load_catalog(FIXTURE_ROOT)
    table = next(t for t in catalog.tables() if t.table_id == TABLE)
    return table, load_settings(FIXTURE_ROOT, "prod", catalog)


def planned(prod: tuple[Table, Settings], declared: tuple[Column, ...], live: tuple[Column, ...]) -> TablePlan:
    table, settings = prod
    table = dataclasses.replace(table, schema=(*table.schema, *declared))
    state, _ = declared_state(table, settings)
    return plan_table(
        table,
        settings,
        LiveTable(TABLE_ID, dataclasses.replace(state, schema=(*state.schema[: -len(declared)], *live))),
        NOW,
    )


@BY_KEY
def test_a_change_gets_a_decision_from_migrate(prod: tuple[Table, Settings], attribute: ColumnAttribute) -> None:
    declared = parsed(as_file(attribute, 0))
    plan = planned(prod, (declared,), (parsed(as_file(attribute, 1)),))

    if attribute.migration is Migration.LEFT_TO_PULUMI:
        assert plan.empty, "pulumi up changes it in place: migrate plans nothing"
    elif attribute.migration is Migration.REFUSED:
        assert plan.refusals and all(declared.name in r for r in plan.refusals)
    elif attribute.migration is Migration.SET_DATA_TYPE:
        in_place = [s for s in plan.steps if f"SET DATA TYPE {sql_parameters(declared)}" in s.action]
        checked = [c for c in plan.checks if declared.name in c.predicate]
        assert in_place or (plan.rebuild_table and checked), plan.to_json()
    else:
        assert plan.steps or plan.refusals, plan.to_json()


def test_a_rebuild_carries_every_attribute(prod: tuple[Table, Settings]) -> None:
    declared = tuple(parsed(as_file(a, 0)) for a in ATTRIBUTES)
    # The DATE column is DATETIME live: a cast, so a rebuild, which creates the table with every column.
    live = tuple(parsed(as_file(a, 1 if a.key == "type" else 0)) for a in ATTRIBUTES)

    plan = planned(prod, declared, live)

    (create,) = [s for s in plan.steps if s.kind == "create"]
    created = {c["name"]: c for c in create.payload["schema"]["fields"]}
    for attribute in ATTRIBUTES:
        assert created[name_of(attribute)] == as_file(attribute, 0), attribute.key


# ---------------------------------------------------------------- one verdict from diff and migrate


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        # An unparameterized NUMERIC is precision 38, scale 9 (GoogleSQL data types, decimal types): the same values.
        ({"type": "NUMERIC"}, {"type": "NUMERIC", "precision": "38", "scale": "9"}, "update"),
        # An unparameterized BIGNUMERIC holds a 39th, partial, integer digit; BIGNUMERIC(P, S) at most P - S <= 38.
        ({"type": "BIGNUMERIC"}, {"type": "BIGNUMERIC", "precision": "76", "scale": "38"}, "rejected"),
    ],
    ids=["NUMERIC-keeps-every-value", "BIGNUMERIC-narrows"],
)
def test_diff_and_migrate_give_one_verdict_on_decimal_bounds(
    prod: tuple[Table, Settings], tmp_path: Path, before: dict[str, Any], after: dict[str, Any], verdict: str
) -> None:
    old, new = ({"name": "amount", **before}, {"name": "amount", **after})
    (tmp_path / "old.json").write_text(json.dumps([old]))
    (tmp_path / "new.json").write_text(json.dumps([new]))

    result = invoke("diff", "--old", "old.json", "--new", "new.json", "--format", "json", cwd=tmp_path)
    (table,) = json.loads(result.stdout)["tables"]
    plan = planned(prod, (parsed(new),), (parsed(old),))

    assert table["verdict"] == verdict
    in_place = [s.action for s in plan.steps if "SET DATA TYPE" in s.action]
    if verdict == "update":
        assert in_place == [
            f"ALTER TABLE `{TABLE_ID}` ALTER COLUMN `amount` SET DATA TYPE {sql_parameters(parsed(new))}"
        ]
        assert plan.checks == ()
    else:
        assert in_place == [] and plan.rebuild_table is not None
        assert [c.what for c in plan.checks] == [f"amount fits {sql_parameters(parsed(new))}"]
