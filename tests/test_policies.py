"""The policy pack's validators: each rule passes and fails, on hand-made inputs and on what the real program registers.

The validators are called directly; pulumi-policy itself is not installed here (its protobuf pin clashes with
google-cloud), and building a PolicyPack would start its server. Inputs are frozen into read-only mappings and
tuples first, because pulumi-policy hands `args.props` as Mapping/Sequence proxies, not dicts and lists.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, REPO_ROOT, resources_of

from infra.contract import DATASET_TYPE as DATASET
from infra.contract import TABLE_TYPE as TABLE
from infra.model.registrations import ProgramRun
from infra.model.settings import read_stack_file
from infra.pulumi_edge.mockrun import run_program, run_stack
from infra.pulumi_edge.program import run
from policies import validators
from policies.validators import DATASET_ACCESS, JOB, RULES, TRANSFER_CONFIG

POLICY_CONFIG = REPO_ROOT / "policies" / "config"
KEY = "projects/acme-security-prod/locations/us/keyRings/bigquery-prod/cryptoKeys/tenants"
RULE_NAMES = {rule.name for rule in RULES}
LEVELS = {"advisory", "mandatory", "remediate", "disabled"}

Plan = Callable[[str], ProgramRun]


def frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    return value


def check(rule_name: str, resource_type: str, props: dict[str, Any]) -> list[str]:
    rule = next(rule for rule in RULES if rule.name == rule_name)
    return rule.check(resource_type, frozen(props))


def violations(result: ProgramRun) -> dict[tuple[str, str], list[str]]:
    """(rule, resource name) -> messages, for every registered resource."""
    found = {}
    for resource in result.resources:
        for rule in RULES:
            messages = rule.check(resource.type, frozen(resource.inputs))
            if messages:
                found[(rule.name, resource.name)] = messages
    return found


# The resource names the program sends (the stack's, resolved from the schema files' short names).
TAG = "projects/p/locations/us/taxonomies/1/policyTags/2"
DATA_POLICY = "projects/p/locations/us/dataPolicies/mask_sha256"


def table(schema: list[dict[str, Any]] | None = None, **inputs: Any) -> dict[str, Any]:
    return {"tableId": "t", "schema": json.dumps(schema or [{"name": "id", "type": "STRING"}]), **inputs}


# ---------------------------------------------------------------- no public principals (CIS 7.1)


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (DATASET, {"accesses": [{"role": "READER", "specialGroup": "allAuthenticatedUsers"}]}),
        (
            DATASET,
            {
                "accesses": [
                    {"role": "OWNER", "specialGroup": "projectOwners"},
                    {"role": "READER", "iamMember": "allUsers"},
                ]
            },
        ),
        ("gcp:bigquery/datasetAccess:DatasetAccess", {"datasetId": "d", "role": "READER", "iamMember": "allUsers"}),
        ("gcp:bigquery/datasetIamMember:DatasetIamMember", {"role": "roles/bigquery.dataViewer", "member": "allUsers"}),
        ("gcp:bigquery/iamMember:IamMember", {"role": "roles/bigquery.dataViewer", "member": "allAuthenticatedUsers"}),
        ("gcp:bigquery/iamBinding:IamBinding", {"members": ["group:a@acme.example", "allAuthenticatedUsers"]}),
        (
            "gcp:bigquery/datasetIamPolicy:DatasetIamPolicy",
            {"policyData": json.dumps({"bindings": [{"role": "roles/bigquery.dataViewer", "members": ["allUsers"]}]})},
        ),
    ],
)
def test_public_principals_fail(resource_type: str, props: dict[str, Any]) -> None:
    [message] = check("bigquery-no-public-access", resource_type, props)
    assert message.startswith("all") and "grant a group, user or service account instead" in message


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (
            DATASET,
            {
                "accesses": [
                    {"role": "OWNER", "specialGroup": "projectOwners"},
                    {"role": "READER", "domain": "acme.example"},
                ]
            },
        ),
        (DATASET, {"datasetId": "d"}),  # no accesses: BigQuery's default ACL, which is not public
        ("gcp:bigquery/iamMember:IamMember", {"member": "group:allusers@acme.example"}),
        ("gcp:bigquery/iamPolicy:IamPolicy", {"policyData": json.dumps({"bindings": []})}),
    ],
)
def test_named_principals_pass(resource_type: str, props: dict[str, Any]) -> None:
    assert check("bigquery-no-public-access", resource_type, props) == []


@pytest.mark.parametrize(
    "resource_type",
    [
        "gcp:bigqueryanalyticshub/listingIamMember:ListingIamMember",
        "gcp:bigqueryanalyticshub/dataExchangeIamMember:DataExchangeIamMember",
        "gcp:bigquery/routineIamMember:RoutineIamMember",
    ],
)
def test_analytics_hub_and_routine_iam_to_all_users_fail(resource_type: str) -> None:
    [message] = check("bigquery-no-public-access", resource_type, {"role": "roles/viewer", "member": "allUsers"})
    assert message.startswith("allUsers is granted access")


@pytest.mark.parametrize(
    "resource_type",
    [
        "gcp:bigqueryanalyticshub/listingIamBinding:ListingIamBinding",
        "gcp:bigqueryanalyticshub/dataExchangeIamPolicy:DataExchangeIamPolicy",
        "gcp:bigquery/routineIamPolicy:RoutineIamPolicy",
    ],
)
def test_analytics_hub_and_routine_bindings_and_policies_fail(resource_type: str) -> None:
    members = ["allAuthenticatedUsers"]
    props = (
        {"members": members}
        if resource_type.endswith("Binding")
        else {"policyData": json.dumps({"bindings": [{"role": "roles/viewer", "members": members}]})}
    )
    assert check("bigquery-no-public-access", resource_type, props) != []


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (DATASET, {"accesses": [{"role": "READER", "domain": "gmail.com"}]}),
        (DATASET_ACCESS, {"role": "READER", "domain": "Outlook.com"}),
        ("gcp:bigquery/iamMember:IamMember", {"member": "domain:gmail.com"}),
    ],
)
def test_consumer_domains_fail(resource_type: str, props: dict[str, Any]) -> None:
    [message] = check("bigquery-no-public-access", resource_type, props)
    assert message.startswith("domain ") and "anyone can sign up there" in message


def test_authorized_views_datasets_and_routines_of_another_project_fail() -> None:
    rule = "bigquery-no-public-access"
    own = {"projectId": "p", "datasetId": "d", "tableId": "v"}
    other = own | {"projectId": "elsewhere"}
    assert check(rule, DATASET, {"project": "p", "accesses": [{"view": own}]}) == []
    [message] = check(rule, DATASET, {"project": "p", "accesses": [{"view": other}]})
    assert message.startswith("an authorized view in project 'elsewhere' can read this dataset")
    dataset_entry = {"dataset": {"dataset": {"projectId": "elsewhere", "datasetId": "d"}, "targetTypes": ["VIEWS"]}}
    assert check(rule, DATASET, {"project": "p", "accesses": [dataset_entry]}) != []
    routine = {"projectId": "elsewhere", "datasetId": "d", "routineId": "r"}
    assert check(rule, DATASET_ACCESS, {"project": "p", "datasetId": "x", "routine": routine}) != []
    assert check(rule, DATASET_ACCESS, {"datasetId": "x", "view": own}) != []  # project unknown: not governed here


@pytest.mark.parametrize("policy_data", ["[]", '"text"', "{", '{"bindings": {}}', '{"bindings": [{"members": 1}]}'])
def test_a_policy_document_of_another_shape_does_not_crash(policy_data: str) -> None:
    assert check("bigquery-no-public-access", "gcp:bigquery/iamPolicy:IamPolicy", {"policyData": policy_data}) == []


# ---------------------------------------------------------------- CMEK (CIS 7.2, 7.3)


def test_dataset_needs_a_default_key() -> None:
    assert (
        check("bigquery-dataset-default-cmek", DATASET, {"defaultEncryptionConfiguration": {"kmsKeyName": KEY}}) == []
    )
    [missing] = check("bigquery-dataset-default-cmek", DATASET, {"datasetId": "d"})
    assert missing.startswith("the dataset has no customer-managed key; set defaultEncryptionConfiguration.kmsKeyName")
    version = {"kmsKeyName": f"{KEY}/cryptoKeyVersions/1"}
    [malformed] = check("bigquery-dataset-default-cmek", DATASET, {"defaultEncryptionConfiguration": version})
    assert "is not projects/P/locations/L/keyRings/R/cryptoKeys/K" in malformed


def test_a_dataset_window_below_the_maximum_fails() -> None:
    """The program sends the window as the provider's schema types it, a string (resource_bigquery_dataset.go
    max_time_travel_hours TypeString); BigQuery's maximum is 168 hours (docs: time travel)."""
    rule = "bigquery-dataset-time-travel-maximum"
    assert check(rule, DATASET, {"maxTimeTravelHours": "168"}) == []
    assert check(rule, DATASET, {"datasetId": "d"}) == []  # unsent: BigQuery's default, 168
    [shorter] = check(rule, DATASET, {"maxTimeTravelHours": "144"})
    assert shorter.startswith("the time-travel window is 144 h: changed or deleted data can be recovered only")
    [malformed] = check(rule, DATASET, {"maxTimeTravelHours": "a week"})
    assert malformed == "maxTimeTravelHours 'a week' is not a number of hours"
    assert check(rule, TABLE, table()) == []


