"""Stack config: every key typed in one place; unknown keys and wrong types are named errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT

from infra.catalog import CatalogError, load_catalog
from infra.settings import parse_settings

CATALOG = load_catalog(REPO_ROOT)
SOURCE = "Pulumi.test.yaml"


def problems_of(values: dict[str, Any]) -> list[str]:
    try:
        parse_settings("test", {"gcp:project": "p", **values}, SOURCE, CATALOG)
    except CatalogError as error:
        return [str(p) for p in error.problems]
    return []


def test_defaults_are_the_safe_ones() -> None:
    settings = parse_settings("test", {"gcp:project": "p"}, SOURCE, CATALOG)
    assert settings.options.protect is True
    assert settings.options.deletion_protection is True
    assert settings.options.delete_contents_on_destroy is False
    assert settings.options.location == "US"
    assert settings.dataset_id("tenants") == "tenants"


def test_project_is_required() -> None:
    with pytest.raises(CatalogError) as caught:
        parse_settings("test", {}, SOURCE, CATALOG)
    assert str(caught.value.problems[0]).startswith(f"{SOURCE}:config.gcp:project: is required")


def test_unknown_key_is_named_with_the_known_ones() -> None:
    [problem] = problems_of({"tenant-bigquery:protekt": True})
    assert problem.startswith(
        f"{SOURCE}:config.tenant-bigquery:protekt: unknown key; check the spelling (allowed here:"
    )
    assert "deletionProtection" in problem and "recreate" in problem


def test_keys_of_other_namespaces_are_left_alone() -> None:
    assert problems_of({"gcp:region": "us-central1", "pulumi:tags": {"a": "b"}}) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("protect", "sometimes", "must be true or false"),
        ("deletionProtection", 1, "must be true or false"),
        ("defaultTableExpirationDays", "soon", "must be a whole number"),
        ("labels", ["env=dev"], "must be a mapping of keys to values"),
        ("location", 5, "must be a string (quote it in YAML)"),
    ],
)
def test_wrong_types_are_named(key: str, value: Any, message: str) -> None:
    assert problems_of({f"tenant-bigquery:{key}": value}) == [f"{SOURCE}:config.tenant-bigquery:{key}: {message}"]


def test_values_from_the_engine_are_json_strings() -> None:
    settings = parse_settings(
        "test",
        {
            "gcp:project": "p",
            "tenant-bigquery:protect": "false",
            "tenant-bigquery:labels": '{"env": "dev"}',
            "tenant-bigquery:defaultTableExpirationDays": "7",
            "tenant-bigquery:location": "EU",
        },
        SOURCE,
        CATALOG,
    )
    assert settings.options.protect is False
    assert settings.options.labels == {"env": "dev"}
    assert settings.options.default_table_expiration_days == 7


def test_stack_labels_follow_the_label_rules() -> None:
    assert problems_of({"tenant-bigquery:labels": {"Env": "prod"}}) == [
        f"{SOURCE}:config.tenant-bigquery:labels.Env: label key must be 1 to 63 characters and start with a "
        "lowercase letter"
    ]


def test_recreate_must_name_declared_tables() -> None:
    [problem] = problems_of({"tenant-bigquery:recreate": {"tenants.no_such_table": "1", "tenants.*": "2"}})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigquery:recreate.tenants.no_such_table: names no declared")


def test_a_protected_stack_never_deletes_contents_on_destroy() -> None:
    [problem] = problems_of({"tenant-bigquery:deleteContentsOnDestroy": True})
    assert "a protected stack never deletes dataset contents on destroy" in problem
    assert problems_of({"tenant-bigquery:deleteContentsOnDestroy": True, "tenant-bigquery:protect": False}) == []


def test_pulumi_yaml_documents_every_key_and_requires_none_by_accident() -> None:
    """Pulumi treats a declared key without a default as required, and refuses schemas for provider keys."""
    import yaml

    from infra.settings import PROJECT, StackSettings

    text = (REPO_ROOT / "Pulumi.yaml").read_text()
    declared = yaml.safe_load(text)["config"]
    for name, field in StackSettings.model_fields.items():
        assert f"{PROJECT}:{field.alias or name}" in text, f"{field.alias or name} is not documented in Pulumi.yaml"
    defaults = {}
    for key, schema in declared.items():
        assert key.startswith(f"{PROJECT}:"), f"{key}: only this project's keys may have a schema"
        assert "default" in schema, f"{key} has no default, so Pulumi would require it in every stack"
        assert schema.get("description"), key
        defaults[key] = schema["default"]
    # The documented defaults are the ones the program applies.
    from_pulumi_defaults = parse_settings("test", {"gcp:project": "p", **defaults}, SOURCE, CATALOG)
    assert from_pulumi_defaults.options == parse_settings("test", {"gcp:project": "p"}, SOURCE, CATALOG).options


def test_a_protected_stack_refuses_a_default_table_expiration() -> None:
    [problem] = problems_of({"tenant-bigquery:defaultTableExpirationDays": 30})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigquery:defaultTableExpirationDays: BigQuery gives every")
    unprotected = {"tenant-bigquery:protect": False, "tenant-bigquery:defaultTableExpirationDays": 30}
    assert problems_of(unprotected) == []


def test_reserved_program_labels_cannot_be_set_by_a_stack() -> None:
    [problem] = problems_of({"tenant-bigquery:labels": {"retention": "forever"}})
    assert problem == (
        f"{SOURCE}:config.tenant-bigquery:labels.retention: label 'retention' is reserved: the program sets it "
        "for partitioning keep_forever: true; remove it"
    )


def test_a_secret_setting_of_this_stack_is_refused_with_the_fix(tmp_path: Path) -> None:
    from infra.settings import read_stack_file

    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  gcp:project: p\n  gcp:accessToken:\n    secure: v1:aa\n"
        "  tenant-bigquery:kmsKeyName:\n    secure: v1:bb\n"
    )
    with pytest.raises(CatalogError) as caught:
        read_stack_file(tmp_path, "x")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.endswith(
        "config.tenant-bigquery:kmsKeyName: is a secret, which the offline commands cannot decrypt and this "
        "setting does not need; store it in plain text: pulumi config set tenant-bigquery:kmsKeyName VALUE"
    )
