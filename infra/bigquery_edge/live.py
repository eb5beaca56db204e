"""The one google-cloud module: check a live project against the declarations (`verify`) and take
table snapshots before a forced recreation (`snapshot`).

The CLI hands in the validated catalog and typed settings and formats the result objects returned
here. Every call runs under the deadlines of its Connection (per request and per run). Anything that
stops the API from answering (no credentials, refused credentials, missing permission, an endpoint that
is unreachable, silent, failing or not the API) is a LiveError whose message is one line that says what
to do.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import retry_unary
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery import retry as bigquery_retry
from requests import exceptions as requests_exceptions

from infra.analysis.drift import (
    Check,
    DatasetState,
    VerifyReport,
    dataset_checks,
    declared_dataset,
    declared_table,
    declared_view,
    listing_checks,
    observed_state,
    observed_view,
    own_labels,
    storage_billing_model,
    table_checks,
    time_travel_hours,
    view_checks,
)
from infra.analysis.views import check_view, stack_queries
from infra.model.catalog import Catalog
from infra.model.declared import DeclaredDataset, DeclaredTable, DeclaredView, declare
from infra.model.rules import MS_PER_DAY, name_stamp
from infra.model.schema import Column, column_from_api
from infra.model.settings import Settings
from infra.model.table_properties import Table, TableState

# The variable google-cloud-bigquery itself reads for emulators (google.cloud.bigquery._helpers).
EMULATOR_HOST_ENV = "BIGQUERY_EMULATOR_HOST"
# Below requests' default pool of 10 connections per host, so no connection is thrown away.
WORKERS = 8
BACKUP_SUFFIX = "_backup"
SNAPSHOT_SEPARATOR = "__"

T = TypeVar("T")


class LiveError(Exception):
    """The live project could not be read or changed; nothing was checked or created."""


class SnapshotRefused(Exception):
    """A snapshot request that cannot be met as asked; refused before anything was created."""


# ---------------------------------------------------------------- connection

# The deadlines of every API call (README, "Deadlines and exit codes of the live commands"), in seconds.
REQUEST_SECONDS_ENV = "TENANT_BIGQUERY_REQUEST_SECONDS"
RUN_SECONDS_ENV = "TENANT_BIGQUERY_RUN_SECONDS"


@dataclass(frozen=True)
class Deadlines:
    """`request`: each HTTP request's timeout, and how long a failing call is retried. `run`: every call
    and every wait for a job (a snapshot, a query) of one command together."""

    request: float
    run: float


# Google's API answers a metadata call in well under a second, and a migrate query's copy of a large table
# takes minutes; a local server answers at once or not at all.
GOOGLE_DEADLINES = Deadlines(request=120, run=3600)
LOCAL_DEADLINES = Deadlines(request=10, run=600)


# The number of the attempt that failed with an exception, set on it by the retry of one call (_retry).
_ATTEMPT = "tenant_bigquery_attempt"


def _retry(seconds: float) -> retry_unary.Retry:
    """google-cloud-bigquery's DEFAULT_RETRY within `seconds`, numbering each failed attempt on its exception
    (`on_error` is called with every retryable one, the last included: api_core retry_base.py
    `_retry_error_helper`), so that `describe` knows whether a call was retried at all."""
    attempts = itertools.count(1)

    def number(error: Exception) -> None:
        setattr(error, _ATTEMPT, next(attempts))

    base = bigquery.DEFAULT_RETRY  # Retry has no with_on_error: built as its with_timeout builds a copy
    return retry_unary.Retry(
        predicate=base._predicate,
        initial=base._initial,
        maximum=base._maximum,
        multiplier=base._multiplier,
        timeout=seconds,
        on_error=number,
    )


@dataclass(frozen=True)
class Connection:
    client: bigquery.Client
    project: str
    endpoint: str | None  # None: Google's API with Application Default Credentials
    deadlines: Deadlines
    ends: float  # time.monotonic() at which the run's deadline passes
    source: str = "--endpoint"  # where the endpoint came from

    @property
    def target(self) -> str:
        return self.endpoint or "the BigQuery API"

    def _left(self, cap: float) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise LiveError(
                f"gave up: the run's deadline of {self.deadlines.run:g} s passed; set {RUN_SECONDS_ENV} "
                "for a longer one"
            )
        return min(cap, left)

    def call(self) -> dict[str, Any]:
        """`retry` and `timeout` of one API call (google-cloud-bigquery's Client methods): the HTTP request
        times out, and a failing call is retried, within the request deadline and what is left of the run.

        Both are needed: api_core checks a Retry's timeout only between attempts (retry_unary.py
        `retry_target`, retry_base.py `_retry_error_helper`), so a request that is never answered waits
        for its transport timeout, which google-cloud-bigquery leaves unset (retry.py `DEFAULT_TIMEOUT`).
        """
        seconds = self._left(self.deadlines.request)
        return {"retry": _retry(seconds), "timeout": seconds}

    def retried(self, function: Callable[..., T]) -> Callable[..., T]:
        """`function` under the same retry, for a REST method the client has no call for."""
        return _retry(self._left(self.deadlines.request))(function)

    def wait(self) -> dict[str, Any]:
        """`retry` and `timeout` of a job's `result()`: each poll, and the whole wait, end with the run
        (job/base.py `_AsyncJob.result`: `timeout` applies to each request and to the wait)."""
        return {"retry": self.call()["retry"], "timeout": self._left(self.deadlines.run)}

    def query(self) -> dict[str, Any]:
        """The deadlines of `Client.query_and_wait`. Its `job_retry` restarts a query that failed, by
        default for 40 minutes (retry.py `DEFAULT_JOB_RETRY`: `_DEFAULT_JOB_DEADLINE` = 2 x 2 x 10 min),
        and treats the RetryError of a call that kept failing as a failure to retry (`_job_should_retry`
        unwraps it): it gets the request deadline too. `api_timeout` is each request's timeout,
        `wait_timeout` the wait for the result (_job_helpers.py `query_and_wait`)."""
        seconds = self._left(self.deadlines.request)
        return {
            "retry": _retry(seconds),
            "job_retry": bigquery_retry.DEFAULT_JOB_RETRY.with_timeout(seconds),
            "api_timeout": seconds,
            "wait_timeout": self._left(self.deadlines.run),
        }

    def for_cleanup(self) -> Connection:
        """One more request deadline, to undo what a failed or interrupted step left behind."""
        return replace(self, ends=time.monotonic() + self.deadlines.request)


def live_table_id(conn: Connection, settings: Settings, dataset: str, table: str) -> str:
    """project.dataset.table of a declared table: the stack's dataset id (its suffix) in the connected project."""
    return f"{conn.project}.{settings.dataset_id(dataset)}.{table}"


