"""One typed representation of what each resource receives (infra/model/declared.py), and one text of it
(infra/model/render.py) that plan, docs, verify, diff and migrate all show."""

from __future__ import annotations

import inspect
import io
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

import pulumi_gcp as gcp
import pytest
from helpers import FIXTURE_ROOT, resources_of
from rich.console import Console

from infra.analysis.changes import classify_table
from infra.analysis.drift import declared_table, table_checks
from infra.analysis.migration import LiveTable, declared_state, plan_table
from infra.model import declared as d
from infra.model import table_properties as tp
from infra.model.catalog import load_catalog
from infra.model.render import clustering_text, columns_text, partitioning_text
from infra.model.settings import load_settings
from infra.model.table_properties import RangePartitioning
from infra.pulumi_edge.mockrun import run_stack
from infra.reports.docs import render_data_dictionary
from infra.reports.planreport import render_text

# rich reads NO_COLOR, TERM, ... from the environment: the Consoles below see none of the shell's.
pytestmark = pytest.mark.usefixtures("no_terminal_settings")

CATALOG = load_catalog(FIXTURE_ROOT)


@pytest.mark.parametrize(
    ("ours", "provider"),
    [
        (d.DatasetArgs, gcp.bigquery.DatasetArgs),
        (d.AccessArgs, gcp.bigquery.DatasetAccessArgs),
        (tp.EncryptionArgs, gcp.bigquery.DatasetDefaultEncryptionConfigurationArgs),
        (tp.TableArgs, gcp.bigquery.TableArgs),
        (tp.TimePartitioningArgs, gcp.bigquery.TableTimePartitioningArgs),
        (tp.RangePartitioningArgs, gcp.bigquery.TableRangePartitioningArgs),
        (tp.RangeArgs, gcp.bigquery.TableRangePartitioningRangeArgs),
        (tp.EncryptionArgs, gcp.bigquery.TableEncryptionConfigurationArgs),
        (tp.TableConstraintsArgs, gcp.bigquery.TableTableConstraintsArgs),
        (tp.PrimaryKeyArgs, gcp.bigquery.TableTableConstraintsPrimaryKeyArgs),
        (tp.ForeignKeyArgs, gcp.bigquery.TableTableConstraintsForeignKeyArgs),
        (tp.ReferencedTableArgs, gcp.bigquery.TableTableConstraintsForeignKeyReferencedTableArgs),
        (tp.ColumnReferencesArgs, gcp.bigquery.TableTableConstraintsForeignKeyColumnReferencesArgs),
    ],
)
def test_every_typed_argument_is_one_the_provider_takes(ours: Any, provider: Any) -> None:
    """The pure core cannot import pulumi-gcp, so its names are checked here against the provider's."""
    assert set(ours.__annotations__) <= set(inspect.signature(provider.__init__).parameters)


def test_the_provider_and_the_api_name_every_member_field() -> None:
    fields = [name for name in d.AccessArgs.__annotations__ if name != "role"]
    assert sorted(d.API_MEMBER_FIELDS) == sorted(fields)


def test_plan_docs_and_verify_show_the_one_text() -> None:
    result = run_stack(FIXTURE_ROOT, "prod")
    out = Console(file=io.StringIO(), width=400)
    render_text(result, out)
    plan_text = out.file.getvalue()  # type: ignore[attr-defined]
    docs_text = render_data_dictionary(CATALOG)
    tables = [t for dataset in result.declared for t in dataset.tables]
    assert any("time_partitioning" in t.args for t in tables)

    for table in tables:
        partitioning = partitioning_text(table.args.get("time_partitioning"), table.args.get("range_partitioning"))
        clustering = clustering_text(table.args["clusterings"])
        columns = columns_text(table.table.schema)
        row = next(line for line in plan_text.splitlines() if f" {table.table.key} " in line)
        assert [cell.strip() for cell in row.strip("│ ").split("│")][2:5:2] == [partitioning, clustering]
        assert f"- Partitioning: {partitioning}\n" in docs_text
        assert f"- Clustering: {clustering}\n" in docs_text
        assert f", {columns}\n" in docs_text
        state = declared_table(table)
        checks = {c.name: c.detail for c in table_checks("t", state, state)}
        assert checks["partitioning"] == partitioning
        assert checks["clustering"] == clustering
        assert checks["schema"] == f"{columns} as declared"


