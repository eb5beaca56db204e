"""What `verify` compares, as plain data: the declared and the observed state of a dataset and its
tables, and the checks that say what differs. Pure: no google-cloud import (infra/bigquery_edge/live.py reads the API
and turns its objects into these states).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from infra.model import retirement
from infra.model.column_attributes import VERIFIED
from infra.model.declared import API_MEMBER_FIELDS, DeclaredDataset, DeclaredTable, DeclaredView, access_members
from infra.model.render import NONE, columns_text, duration_text, short_text
from infra.model.rules import MAX_TIME_TRAVEL_HOURS
from infra.model.schema import Column, data_policy_paths, policy_tag_paths, without_data_policies
from infra.model.table_properties import (
    TABLE_PROPERTIES,
    Compare,
    TableState,
    rest_resource,
    state_fields,
)

UNDECLARED = "undeclared"
RETIRED = "retired"
_MAX_SCHEMA_DIFFERENCES = 6


@dataclass(frozen=True)
class DatasetState:
    location: str
    labels: Mapping[str, str]
    description: str
    default_table_expiration_ms: int | None
    kms_key_name: str | None
    access: frozenset[tuple[str, str, str]] | None  # (role, entity type, entity); None: not managed
    max_time_travel_hours: int = MAX_TIME_TRAVEL_HOURS
    storage_billing_model: str | None = None  # None: not set (BigQuery's default)


def time_travel_hours(resource: Mapping[str, Any]) -> int:
    """The window of a REST Dataset resource: int64 as a string, 168 when absent (REST reference, Dataset
    maxTimeTravelHours: "The default value is 168 hours if this is not set")."""
    value = resource.get("maxTimeTravelHours")
    return MAX_TIME_TRAVEL_HOURS if value is None else int(value)


def storage_billing_model(resource: Mapping[str, Any]) -> str | None:
    """REST Dataset storageBillingModel; absent or STORAGE_BILLING_MODEL_UNSPECIFIED when never set."""
    value = resource.get("storageBillingModel")
    return None if value in (None, "STORAGE_BILLING_MODEL_UNSPECIFIED") else str(value)


# What is declared is what the program hands the provider (infra/model/declared.py), read in the form the
# API reports it, so verify checks exactly what `pulumi up` manages.


def declared_dataset(declared: DeclaredDataset) -> DatasetState:
    args = declared.args
    accesses = args.get("accesses")
    return DatasetState(
        location=args["location"],
        labels=args["labels"] or {},
        description=args["description"] or "",
        default_table_expiration_ms=args.get("default_table_expiration_ms"),
        kms_key_name=args["default_encryption_configuration"]["kms_key_name"]
        if "default_encryption_configuration" in args
        else None,
        access=None
        if accesses is None
        else frozenset(
            (entry.get("role", ""), API_MEMBER_FIELDS[field], member)
            for entry in accesses
            for field, member in access_members(entry)
        ),
        max_time_travel_hours=int(args["max_time_travel_hours"]),
        storage_billing_model=args.get("storage_billing_model"),
    )


def observed_state(resource: Mapping[str, Any], columns: tuple[Column, ...]) -> TableState:
    """A table as BigQuery's REST Table resource describes it, read through every property's spelling;
    `columns` is its schema as the caller's column reader read it."""
    return TableState(**state_fields(resource, columns))


def declared_table(declared: DeclaredTable) -> TableState:
    """Read back from the REST resource a rebuild would create: the live reader's own spelling."""
    state = observed_state(rest_resource(declared.args), declared.table.schema)
    return replace(state, column_masking=declared.table.column_masking)


def own_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Labels without Google's `goog-` ones: pulumi-gcp adds `goog-pulumi-provisioned` to what it creates
    (outside the declared labels), and Google's services add their own."""
    return {k: v for k, v in (labels or {}).items() if not k.startswith("goog-")}


