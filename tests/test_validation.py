"""One bad input per BigQuery rule: each gets one line naming the file and the field, all at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.model.catalog import catalog_warnings, load_catalog
from infra.model.problems import DeclarationError

GOOD_COLUMNS: list[dict[str, Any]] = [
    {"name": "tenant_id", "type": "STRING", "mode": "REQUIRED", "description": "Tenant."},
    {"name": "event_date", "type": "DATE", "mode": "REQUIRED", "description": "Day."},
    {"name": "event_time", "type": "TIMESTAMP", "description": "When."},
    {"name": "bucket", "type": "INT64", "description": "Bucket."},
    {"name": "tags", "type": "STRING", "mode": "REPEATED", "description": "Tags."},
    {"name": "score", "type": "FLOAT64", "description": "Score."},
    {
        "name": "detail",
        "type": "RECORD",
        "description": "Nested.",
        "fields": [{"name": "code", "type": "STRING", "description": "Code."}],
    },
]


class MiniRepo:
    """A root with stacks/ds.yaml declaring table `events` and schemas/ds/events.json."""

    def __init__(self, root: Path):
        self.root = root
        self.declaration: dict[str, Any] = {
            "dataset": "ds",
            "description": "Test dataset.",
            "labels": {"component": "test"},
            "tables": {
                "events": {
                    "description": "Events.",
                    "partitioning": {"field": "event_date", "type": "DAY", "expiration_days": 30},
                    "clustering": ["tenant_id"],
                }
            },
        }
        self.columns: list[dict[str, Any]] = json.loads(json.dumps(GOOD_COLUMNS))
        self.schema_file = "events.json"
        self.write()

    @property
    def table(self) -> dict[str, Any]:
        return self.declaration["tables"]["events"]  # type: ignore[no-any-return]

    def write(self) -> None:
        (self.root / "stacks").mkdir(exist_ok=True)
        (self.root / "schemas" / "ds").mkdir(parents=True, exist_ok=True)
        (self.root / "stacks" / "ds.yaml").write_text(yaml.safe_dump(self.declaration))
        (self.root / "schemas" / "ds" / self.schema_file).write_text(json.dumps(self.columns, indent=2))

    def problems(self) -> list[str]:
        self.write()
        try:
            load_catalog(self.root)
        except DeclarationError as error:
            return [str(p) for p in error.problems]
        return []


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MiniRepo:
    monkeypatch.chdir(tmp_path)  # problems name files relative to the working directory
    return MiniRepo(tmp_path)


SCHEMA = "schemas/ds/events.json"
DECL = "stacks/ds.yaml"


def only_problem(repo: MiniRepo) -> str:
    problems = repo.problems()
    assert len(problems) == 1, problems
    return problems[0]


def test_the_mini_repo_is_valid(repo: MiniRepo) -> None:
    assert repo.problems() == []


def test_every_structural_problem_of_a_table_is_named_in_declaration_order(repo: MiniRepo) -> None:
    """msgspec stops at the first problem; the report walks the types so that a user fixes them in one go."""
    repo.declaration["tables"]["events"] = {
        "colour": "red",
        "description": ["x"],
        "partitioning": {"type": "DAY", "expiration_days": True, "range": {"field": "bucket"}},
        "clustering": [1, "tenant_id", 2.5],
        "labels": {"team": 7},
    }
    where = f"{DECL}:tables.events"

    assert repo.problems() == [
        f"{where}.description: must be a string (quote it in YAML)",
        f"{where}.partitioning.expiration_days: must be a whole number; got True",
        f"{where}.partitioning.range.start: is required; add it",
        f"{where}.partitioning.range.end: is required; add it",
        f"{where}.partitioning.range.interval: is required; add it",
        f"{where}.clustering.0: must be a string (quote it in YAML); got 1",
        f"{where}.clustering.2: must be a string (quote it in YAML); got 2.5",
        f"{where}.labels.team: must be a string (quote it in YAML); got 7",
        f"{where}.colour: unknown key; check the spelling (allowed here: description, schema, partitioning, "
        "require_partition_filter, clustering, labels, constraints, renamed_columns, retired)",
    ]


def test_keys_that_are_not_strings_are_named(repo: MiniRepo) -> None:
    repo.declaration["tables"][123] = {"description": "x"}
    repo.table["labels"] = {1: "x", "team": "data"}
    where = f"{DECL}:tables"
    assert repo.problems() == [
        f"{where}.events.labels.1: a key must be a string (quote it in YAML); got 1",
        f"{where}.123: a key must be a string (quote it in YAML); got 123",
    ]


def test_clustering_null_is_refused_not_taken_for_no_clustering(repo: MiniRepo) -> None:
    repo.table["clustering"] = None
    assert only_problem(repo) == f"{DECL}:tables.events.clustering: must be a list, e.g. [a, b]"


def test_a_yaml_set_is_refused_where_a_list_keeps_the_order(repo: MiniRepo) -> None:
    """msgspec would take a set for a list: the clustering columns would come out in any order."""
    declaration = repo.root / "stacks" / "ds.yaml"
    text = declaration.read_text()
    assert "clustering:\n    - tenant_id" in text
    declaration.write_text(text.replace("clustering:\n    - tenant_id", "clustering: !!set {tenant_id}"))
    with pytest.raises(DeclarationError) as raised:
        load_catalog(repo.root)
    [problem] = raised.value.problems
    line = 1 + text.splitlines().index("    clustering:")
    assert (problem.file, problem.path) == (DECL, f"line {line}")
    assert "a set (!!set) is not allowed; write a list [a, b]" in problem.message


# ------------------------------------------------------------------ column names


@pytest.mark.parametrize("name", ["1st", "cost-center", "first name", "größe", "名前", "a&b", "ratio%", "x:y#z|w"])
def test_flexible_column_names_are_valid(repo: MiniRepo, name: str) -> None:
    """BigQuery docs, Specify a schema, "Flexible column names": letters, numbers and marks of any
    language, connector and dash punctuation, whitespace and & % = + : ' < > # |; a digit may come first."""
    repo.columns[3]["name"] = name
    repo.table["clustering"] = ["tenant_id"]
    assert repo.problems() == []
    [warning] = [str(w) for w in catalog_warnings(load_catalog(repo.root))]
    assert warning.startswith(f"{SCHEMA}:{name}: column name {name!r} is a flexible column name: ")
    assert "Storage Read and Write APIs" in warning


