"""Acceptance tests of `diff`: exit codes, stdout and stderr, on schema files and on git repositories."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, FIXTURE_TABLES, REPO_ROOT, count_yaml_reads, invoke

CORPUS = REPO_ROOT / "tests" / "corpus" / "mozilla-pipeline-schemas"
TABLES = sorted(f"tenants.{p.stem}" for p in (FIXTURE_ROOT / "schemas" / "tenants").glob("*.json"))

Result = subprocess.CompletedProcess[str]
Diff = Callable[..., Result]


@pytest.fixture
def diff(tmp_path: Path) -> Diff:
    """`python -m infra.cli diff ARGS` in-process, run from `cwd` (paths in messages are relative to it)."""

    def run(*args: str, cwd: Path = tmp_path) -> Result:
        return invoke("diff", *args, cwd=cwd)

    return run


def documents(result: Result) -> dict[str, dict[str, Any]]:
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return {t["table"]: t for t in json.loads(result.stdout)["tables"]}


def verdicts(result: Result) -> dict[str, str]:
    return {name: table["verdict"] for name, table in documents(result).items()}


def write(path: Path, schema: Any) -> Path:
    path.write_text(json.dumps(schema, indent=2))
    return path


# ---------------------------------------------------------------- two schema files


NOOP_PAIRS = {
    "INTEGER-INT64": ([{"name": "n", "type": "INTEGER"}], [{"name": "n", "type": "INT64"}]),
    "FLOAT-FLOAT64": ([{"name": "n", "type": "FLOAT"}], [{"name": "n", "type": "FLOAT64"}]),
    "BOOLEAN-BOOL": ([{"name": "n", "type": "BOOLEAN"}], [{"name": "n", "type": "BOOL"}]),
    "STRUCT-RECORD": (
        [{"name": "r", "type": "STRUCT", "fields": [{"name": "a", "type": "STRING"}]}],
        [{"name": "r", "type": "RECORD", "fields": [{"name": "a", "type": "STRING"}]}],
    ),
    "missing-mode": ([{"name": "n", "type": "STRING"}], [{"name": "n", "type": "STRING", "mode": "NULLABLE"}]),
    "letter-case": (
        [{"name": "n", "type": "int64", "mode": "required"}],
        [{"name": "n", "type": "INT64", "mode": "REQUIRED"}],
    ),
    "empty-description": (
        [{"name": "n", "type": "STRING", "description": ""}],
        [{"name": "n", "type": "STRING"}],
    ),
    "reordered": (
        [{"name": "a", "type": "STRING"}, {"name": "b", "type": "DATE"}],
        [{"name": "b", "type": "DATE"}, {"name": "a", "type": "STRING"}],
    ),
}


@pytest.mark.parametrize("pair", NOOP_PAIRS)
def test_spellings_and_order_the_provider_ignores_are_noop(diff: Diff, tmp_path: Path, pair: str) -> None:
    old, new = NOOP_PAIRS[pair]
    write(tmp_path / "old.json", old)
    write(tmp_path / "new.json", new)

    result = diff("--old", "old.json", "--new", "new.json", "--format", "json", "--fail-on", "added")

    assert result.returncode == 0, result.stdout + result.stderr
    # Loading canonicalises spellings, so only the reordering is left to report, as a noop.
    assert {name: table["verdict"] for name, table in documents(result).items()} == (
        {"new.json": "noop"} if pair == "reordered" else {}
    )


def test_identical_files_report_no_changes(diff: Diff, tmp_path: Path) -> None:
    write(tmp_path / "same.json", [{"name": "id", "type": "STRING"}])

    as_json = diff("--old", "same.json", "--new", "same.json", "--format", "json")
    as_text = diff("--old", "same.json", "--new", "same.json")

    assert json.loads(as_json.stdout) == {"tables": []}
    assert as_text.stdout.splitlines()[-1] == "No changes."
    assert "changed" not in as_text.stdout


def test_json_shape_and_fail_on_thresholds(diff: Diff, tmp_path: Path) -> None:
    write(tmp_path / "old.json", [{"name": "id", "type": "STRING"}, {"name": "at", "type": "STRING"}])
    write(tmp_path / "new.json", [{"name": "id", "type": "STRING"}, {"name": "at", "type": "TIMESTAMP"}])
    args = ("--old", "old.json", "--new", "new.json", "--format", "json")

    result = diff(*args)

    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "tables": [
            {
                "table": "new.json",
                "verdict": "replace",
                "changes": [
                    {
                        "path": "at",
                        "verdict": "replace",
                        "reason": "provider: type change STRING -> TIMESTAMP forces a new table, recreated empty "
                        "(terraform-provider-google resourceBigQueryTableSchemaIsChangeable)",
                    }
                ],
            }
        ]
    }
    assert diff(*args, "--fail-on", "update").returncode == 1
    assert diff(*args, "--fail-on", "replace").returncode == 1
    assert diff(*args, "--fail-on", "removed").returncode == 0
    assert diff(*args, "--fail-on", "rejected").returncode == 0


def test_an_external_table_drop_is_a_replace(diff: Diff, tmp_path: Path) -> None:
    write(tmp_path / "old.json", [{"name": "id", "type": "STRING"}, {"name": "gone", "type": "STRING"}])
    write(tmp_path / "new.json", [{"name": "id", "type": "STRING"}])
    native = verdicts(diff("--old", "old.json", "--new", "new.json", "--format", "json"))
    external = verdicts(diff("--old", "old.json", "--new", "new.json", "--format", "json", "--external"))
    assert (native, external) == ({"new.json": "update-destructive"}, {"new.json": "replace"})


def test_invalid_files_are_reported_like_validate_and_exit_2(diff: Diff, tmp_path: Path) -> None:
    write(tmp_path / "old.json", [{"name": "id", "type": "BLOB"}])
    write(tmp_path / "new.json", [{"name": "id", "type": "STRING", "mode": "SOMETIMES"}])

    result = diff("--old", "old.json", "--new", "new.json")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "old.json:id.type: type 'BLOB' is not a BigQuery type; use one of BIGNUMERIC, BOOL, BYTES, DATE, DATETIME, "
        "FLOAT64, GEOGRAPHY, INT64, JSON, NUMERIC, RANGE, RECORD, STRING, TIME, TIMESTAMP",
        "new.json:id.mode: mode 'SOMETIMES' is invalid; use NULLABLE, REQUIRED or REPEATED",
        "2 problem(s); nothing was changed.",
    ]


LARGEST = CORPUS / "schemas" / "firefox-desktop" / "metrics" / "metrics.1.bq"


def test_a_schema_over_the_column_limit_is_compared_with_a_warning(diff: Diff, tmp_path: Path) -> None:
    # A deployed table may already exceed the documented limit: its changes still need a verdict.
    write(tmp_path / "metrics.json", [*json.loads(LARGEST.read_text()), {"name": "note", "type": "STRING"}])

    result = diff("--old", str(LARGEST), "--new", "metrics.json", "--format", "json")

    assert result.returncode == 0, result.stderr
    assert verdicts(result) == {"metrics.json": "update"}
    assert result.stderr.splitlines()[1] == (
        "warning: metrics.json: 10,204 columns, more than BigQuery's documented 10,000; compared anyway, "
        "since a deployed table may already have that many"
    )


def test_a_missing_file_and_other_problems_of_a_large_schema_are_input_errors(diff: Diff, tmp_path: Path) -> None:
    write(tmp_path / "metrics.json", [*json.loads(LARGEST.read_text()), {"name": "note", "type": "BLOB"}])

    missing = diff("--old", "nowhere.json", "--new", "metrics.json")

    assert missing.returncode == 2
    assert missing.stdout == ""
    lines = missing.stderr.splitlines()
    assert lines[0] == "nowhere.json: cannot read the file: No such file or directory"
    assert lines[1].startswith("metrics.json:note.type: type 'BLOB' is not a BigQuery type")
    assert lines[2:] == ["2 problem(s); nothing was changed."]
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--old", "a.json"), "--old and --new go together"),
        (("--old", "a.json", "--new", "b.json", "--stack", "prod"), "--base and --stack compare the catalog"),
        (("--external",), "--external applies to --old/--new"),
        (("--fail-on", "terrible"), "'terrible' is not one of"),
        (("--stack", "staging"), "Pulumi.staging.yaml: no such stack file; known stacks: dev, prod"),
    ],
)
def test_usage_errors_exit_2(diff: Diff, args: tuple[str, ...], message: str) -> None:
    result = diff(*args, "--root", str(REPO_ROOT))
    assert result.returncode == 2
    assert message in result.stderr


def test_the_command_runs_as_a_module_without_traceback(tmp_path: Path) -> None:
    write(tmp_path / "old.json", [{"name": "id", "type": "STRING"}])
    write(tmp_path / "new.json", [{"name": "id", "type": "STRING"}, {"name": "note", "type": "STRING"}])
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "diff", "--old", "old.json", "--new", "new.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "new.json: update" in result.stdout
    assert "note" in result.stdout and "new NULLABLE column, added in place" in result.stdout
    assert "Runbook" not in result.stdout
    assert result.stderr == ""


# ---------------------------------------------------------------- the catalog at a git ref


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    completed = subprocess.run(["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True)
    return completed.stdout


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


@pytest.fixture
def repo(repo_copy: Path) -> Path:
    """A git repository on branch main whose one commit holds the repository's catalog and program."""
    shutil.copytree(REPO_ROOT / "infra", repo_copy / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo_copy, "init", "-q", "-b", "main")
    commit(repo_copy, "base")
    return repo_copy