@dataclass(frozen=True)
class Check:
    subject: str  # "dataset tenants" or "table tenants.tenant_profiles"
    name: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        text = f"{'✓' if self.ok else '✗'} {self.subject} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "check": self.name, "ok": self.ok, "detail": self.detail}


def listing_checks(
    subject: str, live_id: str, declared: set[str], retired: tuple[str, ...], listing: list[tuple[str, str]]
) -> list[Check]:
    """What the dataset holds beyond its declared tables, `listing` being (table id, type) of each live one: a
    retired table is kept on purpose (infra/model/retirement.py), any other nothing declares."""
    live = dict(listing)
    checks = [
        Check(f"table {live_id}.{table_id}", RETIRED, True, f"{retirement.KEPT}, retired_tables lists it")
        if table_id in live
        else Check(
            f"table {live_id}.{table_id}", RETIRED, True, "not in the dataset any more; remove it from retired_tables"
        )
        for table_id in retired
    ]
    undeclared = sorted((t, kind) for t, kind in listing if t not in declared and t not in retired)
    checks += [
        Check(f"table {live_id}.{t}", UNDECLARED, False, f"a {kind} that no declaration lists")
        for t, kind in undeclared
    ]
    if not undeclared:
        checks.append(Check(subject, "undeclared tables", True, "none"))
    return checks


def _labels_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def _same(subject: str, name: str, declared: Any, live: Any, show: Callable[[Any], str] = str) -> Check:
    if declared == live:
        return Check(subject, name, True, show(declared))
    return Check(subject, name, False, f"is {show(live)}; declared {show(declared)}")


def _labels_check(subject: str, declared: Mapping[str, str], live: Mapping[str, str]) -> Check:
    if dict(declared) == dict(live):
        return Check(subject, "labels", True, _labels_text(declared))
    parts = [f"missing {k}={v}" for k, v in sorted(declared.items()) if k not in live]
    parts += [f"{k} is {live[k]!r}, declared {v!r}" for k, v in sorted(declared.items()) if k in live and live[k] != v]
    parts += [f"undeclared {k}={v}" for k, v in sorted(live.items()) if k not in declared]
    return Check(subject, "labels", False, "; ".join(parts))


def _column_text(column: Column) -> str:
    return f"{column.type} {column.mode}"


def schema_differences(declared: tuple[Column, ...], live: tuple[Column, ...], parent: str = "") -> list[str]:
    """Differences by column name at every depth; column order does not matter (as for the provider)."""
    differences: list[str] = []
    live_by_name = {c.name: c for c in live}
    declared_names = {c.name for c in declared}
    for column in declared:
        path = f"{parent}{column.name}"
        found = live_by_name.get(column.name)
        if found is None:
            differences.append(f"missing column {path} ({_column_text(column)})")
            continue
        for attribute in VERIFIED:
            # Unset and empty are the same to BigQuery (collation '', no policy tags, scale 0).
            want, have = attribute.value(column) or None, attribute.value(found) or None
            if want != have:
                differences.append(attribute.verify_difference(path, want, have))
        if column.fields or found.fields:
            differences += schema_differences(column.fields, found.fields, f"{path}.")
    differences += [
        f"undeclared column {parent}{c.name} ({_column_text(c)})" for c in live if c.name not in declared_names
    ]
    return differences


def _schema_check(subject: str, declared: tuple[Column, ...], live: tuple[Column, ...]) -> Check:
    differences = schema_differences(declared, live)
    if not differences:
        return Check(subject, "schema", True, f"{columns_text(declared)} as declared")
    shown = differences[:_MAX_SCHEMA_DIFFERENCES]
    more = len(differences) - len(shown)
    return Check(subject, "schema", False, "; ".join(shown) + (f"; and {more} more" if more else ""))


