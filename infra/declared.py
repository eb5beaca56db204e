"""What the program declares, as plain data: the provider arguments, names and ids of each dataset and table.

Pure (no pulumi or google imports): the Pulumi component (infra/resources.py) hands these to the
provider, and verify (infra/live.py) and the import file (infra/adoption.py) read the same values.
"""

from __future__ import annotations

import json
from typing import Any

from infra.catalog import Dataset, Table
from infra.contract import COMPONENT_TYPE as COMPONENT_TYPE
from infra.contract import DATA_LOSS_APPROVED, RETENTION_FOREVER
from infra.contract import DATASET_TYPE as DATASET_TYPE
from infra.contract import TABLE_TYPE as TABLE_TYPE
from infra.rules import MS_PER_DAY
from infra.schema import schema_to_api
from infra.settings import Grant, Settings

# Properties whose change recreates a table when recreateOnSchemaChange is on (camelCase, as the engine sees them).
SCHEMA_PROPERTIES = ["schema", "timePartitioning", "rangePartitioning", "clusterings"]
# The replacement trigger of a table without a recreate token. The engine never replaces on a null
# trigger (shouldTriggerReplace), so every table sends a value: setting, changing or removing a token
# is then a value-to-value change. Tokens read `key=value`, so none equals this.
BASELINE_TRIGGER = "baseline"


def table_resource_name(dataset: str, table: str) -> str:
    """Logical names are the declared ids, never the suffixed ones, so state never churns."""
    return f"{dataset}-{table}"


# adoptExisting: ids in the provider's import formats.
def dataset_import_id(project: str, dataset_id: str) -> str:
    return f"projects/{project}/datasets/{dataset_id}"


def table_import_id(project: str, dataset_id: str, table_id: str) -> str:
    return f"{dataset_import_id(project, dataset_id)}/tables/{table_id}"


# What an import cannot read back as declared, so it would fail the import: settings that exist only in
# the provider (the import sets their defaults) and labels (pulumi-gcp imports them as effectiveLabels).
# verify checks the labels beforehand; the next `up` without adoptExisting applies all of these in place.
ADOPT_IGNORE_DATASET = ["deleteContentsOnDestroy", "labels"]
ADOPT_IGNORE_TABLE = ["deletionProtection", "labels"]


def replacement_trigger(table: Table, settings: Settings) -> str:
    return settings.recreate_token(table.dataset, table.table_id) or BASELINE_TRIGGER


def merged_labels(declared: dict[str, str], settings: Settings) -> dict[str, str]:
    # Stack-wide labels (env, cost centre) win over declared ones.
    return {**declared, **settings.options.labels}


def table_labels(table: Table, settings: Settings) -> dict[str, str]:
    """Declared and stack labels, plus the decisions the policy pack must see in the table's inputs."""
    labels = merged_labels(table.labels, settings)
    if table.time_partitioning is not None and table.time_partitioning.keep_forever:
        labels.update([RETENTION_FOREVER])  # partitions never expire, on purpose (keep_forever: true)
    if settings.approves_data_loss(table.key):
        labels.update([DATA_LOSS_APPROVED])  # deletion protection is lifted, on purpose (approveDataLoss)
    return labels


def dataset_accesses(grants: tuple[Grant, ...]) -> list[dict[str, str]]:
    """The whole dataset ACL: once `accesses` is set, the provider removes every entry it does not list.

    Project owners keep OWNER, as in BigQuery's default ACL, so the dataset can never be locked out of
    its project. The default projectWriters/projectReaders entries are left out on purpose: they would
    hand every editor and viewer of the project the tenants' data; grant groups instead.
    """
    # BigQuery keeps service accounts as userByEmail; any other field would show a perpetual diff.
    member_fields = {"group": "group_by_email", "user": "user_by_email", "serviceAccount": "user_by_email"}
    return [
        {"role": "OWNER", "special_group": "projectOwners"},
        *({"role": grant.role, member_fields[grant.member_type]: grant.email} for grant in grants),
    ]


def dataset_args(dataset: Dataset, settings: Settings) -> dict[str, Any]:
    options = settings.options
    args: dict[str, Any] = {
        "project": settings.project,
        "dataset_id": settings.dataset_id(dataset.dataset_id),
        "location": options.location,
        "description": dataset.description or None,
        "labels": merged_labels(dataset.labels, settings) or None,
        "delete_contents_on_destroy": options.delete_contents_on_destroy,
    }
    if options.default_table_expiration_days is not None:
        args["default_table_expiration_ms"] = options.default_table_expiration_days * MS_PER_DAY
    if options.access is not None:
        args["accesses"] = dataset_accesses(settings.grants())
    if options.kms_key_name is not None:
        args["default_encryption_configuration"] = {"kms_key_name": options.kms_key_name}
    return args


def table_args(table: Table, settings: Settings, dataset_id: str) -> dict[str, Any]:
    args: dict[str, Any] = {
        "project": settings.project,
        "dataset_id": dataset_id,
        "table_id": table.table_id,
        "description": table.description or None,
        "schema": json.dumps(schema_to_api(table.schema)),
        "labels": table_labels(table, settings) or None,
        "deletion_protection": settings.options.deletion_protection and not settings.approves_data_loss(table.key),
        "clusterings": list(table.clustering) or None,
    }
    if table.time_partitioning is not None:
        partitioning = table.time_partitioning
        args["time_partitioning"] = {
            "type": partitioning.type,
            "field": partitioning.field,
            "expiration_ms": partitioning.expiration_days * MS_PER_DAY if partitioning.expiration_days else None,
        }
    if table.range_partitioning is not None:
        rng = table.range_partitioning
        args["range_partitioning"] = {
            "field": rng.field,
            "range": {"start": rng.start, "end": rng.end, "interval": rng.interval},
        }
    if table.require_partition_filter:
        # Only when true: the provider reads it back only when true (resourceBigQueryTableRead), so an
        # explicit false would differ from an imported table's state.
        args["require_partition_filter"] = True
    if settings.options.kms_key_name is not None:
        # Named on every table, not only inherited from the dataset default: the provider reads the
        # table's key back, and a configuration without it would plan a replacement on the next run.
        args["encryption_configuration"] = {"kms_key_name": settings.options.kms_key_name}
    return args