@pytest.mark.parametrize("name", ["a.b", "why?", "at@home", "(x)", "back`tick", "semi;colon", "tab\tname"])
def test_column_name_characters_bigquery_refuses(repo: MiniRepo, name: str) -> None:
    repo.columns[3]["name"] = name
    problem = only_problem(repo)
    assert problem.startswith(f"{SCHEMA}:{name}: column name {name!r} has characters BigQuery does not allow")


def test_classic_column_names_carry_no_warning(repo: MiniRepo) -> None:
    assert catalog_warnings(load_catalog(repo.root)) == []


def test_column_name_longer_than_300_characters(repo: MiniRepo) -> None:
    repo.columns[3]["name"] = "c" * 301
    assert "column name is 301 characters; BigQuery allows at most 300" in only_problem(repo)


@pytest.mark.parametrize("name", ["_PARTITIONTIME", "_table_suffix", "_File_name", "__root__x", "_CHANGE_TYPE"])
def test_reserved_prefixes_compare_case_insensitively(repo: MiniRepo, name: str) -> None:
    repo.columns[3]["name"] = name
    assert "starts with the reserved prefix" in only_problem(repo)


def test_duplicate_columns_differing_only_in_case(repo: MiniRepo) -> None:
    repo.columns[3]["name"] = "TENANT_ID"
    assert only_problem(repo) == (
        f"{SCHEMA}:TENANT_ID: duplicate column name (same as 'tenant_id' ignoring case); rename or remove one"
    )