def test_prod_with_a_shorter_window_fails_the_time_travel_policy(repo_copy: Path) -> None:
    declaration = repo_copy / "stacks" / "tenants.yaml"
    declaration.write_text(declaration.read_text().replace("tables:\n", "max_time_travel_hours: 48\ntables:\n", 1))
    found = violations(run_stack(repo_copy, "prod"))
    assert list(found) == [("bigquery-dataset-time-travel-maximum", "tenants")]


def test_table_needs_a_key() -> None:
    assert check("bigquery-table-cmek", TABLE, table(encryptionConfiguration={"kmsKeyName": KEY})) == []
    [missing] = check("bigquery-table-cmek", TABLE, table())
    assert missing.startswith("the table has no customer-managed key; set encryptionConfiguration.kmsKeyName")
    assert check("bigquery-table-cmek", DATASET, {}) == []  # each rule looks only at its own resource type


@pytest.mark.parametrize(
    "inputs",
    [
        {"view": {"query": "SELECT 1", "useLegacySql": False}},
        {"materializedView": {"query": "SELECT 1"}},
        {"externalDataConfiguration": {"sourceUris": ["gs://b/x.csv"], "autodetect": True}},
    ],
    ids=["view", "materialized-view", "external"],
)
def test_views_and_external_tables_need_no_key(inputs: dict[str, Any]) -> None:
    assert check("bigquery-table-cmek", TABLE, table(**inputs)) == []


