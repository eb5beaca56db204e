"""The one place where stack config is read and typed.

Values come either from the Pulumi runtime (strings; structured values JSON-encoded) or from
`Pulumi.<stack>.yaml` and `Pulumi.yaml` read directly by the offline CLI and merged as the engine merges
them (native YAML values). Both go through `parse_settings`, so `plan` and `pulumi up` see the same typed
settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from infra.contract import KMS_KEY, PUBLIC_PRINCIPALS
from infra.model.documents import display_path, load_yaml
from infra.model.problems import DeclarationError, MissingStackError, Problem, struct_problems
from infra.model.rules import (
    DATA_POLICY_NAME,
    POLICY_TAG_NAME,
    SHORT_NAME,
    check_dataset_id,
    check_expiration_days,
    check_labels,
    check_location,
    check_project_id,
)
from infra.model.schema import short_names

# For its type only: the catalog imports the table properties, which import this module.
if TYPE_CHECKING:
    from infra.model.catalog import Catalog

PROJECT = "tenant-bigquery"
SECRET_MASK = "[secret]"  # noqa: S105 - the placeholder shown instead of a secret
# BigQuery's legacy dataset roles: the API hands back these names even when given roles/bigquery.data*,
# so any other spelling would show a perpetual diff.
ACCESS_ROLES = {"readers": "READER", "writers": "WRITER", "owners": "OWNER"}
MEMBER_TYPES = ("group", "user", "serviceAccount")
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+\Z")


class DatasetAccess(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Who may use the datasets; each member is group:EMAIL, user:EMAIL or serviceAccount:EMAIL."""

    readers: list[str] = []
    writers: list[str] = []
    owners: list[str] = []


@dataclass(frozen=True)
class Grant:
    """One dataset ACL entry: a legacy role for one member."""

    role: str
    member_type: str
    email: str


# onDemandPricePerTib's default: the on-demand price per TiB in the US multi-region (infra/analysis/cost.py).
DEFAULT_PRICE_PER_TIB = 6.25


class StackSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename="camel"):
    """Keys of the `tenant-bigquery:` namespace (camelCase in config); each is documented in Pulumi.yaml."""

    location: str = "US"
    dataset_suffix: str = ""
    labels: dict[str, str] = {}
    deletion_protection: bool = True
    protect: bool = True
    delete_contents_on_destroy: bool = False
    access: DatasetAccess | None = None
    kms_key_name: str | None = None
    default_table_expiration_days: int | None = None
    recreate: dict[str, str] = {}
    recreate_on_schema_change: bool = False
    approve_data_loss: list[str] = []
    adopt_existing: bool = False
    on_demand_price_per_tib: float = DEFAULT_PRICE_PER_TIB
    migration_max_bytes: int | None = None
    # Short name (schema files) -> this stack's resource name; infra/model/schema.py resolve_names.
    policy_tags: dict[str, str] = {}
    data_policies: dict[str, str] = {}


# Every key the program reads: gcp:project and each key of the project's own namespace.
KNOWN_CONFIG_KEYS = ("gcp:project", *(f"{PROJECT}:{f.encode_name}" for f in msgspec.structs.fields(StackSettings)))


@dataclass(frozen=True)
class Settings:
    stack: str
    project: str
    stack_settings: StackSettings

    def dataset_id(self, declared: str) -> str:
        return declared + self.stack_settings.dataset_suffix

    def grants(self) -> tuple[Grant, ...]:
        """The configured access members (validated by parse_settings), emails in lower case as BigQuery keeps them."""
        access = self.stack_settings.access
        if access is None:
            return ()
        return tuple(
            Grant(role, member_type, email.lower())
            for key, role in ACCESS_ROLES.items()
            for member_type, _, email in (member.partition(":") for member in getattr(access, key))
        )

    def recreate_token(self, dataset: str, table: str) -> str | None:
        """The forced-recreation token of a table: its own entry, else `dataset.*`, else `*`."""
        tokens = self.stack_settings.recreate
        for key in (f"{dataset}.{table}", f"{dataset}.*", "*"):
            if key in tokens:
                return f"{key}={tokens[key]}"
        return None

    def approves_data_loss(self, table_key: str) -> bool:
        """Named in approveDataLoss: its protection is lifted so a reviewed destructive change can apply."""
        return table_key in self.stack_settings.approve_data_loss


