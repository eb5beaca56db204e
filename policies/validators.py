"""The guard rails as plain functions: resource type + camelCase inputs -> violation messages.

Pure Python with no imports beyond the standard library, so pytest calls these directly; the pack's
entry point (`__main__.py`) wraps each rule as a CrossGuard policy. Inputs arrive as the engine sees
them (`python -m infra.cli plan --format json`, pulumi-policy's `args.props`): pulumi-policy hands
read-only Mapping/Sequence proxies, not dicts and lists, so only the abstract types are checked here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DATASET = "gcp:bigquery/dataset:Dataset"
TABLE = "gcp:bigquery/table:Table"
DATASET_ACCESS = "gcp:bigquery/datasetAccess:DatasetAccess"
# Dataset and table IAM resources: one member, a list of members, or a whole policy document.
IAM_MEMBER = {"gcp:bigquery/datasetIamMember:DatasetIamMember", "gcp:bigquery/iamMember:IamMember"}
IAM_BINDING = {"gcp:bigquery/datasetIamBinding:DatasetIamBinding", "gcp:bigquery/iamBinding:IamBinding"}
IAM_POLICY = {"gcp:bigquery/datasetIamPolicy:DatasetIamPolicy", "gcp:bigquery/iamPolicy:IamPolicy"}

PUBLIC_PRINCIPALS = {"allusers", "allauthenticatedusers"}
KMS_KEY = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/keyRings/[^/\s]+/cryptoKeys/[^/\s]+\Z")
# The table label resources.py sets for `keep_forever: true`, and the one for an approved data loss.
RETENTION_FOREVER = ("retention", "forever")
DATA_LOSS_APPROVED = ("data-loss", "approved")

# A column holds a secret when its last word (what it is: `credential_id` is an id, `key_hash` a hash)
# names one; `key` counts only after a word that makes it key material (`api_key`, not `partition_key`).
SECRET_WORDS = {"secret", "password", "passwd", "pwd", "passphrase", "token", "credential", "apikey"}
KEY_MATERIAL = {"api", "private", "secret", "access", "signing", "encryption", "client", "master", "session"}
# Trailing words that say how the value is written, not what it is: `api_key_value` is still an API key.
ENCODING_WORDS = {"value", "plaintext", "raw", "text", "pem", "b64", "base64"}
# Only these types can carry key material as text; a number, time or bool named `max_api_keys` cannot.
TEXT_TYPES = {"STRING", "JSON"}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[str, Mapping[str, Any]], list[str]]


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_public(member: Any) -> bool:
    """allUsers, allAuthenticatedUsers, with or without a prefix such as `specialGroup:`."""
    return isinstance(member, str) and member.rpartition(":")[2].lower() in PUBLIC_PRINCIPALS


def _granted_members(resource_type: str, props: Mapping[str, Any]) -> list[Any]:
    member_fields = ("specialGroup", "iamMember")
    if resource_type == DATASET:
        return [_mapping(entry).get(field) for entry in props.get("accesses") or () for field in member_fields]
    if resource_type == DATASET_ACCESS:
        return [props.get(field) for field in member_fields]
    if resource_type in IAM_MEMBER:
        return [props.get("member")]
    if resource_type in IAM_BINDING:
        return list(props.get("members") or ())
    if resource_type in IAM_POLICY:
        try:
            policy = json.loads(props.get("policyData") or "{}")
        except json.JSONDecodeError:
            return []
        return [member for binding in policy.get("bindings", []) for member in binding.get("members", [])]
    return []


def no_public_access(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    return [
        f"{member} is granted access: anyone on the internet or with a Google account would read the data; "
        "grant a group, user or service account instead"
        for member in _granted_members(resource_type, props)
        if _is_public(member)
    ]


def _key_problem(configuration: Any, what: str, fix: str) -> list[str]:
    key = _mapping(configuration).get("kmsKeyName")
    if not key:
        return [f"{what} has no customer-managed key; {fix}"]
    if not isinstance(key, str) or not KMS_KEY.match(key):
        return [f"{what} key {key!r} is not projects/P/locations/L/keyRings/R/cryptoKeys/K"]
    return []


def dataset_default_cmek(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != DATASET:
        return []
    return _key_problem(
        props.get("defaultEncryptionConfiguration"),
        "the dataset",
        "set defaultEncryptionConfiguration.kmsKeyName (tenant-bigquery:kmsKeyName)",
    )


def table_cmek(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != TABLE:
        return []
    return _key_problem(
        props.get("encryptionConfiguration"),
        "the table",
        "set encryptionConfiguration.kmsKeyName (tenant-bigquery:kmsKeyName)",
    )


def _has_label(props: Mapping[str, Any], label: tuple[str, str]) -> bool:
    key, value = label
    return _mapping(props.get("labels")).get(key) == value


def table_deletion_protection(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    # The provider's default is true, so only an explicit false is a violation.
    if resource_type != TABLE or props.get("deletionProtection") is not False:
        return []
    if _has_label(props, DATA_LOSS_APPROVED):
        return []
    return [
        "deletionProtection is false; set tenant-bigquery:deletionProtection: true, or name the table in "
        "tenant-bigquery:approveDataLoss for a reviewed destructive change"
    ]


def _words(name: str) -> list[str]:
    """snake_case and camelCase names as lower-case words: `clientSecret` and `client_secret` alike."""
    return re.findall(r"[a-z0-9]+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower())


def names_a_secret(name: str) -> bool:
    words = _words(name)
    while len(words) > 1 and words[-1] in ENCODING_WORDS:
        words.pop()
    if not words:
        return False
    last = words[-1]
    singular = last[:-1] if last.endswith("s") else last
    if last in SECRET_WORDS or singular in SECRET_WORDS:
        return True
    return singular == "key" and len(words) > 1 and words[-2] in KEY_MATERIAL


def _columns(fields: Any, prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for column in fields if _is_list(fields) else ():
        column = _mapping(column)
        path = f"{prefix}{column.get('name')}"
        yield path, column
        yield from _columns(column.get("fields"), f"{path}.")


def secret_columns_protected(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != TABLE or not isinstance(props.get("schema"), str):
        return []
    try:
        schema = json.loads(props["schema"])
    except json.JSONDecodeError:
        return []
    violations = []
    for path, column in _columns(schema):
        type_ = str(column.get("type", "")).upper()
        tagged = bool(_mapping(column.get("policyTags")).get("names"))
        if type_ in TEXT_TYPES and not tagged and names_a_secret(str(column.get("name", ""))):
            violations.append(
                f"column {path} ({type_}) is named like a secret; store a hash or ciphertext as BYTES, "
                "or attach a policy tag (policyTags.names) to restrict who reads it"
            )
    return violations


def partition_retention_declared(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != TABLE or "timePartitioning" not in props:
        return []
    expiration = _mapping(props.get("timePartitioning")).get("expirationMs")
    if isinstance(expiration, int | float) and not isinstance(expiration, bool) and expiration > 0:
        return []
    if _has_label(props, RETENTION_FOREVER):
        return []
    return [
        "time-partitioned table with no partition expiration and no retention=forever label; set "
        "partitioning.expiration_days, or keep_forever: true to keep every partition on purpose"
    ]


RULES = (
    Rule(
        "bigquery-no-public-access",
        "No dataset or table is readable by allUsers or allAuthenticatedUsers (CIS GCP 7.1; CKV_GCP_15, CKV_GCP_100).",
        no_public_access,
    ),
    Rule(
        "bigquery-dataset-default-cmek",
        "Every dataset has a default customer-managed encryption key (CIS GCP 7.3; CKV_GCP_81).",
        dataset_default_cmek,
    ),
    Rule(
        "bigquery-table-cmek",
        "Every table is encrypted with a customer-managed key (CIS GCP 7.2; CKV_GCP_80).",
        table_cmek,
    ),
    Rule(
        "bigquery-table-deletion-protection",
        "Every table has deletion protection, unless its data loss was approved (CKV_GCP_121).",
        table_deletion_protection,
    ),
    Rule(
        "bigquery-secret-columns-protected",
        "A column named like a secret (API key, secret, token, password, credential) is BYTES or has a policy tag.",
        secret_columns_protected,
    ),
    Rule(
        "bigquery-partition-retention-declared",
        "A time-partitioned table sets a partition expiration or says it keeps data (label retention=forever).",
        partition_retention_declared,
    ),
)
