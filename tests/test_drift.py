"""What `verify` compares, without a server: the declared state of the fixture catalog against observed
states built by hand, one drift at a time. The same checks run against the local server in
test_live_verify.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import FIXTURE_ROOT

from infra.analysis.drift import (
    DatasetState,
    dataset_checks,
    declared_dataset,
    declared_table,
    storage_billing_model,
    table_checks,
    time_travel_hours,
)
from infra.model.catalog import load_catalog
from infra.model.declared import declare
from infra.model.schema import Column
from infra.model.settings import load_settings
from infra.model.table_properties import TableState

CATALOG = load_catalog(FIXTURE_ROOT)
SETTINGS = load_settings(FIXTURE_ROOT, "prod", CATALOG)
DECLARED = declare(CATALOG, SETTINGS)
TABLES = {t.table.table_id: t for t in (t for dataset in DECLARED for t in dataset.tables)}
SUBJECT = "table tenants.tenant_usage_quotas"


def declared(table_id: str = "tenant_usage_quotas") -> TableState:
    return declared_table(TABLES[table_id])


def failures(observed: TableState, table_id: str = "tenant_usage_quotas") -> dict[str, str]:
    return {c.name: c.detail for c in table_checks(SUBJECT, declared(table_id), observed) if not c.ok}


def test_the_declared_state_passes_every_check() -> None:
    assert failures(declared()) == {}
    [dataset] = DECLARED
    state = declared_dataset(dataset)
    assert all(c.ok for c in dataset_checks("dataset tenants", state, state))


def test_type_aliases_and_column_order_are_no_drift() -> None:
    state = declared("tenant_profiles")
    renamed_types = tuple(
        replace(c, type={"INT64": "INTEGER", "BOOL": "BOOLEAN", "FLOAT64": "FLOAT"}.get(c.type, c.type))
        for c in reversed(state.schema)
    )
    assert failures(replace(state, schema=renamed_types), "tenant_profiles") == {}


@pytest.mark.parametrize(
    ("drift", "check", "says"),
    [
        (lambda s: replace(s, schema=(*s.schema, Column("note", "STRING"))), "schema", "undeclared column note"),
        (lambda s: replace(s, schema=s.schema[1:]), "schema", "column tenant_id"),
        (lambda s: replace(s, clustering=()), "clustering", ""),
        (lambda s: replace(s, require_partition_filter=False), "partition filter", ""),
        (
            lambda s: replace(
                s, time_partitioning={"type": "DAY", "field": "usage_date", "expiration_ms": 365 * 86_400_000}
            ),
            "partitioning",
            "365 d",
        ),
        (lambda s: replace(s, labels={**s.labels, "team": "x"}), "labels", "team"),
        (lambda s: replace(s, kms_key_name=None), "encryption key", ""),
    ],
    ids=["added column", "missing column", "clustering", "filter", "expiration", "labels", "key"],
)
def test_each_drift_fails_exactly_its_check(drift: object, check: str, says: str) -> None:
    assert callable(drift)
    found = failures(drift(declared()))
    assert list(found) == [check]
    assert says in found[check]


def test_the_reported_key_version_is_shown_never_compared() -> None:
    # infra/bigquery_edge/live.py splits BigQuery's `.../cryptoKeyVersions/N` off the key as the provider does
    # (resource_bigquery_table.go, flattenEncryptionConfiguration); test_live_verify.py feeds that real form.
    state = declared()
    observed = replace(state, kms_key_version=f"{state.kms_key_name}/cryptoKeyVersions/7")
    assert observed == state
    [check] = [c for c in table_checks(SUBJECT, state, observed) if c.name == "encryption key"]
    assert check.ok
    assert check.detail == f"{state.kms_key_name} (BigQuery reports version 7)"


def test_the_time_travel_window_and_billing_model_are_read_from_the_rest_form() -> None:
    """BigQuery REST reference, Dataset (cloud.google.com/bigquery/docs/reference/rest/v2/datasets):
    maxTimeTravelHours is an int64, so a string, "168 hours if this is not set"; storageBillingModel an enum
    whose STORAGE_BILLING_MODEL_UNSPECIFIED means "Value not set". Absent fields are left out of the resource."""
    assert time_travel_hours({"maxTimeTravelHours": "48"}) == 48
    assert time_travel_hours({}) == 168
    assert storage_billing_model({"storageBillingModel": "PHYSICAL"}) == "PHYSICAL"
    assert storage_billing_model({}) is None
    assert storage_billing_model({"storageBillingModel": "STORAGE_BILLING_MODEL_UNSPECIFIED"}) is None


def test_a_shorter_window_fails_a_longer_one_passes_a_billing_model_is_checked_where_declared() -> None:
    [dataset] = DECLARED
    state = declared_dataset(dataset)
    assert state.max_time_travel_hours == 168  # the declaration's default, the maximum

    def checks(declared: DatasetState, live: DatasetState) -> dict[str, tuple[bool, str]]:
        return {c.name: (c.ok, c.detail) for c in dataset_checks("dataset tenants", declared, live)}

    shorter = checks(state, replace(state, max_time_travel_hours=48))
    assert shorter["time travel window"] == (
        False,
        "is 48 h; declared 168 h: changed or deleted data can be recovered only 48 h back",
    )
    lower = replace(state, max_time_travel_hours=96)
    assert checks(lower, state)["time travel window"] == (True, "is 168 h, longer than the declared 96 h")
    assert "storage billing model" not in checks(state, replace(state, storage_billing_model="PHYSICAL"))
    physical = replace(state, storage_billing_model="PHYSICAL")
    assert checks(physical, state)["storage billing model"] == (False, "is not set; declared PHYSICAL")
    assert checks(physical, replace(state, storage_billing_model="LOGICAL"))["storage billing model"] == (
        False,
        "is LOGICAL; declared PHYSICAL",
    )
