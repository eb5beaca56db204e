"""Acceptance tests: the CLI as a user runs it (helpers.invoke), asserting exit codes and output; and the one
mapping of outcomes to exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FIXTURE_ROOT, REPO_CATALOG, count_yaml_reads, invoke

from infra.cli.commands import CommandFailed, Interrupted, Refused
from infra.cli.main import Exit, exit_code
from infra.model.catalog import load_catalog
from infra.model.declared import DATASET_TYPE, TABLE_TYPE
from infra.model.problems import DeclarationError
from infra.model.schema import count_columns


def test_validate_the_repository() -> None:
    result = invoke("validate")
    assert result.returncode == 0, result.stderr
    tables = len(REPO_CATALOG.tables())
    assert result.stdout.startswith(f"✓ {len(REPO_CATALOG.datasets)} dataset(s), {tables} table(s)")
    assert "stacks checked: dev, prod" in result.stdout


def test_validate_reports_every_problem_one_line_each_without_traceback(repo_copy: Path) -> None:
    schema = repo_copy / "schemas" / "tenants" / "tenant_api_keys.json"
    schema.write_text(schema.read_text().replace('"BYTES"', '"BLOB"', 1))
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("clustering: [tenant_id]", "clustering: [tenant]"))
    (repo_copy / "Pulumi.dev.yaml").write_text("config:\n  gcp:project: acme-test\n  tenant-bigquery:protect: maybe\n")

    result = invoke("validate", "--root", str(repo_copy), cwd=repo_copy)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "schemas/tenants/tenant_api_keys.json:key_hash.type: type 'BLOB' is not a BigQuery type; use one of "
        "BIGNUMERIC, BOOL, BYTES, DATE, DATETIME, FLOAT64, GEOGRAPHY, INT64, JSON, NUMERIC, RANGE, RECORD, "
        "STRING, TIME, TIMESTAMP"
    )
    assert lines[1] == (
        "stacks/tenants.yaml:tables.tenant_usage_quotas.clustering.tenant: not a top-level column of the schema; "
        "clustering needs a top-level column"
    )
    assert lines[2] == "Pulumi.dev.yaml:config.tenant-bigquery:protect: must be true or false; got 'maybe'"
    assert lines[3] == "3 problem(s); nothing was changed."
    assert "Traceback" not in result.stderr


def test_the_cli_spells_every_verdict_in_order() -> None:
    from infra.analysis.changes import Verdict
    from infra.cli.options import VERDICTS

    assert list(VERDICTS) == [v.value for v in Verdict]


def test_validate_root_without_stacks_folder(tmp_path: Path) -> None:
    result = invoke("validate", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "stacks: no such folder; --root must hold stacks/ and schemas/"


def test_usage_errors_exit_2() -> None:
    assert invoke("validate", "--nope").returncode == 2
    assert invoke("plan").returncode == 2  # --stack is required


def test_each_outcome_has_the_exit_code_the_cli_documents() -> None:
    """infra/cli/main.py's docstring and README "Deadlines and exit codes of the live commands": the one mapping,
    checked here without a live run (an interrupted migrate is otherwise seen only by the live tests)."""
    outcomes: list[bool | Exception] = [
        False,
        True,
        DeclarationError([]),
        Refused("a snapshot BigQuery refuses"),
        CommandFailed("an API that cannot be reached"),
        Interrupted("stopped by SIGINT"),
    ]
    assert [int(exit_code(outcome)) for outcome in outcomes] == [0, 1, 2, 1, 2, 130]
    assert exit_code(DeclarationError([]), invalid=Exit.PROBLEMS) == 1  # validate, plan and docs: a finding


def test_a_missing_stack_is_one_usage_error_everywhere(tmp_path: Path) -> None:
    preview = tmp_path / "preview.json"
    preview.write_text("{}")
    for command in (
        ["plan"],
        ["diff", "--base", "HEAD"],
        ["preview-gate", str(preview)],
        ["verify"],
        ["snapshot", "--all"],
        ["migrate"],
        ["import-file"],
    ):
        result = invoke(*command, "--stack", "staging")
        assert result.returncode == 2, command
        assert "Pulumi.staging.yaml: no such stack file; known stacks: dev, prod" in result.stderr, command


def test_plan_json_lists_the_dataset_and_tables_with_options() -> None:
    result = invoke("plan", "--stack", "prod", "--format", "json", "--root", str(FIXTURE_ROOT), cwd=FIXTURE_ROOT)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["stack"] == "prod"
    tables = [r for r in document["resources"] if r["type"] == TABLE_TYPE]
    datasets = [r for r in document["resources"] if r["type"] == DATASET_TYPE]
    assert len(datasets) == 1 and len(tables) == 9
    quotas = next(t for t in tables if t["name"] == "tenants-tenant_usage_quotas")
    assert quotas["inputs"]["timePartitioning"]["field"] == "usage_date"
    assert quotas["inputs"]["requirePartitionFilter"] is True
    assert quotas["options"] == {
        "protect": True,
        "deleteBeforeReplace": True,
        "replaceOnChanges": [],
        "replacementTrigger": "baseline",
        "ignoreChanges": [],
    }
    assert all(t["inputs"]["deletionProtection"] for t in tables)


def test_plan_masks_secret_config_values(repo_copy: Path) -> None:
    """pulumi: is the one namespace whose secrets pass (gcp: keys but the project are refused, and this
    project's settings must be plain text)."""
    stack_file = repo_copy / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  pulumi:token:\n    secure: v1:abcdef==\n")
    result = invoke("plan", "--stack", "dev", "--root", str(repo_copy), "--format", "json", cwd=repo_copy)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["pulumi:token"] == "[secret]"
    assert "v1:abcdef" not in result.stdout


def test_plan_text_is_a_table_a_reviewer_reads_at_a_glance() -> None:
    result = invoke("plan", "--stack", "prod", "--root", str(FIXTURE_ROOT), cwd=FIXTURE_ROOT)
    assert result.returncode == 0, result.stderr
    assert "Dataset tenants in US: protect=True, delete contents on destroy=False" in result.stdout
    assert (
        "  time travel 168 h (changed or deleted data recoverable 7 days back); storage billing not declared "
        "(BigQuery's default, LOGICAL)" in result.stdout.splitlines()
    )
    row = next(line for line in result.stdout.splitlines() if "tenants.tenant_usage_quotas" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == [
        "tenants.tenant_usage_quotas",
        "19",
        "DAY on usage_date, partitions expire after 730 d",
        "required",
        "tenant_id",
        "yes",
        "yes",
        "-",
    ]


def test_plan_counts_leaf_columns_as_the_data_dictionary_does() -> None:
    result = invoke("plan", "--stack", "prod", "--root", str(FIXTURE_ROOT), cwd=FIXTURE_ROOT)
    assert result.returncode == 0, result.stderr
    assert "columns (leaf)" in result.stdout
    rows = [line.strip("│ ").split("│") for line in result.stdout.splitlines() if "│ tenants." in line]
    shown = {cells[0].strip(): int(cells[1]) for cells in rows}
    expected = {table.key: count_columns(table.schema) for table in load_catalog(FIXTURE_ROOT).tables()}
    assert shown == expected
    assert shown["tenants.tenant_pipeline_configs"] == 27  # 15 top-level columns; RECORDs count as their fields


def test_plan_refuses_invalid_declarations(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("type: DAY", "type: WEEK", 1))
    result = invoke("plan", "--stack", "prod", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "partitioning.type: time partitioning needs type: one of HOUR, DAY, MONTH, YEAR" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_file_into_a_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "import.json"
    result = invoke("import-file", "--stack", "prod", "--root", str(FIXTURE_ROOT), "--skip-verify", "--out", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: cannot write {out}: No such file or directory"]


def test_plan_and_import_file_read_the_catalog_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import infra.model.catalog
    import infra.pulumi_edge.mockrun
    import infra.pulumi_edge.program

    reads: list[Path] = []
    original = infra.model.catalog.load_catalog

    def counting(root: Path) -> infra.model.catalog.Catalog:
        reads.append(root)
        return original(root)

    monkeypatch.setattr(infra.model.catalog, "load_catalog", counting)
    monkeypatch.setattr(infra.pulumi_edge.mockrun, "load_catalog", counting)
    monkeypatch.setattr(infra.pulumi_edge.program, "load_catalog", counting)  # `pulumi up`'s path must not run here
    for command in (["plan"], ["import-file", "--skip-verify", "--out", str(tmp_path / "import.json")]):
        reads.clear()
        result = invoke(*command, "--stack", "prod", "--root", str(FIXTURE_ROOT), cwd=FIXTURE_ROOT)
        assert result.returncode == 0, result.stderr
        assert reads == [FIXTURE_ROOT], command


@pytest.mark.parametrize("command", [["plan"], ["import-file", "--skip-verify"], ["validate"]])
def test_a_command_reads_each_declaration_and_stack_file_once(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    reads = count_yaml_reads(monkeypatch)
    stack = ["--stack", "prod"] if command[0] != "validate" else []

    result = invoke(*command, *stack, "--root", str(FIXTURE_ROOT))

    assert result.returncode == 0, result.stderr
    assert reads and set(reads.values()) == {1}, reads


def test_validate_refuses_a_history_table_without_a_column_migrate_writes(repo_copy: Path) -> None:
    """infra/model/history.py COLUMNS: what migrate --apply writes into tenants.migration_history."""
    schema = repo_copy / "schemas" / "tenants" / "migration_history.json"
    columns = [c for c in json.loads(schema.read_text()) if c["name"] != "bytes_processed"]
    columns = [c | {"mode": "REQUIRED"} if c["name"] == "finished_at" else c for c in columns]
    schema.write_text(json.dumps(columns))
    result = invoke("validate", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 1
    assert "schemas/tenants/migration_history.json:bytes_processed: migrate writes this column: add it as INT64" in (
        result.stderr
    )
    assert (
        "schemas/tenants/migration_history.json:finished_at: migrate writes NULL or a TIMESTAMP here: declare it "
        "NULLABLE TIMESTAMP" in result.stderr
    )
