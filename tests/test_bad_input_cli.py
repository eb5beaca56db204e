"""Bad and unusual input through the CLI, as a user meets it: one line per problem naming the file, the
field and the offending value, exit 1, never a traceback; valid input accepted; nothing on stderr when
nothing is wrong."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from google.cloud import bigquery
from helpers import FIXTURE_ROOT, REPO_ROOT, invoke, run_cli
from live_server import STACK, LiveStack

from infra.model.catalog import load_catalog
from infra.pulumi_edge.mockrun import run_stack

SCHEMA = "schemas/tenants/tenant_profiles.json"


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return invoke("validate", "--root", str(root), cwd=root)


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line, "1 problem(s); nothing was changed."]


def test_an_empty_schema_does_not_remove_the_table(repo_copy: Path) -> None:
    (repo_copy / SCHEMA).write_text("[]")
    for command in (["validate"], ["plan", "--stack", "dev"]):
        result = invoke(*command, "--root", str(repo_copy), cwd=repo_copy)
        assert result.returncode == 1
        assert result.stderr.startswith(f"{SCHEMA}:(top): no columns; a table needs at least one column")


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ('tenant-bigquery:datasetSuffix: "_dev x"', "datasetSuffix: '_dev x' makes the dataset id 'tenants_dev x'"),
        ("tenant-bigquery:datasetSuffix: -dev", "datasetSuffix: '-dev' makes the dataset id 'tenants-dev' invalid"),
        ("tenant-bigquery:location: Mars", "location: 'Mars' is not a BigQuery location"),
        ("tenant-bigquery:defaultTableExpirationDays: -5", "defaultTableExpirationDays: -5 is too short"),
        ("tenant-bigquery:defaultTableExpirationDays: 0", "defaultTableExpirationDays: 0 is too short"),
        ("tenant-bigqeury:protect: false", "unknown namespace 'tenant-bigqeury'"),
        ("tenant-bigquery:recreateOnSchemaChange: no", "recreateOnSchemaChange: must be true or false; got 'no'"),
        ("gcp:project: Acme-Dev", "gcp:project: 'Acme-Dev' is not a GCP project id: 6 to 30 lowercase letters"),
        ("gcp:project: acme-dev-", "gcp:project: 'acme-dev-' is not a GCP project id"),
        ('gcp:project: "p`; DROP TABLE t; --"', "use the project's id, not its name or number"),
    ],
)
def test_stack_config_is_checked_like_the_schemas(repo_copy: Path, setting: str, line: str) -> None:
    stack_file = repo_copy / "Pulumi.dev.yaml"
    key = setting.rsplit(":", 1)[0]
    kept = [line for line in stack_file.read_text().splitlines() if not line.startswith(f"  {key}:")]
    stack_file.write_text("\n".join([*kept, f"  {setting}", ""]))
    result = validate(repo_copy)
    assert result.returncode == 1
    [problem, summary] = result.stderr.splitlines()
    assert problem.startswith(f"Pulumi.dev.yaml:config.{key}"), problem
    assert line in problem
    assert summary == "1 problem(s); nothing was changed."


@pytest.mark.parametrize(
    ("partitioning", "line"),
    [
        (
            "{field: tenant_id, type: DAY, expiration_days: 730}",
            "stacks/tenants.yaml:tables.tenant_usage_quotas.partitioning.field: column 'tenant_id' is STRING, which "
            "cannot be a time-partitioning column; use a top-level DATE, TIMESTAMP or DATETIME column (or range "
            "partitioning on INT64)",
        ),
        (
            "{range: {field: api_requests, start: 100, end: 10, interval: 5}}",
            "stacks/tenants.yaml:tables.tenant_usage_quotas.partitioning.range: start (100) must be less than end "
            "(10) of the ranges on 'api_requests'; swap or widen them",
        ),
        (
            "{range: {field: api_requests, start: 0, end: 9223372036854775808, interval: 4611686018427387904}}",
            "stacks/tenants.yaml:tables.tenant_usage_quotas.partitioning.range.end: 9223372036854775808 is outside "
            "BigQuery's INT64 range (-9,223,372,036,854,775,808 to 9,223,372,036,854,775,807), which range "
            "partitioning bounds are stored in; use a value within it",
        ),
        (
            "{range: {field: api_requests, start: 0, end: 9007199254740993, interval: 9007199254740992}}",
            "stacks/tenants.yaml:tables.tenant_usage_quotas.partitioning.range.end: 9007199254740993 would reach "
            "BigQuery as 9007199254740992: Pulumi sends every number as a 64-bit float, exact for every integer up "
            "to 9,007,199,254,740,992 either way; use one it holds exactly",
        ),
    ],
)
def test_partitioning_errors_name_the_column_and_values(repo_copy: Path, partitioning: str, line: str) -> None:
    """Range bounds are INT64 in BigQuery (REST reference, tables: RangePartitioning.range start/end/interval;
    terraform-provider-google resource_bigquery_table.go expandRangePartitioning sends
    strconv.FormatInt(int64(...))), and Pulumi carries numbers as doubles (pulumi/pulumi
    sdk/python/lib/pulumi/runtime/rpc.py serialize_property; pulumi-terraform-bridge pkg/tfbridge/schema.go
    makeTerraformInput: int(v.NumberValue()))."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    text = declaration.read_text()
    old = "partitioning: {field: usage_date, type: DAY, expiration_days: 730}"
    assert old in text
    declaration.write_text(text.replace(old, f"partitioning: {partitioning}"))
    assert_one_line_refusal(validate(repo_copy), line)