def test_duplicate_nested_columns(repo: MiniRepo) -> None:
    repo.columns[6]["fields"].append({"name": "Code", "type": "STRING"})
    assert only_problem(repo).startswith(f"{SCHEMA}:detail.Code: duplicate column name")


def test_same_name_in_different_records_is_fine(repo: MiniRepo) -> None:
    repo.columns[6]["fields"].append({"name": "tenant_id", "type": "STRING"})
    assert repo.problems() == []


# ------------------------------------------------------------------ types and modes


def test_unknown_type_lists_the_valid_ones(repo: MiniRepo) -> None:
    repo.columns[3]["type"] = "INTEGR"
    assert only_problem(repo).startswith(f"{SCHEMA}:bucket.type: type 'INTEGR' is not a BigQuery type; use one of")


def test_every_documented_spelling_in_any_case_is_accepted_and_canonicalised(repo: MiniRepo) -> None:
    repo.columns[3]["type"] = "integer"
    repo.columns[5]["type"] = "Float"
    repo.columns[6]["type"] = "struct"
    repo.columns.append({"name": "flag", "type": "boolean", "mode": "nullable"})
    repo.write()
    table = load_catalog(repo.root).tables()[0]
    types = {c.name: (c.type, c.mode) for c in table.schema}
    assert types["bucket"] == ("INT64", "NULLABLE")
    assert types["score"] == ("FLOAT64", "NULLABLE")
    assert types["detail"] == ("RECORD", "NULLABLE")
    assert types["flag"] == ("BOOL", "NULLABLE")


def test_invalid_mode(repo: MiniRepo) -> None:
    repo.columns[3]["mode"] = "OPTIONAL"
    assert only_problem(repo) == f"{SCHEMA}:bucket.mode: mode 'OPTIONAL' is invalid; use NULLABLE, REQUIRED or REPEATED"


def test_fields_only_on_record(repo: MiniRepo) -> None:
    repo.columns[3]["fields"] = [{"name": "x", "type": "STRING"}]
    assert "only RECORD columns have fields" in only_problem(repo)


def test_record_needs_fields(repo: MiniRepo) -> None:
    del repo.columns[6]["fields"]
    assert only_problem(repo) == f"{SCHEMA}:detail.fields: a RECORD column needs a non-empty fields list"


def test_range_needs_an_element_type(repo: MiniRepo) -> None:
    repo.columns.append({"name": "validity", "type": "RANGE"})
    assert "a RANGE column needs rangeElementType" in only_problem(repo)
    repo.columns[-1]["rangeElementType"] = {"type": "DATE"}
    assert repo.problems() == []


def test_max_length_only_on_string_and_bytes(repo: MiniRepo) -> None:
    repo.columns[3]["maxLength"] = 10
    assert "maxLength applies only to STRING and BYTES, not INT64" in only_problem(repo)
    del repo.columns[3]["maxLength"]
    repo.columns[0]["maxLength"] = "64"
    assert repo.problems() == []


@pytest.mark.parametrize(
    ("type_", "precision", "scale", "message"),
    [
        ("NUMERIC", 40, 9, "NUMERIC needs 1 <= precision - scale <= 29; got precision 40, scale 9"),
        ("NUMERIC", 12, 10, "NUMERIC scale must be between 0 and 9"),
        ("BIGNUMERIC", 80, 39, "BIGNUMERIC scale must be between 0 and 38"),
        ("BIGNUMERIC", 5, 5, "BIGNUMERIC needs 1 <= precision - scale <= 38; got precision 5, scale 5"),
        ("NUMERIC", None, 2, "scale without precision is invalid; set precision too"),
    ],
)
def test_parameterized_numeric_bounds(
    repo: MiniRepo, type_: str, precision: int | None, scale: int | None, message: str
) -> None:
    column: dict[str, Any] = {"name": "amount", "type": type_}
    if precision is not None:
        column["precision"] = precision
    column["scale"] = scale
    repo.columns.append(column)
    assert only_problem(repo) == f"{SCHEMA}:amount.precision: {message}"


