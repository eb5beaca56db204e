"""What each resource receives, typed: the provider arguments of every dataset and table, built once.

Pure (no pulumi or google imports). The TypedDicts mirror pulumi-gcp's argument names (its `...ArgsDict`
types, which this module cannot import), so mypy checks them where the program hands them to the
provider (infra/pulumi_edge/resources.py); a table's, `TableArgs`, sits beside its properties in
infra/model/table_properties.py. `plan`, verify (infra/analysis/drift.py), `migrate` and the reports
read the same values; infra/model/render.py is the one place they become text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal, NotRequired, TypedDict, cast

from infra.contract import COMPONENT_TYPE as COMPONENT_TYPE
from infra.contract import DATASET_TYPE as DATASET_TYPE
from infra.contract import TABLE_TYPE as TABLE_TYPE
from infra.model.catalog import Catalog, Dataset
from infra.model.rules import MS_PER_DAY
from infra.model.schema import resolve_names
from infra.model.settings import Grant, Settings
from infra.model.table_properties import EncryptionArgs, Table, TableArgs, merged_labels, property_args
from infra.model.views import View

# The member fields of an ACL entry, as the provider and as the BigQuery API (entity type) name them.
MemberField = Literal["special_group", "group_by_email", "user_by_email", "view"]
API_MEMBER_FIELDS: dict[MemberField, str] = {
    "special_group": "specialGroup",
    "group_by_email": "groupByEmail",
    "user_by_email": "userByEmail",
    "view": "view",
}


class AuthorizedViewArgs(TypedDict):
    project_id: str
    dataset_id: str
    table_id: str


class AccessArgs(TypedDict):
    role: NotRequired[str]  # not on an authorized view's entry
    special_group: NotRequired[str]
    group_by_email: NotRequired[str]
    user_by_email: NotRequired[str]
    view: NotRequired[AuthorizedViewArgs]


class ViewDefinitionArgs(TypedDict):
    query: str
    use_legacy_sql: bool


class ViewArgs(TypedDict):
    """A view is a gcp.bigquery.Table with `view`. No `schema`: BigQuery derives it from the query, and the
    provider keeps it as read (Optional+Computed; a schema sent is set after the create, by an update:
    terraform-provider-google resource_bigquery_table.go resourceBigQueryTableCreate). No key: a view holds no
    data and cannot carry one."""

    project: str
    dataset_id: str
    table_id: str
    description: str | None
    labels: dict[str, str] | None
    view: ViewDefinitionArgs
    deletion_protection: bool


class DatasetArgs(TypedDict):
    project: str
    dataset_id: str
    location: str
    description: str | None
    labels: dict[str, str] | None
    delete_contents_on_destroy: bool
    # A string in pulumi-gcp (the provider's schema: max_time_travel_hours TypeString).
    max_time_travel_hours: str
    storage_billing_model: NotRequired[str]
    default_table_expiration_ms: NotRequired[int]
    accesses: NotRequired[list[AccessArgs]]
    default_encryption_configuration: NotRequired[EncryptionArgs]


@dataclass(frozen=True)
class DeclaredTable:
    table: Table
    args: TableArgs


@dataclass(frozen=True)
class DeclaredView:
    view: View
    args: ViewArgs


@dataclass(frozen=True)
class DeclaredDataset:
    dataset: Dataset
    args: DatasetArgs
    tables: tuple[DeclaredTable, ...]
    views: tuple[DeclaredView, ...] = ()


def declare(
    catalog: Catalog, settings: Settings, queries: Mapping[str, str] = MappingProxyType({})
) -> tuple[DeclaredDataset, ...]:
    """Every dataset, table and view with what its resource receives; `queries` holds each view's query as the
    stack sends it, by dataset.view (infra/analysis/views.py stack_queries: the suffix needs the SQL parser)."""
    views = catalog.views()
    return tuple(
        DeclaredDataset(
            dataset,
            dataset_args(dataset, settings, [v for v in views if dataset.dataset_id in v.authorized_on]),
            tuple(declared_table_of(table, settings) for table in dataset.tables),
            tuple(DeclaredView(view, view_args(view, settings, queries[view.key])) for view in dataset.views),
        )
        for dataset in catalog.datasets
    )


# The one schema key the provider's ignore_schema_changes takes (pulumi-gcp TableArgs.ignore_schema_changes:
# "Right now only `dataPolicies` field is supported").
IGNORED_DATA_POLICIES = "dataPolicies"


def view_args(view: View, settings: Settings, query: str) -> ViewArgs:
    return {
        "project": settings.project,
        "dataset_id": settings.dataset_id(view.dataset),
        "table_id": view.view_id,
        "description": view.description or None,
        "labels": merged_labels(view.labels, settings) or None,
        "view": {"query": query, "use_legacy_sql": False},
        # A view holds no rows: the file rebuilds it as it was, so neither protection guards any data.
        "deletion_protection": False,
    }


def authorized_view_access(view: View, settings: Settings) -> AccessArgs:
    """The ACL entry that authorizes the view on a dataset it reads (REST reference, Dataset.access[].view)."""
    return {
        "view": {
            "project_id": settings.project,
            "dataset_id": settings.dataset_id(view.dataset),
            "table_id": view.view_id,
        }
    }


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


def dataset_accesses(grants: tuple[Grant, ...]) -> list[AccessArgs]:
    """The whole dataset ACL: once `accesses` is set, the provider removes every entry it does not list.

    Project owners keep OWNER, as in BigQuery's default ACL, so the dataset can never be locked out of
    its project. The default projectWriters/projectReaders entries are left out on purpose: they would
    hand every editor and viewer of the project the tenants' data; grant groups instead.
    """
    # BigQuery keeps service accounts as userByEmail; any other field would show a perpetual diff.
    owners: AccessArgs = {"role": "OWNER", "special_group": "projectOwners"}
    return [owners, *(_grant_access(grant) for grant in grants)]


def _grant_access(grant: Grant) -> AccessArgs:
    if grant.member_type == "group":
        return {"role": grant.role, "group_by_email": grant.email}
    return {"role": grant.role, "user_by_email": grant.email}


def access_members(entry: AccessArgs) -> list[tuple[MemberField, str]]:
    """The member an entry names (one field), with the field that names it; a view as project.dataset.table."""
    if "view" in entry:
        view = entry["view"]
        return [("view", f"{view['project_id']}.{view['dataset_id']}.{view['table_id']}")]
    return [(field, entry[field]) for field in API_MEMBER_FIELDS if field in entry and field != "view"]


def dataset_args(dataset: Dataset, settings: Settings, authorized: Sequence[View] = ()) -> DatasetArgs:
    stack_settings = settings.stack_settings
    args: DatasetArgs = {
        "project": settings.project,
        "dataset_id": settings.dataset_id(dataset.dataset_id),
        "location": stack_settings.location,
        "description": dataset.description or None,
        "labels": merged_labels(dataset.labels, settings) or None,
        "delete_contents_on_destroy": stack_settings.delete_contents_on_destroy,
        # Always sent: the provider's field is Optional+Computed, so an unsent window would take whatever
        # a refresh reads, and a window lowered out of band would never show as a change.
        "max_time_travel_hours": str(dataset.max_time_travel_hours),
    }
    if dataset.storage_billing_model is not None:
        args["storage_billing_model"] = dataset.storage_billing_model
    if stack_settings.default_table_expiration_days is not None:
        args["default_table_expiration_ms"] = stack_settings.default_table_expiration_days * MS_PER_DAY
    if stack_settings.access is not None:
        # The views authorized on this dataset are entries of the one ACL the stack owns: a separate
        # gcp.bigquery.DatasetAccess would fight it (settings.py refuses authorized views without `access`).
        views = [authorized_view_access(view, settings) for view in authorized]
        args["accesses"] = dataset_accesses(settings.grants()) + views
    if stack_settings.kms_key_name is not None:
        args["default_encryption_configuration"] = {"kms_key_name": stack_settings.kms_key_name}
    return args


def declared_table_of(table: Table, settings: Settings) -> DeclaredTable:
    """The table as this stack declares it: its short policy names resolved (the program, verify and a rebuild
    all read this one), and its arguments."""
    stack = settings.stack_settings
    table = replace(table, schema=resolve_names(table.schema, stack.policy_tags, stack.data_policies))
    return DeclaredTable(table, table_args(table, settings, settings.dataset_id(table.dataset)))


def table_args(table: Table, settings: Settings, dataset_id: str) -> TableArgs:
    """The table's identity and safety, and what every property sends (infra/model/table_properties.py)."""
    args = {
        "project": settings.project,
        "dataset_id": dataset_id,
        "table_id": table.table_id,
        "deletion_protection": settings.stack_settings.deletion_protection
        and not settings.approves_data_loss(table.key),
        **property_args(table, settings),
    }
    if table.column_masking == "governance":
        # The provider then keeps the live data policies of every column the schema declares none for, on each
        # update (terraform-provider-google resource_bigquery_table.go resourceBigQueryTableUpdate and
        # resourceBigQueryTableSchemaCustomizeDiffFunc, both through mergeDataPoliciesIntoMap).
        args["ignore_schema_changes"] = [IGNORED_DATA_POLICIES]
    # The descriptors name their arguments as TableArgs does: tests/test_table_properties.py holds them equal.
    return cast(TableArgs, args)