@pytest.mark.parametrize("kind", ["query", "load", "copy"])
def test_a_job_that_writes_a_table_needs_a_key(kind: str) -> None:
    destination = {"projectId": "p", "datasetId": "d", "tableId": "t"}
    [message] = check("bigquery-table-cmek", JOB, {"jobId": "j", kind: {"destinationTable": destination}})
    assert message.startswith(f"the {kind} job's destination table has no customer-managed key")
    keyed = {"destinationTable": destination, "destinationEncryptionConfiguration": {"kmsKeyName": KEY}}
    assert check("bigquery-table-cmek", JOB, {"jobId": "j", kind: keyed}) == []
    assert check("bigquery-table-cmek", JOB, {"jobId": "j", "query": {"query": "SELECT 1"}}) == []  # no table


def test_a_transfer_config_needs_a_key() -> None:
    [message] = check("bigquery-table-cmek", TRANSFER_CONFIG, {"dataSourceId": "scheduled_query"})
    assert message.startswith("the tables this transfer writes has no customer-managed key")
    keyed = {"dataSourceId": "scheduled_query", "encryptionConfiguration": {"kmsKeyName": KEY}}
    assert check("bigquery-table-cmek", TRANSFER_CONFIG, keyed) == []


# ---------------------------------------------------------------- deletion protection (CKV_GCP_121)