def schema(repo: Path, table: str) -> list[dict[str, Any]]:
    return json.loads((repo / "schemas" / "tenants" / f"{table}.json").read_text())  # type: ignore[no-any-return]


def edit_schema(repo: Path, table: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    columns = schema(repo, table)
    change(columns)
    write(repo / "schemas" / "tenants" / f"{table}.json", columns)


def edit_declaration(repo: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo / "stacks" / "tenants.yaml"
    declaration = yaml.safe_load(path.read_text())
    change(declaration)
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))


def edit_config(repo: Path, stack: str, **values: Any) -> None:
    path = repo / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    for key, value in values.items():
        if value is None:  # unset, as `pulumi config rm` does
            document["config"].pop(f"tenant-bigquery:{key}", None)
        else:
            document["config"][f"tenant-bigquery:{key}"] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def drop_scopes(columns: list[dict[str, Any]]) -> None:
    columns[:] = [c for c in columns if c["name"] != "scopes"]


def retype_suspended_at(columns: list[dict[str, Any]]) -> None:
    next(c for c in columns if c["name"] == "suspended_at")["type"] = "DATETIME"


def add_note(columns: list[dict[str, Any]]) -> None:
    columns.append({"name": "note", "type": "STRING", "mode": "NULLABLE"})


def test_no_changes_against_the_default_branch(diff: Diff, repo: Path) -> None:
    result = diff("--root", str(repo), "--fail-on", "noop")
    assert result.returncode == 0, result.stderr
    assert "merge base with main" in result.stdout
    assert "No table changes; 9 unchanged." in result.stdout


def test_every_kind_of_table_change_in_the_working_tree(diff: Diff, repo: Path) -> None:
    edit_schema(repo, "tenant_api_keys", drop_scopes)
    edit_schema(repo, "tenant_profiles", retype_suspended_at)
    edit_schema(repo, "scheduled_pipeline_runs", add_note)
    (repo / "schemas" / "tenants" / "pipeline_execution_queue.json").unlink()
    shutil.copy(
        repo / "schemas" / "tenants" / "tenant_profiles.json", repo / "schemas" / "tenants" / "tenant_notes.json"
    )

    def declare(declaration: dict[str, Any]) -> None:
        tables = declaration["tables"]
        del tables["pipeline_execution_queue"]
        tables["tenant_notes"] = {"description": "Notes."}
        tables["tenant_usage_quotas"]["partitioning"]["type"] = "MONTH"

    edit_declaration(repo, declare)

    result = diff("--root", str(repo), "--format", "json")

    assert result.returncode == 0, result.stderr
    assert verdicts(result) == {
        "tenants.pipeline_execution_queue": "removed",
        "tenants.scheduled_pipeline_runs": "update",
        "tenants.tenant_api_keys": "update-destructive",
        "tenants.tenant_notes": "added",
        "tenants.tenant_profiles": "replace",
        "tenants.tenant_usage_quotas": "rejected",
    }
    tables = documents(result)
    assert [c["path"] for c in tables["tenants.tenant_api_keys"]["changes"]] == ["scopes"]
    assert [c["path"] for c in tables["tenants.tenant_usage_quotas"]["changes"]] == ["(partitioning.type)"]
    assert "deleted with all of its rows" in tables["tenants.pipeline_execution_queue"]["changes"][0]["reason"]
    # A table the contracts (contracts/) rely on lists the ones each change breaks (tests/test_contracts.py).
    assert all(set(t) - {"brokenContracts"} == {"table", "verdict", "changes"} for t in tables.values())
    assert {c["contract"] for c in tables["tenants.tenant_api_keys"]["brokenContracts"]} == {
        "auth/authenticate.sql",
        "onboarding/create_api_key.sql",
    }
    assert diff("--root", str(repo), "--fail-on", "rejected").returncode == 1
    assert diff("--root", str(repo), "--fail-on", "removed").returncode == 1