def _deadlines(default: Deadlines) -> Deadlines:
    values = {}
    for name, variable in (("request", REQUEST_SECONDS_ENV), ("run", RUN_SECONDS_ENV)):
        text = os.environ.get(variable, "").strip()
        try:
            values[name] = float(text) if text else getattr(default, name)
        except ValueError:
            values[name] = -1.0
        if not 0 < values[name] < 10**7:
            raise LiveError(f"{variable}={text!r} is not a number of seconds; use e.g. {getattr(default, name):g}")
    return Deadlines(**values)


def _check_endpoint(endpoint: str, source: str) -> None:
    parts = urlsplit(endpoint)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise LiveError(f"{source} {endpoint!r} is not a URL with a host; use e.g. http://127.0.0.1:9050")


def connect(project: str, endpoint: str | None = None) -> Connection:
    """A client for `project`: anonymous against `endpoint` (or $BIGQUERY_EMULATOR_HOST), else ADC."""
    source = "--endpoint"
    if endpoint is None and os.environ.get(EMULATOR_HOST_ENV):
        endpoint, source = os.environ[EMULATOR_HOST_ENV], EMULATOR_HOST_ENV
    if endpoint is not None:
        _check_endpoint(endpoint, source)
        deadlines = _deadlines(LOCAL_DEADLINES)
        client = bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
        return Connection(client, project, endpoint, deadlines, time.monotonic() + deadlines.run, source)
    deadlines = _deadlines(GOOGLE_DEADLINES)
    try:
        credentials, _ = google.auth.default(scopes=bigquery.Client.SCOPE)
    except auth_exceptions.DefaultCredentialsError:
        raise LiveError(
            "no Google Cloud credentials found; run `gcloud auth application-default login` or set "
            f"GOOGLE_APPLICATION_CREDENTIALS (or pass --endpoint / set {EMULATOR_HOST_ENV} for a local server)"
        ) from None
    try:
        # Once here, not in every worker thread at once; a refused login fails before any check.
        credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    except auth_exceptions.RefreshError as error:
        raise LiveError(
            f"Google Cloud credentials were refused ({_first_line(error)}); run `gcloud auth application-default login`"
        ) from None
    except auth_exceptions.TransportError as error:
        raise LiveError(f"cannot reach Google's token service ({_first_line(error)}); check the network") from None
    client = bigquery.Client(project=project, credentials=credentials)
    return Connection(client, project, None, deadlines, time.monotonic() + deadlines.run)


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__


