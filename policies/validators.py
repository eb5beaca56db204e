"""The guard rails as plain functions: resource type + camelCase inputs -> violation messages.

Pure Python with no imports beyond the standard library and infra/contract.py (what the program and
the pack agree on), so pytest calls these directly; the pack's
entry point (`__main__.py`) wraps each rule as a CrossGuard policy. Inputs arrive as the engine sees
them (`python -m infra.cli plan --format json`, pulumi-policy's `args.props`): pulumi-policy hands
read-only Mapping/Sequence proxies, not dicts and lists, so only the abstract types are checked here.
Resource type tokens are pulumi-gcp's (`gcp:<module>/<camelName>:<Name>`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.contract import DATA_LOSS_APPROVED, KMS_KEY, PUBLIC_PRINCIPALS, RETENTION_FOREVER
from infra.contract import DATASET_TYPE as DATASET
from infra.contract import TABLE_TYPE as TABLE

DATASET_ACCESS = "gcp:bigquery/datasetAccess:DatasetAccess"
JOB = "gcp:bigquery/job:Job"
TRANSFER_CONFIG = "gcp:bigquery/dataTransferConfig:DataTransferConfig"
# IAM resources that can open BigQuery data: datasets, tables, routines, Analytics Hub exchanges and
# listings. Each comes as one member, a list of members, or a whole policy document.
_IAM_RESOURCES = (
    ("bigquery", "datasetIam"),
    ("bigquery", "iam"),
    ("bigquery", "routineIam"),
    ("bigqueryanalyticshub", "dataExchangeIam"),
    ("bigqueryanalyticshub", "listingIam"),
)


def _iam_types(kind: str) -> set[str]:
    return {f"gcp:{module}/{name}{kind}:{name[0].upper()}{name[1:]}{kind}" for module, name in _IAM_RESOURCES}


IAM_MEMBER = _iam_types("Member")
IAM_BINDING = _iam_types("Binding")
IAM_POLICY = _iam_types("Policy")

# Mail providers anyone can sign up with: `domain:gmail.com` is everyone with a Gmail address.
CONSUMER_DOMAINS = {
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "gmx.de", "mail.com", "yandex.com", "yandex.ru", "qq.com", "163.com",
}  # fmt: skip
# A partition expiration shorter than a day deletes data about as fast as it arrives.
MIN_PARTITION_EXPIRATION_MS = 86_400_000

# The secret-column rule's word lists (README "Policy pack"). A column holds a secret when its last word
# (what it is: `credential_id` is an id, `key_hash` a hash) is one of SECRET_WORDS, or the last two are a
# SECRET_PHRASES entry; `key` counts only after a word that makes it key material (`api_key`, not
# `partition_key`); `token` not after a word that makes it a cursor (`next_page_token`).
SECRET_WORDS = {
    "secret", "password", "passwd", "pwd", "pass", "passphrase", "token", "credential", "apikey", "jwt", "dsn",
}  # fmt: skip
SECRET_PHRASES = {("connection", "string"), ("conn", "string"), ("connection", "uri"), ("database", "url")}
KEY_MATERIAL = {
    "api", "private", "secret", "access", "signing", "encryption", "client", "master", "session", "ssh", "hmac",
    "account", "service", "storage", "shared", "symmetric", "aes", "rsa", "gpg", "pgp",
}  # fmt: skip
NOT_SECRET_TOKENS = {"page", "continuation", "idempotency", "pagination", "cursor", "resume", "sync", "next"}
# Trailing words that say how the value is written, not what it is: `api_key_value` is still an API key;
# version suffixes (`api_key_v2`, `password1`) too.
ENCODING_WORDS = {"value", "plaintext", "plain", "raw", "text", "pem", "b64", "base64", "json", "bytes", "str", "hex"}
_VERSION = re.compile(r"v?\d+\Z")
# A word anywhere in the name that says the value is protected: `encrypted_password`, `wrapped_private_key`.
PROTECTED_WORDS = {"hash", "hashed", "digest", "encrypted", "ciphertext", "wrapped", "sealed", "enc"}
# The stored form of a secret: named as a hash, a digest or ciphertext, or as key material a protected word wraps
# (`wrapped_dek`, `encrypted_password`). It still needs a policy tag or data policies: a hash is what an attacker
# tests guesses against, ciphertext what a stolen key opens.
MATERIAL_WORDS = {"hash", "digest", "ciphertext"}
WRAPPED_MATERIAL = {"dek", "kek", "key"}
# Only these types can carry key material; a number, time or bool named `max_api_keys` cannot.
SECRET_TYPES = {"STRING", "JSON", "BYTES"}
# An explicit, reviewed exemption: this text in the column's description, or the table label
# `not-a-secret-<column, lower case>` (any value).
EXEMPTION_MARKER = "[not-a-secret]"
EXEMPTION_LABEL_PREFIX = "not-a-secret-"
# A description that says the column holds a Cloud KMS key's name, not key material.
_KMS_KEY_NAME = re.compile(r"cryptoKeys/|\bkms key (resource )?name\b|\bcloud kms\b.*\bname\b", re.IGNORECASE)


@dataclass(frozen=True)
class PolicyRule:
    name: str
    description: str
    check: Callable[[str, Mapping[str, Any]], list[str]]


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _list(value: Any) -> list[Any]:
    return list(value) if _is_list(value) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_public(member: Any) -> bool:
    """allUsers, allAuthenticatedUsers, with or without a prefix such as `specialGroup:`."""
    return isinstance(member, str) and member.rpartition(":")[2].lower() in PUBLIC_PRINCIPALS


def _policy_members(policy_data: Any) -> list[Any]:
    try:
        policy = json.loads(policy_data) if isinstance(policy_data, str) else {}
    except json.JSONDecodeError:
        return []
    members: list[Any] = []
    for binding in _list(_mapping(policy).get("bindings")):
        members += _list(_mapping(binding).get("members"))
    return members


def _granted_members(resource_type: str, props: Mapping[str, Any]) -> list[Any]:
    member_fields = ("specialGroup", "iamMember")
    if resource_type == DATASET:
        return [_mapping(e).get(field) for e in _list(props.get("accesses")) for field in member_fields]
    if resource_type == DATASET_ACCESS:
        return [props.get(field) for field in member_fields]
    if resource_type in IAM_MEMBER:
        return [props.get("member")]
    if resource_type in IAM_BINDING:
        return _list(props.get("members"))
    if resource_type in IAM_POLICY:
        return _policy_members(props.get("policyData"))
    return []


def _granted_domains(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """`domain` ACL entries and `domain:` IAM members, lower case."""
    if resource_type == DATASET:
        domains = [_mapping(e).get("domain") for e in _list(props.get("accesses"))]
    elif resource_type == DATASET_ACCESS:
        domains = [props.get("domain")]
    else:
        domains = [m.partition(":")[2] for m in _granted_members(resource_type, props) if str(m).startswith("domain:")]
    return [d.lower() for d in domains if isinstance(d, str)]


def _authorized_entries(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Authorized views, datasets and routines: (kind, the project they live in)."""
    if resource_type == DATASET:
        entries = [_mapping(e) for e in _list(props.get("accesses"))]
    elif resource_type == DATASET_ACCESS:
        entries = [props]
    else:
        return []
    found = []
    for entry in entries:
        for kind in ("view", "routine"):
            if kind in entry and entry[kind] is not None:
                found.append((kind, _mapping(entry[kind]).get("projectId")))
        for kind in ("dataset", "authorizedDataset"):
            if kind in entry and entry[kind] is not None:
                found.append(("dataset", _mapping(_mapping(entry[kind]).get("dataset")).get("projectId")))
    return found