def test_deletion_protection() -> None:
    rule = "bigquery-table-deletion-protection"
    assert check(rule, TABLE, table(deletionProtection=True)) == []
    assert check(rule, TABLE, table()) == []  # the provider's default is true
    [message] = check(rule, TABLE, table(deletionProtection=False))
    assert message.startswith("deletionProtection is false; set tenant-bigquery:deletionProtection: true")
    approved = table(deletionProtection=False, labels={"data-loss": "approved"})
    assert check(rule, TABLE, approved) == []
    # A view holds no rows (README "Views"): the program sends it without deletion protection.
    view = table(deletionProtection=False, view={"query": "SELECT 1 AS one", "useLegacySql": False})
    assert check(rule, TABLE, view) == []


def test_tables_bigquery_deletes_by_itself_fail_deletion_protection() -> None:
    rule = "bigquery-table-deletion-protection"
    [message] = check(rule, TABLE, table(deletionProtection=True, expirationTime=1_900_000_000_000))
    assert message.startswith("expirationTime is set: BigQuery deletes the table")
    [message] = check(rule, DATASET, {"datasetId": "d", "defaultTableExpirationMs": "2592000000"})
    assert message.startswith("defaultTableExpirationMs is set: BigQuery deletes every new table")
    assert check(rule, DATASET, {"datasetId": "d"}) == []


# ---------------------------------------------------------------- secret-named columns


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("api_key", "STRING"),
        ("apiKey", "STRING"),
        ("client_secret", "STRING"),
        ("refresh_token", "STRING"),
        ("db_password", "STRING"),
        ("credentials", "JSON"),
        ("private_key_pem", "STRING"),
        ("api_keys", "STRING"),
    ],
)
def test_secret_named_text_columns_fail(name: str, type_: str) -> None:
    [message] = check("bigquery-secret-columns-protected", TABLE, table([{"name": name, "type": type_}]))
    assert message == (
        f"column {name} ({type_}) is named like a secret; store a hash or ciphertext and say so in its name "
        f"(`{name}_hash`, `encrypted_{name}`) with a policy tag on it, attach a policy tag (policyTags.names) or "
        "data policies (dataPolicies), or, if it holds no secret, write [not-a-secret] in its description"
    )


# The misses the issue probed: each named like a secret, each must fail.
@pytest.mark.parametrize(
    "name",
    [
        "service_account_key",
        "ssh_key",
        "hmac_key",
        "credentials_json",
        "client_secret_json",
        "password_plain",
        "db_pass",
        "DBPassword",
        "APIToken",
        "SSHKey",
        "password1",
        "api_key_v2",
        "private_key_bytes",
        "jwt",
        "connection_string",
    ],
)
def test_secret_names_in_any_spelling_fail(name: str) -> None:
    assert check("bigquery-secret-columns-protected", TABLE, table([{"name": name, "type": "STRING"}])) != []


def test_a_bytes_column_named_like_a_secret_fails_it_may_hold_plaintext() -> None:
    [message] = check("bigquery-secret-columns-protected", TABLE, table([{"name": "password", "type": "BYTES"}]))
    assert message.startswith("column password (BYTES) is named like a secret")


