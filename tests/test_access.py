"""Dataset access and CMEK: typed and validated in the stack config, applied by the program, shown by `plan`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, FIXTURE_TABLES, REPO_ROOT, invoke, resources_of

from infra.model.declared import DATASET_TYPE, TABLE_TYPE
from infra.model.problems import DeclarationError
from infra.model.registrations import ProgramRun
from infra.model.settings import Grant, parse_settings
from infra.pulumi_edge.mockrun import run_stack

SOURCE = "Pulumi.test.yaml"
KEY = "projects/acme-security-prod/locations/us/keyRings/bigquery-prod/cryptoKeys/tenants"
ACCESS = "tenant-bigquery:access"

Plan = Callable[[str], ProgramRun]


def problems_of(values: dict[str, Any]) -> list[str]:
    try:
        parse_settings("test", {"gcp:project": "acme-test", **values}, SOURCE)
    except DeclarationError as error:
        return [str(p) for p in error.problems]
    return []


def test_members_become_grants_with_the_legacy_role_names() -> None:
    access = {
        "readers": ["group:Analysts@Acme.example"],
        "writers": ["serviceAccount:loader@p.iam.gserviceaccount.com"],
        "owners": ["user:admin@acme.example"],
    }
    settings = parse_settings("test", {"gcp:project": "acme-test", ACCESS: access}, SOURCE)
    assert settings.grants() == (
        Grant("READER", "group", "analysts@acme.example"),  # lower case, as the provider stores emails
        Grant("WRITER", "serviceAccount", "loader@p.iam.gserviceaccount.com"),
        Grant("OWNER", "user", "admin@acme.example"),
    )


def test_access_from_the_engine_is_read_like_the_yaml() -> None:
    access = {"readers": ["group:a@acme.example"], "owners": []}
    from_yaml = parse_settings("test", {"gcp:project": "acme-test", ACCESS: access}, SOURCE)
    from_engine = parse_settings("test", {"gcp:project": "acme-test", ACCESS: json.dumps(access)}, SOURCE)
    assert from_engine.grants() == from_yaml.grants()


@pytest.mark.parametrize(
    "member", ["allUsers", "allAuthenticatedUsers", "specialGroup:allAuthenticatedUsers", "iamMember:allUsers"]
)
def test_public_principals_are_refused(member: str) -> None:
    assert problems_of({ACCESS: {"readers": [member]}}) == [
        f"{SOURCE}:config.{ACCESS}.readers.0: {member} would make the data public (CIS GCP 7.1); "
        "grant a group, user or service account instead"
    ]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            "domain:acme.example",
            "'domain:acme.example' is not a member; write group:EMAIL, user:EMAIL or serviceAccount:EMAIL",
        ),
        ("specialGroup:projectReaders", "'specialGroup:projectReaders' is not a member; write group:EMAIL"),
        ("analysts@acme.example", "'analysts@acme.example' is not a member"),
        ("group:analysts", "'analysts' is not an email address"),
        ("serviceAccount:someone@acme.example", "someone@acme.example is not a service account"),
    ],
)
def test_other_members_are_named_with_the_fix(member: str, message: str) -> None:
    [problem] = problems_of({ACCESS: {"owners": [member]}})
    assert problem.startswith(f"{SOURCE}:config.{ACCESS}.owners.0: {message}")


def test_a_member_is_listed_once() -> None:
    access = {"readers": ["group:a@acme.example"], "writers": ["group:A@acme.example"]}
    assert problems_of({ACCESS: access}) == [
        f"{SOURCE}:config.{ACCESS}.writers.0: a@acme.example is also listed at access.readers.0; "
        "keep one entry, with the role it needs"
    ]


def test_unknown_roles_and_wrong_shapes_are_named() -> None:
    assert problems_of({ACCESS: {"viewers": []}}) == [
        f"{SOURCE}:config.{ACCESS}.viewers: unknown key; check the spelling (allowed here: readers, writers, owners)"
    ]
    assert problems_of({ACCESS: ["group:a@acme.example"]}) == [
        f"{SOURCE}:config.{ACCESS}: must be a mapping of keys to values"
    ]


@pytest.mark.parametrize(
    ("location", "key"),
    [
        ("US", KEY),
        ("EU", "projects/p/locations/europe/keyRings/r/cryptoKeys/k"),
        ("europe-west3", "projects/p/locations/europe-west3/keyRings/r/cryptoKeys/k"),
    ],
)
def test_a_key_in_the_datasets_location_is_accepted(location: str, key: str) -> None:
    values = {"tenant-bigquery:location": location, "tenant-bigquery:kmsKeyName": key}
    assert problems_of(values) == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (f"{KEY}/cryptoKeyVersions/3", "must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"),
        ("tenants-key", "must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"),
        (
            "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k",
            "the key is in us-central1, but datasets in US need a key in us; use a key ring in us",
        ),
    ],
)
def test_a_wrong_key_name_is_refused(key: str, message: str) -> None:
    [problem] = problems_of({"tenant-bigquery:kmsKeyName": key})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigquery:kmsKeyName: {message}")


# ---------------------------------------------------------------- what the program registers


def test_prod_owns_the_whole_acl_with_project_owners_kept(planned: Plan) -> None:
    config = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    datasets = resources_of(planned("prod"), DATASET_TYPE)
    assert datasets
    for dataset in datasets:
        # An authorized view's entry (README "Views") is no member's grant: it has no role.
        accesses = [e for e in dataset.inputs["accesses"] if "view" not in e]
        assert accesses[0] == {"role": "OWNER", "specialGroup": "projectOwners"}
        assert {entry["role"] for entry in accesses} <= {"READER", "WRITER", "OWNER"}
        for entry in accesses[1:]:
            [member_field] = set(entry) - {"role"}
            assert member_field in {"groupByEmail", "userByEmail"}, entry  # service accounts are userByEmail too
        assert not any("projectReaders" in json.dumps(e) or "projectWriters" in json.dumps(e) for e in accesses)
        assert len(accesses) == 1 + sum(len(members) for members in config[ACCESS].values())


def test_prod_encrypts_the_dataset_and_every_table_with_one_key() -> None:
    result = run_stack(FIXTURE_ROOT, "prod")
    [dataset] = resources_of(result, DATASET_TYPE)
    assert dataset.inputs["defaultEncryptionConfiguration"] == {"kmsKeyName": KEY}
    tables = resources_of(result, TABLE_TYPE)
    assert len(tables) == len(FIXTURE_TABLES)
    for resource in tables:
        assert resource.inputs["encryptionConfiguration"] == {"kmsKeyName": KEY}, resource.name


def test_dev_keeps_google_managed_keys(planned: Plan) -> None:
    result = planned("dev")
    assert all("defaultEncryptionConfiguration" not in r.inputs for r in resources_of(result, DATASET_TYPE))
    assert all("encryptionConfiguration" not in r.inputs for r in resources_of(result, TABLE_TYPE))


def test_without_access_config_the_acl_is_left_to_bigquery(repo_copy: Path) -> None:
    path = repo_copy / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"][ACCESS]
    path.write_text(yaml.safe_dump(document))
    [dataset] = resources_of(run_stack(repo_copy, "dev"), DATASET_TYPE)
    assert "accesses" not in dataset.inputs


# ---------------------------------------------------------------- the CLI


def test_plan_shows_access_and_cmek() -> None:
    result = invoke("plan", "--stack", "prod", "--root", str(FIXTURE_ROOT), cwd=FIXTURE_ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("  access (the whole ACL):")
    assert lines[at + 1] == "    OWNER projectOwners"
    assert "    READER group:data-platform-engineers@acme.example" in lines
    assert "    WRITER user:tenant-api@acme-data-platform-prod.iam.gserviceaccount.com" in lines
    assert f"  encryption: customer-managed key {KEY}; tables with a customer-managed key: 9 of 9" in lines


def test_plan_says_when_bigquery_defaults_apply(repo_copy: Path) -> None:
    path = repo_copy / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"][ACCESS]
    path.write_text(yaml.safe_dump(document))
    result = invoke("plan", "--stack", "dev", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 0, result.stderr
    assert "  access: BigQuery's default ACL (tenant-bigquery:access is not set)" in result.stdout.splitlines()
    assert "  encryption: Google-managed key; tables with a customer-managed key: 0 of 9" in result.stdout.splitlines()


def test_validate_names_a_public_member_in_one_line(repo_copy: Path) -> None:
    path = repo_copy / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("- group:data-platform-engineers@acme.example", "- allAuthenticatedUsers"))
    result = invoke("validate", "--root", str(repo_copy), cwd=repo_copy)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Pulumi.prod.yaml:config.{ACCESS}.readers.0: allAuthenticatedUsers would make the data public "
        "(CIS GCP 7.1); grant a group, user or service account instead",
        "1 problem(s); nothing was changed.",
    ]
