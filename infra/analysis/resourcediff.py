"""What the program registers at the base vs now -> every change of every input and option, with its rule.

Its size (about 770 lines) is mostly the rule table: one rule per input property of pulumi-gcp's
Table and Dataset (a test keeps it complete) and one per resource option.

Pure core: compares registrations as infra/pulumi_edge/mockrun.py records them (plain dicts), paired by URN (type,
name and the parent chain). Each input property of a table or dataset has the provider's rule below,
each resource option the engine's; the schema and the other table settings the catalog declares keep
the column classifier of infra/analysis/changes.py. A property without a rule is still reported, as an update.

Sources: hashicorp/terraform-provider-google google/services/bigquery/resource_bigquery_table.go
(`ResourceBigQueryTable` schema, `resourceBigQueryTableUpdate`) and resource_bigquery_dataset.go
(`ResourceBigQueryDataset` schema, `resourceBigQueryDatasetDelete`); pulumi/pulumi
pkg/resource/deploy/step_generator.go (`generateStepsFromDiff`, `shouldTriggerReplace`,
`applyReplaceOnChanges`, `continueStepsFromDiff`); pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go
(`Diff`: delete-before-replace only for replacements the provider forces).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from infra.analysis.changes import (
    EXPIRATION_COMPUTED,
    PULUMI_CREATE,
    PULUMI_DELETE,
    Change,
    Citation,
    DiffResult,
    ResourceChanges,
    Verdict,
    _change,
    classify_table,
    table_added,
    table_removed,
    table_retired,
)
from infra.model import retirement
from infra.model.declared import DATASET_TYPE, TABLE_TYPE
from infra.model.registrations import Registration, Registrations
from infra.model.rules import MAX_TIME_TRAVEL_HOURS, MS_PER_DAY
from infra.model.table_properties import TABLE_PROPERTIES, Table, fields_from_inputs

TF_TABLE = "terraform-provider-google resource_bigquery_table.go"
TF_DATASET = "terraform-provider-google resource_bigquery_dataset.go"
STEPS = "pulumi/pulumi pkg/resource/deploy/step_generator.go"

TABLE_FORCE_NEW = Citation("provider", f"{TF_TABLE} ResourceBigQueryTable: ForceNew")
TABLE_NESTED_FORCE_NEW = Citation("provider", f"{TF_TABLE} ResourceBigQueryTable: ForceNew fields inside")
TABLE_IN_PLACE = Citation("provider", f"{TF_TABLE} resourceBigQueryTableUpdate")
TABLE_CLIENT_SIDE = Citation("provider", f"{TF_TABLE} resourceBigQueryTableUpdate: clientSideFields")
DATASET_FORCE_NEW = Citation("provider", f"{TF_DATASET} ResourceBigQueryDataset: ForceNew")
DATASET_LOCATION = Citation("provider", f"{TF_DATASET} ResourceBigQueryDataset: location ForceNew, CaseDiffSuppress")
DATASET_IN_PLACE = Citation("provider", f"{TF_DATASET} resourceBigQueryDatasetUpdate")
DATASET_CLIENT_SIDE = Citation("provider", f"{TF_DATASET} resourceBigQueryDatasetDelete: read from state at delete")
NO_RULE = Citation("unknown", "no rule known")
ENGINE_PROTECT = Citation("Pulumi", f"{STEPS} continueStepsFromDiff: new.Protect && old.Protect refuses a replace")
ENGINE_DELETE_FIRST = Citation(
    "Pulumi", f"{STEPS} continueStepsFromDiff: goal.DeleteBeforeReplace overrides the provider"
)
ENGINE_TRIGGER = Citation("Pulumi", f"{STEPS} shouldTriggerReplace")
ENGINE_REPLACE_ON_CHANGES = Citation("Pulumi", f"{STEPS} applyReplaceOnChanges")
ENGINE_IGNORE_CHANGES = Citation("Pulumi", f"{STEPS} diff: processIgnoreChanges keeps the old value")
ENGINE_IMPORT = Citation("Pulumi", f"{STEPS} generateSteps: isImport only when the id differs from the state's")
ENGINE_IMPORT_REPLACE = Citation("Pulumi", f"{STEPS} continueStepsFromDiff: a replacement with goal.ID is an error")
ENGINE_STATE_ONLY = Citation("Pulumi", "a component exists in Pulumi's state only")
# An option-only change is a same step, whose new state the snapshot writes when RetainOnDelete or Protect
# changed (pkg/backend/snapshot.go sameSnapshotMutation.mustWrite); a later delete reads it from there.
ENGINE_RETAIN = Citation("Pulumi", retirement.RETAIN_RULE)
# A dependent is replaced with a replaced resource only through a property dependency; the tables name their
# dataset by a plain id and depends_on, which the Python SDK keeps out of property dependencies.
ENGINE_DEPENDENTS = Citation(
    "Pulumi", f"{STEPS} calculateDependentReplacements: only a property dependency replaces a dependent"
)
# The provider deletes a dataset with ?deleteContents= the state's delete_contents_on_destroy; BigQuery
# then deletes every table in it, or refuses while it holds one (BigQuery REST reference: datasets.delete).
DATASET_DELETE_CONTENTS = Citation(
    "provider", f"{TF_DATASET} resourceBigQueryDatasetDelete: deleteContents; BigQuery REST datasets.delete"
)
# Optional+Computed: when the configuration leaves the value out, the SDK plans no change and keeps the
# prior state (hashicorp/terraform-plugin-sdk helper/schema/schema.go diffSet and diffString: "no new value
# is set ... and we're computed, then nothing has changed"), so nothing reaches BigQuery.
SDK_COMPUTED = "terraform-plugin-sdk helper/schema/schema.go diffSet/diffString: Optional+Computed left out"
ACCESS_SET = Citation("provider", f"{TF_DATASET} access: TypeSet, resourceBigqueryDatasetAccessHash")
ACCESS_COMPUTED = Citation("provider", f"{TF_DATASET} access Optional+Computed; {SDK_COMPUTED}")
TABLE_EXPIRATION_COMPUTED = Citation("provider", f"{TF_TABLE} expiration_time Optional+Computed; {SDK_COMPUTED}")
# Neither is ForceNew (ResourceBigQueryDataset), both sent by resourceBigQueryDatasetUpdate; what each means is
# BigQuery's: cloud.google.com/bigquery/docs/time-travel, /datasets-intro (storage billing models).
TIME_TRAVEL = Citation(
    "provider", f"{TF_DATASET} max_time_travel_hours: resourceBigQueryDatasetUpdate; BigQuery docs: time travel"
)
TIME_TRAVEL_COMPUTED = Citation("provider", f"{TF_DATASET} max_time_travel_hours Optional+Computed; {SDK_COMPUTED}")
BILLING_MODEL = Citation(
    "provider",
    f"{TF_DATASET} storage_billing_model: resourceBigQueryDatasetUpdate; BigQuery docs: Introduction to datasets, "
    "storage billing models",
)
# The update is a PUT of the whole dataset (BigQuery REST datasets.update: "replaces the entire dataset resource");
# the provider leaves `access` out when it did not change only since terraform-provider-google(-beta) v7.45.0
# (resourceBigQueryDatasetUpdateEncoder; pulumi-gcp 9.35.0); before, it re-sent the ACL of the last refresh.
ACL_UNDECLARED = Citation(
    "provider",
    f"{TF_DATASET} resourceBigQueryDatasetUpdate, resourceBigQueryDatasetUpdateEncoder; pulumi/pulumi-gcp#3908",
)
# The stack's gcp: keys are the default provider's inputs; a change makes the engine diff the provider
# (pkg/resource/deploy/providers/registry.go Diff -> the bridge's DiffConfig, an update: pulumi-gcp marks no
# config key ForcesProviderReplace).
PROVIDER_CONFIG = Citation(
    "Pulumi", "pulumi/pulumi pkg/resource/deploy/default_providers.go newRegisterDefaultProviderEvent: GetPackageConfig"
)
PROVIDER_LABELS = Citation("provider", "terraform-provider-google tpgresource/labels.go setLabelsFields")
DEFAULT_PROVIDER = "default gcp provider"
# pulumi-gcp's names (provider/resources.go Config) of the keys the provider merges into every resource's labels.
_LABEL_KEYS = frozenset(
    {"gcp:defaultLabels", "gcp:addPulumiAttributionLabel", "gcp:pulumiAttributionLabelAdditionStrategy"}
)


@dataclass(frozen=True)
class PropertyRule:
    verdict: Verdict
    citation: Citation
    text: str


_REPLACES_TABLE = "forces a new table, deleted first and recreated empty"
_REPLACES_DATASET = (
    "forces a new dataset, deleted first: BigQuery refuses to delete it while it holds tables unless state "
    "records deleteContentsOnDestroy true, and then every table goes with it"
)
_STATE_ONLY = "recorded in Pulumi's state only, nothing is sent to BigQuery"
_NEW_TABLES = "in place; applies to tables created from now on"

# The table properties the catalog declares: the catalog classifier (infra/analysis/changes.py classify_table)
# judges them.
CLASSIFIED_TABLE_PROPERTIES = frozenset(f.engine for p in TABLE_PROPERTIES if p.in_catalog for f in p.fields)
TABLE_RULES: dict[str, PropertyRule] = {
    "datasetId": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "tableId": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "project": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "encryptionConfiguration": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "biglakeConfiguration": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "schemaForeignTypeInfo": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "tableReplicationInfo": PropertyRule(Verdict.REPLACE, TABLE_FORCE_NEW, _REPLACES_TABLE),
    "externalDataConfiguration": PropertyRule(Verdict.REPLACE, TABLE_NESTED_FORCE_NEW, _REPLACES_TABLE),
    "materializedView": PropertyRule(Verdict.REPLACE, TABLE_NESTED_FORCE_NEW, _REPLACES_TABLE),
    "deletionProtection": PropertyRule(Verdict.UPDATE, TABLE_CLIENT_SIDE, _STATE_ONLY),
    "deletionPolicy": PropertyRule(Verdict.UPDATE, TABLE_CLIENT_SIDE, _STATE_ONLY),
    "ignoreSchemaChanges": PropertyRule(Verdict.UPDATE, TABLE_CLIENT_SIDE, _STATE_ONLY),
    "ignoreAutoGeneratedSchema": PropertyRule(Verdict.UPDATE, TABLE_CLIENT_SIDE, _STATE_ONLY),
    "tableMetadataView": PropertyRule(Verdict.UPDATE, TABLE_CLIENT_SIDE, _STATE_ONLY),
    "expirationTime": PropertyRule(
        Verdict.UPDATE_DESTRUCTIVE, TABLE_IN_PLACE, "in place; BigQuery deletes the table and its rows at that time"
    ),
    "externalCatalogTableOptions": PropertyRule(Verdict.UPDATE, TABLE_IN_PLACE, "in place"),
    "friendlyName": PropertyRule(Verdict.UPDATE, TABLE_IN_PLACE, "in place"),
    "maxStaleness": PropertyRule(Verdict.UPDATE, TABLE_IN_PLACE, "in place"),
    "resourceTags": PropertyRule(Verdict.UPDATE, TABLE_IN_PLACE, "in place"),
    "view": PropertyRule(Verdict.UPDATE, TABLE_IN_PLACE, "in place"),
}
DATASET_RULES: dict[str, PropertyRule] = {
    "datasetId": PropertyRule(Verdict.REPLACE, DATASET_FORCE_NEW, _REPLACES_DATASET),
    "project": PropertyRule(Verdict.REPLACE, DATASET_FORCE_NEW, _REPLACES_DATASET),
    "externalDatasetReference": PropertyRule(Verdict.REPLACE, DATASET_FORCE_NEW, _REPLACES_DATASET),
    "location": PropertyRule(Verdict.REPLACE, DATASET_LOCATION, _REPLACES_DATASET),
    "deleteContentsOnDestroy": PropertyRule(Verdict.UPDATE, DATASET_CLIENT_SIDE, _STATE_ONLY),
    "deletionPolicy": PropertyRule(Verdict.UPDATE, DATASET_CLIENT_SIDE, _STATE_ONLY),
    "accesses": PropertyRule(
        Verdict.UPDATE, DATASET_IN_PLACE, "in place; the whole ACL is replaced, entries not listed are removed"
    ),
    "defaultCollation": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, _NEW_TABLES),
    "defaultEncryptionConfiguration": PropertyRule(
        Verdict.UPDATE, DATASET_IN_PLACE, _NEW_TABLES + "; existing tables keep their key"
    ),
    "defaultPartitionExpirationMs": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, _NEW_TABLES),
    "defaultTableExpirationMs": PropertyRule(
        Verdict.UPDATE, DATASET_IN_PLACE, _NEW_TABLES + "; existing tables keep the expirationTime they have"
    ),
    "description": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "externalCatalogDatasetOptions": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "friendlyName": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "isCaseInsensitive": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "labels": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "maxTimeTravelHours": PropertyRule(Verdict.UPDATE, TIME_TRAVEL, "in place"),
    "resourceTags": PropertyRule(Verdict.UPDATE, DATASET_IN_PLACE, "in place"),
    "storageBillingModel": PropertyRule(
        Verdict.UPDATE,
        BILLING_MODEL,
        "in place; BigQuery then refuses another change of the dataset's billing model for 14 days. PHYSICAL bills "
        "compressed bytes, time-travel and fail-safe bytes included; LOGICAL bills uncompressed bytes without them",
    ),
}
OPTIONS = (
    "protect",
    "retainOnDelete",
    "deleteBeforeReplace",
    "replacementTrigger",
    "replaceOnChanges",
    "ignoreChanges",
    "import",
)
_KIND_ORDER = {"provider": 0, "dataset": 1, "table": 2, "component": 3}
_DEFAULTS: dict[str, Any] = {
    "protect": False,
    "retainOnDelete": False,
    "deleteBeforeReplace": False,
    "replaceOnChanges": [],
    "ignoreChanges": [],
}
# Legacy roles and the IAM names the provider takes for them (resource_bigquery_dataset.go
# bigqueryDatasetAccessPrimitiveToRoleMap); any other role ranks as the highest.
_ACL_ROLES = {
    "READER": 1,
    "WRITER": 2,
    "OWNER": 3,
    "roles/bigquery.dataViewer": 1,
    "roles/bigquery.dataEditor": 2,
    "roles/bigquery.dataOwner": 3,
}


def compare_registrations(
    old: Registrations, new: Registrations, *, stack: str, old_label: str, new_label: str
) -> DiffResult:
    """Every registered resource's changes from `old` (what state holds after the base's `up`) to `new`."""
    # A base whose runner recorded no URNs pairs by type and name, which are unique in this program.
    with_urns = all(r.urn for r in (*old.resources, *new.resources))

    def identity(resource: Registration) -> str:
        return resource.urn if with_urns else f"{resource.type}::{resource.name}"

    old_by_urn = {identity(r): r for r in old.resources}
    new_by_urn = {identity(r): r for r in new.resources}
    protected = old.protected()
    result: list[ResourceChanges] = []
    unchanged = 0
    for urn in old_by_urn.keys() | new_by_urn.keys():
        before, after = old_by_urn.get(urn), new_by_urn.get(urn)
        if after is None:
            assert before is not None
            current, changes, approvals = before, [_removed(before)], old.approved()
        else:
            changes = _resource_changes(before, after, protected) if before is not None else [_added(after)]
            current, approvals = after, new.approved()
        if not changes:
            unchanged += current.kind == "table"
            continue
        ordered = _worst_first(*changes)
        result.append(ResourceChanges(current.key, ordered, current.key in approvals, current.kind))
    result, unchanged = _dataset_replacements(result, old, new, unchanged)
    result, unchanged = _kept_table_expirations(result, old, new, unchanged)
    # Before the stack's first up there is no provider in state to update: it is created with the rest.
    if old.resources and (provider := _provider_changes(old.config, new.config)):
        result.append(ResourceChanges(DEFAULT_PROVIDER, _worst_first(*provider), kind="provider"))
    result.sort(key=lambda t: (-t.verdict.rank, _KIND_ORDER[t.kind], t.name))
    return DiffResult(old_label, new_label, tuple(result), stack, unchanged)


def _worst_first(*changes: Change) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda c: -c.verdict.rank))


def _dataset_replacements(
    result: list[ResourceChanges], old: Registrations, new: Registrations, unchanged: int
) -> tuple[list[ResourceChanges], int]:
    """What a dataset's replacement does to its tables, which the engine does not replace with it.

    The delete comes first (the dataset registers deleteBeforeReplace). With deleteContentsOnDestroy true in
    state BigQuery deletes every table and its rows with the dataset, while the engine leaves each table
    as it is (or, when its own dataset id changed too, replaces it, and that delete finds no table:
    terraform-provider-google resourceBigQueryTableDelete returns the 404, and the update stops midway).
    Without it BigQuery refuses to delete a dataset that holds tables, and the update fails there.
    """
    by_name = {(t.kind, t.name): t for t in result}
    datasets = [r for r in old.resources if r.kind == "dataset"]
    for dataset in datasets:
        found = by_name.get(("dataset", dataset.key))
        # Any replacing change, not only the worst: the import option's refusal outranks it, and the run
        # after the import replaces the dataset all the same.
        if found is None or not _replaces(found):
            continue
        tables = _tables_in(dataset, old)
        if not tables:
            continue
        importing = any(c.citation is ENGINE_IMPORT_REPLACE for c in found.changes)
        once = "once a run without the import option replaces the dataset (this one fails first): " if importing else ""
        if dataset.inputs.get("deleteContentsOnDestroy") is not True:
            text = once + (
                f"the old dataset still holds {len(tables)} table(s) and state records no deleteContentsOnDestroy "
                "true: BigQuery refuses its delete, so the update fails there and nothing is replaced"
            )
            change = _change("(dataset replaced)", Verdict.REJECTED, DATASET_DELETE_CONTENTS, text, "dataset")
            by_name["dataset", found.name] = replace(found, changes=_worst_first(change, *found.changes))
            continue
        for table in tables:
            own = by_name.get(("table", table.key))
            if own is not None and _replaces(own):
                text = once + (
                    f"the replacement of dataset {dataset.key} deletes this table and every row with it first "
                    "(state records deleteContentsOnDestroy true); the table's own delete then finds no table "
                    "(404) and the update stops midway"
                )
                rule = DATASET_DELETE_CONTENTS
            else:
                text = once + (
                    f"the replacement of dataset {dataset.key} deletes this table and every row with it (state "
                    "records deleteContentsOnDestroy true); the engine leaves the table as it is in state, so "
                    "nothing recreates it until a `pulumi up --refresh` sees it gone"
                )
                rule = ENGINE_DEPENDENTS
            unchanged = _add_change(
                by_name, table, new, _change("(dataset replaced)", Verdict.REMOVED, rule, text, "dataset"), unchanged
            )
    return list(by_name.values()), unchanged


def _kept_table_expirations(
    result: list[ResourceChanges], old: Registrations, new: Registrations, unchanged: int
) -> tuple[list[ResourceChanges], int]:
    """A dataset's defaultTableExpirationMs no longer set: new tables get no expiration (the provider's PUT
    leaves the default out: resource_bigquery_dataset.go resourceBigQueryDatasetUpdate), and a table created
    while it was set keeps the expirationTime BigQuery gave it ("changing the value will only affect new
    tables, not existing ones", its default_table_expiration_ms), which nothing clears: the table's
    expiration_time is Optional+Computed and the program leaves it out."""
    by_name = {(t.kind, t.name): t for t in result}
    now = {(r.kind, r.key): r for r in new.resources}
    for dataset in old.resources:
        default = dataset.inputs.get("defaultTableExpirationMs")
        after, changed = now.get(("dataset", dataset.key)), by_name.get(("dataset", dataset.key))
        if dataset.kind != "dataset" or not default or after is None or after.inputs.get("defaultTableExpirationMs"):
            continue
        if changed is not None and _replaces(changed):
            continue  # its tables go with it, or it is not replaced at all: _dataset_replacements says which
        for table in _tables_in(dataset, old):
            kept, own = now.get(("table", table.key)), by_name.get(("table", table.key))
            if kept is None or kept.inputs.get("expirationTime") or (own is not None and _replaces(own)):
                continue  # removed, its own expiration declared, or recreated without one
            text = (
                f"its dataset's defaultTableExpirationMs {_show(default)} ({int(default) // MS_PER_DAY} days) is no "
                "longer set, which changes only tables created from now on: if this table was created while it was "
                "set, it keeps the expirationTime BigQuery gave it and the provider sends none, so BigQuery still "
                "deletes the table and its rows then; clear it on the live table"
            )
            change = _change(
                "(defaultTableExpirationMs)", Verdict.REJECTED, TABLE_EXPIRATION_COMPUTED, text, "expirationTime"
            )
            unchanged = _add_change(by_name, table, new, change, unchanged)
    return list(by_name.values()), unchanged


def _replaces(resource: ResourceChanges) -> bool:
    return any(c.verdict is Verdict.REPLACE for c in resource.changes)


def _tables_in(dataset: Registration, registrations: Registrations) -> list[Registration]:
    where = (dataset.inputs.get("project"), dataset.inputs.get("datasetId"))
    return [
        r
        for r in registrations.resources
        if r.kind == "table" and (r.inputs.get("project"), r.inputs.get("datasetId")) == where
    ]


def _add_change(
    by_name: dict[tuple[str, str], ResourceChanges],
    table: Registration,
    new: Registrations,
    change: Change,
    unchanged: int,
) -> int:
    """Adds a change to a table's entry, making one for a table that was unchanged; returns the unchanged count."""
    own = by_name.get(("table", table.key))
    if own is None:
        unchanged -= 1
        own = ResourceChanges(table.key, (), table.key in new.approved(), "table")
    by_name["table", table.key] = replace(own, changes=_worst_first(change, *own.changes))
    return unchanged


def _provider_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The default provider reads the stack's gcp: keys, which the registrations do not show.

    Only gcp:project passes `validate` today (infra/model/settings.py), but a base may hold a key an earlier
    version accepted: dropping it changes the provider too. A secret is masked on both sides, so a new
    ciphertext of it goes unseen here.
    """
    changes = []
    for key in sorted(k for k in old.keys() | new.keys() if k.startswith("gcp:") and old.get(k) != new.get(k)):
        what = f"{key} {_show(old.get(key))} -> {_show(new.get(key))}: the default provider is updated"
        if key == "gcp:project":
            text = f"{what}, in Pulumi's state; each dataset and table names its project itself, and is listed with it"
            changes.append(_change(f"({key})", Verdict.NOOP, PROVIDER_CONFIG, text, key))
        elif key in _LABEL_KEYS:
            text = (
                f"{what}, and it merges this into the labels of every dataset and table, so each is updated in "
                f"place and its labels in BigQuery change ({PROVIDER_LABELS.source})"
            )
            changes.append(_change(f"({key})", Verdict.UPDATE, PROVIDER_CONFIG, text, key))
        else:
            text = f"{what}; what that does to the resources: no rule known; reported as an update"
            changes.append(_change(f"({key})", Verdict.UPDATE, PROVIDER_CONFIG, text, key))
    return changes


def _added(resource: Registration) -> Change:
    imported = "import" in resource.options
    if resource.kind == "table" and "view" in resource.inputs and not imported:
        text = "new view: BigQuery stores its query, no rows; no existing data is touched"
        return _change("(view)", Verdict.ADDED, PULUMI_CREATE, text, "view")
    if resource.kind == "table":
        return table_added(imported)
    if resource.kind == "dataset":
        what = "adopted with Pulumi's import option, nothing is created" if imported else "new dataset, created empty"
        return _change("(dataset)", Verdict.ADDED, ENGINE_IMPORT if imported else DATASET_IN_PLACE, what, "dataset")
    return _change("(component)", Verdict.NOOP, ENGINE_STATE_ONLY, "new component", "component")


def _removed(resource: Registration) -> Change:
    if resource.kind == "table" and "view" in resource.inputs:
        # A view holds no rows: no data is lost, but whoever queries it fails from then on.
        text = "no longer declared: the view is deleted; it holds no rows, and every query on it fails from then on"
        return _change("(view)", Verdict.UPDATE, PULUMI_DELETE, text, "view")
    if resource.kind == "table":
        # The engine refuses a protected delete before it looks at retainOnDelete (step.go DeleteStep.Apply).
        retained = resource.options.get("retainOnDelete") and not resource.options.get("protect")
        return table_retired() if retained else table_removed()
    if resource.kind == "dataset":
        text = (
            "no longer declared: the dataset is deleted (refused while state records protect; BigQuery refuses "
            "while it holds tables unless state records deleteContentsOnDestroy true)"
        )
        return _change("(dataset)", Verdict.REMOVED, DATASET_CLIENT_SIDE, text, "dataset")
    return _change("(component)", Verdict.NOOP, ENGINE_STATE_ONLY, "component no longer declared", "component")


def _resource_changes(old: Registration, new: Registration, protected: bool) -> list[Change]:
    if old.inputs == new.inputs and old.options == new.options:
        return []  # the common case, cheaply
    changes = _input_changes(old, new)
    ignored = set(new.options.get("ignoreChanges") or ())
    on_change = set(new.options.get("replaceOnChanges") or ())
    changes = [_under_options(c, ignored, on_change) for c in changes]
    changes += _option_changes(old, new)
    changes += _undeclared_acl(new, changes, protected)
    if new.options.get("import") and any(c.verdict is Verdict.REPLACE for c in changes):
        text = "a replacement while the import option is set is an error: the new resource would get another id"
        changes.append(_change("(option import)", Verdict.REJECTED, ENGINE_IMPORT_REPLACE, text, "import"))
    if protected:
        changes = [_with_safety(c, old, new) for c in changes]
    return _with_replacement_guards(changes, old, new)


def _with_replacement_guards(changes: list[Change], old: Registration, new: Registration) -> list[Change]:
    """What stops a replacement on the way: said once, on the first change that replaces."""
    first = next((i for i, c in enumerate(changes) if c.verdict is Verdict.REPLACE), None)
    if first is None:
        return changes
    guards = []
    if old.options.get("retainOnDelete"):
        guards.append(
            f"state records retainOnDelete (the table is retired), so the delete leaves the old table in BigQuery "
            f"({retirement.RETAIN_RULE}) and the new one's create fails with 409 Already Exists: declare the table "
            "as it is until it is removed"
        )
    if old.options.get("protect") and new.options.get("protect"):
        guards.append(
            f"the engine refuses this replacement while protect is on in state and program ({STEPS} "
            "continueStepsFromDiff: new.Protect && old.Protect)"
        )
    if old.inputs.get("deletionProtection"):
        guards.append(
            f"the provider's delete fails while state records deletion_protection true ({TF_TABLE} "
            "resourceBigQueryTableDelete): an earlier up must lift it (approveDataLoss)"
        )
    engine_made = any(
        c.citation in (ENGINE_TRIGGER, ENGINE_REPLACE_ON_CHANGES) for c in changes if c.verdict is Verdict.REPLACE
    )
    if engine_made and not new.options.get("deleteBeforeReplace"):
        guards.append(
            "without deleteBeforeReplace the engine creates the new one first unless the provider forces "
            "the replacement (pulumi-terraform-bridge pkg/tfbridge/provider.go Diff): 409 Already Exists"
        )
    if not guards:
        return changes
    change = changes[first]
    changes[first] = replace(change, reason=f"{change.reason}. Also: {'; '.join(guards)}")
    return changes


def _input_changes(old: Registration, new: Registration) -> list[Change]:
    changes: list[Change] = []
    keys = sorted(old.inputs.keys() | new.inputs.keys())
    differing = [k for k in keys if old.inputs.get(k) != new.inputs.get(k)]
    if not differing:
        return changes
    if new.type == TABLE_TYPE:
        if any(k in CLASSIFIED_TABLE_PROPERTIES for k in differing):
            ref = f"{new.inputs.get('project')}.{new.inputs.get('datasetId')}.{new.inputs.get('tableId')}"
            changes += classify_table(_as_table(old), _as_table(new), ref)
            changes += _unclassified(old, new, differing, changes)
        rules = TABLE_RULES
        differing = [k for k in differing if k not in CLASSIFIED_TABLE_PROPERTIES]
    else:
        rules = DATASET_RULES if new.type == DATASET_TYPE else {}
    for key in differing:
        changes.append(_property_change(new, key, rules.get(key), old.inputs.get(key), new.inputs.get(key)))
    return changes


_PARTITIONING = frozenset({"timePartitioning", "rangePartitioning"})


def _unclassified(old: Registration, new: Registration, differing: list[str], found: list[Change]) -> list[Change]:
    """A catalog property whose registered value changed where the classifier sees no difference (an
    explicit false that is now left out): said, so no changed input goes unreported."""
    covered = {c.pulumi_property for c in found}
    if covered & _PARTITIONING:
        covered |= _PARTITIONING
    return [
        _change(
            f"({key})",
            Verdict.NOOP,
            TABLE_IN_PLACE,
            f"{key} {_show(old.inputs.get(key))} -> {_show(new.inputs.get(key))}: the same to the provider, "
            "which reads an unset value as false or empty",
            key,
        )
        for key in differing
        if key in CLASSIFIED_TABLE_PROPERTIES and key not in covered
    ]


def _property_change(new: Registration, key: str, rule: PropertyRule | None, before: Any, after: Any) -> Change:
    what = f"{key} {_show(before)} -> {_show(after)}"
    path = f"({key})"
    if rule is None:
        return _change(path, Verdict.UPDATE, NO_RULE, f"{what}; reported as an update", key)
    if key == "location" and isinstance(before, str) and isinstance(after, str) and before.lower() == after.lower():
        return _change(
            path, Verdict.NOOP, rule.citation, f"{what} differs only in letter case, which the provider ignores", key
        )
    if key == "accesses":
        return _access_change(path, before, after) or _change(
            path, rule.verdict, rule.citation, f"{what}: {rule.text}", key
        )
    if key == "maxTimeTravelHours":
        return _time_travel_change(path, what, before, after)
    if key == "expirationTime" and after is None:
        text = (
            f"{what}: the provider sends nothing, so BigQuery keeps the expiration and deletes the table and its "
            f"rows at {_epoch_ms(before)}; declare a later expirationTime, or clear it on the live table before then"
        )
        return _change(path, Verdict.REJECTED, TABLE_EXPIRATION_COMPUTED, text, key)
    fix = None
    text = f"{what}: {rule.text}"
    if key == "defaultTableExpirationMs" and after is None:
        text = f"{what}: in place; tables created from now on get no expiration, existing tables keep the one they have"
    if key == "encryptionConfiguration" and (after or {}).get("kmsKeyName"):
        # BigQuery re-keys a table in place; once a refresh records the key, the provider sees no change.
        ref = f"{new.inputs.get('project')}.{new.inputs.get('datasetId')}.{new.inputs.get('tableId')}"
        fix = f"ALTER TABLE `{ref}` SET OPTIONS (kms_key_name = '{after['kmsKeyName']}')"
        text += f". `migrate --apply` re-keys it in place with its rows ({fix}), then `pulumi up --refresh`"
    return _change(path, rule.verdict, rule.citation, text, key, fix)


def _hours(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _time_travel_change(path: str, what: str, before: Any, after: Any) -> Change:
    """How far back changed or deleted data can be recovered, worded for a reviewer."""
    old, new = _hours(before), _hours(after)
    key = "maxTimeTravelHours"
    if new is None:
        text = f"{what}: no longer sent; the provider keeps the window BigQuery reports, out-of-band changes included"
        return _change(path, Verdict.NOOP, TIME_TRAVEL_COMPUTED, text, key)
    if old is None:
        text = (
            f"{what}: in place; the window is declared from now on (the provider had kept what BigQuery reported: "
            f"{MAX_TIME_TRAVEL_HOURS} h unless changed out of band)"
        )
    elif new < old:
        text = (
            f"{what}: in place; changed or deleted rows, and dropped tables, can then be recovered only {new} h back "
            f"instead of {old} h (time travel, FOR SYSTEM_TIME AS OF, restoring a deleted table); a table deleted "
            "before the change keeps the window in force when it was deleted"
        )
    else:
        text = f"{what}: in place; data changed or deleted from now on can be recovered {new} h back instead of {old} h"
    return _change(path, Verdict.UPDATE, TIME_TRAVEL, text, key)


def _undeclared_acl(new: Registration, changes: list[Change], protected: bool) -> list[Change]:
    """A dataset update while the stack declares no ACL: said on every such update (pulumi/pulumi-gcp#3908)."""
    if new.type != DATASET_TYPE or "accesses" in new.inputs or any(c.verdict is Verdict.REPLACE for c in changes):
        return []
    sent = [
        c
        for c in changes
        if not c.path.startswith("(option")
        and c.verdict in (Verdict.UPDATE, Verdict.UPDATE_DESTRUCTIVE)
        and c.pulumi_property != "deletionPolicy"  # the update's one client-side field
    ]
    if not sent:
        return []
    text = (
        "accesses not set: this update PUTs the whole dataset (BigQuery REST datasets.update replaces the entire "
        "resource) with an ACL the stack does not declare. pulumi-gcp 9.35.0 and later leave access out of it when "
        "it did not change; earlier versions re-sent the ACL of the last refresh, so grants other tools made since "
        "vanished. What BigQuery does with a PUT without an ACL is not documented: set tenant-bigquery:access to own "
        "the ACL"
    )
    change = _change("(accesses)", Verdict.NOOP, ACL_UNDECLARED, text, "accesses")
    return (
        [replace(change, lowers_safety="dataset updated with an ACL the stack does not declare")]
        if protected
        else [change]
    )


def _access_change(path: str, before: Any, after: Any) -> Change | None:
    """The ACL is a set: reordered entries are no change, and a left-out ACL sends nothing."""
    if before and after is None:
        members = ", ".join(f"{e.get('role')} {_member(e)}" for e in before)
        text = (
            "accesses no longer set: the provider sends nothing, so the live ACL stays as last applied "
            f"({members}) and no member loses or gains access; to take access away, list the ACL without them"
        )
        return _change(path, Verdict.NOOP, ACCESS_COMPUTED, text, "accesses")
    if before and after and sorted(map(_access_key, before)) == sorted(map(_access_key, after)):
        text = "the same ACL entries in another order: the provider holds them as a set, so nothing is sent"
        return _change(path, Verdict.NOOP, ACCESS_SET, text, "accesses")
    return None


# resourceBigqueryDatasetAccessHash: emails compared in lower case, a legacy role as its IAM name.
_EMAIL_FIELDS = ("userByEmail", "groupByEmail")


def _access_key(entry: Mapping[str, Any]) -> str:
    normal = {k: str(v).lower() if k in _EMAIL_FIELDS else v for k, v in entry.items()}
    normal["role"] = _ACL_ROLES.get(str(entry.get("role")), entry.get("role"))  # a role's rank names it
    return json.dumps(normal, sort_keys=True)


def _epoch_ms(value: Any) -> str:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return f"expirationTime {value}"


def _show(value: Any) -> str:
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(_whole(value), sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _whole(value: Any) -> Any:
    """Numbers as the program wrote them: the engine's protobuf Struct carries every number as a double."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def _as_table(resource: Registration) -> Table:
    """The catalog's view of a registered table, for the column classifier: each property reads its inputs."""
    inputs = resource.inputs
    return Table(
        dataset=resource.component, table_id=str(inputs.get("tableId")), schema_file="", **fields_from_inputs(inputs)
    )


def _under_options(change: Change, ignored: set[str], on_change: set[str]) -> Change:
    if change.pulumi_property in ignored and change.verdict is not Verdict.NOOP:
        text = f"ignoreChanges lists {change.pulumi_property}: the old value is kept; without it: {change.reason}"
        return _change(change.path, Verdict.NOOP, ENGINE_IGNORE_CHANGES, text, change.pulumi_property)
    # The provider sends nothing for a noop or a removed expiration, so the engine sees no change to replace on.
    sends_nothing = change.verdict is Verdict.NOOP or change.citation in (
        EXPIRATION_COMPUTED,
        TABLE_EXPIRATION_COMPUTED,
    )
    if change.pulumi_property in on_change and not sends_nothing and change.verdict is not Verdict.REPLACE:
        text = (
            f"replaceOnChanges lists {change.pulumi_property} (recreateOnSchemaChange): the table is recreated, "
            f"empty; without it: {change.reason}"
        )
        return _change(change.path, Verdict.REPLACE, ENGINE_REPLACE_ON_CHANGES, text, change.pulumi_property)
    return change


def _option_changes(old: Registration, new: Registration) -> list[Change]:
    changes = []
    for key in sorted(old.options.keys() | new.options.keys(), key=_option_order):
        # An option a runner did not record is at its default.
        before, after = old.options.get(key, _DEFAULTS.get(key)), new.options.get(key, _DEFAULTS.get(key))
        if before != after:
            changes.append(_option_change(key, before, after, new.kind, bool(new.options.get("retainOnDelete"))))
    return changes


def _option_order(key: str) -> tuple[int, str]:
    return (OPTIONS.index(key) if key in OPTIONS else len(OPTIONS), key)


def _option_change(key: str, before: Any, after: Any, kind: str, retained: bool = False) -> Change:
    path, what = f"(option {key})", f"{key} {_show(before)} -> {_show(after)}"
    if key == "protect" and before and retained:
        text = (
            f"{what}: {_STATE_ONLY}; lifted with retainOnDelete, so the table's removal from the program gets past "
            f"the engine's protect check to retainOnDelete: {retirement.KEPT}"
        )
        return _change(path, Verdict.NOOP, ENGINE_PROTECT, text, key)
    if key == "retainOnDelete":
        text = f"{what}: {_STATE_ONLY}; from the next run on, removing the {kind} from the program " + (
            f"deletes it from Pulumi's state only: {retirement.KEPT} ({retirement.RUNBOOK})"
            if after
            else "deletes it in BigQuery again"
        )
        return _change(path, Verdict.NOOP, ENGINE_RETAIN, text, key)
    if key == "protect":
        text = (
            f"{what}: {_STATE_ONLY}; from this run on the engine lets a replacement or a deletion through"
            if before
            else f"{what}: {_STATE_ONLY}; from the next run on the engine stops a replacement or a deletion"
        )
        return _change(path, Verdict.NOOP, ENGINE_PROTECT, text, key)
    if key == "deleteBeforeReplace":
        text = f"{what}: {_STATE_ONLY}; a replacement " + (
            "deletes first"
            if after
            else "creates first unless the provider forces it (pulumi-terraform-bridge provider.go Diff), and "
            "creating a table whose id exists fails with 409 Already Exists"
        )
        return _change(path, Verdict.NOOP, ENGINE_DELETE_FIRST, text, key)
    if key == "replacementTrigger":
        if before is None or after is None:
            text = f"{what}: a null trigger on either side never replaces; {_STATE_ONLY}"
            return _change(path, Verdict.NOOP, ENGINE_TRIGGER, text, key)
        what_is_lost = "recreated empty" if kind == "table" else "recreated"
        return _change(
            path, Verdict.REPLACE, ENGINE_TRIGGER, f"{what}: the {kind} is deleted first and {what_is_lost}", key
        )
    if key == "ignoreChanges" and set(before or ()) - set(after or ()):
        no_longer = ", ".join(sorted(set(before or ()) - set(after or ())))
        text = (
            f"{what}: {no_longer} are compared with state again; where state holds the imported values "
            "(adoptExisting), this up updates them in place"
        )
        return _change(path, Verdict.UPDATE, ENGINE_IGNORE_CHANGES, text, key)
    if key in ("replaceOnChanges", "ignoreChanges"):
        rule = ENGINE_REPLACE_ON_CHANGES if key == "replaceOnChanges" else ENGINE_IGNORE_CHANGES
        return _change(path, Verdict.NOOP, rule, f"{what}: applies to the changes of this run and later ones", key)
    if key == "import":
        text = (
            f"{what}: the id is the one state records, so nothing is imported; an up compares inputs as usual"
            if after
            else f"{what}: {_STATE_ONLY}"
        )
        return _change(path, Verdict.NOOP, ENGINE_IMPORT, text, key)
    return _change(path, Verdict.UPDATE, NO_RULE, f"{what}; reported as an update", key)


# ---------------------------------------------------------------- safeties of a protected stack


def _with_safety(change: Change, old: Registration, new: Registration) -> Change:
    reason = _lowered(change.pulumi_property, old, new)
    return replace(change, lowers_safety=reason) if reason else change


def _lowered(prop: str, old: Registration, new: Registration) -> str | None:
    before, after = old.inputs.get(prop), new.inputs.get(prop)
    if prop == "protect" and old.options.get("protect") and not new.options.get("protect"):
        # Retired: the engine forgets the table instead of deleting it, and a replacement fails at its create.
        return None if new.options.get("retainOnDelete") else "Pulumi protect turned off"
    if prop == "deletionProtection" and before and not after:
        return "deletionProtection turned off"
    if prop == "deleteContentsOnDestroy" and after and not before:
        return "deleteContentsOnDestroy turned on"
    keys = prop in ("encryptionConfiguration", "defaultEncryptionConfiguration")
    if keys and (before or {}).get("kmsKeyName") and not (after or {}).get("kmsKeyName"):
        return "customer-managed key removed"
    if prop == "maxTimeTravelHours" and (_hours(after) or MAX_TIME_TRAVEL_HOURS) < (
        _hours(before) or MAX_TIME_TRAVEL_HOURS
    ):
        return "time-travel window shortened"
    if prop == "accesses":
        widened = _widened(before or [], after or [])
        if widened:
            return "ACL widened: " + ", ".join(widened)
    return None


def _widened(before: Iterable[Mapping[str, str]], after: Iterable[Mapping[str, str]]) -> list[str]:
    """Entries that grant a member more than before."""

    had: dict[str, int] = {}
    for entry in before:
        had[_member(entry)] = max(had.get(_member(entry), 0), _ACL_ROLES.get(entry.get("role", ""), 3))
    return [
        f"{entry.get('role') or 'authorized'} {_member(entry)}"  # a view's entry has no role
        for entry in after
        if _ACL_ROLES.get(entry.get("role", ""), 3) > had.get(_member(entry), 0)
    ]


def _member(entry: Mapping[str, Any]) -> str:
    """The member an entry names; emails in lower case, as resourceBigqueryDatasetAccessHash compares them."""
    if isinstance(view := entry.get("view"), Mapping):
        return f"view {view.get('projectId')}.{view.get('datasetId')}.{view.get('tableId')}"
    return ",".join(
        f"{k}={str(v).lower() if k in _EMAIL_FIELDS else v}" for k, v in sorted(entry.items()) if k != "role"
    )