_STRING_KEYS = {"location", "datasetSuffix", "kmsKeyName"}


def _decode(key: str, value: Any) -> Any:
    """The runtime hands structured config as JSON strings; YAML hands native values."""
    if isinstance(value, str) and key not in _STRING_KEYS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_settings(
    stack: str,
    values: Mapping[str, Any],
    source: str,
    catalog: Catalog | None = None,
    origins: Mapping[str, str] | None = None,
) -> Settings:
    """Type the config of one stack; raise DeclarationError naming every bad key, in the file it came from
    (`origins`: key -> file, for keys the stack file does not set)."""
    prefix = f"{PROJECT}:"
    problems: list[Problem] = []
    project = values.get("gcp:project")
    if not isinstance(project, str) or not project:
        problems.append(
            Problem(
                source, "config.gcp:project", "is required; set the GCP project id (pulumi config set gcp:project ID)"
            )
        )
    elif (message := check_project_id(project)) is not None:
        problems.append(Problem(source, "config.gcp:project", message))
    problems += _unknown_key_problems(values, source)
    own = {
        key[len(prefix) :]: _decode(key[len(prefix) :], value)
        for key, value in values.items()
        if key in KNOWN_CONFIG_KEYS and key.startswith(prefix)
    }
    stack_settings = StackSettings()
    typed = True
    try:
        stack_settings = msgspec.convert(own, StackSettings)
    except msgspec.ValidationError:
        typed = False
        problems += struct_problems(own, StackSettings, source, prefix=f"config.{prefix}")
    location = check_location(stack_settings.location)
    if location is None:
        problems.append(
            Problem(
                source,
                f"config.{prefix}location",
                f"{stack_settings.location!r} is not a BigQuery location; use US, EU or a region such as "
                "us-central1 (BigQuery docs: BigQuery locations)",
            )
        )
    else:
        stack_settings = msgspec.structs.replace(stack_settings, location=location)
    problems += _suffix_problems(stack_settings.dataset_suffix, catalog, source, prefix)
    days = stack_settings.default_table_expiration_days
    if days is not None and (message := check_expiration_days(days)) is not None:
        problems.append(Problem(source, f"config.{prefix}defaultTableExpirationDays", message))
    if stack_settings.default_table_expiration_days is not None and stack_settings.protect:
        problems.append(
            Problem(
                source,
                f"config.{prefix}defaultTableExpirationDays",
                "BigQuery gives every table created in the dataset this expiration, the stack's own (re)created "
                "tables too, so a protected stack would lose them; remove it",
            )
        )
    if stack_settings.delete_contents_on_destroy and stack_settings.protect:
        problems.append(
            Problem(
                source,
                f"config.{prefix}deleteContentsOnDestroy",
                "a protected stack never deletes dataset contents on destroy; remove it or set protect: false",
            )
        )
    problems += [
        Problem(source, f"config.{prefix}labels" + (f".{key}" if key else ""), message)
        for key, message in check_labels(stack_settings.labels)
    ]
    problems += _access_problems(stack_settings.access, source, prefix)
    problems += _cost_problems(stack_settings, source, prefix)
    problems += _kms_key_problems(stack_settings, source, prefix)
    problems += _policy_name_problems(stack_settings, source, prefix)
    # Untyped config is the defaults: checked against the catalog, its mappings would read as missing.
    if catalog is not None and typed:
        problems += _check_table_references(stack_settings, catalog, source, prefix)
        problems += _short_name_problems(stack_settings, catalog, source, prefix)
        problems += _authorized_view_problems(stack_settings, catalog, source, prefix)
    if problems:
        raise DeclarationError([_in_origin(problem, origins or {}) for problem in problems])
    return Settings(stack=stack, project=str(project), stack_settings=stack_settings)


def _in_origin(problem: Problem, origins: Mapping[str, str]) -> Problem:
    key = problem.path.removeprefix("config.").split(".", 1)[0]
    return replace(problem, file=origins[key]) if key in origins else problem