@pytest.mark.parametrize(
    ("setting", "fix"),
    [
        ("gcp:defaultLabels: {team: data}", "put the labels in tenant-bigquery:labels"),
        ("gcp:addPulumiAttributionLabel: true", "labels of every dataset and table"),
        ("gcp:region: us-central1", "the datasets' location is tenant-bigquery:location; remove it"),
        ("gcp:impersonateServiceAccount: deploy@p.iam.gserviceaccount.com", "use Application Default Credentials"),
        ("gcp:userProjectOverride: true", "it changes the default provider"),
        ("gcp:billingProject: other", "it changes the default provider"),
        ("gcp:requestTimeout: 60s", "it changes the default provider"),
    ],
)
def test_provider_settings_the_program_does_not_model_are_refused(repo_copy: Path, setting: str, fix: str) -> None:
    """Every gcp: key is an input of the default provider (pulumi/pulumi pkg/resource/deploy/default_providers.go
    newRegisterDefaultProviderEvent: GetPackageConfig); only gcp:project is modelled. Default labels and the
    attribution label (pulumi-gcp provider/resources.go Config: addPulumiAttributionLabel) end up in every
    resource's labels (terraform-provider-google tpgresource/labels.go setLabelsFields)."""
    stack_file = repo_copy / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + f"  {setting}\n")
    result = validate(repo_copy)
    assert result.returncode == 1
    [problem, summary] = result.stderr.splitlines()
    key = setting.split(": ", 1)[0]
    assert problem.startswith(f"Pulumi.prod.yaml:config.{key}: a provider setting this program does not model: ")
    assert fix in problem
    assert summary == "1 problem(s); nothing was changed."


def test_a_partition_expiration_beyond_int64_milliseconds(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("expiration_days: 730", "expiration_days: 200000000000000"))
    result = validate(repo_copy)
    assert result.returncode == 1
    assert "tenant_usage_quotas.partitioning.expiration_days: 200,000,000,000,000 days exceed" in result.stderr


def test_flexible_column_names_are_accepted_with_a_warning(repo_copy: Path) -> None:
    columns = json.loads((repo_copy / SCHEMA).read_text())
    columns += [{"name": name, "type": "STRING"} for name in ("größe", "first name", "cost-center")]
    (repo_copy / SCHEMA).write_text(json.dumps(columns))
    result = validate(repo_copy)
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert [w.split(": column name ")[0] for w in warnings] == [
        f"warning: {SCHEMA}:größe",
        f"warning: {SCHEMA}:first name",
        f"warning: {SCHEMA}:cost-center",
    ]
    assert all("Storage Read and Write APIs need special handling" in w for w in warnings)


def test_plan_writes_nothing_on_stderr_in_consecutive_runs() -> None:
    """The mock run's event loops were left open and printed "Exception ignored ... Invalid file
    descriptor" at exit in about one run in five; `make bench`-style figures are in the README."""
    for _ in range(5):
        result = run_cli("plan", "--stack", "dev")
        assert result.returncode == 0
        assert result.stderr == ""


def test_a_mock_run_closes_every_event_loop_it_opens() -> None:
    """The cause of the stderr noise above, checked directly: no open loop survives a run."""
    run_stack(FIXTURE_ROOT, "prod")
    gc.collect()
    open_loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]
    assert open_loops == []


@pytest.mark.parametrize("depth", [16, 500])
def test_deep_nesting_is_one_line(repo_copy: Path, depth: int) -> None:
    leaf = '{"name": "leaf", "type": "STRING"}'
    for level in range(depth):
        leaf = f'{{"name": "l{level}", "type": "RECORD", "fields": [{leaf}]}}'
    columns = (repo_copy / SCHEMA).read_text().rstrip().removesuffix("]")
    (repo_copy / SCHEMA).write_text(f"{columns}, {leaf}]")
    result = validate(repo_copy)
    assert result.returncode == 1
    [problem, _] = result.stderr.splitlines()
    assert problem.startswith(SCHEMA) and "BigQuery allows at most 15" in problem


