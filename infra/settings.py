"""The one place where stack config is read and typed.

Values come either from the Pulumi runtime (strings; structured values JSON-encoded) or from
`Pulumi.<stack>.yaml` read directly by the offline CLI (native YAML values). Both go through
`parse_settings`, so `plan` and `pulumi up` see the same typed settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.catalog import Catalog, CatalogError, Problem, display_path, load_yaml, pydantic_problems
from infra.rules import check_labels

PROJECT = "tenant-bigquery"
SECRET_MASK = "[secret]"


class StackSettings(BaseModel):
    """Keys of the `tenant-bigquery:` namespace; each is documented in Pulumi.yaml."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    location: str = "US"
    dataset_suffix: str = Field("", alias="datasetSuffix")
    labels: dict[str, str] = {}
    deletion_protection: bool = Field(True, alias="deletionProtection")
    protect: bool = True
    delete_contents_on_destroy: bool = Field(False, alias="deleteContentsOnDestroy")
    default_table_expiration_days: int | None = Field(None, alias="defaultTableExpirationDays")
    recreate: dict[str, str] = {}
    recreate_on_schema_change: bool = Field(False, alias="recreateOnSchemaChange")


@dataclass(frozen=True)
class Settings:
    stack: str
    project: str
    options: StackSettings
    source: str

    def dataset_id(self, declared: str) -> str:
        return declared + self.options.dataset_suffix

    def recreate_token(self, dataset: str, table: str) -> str | None:
        """The forced-recreation token of a table: its own entry, else `dataset.*`, else `*`."""
        tokens = self.options.recreate
        for key in (f"{dataset}.{table}", f"{dataset}.*", "*"):
            if key in tokens:
                return f"{key}={tokens[key]}"
        return None


_STRING_KEYS = {"location", "datasetSuffix"}


def _decode(key: str, value: Any) -> Any:
    """The runtime hands structured config as JSON strings; YAML hands native values."""
    if isinstance(value, str) and key not in _STRING_KEYS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_settings(
    stack: str, values: Mapping[str, Any], source: str, catalog: Catalog | None = None
) -> Settings:
    """Type the config of one stack; raise CatalogError naming every bad key."""
    prefix = f"{PROJECT}:"
    problems: list[Problem] = []
    project = values.get("gcp:project")
    if not isinstance(project, str) or not project:
        problems.append(Problem(source, "config.gcp:project", "is required; set the GCP project id (pulumi config set gcp:project ID)"))
    own = {key[len(prefix) :]: _decode(key[len(prefix) :], value) for key, value in values.items() if key.startswith(prefix)}
    stack_settings = StackSettings()
    try:
        stack_settings = StackSettings.model_validate(own)
    except ValidationError as error:
        problems += pydantic_problems(error, StackSettings, source, prefix=f"config.{prefix}")
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
    if catalog is not None:
        problems += _check_table_references(stack_settings, catalog, source, prefix)
    if problems:
        raise CatalogError(problems)
    return Settings(stack=stack, project=str(project), options=stack_settings, source=source)


def _check_table_references(settings: StackSettings, catalog: Catalog, source: str, prefix: str) -> list[Problem]:
    known = {t.key for t in catalog.tables()} | {f"{d.dataset_id}.*" for d in catalog.datasets} | {"*"}
    return [
        Problem(
            source,
            f"config.{prefix}recreate.{key}",
            f"names no declared table; use dataset.table, dataset.* or * (declared: {', '.join(sorted(known))})",
        )
        for key in settings.recreate
        if key not in known
    ]


def stack_file(root: Path, stack: str) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_file(root: Path, stack: str) -> tuple[dict[str, Any], set[str]]:
    """Config values of Pulumi.<stack>.yaml and the keys whose values are secrets (masked, never decrypted)."""
    path = stack_file(root, stack)
    display = display_path(path)
    if not path.is_file():
        raise CatalogError([Problem(display, "", f"no such stack file; create it or pick one of: {', '.join(list_stacks(root)) or 'none'}")])
    raw = load_yaml(path, display) or {}
    config = raw.get("config", {}) if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise CatalogError([Problem(display, "config", "must be a mapping of config keys to values")])
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.add(key)
            values[key] = SECRET_MASK
        else:
            values[key] = value
    return values, secret_keys


def list_stacks(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_settings(root: Path, stack: str, catalog: Catalog | None = None) -> Settings:
    values, _ = read_stack_file(root, stack)
    return parse_settings(stack, values, display_path(stack_file(root, stack)), catalog)