# The false alarms the issue probed: each must pass.
@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("next_page_token", "Cursor of the next page."),
        ("idempotency_token", "Client-chosen key that makes a retry safe."),
        ("continuation_token", "Where the listing resumes."),
        ("secret_manager_secret", "Name of the Secret Manager secret."),
        ("encryption_key", "Cloud KMS key name: projects/p/locations/us/keyRings/r/cryptoKeys/k."),
    ],
)
def test_names_that_only_point_at_a_secret_pass(name: str, description: str) -> None:
    column = {"name": name, "type": "STRING", "description": description}
    assert check("bigquery-secret-columns-protected", TABLE, table([column])) == []


def test_an_explicit_exemption_in_the_description_or_a_table_label() -> None:
    rule = "bigquery-secret-columns-protected"
    plain = {"name": "session_token", "type": "STRING", "description": "Opaque id of the session."}
    assert check(rule, TABLE, table([plain])) != []
    marked = plain | {"description": "Opaque id of the session, not a credential. [not-a-secret]"}
    assert check(rule, TABLE, table([marked])) == []
    assert check(rule, TABLE, table([plain], labels={"not-a-secret-session_token": "reviewed"})) == []
    assert check(rule, TABLE, table([plain], labels={"not-a-secret-other": "reviewed"})) != []


def test_an_encryption_key_column_without_a_kms_name_description_still_fails() -> None:
    column = {"name": "encryption_key", "type": "STRING", "description": "The AES key."}
    assert check("bigquery-secret-columns-protected", TABLE, table([column])) != []


def test_nested_secret_columns_are_found_by_path() -> None:
    schema = [{"name": "auth", "type": "RECORD", "fields": [{"name": "access_token", "type": "STRING"}]}]
    [message] = check("bigquery-secret-columns-protected", TABLE, table(schema))
    assert message.startswith("column auth.access_token (STRING) is named like a secret")


@pytest.mark.parametrize(
    "column",
    [
        {"name": "api_key_hash", "type": "BYTES", "policyTags": {"names": [TAG]}},  # a hash, tagged
        {"name": "encrypted_password", "type": "BYTES", "dataPolicies": [{"name": DATA_POLICY}]},  # masked ciphertext
        {"name": "password", "type": "STRING", "policyTags": {"names": [TAG]}},
        {"name": "hash_algorithm", "type": "STRING"},  # what it is: an algorithm's name
        {"name": "token_count", "type": "INT64"},  # what it is: a count
        {"name": "max_api_keys", "type": "INT64"},  # a number cannot hold key material
        {"name": "password_changed_at", "type": "TIMESTAMP"},
        {"name": "secret_name", "type": "STRING"},  # a Secret Manager reference, not the secret
        {"name": "partition_key", "type": "STRING"},  # `key` alone is not key material
        {"name": "token_hash", "type": "STRING", "policyTags": {"names": [TAG]}},
    ],
)
def test_columns_that_only_mention_a_secret_pass(column: dict[str, Any]) -> None:
    assert check("bigquery-secret-columns-protected", TABLE, table([column])) == []


# The stored form of a secret still needs column-level access control: a hash is what guesses are tested against,
# ciphertext what a stolen key opens.
@pytest.mark.parametrize("name", ["key_hash", "api_key_hash", "ciphertext", "wrapped_dek", "encrypted_password"])
def test_secret_material_without_a_policy_tag_or_data_policy_fails(name: str) -> None:
    [message] = check("bigquery-secret-columns-protected", TABLE, table([{"name": name, "type": "BYTES"}]))
    assert message == (
        f"column {name} (BYTES) holds a hash or ciphertext of a secret; attach a policy tag (policyTags.names) or "
        "data policies (dataPolicies), so that only the services that need it read it, or, if it protects no "
        "secret, write [not-a-secret] in its description"
    )


def test_secret_material_of_a_table_whose_data_policies_governance_attaches_passes() -> None:
    # The program's inputs under column_masking: governance (infra/model/declared.py table_args).
    props = table([{"name": "key_hash", "type": "BYTES"}], ignoreSchemaChanges=["dataPolicies"])
    assert check("bigquery-secret-columns-protected", TABLE, props) == []


