"""Stack config: every key typed in one place; unknown keys and wrong types are named errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURE_ROOT, REPO_ROOT

from infra.model.catalog import load_catalog
from infra.model.problems import DeclarationError
from infra.model.settings import load_settings, parse_settings

CATALOG = load_catalog(FIXTURE_ROOT)
SOURCE = "Pulumi.test.yaml"


def problems_of(values: dict[str, Any]) -> list[str]:
    try:
        parse_settings("test", {"gcp:project": "acme-test", **values}, SOURCE, CATALOG)
    except DeclarationError as error:
        return [str(p) for p in error.problems]
    return []


def test_defaults_are_the_safe_ones() -> None:
    settings = parse_settings("test", {"gcp:project": "acme-test"}, SOURCE, CATALOG)
    assert settings.stack_settings.protect is True
    assert settings.stack_settings.deletion_protection is True
    assert settings.stack_settings.delete_contents_on_destroy is False
    assert settings.stack_settings.location == "US"
    assert settings.dataset_id("tenants") == "tenants"


def test_project_is_required() -> None:
    with pytest.raises(DeclarationError) as caught:
        parse_settings("test", {}, SOURCE, CATALOG)
    assert str(caught.value.problems[0]).startswith(f"{SOURCE}:config.gcp:project: is required")


def test_keys_that_are_not_strings_are_named_not_a_traceback() -> None:
    problems = problems_of({5: 5, "tenant-bigquery:recreate": {1: "a"}})  # type: ignore[dict-item]
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{SOURCE}:config.5",
        f"{SOURCE}:config.tenant-bigquery:recreate.1",
    ]


def test_unknown_key_is_named_with_the_closest_known_one() -> None:
    [problem] = problems_of({"tenant-bigquery:protekt": True})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigquery:protekt: unknown key")
    assert problem.endswith("did you mean tenant-bigquery:protect?")


def test_a_misspelt_namespace_is_an_error_not_an_ignored_setting() -> None:
    """Otherwise prod silently keeps protect's default, whatever the file says."""
    [problem] = problems_of({"tenant-bigqeury:protect": False})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigqeury:protect: unknown namespace 'tenant-bigqeury'")
    assert problem.endswith("did you mean tenant-bigquery:protect?")


@pytest.mark.parametrize(
    ("key", "value", "offending"),
    [
        ("datasetSuffix", "_dev x", "'_dev x' makes the dataset id 'tenants_dev x' invalid"),
        ("datasetSuffix", "-dev", "'-dev' makes the dataset id 'tenants-dev' invalid"),
        ("location", "Mars", "'Mars' is not a BigQuery location"),
        ("defaultTableExpirationDays", -5, "-5 is too short; BigQuery's minimum is one hour"),
        ("defaultTableExpirationDays", 0, "0 is too short"),
        ("defaultTableExpirationDays", 10**14, "100,000,000,000,000 days exceed what BigQuery stores"),
    ],
)
def test_values_bigquery_would_refuse_are_named(key: str, value: Any, offending: str) -> None:
    [problem] = problems_of({f"tenant-bigquery:{key}": value, "tenant-bigquery:protect": False})
    assert problem.startswith(f"{SOURCE}:config.tenant-bigquery:{key}: {offending}")


@pytest.mark.parametrize(("written", "sent"), [("us", "US"), ("Eu", "EU"), ("US-CENTRAL1", "us-central1")])
def test_location_is_sent_in_the_spelling_bigquery_reports(written: str, sent: str) -> None:
    """The provider ignores case in dataset location (resource_bigquery_dataset.go, location's
    DiffSuppressFunc); one canonical spelling keeps plan, verify and diff in agreement."""
    values = {"gcp:project": "acme-test", "tenant-bigquery:location": written}
    settings = parse_settings("test", values, SOURCE, CATALOG)
    assert settings.stack_settings.location == sent


@pytest.mark.parametrize("spelling", ["no", "off", "yes", "on", "True", "FALSE "])
def test_stack_files_mean_what_pulumi_reads(tmp_path: Path, spelling: str) -> None:
    """Pulumi reads stack files as YAML 1.2 and hands the program each value's text: `no` is the string
    "no", which is not a boolean, though PyYAML (YAML 1.1) would read it as false."""
    stack = f"config:\n  gcp:project: acme-test\n  tenant-bigquery:protect: {spelling}\n"
    (tmp_path / "Pulumi.test.yaml").write_text(stack)
    with pytest.raises(DeclarationError) as caught:
        load_settings(tmp_path, "test")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.endswith(
        f"Pulumi.test.yaml:config.tenant-bigquery:protect: must be true or false; got {spelling.strip()!r}"
    )