def test_valid_numeric_parameters(repo: MiniRepo) -> None:
    repo.columns.append({"name": "amount", "type": "NUMERIC", "precision": "38", "scale": "9"})
    repo.columns.append({"name": "big", "type": "BIGNUMERIC", "precision": 76, "scale": 38})
    assert repo.problems() == []


def test_precision_only_on_numeric(repo: MiniRepo) -> None:
    repo.columns[5]["precision"] = 10
    assert "precision applies only to NUMERIC and BIGNUMERIC, not FLOAT64" in only_problem(repo)


def test_rounding_mode_and_collation(repo: MiniRepo) -> None:
    repo.columns[0]["roundingMode"] = "ROUND_HALF_EVEN"
    repo.columns[2]["collation"] = "und:ci"
    problems = repo.problems()
    assert len(problems) == 2
    assert "roundingMode applies only to NUMERIC and BIGNUMERIC, not STRING" in problems[0]
    assert "collation applies only to STRING, not TIMESTAMP" in problems[1]


def test_at_most_one_policy_tag(repo: MiniRepo) -> None:
    repo.columns[0]["policyTags"] = {"names": ["projects/p/locations/us/taxonomies/1/policyTags/2", "x"]}
    assert "a column can carry at most one policy tag" in only_problem(repo)


def test_nesting_deeper_than_15_levels(repo: MiniRepo) -> None:
    leaf: dict[str, Any] = {"name": "leaf", "type": "STRING"}
    for level in range(15):
        leaf = {"name": f"level{level}", "type": "RECORD", "fields": [leaf]}
    repo.columns.append(leaf)
    problem = only_problem(repo)
    assert problem.startswith(f"{SCHEMA}:level14.level13.level12")
    assert problem.endswith(
        "level0.fields: RECORD nesting deeper than 15 levels; BigQuery allows at most 15: flatten the inner records"
    )


@pytest.mark.parametrize("depth", [500, 5_000])
def test_absurd_nesting_is_one_line_not_a_traceback(repo: MiniRepo, depth: int) -> None:
    leaf: dict[str, Any] = {"name": "leaf", "type": "STRING"}
    text = json.dumps(leaf)
    for level in range(depth):
        text = f'{{"name": "l{level}", "type": "RECORD", "fields": [{text}]}}'
    repo.write()
    (repo.root / "schemas" / "ds" / "events.json").write_text(f"[{text}]")
    try:
        load_catalog(repo.root)
    except DeclarationError as error:
        problems = [str(p) for p in error.problems]
    assert len(problems) == 1 and problems[0].startswith(SCHEMA), problems


def test_an_empty_schema_is_an_error_not_a_removed_table(repo: MiniRepo) -> None:
    repo.columns = []
    del repo.table["partitioning"], repo.table["clustering"]
    assert only_problem(repo).startswith(f"{SCHEMA}:(top): no columns; a table needs at least one column")


def test_unknown_partition_type_names_the_value(repo: MiniRepo) -> None:
    repo.table["partitioning"]["type"] = "WEEK"
    assert only_problem(repo).endswith("one of HOUR, DAY, MONTH, YEAR (or use range:); got 'WEEK'")


def test_partition_expiration_beyond_int64_milliseconds(repo: MiniRepo) -> None:
    repo.table["partitioning"]["expiration_days"] = 10**14
    assert "exceed what BigQuery stores (int64 milliseconds)" in only_problem(repo)


def test_clustering_and_partitioning_columns_are_sent_as_the_schema_spells_them(repo: MiniRepo) -> None:
    """BigQuery matches column names ignoring case; the provider compares clustering exactly
    (terraform-provider-google resource_bigquery_table.go: `clustering` is a plain TypeList)."""
    repo.table["partitioning"]["field"] = "EVENT_DATE"
    repo.table["clustering"] = ["Tenant_ID"]
    [table] = load_catalog(repo.root).tables()
    assert table.clustering == ("tenant_id",)
    assert table.time_partitioning is not None and table.time_partitioning.field == "event_date"