def dataset_checks(subject: str, declared: DatasetState, live: DatasetState) -> list[Check]:
    return [
        # BigQuery treats location names case-insensitively (us == US).
        _same(subject, "location", declared.location.upper(), live.location.upper()),
        _labels_check(subject, declared.labels, live.labels),
        _same(subject, "description", declared.description, live.description, short_text),
        _same(
            subject,
            "default table expiration",
            declared.default_table_expiration_ms,
            live.default_table_expiration_ms,
            lambda ms: duration_text(ms) if ms else NONE,
        ),
        *_encryption_check(subject, "default encryption key", declared.kms_key_name, live.kms_key_name),
        *_access_check(subject, declared.access, live.access),
        _time_travel_check(subject, declared.max_time_travel_hours, live.max_time_travel_hours),
        *_billing_model_check(subject, declared.storage_billing_model, live.storage_billing_model),
    ]


def _time_travel_check(subject: str, declared: int, live: int) -> Check:
    """A shorter live window breaks the recovery the declaration promises; a longer one only costs storage."""
    if live < declared:
        return Check(
            subject,
            "time travel window",
            False,
            f"is {live} h; declared {declared} h: changed or deleted data can be recovered only {live} h back",
        )
    if live > declared:
        return Check(subject, "time travel window", True, f"is {live} h, longer than the declared {declared} h")
    return Check(subject, "time travel window", True, f"{declared} h")


def _billing_model_check(subject: str, declared: str | None, live: str | None) -> list[Check]:
    """Only where the declaration sets one: an unset model is BigQuery's (or the project's) default."""
    if declared is None:
        return []
    return [_same(subject, "storage billing model", declared, live, lambda model: model or "not set")]


def _access_check(
    subject: str, declared: frozenset[tuple[str, str, str]] | None, live: frozenset[tuple[str, str, str]] | None
) -> list[Check]:
    """Only where the stack manages the ACL (tenant-bigquery:access); then it owns every entry."""
    if declared is None:
        return []
    live = live or frozenset()
    if declared == live:
        return [Check(subject, "access", True, f"{len(declared)} entries as declared")]
    parts = [
        " ".join(filter(None, ("missing", role, f"{kind}:{entity}"))) for role, kind, entity in sorted(declared - live)
    ]
    parts += [
        " ".join(filter(None, ("undeclared", role, f"{kind}:{entity}")))
        for role, kind, entity in sorted(live - declared)
    ]
    return [Check(subject, "access", False, "; ".join(parts))]


def table_checks(subject: str, declared: TableState, live: TableState) -> list[Check]:
    checks: list[Check] = []
    for prop in TABLE_PROPERTIES:
        verify = prop.verify
        if verify.applies is not None and not (verify.applies(declared) or verify.applies(live)):
            continue
        want, have = prop.value(declared), prop.value(live)
        if verify.compare is Compare.COLUMNS:
            governed = declared.column_masking == "governance"
            checks.append(_schema_check(subject, want, without_data_policies(have) if governed else have))
            checks.append(_masking_check(subject, want, have, governed))
        elif verify.compare is Compare.LABELS:
            checks.append(_labels_check(subject, want, own_labels(have)))
        elif verify.compare is Compare.KEY:
            checks += _encryption_check(subject, verify.check, want, have, live.kms_key_version)
        else:
            checks.append(_same(subject, verify.check, want, have, verify.show))
    return checks


def _masking_text(columns: tuple[Column, ...], tags: bool = True) -> str:
    """Each protected column with its data policies (and its policy tag, which the schema check compares)."""
    masked = [f"{path} data policies {', '.join(names)}" for path, names in data_policy_paths(columns)]
    if tags:
        masked += [f"{path} policy tag {', '.join(names)}" for path, names in policy_tag_paths(columns)]
    return "; ".join(sorted(masked)) or "no column has data policies or a policy tag"