# The default gcp provider reads every gcp: key of the stack as its own input (pulumi/pulumi
# pkg/resource/deploy/default_providers.go newRegisterDefaultProviderEvent: GetPackageConfig), so a
# gcp: key changes what the provider does to every resource, which the program's registrations (and so
# `diff --stack` and `verify`) never show. Only gcp:project is modelled: every resource names its
# project itself. The rest is refused, with the way to get what the key was meant for.
_LABELS = (
    "the provider would merge it into the labels of every dataset and table (terraform-provider-google "
    "tpgresource/labels.go setLabelsFields), which `diff --stack` and `verify` do not see"
)
_IDENTITY = (
    "the identity comes from the environment, so each job runs as its own (README, Delivery: credentials); "
    "remove it and use Application Default Credentials (gcloud auth application-default login, "
    "GOOGLE_APPLICATION_CREDENTIALS or workload identity)"
)
_GCP_KEY_HINTS = {
    "defaultLabels": f"{_LABELS}; put the labels in tenant-bigquery:labels",
    # pulumi-gcp's names for add_terraform_attribution_label and its strategy (provider/resources.go Config).
    "addPulumiAttributionLabel": f"{_LABELS}; remove it",
    "pulumiAttributionLabelAdditionStrategy": f"{_LABELS}; remove it",
    "region": "nothing here is regional: the datasets' location is tenant-bigquery:location; remove it",
    "zone": "nothing here is zonal: the datasets' location is tenant-bigquery:location; remove it",
    "credentials": _IDENTITY,
    "accessToken": _IDENTITY,
    "externalCredentials": _IDENTITY,
    "impersonateServiceAccount": _IDENTITY,
    "impersonateServiceAccountDelegates": _IDENTITY,
}


def _gcp_key_problem(key: str, source: str) -> Problem:
    hint = _GCP_KEY_HINTS.get(
        key.partition(":")[2],
        "it changes the default provider, whose effect on the resources `diff --stack` does not show; remove it",
    )
    return Problem(source, f"config.{key}", f"a provider setting this program does not model: {hint}")


def _unknown_key_problems(values: Mapping[str, Any], source: str) -> list[Problem]:
    """A misspelt key would be ignored and its setting silently keep its default (prod's protection too)."""
    problems = []
    for key in map(str, values):  # YAML may give a number or null as a key
        namespace = key.partition(":")[0]
        if namespace == "pulumi" or key in KNOWN_CONFIG_KEYS:
            continue
        if namespace == "gcp":
            problems.append(_gcp_key_problem(key, source))
            continue
        import difflib  # only for a misspelt key: a valid stack does not pay for it

        close = difflib.get_close_matches(key, KNOWN_CONFIG_KEYS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(KNOWN_CONFIG_KEYS)}"
        what = "unknown key" if namespace == PROJECT else f"unknown namespace {namespace!r}"
        problems.append(Problem(source, f"config.{key}", f"{what}, which nothing reads{hint}"))
    return problems


def _suffix_problems(suffix: str, catalog: Catalog | None, source: str, prefix: str) -> list[Problem]:
    if not suffix:
        return []
    names = [d.dataset_id for d in catalog.datasets] if catalog is not None else ["dataset"]
    for name in names:
        if check_dataset_id(name + suffix) is not None:
            return [
                Problem(
                    source,
                    f"config.{prefix}datasetSuffix",
                    f"{suffix!r} makes the dataset id {name + suffix!r} invalid; use letters, digits and underscores",
                )
            ]
    return []


def _check_table_references(settings: StackSettings, catalog: Catalog, source: str, prefix: str) -> list[Problem]:
    known = {t.key for t in catalog.tables()} | {f"{d.dataset_id}.*" for d in catalog.datasets} | {"*"}
    tables = sorted(t.key for t in catalog.tables())
    datasets = {d.dataset_id for d in catalog.datasets}
    views = {v.key for v in catalog.views()}
    return (
        [
            Problem(
                source,
                f"config.{prefix}recreate.{key}",
                f"names no declared table; use dataset.table, dataset.* or * (declared: {', '.join(sorted(known))})",
            )
            for key in settings.recreate
            if key not in known
        ]
        + [
            # No wildcards: each approval names one reviewed table, or a dataset for its own lowered safeties.
            Problem(
                source,
                f"config.{prefix}approveDataLoss.{key}",
                f"names no declared table; approve tables one by one as dataset.table (declared: {', '.join(tables)}), "
                f"a dataset's own lowered safeties by its id ({', '.join(sorted(datasets))})",
            )
            for key in settings.approve_data_loss
            if key not in tables and key not in datasets and key not in views
        ]
        + [
            Problem(
                source,
                f"config.{prefix}approveDataLoss.{key}",
                f"{key} is a view: it holds no rows, so its removal or replace needs no approval; remove it here",
            )
            for key in settings.approve_data_loss
            if key in views
        ]
        + _retired_conflicts(settings, catalog, source, prefix)
    )