def test_a_symlinked_schema_folder_outside_the_repository_is_refused(repo: MiniRepo, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    repo.write()
    (repo.root / "schemas" / "ds" / "events.json").rename(elsewhere / "events.json")
    (repo.root / "schemas" / "ds").rmdir()
    (repo.root / "schemas" / "ds").symlink_to(elsewhere)
    assert "must name a file inside schemas/ds/" in only_problem(repo)


def test_a_symlinked_declaration_outside_the_repository_is_refused(repo: MiniRepo, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    repo.write()
    (repo.root / "stacks" / "ds.yaml").rename(elsewhere / "ds.yaml")
    (repo.root / "stacks" / "ds.yaml").symlink_to(elsewhere / "ds.yaml")
    try:
        load_catalog(repo.root)
    except DeclarationError as error:
        problems = [str(p) for p in error.problems]
    assert problems == [
        f"{DECL}: a link to a file outside stacks/; declarations are part of the repository: copy the file here"
    ]


def test_column_count_names_the_count_it_uses(repo: MiniRepo) -> None:
    repo.columns.append(
        {"name": "wide", "type": "RECORD", "fields": [{"name": f"c{i}", "type": "INT64"} for i in range(10_000)]}
    )
    problem = only_problem(repo)
    assert problem.startswith(f"{SCHEMA}:(top): 10,007 columns, counting leaf fields at every depth")
    assert "BigQuery allows at most 10,000 per table" in problem


def test_unknown_column_key(repo: MiniRepo) -> None:
    repo.columns[0]["nullable"] = False
    assert only_problem(repo).startswith(f"{SCHEMA}:tenant_id: unknown key(s) nullable; allowed:")


def test_column_description_limit(repo: MiniRepo) -> None:
    repo.columns[0]["description"] = "x" * 1025
    assert "description is 1,025 characters; BigQuery allows at most 1,024" in only_problem(repo)


def test_schema_must_be_a_list(repo: MiniRepo) -> None:
    repo.columns = {"fields": GOOD_COLUMNS}  # type: ignore[assignment]
    assert "expected a JSON list of columns" in only_problem(repo)


# ------------------------------------------------------------------ partitioning


def test_partition_field_must_exist_at_top_level(repo: MiniRepo) -> None:
    repo.table["partitioning"]["field"] = "detail.code"
    assert only_problem(repo) == (
        f"{DECL}:tables.events.partitioning.field: column 'detail.code' is not a top-level column of the schema"
    )


def test_partition_field_must_not_be_repeated(repo: MiniRepo) -> None:
    repo.columns[1]["mode"] = "REPEATED"
    assert "must not be REPEATED" in only_problem(repo)


def test_date_column_cannot_be_partitioned_by_hour(repo: MiniRepo) -> None:
    repo.table["partitioning"]["type"] = "HOUR"
    assert only_problem(repo).endswith(
        "partitioning.field: column 'event_date' is DATE, which can be partitioned by DAY, MONTH, YEAR, not HOUR; "
        "choose one of those, or a TIMESTAMP or DATETIME column for HOUR"
    )


def test_timestamp_column_can_be_partitioned_by_hour(repo: MiniRepo) -> None:
    repo.table["partitioning"] = {"field": "event_time", "type": "HOUR", "expiration_days": 7}
    assert repo.problems() == []


def test_time_partitioning_on_an_integer_column(repo: MiniRepo) -> None:
    repo.table["partitioning"]["field"] = "bucket"
    assert "partitioning.field: column 'bucket' is INT64, which cannot be a time-partitioning column" in only_problem(
        repo
    )


def test_ingestion_time_partitioning_needs_no_field(repo: MiniRepo) -> None:
    repo.table["partitioning"] = {"type": "MONTH", "keep_forever": True}
    assert repo.problems() == []


def test_partition_type_is_required(repo: MiniRepo) -> None:
    del repo.table["partitioning"]["type"]
    assert "time partitioning needs type: one of HOUR, DAY, MONTH, YEAR" in only_problem(repo)


def test_partition_expiration_must_be_positive(repo: MiniRepo) -> None:
    repo.table["partitioning"]["expiration_days"] = 0
    assert "0 is too short; BigQuery's minimum is one hour, so use at least 1 day" in only_problem(repo)


def test_expiration_and_keep_forever_exclude_each_other(repo: MiniRepo) -> None:
    repo.table["partitioning"]["keep_forever"] = True
    assert "set either expiration_days or keep_forever: true, not both" in only_problem(repo)


def test_range_partitioning_needs_an_int64_column(repo: MiniRepo) -> None:
    repo.table["partitioning"] = {"range": {"field": "score", "start": 0, "end": 100, "interval": 10}}
    assert "range partitioning needs a non-REPEATED INT64 column; 'score' is NULLABLE FLOAT64" in only_problem(repo)


@pytest.mark.parametrize(
    ("start", "end", "interval", "message"),
    [
        (0, 100, 0, "interval of the ranges on 'bucket' must be greater than 0 (got 0)"),
        (100, 100, 1, "start (100) must be less than end (100) of the ranges on 'bucket'; swap or widen them"),
        (0, 100_001, 10, "10,001 ranges on 'bucket' (0 to 100001 by 10); BigQuery allows at most 10,000"),
    ],
)
def test_range_partitioning_bounds(repo: MiniRepo, start: int, end: int, interval: int, message: str) -> None:
    repo.table["partitioning"] = {"range": {"field": "bucket", "start": start, "end": end, "interval": interval}}
    assert only_problem(repo).startswith(f"{DECL}:tables.events.partitioning.range: {message}")


def test_range_partitioning_at_the_limit_is_valid(repo: MiniRepo) -> None:
    repo.table["partitioning"] = {"range": {"field": "bucket", "start": 0, "end": 100_000, "interval": 10}}
    assert repo.problems() == []


def test_require_partition_filter_needs_partitioning(repo: MiniRepo) -> None:
    del repo.table["partitioning"]
    repo.table["require_partition_filter"] = True
    assert "require_partition_filter: needs partitioning:" in only_problem(repo)


# ------------------------------------------------------------------ clustering


def test_clustering_at_most_four_columns(repo: MiniRepo) -> None:
    repo.table["clustering"] = ["tenant_id", "event_date", "event_time", "bucket", "score"]
    problems = repo.problems()
    assert f"{DECL}:tables.events.clustering: clustering takes 1 to 4 columns; got 5" in problems
    assert any("a FLOAT64 column cannot be a clustering column" in p for p in problems)


def test_clustering_needs_at_least_one_column(repo: MiniRepo) -> None:
    repo.table["clustering"] = []
    assert "clustering takes 1 to 4 columns; got 0" in only_problem(repo)


def test_clustering_column_must_be_top_level_and_not_repeated(repo: MiniRepo) -> None:
    repo.table["clustering"] = ["tenant_id", "tags", "code"]
    problems = repo.problems()
    assert f"{DECL}:tables.events.clustering.tags: a REPEATED column cannot be a clustering column" in problems
    assert any(p.startswith(f"{DECL}:tables.events.clustering.code: not a top-level column") for p in problems)


def test_clustering_column_listed_twice(repo: MiniRepo) -> None:
    repo.table["clustering"] = ["tenant_id", "tenant_id"]
    assert "listed twice; keep one" in only_problem(repo)


# ------------------------------------------------------------------ labels, ids, descriptions


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Team", "data", "label key must be 1 to 63 characters and start with a lowercase letter"),
        ("1team", "data", "label key must be 1 to 63 characters and start with a lowercase letter"),
        ("team", "Data", "label value must be 0 to 63 lowercase letters, digits, '_' or '-'"),
        ("team", "x" * 64, "label value must be 0 to 63 lowercase letters, digits, '_' or '-'"),
        ("team.name", "data", "label key may use only lowercase letters, digits, '_' and '-'"),
    ],
)
def test_label_rules(repo: MiniRepo, key: str, value: str, message: str) -> None:
    repo.table["labels"] = {key: value}
    assert only_problem(repo) == f"{DECL}:tables.events.labels.{key}: {message}"