@pytest.mark.parametrize(("spelling", "value"), [("true", True), ("false", False)])
def test_yaml_12_booleans_are_read_as_booleans(tmp_path: Path, spelling: str, value: bool) -> None:
    stack = f"config:\n  gcp:project: acme-test\n  tenant-bigquery:protect: {spelling}\n"
    (tmp_path / "Pulumi.test.yaml").write_text(stack)
    assert load_settings(tmp_path, "test").stack_settings.protect is value


def test_pulumi_keys_are_left_alone() -> None:
    assert problems_of({"pulumi:tags": {"a": "b"}}) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("protect", "sometimes", "must be true or false; got 'sometimes'"),
        ("deletionProtection", 1, "must be true or false; got 1"),
        ("defaultTableExpirationDays", "soon", "must be a whole number; got 'soon'"),
        ("labels", ["env=dev"], "must be a mapping of keys to values"),
        ("location", 5, "must be a string (quote it in YAML); got 5"),
    ],
)
def test_wrong_types_are_named(key: str, value: Any, message: str) -> None:
    assert problems_of({f"tenant-bigquery:{key}": value}) == [f"{SOURCE}:config.tenant-bigquery:{key}: {message}"]


def test_values_from_the_engine_are_json_strings() -> None:
    settings = parse_settings(
        "test",
        {
            "gcp:project": "acme-test",
            "tenant-bigquery:protect": "false",
            "tenant-bigquery:labels": '{"env": "dev"}',
            "tenant-bigquery:defaultTableExpirationDays": "7",
            "tenant-bigquery:location": "EU",
        },
        SOURCE,
        CATALOG,
    )
    assert settings.stack_settings.protect is False
    assert settings.stack_settings.labels == {"env": "dev"}
    assert settings.stack_settings.default_table_expiration_days == 7


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

    from infra.model.settings import KNOWN_CONFIG_KEYS, PROJECT

    text = (REPO_ROOT / "Pulumi.yaml").read_text()
    declared = yaml.safe_load(text)["config"]
    for key in KNOWN_CONFIG_KEYS:
        assert key.startswith("gcp:") or key in text, f"{key} is not documented in Pulumi.yaml"
    defaults = {}
    for key, schema in declared.items():
        assert key.startswith(f"{PROJECT}:"), f"{key}: only this project's keys may have a schema"
        assert "default" in schema, f"{key} has no default, so Pulumi would require it in every stack"
        assert schema.get("description"), key
        defaults[key] = schema["default"]
    # The documented defaults are the ones the program applies.
    from_pulumi_defaults = parse_settings("test", {"gcp:project": "acme-test", **defaults}, SOURCE, CATALOG)
    assert (
        from_pulumi_defaults.stack_settings
        == parse_settings("test", {"gcp:project": "acme-test"}, SOURCE, CATALOG).stack_settings
    )


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
    from infra.model.settings import read_stack_file

    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  gcp:project: acme-test\n  gcp:accessToken:\n    secure: v1:aa\n"
        "  tenant-bigquery:kmsKeyName:\n    secure: v1:bb\n"
    )
    with pytest.raises(DeclarationError) as caught:
        read_stack_file(tmp_path, "x")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.endswith(
        "config.tenant-bigquery:kmsKeyName: is a secret, which the offline commands cannot decrypt and this "
        "setting does not need; store it in plain text: pulumi config set tenant-bigquery:kmsKeyName VALUE"
    )


def test_a_stack_file_with_a_cloud_kms_secrets_provider_is_read_as_the_engine_reads_it(repo_copy: Path) -> None:
    """A stack file's top level is the engine's ProjectStack (pulumi/pulumi sdk/go/common/workspace/project.go):
    `secretsprovider` (the gocloud.dev keeper URL, here gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K)
    and `encryptedkey` (the stack's data key, encrypted by that key; pkg/secrets/cloud/manager.go
    NewCloudSecretsManager writes both) sit beside `config`. They say how secrets are encrypted, not what the
    program gets, so every command reads the stack file as before."""
    from helpers import invoke

    stack_file = repo_copy / "Pulumi.prod.yaml"
    stack_file.write_text(
        "secretsprovider: gcpkms://projects/acme-security-prod/locations/us/keyRings/pulumi/cryptoKeys/stack\n"
        "encryptedkey: CiQAg6xNp1NwfShHvFC7nFVtZbTqgXzB1nB4cdvL1qPWmM1ka9ISSQD1Xr2u\n" + stack_file.read_text()
    )
    validated = invoke("validate", "--root", str(repo_copy))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    plain = load_settings(FIXTURE_ROOT, "prod", CATALOG)
    assert load_settings(repo_copy, "prod", CATALOG) == plain