def no_public_access(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    violations = [
        f"{member} is granted access: anyone on the internet or with a Google account would read the data; "
        "grant a group, user or service account instead"
        for member in _granted_members(resource_type, props)
        if _is_public(member)
    ]
    violations += [
        f"domain {domain} is granted access: anyone can sign up there; grant your organization's domain, "
        "a group, user or service account instead"
        for domain in _granted_domains(resource_type, props)
        if domain in CONSUMER_DOMAINS
    ]
    # Whoever reads an authorized view, dataset or routine reads this data; this stack governs only its
    # own project's ACLs, so one in another project (or an unknown one) is a grant nobody here reviews.
    project = props.get("project")
    violations += [
        f"an authorized {kind} in project {other!r} can read this dataset, but its readers are not governed "
        f"here; authorize only views, datasets and routines of {project!r}"
        for kind, other in _authorized_entries(resource_type, props)
        if not isinstance(project, str) or other != project
    ]
    return violations


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
    """Every table BigQuery stores: declared tables, and those query, load and copy jobs or transfers write.

    Views and external tables hold no data in BigQuery, and a view cannot carry a key: they are skipped.
    """
    if resource_type == TABLE:
        if any(props.get(kind) is not None for kind in ("view", "materializedView", "externalDataConfiguration")):
            return []
        return _key_problem(
            props.get("encryptionConfiguration"),
            "the table",
            "set encryptionConfiguration.kmsKeyName (tenant-bigquery:kmsKeyName)",
        )
    if resource_type == JOB:
        problems = []
        for kind in ("query", "load", "copy"):
            spec = _mapping(props.get(kind))
            if spec.get("destinationTable") is not None:
                problems += _key_problem(
                    spec.get("destinationEncryptionConfiguration"),
                    f"the {kind} job's destination table",
                    f"set {kind}.destinationEncryptionConfiguration.kmsKeyName",
                )
        return problems
    if resource_type == TRANSFER_CONFIG:
        return _key_problem(
            props.get("encryptionConfiguration"),
            "the tables this transfer writes",
            "set encryptionConfiguration.kmsKeyName",
        )
    return []


def _has_label(props: Mapping[str, Any], label: tuple[str, str]) -> bool:
    key, value = label
    return _mapping(props.get("labels")).get(key) == value


def _positive_number(value: Any) -> bool:
    if isinstance(value, str):  # the provider takes int64 values as strings too
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def table_deletion_protection(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == DATASET:
        if _positive_number(props.get("defaultTableExpirationMs")):
            return [
                "defaultTableExpirationMs is set: BigQuery deletes every new table that long after its creation, "
                "whatever its deletion protection; remove tenant-bigquery:defaultTableExpirationDays"
            ]
        return []
    if resource_type != TABLE:
        return []
    violations = []
    if _positive_number(props.get("expirationTime")):
        violations.append(
            "expirationTime is set: BigQuery deletes the table and its rows at that time, whatever its "
            "deletion protection; remove the expiration"
        )
    # The provider's default is true, so only an explicit false is a violation; a view holds no rows to lose.
    is_view = props.get("view") is not None
    if props.get("deletionProtection") is False and not is_view and not _has_label(props, DATA_LOSS_APPROVED):
        violations.append(
            "deletionProtection is false; set tenant-bigquery:deletionProtection: true, or name the table in "
            "tenant-bigquery:approveDataLoss for a reviewed destructive change"
        )
    return violations


# BigQuery's longest time-travel window (docs: time travel; REST Dataset.maxTimeTravelHours, 168 when unset).
MAX_TIME_TRAVEL_HOURS = 168


def dataset_time_travel_maximum(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The README's recovery promises rest on the window: a dataset keeps the longest BigQuery offers."""
    if resource_type != DATASET or props.get("maxTimeTravelHours") is None:
        return []
    try:
        hours = int(props["maxTimeTravelHours"])  # a string in the provider's schema
    except (TypeError, ValueError):
        return [f"maxTimeTravelHours {props['maxTimeTravelHours']!r} is not a number of hours"]
    if hours < MAX_TIME_TRAVEL_HOURS:
        return [
            f"the time-travel window is {hours} h: changed or deleted data can be recovered only that far back; "
            f"declare max_time_travel_hours: {MAX_TIME_TRAVEL_HOURS} (or leave it out) in stacks/<dataset>.yaml"
        ]
    return []


def _words(name: str) -> list[str]:
    """A column name as lower-case words: snake_case, camelCase, acronyms and digits alike
    (`DBPassword` -> db password, `APIToken` -> api token, `password1` -> password 1)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])", "_", name)
    return re.findall(r"[a-z0-9]+", spaced.lower())


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def names_a_secret(name: str, description: str = "") -> bool:
    words = _words(name)
    while len(words) > 1 and (words[-1] in ENCODING_WORDS or _VERSION.match(words[-1]) or words[-1] == "v"):
        words.pop()
    if not words or any(word in PROTECTED_WORDS for word in words):
        return False
    last = _singular(words[-1])
    before = words[-2] if len(words) > 1 else ""
    if (before, last) in SECRET_PHRASES or (before, words[-1]) in SECRET_PHRASES:
        return True
    if last == "secret" and "manager" in words:
        return False  # `secret_manager_secret`: the name of a Secret Manager secret
    if last == "token":
        return before not in NOT_SECRET_TOKENS
    if last in SECRET_WORDS:
        return True
    if last == "key" and before in KEY_MATERIAL:
        return not _KMS_KEY_NAME.search(description)  # `encryption_key` holding a KMS key's name
    return False


def holds_secret_material(name: str) -> bool:
    """A hash or ciphertext of a secret, by its name (README "Policy pack")."""
    words = _words(name)
    while len(words) > 1 and (words[-1] in ENCODING_WORDS or _VERSION.match(words[-1]) or words[-1] == "v"):
        words.pop()
    if not words or not any(word in PROTECTED_WORDS for word in words):
        return False
    last = _singular(words[-1])
    return last in MATERIAL_WORDS or last in WRAPPED_MATERIAL or last in SECRET_WORDS


def _access_controlled(column: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    """A policy tag or data policies on the column; or the governance team attaches data policies to the table's
    columns (ignoreSchemaChanges lists dataPolicies: the provider keeps what they attach)."""
    if _mapping(column.get("policyTags")).get("names") or _list(column.get("dataPolicies")):
        return True
    return "dataPolicies" in _list(props.get("ignoreSchemaChanges"))


def _columns(fields: Any, prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for column in fields if _is_list(fields) else ():
        column = _mapping(column)
        path = f"{prefix}{column.get('name')}"
        yield path, column
        yield from _columns(column.get("fields"), f"{path}.")


def _exempt(column: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    if EXEMPTION_MARKER in str(column.get("description") or ""):
        return True
    label = f"{EXEMPTION_LABEL_PREFIX}{str(column.get('name', '')).lower()}"
    return label in _mapping(props.get("labels"))


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
        name, description = str(column.get("name", "")), str(column.get("description") or "")
        if type_ not in SECRET_TYPES or _access_controlled(column, props) or _exempt(column, props):
            continue
        if names_a_secret(name, description):
            violations.append(
                f"column {path} ({type_}) is named like a secret; store a hash or ciphertext and say so in its name "
                f"(`{name}_hash`, `encrypted_{name}`) with a policy tag on it, attach a policy tag (policyTags.names) "
                f"or data policies (dataPolicies), or, if it holds no secret, write {EXEMPTION_MARKER} in its "
                "description"
            )
        elif holds_secret_material(name):
            violations.append(
                f"column {path} ({type_}) holds a hash or ciphertext of a secret; attach a policy tag "
                "(policyTags.names) or data policies (dataPolicies), so that only the services that need it read "
                f"it, or, if it protects no secret, write {EXEMPTION_MARKER} in its description"
            )
    return violations


def partition_retention_declared(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != TABLE or "timePartitioning" not in props:
        return []
    expiration = _mapping(props.get("timePartitioning")).get("expirationMs")
    if _positive_number(expiration):
        if float(str(expiration)) >= MIN_PARTITION_EXPIRATION_MS:
            return []
        return [
            f"partition expiration {expiration} ms is under a day: partitions are deleted about as fast as "
            "they are written; set partitioning.expiration_days to 1 or more"
        ]
    if _has_label(props, RETENTION_FOREVER):
        return []
    return [
        "time-partitioned table with no partition expiration and no retention=forever label; set "
        "partitioning.expiration_days, or keep_forever: true to keep every partition on purpose"
    ]


RULES = (
    PolicyRule(
        "bigquery-no-public-access",
        "No dataset, table, routine or Analytics Hub listing is open to allUsers, allAuthenticatedUsers, a consumer "
        "domain or another project's authorized views (CIS GCP 7.1; CKV_GCP_15, CKV_GCP_100).",
        no_public_access,
    ),
    PolicyRule(
        "bigquery-dataset-default-cmek",
        "Every dataset has a default customer-managed encryption key (CIS GCP 7.3; CKV_GCP_81).",
        dataset_default_cmek,
    ),
    PolicyRule(
        "bigquery-table-cmek",
        "Every stored table, declared or written by a job or transfer, uses a customer-managed key "
        "(CIS GCP 7.2; CKV_GCP_80).",
        table_cmek,
    ),
    PolicyRule(
        "bigquery-table-deletion-protection",
        "Every table has deletion protection, unless its data loss was approved, and no expiration (CKV_GCP_121).",
        table_deletion_protection,
    ),
    PolicyRule(
        "bigquery-dataset-time-travel-maximum",
        "Every dataset keeps BigQuery's longest time-travel window, 168 hours, so deleted or changed data stays "
        "recoverable for 7 days.",
        dataset_time_travel_maximum,
    ),
    PolicyRule(
        "bigquery-secret-columns-protected",
        "A column named like a secret, or holding a secret's hash or ciphertext, has a policy tag or data policies "
        "(or its table's data policies are the governance team's), or is exempted explicitly.",
        secret_columns_protected,
    ),
    PolicyRule(
        "bigquery-partition-retention-declared",
        "A time-partitioned table sets a partition expiration of a day or more, or keeps data "
        "(label retention=forever).",
        partition_retention_declared,
    ),
)