# What an API call can raise when the API does not answer as it should: the client's errors, api_core's
# retry giving up, requests' transport errors (a body that is not JSON included: requests' JSONDecodeError
# is an InvalidJSONError), google-auth's (AnonymousCredentials.refresh raises InvalidOperation when a
# server answers 401), a job wait that ran out, and the run's deadline.
API_FAILURES: tuple[type[Exception], ...] = (
    api_exceptions.GoogleAPICallError,
    api_exceptions.RetryError,
    requests_exceptions.RequestException,
    auth_exceptions.GoogleAuthError,
    TimeoutError,
    LiveError,
)


_STATUS_CODES = {status.value for status in HTTPStatus}


def _request_of(error: BaseException, before: str) -> str:
    """`{before}GET /bigquery/v2/...`: the method and resource of the request that failed, where known."""
    response = getattr(error, "response", None)
    request = getattr(response, "request", None) or getattr(error, "request", None)
    if request is None or not getattr(request, "url", None):
        return ""
    return f"{before}{request.method} {urlsplit(request.url).path}"


def describe(conn: Connection, error: BaseException) -> str:
    """One line saying why a call failed and what to do."""
    if isinstance(error, LiveError):
        return str(error)
    cause = error
    while isinstance(cause, api_exceptions.RetryError) and cause.cause is not None:  # job_retry wraps retry
        cause = cause.cause
    # A call is cut short by what is left of the run (Connection._left): then the run's deadline is the cause.
    if time.monotonic() >= conn.ends:
        within = retried = f"until the run's deadline of {conn.deadlines.run:g} s ({RUN_SECONDS_ENV}) passed"
    else:
        within = f"within {conn.deadlines.request:g} s"
        retried = f"retried for {conn.deadlines.request:g} s" if cause is not error else "not retried"
        if cause is not error and getattr(cause, _ATTEMPT, None) == 1:  # the one attempt used the whole deadline
            retried = f"not retried: the one attempt took {within.removeprefix('within ')}"
            if isinstance(cause, requests_exceptions.Timeout):
                retried = f"no answer {within}, so no time was left to retry"
    if isinstance(cause, auth_exceptions.InvalidOperation) and conn.endpoint is not None:
        return (
            f"{conn.target} answered 401 Unauthorized: it asks for credentials, and {conn.source} sends none; "
            "use a server that needs none, or unset it to use Application Default Credentials"
        )
    if isinstance(cause, (api_exceptions.Unauthorized, auth_exceptions.RefreshError)):
        return (
            f"{conn.target} refused the credentials ({_first_line(cause)}); run `gcloud auth application-default login`"
        )
    if isinstance(cause, api_exceptions.Forbidden):
        return f"permission denied in project {conn.project}: {_first_line(cause)}"
    if isinstance(cause, requests_exceptions.InvalidJSONError):
        body = " ".join(str(getattr(cause, "doc", "")).split())[:60]
        return (
            f"{conn.target} answered with a body that is not JSON ({body!r}); is a proxy or captive portal "
            "in the way? check the endpoint or network"
        )
    if isinstance(cause, requests_exceptions.Timeout):
        return (
            f"{conn.target} did not answer{_request_of(cause, ' ')} {within} ({type(cause).__name__}"
            f"{'' if within == retried else (': ' if retried.startswith('no answer') else ', ') + retried}); "
            "check the endpoint or network"
        )
    if isinstance(cause, (auth_exceptions.TransportError, requests_exceptions.RequestException)):
        return f"cannot reach {conn.target} ({type(cause).__name__}); check the endpoint or network"
    if isinstance(cause, api_exceptions.GoogleAPICallError) and cause is not error:
        status = f"{cause.code} {HTTPStatus(cause.code).phrase}" if cause.code in _STATUS_CODES else str(cause.code)
        # api_core puts "METHOD URL: " first (exceptions.py format_http_response_error), named here already.
        said = re.sub(r"^[A-Z]+ \S+: ", "", _first_line(cause))
        return f"{conn.target} answered {status}{_request_of(cause, ' to ')}, {retried}: {said}"
    if isinstance(cause, api_exceptions.GoogleAPICallError):
        return f"{conn.target} failed: {_first_line(cause)}"
    if isinstance(cause, TimeoutError):
        return f"a job did not finish within the run's deadline of {conn.deadlines.run:g} s; set {RUN_SECONDS_ENV}"
    return f"{conn.target} failed: {_first_line(cause)}"