def _retired_conflicts(settings: StackSettings, catalog: Catalog, source: str, prefix: str) -> list[Problem]:
    """A retired table is kept, never recreated nor deleted: its delete leaves the old table in BigQuery, where
    a recreation's create then fails with Already Exists (runbook "Retire a table without deleting it")."""
    retired = {t.key for t in catalog.tables() if t.retired}
    why = "is retired (retired: true), so it is kept, never deleted or recreated"
    return [
        Problem(source, f"config.{prefix}{setting}.{key}", f"{key} {why}; remove it here or drop `retired: true`")
        for setting, keys in (("recreate", list(settings.recreate)), ("approveDataLoss", settings.approve_data_loss))
        for key in keys
        if key in retired
    ]


_POLICY_SETTINGS = (
    ("policyTags", "policy_tags", POLICY_TAG_NAME, "projects/P/locations/L/taxonomies/T/policyTags/X"),
    ("dataPolicies", "data_policies", DATA_POLICY_NAME, "projects/P/locations/L/dataPolicies/ID"),
)


def _policy_name_problems(settings: StackSettings, source: str, prefix: str) -> list[Problem]:
    problems = []
    for key, attribute, full, form in _POLICY_SETTINGS:
        for short, name in getattr(settings, attribute).items():
            if not SHORT_NAME.match(short):
                message = "a short name is a lowercase letter, then lowercase letters, digits, '_' or '-' (up to 63)"
                problems.append(Problem(source, f"config.{prefix}{key}.{short}", f"{message}; rename it"))
            if not full.match(name):
                problems.append(
                    Problem(source, f"config.{prefix}{key}.{short}", f"{name!r} is not a resource name {form}")
                )
    return problems


def _short_name_problems(settings: StackSettings, catalog: Catalog, source: str, prefix: str) -> list[Problem]:
    """Every short name a schema file uses must be this stack's: an unmapped one would reach BigQuery as it is."""
    mapped = {"policyTags": settings.policy_tags, "dataPolicies": settings.data_policies}
    return [
        Problem(
            table.schema_file,
            f"{path}.{key}",
            f"short name {name!r} is not mapped by {source} tenant-bigquery:{key}; add {name}: <its resource name in "
            "this stack's project> there",
        )
        for table in catalog.tables()
        for path, key, name in short_names(table.schema)
        if name not in mapped[key]
    ]


def _authorized_view_problems(settings: StackSettings, catalog: Catalog, source: str, prefix: str) -> list[Problem]:
    """An authorized view is an entry of its source dataset's ACL, which only an ACL the stack owns holds: a
    separate gcp.bigquery.DatasetAccess and the dataset's own update fight over the ACL (terraform-provider-google
    website/docs/r/bigquery_dataset_access.html.markdown, the note on `access` blocks)."""
    if settings.access is not None:
        return []
    return [
        Problem(
            source,
            f"config.{prefix}access",
            f"view {view.key} is authorized on {', '.join(view.authorized_on)}, an entry of the dataset ACL, which "
            "this stack owns only once access is set; set access, or remove the view's authorized_on",
        )
        for view in catalog.views()
        if view.authorized_on
    ]


def _member_problem(member: str) -> str | None:
    member_type, _, email = member.partition(":")
    if (email or member_type).lower() in PUBLIC_PRINCIPALS:
        return f"{member} would make the data public (CIS GCP 7.1); grant a group, user or service account instead"
    if member_type not in MEMBER_TYPES or not email:
        return f"{member!r} is not a member; write group:EMAIL, user:EMAIL or serviceAccount:EMAIL"
    if not _EMAIL.match(email):
        return f"{email!r} is not an email address"
    if member_type == "serviceAccount" and not email.lower().endswith(".gserviceaccount.com"):
        return f"{email} is not a service account (NAME@PROJECT.iam.gserviceaccount.com); use user: for people"
    return None