def test_international_lowercase_labels_are_allowed(repo: MiniRepo) -> None:
    repo.declaration["labels"] = {"équipe": "données", "empty": ""}
    assert repo.problems() == []


def test_at_most_64_labels(repo: MiniRepo) -> None:
    repo.declaration["labels"] = {f"k{i}": "v" for i in range(65)}
    assert only_problem(repo) == f"{DECL}:labels: 65 labels; BigQuery allows at most 64"


def test_dataset_id_rule(repo: MiniRepo) -> None:
    repo.declaration["dataset"] = "my-dataset"
    problems = repo.problems()
    assert problems[0].startswith(f"{DECL}:dataset: dataset id 'my-dataset' is invalid")


def test_table_id_must_be_snake_case(repo: MiniRepo) -> None:
    repo.declaration["tables"]["Events"] = repo.declaration["tables"].pop("events")
    repo.declaration["tables"]["Events"]["schema"] = "events.json"
    assert "this project requires snake_case table ids" in only_problem(repo)


def test_table_description_limit(repo: MiniRepo) -> None:
    repo.table["description"] = "x" * 16_385
    assert "description is 16,385 characters; BigQuery allows at most 16,384" in only_problem(repo)


# ------------------------------------------------------------------ files and declarations


def test_orphan_schema_file(repo: MiniRepo) -> None:
    (repo.root / "schemas" / "ds" / "forgotten.json").write_text("[]")
    assert only_problem(repo) == (
        "schemas/ds/forgotten.json: schema file not used by any table; "
        "add an entry under tables: in stacks/ds.yaml or delete the file"
    )