def why_failed(conn: Connection, error: BaseException) -> str:
    """The reason of one table's failure: the API's own message when it answered with an error."""
    return _first_line(error) if isinstance(error, api_exceptions.GoogleAPICallError) else describe(conn, error)


@contextmanager
def api_errors(conn: Connection) -> Iterator[None]:
    """Translate the client's exceptions into one-line LiveErrors."""
    try:
        yield
    except LiveError:
        raise
    except API_FAILURES as error:
        raise LiveError(describe(conn, error)) from None


def or_none(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except api_exceptions.NotFound:
        return None


def table_or_none(conn: Connection, table: str | bigquery.TableReference) -> bigquery.Table | None:
    """The table, or None where BigQuery answers 404."""
    return or_none(lambda: conn.client.get_table(table, **conn.call()))


def observed_dataset(dataset: bigquery.Dataset) -> DatasetState:
    resource = dataset.to_api_repr()  # the REST form: the window is an int64 string, absent when unset
    return DatasetState(
        location=dataset.location or "",
        labels=own_labels(dataset.labels),
        description=dataset.description or "",
        default_table_expiration_ms=dataset.default_table_expiration_ms,
        kms_key_name=dataset.default_encryption_configuration.kms_key_name
        if dataset.default_encryption_configuration
        else None,
        access=frozenset((e.role or "", e.entity_type or "", _entity(e)) for e in dataset.access_entries),
        max_time_travel_hours=time_travel_hours(resource),
        storage_billing_model=storage_billing_model(resource),
    )


def _entity(entry: bigquery.AccessEntry) -> str:
    """Who an ACL entry names; a view (REST reference Dataset.access[].view, a TableReference) as
    project.dataset.table."""
    entity = entry.entity_id
    if isinstance(entity, dict) and entry.entity_type == "view":
        return f"{entity.get('projectId')}.{entity.get('datasetId')}.{entity.get('tableId')}"
    return str(entity)


def observed_column(field: bigquery.SchemaField) -> Column:
    """A live column in the catalog's canonical form, read from its REST form (BigQuery reports INTEGER, ...)."""
    return column_from_api(field.to_api_repr())


def observed_table(table: bigquery.Table) -> TableState:
    """The table's REST resource read through each property's spelling (infra/model/table_properties.py), the one
    a rebuild writes; its columns through the column reader."""
    return observed_state(table.to_api_repr(), tuple(observed_column(f) for f in table.schema))


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class _Fetched:
    dataset: DeclaredDataset
    live_id: str
    live: bigquery.Dataset | None
    listing: list[bigquery.table.TableListItem]
    tables: list[tuple[DeclaredTable, bigquery.Table | None]]
    views: list[tuple[DeclaredView, bigquery.Table | None]]


def verify(conn: Connection, catalog: Catalog, settings: Settings, workers: int = WORKERS) -> VerifyReport:
    """Check every declared dataset and table in the live project; every lookup runs concurrently."""
    client = conn.client
    with api_errors(conn), ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for dataset in declare(catalog, settings, stack_queries(catalog, settings)):
            ref = bigquery.DatasetReference(conn.project, dataset.args["dataset_id"])
            live = pool.submit(or_none, lambda ref=ref: client.get_dataset(ref, **conn.call()))
            listing = pool.submit(or_none, lambda ref=ref: list(client.list_tables(ref, **conn.call())))
            tables = [
                (table, pool.submit(table_or_none, conn, table_ref))
                for table in dataset.tables
                for table_ref in [ref.table(table.args["table_id"])]
            ]
            views = [
                (view, pool.submit(table_or_none, conn, ref.table(view.args["table_id"]))) for view in dataset.views
            ]
            pending.append((dataset, ref.dataset_id, live, listing, tables, views))
        fetched = [
            _Fetched(
                dataset,
                live_id,
                live.result(),
                listing.result() or [],
                [(t, f.result()) for t, f in tables],
                [(v, f.result()) for v, f in views],
            )
            for dataset, live_id, live, listing, tables, views in pending
        ]
    columns = {view.key: check_view(view, catalog).columns for view in catalog.views()}
    checks = [check for item in fetched for check in _checks_of(item, conn.project, columns)]
    return VerifyReport(conn.project, conn.target, tuple(checks))


def _exists(subject: str, live: bigquery.Table | None, kind: str, declared: str, advice: str) -> Check:
    """Whether the live table is there, and of the kind declared (BigQuery's Table.type)."""
    if live is None:
        return Check(subject, "exists", False, "not found")
    found = live.table_type or "TABLE"
    if found != kind:
        return Check(subject, "exists", False, f"a {found} stands where {declared} is declared; {advice}")
    return Check(subject, "exists", True)


def _checks_of(
    item: _Fetched, project: str, view_columns: dict[str, tuple[tuple[str, str | None], ...]]
) -> list[Check]:
    subject = f"dataset {item.live_id}"
    if item.live is None:
        missing = [
            Check(f"table {item.live_id}.{t.args['table_id']}", "exists", False, "not found") for t, _ in item.tables
        ]
        missing += [
            Check(f"view {item.live_id}.{v.args['table_id']}", "exists", False, "not found") for v, _ in item.views
        ]
        return [Check(subject, "exists", False, f"not found in project {project}"), *missing]
    checks = [Check(subject, "exists", True)]
    checks += dataset_checks(subject, declared_dataset(item.dataset), observed_dataset(item.live))
    for table, live_table in item.tables:
        table_subject = f"table {item.live_id}.{table.args['table_id']}"
        checks.append(exists := _exists(table_subject, live_table, "TABLE", "a table", "drop it or rename one"))
        if not exists.ok or live_table is None:
            continue
        checks += table_checks(table_subject, declared_table(table), observed_table(live_table))
    for view, live_view in item.views:
        view_subject = f"view {item.live_id}.{view.args['table_id']}"
        checks.append(exists := _exists(view_subject, live_view, "VIEW", "a view", "drop it"))
        if not exists.ok or live_view is None:
            continue
        observed = observed_view(live_view.to_api_repr(), tuple(observed_column(f) for f in live_view.schema))
        checks += view_checks(view_subject, declared_view(view, view_columns[view.view.key]), observed)
    declared_ids = {t.args["table_id"] for t in item.dataset.tables} | {v.args["table_id"] for v in item.dataset.views}
    listing = [(t.table_id, t.table_type or "TABLE") for t in item.listing]
    return checks + listing_checks(subject, item.live_id, declared_ids, item.dataset.dataset.retired_tables, listing)


# ---------------------------------------------------------------- snapshot


def _bq_name(full_id: str) -> str:
    """project.dataset.table as the bq tool spells it: project:dataset.table."""
    project, rest = full_id.split(".", 1)
    return f"{project}:{rest}"


@dataclass(frozen=True)
class Restore:
    """One way back from a snapshot, as a bq command and the same google-cloud-bigquery call."""

    target: str  # project.dataset.table
    bq: str
    python: str


@dataclass(frozen=True)
class Snapshot:
    source: str  # project.dataset.table
    snapshot: str
    expires: datetime

    @property
    def restored_name(self) -> str:
        """A new table beside the source: `<table>__restored_<snapshot time>`."""
        return f"{self.source}{SNAPSHOT_SEPARATOR}restored_{self.snapshot.rsplit(SNAPSHOT_SEPARATOR, 1)[1]}"

    def _restore(self, target: str, bq_flag: str, disposition: str) -> Restore:
        bq = f"bq cp --restore {bq_flag} {_bq_name(self.snapshot)} {_bq_name(target)}"
        python = (
            f'client.copy_table("{self.snapshot}", "{target}", job_config=bigquery.CopyJobConfig('
            f'operation_type="RESTORE", write_disposition="{disposition}")).result()'
        )
        return Restore(target, bq, python)

    def restore_to_new_table(self) -> Restore:
        """Safe: a new table with the snapshot's rows and schema; fails rather than overwrite anything."""
        return self._restore(self.restored_name, "--no_clobber", "WRITE_EMPTY")

    def restore_over_source(self) -> Restore:
        """Replaces the table's rows and schema with the snapshot's: rows written since are lost."""
        return self._restore(self.source, "--force", "WRITE_TRUNCATE")


@dataclass(frozen=True)
class SnapshotReport:
    project: str
    taken_at: datetime
    expires: datetime
    snapshots: tuple[Snapshot, ...]
    failures: tuple[tuple[str, str], ...]  # (table, why)
    created_datasets: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def snapshot_name(table_id: str, taken_at: datetime) -> str:
    return f"{table_id}{SNAPSHOT_SEPARATOR}{name_stamp(taken_at)}"


def snapshot(
    conn: Connection,
    settings: Settings,
    tables: Sequence[Table],
    expire_days: int,
    now: datetime | None = None,
) -> SnapshotReport:
    """Snapshot each table into <dataset>_backup (created if missing: same location, ACL and default key).

    Refuses (SnapshotRefused) before creating anything when a table is missing or not a table, or an
    existing backup dataset sits in another location, grants more than its source or has another key.
    Once something may have been created, an API error no longer aborts: it is a failure of the tables
    concerned, and the report still lists what was created.
    """
    taken_at = now or datetime.now(UTC)
    expires = taken_at + timedelta(days=expire_days)
    client = conn.client
    refs = {
        table.key: bigquery.DatasetReference(conn.project, settings.dataset_id(table.dataset)).table(table.table_id)
        for table in tables
    }
    with api_errors(conn), ThreadPoolExecutor(max_workers=WORKERS) as pool:
        lookups = pool.map(lambda r: table_or_none(conn, r), refs.values())
        found = dict(zip(refs, lookups, strict=True))
        missing = [_dotted(refs[key]) for key, live in found.items() if live is None]
        if missing:
            raise SnapshotRefused(f"not found in project {conn.project}: {', '.join(missing)}; nothing was snapshotted")
        kinds = {key: live.table_type for key, live in found.items() if live is not None}
        not_tables = [f"{_dotted(refs[key])} is a {kind}" for key, kind in kinds.items() if kind != "TABLE"]
        if not_tables:
            raise SnapshotRefused(f"only tables can be snapshotted: {', '.join(not_tables)}; nothing was snapshotted")

        sources = sorted({ref.dataset_id for ref in refs.values()})
        located = dict(zip(sources, pool.map(lambda d: client.get_dataset(d, **conn.call()), sources), strict=True))
        # Every refusal comes before the first creation.
        existing = {d: _existing_backup_or_refuse(conn, located[d]) for d in sources}

    backups: dict[str, bigquery.Dataset] = {}
    failures: list[tuple[str, str]] = []
    created: list[str] = []
    for d in sources:
        backup = existing[d]
        if backup is not None:
            backups[d] = backup
            continue
        try:
            backups[d] = _create_backup_dataset(conn, located[d], expire_days)
            created.append(f"{conn.project}.{backups[d].dataset_id}")
        except api_exceptions.Conflict:
            # Another run created it since the lookup: take it after the checks an existing one gets.
            why = f"backup dataset {d}{BACKUP_SUFFIX} already exists (created meanwhile), then was gone"
            try:
                if (backup := _existing_backup_or_refuse(conn, located[d])) is not None:
                    backups[d] = backup
                    continue
            except SnapshotRefused as error:
                why = str(error)
            except API_FAILURES as error:
                why = f"backup dataset {d}{BACKUP_SUFFIX} not read: {why_failed(conn, error)}"
            failures += [(_dotted(ref), why) for ref in refs.values() if ref.dataset_id == d]
        except API_FAILURES as error:
            why = f"backup dataset {d}{BACKUP_SUFFIX} not created: {why_failed(conn, error)}"
            failures += [(_dotted(ref), why) for ref in refs.values() if ref.dataset_id == d]

    snapshots = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        jobs = {
            key: pool.submit(
                _take_snapshot,
                conn,
                ref,
                backups[ref.dataset_id].table(snapshot_name(ref.table_id, taken_at)),
                expires,
                located[ref.dataset_id].location,
            )
            for key, ref in refs.items()
            if ref.dataset_id in backups
        }
        for key, job in jobs.items():
            try:
                snapshots.append(Snapshot(_dotted(refs[key]), job.result(), expires))
            except API_FAILURES as error:
                failures.append((_dotted(refs[key]), why_failed(conn, error)))
    return SnapshotReport(conn.project, taken_at, expires, tuple(snapshots), tuple(failures), tuple(created))


def _dotted(ref: bigquery.TableReference) -> str:
    return f"{ref.project}.{ref.dataset_id}.{ref.table_id}"


def _acl(dataset: bigquery.Dataset) -> set[tuple[str, str, str]]:
    return {(e.role or "", e.entity_type or "", str(e.entity_id)) for e in dataset.access_entries}


def _default_key(dataset: bigquery.Dataset) -> str | None:
    configuration = dataset.default_encryption_configuration
    return configuration.kms_key_name if configuration is not None else None


def _existing_backup_or_refuse(conn: Connection, source: bigquery.Dataset) -> bigquery.Dataset | None:
    """The backup dataset if it exists; refuse one in another location, with a broader ACL or another key.

    A snapshot holds the same rows as its table, so its dataset must protect them as the source does.
    """
    name, backup_name = source.dataset_id, source.dataset_id + BACKUP_SUFFIX
    ref = bigquery.DatasetReference(conn.project, backup_name)
    backup = or_none(lambda: conn.client.get_dataset(ref, **conn.call()))
    if backup is None:
        return None
    if (backup.location or "").upper() != (source.location or "").upper():
        raise SnapshotRefused(
            f"backup dataset {backup_name} is in {backup.location} but {name} is in "
            f"{source.location}; a snapshot must stay in its table's location: move or delete {backup_name}"
        )
    broader = sorted(_acl(backup) - _acl(source))
    if broader:
        extra = ", ".join(f"{role} {kind} {who}" for role, kind, who in broader)
        raise SnapshotRefused(
            f"backup dataset {backup_name} grants what {name} does not ({extra}): anyone in it could read the "
            f"snapshots; remove those entries from {backup_name}'s ACL, or delete {backup_name} to have it "
            f"created with {name}'s ACL"
        )
    if _default_key(backup) != _default_key(source):
        raise SnapshotRefused(
            f"backup dataset {backup_name} has default key {_default_key(backup) or 'none (Google-managed)'} but "
            f"{name} has {_default_key(source) or 'none (Google-managed)'}; snapshots take the backup dataset's key: "
            f"set it to {name}'s (bq update --default_kms_key KEY {conn.project}:{backup_name}), "
            f"or delete {backup_name}"
        )
    return backup


def _create_backup_dataset(conn: Connection, source: bigquery.Dataset, expire_days: int) -> bigquery.Dataset:
    """Same location, ACL and default key as the source: the snapshots are as private as the tables."""
    backup = bigquery.Dataset(bigquery.DatasetReference(conn.project, source.dataset_id + BACKUP_SUFFIX))
    backup.location = source.location
    backup.default_table_expiration_ms = expire_days * MS_PER_DAY
    backup.description = f"Table snapshots of {source.dataset_id} taken by `python -m infra.cli snapshot`."
    backup.access_entries = list(source.access_entries)
    if source.default_encryption_configuration is not None:
        backup.default_encryption_configuration = source.default_encryption_configuration
    return conn.client.create_dataset(backup, **conn.call())


def _take_snapshot(
    conn: Connection,
    source: bigquery.TableReference,
    destination: bigquery.TableReference,
    expires: datetime,
    location: str | None,
) -> str:
    config = bigquery.CopyJobConfig(
        operation_type="SNAPSHOT",
        destination_expiration_time=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    job = conn.client.copy_table(
        source, destination, job_config=config, job_id_prefix="snapshot-", location=location, **conn.call()
    )
    job.result(**conn.wait())
    return _dotted(destination)