def test_a_pull_request_compares_with_the_merge_base_not_with_the_tip_of_main(diff: Diff, repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    edit_schema(repo, "tenant_api_keys", drop_scopes)
    commit(repo, "drop scopes")
    git(repo, "checkout", "-q", "main")
    edit_schema(repo, "tenant_profiles", retype_suspended_at)
    commit(repo, "main moves on")
    git(repo, "checkout", "-q", "feature")

    on_branch = verdicts(diff("--root", str(repo), "--format", "json"))
    against_main_tip = verdicts(diff("--root", str(repo), "--format", "json", "--base", "main"))
    against_itself = verdicts(diff("--root", str(repo), "--format", "json", "--base", "HEAD"))

    assert on_branch == {"tenants.tenant_api_keys": "update-destructive"}
    assert against_main_tip == {"tenants.tenant_api_keys": "update-destructive", "tenants.tenant_profiles": "replace"}
    assert against_itself == {}


def test_the_catalog_may_live_in_a_subfolder_of_the_repository(diff: Diff, repo_copy: Path, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    shutil.move(repo_copy, outer / "infra-catalog")
    git(outer, "init", "-q", "-b", "main")
    commit(outer, "base")
    edit_schema(outer / "infra-catalog", "tenant_api_keys", drop_scopes)

    result = diff("--root", str(outer / "infra-catalog"), "--format", "json")

    assert verdicts(result) == {"tenants.tenant_api_keys": "update-destructive"}


def test_approval_in_the_stack_marks_the_table_and_lets_the_gate_pass(diff: Diff, repo: Path) -> None:
    edit_schema(repo, "tenant_profiles", retype_suspended_at)
    args = ("--root", str(repo), "--stack", "prod", "--format", "json", "--fail-on", "update-destructive")

    unapproved = diff(*args)
    edit_config(repo, "prod", approveDataLoss=["tenants.tenant_profiles"])
    approved = diff(*args)
    edit_schema(repo, "tenant_api_keys", drop_scopes)
    another = diff(*args)

    assert unapproved.returncode == 1
    assert documents(unapproved)["tenants.tenant_profiles"]["approved"] is False
    assert approved.returncode == 0
    assert documents(approved)["tenants.tenant_profiles"]["approved"] is True
    assert another.returncode == 1
    assert documents(another)["tenants.tenant_api_keys"]["approved"] is False


@pytest.mark.parametrize("approved_at_base", [True, False])
def test_removing_a_table_approved_at_the_base_passes_the_gate(diff: Diff, repo: Path, approved_at_base: bool) -> None:
    # Runbook: approve and apply first; then delete the declaration and its approval in one change.
    if approved_at_base:
        edit_config(repo, "prod", approveDataLoss=["tenants.pipeline_execution_queue"])
        commit(repo, "approve the removal")
    (repo / "schemas" / "tenants" / "pipeline_execution_queue.json").unlink()
    edit_declaration(repo, lambda d: d["tables"].pop("pipeline_execution_queue"))
    edit_config(repo, "prod", approveDataLoss=[])

    result = diff("--root", str(repo), "--stack", "prod", "--format", "json", "--fail-on", "update-destructive")

    assert result.returncode == (0 if approved_at_base else 1), result.stderr
    [removed] = documents(result).values()
    assert (removed["verdict"], removed["approved"]) == ("removed", approved_at_base)


def test_removing_a_partition_expiration_asks_to_clear_it_on_the_live_table(diff: Diff, repo: Path) -> None:
    def keep_forever(declaration: dict[str, Any]) -> None:
        partitioning = declaration["tables"]["pipeline_execution_queue"]["partitioning"]
        del partitioning["expiration_days"]
        partitioning["keep_forever"] = True

    edit_config(repo, "dev", datasetSuffix="_dev")
    commit(repo, "suffix")
    edit_declaration(repo, keep_forever)

    as_json = documents(diff("--root", str(repo), "--format", "json", "--stack", "dev"))
    text = diff("--root", str(repo), "--stack", "dev")

    # dev recreates on partitioning changes, but the provider sends nothing for this one.
    changes = {c["path"]: c for c in as_json["tenants.pipeline_execution_queue"]["changes"]}
    change = changes["(partitioning.expiration_days)"]
    assert change["verdict"] == "rejected"
    assert changes["(labels.retention)"]["verdict"] == "update"
    assert "BigQuery keeps the expiration and goes on deleting old partitions" in change["reason"]
    table = "`acme-data-platform-dev.tenants_dev.pipeline_execution_queue`"
    fix = f"ALTER TABLE {table} SET OPTIONS (partition_expiration_days = NULL)"
    assert f"     {fix};" in text.stdout.splitlines()
    assert "`python -m infra.cli migrate --stack dev --apply` changes the live tables in place first" in text.stdout
    assert "Runbook" not in text.stdout


@pytest.mark.parametrize(
    ("before", "after", "re_key"),
    [
        (
            "projects/p/locations/us/keyRings/r/cryptoKeys/one",
            "projects/p/locations/us/keyRings/r/cryptoKeys/two",
            True,
        ),
        (None, "projects/p/locations/us/keyRings/r/cryptoKeys/two", True),
        ("projects/p/locations/us/keyRings/r/cryptoKeys/one", None, False),
    ],
    ids=["changed", "added", "removed"],
)
def test_a_new_encryption_key_prints_the_re_key_steps_not_the_data_loss_runbook(
    diff: Diff, repo: Path, before: str | None, after: str | None, re_key: bool
) -> None:
    edit_config(repo, "prod", kmsKeyName=before)
    commit(repo, "key before")
    edit_config(repo, "prod", kmsKeyName=after)

    as_json = documents(diff("--root", str(repo), "--format", "json", "--stack", "prod"))
    out = diff("--root", str(repo), "--stack", "prod").stdout
    markdown = diff("--root", str(repo), "--stack", "prod", "--format", "markdown").stdout

    assert {t["verdict"] for t in as_json.values()} == {"replace"}  # what an unprepared up would do
    lines = out.splitlines()
    alters = [f"     ALTER TABLE `acme-data-platform-prod.{t}` SET OPTIONS (kms_key_name = '{after}');" for t in TABLES]
    assert all(line in lines for line in alters) is re_key
    assert ("migrate --stack prod --apply` changes the live tables in place" in out) is re_key
    assert ("Runbook for" in out) is not re_key
    assert ("migrate --stack prod --apply` changes the live tables in place" in markdown) is re_key


def test_recreate_on_schema_change_turns_schema_changes_into_replaces(diff: Diff, repo: Path) -> None:
    edit_config(repo, "dev", recreateOnSchemaChange=True)
    commit(repo, "dev recreates on schema change")
    edit_schema(repo, "scheduled_pipeline_runs", add_note)
    edit_declaration(repo, lambda d: d["tables"]["tenant_profiles"].update(labels={"owner": "tenancy"}))

    plain = documents(diff("--root", str(repo), "--format", "json"))
    dev = documents(diff("--root", str(repo), "--format", "json", "--stack", "dev"))

    assert plain["tenants.scheduled_pipeline_runs"]["verdict"] == "update"
    [note] = dev["tenants.scheduled_pipeline_runs"]["changes"]
    assert note["verdict"] == "replace"
    assert note["reason"].startswith("Pulumi: replaceOnChanges lists schema (recreateOnSchemaChange)")
    assert "without it: provider: new NULLABLE column" in note["reason"]
    assert "applyReplaceOnChanges" in note["reason"]
    assert dev["tenants.tenant_profiles"]["verdict"] == "update"  # labels are not part of the schema


def test_a_changed_recreate_token_replaces_exactly_the_tables_it_names(diff: Diff, repo: Path) -> None:
    edit_config(repo, "prod", recreate={"tenants.tenant_profiles": "1", "tenants.*": "a"})
    commit(repo, "tokens")
    edit_config(repo, "prod", recreate={"tenants.tenant_profiles": "2", "tenants.*": "a"})

    result = documents(diff("--root", str(repo), "--format", "json", "--stack", "prod"))

    assert list(result) == ["tenants.tenant_profiles"]
    [change] = result["tenants.tenant_profiles"]["changes"]
    assert (change["path"], change["verdict"]) == ("(option replacementTrigger)", "replace")
    assert "tenants.tenant_profiles=1 -> tenants.tenant_profiles=2" in change["reason"]
    assert "shouldTriggerReplace" in change["reason"]

    edit_config(repo, "prod", recreate={"tenants.tenant_profiles": "1", "tenants.*": "b"})
    everything_else = verdicts(diff("--root", str(repo), "--format", "json", "--stack", "prod"))
    assert everything_else == {table: "replace" for table in TABLES if table != "tenants.tenant_profiles"}


@pytest.mark.parametrize(
    ("before", "after", "path", "dataset_path"),
    [
        (
            {"kmsKeyName": "projects/p/locations/us/keyRings/r/cryptoKeys/one"},
            {"kmsKeyName": None},
            "(encryptionConfiguration)",
            "(defaultEncryptionConfiguration)",
        ),
        ({"datasetSuffix": ""}, {"datasetSuffix": "_v2"}, "(datasetId)", "(datasetId)"),
    ],
    ids=["encryption-key", "dataset-suffix"],
)
def test_stack_settings_that_replace_every_table(
    diff: Diff, repo: Path, before: dict[str, Any], after: dict[str, Any], path: str, dataset_path: str
) -> None:
    """terraform-provider-google resource_bigquery_table.go ResourceBigQueryTable: dataset_id and
    encryption_configuration are ForceNew; the dataset's key is updated in place (resourceBigQueryDatasetUpdate)."""
    edit_config(repo, "prod", **before)
    commit(repo, "settings before")
    edit_config(repo, "prod", **after)

    result = json.loads(diff("--root", str(repo), "--format", "json", "--stack", "prod").stdout)

    tables = {t["table"]: t for t in result["tables"]}
    paths = {name: [c["path"] for c in t["changes"]] for name, t in tables.items()}
    assert paths == {table: [path] for table in TABLES}
    assert {t["verdict"] for t in tables.values()} == {"replace"}
    [dataset] = result["datasets"]
    assert dataset_path in [c["path"] for c in dataset["changes"]]


def test_a_new_location_replaces_the_dataset_and_a_case_change_does_nothing(diff: Diff, repo: Path) -> None:
    """terraform-provider-google resource_bigquery_dataset.go ResourceBigQueryDataset: location is ForceNew with
    DiffSuppressFunc tpgresource.CaseDiffSuppress; tables send no location, so only the dataset is replaced,
    and the old report's replacement of every table was wrong."""
    edit_config(repo, "prod", location="US", kmsKeyName=None)
    commit(repo, "US, no key")
    edit_config(repo, "prod", location="us")
    case_only = json.loads(diff("--root", str(repo), "--format", "json", "--stack", "prod").stdout)
    edit_config(repo, "prod", location="EU")
    moved = json.loads(diff("--root", str(repo), "--format", "json", "--stack", "prod").stdout)

    # The program sends the canonical spelling; the provider would ignore the case anyway (test_resourcediff).
    assert case_only == {"tables": [], "datasets": [], "components": [], "providers": []}
    assert moved["tables"] == []
    [dataset] = moved["datasets"]
    # Prod's state records no deleteContentsOnDestroy true: BigQuery refuses to delete the dataset.
    assert (dataset["dataset"], dataset["verdict"]) == ("tenants", "rejected")
    assert dataset["changes"][0]["reason"].startswith(
        "provider: the old dataset still holds 9 table(s) and state records no deleteContentsOnDestroy true: "
        "BigQuery refuses its delete, so the update fails there and nothing is replaced"
    )
    assert "every table goes with it" in dataset["changes"][1]["reason"]


def test_a_dataset_replaced_with_its_contents_loses_every_table(diff: Diff, repo: Path) -> None:
    """Dev's state records deleteContentsOnDestroy true: the provider deletes the dataset with
    ?deleteContents=true (terraform-provider-google resource_bigquery_dataset.go resourceBigQueryDatasetDelete),
    and BigQuery deletes every table in it (BigQuery REST reference, datasets.delete). The engine replaces a
    dependent only through a property dependency (pulumi/pulumi pkg/resource/deploy/step_generator.go
    calculateDependentReplacements), and the tables name the dataset by a plain id and depends_on: the
    engine leaves them as they are."""
    edit_config(repo, "dev", location="EU")
    moved = diff("--root", str(repo), "--format", "json", "--stack", "dev", "--fail-on", "update-destructive")
    tables = documents(moved)
    assert moved.returncode == 1
    assert len(tables) == len(FIXTURE_TABLES)
    for name, table in tables.items():
        assert table["verdict"] == "removed", name
        [change] = table["changes"]
        assert change["path"] == "(dataset replaced)"
        assert "deletes this table and every row with it" in change["reason"]
        assert "calculateDependentReplacements" in change["reason"]


def test_a_new_suffix_deletes_the_tables_with_the_dataset_before_their_own_deletes(diff: Diff, repo: Path) -> None:
    """A new datasetSuffix changes the dataset's and every table's datasetId (ForceNew): the dataset goes first
    with its tables, then each table's own delete finds nothing; terraform-provider-google
    resource_bigquery_table.go resourceBigQueryTableDelete returns that 404 as an error."""
    edit_config(repo, "dev", datasetSuffix="_v2")
    tables = documents(diff("--root", str(repo), "--format", "json", "--stack", "dev"))
    assert len(tables) == len(FIXTURE_TABLES)
    for name, table in tables.items():
        assert table["verdict"] == "removed", name
        [removal] = [c for c in table["changes"] if c["path"] == "(dataset replaced)"]
        assert "the table's own delete then finds no table (404) and the update stops midway" in removal["reason"]


def test_bad_refs_and_folders_outside_git_exit_2(diff: Diff, repo: Path, tmp_path: Path) -> None:
    bad_ref = diff("--root", str(repo), "--base", "no-such-branch")
    leak = tmp_path / "leak.tar"
    option_like = diff("--root", str(repo), f"--base=--output={leak}")
    shutil.rmtree(repo / ".git")
    no_git = diff("--root", str(repo))

    assert bad_ref.returncode == 2
    assert "--base: no commit 'no-such-branch' in this repository" in bad_ref.stderr
    assert option_like.returncode == 2
    assert not leak.exists()  # a ref is never read as a git option
    assert no_git.returncode == 2
    assert "is not inside a git repository; compare two files with --old/--new instead" in no_git.stderr


SHALLOW_ADVICE = (
    "this clone is shallow: fetch more history with `git fetch --deepen=<N>` (or all of it with "
    "`git fetch --unshallow`); in GitHub Actions give actions/checkout `fetch-depth: 0`"
)


def test_a_shallow_clone_short_of_the_merge_base_says_how_to_fetch_more(diff: Diff, repo: Path, tmp_path: Path) -> None:
    """A pull request's branch two commits past the merge base, main one past it, cloned one commit deep (what
    actions/checkout fetches by default): git merge-base finds nothing in the cut-off history and exits 1 with no
    output. `git fetch --deepen` (git's fetch-options) then reaches it."""
    git(repo, "checkout", "-q", "-b", "feature")
    for message in ("one", "two"):
        commit(repo, message)
    git(repo, "checkout", "-q", "main")
    commit(repo, "main moves on")
    base_sha = git(repo, "rev-parse", "main~1").strip()
    clone = tmp_path / "shallow"
    # file:// so that --depth applies (a local path clone copies the objects and ignores it)
    url = repo.resolve().as_uri()
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", "--branch", "feature", url, str(clone))

    merge_base = diff("--root", str(clone))
    missing_sha = diff("--root", str(clone), "--base", base_sha)
    stack = diff("--root", str(clone), "--stack", "dev")

    assert merge_base.returncode == 2
    assert merge_base.stderr.splitlines()[-1] == (
        f"Error: --base: no merge base of HEAD and origin/HEAD in this clone's history; {SHALLOW_ADVICE}"
    )
    assert missing_sha.returncode == 2
    assert missing_sha.stderr.splitlines()[-1] == (
        f"Error: --base: no commit '{base_sha}' in this repository; {SHALLOW_ADVICE}"
    )
    assert stack.returncode == 2 and SHALLOW_ADVICE in stack.stderr
    git(clone, "fetch", "-q", "--deepen=2")
    assert diff("--root", str(clone), "--fail-on", "noop").returncode == 0


def test_unrelated_histories_are_named_as_such(diff: Diff, repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "elsewhere")
    commit(repo, "a history of its own")
    result = diff("--root", str(repo))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "Error: --base: HEAD and main have no commit in common; pass --base REF"


def test_a_base_without_the_catalogs_folder_adds_everything(diff: Diff, repo_copy: Path, tmp_path: Path) -> None:
    """The catalog moved into a subfolder after the base: nothing was declared there (git ls-tree of a path the
    commit lacks fails with "Not a valid object name")."""
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q", "-b", "main")
    commit(outer, "before the catalog")
    shutil.move(repo_copy, outer / "infra-catalog")
    shutil.copytree(
        REPO_ROOT / "infra", outer / "infra-catalog" / "infra", ignore=shutil.ignore_patterns("__pycache__")
    )

    tables = diff("--root", str(outer / "infra-catalog"), "--format", "json")
    stack = diff("--root", str(outer / "infra-catalog"), "--stack", "dev", "--format", "json")

    assert verdicts(tables) == {table: "added" for table in TABLES}
    assert stack.returncode == 0, stack.stderr
    assert {t["table"]: t["verdict"] for t in json.loads(stack.stdout)["tables"]} == {
        table: "added" for table in TABLES
    }


def test_a_base_without_stacks_adds_everything_for_the_stack(diff: Diff, repo: Path) -> None:
    """A base with Pulumi.dev.yaml but no declarations yet registered no dataset or table, as in the catalog's
    own diff, which reads a base without stacks/ as an empty catalog."""
    shutil.move(repo / "stacks", repo.parent / "stacks")
    commit(repo, "no declarations yet")
    shutil.move(repo.parent / "stacks", repo / "stacks")

    result = diff("--root", str(repo), "--base", "HEAD", "--stack", "dev", "--format", "json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {t["table"]: t["verdict"] for t in document["tables"]} == {table: "added" for table in TABLES}
    assert [d["verdict"] for d in document["datasets"]] == ["added"]


def test_a_base_without_schemas_names_each_missing_file_relative_to_the_repository(diff: Diff, repo: Path) -> None:
    shutil.move(repo / "schemas", repo.parent / "schemas")
    commit(repo, "schemas lost")
    shutil.move(repo.parent / "schemas", repo / "schemas")

    result = diff("--root", str(repo), "--base", "HEAD")

    assert result.returncode == 2
    assert "schema file schemas/tenants/tenant_profiles.json not found" in result.stderr
    assert "tenant-bigquery-base-" not in result.stderr  # never the temporary folder the base was read from


def worktrees(repo: Path) -> list[Path]:
    listing = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [Path(line.removeprefix("worktree ")) for line in listing if line.startswith("worktree ")]


def test_a_run_killed_by_sigkill_is_cleaned_up_by_the_next_and_a_live_one_is_left_alone(
    diff: Diff, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed with SIGKILL (a cancelled CI job) leaves its git worktree registered and its folder behind.
    The next run removes the folder once its lock is free and `git worktree prune` then forgets the worktree
    (git's builtin/worktree.c: prune drops a worktree whose folder is gone, never one `worktree add` has locked
    while it creates it). A run alive meanwhile keeps both."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    base = git(repo, "rev-parse", "HEAD").strip()
    mockrun = repo / "infra" / "pulumi_edge" / "mockrun.py"
    program = mockrun.read_text()
    mockrun.write_text(program + "\nimport time\n\ntime.sleep(600)\n")  # a base program caught midway
    commit(repo, "a base program that hangs")
    hanging = git(repo, "rev-parse", "HEAD").strip()
    mockrun.write_text(program)
    environment = {"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ["PATH"], "HOME": os.devnull, "TMPDIR": str(temp)}
    killed = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "diff", "--root", str(repo), "--base", hanging, "--stack", "dev"],
        cwd=REPO_ROOT,
        env=environment,
        start_new_session=True,  # its own process group: killed with its children, as a runner cancels a job
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    try:
        deadline = time.monotonic() + 120
        # Until the base is checked out.
        while not list(temp.glob("tenant-bigquery-base-*/tree/infra/pulumi_edge/mockrun.py")):
            assert killed.poll() is None and time.monotonic() < deadline, "the run never reached the base program"
            time.sleep(0.02)
        [live] = temp.iterdir()

        concurrent = diff("--root", str(repo), "--base", base, "--stack", "dev", "--fail-on", "noop")

        assert concurrent.returncode == 0, concurrent.stdout + concurrent.stderr
        assert killed.poll() is None  # still running: its folder and worktree were live
        assert worktrees(repo) == [repo.resolve(), (live / "tree").resolve()]
        assert list(temp.iterdir()) == [live]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    assert len(worktrees(repo)) == 2  # what the killed run left

    after = diff("--root", str(repo), "--base", base, "--fail-on", "noop")

    assert after.returncode == 0, after.stdout + after.stderr
    assert worktrees(repo) == [repo.resolve()]
    assert list(temp.iterdir()) == []


def test_an_invalid_working_tree_is_reported_like_validate_and_exits_2(diff: Diff, repo: Path) -> None:
    edit_schema(repo, "tenant_api_keys", lambda columns: columns[0].update(type="BLOB"))

    result = diff("--root", str(repo), cwd=repo)

    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("schemas/tenants/tenant_api_keys.json:tenant_id.type: type 'BLOB'")
    assert result.stderr.splitlines()[-1] == "1 problem(s); nothing was changed."


def test_a_base_that_no_longer_validates_is_still_classified_with_a_warning(diff: Diff, repo: Path) -> None:
    # A stray schema file is a problem for today's rules; the base's tables still load.
    write(repo / "schemas" / "tenants" / "stray.json", [{"name": "id", "type": "STRING"}])
    commit(repo, "stray file")
    (repo / "schemas" / "tenants" / "stray.json").unlink()
    edit_schema(repo, "tenant_api_keys", drop_scopes)

    result = diff("--root", str(repo), "--format", "json")

    assert verdicts(result) == {"tenants.tenant_api_keys": "update-destructive"}
    assert result.stderr.startswith("warning: schemas/tenants/stray.json: schema file not used by any table")
    assert "(at merge base with main" in result.stderr


def test_a_base_whose_declarations_cannot_be_read_is_a_clear_error(diff: Diff, repo: Path) -> None:
    declaration = repo / "stacks" / "tenants.yaml"
    good = declaration.read_text()
    declaration.write_text(good + "  broken: [\n")
    commit(repo, "broken yaml")
    declaration.write_text(good)

    result = diff("--root", str(repo))

    assert result.returncode == 2
    last = result.stderr.splitlines()[-2]
    assert last.startswith("--base:merge base with main (")
    assert last.endswith("cannot read stacks/tenants.yaml there; fix the ref's catalog or pick another --base")
    assert "stacks/tenants.yaml:line" in result.stderr


def test_a_base_before_the_catalog_existed_adds_every_table(diff: Diff, repo_copy: Path) -> None:
    git(repo_copy, "init", "-q", "-b", "main")
    git(repo_copy, "commit", "-q", "--allow-empty", "-m", "empty")
    result = verdicts(diff("--root", str(repo_copy), "--format", "json"))
    assert result == {table: "added" for table in TABLES}


def test_markdown_folds_each_table_and_adds_the_runbook_for_data_loss(diff: Diff, repo: Path) -> None:
    edit_schema(repo, "scheduled_pipeline_runs", add_note)
    only_updates = diff("--root", str(repo), "--format", "markdown", "--stack", "prod")
    edit_schema(repo, "tenant_profiles", retype_suspended_at)
    with_replace = diff("--root", str(repo), "--format", "markdown", "--stack", "prod")

    assert only_updates.returncode == 0
    assert "<details><summary><code>tenants.scheduled_pipeline_runs</code>: <b>update</b>" in only_updates.stdout
    assert "- `note` **update**: provider: new NULLABLE column" in only_updates.stdout
    assert "Runbook" not in only_updates.stdout
    assert "<summary><code>tenants.tenant_profiles</code>: <b>replace</b>, 1 change(s)</summary>" in with_replace.stdout
    assert "Runbook for tenants.tenant_profiles" in with_replace.stdout
    assert "python -m infra.cli snapshot --stack prod --tables tenants.tenant_profiles" in with_replace.stdout
    assert "tenants.scheduled_pipeline_runs" not in with_replace.stdout.split("Runbook")[1]


def test_text_report_names_tables_changes_and_the_runbook(diff: Diff, repo: Path) -> None:
    edit_schema(repo, "tenant_api_keys", drop_scopes)

    result = diff("--root", str(repo), "--stack", "prod")

    assert result.returncode == 0
    out = result.stdout
    assert "tenants.tenant_api_keys: update-destructive" in out
    assert "scopes" in out and "ALTER TABLE DROP COLUMN" in out
    assert "1 table(s) changed, worst: update-destructive; 8 unchanged." in out
    assert "approveDataLoss in Pulumi.prod.yaml" in out
    assert "`diff --stack prod --fail-on update-destructive`" in out


def test_a_base_whose_program_fails_is_a_one_line_error(diff: Diff, repo: Path) -> None:
    good = (repo / "Pulumi.prod.yaml").read_text()
    edit_config(repo, "prod", protect="maybe")
    commit(repo, "bad prod config")
    (repo / "Pulumi.prod.yaml").write_text(good)

    result = diff("--root", str(repo), "--format", "json", "--stack", "prod")

    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: --base: the program at merge base with main (")
    assert "fails for stack prod: Pulumi.prod.yaml:config.tenant-bigquery:protect: must be true or false" in line
    assert "Traceback" not in result.stderr


def test_stack_settings_outside_the_schema_files_are_reported_and_gated(diff: Diff, repo: Path) -> None:
    """Every registered input and option is compared: protect, deletionProtection, the ACL, the stack labels and
    the dataset description, none of them in a schema file."""
    edit_config(
        repo,
        "prod",
        protect=False,
        deletionProtection=False,
        labels={"env": "prod", "managed-by": "pulumi", "team": "data"},
    )
    path = repo / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["tenant-bigquery:access"]["readers"].append("group:everyone@acme.example")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    edit_declaration(repo, lambda d: d.update(description="Tenants, described anew."))
    args = ("--root", str(repo), "--stack", "prod")

    as_json = json.loads(diff(*args, "--format", "json").stdout)
    text = diff(*args, "--fail-on", "update-destructive")
    markdown = diff(*args, "--format", "markdown").stdout

    [dataset] = as_json["datasets"]
    paths = {c["path"]: c for c in dataset["changes"]}
    assert {"(option protect)", "(accesses)", "(labels)", "(description)"} <= set(paths)
    assert paths["(accesses)"]["lowersSafety"] == "ACL widened: READER groupByEmail=everyone@acme.example"
    assert paths["(option protect)"]["lowersSafety"] == "Pulumi protect turned off"
    for table in as_json["tables"]:
        table_paths = {c["path"]: c["lowersSafety"] for c in table["changes"]}
        assert table_paths["(option protect)"] == "Pulumi protect turned off"
        assert table_paths["(deletionProtection)"] == "deletionProtection turned off"
        assert "(labels.team)" in table_paths
    assert text.returncode == 1
    assert "Lowered safeties of protected stack prod" in text.stdout
    [line] = [line for line in text.stdout.splitlines() if line.startswith("  dataset tenants: ")]
    assert "Pulumi protect turned off" in line and "ACL widened: READER groupByEmail=everyone@acme.example" in line
    assert "[lowers a safety: deletionProtection turned off]" in markdown

    edit_config(repo, "prod", approveDataLoss=["tenants", *TABLES])
    assert diff(*args, "--fail-on", "update-destructive").returncode == 0


def test_an_unchanged_tree_has_no_changes_for_the_stack(diff: Diff, repo: Path) -> None:
    result = diff("--root", str(repo), "--stack", "prod", "--fail-on", "noop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "No changes."
    assert json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout) == {
        "tables": [],
        "datasets": [],
        "components": [],
        "providers": [],
    }
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # the base's worktree is removed again


def test_the_working_tree_is_read_once(diff: Diff, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_schema(repo, "scheduled_pipeline_runs", add_note)  # a table change: the migration marks read the catalogs
    reads = count_yaml_reads(monkeypatch)

    result = diff("--root", str(repo), "--stack", "prod")

    assert result.returncode == 0, result.stderr
    ours = {path: count for path, count in reads.items() if Path(path).is_relative_to(repo.resolve())}
    assert ours and set(ours.values()) == {1}, reads


def test_a_base_without_the_stack_adds_everything(diff: Diff, repo_copy: Path) -> None:
    git(repo_copy, "init", "-q", "-b", "main")
    git(repo_copy, "commit", "-q", "--allow-empty", "-m", "empty")
    result = json.loads(diff("--root", str(repo_copy), "--stack", "prod", "--format", "json").stdout)
    assert {t["table"]: t["verdict"] for t in result["tables"]} == {table: "added" for table in TABLES}
    assert [d["verdict"] for d in result["datasets"]] == ["added"]


# ---------------------------------------------------------------- provider config, the ACL set, expirationTime


def edit_stack_file(repo: Path, stack: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_provider_default_labels_are_refused_not_read_as_no_changes(diff: Diff, repo: Path) -> None:
    """The default provider takes the stack's gcp: keys as its inputs (pulumi/pulumi
    pkg/resource/deploy/default_providers.go newRegisterDefaultProviderEvent: GetPackageConfig) and merges
    default labels into every resource's labels (terraform-provider-google tpgresource/labels.go
    setLabelsFields): the engine would update every dataset and table, so the stack file is refused."""
    edit_stack_file(repo, "prod", lambda config: config.update({"gcp:defaultLabels": {"team": "data"}}))

    result = diff("--root", str(repo), "--stack", "prod", cwd=repo)

    assert result.returncode == 2
    assert "No changes." not in result.stdout
    first, summary = result.stderr.splitlines()[0], result.stderr.splitlines()[-1]
    assert first.startswith("Pulumi.prod.yaml:config.gcp:defaultLabels: a provider setting this program does not model")
    assert first.endswith("put the labels in tenant-bigquery:labels")
    assert summary == "1 problem(s); nothing was changed."


def test_a_changed_pulumi_yaml_default_is_a_change_of_every_stack(diff: Diff, repo: Path) -> None:
    """Pulumi.yaml's defaults reach every stack that does not set the key (pulumi/pulumi pkg/workspace/config.go
    mergeConfig), so both runs read it: prod does not set datasetSuffix, and a new default renames its dataset
    (a replacement BigQuery refuses while the dataset holds tables and deleteContentsOnDestroy is off)."""
    project = repo / "Pulumi.yaml"
    project.write_text(project.read_text().replace('default: ""', 'default: "_v2"', 1))

    result = json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout)

    [dataset] = result["datasets"]
    assert dataset["verdict"] == "rejected"
    assert any(change["path"] == "(datasetId)" for change in dataset["changes"]), dataset


def test_reordered_acl_entries_are_no_change(diff: Diff, repo: Path) -> None:
    """resource_bigquery_dataset.go: access is a TypeSet hashed by resourceBigqueryDatasetAccessHash, and the
    SDK compares sets by their hash codes (terraform-plugin-sdk helper/schema/schema.go diffSet): order is nothing."""
    edit_stack_file(repo, "prod", lambda config: config["tenant-bigquery:access"]["writers"].reverse())

    result = json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout)

    [dataset] = result["datasets"]
    [change] = dataset["changes"]
    assert (change["path"], change["verdict"], change["lowersSafety"]) == ("(accesses)", "noop", None)
    assert "holds them as a set, so nothing is sent" in change["reason"]


def test_a_removed_acl_sends_nothing_and_keeps_the_live_acl(diff: Diff, repo: Path) -> None:
    """access is Optional+Computed (resource_bigquery_dataset.go): with the configuration leaving it out the SDK
    plans no change and keeps the prior value (terraform-plugin-sdk helper/schema/schema.go diffSet), so the ACL
    stays as last applied. In protected prod that lowers no safety: nobody gains access."""
    edit_config(repo, "prod", access=None)

    as_json = json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout)
    gate = diff("--root", str(repo), "--stack", "prod", "--fail-on", "update-destructive")

    [dataset] = as_json["datasets"]
    [change] = dataset["changes"]
    assert (change["path"], change["verdict"], change["lowersSafety"]) == ("(accesses)", "noop", None)
    assert "the live ACL stays as last applied (OWNER specialGroup=projectOwners, " in change["reason"]
    assert "READER groupByEmail=data-platform-engineers@acme.example" in change["reason"]
    assert gate.returncode == 0, gate.stdout


def test_a_removed_table_expiration_is_rejected_the_table_still_expires(diff: Diff, repo: Path) -> None:
    """expiration_time is Optional+Computed (resource_bigquery_table.go ResourceBigQueryTable) and sent only when
    set (resourceTable: d.GetOk("expiration_time")): a base whose program set it, a tree that no longer does, sends
    nothing (terraform-plugin-sdk helper/schema/schema.go diffString: removed && schema.Computed), and BigQuery
    still deletes the table at that time."""
    declared = repo / "infra" / "model" / "declared.py"
    original = declared.read_text()
    anchor = '        "table_id": table.table_id,\n'
    assert anchor in original
    declared.write_text(original.replace(anchor, anchor + '        "expiration_time": 1_900_000_000_000,\n'))
    commit(repo, "tables expire")
    declared.write_text(original)

    as_json = json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout)

    assert {t["verdict"] for t in as_json["tables"]} == {"rejected"}
    [change] = as_json["tables"][0]["changes"]
    assert (change["path"], change["verdict"]) == ("(expirationTime)", "rejected")
    assert "the provider sends nothing, so BigQuery keeps the expiration and deletes the table" in change["reason"]
    assert "at 2030-03-17 17:46:40 UTC" in change["reason"]


def test_a_removed_default_table_expiration_says_existing_tables_keep_theirs(diff: Diff, repo: Path) -> None:
    """terraform-provider-google resource_bigquery_dataset.go: default_table_expiration_ms "will only affect new
    tables, not existing ones", and resourceBigQueryDatasetUpdate PUTs the dataset without it, so new tables get
    none; resource_bigquery_table.go expiration_time is Optional+Computed and the program leaves it out, so the
    expirationTime each table got at creation stays. The engine serialises numbers as doubles (a protobuf
    Struct): the report shows the integer the program registered."""
    edit_config(repo, "dev", defaultTableExpirationDays=30)
    commit(repo, "dev tables expire after 30 days")
    edit_config(repo, "dev", defaultTableExpirationDays=None)

    result = diff("--root", str(repo), "--stack", "dev", "--format", "json")

    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    [dataset] = document["datasets"]
    [change] = dataset["changes"]
    assert (change["path"], change["verdict"]) == ("(defaultTableExpirationMs)", "update")
    assert change["reason"].startswith(
        "provider: defaultTableExpirationMs 2592000000 -> none: in place; tables created from now on get no "
        "expiration, existing tables keep the one they have"
    )
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == set(TABLES)
    for table in tables.values():
        [kept] = table["changes"]
        assert (kept["path"], kept["verdict"], kept["property"]) == (
            "(defaultTableExpirationMs)",
            "rejected",
            "expirationTime",
        )
        assert "defaultTableExpirationMs 2592000000 (30 days) is no longer set" in kept["reason"]
        assert "keeps the expirationTime BigQuery gave it" in kept["reason"]
    text = diff("--root", str(repo), "--stack", "dev").stdout
    assert "2592000000.0" not in text
    assert f"1 dataset(s) and {len(TABLES)} table(s) changed, worst: rejected." in text.splitlines()


def test_a_dataset_replaced_while_importing_still_says_what_happens_to_its_tables(diff: Diff, repo: Path) -> None:
    """With the import option the engine refuses the replacement (pulumi/pulumi step_generator.go
    continueStepsFromDiff: "previously-imported resources that still specify an ID may not be replaced"), which
    outranks the replace; the next run without it replaces the dataset, and with deleteContentsOnDestroy true in
    dev's state BigQuery deletes every table with it (BigQuery REST reference, datasets.delete)."""
    edit_config(repo, "dev", location="EU", adoptExisting=True)

    result = diff("--root", str(repo), "--stack", "dev", "--format", "json")

    document = json.loads(result.stdout)
    [dataset] = document["datasets"]
    assert dataset["verdict"] == "rejected"
    assert {c["verdict"] for c in dataset["changes"]} >= {"rejected", "replace"}
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == set(TABLES)
    for table in tables.values():
        assert table["verdict"] == "removed"
        [removal] = [c for c in table["changes"] if c["path"] == "(dataset replaced)"]
        assert removal["reason"].startswith(
            "Pulumi: once a run without the import option replaces the dataset (this one fails first): the "
            "replacement of dataset tenants deletes this table and every row with it"
        )


# The last commit whose infra/ was flat (infra/mockrun.py with plan_stack); the base's own program runs.
FLAT_LAYOUT = "bc0c5061da28"


def test_a_base_from_before_the_layers_runs_its_own_program(diff: Diff, repo: Path) -> None:
    """The first pull request after infra/ became subpackages has a base with the flat layout: the base run
    (infra/files/basediff.py _BASE_RUN) imports that layout's mock runner, so the gate still compares."""
    found = subprocess.run(["git", "cat-file", "-e", f"{FLAT_LAYOUT}^{{commit}}"], cwd=REPO_ROOT, check=False)
    if found.returncode != 0:
        pytest.skip(f"this clone lacks commit {FLAT_LAYOUT} (shallow); the test needs the repository's history")
    shutil.rmtree(repo / "infra")
    archive = subprocess.run(["git", "archive", FLAT_LAYOUT, "infra"], cwd=REPO_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    assert (repo / "infra" / "mockrun.py").is_file()
    commit(repo, "a base with the flat layout")
    shutil.rmtree(repo / "infra")
    shutil.copytree(REPO_ROOT / "infra", repo / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    edit_schema(repo, "tenant_api_keys", drop_scopes)

    result = diff("--root", str(repo), "--stack", "prod", "--format", "json")

    assert result.returncode == 0, result.stderr
    assert verdicts(result)["tenants.tenant_api_keys"] == "update-destructive"


def test_a_dataset_update_without_a_declared_acl_is_named_in_every_format(diff: Diff, repo: Path) -> None:
    """A stack that declares no ACL: the dataset's update is a PUT of the whole dataset
    (resource_bigquery_dataset.go resourceBigQueryDatasetUpdate), whose ACL pulumi/pulumi-gcp#3908 is about; every
    report names it, and in protected prod the gate fails until the dataset is approved."""
    edit_config(repo, "prod", access=None)
    commit(repo, "prod leaves the ACL to BigQuery")
    declaration = repo / "stacks" / "tenants.yaml"
    text = declaration.read_text()
    declaration.write_text(text.replace("tables:\n", "max_time_travel_hours: 120\ntables:\n", 1))

    outputs = {
        fmt: diff("--root", str(repo), "--stack", "prod", "--format", fmt).stdout for fmt in ("text", "markdown")
    }
    as_json = json.loads(diff("--root", str(repo), "--stack", "prod", "--format", "json").stdout)
    gate = diff("--root", str(repo), "--stack", "prod", "--fail-on", "update-destructive")

    [dataset] = as_json["datasets"]
    note = next(c for c in dataset["changes"] if c["path"] == "(accesses)")
    assert (note["verdict"], note["lowersSafety"]) == ("noop", "dataset updated with an ACL the stack does not declare")
    window = next(c for c in dataset["changes"] if c["path"] == "(maxTimeTravelHours)")
    assert "recovered only 120 h back instead of 168 h" in window["reason"]
    for fmt, out in outputs.items():
        assert "accesses not set: this update PUTs the whole dataset" in " ".join(out.split()), fmt
    assert gate.returncode == 1, gate.stdout