def _access_problems(access: DatasetAccess | None, source: str, prefix: str) -> list[Problem]:
    if access is None:
        return []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for key in ACCESS_ROLES:
        for index, member in enumerate(getattr(access, key)):
            where = f"{key}.{index}"
            message = _member_problem(member)
            email = member.partition(":")[2].lower()
            if message is None and email in seen:
                message = f"{email} is also listed at access.{seen[email]}; keep one entry, with the role it needs"
            if message is None:
                seen[email] = where
            else:
                problems.append(Problem(source, f"config.{prefix}access.{where}", message))
    return problems


def _cost_problems(settings: StackSettings, source: str, prefix: str) -> list[Problem]:
    problems = []
    price = settings.on_demand_price_per_tib
    if not 0 < price < float("inf"):
        problems.append(
            Problem(
                source,
                f"config.{prefix}onDemandPricePerTib",
                f"{price!r} is no price: give BigQuery's on-demand USD per TiB of your location, e.g. 6.25",
            )
        )
    cap = settings.migration_max_bytes
    if cap is not None and cap <= 0:
        problems.append(
            Problem(
                source,
                f"config.{prefix}migrationMaxBytes",
                f"{cap} caps nothing: give the bytes one migrate --apply may process, a positive integer "
                "(e.g. 1099511627776 for 1 TiB), or remove it",
            )
        )
    return problems


def kms_location(dataset_location: str) -> str:
    """Where the key of a dataset must be: Cloud KMS calls BigQuery's US and EU multi-regions us and europe."""
    lowered = dataset_location.lower()
    return {"us": "us", "eu": "europe"}.get(lowered, lowered)


def _kms_key_problems(settings: StackSettings, source: str, prefix: str) -> list[Problem]:
    if settings.kms_key_name is None:
        return []
    where = f"config.{prefix}kmsKeyName"
    match = KMS_KEY.match(settings.kms_key_name)
    if match is None:
        return [
            Problem(
                source,
                where,
                "must be projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY (the key, not a key version)",
            )
        ]
    needed = kms_location(settings.location)
    if match.group(1) != needed:
        return [
            Problem(
                source,
                where,
                f"the key is in {match.group(1)}, but datasets in {settings.location} need a key in {needed}; "
                f"use a key ring in {needed}",
            )
        ]
    return []


def stack_file(root: Path, stack: str) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def require_stack_file(root: Path, stack: str) -> Path:
    """Pulumi.<stack>.yaml, or MissingStackError: the one message for a stack that does not exist."""
    path = stack_file(root, stack)
    if not os.path.lexists(path):  # anything else there (a pipe, a loop of links) is said where it is read
        known = ", ".join(list_stacks(root)) or "none"
        raise MissingStackError([Problem(display_path(path), "", f"no such stack file; known stacks: {known}")])
    return path


@dataclass(frozen=True)
class ProjectConfig:
    """Pulumi.yaml's `config:` block as the engine applies it to every stack (below)."""

    file: str
    name: str  # the project's, which the engine writes into every URN
    values: dict[str, Any]  # namespaced key: its value or default, in the form a stack file gives it
    required: tuple[str, ...] = ()  # this project's keys declared with neither: every stack must set them