def test_a_declaration_linked_from_outside_the_repository_is_refused(repo_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    shutil.move(repo_copy / "stacks" / "tenants.yaml", outside)
    (repo_copy / "stacks" / "tenants.yaml").symlink_to(outside)
    result = validate(repo_copy)
    assert result.returncode == 1
    assert result.stderr.startswith("stacks/tenants.yaml: a link to a file outside stacks/")


def test_a_partition_type_bigquery_lacks_is_named(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("type: DAY", "type: WEEK", 1))
    result = validate(repo_copy)
    assert result.returncode == 1
    assert "partitioning.type: time partitioning needs type: one of HOUR, DAY, MONTH, YEAR" in result.stderr
    assert "got 'WEEK'" in result.stderr


def test_clustering_spelled_in_another_case_is_sent_as_the_schema_spells_it(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(
        declaration.read_text().replace("clustering: [tenant_id, status]", "clustering: [TENANT_ID, Status]")
    )
    result = invoke("plan", "--stack", "dev", "--format", "json", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 0, result.stderr
    profiles = next(r for r in json.loads(result.stdout)["resources"] if r["name"] == "tenants-tenant_profiles")
    assert profiles["inputs"]["clusterings"] == ["tenant_id", "status"]


def test_plan_json_is_byte_stable_with_sorted_keys() -> None:
    first = invoke("plan", "--stack", "prod", "--format", "json")
    second = invoke("plan", "--stack", "prod", "--format", "json")
    assert first.returncode == 0 and first.stdout == second.stdout
    document = json.loads(first.stdout)
    assert list(document) == sorted(document)
    assert all(list(r["inputs"]) == sorted(r["inputs"]) for r in document["resources"])


def _free(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`...: the first a repository does not use yet."""
    return next(n for n in (name, *(f"{name}_{i}" for i in range(2, 1000))) if n not in taken)


def _copy_of_the_repository(copy: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in files.stdout.splitlines():
        if (REPO_ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO_ROOT / name, copy / name)
    # Some tests read the repository through git, as CI's clean clone has it.
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        subprocess.run(git, cwd=copy, capture_output=True, check=True)


# The tests that read the repository's own catalog or the program's registrations of it (conftest `planned`).
_READS_THE_REPOSITORY = re.compile(r"\bREPO_CATALOG\b|\bplanned: Callable|\bplanned\(")


def _suite_in_the_copy(copy: Path) -> list[str]:
    """Every offline test when README_WORKFLOWS_SUITE=full, else the files that read the repository."""
    if os.environ.get("README_WORKFLOWS_SUITE") == "full":
        return []
    files = sorted(p for p in (copy / "tests").glob("test_*.py") if _READS_THE_REPOSITORY.search(p.read_text()))
    assert files, "no test reads the repository's catalog: the pattern no longer matches the tests"
    return [str(p.relative_to(copy)) for p in files]


def test_the_readme_workflows_keep_the_suite_green(tmp_path: Path) -> None:
    """Add a table (schema exported by `bq show --schema`: legacy type names, no modes, no descriptions) under
    a name the repository does not use yet, change another's schema, remove a third and force a recreation,
    as the README says; then the offline tests that read the repository's catalog or registrations still pass
    in that copy (every offline test with README_WORKFLOWS_SUITE=full: scripts/readme_workflows_suite.py, which
    keeps `make test` within its time). Whatever the repository declares: the tables are picked from its
    catalog."""
    copy = tmp_path / "repo"
    _copy_of_the_repository(copy)
    dataset = next(d for d in load_catalog(copy).datasets if d.tables)  # a dataset may hold views only
    table_ids = [t.table_id for t in dataset.tables]
    stack_files = {p.name: p.read_text() for p in copy.glob("Pulumi.*.yaml")}
    # An approval must name a declared table: remove one nobody approves (or the README's runbook applies).
    removed = next((t for t in reversed(table_ids) if not any(t in text for text in stack_files.values())), None)
    changed = next(t for t in table_ids if t != removed)
    added = _free("audit_log", {t.table_id for d in load_catalog(copy).datasets for t in d.tables})

    schemas = copy / "schemas" / dataset.dataset_id
    (schemas / f"{added}.json").write_text(
        json.dumps(
            [
                {"name": "tenant_id", "type": "STRING"},
                {"name": "at", "type": "TIMESTAMP"},
                {"name": "count", "type": "INTEGER"},
                {"name": "ok", "type": "BOOLEAN"},
                {"name": "ratio", "type": "FLOAT"},
            ]
        )
    )
    declaration_file = copy / "stacks" / f"{dataset.dataset_id}.yaml"
    declaration = yaml.safe_load(declaration_file.read_text())
    declaration["tables"][added] = {
        "description": "Audit events.",
        "partitioning": {"field": "at", "type": "DAY", "expiration_days": 30},
    }
    if removed is not None:
        del declaration["tables"][removed]
        (schemas / f"{removed}.json").unlink()
    declaration_file.write_text(yaml.safe_dump(declaration, sort_keys=False))
    changed_schema = schemas / f"{changed}.json"
    columns = json.loads(changed_schema.read_text())
    nickname = _free("nickname", {c["name"].lower() for c in columns})
    changed_schema.write_text(json.dumps([*columns, {"name": nickname, "type": "STRING"}]))
    dev_file = copy / "Pulumi.dev.yaml"
    dev = yaml.safe_load(dev_file.read_text())
    recreate = dev["config"].setdefault("tenant-bigquery:recreate", {})
    recreate[f"{dataset.dataset_id}.{changed}"] = "2026-11-25"
    dev_file.write_text(yaml.safe_dump(dev, sort_keys=False))

    validated = run_cli("validate", "--root", str(copy), cwd=copy)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert run_cli("docs", "--root", str(copy), cwd=copy).returncode == 0
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not live",
            "-n",
            "2",
            "--deselect",
            "tests/test_bad_input_cli.py::test_the_readme_workflows_keep_the_suite_green",
            *_suite_in_the_copy(copy),
        ],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout[-3000:]


@pytest.mark.live
def test_verify_names_a_view_standing_where_a_table_is_declared(live_stack: LiveStack) -> None:
    from live_server import create_from_plan

    create_from_plan(live_stack.client, live_stack.plan())
    live_stack.client.delete_table(live_stack.table("tenant_profiles"))
    view = live_stack.client.create_table(_view(live_stack))
    assert view.table_type == "VIEW"
    result = live_stack.cli("verify", "--stack", STACK)
    assert result.returncode == 1
    ds = live_stack.dataset_id()
    assert f"✗ table {ds}.tenant_profiles exists: a VIEW stands where a table is declared; drop it or rename one" in (
        result.stdout.splitlines()
    )


def _view(stack: LiveStack) -> bigquery.Table:
    view = bigquery.Table(stack.table("tenant_profiles"))
    view.view_query = f"SELECT tenant_id FROM `{stack.table('tenant_api_keys')}`"
    return view


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["diff", "--base", "HEAD"],
        ["preview-gate", "preview.json"],
        ["verify"],
        ["snapshot", "--all"],
        ["migrate"],
        ["import-file"],
    ],
    ids=lambda command: command[0],
)
def test_a_stack_name_that_is_a_path_is_refused(repo_copy: Path, command: list[str]) -> None:
    """`Pulumi.<stack>.yaml` with the stack `x/../Pulumi.prod` was prod's file (through a folder `Pulumi.x`).
    Pulumi's own rule (pulumi/pulumi sdk/go/common/tokens/stack_name.go ParseStackName): 1 to 100 of
    A-Z a-z 0-9 _ . -, so no stack name is a path."""
    (repo_copy / "Pulumi.x").mkdir()
    (repo_copy / "preview.json").write_text("{}")
    result = invoke(*command, "--stack", "x/../Pulumi.prod", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--stack': 'x/../Pulumi.prod' is not a stack name: Pulumi allows 1 to 100 "
        "letters, digits, '-', '_' and '.'"
    )


def test_migrate_refuses_a_project_id_before_it_reaches_sql(repo_copy: Path) -> None:
    """migrate writes the project into its SQL (`project.dataset.table`); the project-id syntax is Resource
    Manager's (REST reference, projects: projectId), the domain-scoped form terraform-provider-google's
    verify/validation.go ProjectRegex. Any metadata-server fallback of the old code stays on loopback."""
    stack_file = repo_copy / "Pulumi.dev.yaml"
    bad = 'gcp:project: "x`.a.b; DROP TABLE q; --"'
    stack_file.write_text(stack_file.read_text().replace("gcp:project: acme-data-platform-dev", bad))
    loopback = {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
    result = invoke("migrate", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy, env=loopback)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        "Pulumi.dev.yaml:config.gcp:project: 'x`.a.b; DROP TABLE q; --' is not a GCP project id"
    )


def test_a_domain_scoped_project_id_is_accepted(repo_copy: Path) -> None:
    stack_file = repo_copy / "Pulumi.dev.yaml"
    text = stack_file.read_text().replace("gcp:project: acme-data-platform-dev", "gcp:project: example.com:acme-dev")
    stack_file.write_text(text)
    result = validate(repo_copy)
    assert result.returncode == 0, result.stderr


def test_a_control_character_in_a_declaration_is_one_line_with_its_line_and_column(repo_copy: Path) -> None:
    """YAML allows no C0 control character but tab and newlines (YAML 1.2, 5.1 Character Set); libyaml reports
    where in UTF-8 bytes, which the line counts back to characters (the ß and ö before it are two bytes each)."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    text = declaration.read_text()
    line = text[: text.index("description: Daily usage")].count("\n") + 1
    declaration.write_text(text.replace("description: Daily usage", "description: Größe\0 usage"))
    assert_one_line_refusal(
        validate(repo_copy),
        f"stacks/tenants.yaml:line {line} column 23: invalid YAML: the control character U+0000 is not allowed; "
        "remove it",
    )


def test_a_control_character_in_a_schema_string_is_one_line_with_its_line_and_column(repo_copy: Path) -> None:
    """JSON allows no unescaped U+0000 to U+001F inside a string (RFC 8259, 7. Strings); Python's reader says
    "Invalid control character at", which read as "fix the syntax" with no hint of what is there."""
    schema = repo_copy / "schemas" / "tenants" / "tenant_profiles.json"
    text = schema.read_text()
    at = text.index('"description": "') + len('"description": "') + 2
    line, column = text[:at].count("\n") + 1, at - text.rfind("\n", 0, at)
    schema.write_text(text[:at] + "\0" + text[at:])
    assert_one_line_refusal(
        validate(repo_copy),
        f"schemas/tenants/tenant_profiles.json:line {line} column {column}: invalid JSON: a control character "
        "(U+0000) inside a string; remove it",
    )


def _laughs(levels: int = 9, fanout: int = 9) -> str:
    """A billion values in a kilobyte: each anchor is `fanout` aliases of the one before (9**9 + ... scalars)."""
    lines = ["laughs:", f"  a0: &a0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", ["Pulumi.dev.yaml", "stacks/tenants.yaml", "Pulumi.yaml"])
def test_an_alias_bomb_is_refused_as_pulumi_refuses_it(repo_copy: Path, name: str) -> None:
    """go-yaml v3, which Pulumi reads its YAML files with (pulumi/pulumi sdk/go/common/encoding/marshal.go
    yamlMarshaler.Unmarshal), stops a document whose aliases do most of the decoding: go-yaml/yaml v3
    decode.go decoder.unmarshal, allowedAliasRatio ("document contains excessive aliasing"). Before, the stack
    file passed `validate`, and `plan` never finished (its config is serialised value by value)."""
    path = repo_copy / name
    text = _laughs() + path.read_text()
    path.write_text(text + "  pulumi:laughs: *a8\n" if name == "Pulumi.dev.yaml" else text)
    assert len(_laughs()) < 1024
    # The fourth *a2 in a3 (line 5, column 27) is where aliased values pass 99 % of more than 1,000 decoded:
    # the document, its mapping, `laughs` and its mapping, then per anchor its key and sequence: 4 + (2 + 9) +
    # (2 + 9 * 11) + (2 + 9 * 101) + (2 + 4 * 911) values, 3,720 + 910 of them copies.
    line = (
        f"{name}:line 5 column 27: invalid YAML: the alias *a2 makes the document expand to more than "
        "4,673 values, nearly all of them copies, which Pulumi's YAML reader refuses (excessive aliasing); "
        "write the values out"
    )
    assert_one_line_refusal(validate(repo_copy), line)
    if name == "Pulumi.dev.yaml":
        result = invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy)
        assert result.returncode == 1 and result.stderr.splitlines()[0] == line


def test_an_anchor_that_holds_itself_is_refused(repo_copy: Path) -> None:
    """go-yaml v3 refuses it too (decode.go decoder.alias: "anchor 'x' value contains itself"); PyYAML builds a
    mapping that holds itself, which no value of a stack setting can be."""
    path = repo_copy / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  pulumi:loop: &x {b: *x}\n")
    lines = path.read_text().splitlines()
    column = lines[-1].index("*x") + 1
    assert_one_line_refusal(
        validate(repo_copy),
        f"Pulumi.dev.yaml:line {len(lines)} column {column}: invalid YAML: the alias *x is inside its own anchor",
    )


def _validate_process(
    root: Path, *, user: list[str] | None = None, python: str = sys.executable, path: list[str] | None = None
) -> list[str]:
    """`validate` as a process of its own (bounded in time: a hang fails the test), its stderr lines."""
    search = path or [str(REPO_ROOT), *(p for p in sys.path if p.endswith("site-packages"))]
    env = {"PYTHONPATH": os.pathsep.join(search), "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    result = subprocess.run(
        [*(user or []), python, "-m", "infra.cli", "validate", "--root", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr.splitlines()


@pytest.mark.parametrize("name", ["stacks/extra.yaml", "Pulumi.staging.yaml"])
def test_a_named_pipe_is_refused_not_waited_on(repo_copy: Path, name: str) -> None:
    """Opening a FIFO for reading blocks until a writer comes: a declaration was waited on for ever, and a stack
    file read "no such stack file"."""
    os.mkfifo(repo_copy / name)
    assert _validate_process(repo_copy) == [
        f"{name}: not a regular file (a named pipe, socket or device); put the file here",
        "1 problem(s); nothing was changed.",
    ]


@pytest.mark.parametrize(
    "link", ["stacks/loop.yaml", "schemas/tenants/tenant_profiles.json", "schemas/tenants/loop.json", "schemas/loop"]
)
def test_a_symlink_loop_is_one_line(repo_copy: Path, link: str) -> None:
    path = repo_copy / link
    path.unlink(missing_ok=True)
    path.symlink_to(path.name)
    verb = "list the folder" if link == "schemas/loop" else "follow the path"
    assert_one_line_refusal(
        validate(repo_copy),
        f"{link}: cannot {verb}: symbolic links that loop (too many levels of symbolic links); fix or remove the link",
    )


@pytest.mark.parametrize("folder", ["stacks", "schemas/tenants"])
def test_a_folder_this_user_cannot_list_says_permission_denied(folder: str) -> None:
    """As root every folder is readable whatever its mode, so the CLI runs as user nobody (setpriv), with the
    system's Python of the same version and a copy of the code and of the packages `validate` imports, in a
    folder nobody may read (the checkout and the virtualenv may sit where nobody may not)."""
    setpriv, python = shutil.which("setpriv"), f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if setpriv is None or not os.access(python, os.X_OK):
        pytest.skip(f"needs setpriv and {python} to run the CLI as another user")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    with tempfile.TemporaryDirectory() as scratch:
        root, code = Path(scratch) / "repo", Path(scratch) / "code"
        shutil.copytree(FIXTURE_ROOT, root)
        shutil.copytree(REPO_ROOT / "infra", code / "infra")
        for name in ("click", "msgspec", "yaml", "_yaml", "typing_extensions"):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin is not None:
                origin = Path(spec.origin)
                if origin.name == "__init__.py":
                    shutil.copytree(origin.parent, code / name)
                else:
                    shutil.copy(origin, code / origin.name)
        for path in (Path(scratch), *Path(scratch).rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / folder).chmod(0)
        nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        lines = _validate_process(root, user=nobody, python=python, path=[str(code)])
    assert lines == [
        f"{folder}: cannot list the folder: permission denied; let the user running this read it",
        "1 problem(s); nothing was changed.",
    ]


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            "gcp:defaultLabels:\n    value: {team: data}",
            "Pulumi.yaml:config.gcp:defaultLabels: a provider setting this program does not model: the provider "
            "would merge it",
        ),
        ("gcp:region: us-central1", "Pulumi.yaml:config.gcp:region: a provider setting this program does not model"),
        (
            "tenant-bigquery:defaultTableExpirationDays:\n    type: integer\n    default: 30",
            "Pulumi.yaml:config.tenant-bigquery:defaultTableExpirationDays: BigQuery gives every table created in "
            "the dataset this expiration",
        ),
        (
            "tenant-bigquery:recreate:\n    type: string",
            "Pulumi.dev.yaml:config.tenant-bigquery:recreate: Pulumi.yaml declares it without a default, so Pulumi "
            "requires every stack to set it",
        ),
        (
            "gcp:zone:\n    type: string\n    value: us-central1-a",
            "Pulumi.yaml:config.gcp:zone: a key of another namespace takes only value: (Pulumi refuses type: and "
            "default: there)",
        ),
    ],
)
def test_project_config_applies_to_every_stack_with_the_same_rules(repo_copy: Path, entry: str, line: str) -> None:
    """Pulumi merges Pulumi.yaml's config into every stack's where the stack file does not set the key
    (pulumi/pulumi pkg/workspace/config.go mergeConfig; a bare value is a default of this project's key, a
    value of another's: sdk/go/common/workspace/project.go RewriteShorthandConfigValues; Project.Validate
    refuses a type or default on another namespace's key). So a gcp: key there reaches the default provider of
    every stack, and a default reaches the program: each is checked as a stack file's value, said once."""
    project = repo_copy / "Pulumi.yaml"
    project.write_text(project.read_text() + f"  {entry}\n")
    result = validate(repo_copy)
    assert result.returncode == 1
    [problem, *others, summary] = result.stderr.splitlines()
    assert problem.startswith(line), problem
    if line.startswith("Pulumi.yaml"):
        assert others == [], "said once, not once per stack"
    assert summary == f"{1 + len(others)} problem(s); nothing was changed."


@pytest.mark.parametrize("name_line", ["", "name: ''\n", "name: [a]\n"])
def test_a_project_without_a_name_fails_validate_as_it_fails_the_gate(repo_copy: Path, name_line: str) -> None:
    """pulumi/pulumi sdk/go/common/workspace/project.go ValidateProject refuses a Pulumi.yaml with no `name`
    ("project is missing a 'name' attribute") or one that is not a non-empty string; `validate` read it as
    this project and passed, while `preview-gate` refused it. One reader now refuses it for both."""
    project = repo_copy / "Pulumi.yaml"
    text = project.read_text()
    assert text.startswith("name: tenant-bigquery\n")
    project.write_text(name_line + text.removeprefix("name: tenant-bigquery\n"))
    result = validate(repo_copy)
    expected = (
        "Pulumi.yaml:name: Pulumi refuses a project without a non-empty string `name`; set `name: tenant-bigquery`"
    )
    assert (result.returncode, result.stderr.splitlines()) == (1, [expected, "1 problem(s); nothing was changed."])
    gate = invoke("preview-gate", "--stack", "prod", "--root", str(repo_copy), "nowhere.json", cwd=repo_copy)
    assert (gate.returncode, gate.stderr.splitlines()) == (2, result.stderr.splitlines())


def test_a_changed_project_default_reaches_plan(repo_copy: Path) -> None:
    """pkg/workspace/config.go mergeConfig and createConfigValue: the default's text is the stack's value."""
    project = repo_copy / "Pulumi.yaml"
    text = project.read_text()
    assert text.count('default: ""') == 1  # tenant-bigquery:datasetSuffix
    project.write_text(text.replace('default: ""', 'default: "_v2"'))
    result = invoke("plan", "--stack", "prod", "--format", "json", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["config"]["tenant-bigquery:datasetSuffix"] == "_v2"
    [dataset] = [r for r in document["resources"] if r["type"] == "gcp:bigquery/dataset:Dataset"]
    assert dataset["inputs"]["datasetId"] == "tenants_v2"


def test_a_stack_file_with_an_esc_environment_is_refused(repo_copy: Path) -> None:
    """ProjectStack.Environment (pulumi/pulumi sdk/go/common/workspace/project.go) names Pulumi ESC environments,
    whose values mergeConfig (pkg/workspace/config.go) merges into the stack's config before the program runs:
    config this tool cannot read."""
    stack_file = repo_copy / "Pulumi.prod.yaml"
    stack_file.write_text("environment:\n  - acme/prod-settings\n" + stack_file.read_text())
    assert_one_line_refusal(
        validate(repo_copy),
        "Pulumi.prod.yaml:environment: a Pulumi ESC environment adds config that `pulumi up` merges in but "
        "validate, plan, diff and verify cannot read, so they would check other settings than the deploy uses; "
        "remove it and set the values under config:",
    )


_TENANT_KEY = {
    "name": "fk_tenant",
    "column": "tenant_id",
    "references": {"table": "tenant_profiles", "column": "tenant_id"},
}
_QUOTAS = "stacks/tenants.yaml:tables.tenant_usage_quotas.constraints"
_LIMITS = "BigQuery docs: TABLE_CONSTRAINTS view, limitations"


@pytest.mark.parametrize(
    ("constraints", "line"),
    [
        ({}, f"{_QUOTAS}: declare primary_key: or foreign_keys:, or remove constraints:"),
        (
            {"primary_key": ["tenant", "usage_date"]},
            f"{_QUOTAS}.primary_key.tenant: 'tenant' is not a top-level column of the schema; keys take top-level "
            "columns",
        ),
        (
            {"primary_key": ["exceeded_quotas"]},
            f"{_QUOTAS}.primary_key.exceeded_quotas: a REPEATED column cannot be a key column ({_LIMITS})",
        ),
        (
            {"primary_key": ["tenant_id", "TENANT_ID"]},
            f"{_QUOTAS}.primary_key: a column is listed twice; keep one",
        ),
        (
            {"foreign_keys": [{**_TENANT_KEY, "references": {"table": "tenant_subscriptions", "column": "tenant_id"}}]},
            f"{_QUOTAS}.foreign_keys.fk_tenant.references.column: tenant_subscriptions.tenant_id must be "
            "tenant_subscriptions's primary key, on its own (it declares no primary key): a foreign key references "
            "the primary key of the referenced table, one column per key (the provider's column_references holds "
            "one pair)",
        ),
        (
            {"foreign_keys": [{**_TENANT_KEY, "references": {"table": "tenant_profile", "column": "tenant_id"}}]},
            f"{_QUOTAS}.foreign_keys.fk_tenant.references.table: 'tenant_profile' is not a table of this dataset; "
            "declare it or fix the name",
        ),
        (
            {
                "foreign_keys": [
                    {**_TENANT_KEY, "references": {"table": "other.tenant_profiles", "column": "tenant_id"}}
                ]
            },
            f"{_QUOTAS}.foreign_keys.fk_tenant.references.table: 'other.tenant_profiles': a foreign key references a "
            "table of its own dataset (BigQuery keeps primary and foreign key relations within one dataset, "
            f"{_LIMITS}); name the table without its dataset",
        ),
        (
            {"foreign_keys": [{**_TENANT_KEY, "references": {"table": "tenant_usage_quotas", "column": "tenant_id"}}]},
            f"{_QUOTAS}.foreign_keys.fk_tenant.references.table: a foreign key cannot refer to a column of its own "
            f"table ({_LIMITS})",
        ),
        (
            {"foreign_keys": [{**_TENANT_KEY, "column": "api_requests"}]},
            f"{_QUOTAS}.foreign_keys.fk_tenant.column: api_requests is INT64 but tenant_profiles.tenant_id is STRING; "
            "a foreign key column has the type of the primary key it references",
        ),
        (
            {"foreign_keys": [_TENANT_KEY, _TENANT_KEY]},
            f"{_QUOTAS}.foreign_keys.fk_tenant.name: two foreign keys of the table share this name; rename one",
        ),
        (
            {"foreign_keys": [{**_TENANT_KEY, "name": "fk-tenant"}]},
            f"{_QUOTAS}.foreign_keys.fk-tenant.name: foreign key name 'fk-tenant': use letters, digits and "
            "underscores, a letter or underscore first, at most 300 characters (this project's rule, as for column "
            "names)",
        ),
        (
            {"primary_key": [f"c{i}" for i in range(17)]},
            None,  # 17 columns: the count, then each unknown column
        ),
    ],
)
def test_a_bad_key_is_one_line_naming_the_table_and_field(
    repo_copy: Path, constraints: dict[str, object], line: str | None
) -> None:
    """BigQuery's key rules (https://cloud.google.com/bigquery/docs/information-schema-table-constraints,
    limitations; https://cloud.google.com/bigquery/docs/primary-foreign-keys), each one line at its field."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    document = yaml.safe_load(declaration.read_text())
    document["tables"]["tenant_profiles"]["constraints"] = {"primary_key": ["tenant_id"]}
    document["tables"]["tenant_usage_quotas"]["constraints"] = constraints
    declaration.write_text(yaml.safe_dump(document, sort_keys=False))
    result = validate(repo_copy)
    if line is not None:
        assert_one_line_refusal(result, line)
        return
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (
        f"{_QUOTAS}.primary_key: a primary key takes at most 16 columns; got 17 ({_LIMITS})"
    )


def test_declared_keys_reach_plan_with_the_suffixed_dataset(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    document = yaml.safe_load(declaration.read_text())
    document["tables"]["tenant_profiles"]["constraints"] = {"primary_key": ["tenant_id"]}
    document["tables"]["tenant_usage_quotas"]["constraints"] = {"foreign_keys": [_TENANT_KEY]}
    declaration.write_text(yaml.safe_dump(document, sort_keys=False))
    stack = repo_copy / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("config:\n", "config:\n  tenant-bigquery:datasetSuffix: _dev\n", 1))
    assert validate(repo_copy).returncode == 0
    planned = invoke("plan", "--stack", "dev", "--root", str(repo_copy), "--format", "json", cwd=repo_copy)
    assert planned.returncode == 0, planned.stderr
    inputs = next(
        r["inputs"] for r in json.loads(planned.stdout)["resources"] if r["name"] == "tenants-tenant_usage_quotas"
    )
    (key,) = inputs["tableConstraints"]["foreignKeys"]
    assert key["referencedTable"]["datasetId"] == "tenants_dev"
    assert key["columnReferences"] == {"referencingColumn": "tenant_id", "referencedColumn": "tenant_id"}
    text = invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy).stdout
    assert "fk_tenant: tenant_id -> tenant_profiles.tenant_id" in text


# ---------------------------------------------------------------- retiring a table (runbook "Retire a table ...")

DECLARATION = "stacks/tenants.yaml"


def _declare(root: Path, retired: object = None, retired_tables: list[str] | None = None) -> None:
    """`retired: <value>` under tables.tenant_profiles when given, a retired_tables list when given."""
    path = root / DECLARATION
    document = yaml.safe_load(path.read_text())
    if retired is not None:
        document["tables"]["tenant_profiles"]["retired"] = retired
    if retired_tables is not None:
        document["retired_tables"] = retired_tables
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    ("retired", "retired_tables", "line"),
    [
        ("yes", None, "tables.tenant_profiles.retired: must be true or false; got 'yes'"),
        (
            None,
            ["tenant_profiles"],
            "retired_tables.0: tenant_profiles is still declared under tables:; a table leaves the stack in two runs: "
            'first `retired: true` under it, then its entry removed and listed here (runbook "Retire a table without '
            'deleting it")',
        ),
        (None, ["old_table", "old_table"], "retired_tables.1: old_table is listed twice; keep one"),
        (None, ["Old-Table"], "retired_tables.0: table id 'Old-Table' is invalid; this project requires snake_case"),
    ],
)
def test_a_retirement_that_makes_no_sense_is_one_line(
    repo_copy: Path, retired: str | None, retired_tables: list[str] | None, line: str
) -> None:
    _declare(repo_copy, retired, retired_tables)
    result = validate(repo_copy)
    assert result.returncode == 1
    [problem, summary] = result.stderr.splitlines()
    assert problem.startswith(f"{DECLARATION}:{line}"), problem
    assert summary == "1 problem(s); nothing was changed."


def test_the_history_table_cannot_be_retired(repo_copy: Path) -> None:
    path = repo_copy / DECLARATION
    document = yaml.safe_load(path.read_text())
    document["tables"]["migration_history"]["retired"] = True
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert_one_line_refusal(
        validate(repo_copy),
        f"{DECLARATION}:tables.migration_history.retired: migrate records every run in this table and needs the "
        "stack to manage it; keep it declared",
    )


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ('tenant-bigquery:recreate:\n    tenants.tenant_profiles: "1"', "recreate.tenants.tenant_profiles"),
        ("tenant-bigquery:approveDataLoss:\n    - tenants.tenant_profiles", "approveDataLoss.tenants.tenant_profiles"),
    ],
)
def test_a_retired_table_is_neither_recreated_nor_approved_for_loss(repo_copy: Path, setting: str, field: str) -> None:
    _declare(repo_copy, True)
    stack_file = repo_copy / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + f"  {setting}\n")
    assert_one_line_refusal(
        validate(repo_copy),
        f"Pulumi.prod.yaml:config.tenant-bigquery:{field}: tenants.tenant_profiles is retired (retired: true), so it "
        "is kept, never deleted or recreated; remove it here or drop `retired: true`",
    )


@pytest.mark.parametrize("step", ["retired: true", "retired_tables"])
def test_a_foreign_key_to_a_retired_table_is_one_line(repo_copy: Path, step: str) -> None:
    """Either run of the runbook: the referenced table leaves the stack, and its primary key with it."""
    path = repo_copy / DECLARATION
    document = yaml.safe_load(path.read_text())
    document["tables"]["tenant_profiles"]["constraints"] = {"primary_key": ["tenant_id"]}
    document["tables"]["tenant_usage_quotas"]["constraints"] = {"foreign_keys": [_TENANT_KEY]}
    if step == "retired: true":
        document["tables"]["tenant_profiles"]["retired"] = True
    else:
        del document["tables"]["tenant_profiles"]
        (repo_copy / "schemas" / "tenants" / "tenant_profiles.json").unlink()
        document["retired_tables"] = ["tenant_profiles"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert_one_line_refusal(
        validate(repo_copy),
        f"{_QUOTAS}.foreign_keys.fk_tenant.references.table: tenant_profiles is retired, so this stack stops "
        "managing it and its primary key; remove this foreign key in the change that retires it "
        '(runbook "Retire a table without deleting it")',
    )


@pytest.mark.parametrize("command", ["migrate", "snapshot"])
def test_a_retired_table_is_not_migrated_or_snapshot_by_name(repo_copy: Path, command: str) -> None:
    _declare(repo_copy, retired_tables=["old_table"])
    result = invoke(command, "--root", str(repo_copy), "--stack", "dev", "--tables", "tenants.old_table", cwd=repo_copy)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --tables: 'tenants.old_table' is retired (tenants.old_table in retired_tables): "
        "this stack no longer manages it"
    )


@pytest.mark.parametrize(
    ("key", "line"),
    [
        (
            "max_time_travel_hours: 100",
            "stacks/tenants.yaml:max_time_travel_hours: 100 h is no time-travel window BigQuery accepts; use a "
            "multiple of 24 from 48 to 168 (2 to 7 days; BigQuery docs: time travel)",
        ),
        (
            "max_time_travel_hours: 24",
            "stacks/tenants.yaml:max_time_travel_hours: 24 h is no time-travel window BigQuery accepts; use a "
            "multiple of 24 from 48 to 168 (2 to 7 days; BigQuery docs: time travel)",
        ),
        (
            'max_time_travel_hours: "168"',
            "stacks/tenants.yaml:max_time_travel_hours: must be a whole number; got '168'",
        ),
        (
            "storage_billing_model: physical",
            "stacks/tenants.yaml:storage_billing_model: 'physical' is no storage billing model; use LOGICAL or "
            "PHYSICAL (upper case, as BigQuery names them)",
        ),
    ],
)
def test_a_dataset_window_or_billing_model_bigquery_refuses_is_one_line(repo_copy: Path, key: str, line: str) -> None:
    """BigQuery's window: 48 to 168 hours in multiples of 24 (docs "Data retention with time travel and
    fail-safe"; google-cloud-bigquery Dataset.max_time_travel_hours says the same); its billing models: the REST
    enum Dataset.storageBillingModel, LOGICAL or PHYSICAL."""
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("tables:\n", f"{key}\ntables:\n", 1))
    assert_one_line_refusal(validate(repo_copy), line)


def test_a_mistyped_stack_setting_is_one_line_not_every_mapping_it_hides(tmp_path: Path) -> None:
    """A stack file msgspec cannot type leaves the defaults (no policy-name mappings): checking the schemas'
    short names against those named every mapped name as unmapped, beside the one real problem."""
    copy = tmp_path / "repo"
    _copy_of_the_repository(copy)
    prod = copy / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("tenant-bigquery:protect: true", "tenant-bigquery:protect: no"))
    assert_one_line_refusal(
        validate(copy), "Pulumi.prod.yaml:config.tenant-bigquery:protect: must be true or false; got 'no'"
    )