@pytest.mark.parametrize("root", [REPO_ROOT, FIXTURE_ROOT], ids=["repository", "fixture"])
def test_the_real_schemas_have_no_unprotected_secret_columns(root: Path) -> None:
    """The policy pack would stop the preview. In the fixture: key_hash, ciphertext, wrapped_dek are
    BYTES; key_prefix, key_id, kms_key_name, credential_id, credential_type and max_cloud_credentials
    only describe or point at secrets."""
    names = set()
    for schema_file in sorted((root / "schemas").glob("*/*.json")):
        schema = json.loads(schema_file.read_text())
        names |= {column["name"] for column in schema}
        assert check("bigquery-secret-columns-protected", TABLE, table(schema)) == [], schema_file.name
    assert names
    if root == FIXTURE_ROOT:
        assert {"key_hash", "key_prefix", "ciphertext", "wrapped_dek", "kms_key_name", "credential_id"} <= names


# ---------------------------------------------------------------- partition retention


def test_time_partitioned_tables_declare_retention() -> None:
    rule = "bigquery-partition-retention-declared"
    expiring = {"type": "DAY", "field": "d", "expirationMs": 90 * 86_400_000.0}  # the engine's numbers are floats
    assert check(rule, TABLE, table(timePartitioning=expiring)) == []
    forever = table(timePartitioning={"type": "DAY", "field": "d"}, labels={"retention": "forever"})
    assert check(rule, TABLE, forever) == []
    assert check(rule, TABLE, table()) == []  # not partitioned
    assert check(rule, TABLE, table(rangePartitioning={"field": "n"})) == []
    [message] = check(rule, TABLE, table(timePartitioning={"type": "DAY", "field": "d"}))
    assert "no partition expiration and no retention=forever label" in message
    assert check(rule, TABLE, table(timePartitioning={"type": "DAY", "expirationMs": 0})) != []
    [message] = check(rule, TABLE, table(timePartitioning={"type": "DAY", "field": "d", "expirationMs": 1}))
    assert message.startswith("partition expiration 1 ms is under a day")
    assert check(rule, TABLE, table(timePartitioning={"type": "DAY", "expirationMs": 86_400_000})) == []


# ---------------------------------------------------------------- the real program under mocks


def test_prod_passes_every_policy(planned: Plan) -> None:
    assert violations(planned("prod")) == {}


def test_prod_without_cmek_fails_the_cmek_policies() -> None:
    values, secret_keys = read_stack_file(FIXTURE_ROOT, "prod")
    del values["tenant-bigquery:kmsKeyName"]
    result = run_program("prod", values, lambda: run(FIXTURE_ROOT), secret_keys)
    found = violations(result)
    assert {rule for rule, _ in found} == {"bigquery-dataset-default-cmek", "bigquery-table-cmek"}
    assert len([name for rule, name in found if rule == "bigquery-table-cmek"]) == 9


LOWERED_IN_DEV = {"bigquery-dataset-default-cmek", "bigquery-table-cmek", "bigquery-table-deletion-protection"}
# Advisory in dev though dev meets it (a window is declared per dataset, so dev has prod's): only prod refuses it.
ONLY_PROD_REFUSES = {"bigquery-dataset-time-travel-maximum"}


def test_dev_violations_are_only_what_dev_lowers_to_advisory(planned: Plan) -> None:
    """Dev omits CMEK and deletion protection on purpose: its policy config warns about exactly those."""
    config = json.loads((POLICY_CONFIG / "dev.json").read_text())
    found = {rule for rule, _ in violations(planned("dev"))}
    assert found == LOWERED_IN_DEV
    advisory = LOWERED_IN_DEV | ONLY_PROD_REFUSES
    for rule in RULE_NAMES:
        assert config.get(rule, config["all"]) == ("advisory" if rule in advisory else "mandatory"), rule