def _masking_check(subject: str, declared: tuple[Column, ...], live: tuple[Column, ...], governed: bool) -> Check:
    """The data policies on every column: compared when this repository owns them (a drift is a failure; the
    schema check names it too), shown as information when the governance team does."""
    if governed:
        return Check(subject, "masking", True, f"owned by governance; attached: {_masking_text(live, tags=False)}")
    want, have = dict(data_policy_paths(declared)), dict(data_policy_paths(live))
    if want == have:
        return Check(subject, "masking", True, f"{_masking_text(declared)}, as declared")
    parts = [
        f"{path} has {', '.join(have.get(path, ())) or 'none'}, declared {', '.join(names) or 'none'}"
        for path, names in sorted({**{p: () for p in have}, **want}.items())
        if have.get(path, ()) != names
    ]
    return Check(subject, "masking", False, "; ".join(parts))


def _encryption_check(
    subject: str, name: str, declared: str | None, live: str | None, version: str | None = None
) -> list[Check]:
    """Only where a customer-managed key is declared or present: Google-managed is the default."""
    if declared is None and live is None:
        return []
    check = _same(subject, name, declared, live, lambda key: key or "Google-managed")
    if version is None:
        return [check]
    return [replace(check, detail=f"{check.detail} (BigQuery reports version {version.rsplit('/', 1)[1]})")]


@dataclass(frozen=True)
class ViewState:
    query: str
    legacy_sql: bool
    columns: tuple[tuple[str, str | None], ...]  # name and type; None: the declaration cannot tell the type
    labels: Mapping[str, str]
    description: str


def declared_view(declared: DeclaredView, columns: tuple[tuple[str, str | None], ...]) -> ViewState:
    """What the program sends for the view, and the columns its query exposes (infra/analysis/views.py)."""
    args = declared.args
    return ViewState(
        args["view"]["query"], args["view"]["use_legacy_sql"], columns, args["labels"] or {}, args["description"] or ""
    )


def observed_view(resource: Mapping[str, Any], columns: tuple[Column, ...]) -> ViewState:
    """A view as its REST Table resource describes it: `view` {query, useLegacySql} (ViewDefinition; an omitted
    useLegacySql is false for a view written through the API with it false), its derived schema."""
    view = resource.get("view") or {}
    return ViewState(
        str(view.get("query") or ""),
        bool(view.get("useLegacySql", False)),
        tuple((c.name, c.type) for c in columns),
        own_labels(resource.get("labels")),
        str(resource.get("description") or ""),
    )


def normalised_query(query: str) -> str:
    """The query with runs of white space as one space: BigQuery keeps the text it is sent, and a reformat of the
    file is no change of what the view reads."""
    return " ".join(query.split())


def view_checks(subject: str, declared: ViewState, live: ViewState) -> list[Check]:
    checks = [
        _same(subject, "query", normalised_query(declared.query), normalised_query(live.query), short_text),
        _same(subject, "legacy SQL", declared.legacy_sql, live.legacy_sql),
        _labels_check(subject, declared.labels, live.labels),
        _same(subject, "description", declared.description, live.description, short_text),
    ]
    live_types = {name.lower(): type_ for name, type_ in live.columns}
    declared_names = {name.lower() for name, _ in declared.columns}
    differences = [f"missing column {name}" for name, _ in declared.columns if name.lower() not in live_types]
    differences += [
        f"column {name} is {live_types[name.lower()]}, the query gives {type_}"
        for name, type_ in declared.columns
        if type_ is not None and live_types.get(name.lower()) not in (None, type_)
    ]
    differences += [f"undeclared column {name}" for name, _ in live.columns if name.lower() not in declared_names]
    if differences:
        checks.append(Check(subject, "schema", False, "; ".join(differences)))
    else:
        checks.append(Check(subject, "schema", True, f"{len(declared.columns)} columns as the query gives them"))
    return checks


@dataclass(frozen=True)
class VerifyReport:
    project: str
    target: str
    checks: tuple[Check, ...]
    # Per declared table, the last `migrate --apply` that changed it (infra/model/history.py `last_migrations`).
    migrations: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def import_blockers(self) -> list[Check]:
        """Failures an import would adopt as they are; a table nobody declares is not imported, so it never blocks."""
        return [c for c in self.failures if c.name != UNDECLARED]

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "target": self.target,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
            "last_migrated": list(self.migrations),
        }