def _as_stack_value(value: Any) -> Any:
    """A project value as the engine makes it a config value (pulumi/pulumi pkg/workspace/config.go
    createConfigValue): a string, boolean or integer becomes its text, anything else stays structured (JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return value


def read_project_config(root: Path, must_exist: bool = False) -> ProjectConfig:
    """Pulumi.yaml's name and its config values and defaults, checked as Pulumi checks them (pulumi/pulumi
    sdk/go/common/workspace/project.go ValidateProject, RewriteShorthandConfigValues and Project.Validate)."""
    path = root / "Pulumi.yaml"
    display = display_path(path)
    if not must_exist and not os.path.lexists(path):
        return ProjectConfig(display, PROJECT, {})
    raw = load_yaml(path, display) or {}
    config = raw.get("config", {}) if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise DeclarationError([Problem(display, "config", "must be a mapping of config keys to their types")])
    name = raw.get("name")
    if not isinstance(name, str) or not name:  # ValidateProject: "project is missing a 'name' attribute"
        message = f"Pulumi refuses a project without a non-empty string `name`; set `name: {PROJECT}`"
        raise DeclarationError([Problem(display, "name", message)])
    values: dict[str, Any] = {}
    required: list[str] = []
    problems: list[Problem] = []
    for written, entry in config.items():
        own = ":" not in str(written) or str(written).startswith(f"{name}:")
        key = str(written) if ":" in str(written) else f"{name}:{written}"  # pkg/workspace/config.go parseConfigKey
        if not isinstance(entry, dict):  # shorthand: a default of this project's key, a value of another's
            entry = {"default" if own else "value": entry}
        has_default, has_value = entry.get("default") is not None, entry.get("value") is not None
        where = f"config.{written}"
        if has_default and has_value:
            problems.append(Problem(display, where, "has both default: and value:, which Pulumi refuses; keep one"))
        elif not own and ("type" in entry or has_default or not has_value):
            message = "a key of another namespace takes only value: (Pulumi refuses type: and default: there)"
            problems.append(Problem(display, where, message))
        elif has_default or has_value:
            values[key] = _as_stack_value(entry["default"] if has_default else entry["value"])
        else:
            required.append(key)
    if problems:
        raise DeclarationError(problems)
    return ProjectConfig(display, name, values, tuple(required))


@dataclass(frozen=True)
class StackConfig:
    values: dict[str, Any]  # what the program receives: the stack file's, then Pulumi.yaml's
    secret_keys: set[str]
    origins: dict[str, str]  # key: the file its value came from, when not the stack file


def read_config(root: Path, stack: str, project: ProjectConfig | None = None) -> StackConfig:
    """The config the engine hands the program: Pulumi.<stack>.yaml's values (secrets masked, never decrypted),
    and for every key it does not set, Pulumi.yaml's value or default (pulumi/pulumi pkg/workspace/config.go
    mergeConfig: `if !foundOnStack && (hasValue || hasDefault)`; the stack's value wins whole)."""
    path = require_stack_file(root, stack)
    display = display_path(path)
    project = read_project_config(root) if project is None else project
    raw = load_yaml(path, display, raw_scalars_under="config") or {}
    config = raw.get("config", {}) if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise DeclarationError([Problem(display, "config", "must be a mapping of config keys to values")])
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    problems = []
    if isinstance(raw, dict) and raw.get("environment"):
        # ProjectStack.Environment (sdk/go/common/workspace/project.go): mergeConfig merges its values in.
        problems.append(
            Problem(
                display,
                "environment",
                "a Pulumi ESC environment adds config that `pulumi up` merges in but validate, plan, diff and verify "
                "cannot read, so they would check other settings than the deploy uses; remove it and set the "
                "values under config:",
            )
        )
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.add(key)
            values[key] = SECRET_MASK
            if key.startswith(f"{PROJECT}:") or key == "gcp:project":
                problems.append(
                    Problem(
                        display,
                        f"config.{key}",
                        "is a secret, which the offline commands cannot decrypt and this setting does not need; "
                        f"store it in plain text: pulumi config set {key} VALUE",
                    )
                )
        else:
            values[key] = value
    problems += [
        Problem(
            display,
            f"config.{key}",
            f"{project.file} declares it without a default, so Pulumi requires every stack to set it; set it here "
            f"or give it a default there",
        )
        for key in project.required
        if key not in values
    ]
    if problems:
        raise DeclarationError(problems)
    origins = {key: project.file for key in project.values if key not in values}
    return StackConfig({**values, **{key: project.values[key] for key in origins}}, secret_keys, origins)


def read_stack_file(root: Path, stack: str) -> tuple[dict[str, Any], set[str]]:
    """read_config's values and secret keys."""
    config = read_config(root, stack)
    return config.values, config.secret_keys


def list_stacks(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_settings(
    root: Path, stack: str, catalog: Catalog | None = None, project: ProjectConfig | None = None
) -> Settings:
    config = read_config(root, stack, project)
    return parse_settings(stack, config.values, display_path(stack_file(root, stack)), catalog, config.origins)