@pytest.mark.parametrize(
    ("time", "range_", "text"),
    [
        (None, None, "none"),
        ({"type": "DAY", "field": None, "expiration_ms": None}, None, "DAY on ingestion time, partitions kept"),
        (
            {"type": "HOUR", "field": "at", "expiration_ms": 3_600_000},
            None,
            "HOUR on at, partitions expire after 3600000 ms",
        ),
        (None, {"field": "n", "range": {"start": 0, "end": 100, "interval": 10}}, "RANGE on n [0, 100) step 10"),
    ],
)
def test_partitioning_text(
    time: tp.TimePartitioningArgs | None, range_: tp.RangePartitioningArgs | None, text: str
) -> None:
    assert partitioning_text(time, range_) == text


def test_diff_and_migrate_show_the_one_text() -> None:
    table = next(t for t in CATALOG.tables() if t.time_partitioning is not None)
    assert table.range_partitioning is None
    ranged = replace(
        table,
        time_partitioning=None,
        range_partitioning=RangePartitioning("n", 0, 100, 10),
        clustering=(),
    )
    was, now = partitioning_text(*tp.partitioning_args(table)), partitioning_text(*tp.partitioning_args(ranged))
    reasons = " ".join(c.reason for c in classify_table(table, ranged))
    assert f"partitioning {was} -> {now}" in reasons
    assert f"clustering {clustering_text(table.clustering)} -> {clustering_text(())}" in reasons

    settings = load_settings(FIXTURE_ROOT, "prod", CATALOG)
    live_state, _ = declared_state(table, settings)
    plan = plan_table(ranged, settings, LiveTable("p.d.t", live_state), datetime(2026, 1, 1))
    assert any(f"partitioning {was} -> {now}" in step.reason for step in plan.steps)


def _as_engine_sees(value: Any) -> Any:
    """The SDK sends argument names in camelCase and leaves out None."""
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key): _as_engine_sees(item)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list):
        return [_as_engine_sees(item) for item in value]
    return value


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_program_registers_exactly_the_declared_arguments(stack: str) -> None:
    """What plan's text shows (the declaration) is what plan's JSON shows (the registrations)."""
    result = run_stack(FIXTURE_ROOT, stack)
    registered = {(r.type, r.name): r.inputs for r in result.resources}
    for dataset in result.declared:
        name = dataset.dataset.dataset_id
        assert registered.pop((d.DATASET_TYPE, name)) == _as_engine_sees(dataset.args)
        for table in dataset.tables:
            key = (d.TABLE_TYPE, d.table_resource_name(name, table.table.table_id))
            assert registered.pop(key) == _as_engine_sees(table.args)
    assert [type_ for type_, _ in registered] == [d.COMPONENT_TYPE] * len(result.declared)


def test_the_time_travel_window_is_always_sent_the_billing_model_where_declared(repo_copy: Any) -> None:
    """max_time_travel_hours is Optional+Computed and a string in the provider's schema
    (terraform-provider-google resource_bigquery_dataset.go ResourceBigQueryDataset: TypeString, Computed,
    Optional). Left unsent, the SDK would keep whatever a refresh read (terraform-plugin-sdk helper/schema/
    schema.go diffString), so a window lowered out of band would never show as a change: the program sends the
    declared window, the maximum by default, on every run."""
    [dataset] = resources_of(run_stack(FIXTURE_ROOT, "prod"), d.DATASET_TYPE)
    assert dataset.inputs["maxTimeTravelHours"] == "168"
    assert "storageBillingModel" not in dataset.inputs

    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(
        declaration.read_text().replace(
            "tables:\n", "max_time_travel_hours: 72\nstorage_billing_model: PHYSICAL\ntables:\n", 1
        )
    )
    [declared] = resources_of(run_stack(repo_copy, "prod"), d.DATASET_TYPE)
    assert (declared.inputs["maxTimeTravelHours"], declared.inputs["storageBillingModel"]) == ("72", "PHYSICAL")
