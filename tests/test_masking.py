"""Column masking end to end: policy tags and data policies named per stack, who owns data policies
(stacks/<dataset>.yaml column_masking), what the program sends, what verify compares or shows, what a rebuild
carries, and every bad declaration as one line through the CLI.

Data policies are in BigQuery's REST form (REST reference, tables: TableFieldSchema.dataPolicies[],
DataPolicyOption {"name": "projects/P/locations/L/dataPolicies/ID"},
https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#TableFieldSchema); tables.get omits the key
on a column without any.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import invoke
from live_server import STACK, LiveStack

from infra.analysis.drift import declared_table, table_checks
from infra.analysis.migration import LiveTable, declared_state, plan_table
from infra.model.catalog import load_catalog
from infra.model.declared import TABLE_TYPE, declare
from infra.model.schema import column_from_api
from infra.model.settings import load_settings
from infra.pulumi_edge.mockrun import run_stack

KEYS = "schemas/tenants/tenant_api_keys.json"
STACKS = "stacks/tenants.yaml"
POLICY = "projects/acme-data-platform-{}/locations/us/dataPolicies/mask_name"


def edit_column(root: Path, name: str, **keys: Any) -> None:
    path = root / KEYS
    columns = json.loads(path.read_text())
    for column in columns:
        if column["name"] == name:
            column.update(keys)
    path.write_text(json.dumps(columns, indent=2))


def set_masking(root: Path, owner: str) -> None:
    path = root / STACKS
    path.write_text(path.read_text().replace("tables:\n", f"column_masking: {owner}\ntables:\n", 1))


TAG = "projects/acme-data-platform-{}/locations/us/taxonomies/7/policyTags/71"


def map_short_names(root: Path, stacks: tuple[str, ...] = ("dev", "prod")) -> None:
    """The fixture's schemas name prod's policy tag in full; here they use short names each stack maps."""
    edit_column(root, "key_hash", policyTags={"names": ["secret-material"]})
    for stack in stacks:
        path = root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        env = "dev" if stack == "dev" else "prod"
        document["config"]["tenant-bigquery:dataPolicies"] = {"mask-name": POLICY.format(env)}
        document["config"]["tenant-bigquery:policyTags"] = {"secret-material": TAG.format(env)}
        path.write_text(yaml.safe_dump(document))


def sent_schema(root: Path, stack: str, table: str = "tenant_api_keys") -> tuple[dict[str, Any], Mapping[str, Any]]:
    result = run_stack(root, stack)
    (registered,) = [r for r in result.resources if r.type == TABLE_TYPE and r.inputs["tableId"] == table]
    return {c["name"]: c for c in json.loads(registered.inputs["schema"])}, registered.inputs


# ---------------------------------------------------------------- one schema file, every stack's own names


def test_short_names_become_each_stacks_resource_names(repo_copy: Path) -> None:
    map_short_names(repo_copy)
    edit_column(repo_copy, "name", dataPolicies=[{"name": "mask-name"}])

    for stack in ("dev", "prod"):
        columns, inputs = sent_schema(repo_copy, stack)
        assert columns["name"]["dataPolicies"] == [{"name": POLICY.format(stack)}]
        assert columns["key_hash"]["policyTags"] == {"names": [TAG.format(stack)]}
        assert "ignoreSchemaChanges" not in inputs, "this repository owns masking: the schema is authoritative"


def test_verify_and_a_rebuild_read_the_resolved_names(repo_copy: Path) -> None:
    map_short_names(repo_copy)
    edit_column(repo_copy, "name", dataPolicies=[{"name": "mask-name"}])
    catalog = load_catalog(repo_copy)
    settings = load_settings(repo_copy, "prod", catalog)
    (declared,) = [t for d in declare(catalog, settings) for t in d.tables if t.table.table_id == "tenant_api_keys"]
    names = {c.name: c for c in declared_table(declared).schema}
    assert names["name"].data_policies == (POLICY.format("prod"),)
    assert names["key_hash"].policy_tags == (TAG.format("prod"),)


# ---------------------------------------------------------------- governance owns the data policies


def test_under_governance_the_program_leaves_data_policies_to_the_governance_team(repo_copy: Path) -> None:
    set_masking(repo_copy, "governance")
    columns, inputs = sent_schema(repo_copy, "dev")
    assert inputs["ignoreSchemaChanges"] == ["dataPolicies"]
    assert not any("dataPolicies" in c for c in columns.values())


def _governed(repo_copy: Path) -> tuple[Any, Any]:
    set_masking(repo_copy, "governance")
    catalog = load_catalog(repo_copy)
    table = next(t for t in catalog.tables() if t.table_id == "tenant_api_keys")
    return table, load_settings(repo_copy, "prod", catalog)


def _live_with_policy(state: Any, column: str, policy: str) -> Any:
    schema = tuple(dataclasses.replace(c, data_policies=(policy,)) if c.name == column else c for c in state.schema)
    return dataclasses.replace(state, schema=schema, column_masking="repository")


def test_verify_shows_governance_data_policies_and_never_fails_on_them(repo_copy: Path) -> None:
    table, settings = _governed(repo_copy)
    declared, _ = declared_state(table, settings)
    live = _live_with_policy(declared, "name", POLICY.format("prod"))

    checks = {c.name: c for c in table_checks("table t", declared, live)}

    assert checks["schema"].ok, checks["schema"]
    assert checks["masking"].ok
    assert checks["masking"].detail == f"owned by governance; attached: name data policies {POLICY.format('prod')}"


def test_verify_fails_a_data_policy_drift_when_the_repository_owns_masking(repo_copy: Path) -> None:
    catalog = load_catalog(repo_copy)
    table = next(t for t in catalog.tables() if t.table_id == "tenant_api_keys")
    declared, _ = declared_state(table, load_settings(repo_copy, "prod", catalog))
    live = _live_with_policy(declared, "name", POLICY.format("prod"))

    checks = {c.name: c for c in table_checks("table t", declared, live)}

    assert not checks["schema"].ok and not checks["masking"].ok
    assert checks["masking"].detail == f"name has {POLICY.format('prod')}, declared none"


def test_a_rebuild_under_governance_keeps_the_attached_data_policies(repo_copy: Path) -> None:
    table, settings = _governed(repo_copy)
    declared, _ = declared_state(table, settings)
    # `name` STRING -> BYTES live: a cast, so a rebuild.
    live = _live_with_policy(declared, "name", POLICY.format("prod"))
    live = dataclasses.replace(
        live, schema=tuple(dataclasses.replace(c, type="BYTES") if c.name == "key_id" else c for c in live.schema)
    )

    plan = plan_table(table, settings, LiveTable("p.tenants.tenant_api_keys", live), datetime(2026, 12, 1, tzinfo=UTC))

    (create,) = [s for s in plan.steps if s.kind == "create"]
    fields = {f["name"]: f for f in create.payload["schema"]["fields"]}
    assert fields["name"]["dataPolicies"] == [{"name": POLICY.format("prod")}]
    assert "dataPolicies" not in fields["key_id"]


# ---------------------------------------------------------------- diff: who can read what


def test_diff_says_who_reads_the_raw_values(tmp_path: Path) -> None:
    old = [{"name": "email", "type": "STRING"}]
    new = [{"name": "email", "type": "STRING", "dataPolicies": [{"name": POLICY.format("prod")}]}]
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))

    for before, after, words in (
        ("old.json", "new.json", "only its raw-access grantees read the values"),
        ("new.json", "old.json", "every reader of the table reads the raw values"),
    ):
        result = invoke("diff", "--old", before, "--new", after, "--format", "json", cwd=tmp_path)
        (table,) = json.loads(result.stdout)["tables"]
        assert table["verdict"] == "update"
        assert words in json.dumps(table)


# ---------------------------------------------------------------- bad declarations: one line each


def _refusal(root: Path) -> list[str]:
    result = invoke("validate", "--root", str(root), cwd=root)
    assert result.returncode == 1, result.stdout
    return result.stderr.splitlines()[:-1]


@pytest.mark.parametrize(
    ("keys", "line"),
    [
        (
            {"dataPolicies": {"name": "x"}},
            f'{KEYS}:name.dataPolicies: dataPolicies must be a list of {{"name": "projects/.../dataPolicies/..." or '
            "a short name}",
        ),
        (
            {"dataPolicies": [{"name": "Projects/x"}]},
            f"{KEYS}:name.dataPolicies: 'Projects/x' is neither a resource name projects/P/locations/L/dataPolicies/ID "
            "nor a short name",
        ),
        (
            {"dataPolicies": [{"name": f"projects/p/locations/us/dataPolicies/d{i}"} for i in range(9)]},
            f"{KEYS}:name.dataPolicies: 9 data policies; BigQuery attaches at most 8 to a column",
        ),
        (
            {"dataPolicies": [{"name": "projects/p/locations/us/dataPolicies/d"}], "policyTags": {"names": ["x"]}},
            f"{KEYS}:name.dataPolicies: a column carries policy tags or data policies, not both",
        ),
        (
            {"dataPolicies": [{"name": "mask-name"}]},
            f"{KEYS}:name.dataPolicies: short name 'mask-name' is not mapped by Pulumi.dev.yaml "
            "tenant-bigquery:dataPolicies",
        ),
    ],
    ids=["not-a-list", "malformed-name", "nine", "with-a-policy-tag", "unmapped-short-name"],
)
def test_a_bad_data_policy_is_one_line(repo_copy: Path, keys: dict[str, Any], line: str) -> None:
    edit_column(repo_copy, "name", **keys)
    lines = _refusal(repo_copy)
    assert lines and all(entry.startswith(line) or "Pulumi.prod.yaml" in entry for entry in lines), lines
    assert lines[0].startswith(line), lines


def test_data_policies_under_governance_are_refused(repo_copy: Path) -> None:
    set_masking(repo_copy, "governance")
    edit_column(repo_copy, "name", dataPolicies=[{"name": "projects/p/locations/us/dataPolicies/d"}])
    assert _refusal(repo_copy) == [
        f"{KEYS}:name.dataPolicies: stacks/tenants.yaml sets column_masking: governance, so the governance team "
        "attaches data policies and this repository leaves them alone; remove the key, or set column_masking: "
        "repository"
    ]


def test_a_masked_clustering_column_is_refused(repo_copy: Path) -> None:
    edit_column(repo_copy, "key_prefix", dataPolicies=[{"name": "projects/p/locations/us/dataPolicies/d"}])
    assert _refusal(repo_copy) == [
        f"{KEYS}:key_prefix.dataPolicies: BigQuery does not mask a partitioning or clustering column by default "
        "(Mask column data: limitations); mask another column, or protect this one with a policy tag"
    ]


def test_an_unknown_masking_owner_is_refused(repo_copy: Path) -> None:
    set_masking(repo_copy, "security-team")
    assert _refusal(repo_copy) == [
        f"{STACKS}:column_masking: column_masking 'security-team' is not an owner; use repository (the schema files "
        "declare dataPolicies) or governance (another team attaches them and this repository leaves them alone)"
    ]


def test_a_stack_mapping_a_short_name_to_no_resource_name_is_refused(repo_copy: Path) -> None:
    path = repo_copy / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["tenant-bigquery:policyTags"] = {"secret-material": "secret"}
    path.write_text(yaml.safe_dump(document))
    assert _refusal(repo_copy) == [
        "Pulumi.dev.yaml:config.tenant-bigquery:policyTags.secret-material: 'secret' is not a resource name "
        "projects/P/locations/L/taxonomies/T/policyTags/X"
    ]


# ---------------------------------------------------------------- the local server


@pytest.mark.live
def test_the_local_server_round_trips_policy_tags_and_data_policies(live_stack: LiveStack) -> None:
    from live_server import create_from_plan

    map_short_names(live_stack.root, ("dev", "prod", STACK))
    edit_column(live_stack.root, "name", dataPolicies=[{"name": "mask-name"}])
    create_from_plan(live_stack.client, live_stack.plan())

    got = live_stack.client.get_table(live_stack.table("tenant_api_keys"))
    columns = {c.name: column_from_api(c.to_api_repr()) for c in got.schema}
    assert columns["key_hash"].policy_tags == (TAG.format("prod"),)
    assert columns["name"].data_policies == (POLICY.format("prod"),)

    result = live_stack.cli("verify", "--stack", STACK)
    assert result.returncode == 0, result.stdout
    ds = live_stack.dataset_id()
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(f"✓ table {ds}.tenant_api_keys masking:")]
    assert f"name data policies {POLICY.format('prod')}" in line and "key_hash policy tag projects/" in line


def test_plan_shows_the_owner_and_each_protected_column_with_the_stacks_names(repo_copy: Path) -> None:
    map_short_names(repo_copy)
    result = invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy)
    text = " ".join(result.stdout.split())  # rich may wrap the line
    assert result.returncode == 0, result.stderr
    assert f"column masking: repository's; tenant_api_keys.key_hash policy tag {TAG.format('dev')}" in text

    set_masking(repo_copy, "governance")
    text = " ".join(invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy).stdout.split())
    assert "column masking: governance's;" in text
    assert "data policies: the governance team's (ignore_schema_changes)" in text
