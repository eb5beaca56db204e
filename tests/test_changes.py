"""The change classifier, one test per rule, flat and nested: what each change does to the data."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest
from helpers import REPO_ROOT

from infra.analysis import changes
from infra.analysis.changes import (
    COLUMN_DROP,
    EXPIRATION_COMPUTED,
    PARAMETERIZED_TYPES,
    PARTITION_EXPIRATION,
    PARTITIONING_FIXED,
    RANGE_PARTITION_FIELD,
    SCHEMA_DIFF_SUPPRESS,
    SCHEMA_IS_CHANGEABLE,
    TIME_PARTITION_FIELD,
    Change,
    Citation,
    Verdict,
    classify_schema,
    classify_table,
    worst,
)
from infra.model.schema import Column
from infra.model.table_properties import Constraints, ForeignKey, RangePartitioning, Table, TimePartitioning

Schema = tuple[Column, ...]


def col(name: str, type_: str = "STRING", mode: str = "NULLABLE", **options: object) -> Column:
    return Column(name=name, type=type_, mode=mode, **options)  # type: ignore[arg-type]


def record(name: str, *columns: Column, mode: str = "NULLABLE") -> Column:
    return Column(name=name, type="RECORD", mode=mode, fields=columns)


BASE: Schema = (col("id", "INT64", "REQUIRED"), col("name"), col("score", "FLOAT64"))


def flat(*columns: Column) -> Schema:
    return columns


def nested(*columns: Column) -> Schema:
    """The same columns one level down, inside a RECORD that itself does not change."""
    return (col("tenant_id", mode="REQUIRED"), record("rec", *columns))


SHAPES = {"flat": (flat, ""), "nested": (nested, "rec.")}


def cited(changes: list[Change]) -> list[Change]:
    """Every reason says who applies the rule and names it; return the changes for more asserts."""
    for change in changes:
        assert change.citation in CITATIONS
        assert change.reason.startswith(f"{change.citation.authority}: "), change.reason
        assert change.reason.endswith(f"({change.citation.source})"), change.reason
    return changes


def classify(old: Schema, new: Schema, **options: bool) -> dict[str, Change]:
    changes = cited(classify_schema(old, new, **options))
    by_path = {c.path: c for c in changes}
    assert len(by_path) == len(changes), "one change per path"
    return by_path


def verdicts(old: Schema, new: Schema, **options: bool) -> dict[str, Verdict]:
    return {path: change.verdict for path, change in classify(old, new, **options).items()}


# ---------------------------------------------------------------- noop: nothing the provider would send


@pytest.mark.parametrize("shape", SHAPES)
def test_identical_schemas_have_no_changes(shape: str) -> None:
    wrap, _ = SHAPES[shape]
    assert classify(wrap(*BASE), wrap(*BASE)) == {}


@pytest.mark.parametrize("shape", SHAPES)
def test_reordering_columns_is_noop(shape: str) -> None:
    wrap, prefix = SHAPES[shape]
    changes = classify(wrap(*BASE), wrap(*reversed(BASE)))
    [(path, change)] = changes.items()
    assert change.verdict is Verdict.NOOP
    assert change.citation is SCHEMA_DIFF_SUPPRESS
    assert path == (f"{prefix}(field order)" if prefix else "(column order)")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (col("n", "INTEGER"), col("n", "INT64")),
        (col("n", "FLOAT"), col("n", "FLOAT64")),
        (col("n", "BOOLEAN"), col("n", "BOOL")),
        (col("n", "int64"), col("n", "INTEGER")),
        (col("n", mode="nullable"), col("n", mode="NULLABLE")),
        (col("n", mode=""), col("n", mode="NULLABLE")),
        (col("n", mode="required"), col("n", mode="REQUIRED")),
    ],
    ids=["INTEGER-INT64", "FLOAT-FLOAT64", "BOOLEAN-BOOL", "case-of-type", "case-of-mode", "missing-mode", "REQUIRED"],
)
def test_aliases_and_spelling_are_noop_even_before_canonical_form(shape: str, old: Column, new: Column) -> None:
    # The loader canonicalises all of these; the classifier must not depend on it.
    wrap, _ = SHAPES[shape]
    assert classify(wrap(old), wrap(new)) == {}


def test_struct_and_record_differ_for_the_provider_so_only_the_canonical_spelling_is_safe() -> None:
    # The provider aliases three type pairs, not STRUCT/RECORD: sent raw, it would replace the table.
    # The loader turns STRUCT into RECORD (tests/test_diff_cli.py shows the file pair is a noop).
    old = (Column("r", "STRUCT", fields=(col("a"),)),)
    new = (Column("r", "RECORD", fields=(col("a"),)),)
    assert verdicts(old, new) == {"r": Verdict.REPLACE}


# ---------------------------------------------------------------- update: in place, no data lost


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("mode", "rows_read"), [("NULLABLE", "NULL"), ("REPEATED", "an empty array")])
def test_adding_a_nullable_or_repeated_column_is_an_update(shape: str, mode: str, rows_read: str) -> None:
    wrap, prefix = SHAPES[shape]
    change = classify(wrap(*BASE), wrap(*BASE, col("extra", mode=mode)))[prefix + "extra"]
    assert change.verdict is Verdict.UPDATE
    assert f"existing rows read {rows_read}" in change.reason


@pytest.mark.parametrize("shape", SHAPES)
def test_relaxing_required_to_nullable_is_an_update(shape: str) -> None:
    wrap, prefix = SHAPES[shape]
    relaxed = (col("id", "INT64", "NULLABLE"), *BASE[1:])
    assert verdicts(wrap(*BASE), wrap(*relaxed)) == {prefix + "id": Verdict.UPDATE}


@pytest.mark.parametrize("shape", SHAPES)
def test_description_and_policy_tag_changes_are_updates(shape: str) -> None:
    wrap, prefix = SHAPES[shape]
    described = (BASE[0], col("name", description="Display name"), col("score", "FLOAT64", policy_tags=("tag",)))
    assert verdicts(wrap(*BASE), wrap(*described)) == {
        prefix + "name": Verdict.UPDATE,
        prefix + "score": Verdict.UPDATE,
    }


def test_required_fields_inside_a_new_record_are_an_update_and_the_reason_says_why() -> None:
    # The provider checks only the added column's own mode; BigQuery accepts REQUIRED fields in a new RECORD.
    added = record("event", col("at", "TIMESTAMP", "REQUIRED"), record("who", col("id", mode="REQUIRED")))
    change = classify(BASE, (*BASE, added))["event"]
    assert change.verdict is Verdict.UPDATE
    assert "REQUIRED fields (event.at, event.who.id)" in change.reason
    assert "BigQuery accepts REQUIRED fields inside a new RECORD" in change.reason


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        (col("s", max_length=10), col("s", max_length=20), Verdict.UPDATE),
        (col("s", max_length=10), col("s"), Verdict.UPDATE),
        (col("s", max_length=20), col("s", max_length=10), Verdict.REJECTED),
        (col("s"), col("s", max_length=10), Verdict.REJECTED),
        (col("n", "NUMERIC", precision=10, scale=2), col("n", "NUMERIC", precision=12, scale=3), Verdict.UPDATE),
        (col("n", "NUMERIC", precision=10, scale=2), col("n", "NUMERIC", precision=10, scale=3), Verdict.REJECTED),
        (col("n", "NUMERIC", precision=10, scale=2), col("n", "NUMERIC"), Verdict.UPDATE),
    ],
    ids=["longer", "unbounded", "shorter", "bounded", "wider-numeric", "fewer-integer-digits", "unbounded-numeric"],
)
def test_parameterized_types_can_be_widened_in_place_but_not_narrowed(
    old: Column, new: Column, verdict: Verdict
) -> None:
    [change] = classify((old,), (new,)).values()
    assert (change.verdict, change.citation) == (verdict, PARAMETERIZED_TYPES)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (col("n", "NUMERIC", rounding_mode="ROUND_HALF_EVEN"), col("n", "NUMERIC")),
        (col("s", default_value_expression="'x'"), col("s", default_value_expression="'y'")),
        (col("s", collation=""), col("s", collation="und:ci")),
    ],
    ids=["rounding-mode", "default-value", "collation"],
)
def test_column_options_the_provider_sends_in_place(old: Column, new: Column) -> None:
    assert list(verdicts((old,), (new,)).values()) == [Verdict.UPDATE]


# ---------------------------------------------------------------- update-destructive and replace


def test_dropping_a_top_level_column_is_update_destructive() -> None:
    change = classify(BASE, BASE[:2])["score"]
    assert (change.verdict, change.citation) == (Verdict.UPDATE_DESTRUCTIVE, COLUMN_DROP)
    assert "ALTER TABLE DROP COLUMN" in change.reason


def test_dropping_a_nested_field_replaces() -> None:
    change = classify(nested(*BASE), nested(*BASE[:2]))["rec.score"]
    assert (change.verdict, change.citation) == (Verdict.REPLACE, SCHEMA_IS_CHANGEABLE)
    assert "only top-level columns are dropped in place" in change.reason


def test_dropping_a_record_counts_the_fields_lost() -> None:
    old = (*BASE, record("meta", col("a"), record("b", col("c"), col("d"))))
    change = classify(old, BASE)["meta"]
    assert change.verdict is Verdict.UPDATE_DESTRUCTIVE
    assert "a RECORD of 3 field(s)" in change.reason


def test_an_external_table_never_drops_columns_in_place() -> None:
    assert verdicts(BASE, BASE[:2], external=True) == {"score": Verdict.REPLACE}


def test_a_top_level_drop_stays_in_place_when_only_nested_fields_are_added() -> None:
    # The provider counts only top-level additions against drops.
    old = (*BASE, record("meta", col("a")))
    new = (*BASE[:2], record("meta", col("a"), col("b")))
    assert verdicts(old, new) == {"score": Verdict.UPDATE_DESTRUCTIVE, "meta.b": Verdict.UPDATE}


def test_a_rename_is_a_drop_plus_an_add_and_replaces_the_table() -> None:
    renamed = (*BASE[:2], col("points", "FLOAT64"))
    changes = classify(BASE, renamed)
    assert {p: c.verdict for p, c in changes.items()} == {"score": Verdict.REPLACE, "points": Verdict.REPLACE}
    assert "ALTER TABLE RENAME COLUMN would keep the data, but the provider does not use it" in changes["points"].reason


def test_a_rename_inside_a_record_replaces_for_the_nested_drop() -> None:
    renamed = (*BASE[:2], col("points", "FLOAT64"))
    assert worst(verdicts(nested(*BASE), nested(*renamed)).values()) is Verdict.REPLACE


def test_changing_only_the_letter_case_of_a_name_replaces_and_says_why() -> None:
    changes = classify(BASE, (*BASE[:2], col("Score", "FLOAT64")))
    assert changes["Score"].verdict is Verdict.REPLACE
    assert "differs only in letter case" in changes["Score"].reason
    assert "keep the old spelling" in changes["score"].reason


@pytest.mark.parametrize("shape", SHAPES)
def test_adding_a_required_column_replaces(shape: str) -> None:
    wrap, prefix = SHAPES[shape]
    change = classify(wrap(*BASE), wrap(*BASE, col("must", mode="REQUIRED")))[prefix + "must"]
    assert change.verdict is Verdict.REPLACE
    assert "BigQuery itself refuses to add a REQUIRED column" in change.reason


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("old_mode", "new_mode"),
    [("NULLABLE", "REQUIRED"), ("NULLABLE", "REPEATED"), ("REPEATED", "NULLABLE"), ("REQUIRED", "REPEATED")],
)
def test_every_mode_change_but_relaxing_required_replaces(shape: str, old_mode: str, new_mode: str) -> None:
    wrap, prefix = SHAPES[shape]
    assert verdicts(wrap(col("x", mode=old_mode)), wrap(col("x", mode=new_mode))) == {prefix + "x": Verdict.REPLACE}


def test_a_records_mode_change_warns_that_the_provider_may_skip_it() -> None:
    old = (record("r", col("a"), mode="REPEATED"),)
    change = classify(old, (record("r", col("a")),))["r"]
    assert change.verdict is Verdict.REPLACE
    assert "Go map order" in change.reason


@pytest.mark.parametrize("shape", SHAPES)
def test_a_type_change_replaces(shape: str) -> None:
    wrap, prefix = SHAPES[shape]
    change = classify(wrap(col("at", "STRING")), wrap(col("at", "TIMESTAMP")))[prefix + "at"]
    assert change.verdict is Verdict.REPLACE
    assert change.reason == (
        "provider: type change STRING -> TIMESTAMP forces a new table, recreated empty "
        "(terraform-provider-google resourceBigQueryTableSchemaIsChangeable)"
    )


def test_a_widening_type_change_still_replaces_and_says_bigquery_could_do_it() -> None:
    change = classify((col("n", "INT64"),), (col("n", "NUMERIC"),))["n"]
    assert change.verdict is Verdict.REPLACE
    assert "ALTER COLUMN SET DATA TYPE could widen INT64 to NUMERIC in place" in change.reason


def test_a_record_turned_into_a_scalar_is_one_type_change() -> None:
    assert verdicts((record("r", col("a")),), (col("r"),)) == {"r": Verdict.REPLACE}


def test_a_range_element_type_change_is_rejected_by_bigquery() -> None:
    old, new = col("r", "RANGE", range_element_type="DATE"), col("r", "RANGE", range_element_type="TIMESTAMP")
    assert verdicts((old,), (new,)) == {"r": Verdict.REJECTED}


# ---------------------------------------------------------------- table attributes


def table(schema: Schema = BASE, **options: object) -> Table:
    settings: dict[str, object] = {"description": "", **options}
    return Table(dataset="d", table_id="t", schema=schema, schema_file="schemas/d/t.json", **settings)  # type: ignore[arg-type]


SCHEMA_WITH_DATES: Schema = (*BASE, col("day", "DATE"), col("at", "TIMESTAMP"), col("n", "INT64"))


def table_verdicts(old: Table, new: Table) -> dict[str, Verdict]:
    return {c.path: c.verdict for c in cited(classify_table(old, new))}


def test_keys_added_changed_and_removed_are_updates_in_place_named_per_key() -> None:
    parent = ForeignKey("fk_parent", "id", "parent", "id")
    keyed = table(constraints=Constraints(("id",), (parent,)))
    changes_ = {c.path: c for c in cited(classify_table(table(), keyed))}
    assert {path: c.verdict for path, c in changes_.items()} == {
        "(constraints.primary_key)": Verdict.UPDATE,
        "(constraints.foreign_keys.fk_parent)": Verdict.UPDATE,
    }
    assert all(c.citation is changes.TABLE_CONSTRAINTS for c in changes_.values())
    assert "does not enforce it" in changes_["(constraints.primary_key)"].reason
    assert "fk_parent: id -> parent.id" in changes_["(constraints.foreign_keys.fk_parent)"].reason
    moved = table(constraints=Constraints(("id",), (ForeignKey("fk_parent", "name", "parent", "id"),)))
    assert table_verdicts(keyed, moved) == {"(constraints.foreign_keys.fk_parent)": Verdict.UPDATE}
    assert table_verdicts(keyed, table()) == {
        "(constraints.primary_key)": Verdict.UPDATE,
        "(constraints.foreign_keys.fk_parent)": Verdict.UPDATE,
    }
    assert table_verdicts(keyed, keyed) == {}


def test_description_labels_clustering_and_partition_filter_are_updates() -> None:
    old = table(labels={"team": "a", "gone": "x"}, clustering=("name",))
    new = table(labels={"team": "b", "new": "y"}, clustering=("id", "name"), description="Described")
    assert table_verdicts(old, new) == {
        "(description)": Verdict.UPDATE,
        "(labels.gone)": Verdict.UPDATE,
        "(labels.new)": Verdict.UPDATE,
        "(labels.team)": Verdict.UPDATE,
        "(clustering)": Verdict.UPDATE,
    }
    partitioned = TimePartitioning("DAY", "day")
    filtered = classify_table(
        table(SCHEMA_WITH_DATES, time_partitioning=partitioned),
        table(SCHEMA_WITH_DATES, time_partitioning=partitioned, require_partition_filter=True),
    )
    assert [(c.path, c.verdict) for c in filtered] == [("(require_partition_filter)", Verdict.UPDATE)]
    assert "queries without a partition filter start failing" in filtered[0].reason


DAY_ON_DAY = TimePartitioning("DAY", "day")
DAY_ON_AT = TimePartitioning("DAY", "at")
MONTH_ON_DAY = TimePartitioning("MONTH", "day")
INGESTION_DAY = TimePartitioning("DAY")
INGESTION_HOUR = TimePartitioning("HOUR")
RANGE_N = RangePartitioning("n", 0, 100, 10)


@pytest.mark.parametrize(
    ("old", "new", "verdict", "citation"),
    [
        ({"time_partitioning": DAY_ON_DAY}, {"time_partitioning": DAY_ON_AT}, Verdict.REPLACE, TIME_PARTITION_FIELD),
        ({}, {"time_partitioning": DAY_ON_DAY}, Verdict.REPLACE, TIME_PARTITION_FIELD),
        ({"time_partitioning": DAY_ON_DAY}, {}, Verdict.REPLACE, TIME_PARTITION_FIELD),
        ({"time_partitioning": DAY_ON_DAY}, {"time_partitioning": MONTH_ON_DAY}, Verdict.REJECTED, PARTITIONING_FIXED),
        (
            {"time_partitioning": INGESTION_DAY},
            {"time_partitioning": INGESTION_HOUR},
            Verdict.REJECTED,
            PARTITIONING_FIXED,
        ),
        ({}, {"time_partitioning": INGESTION_DAY}, Verdict.REJECTED, PARTITIONING_FIXED),
        ({"time_partitioning": INGESTION_DAY}, {}, Verdict.REJECTED, PARTITIONING_FIXED),
        ({}, {"range_partitioning": RANGE_N}, Verdict.REPLACE, RANGE_PARTITION_FIELD),
        ({"range_partitioning": RANGE_N}, {}, Verdict.REPLACE, RANGE_PARTITION_FIELD),
        ({"time_partitioning": DAY_ON_DAY}, {"range_partitioning": RANGE_N}, Verdict.REPLACE, RANGE_PARTITION_FIELD),
        (
            {"range_partitioning": RANGE_N},
            {"range_partitioning": RangePartitioning("n", 0, 200, 10)},
            Verdict.REJECTED,
            PARTITIONING_FIXED,
        ),
        (
            {"range_partitioning": RANGE_N},
            {"range_partitioning": RangePartitioning("id", 0, 100, 10)},
            Verdict.REPLACE,
            RANGE_PARTITION_FIELD,
        ),
    ],
    ids=[
        "field-changed",
        "column-partitioning-added",
        "column-partitioning-removed",
        "granularity-changed",
        "ingestion-granularity-changed",
        "ingestion-partitioning-added",
        "ingestion-partitioning-removed",
        "range-added",
        "range-removed",
        "time-to-range",
        "range-bounds-changed",
        "range-field-changed",
    ],
)
def test_partitioning_changes(
    old: dict[str, object], new: dict[str, object], verdict: Verdict, citation: object
) -> None:
    [change] = cited(classify_table(table(SCHEMA_WITH_DATES, **old), table(SCHEMA_WITH_DATES, **new)))
    assert (change.verdict, change.citation) == (verdict, citation)


@pytest.mark.parametrize(
    ("old_days", "new_days", "verdict", "citation", "says"),
    [
        (90, 400, Verdict.UPDATE, PARTITION_EXPIRATION, "partitions are kept longer"),
        (400, 90, Verdict.UPDATE_DESTRUCTIVE, PARTITION_EXPIRATION, "deletes every partition older than 90 days"),
        (None, 90, Verdict.UPDATE_DESTRUCTIVE, PARTITION_EXPIRATION, "deletes every partition older than 90 days"),
        (90, None, Verdict.REJECTED, EXPIRATION_COMPUTED, "BigQuery keeps the expiration"),
    ],
    ids=["longer", "shorter", "added", "removed"],
)
def test_partition_expiration(
    old_days: int | None, new_days: int | None, verdict: Verdict, citation: object, says: str
) -> None:
    old = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day", old_days))
    new = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day", new_days))
    [change] = cited(classify_table(old, new))
    assert (change.path, change.verdict, change.citation) == ("(partitioning.expiration_days)", verdict, citation)
    assert says in change.reason


@pytest.mark.parametrize("keep_forever", [True, False], ids=["keep-forever", "expiration-removed"])
def test_removing_an_expiration_is_rejected_and_says_how_to_clear_it_on_the_live_table(keep_forever: bool) -> None:
    # The provider sends nothing (expiration_ms is optional and computed): partitions would keep expiring.
    old = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day", 90))
    new = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day", keep_forever=keep_forever))
    [change] = cited(classify_table(old, new, "p.d_v2.t"))
    assert (change.verdict, change.citation) == (Verdict.REJECTED, EXPIRATION_COMPUTED)
    fix = "ALTER TABLE `p.d_v2.t` SET OPTIONS (partition_expiration_days = NULL)"
    assert change.live_fix == fix
    assert f"`migrate --apply` clears it on the live table first ({fix})" in change.reason
    assert "goes on deleting old partitions" in change.reason
    assert ("keep_forever: true" in change.reason) is keep_forever
    [unnamed] = classify_table(old, new)
    assert unnamed.live_fix == "ALTER TABLE `<project>.d.t` SET OPTIONS (partition_expiration_days = NULL)"


def test_keep_forever_alone_sends_nothing() -> None:
    old = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day"))
    new = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day", keep_forever=True))
    assert classify_table(old, new) == []


# Table attributes classify_table handles; schema_file is
# where the schema came from, not what it is; renamed_columns are hints for `migrate`, sent to nobody; retired is
# an option of the resource, which classify_catalogs reports (table_retiring, table_retired).
CLASSIFIED_TABLE_FIELDS = frozenset(
    {
        "dataset",
        "table_id",
        "description",
        "schema",
        "schema_file",
        "time_partitioning",
        "range_partitioning",
        "require_partition_filter",
        "clustering",
        "labels",
        "constraints",
        "renamed_columns",
        "retired",
        "column_masking",
    }
)
# Every rule the classifier cites, as the module defines its citations.
CITATIONS = frozenset(value for value in vars(changes).values() if isinstance(value, Citation))


def test_every_table_attribute_has_a_rule() -> None:
    # Fails when Table gains an attribute (say an encryption key) that classify_table does not know.
    assert {f.name for f in fields(Table)} == CLASSIFIED_TABLE_FIELDS


def test_every_verdict_rests_on_a_rule_of_the_provider_bigquery_or_pulumi() -> None:
    # No guessed verdicts: an attribute without a rule fails the test above instead.
    assert {citation.authority for citation in CITATIONS} == {"provider", "BigQuery", "Pulumi"}


def test_the_classifier_imports_no_cloud_sdk_and_runs_no_git() -> None:
    # docs/architecture.md: the classifier is pure; files, git and stack config are its edges' (filediff, basediff).
    edges = "{'pulumi', 'pulumi_gcp', 'google', 'subprocess', 'tarfile'}"
    code = f"import infra.analysis.changes, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {edges}))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_verdicts_are_ordered_from_best_to_worst() -> None:
    assert [v.value for v in sorted(Verdict, key=lambda v: v.rank)] == [
        "noop",
        "added",
        "update",
        "update-destructive",
        "replace",
        "removed",
        "rejected",
    ]
    assert worst([Verdict.UPDATE, Verdict.REPLACE, Verdict.NOOP]) is Verdict.REPLACE
    assert worst([]) is Verdict.NOOP


def test_dropping_a_clustering_column_is_refused_by_bigquery() -> None:
    """BigQuery docs, DDL reference, ALTER TABLE DROP COLUMN: a clustering column cannot be dropped; and
    terraform-provider-google resource_bigquery_table.go resourceBigQueryTableUpdate runs
    resourceBigQueryTableColumnDrop before the PUT that would change the clustering, so apply fails."""
    old = table(SCHEMA_WITH_DATES, clustering=("name", "n"))
    without_n = tuple(c for c in SCHEMA_WITH_DATES if c.name != "n")
    for new in (table(without_n, clustering=("name", "n")), table(without_n, clustering=("name",))):
        changes = {c.path: c for c in cited(classify_table(old, new))}
        assert changes["n"].verdict is Verdict.REJECTED
        assert "clustering column" in changes["n"].reason and "ALTER TABLE DROP COLUMN" in changes["n"].reason


def test_dropping_the_partitioning_column_replaces_the_table() -> None:
    """resource_bigquery_table.go ResourceBigQueryTable: time_partitioning.field is ForceNew, so the table is
    replaced and no ALTER TABLE DROP COLUMN runs (BigQuery would refuse it on a partitioning column)."""
    old = table(SCHEMA_WITH_DATES, time_partitioning=TimePartitioning("DAY", "day"))
    new = table(tuple(c for c in SCHEMA_WITH_DATES if c.name != "day"), time_partitioning=TimePartitioning("DAY", "at"))
    changes = {c.path: c for c in cited(classify_table(old, new))}
    assert changes["day"].verdict is Verdict.REPLACE
    assert changes["day"].citation is TIME_PARTITION_FIELD


def test_an_in_place_drop_names_the_row_access_policy_exception() -> None:
    """resource_bigquery_table.go resourceBigQueryTableSchemaIsChangeable (terraform-provider-google v7.3.0 and
    later, which pulumi-gcp 10.2.0 bundles): a top-level drop is not changeable when
    bigQueryTableHasRowAccessPolicy finds policies, so the table is replaced instead."""
    [change] = cited(classify_schema(BASE, BASE[:2]))
    assert change.verdict is Verdict.UPDATE_DESTRUCTIVE
    assert "row access policies the provider replaces the table" in change.reason