def set_partitioning(root: Path, table_id: str, partitioning: str) -> None:
    declaration = root / "stacks" / "tenants.yaml"
    lines = declaration.read_text().splitlines()
    at = lines.index(f"  {table_id}:")
    index = next(i for i in range(at, len(lines)) if lines[i].startswith("    partitioning:"))
    lines[index] = f"    partitioning: {partitioning}"
    declaration.write_text("\n".join(lines) + "\n")


def test_keep_forever_reaches_the_policy_as_a_label(repo_copy: Path) -> None:
    set_partitioning(repo_copy, "tenant_usage_quotas", "{field: usage_date, type: DAY, keep_forever: true}")
    inputs = next(
        r.inputs for r in resources_of(run_stack(repo_copy, "prod"), TABLE) if r.name.endswith("usage_quotas")
    )
    assert inputs["labels"]["retention"] == "forever"
    assert "expirationMs" not in inputs["timePartitioning"]
    assert check("bigquery-partition-retention-declared", TABLE, dict(inputs)) == []


def test_partitions_kept_without_saying_so_fail(planned_fixture: Plan) -> None:
    """`validate` refuses such a declaration already; the policy also guards resources made elsewhere."""
    result = copy.deepcopy(planned_fixture("prod"))
    quotas = next(r for r in resources_of(result, TABLE) if r.name == "tenants-tenant_usage_quotas")
    del quotas.inputs["timePartitioning"]["expirationMs"]
    found = violations(result)
    assert list(found) == [("bigquery-partition-retention-declared", "tenants-tenant_usage_quotas")]


def test_approved_data_loss_is_the_one_prod_table_without_deletion_protection(repo_copy: Path) -> None:
    path = repo_copy / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["tenant-bigquery:approveDataLoss"] = ["tenants.tenant_profiles"]
    path.write_text(yaml.safe_dump(document))
    result = run_stack(repo_copy, "prod")
    profiles = next(r.inputs for r in resources_of(result, TABLE) if r.name == "tenants-tenant_profiles")
    assert profiles["deletionProtection"] is False
    assert profiles["labels"]["data-loss"] == "approved"
    assert violations(result) == {}


# ---------------------------------------------------------------- the pack around the validators


def test_rules_have_unique_policy_names_and_say_what_they_enforce() -> None:
    assert len(RULE_NAMES) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", rule.name), rule.name
        assert rule.description.endswith(".")


@pytest.mark.parametrize("stack_file", sorted(REPO_ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_has_a_valid_policy_config(stack_file: Path) -> None:
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    config: Mapping[str, str] = json.loads((POLICY_CONFIG / f"{stack}.json").read_text())
    assert set(config) <= RULE_NAMES | {"all"}
    assert set(config.values()) <= LEVELS


def test_prod_enforces_every_policy() -> None:
    assert json.loads((POLICY_CONFIG / "prod.json").read_text()) == {"all": "mandatory"}


def test_validators_import_neither_pulumi_nor_google() -> None:
    code = (
        "import sys, policies.validators; print(sorted(m for m in sys.modules if m.startswith(('pulumi', 'google'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_pack_pins_its_own_requirements() -> None:
    """Exact pins, and the same pulumi as the program, so the pack and the program agree on the engine protocol."""

    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if line and not line.startswith("-r"))

    pack = pins(REPO_ROOT / "policies" / "requirements.txt")
    assert {"pulumi-policy", "pulumi"} <= set(pack)
    assert pack["pulumi"] == pins(REPO_ROOT / "requirements.txt")["pulumi"]
    pack_project = yaml.safe_load((REPO_ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack_project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_secret_heuristic_reads_the_last_word() -> None:
    assert validators.names_a_secret("signing_key")
    assert validators.names_a_secret("password_plaintext")
    assert not validators.names_a_secret("credential_type")
    assert not validators.names_a_secret("key_prefix")