def test_schema_folder_of_an_undeclared_dataset(repo: MiniRepo) -> None:
    (repo.root / "schemas" / "other").mkdir()
    (repo.root / "schemas" / "other" / "t.json").write_text("[]")
    assert "no stacks/*.yaml declares dataset 'other'" in only_problem(repo)


def test_declared_table_without_schema(repo: MiniRepo) -> None:
    repo.declaration["tables"]["missing"] = {"description": "No schema yet."}
    assert only_problem(repo) == (
        f"{DECL}:tables.missing.schema: schema file schemas/ds/missing.json not found; "
        "create it or point schema: at the right file"
    )


def test_schema_option_points_at_another_file(repo: MiniRepo) -> None:
    (repo.root / "schemas" / "ds" / "events.json").unlink()
    repo.schema_file = repo.table["schema"] = "events_v2.json"
    assert repo.problems() == []


def test_malformed_json_names_the_line(repo: MiniRepo) -> None:
    repo.write()
    (repo.root / SCHEMA).write_text('[\n  {"name": "a", "type": "STRING"},\n  {"name": }\n]')
    problems = []
    try:
        load_catalog(repo.root)
    except DeclarationError as error:
        problems = [str(p) for p in error.problems]
    assert problems == [f"{SCHEMA}:line 3 column 12: invalid JSON: Expecting value; fix the syntax"]


def test_malformed_yaml_names_the_line(repo: MiniRepo) -> None:
    (repo.root / DECL).write_text("dataset: ds\ntables:\n  events: {description: [unclosed\n")
    with pytest.raises(DeclarationError) as caught:
        load_catalog(repo.root)
    assert str(caught.value.problems[0]).startswith(f"{DECL}:line 4: invalid YAML:")


def test_duplicate_yaml_keys_are_errors(repo: MiniRepo) -> None:
    repo.write()
    text = (repo.root / DECL).read_text()
    (repo.root / DECL).write_text(text + "dataset: ds\n")
    with pytest.raises(DeclarationError) as caught:
        load_catalog(repo.root)
    assert "invalid YAML: duplicate key 'dataset'; keep one entry" in str(caught.value)


def test_unknown_declaration_key_lists_the_allowed_ones(repo: MiniRepo) -> None:
    repo.table["cluster_by"] = ["tenant_id"]
    assert only_problem(repo) == (
        f"{DECL}:tables.events.cluster_by: unknown key; check the spelling (allowed here: description, schema, "
        "partitioning, require_partition_filter, clustering, labels, constraints, renamed_columns, retired)"
    )


def test_wrong_value_type_in_declaration(repo: MiniRepo) -> None:
    repo.table["clustering"] = "tenant_id"
    repo.table["partitioning"]["expiration_days"] = "30"
    problems = repo.problems()
    assert f"{DECL}:tables.events.partitioning.expiration_days: must be a whole number; got '30'" in problems
    assert f"{DECL}:tables.events.clustering: must be a list, e.g. [a, b]; got 'tenant_id'" in problems


def test_every_problem_is_reported_at_once(repo: MiniRepo) -> None:
    repo.columns[3]["type"] = "INTEGR"
    repo.columns[0]["name"] = "_PARTITIONTIME"
    repo.table["clustering"] = ["nope"]
    repo.declaration["labels"] = {"Bad": "x"}
    assert len(repo.problems()) == 4


def test_two_files_declaring_one_dataset(repo: MiniRepo) -> None:
    repo.write()
    (repo.root / "stacks" / "ds_again.yaml").write_text((repo.root / DECL).read_text())
    with pytest.raises(DeclarationError) as caught:
        load_catalog(repo.root)
    assert "stacks/ds_again.yaml:dataset: dataset 'ds' is also declared in stacks/ds.yaml; one file per dataset" in [
        str(p) for p in caught.value.problems
    ]


def test_non_utf8_declaration(repo: MiniRepo) -> None:
    (repo.root / DECL).write_bytes(b"dataset: ds\ndescription: caf\xe9\n")
    with pytest.raises(DeclarationError) as caught:
        load_catalog(repo.root)
    assert [str(p) for p in caught.value.problems] == [f"{DECL}: not UTF-8 text; save the file as UTF-8"]


def test_a_complex_yaml_key_is_a_one_line_error(repo: MiniRepo) -> None:
    (repo.root / DECL).write_text("dataset: ds\ntables:\n  ? [a, b]\n  : {}\n")
    with pytest.raises(DeclarationError) as caught:
        load_catalog(repo.root)
    assert "invalid YAML: a key must be a plain name, not a list or mapping" in str(caught.value)


@pytest.mark.parametrize("schema", ["../other/events.json", "/etc/passwd"])
def test_schema_option_stays_inside_the_dataset_folder(repo: MiniRepo, schema: str) -> None:
    repo.table["schema"] = schema
    problems = repo.problems()
    assert problems[0] == (
        f"{DECL}:tables.events.schema: must name a file inside schemas/ds/ (schemas are part of the declaration); "
        "move the file there"
    )


def test_time_partitioning_says_how_long_partitions_live(repo: MiniRepo) -> None:
    del repo.table["partitioning"]["expiration_days"]
    assert only_problem(repo).startswith(
        f"{DECL}:tables.events.partitioning.expiration_days: say how long partitions live: expiration_days: N, "
        "or keep_forever: true"
    )


@pytest.mark.parametrize("key", ["retention", "data-loss"])
def test_labels_the_program_sets_cannot_be_declared(repo: MiniRepo, key: str) -> None:
    repo.table["labels"] = {key: "x"}
    assert only_problem(repo).startswith(f"{DECL}:tables.events.labels.{key}: label {key!r} is reserved: the program")
