"""An HTTP proxy on loopback between google-cloud-bigquery's client and the local BigQuery API server
that rewrites the server's JSON answers into the form real BigQuery gives, where the two differ, and
injects faults (a status, a body that is not JSON, a request never answered) per request.

The product then reads the real form through its own code path (`--endpoint` at the proxy): the client
library, `infra/bigquery_edge/live.py`, `drift.py`, `migration.py`, `live_migrate.py`. Each rewrite names its source.
A new fault case is one `Fault(...)` in the `faults` of `rewriting_proxy`.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# (method, path without query, the decoded JSON answer) -> the answer to hand the client.
Rewrite = Callable[[str, str, Any], Any]

# Hop-by-hop headers (RFC 9110 section 7.6.1) and those the proxy recomputes for the rewritten body.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
_TABLE_PATH = re.compile(r"^/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables(/[^/]+)?$")

# The `reason` of an error answer's ErrorProto where BigQuery's error table gives one for the status
# (cloud.google.com/bigquery/docs/error-messages: backendError is 500, 503 or 504; duplicate 409;
# notFound 404; accessDenied 403); google-cloud-bigquery retries on it (google/cloud/bigquery/retry.py
# `_should_retry`: backendError is in `_RETRYABLE_REASONS`).
_REASONS = {500: "backendError", 503: "backendError", 504: "backendError", 409: "duplicate", 404: "notFound"}
# google.rpc.Code's name for each status, as the `status` field of Google's JSON error
# (cloud.google.com/apis/design/errors, "HTTP mapping").
_RPC_STATUS = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class Fault:
    """What the proxy does instead of forwarding the requests it matches.

    A request matches when its method is `method` (any if None), `path` is found in its path (a regular
    expression, the query string left out) and `body` in its body; only the first `times` matches (every
    one if None). Exactly one of:
    - `status`: answer it with Google's JSON error for that status (`error.code`, `.message`, `.status`,
      and the `errors` list of ErrorProto with BigQuery's `reason` where its error table names one);
    - `raw`: answer 200 with this body as text/html, what a captive portal or a misconfigured proxy sends;
    - `hang`: read the request and never answer it (until the proxy stops);
    - `lost`: forward the request, then never answer it: the server carried it out, the client never hears;
    - `before`: call it, then forward the request (e.g. another client creates what the request creates).
    `seen` is set when a request matched; `count` says how many did.
    """

    path: str = ""
    method: str | None = None
    body: str | None = None
    times: int | None = None
    status: int | None = None
    raw: bytes | None = None
    hang: bool = False
    lost: bool = False
    before: Callable[[], None] | None = None
    seen: threading.Event = field(default_factory=threading.Event)
    count: int = 0

    def claims(self, method: str, path: str, body: bytes | None) -> bool:
        if self.method not in (None, method) or not re.search(self.path, path):
            return False
        if self.body is not None and self.body.encode() not in (body or b""):
            return False
        if self.times is not None and self.count >= self.times:
            return False
        self.count += 1
        self.seen.set()
        return True


def error_body(status: int) -> bytes:
    """Google's JSON error for `status` (see Fault), e.g. for 503 what BigQuery sends when overloaded."""
    message = f"Fault injected by the test proxy: {HTTPStatus(status).phrase}"
    error: dict[str, Any] = {"code": status, "message": message, "status": _RPC_STATUS.get(status, "UNKNOWN")}
    error["errors"] = [{"message": message, "domain": "global", "reason": _REASONS.get(status, "invalid")}]
    return json.dumps({"error": error}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects
    server: _ProxyServer

    def _answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _fault(self, body: bytes | None) -> bool:
        """Act on the first fault that claims the request; True when it was answered (or held)."""
        path = urlsplit(self.path).path
        with self.server.lock:
            fault = next((f for f in self.server.faults if f.claims(self.command, path, body)), None)
        if fault is None:
            return False
        if fault.before is not None:
            fault.before()
            return False
        if fault.lost:
            self.lost = True
            return False
        if fault.hang:
            self.server.released.wait()
            self.close_connection = True
        elif fault.raw is not None:
            self._answer(200, fault.raw, "text/html; charset=utf-8")
        else:
            assert fault.status is not None, "a Fault needs status, raw, hang or before"
            self._answer(fault.status, error_body(fault.status), "application/json; charset=UTF-8")
        return True

    lost = False

    def _forward(self) -> None:
        self.lost = False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self._fault(body):
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers["Accept-Encoding"] = "identity"  # the proxy must read what it rewrites
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            answer_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in _NOT_FORWARDED]
            status = answer.status
        finally:
            upstream.close()
        if self.lost:
            self.server.released.wait()
            self.close_connection = True
            return
        if payload and "json" in (answer.getheader("Content-Type") or ""):
            document = json.loads(payload)
            path = urlsplit(self.path).path
            for rewrite in self.server.rewrites:
                document = rewrite(self.command, path, document)
            payload = json.dumps(document).encode()
        self.send_response(status)
        for key, value in answer_headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the suite's output is pytest's


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    upstream_host: str
    upstream_port: int
    rewrites: list[Rewrite]
    faults: list[Fault]
    lock: threading.Lock
    released: threading.Event  # set at the end: held requests close


@contextmanager
def rewriting_proxy(upstream: str, *rewrites: Rewrite, faults: Sequence[Fault] = ()) -> Iterator[str]:
    """A proxy to `upstream` (http://host:port) on a free loopback port; yields its endpoint URL."""
    target = urlsplit(upstream)
    server = _ProxyServer(("127.0.0.1", 0), _Handler)
    server.upstream_host, server.upstream_port = target.hostname or "127.0.0.1", target.port or 80
    server.rewrites = list(rewrites)
    server.faults, server.lock, server.released = list(faults), threading.Lock(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, name="rewriting-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join()


def _is_table(path: str, document: Any) -> bool:
    """A Table resource: the answer of tables.get, .insert, .patch and .update (not tables.list)."""
    return bool(_TABLE_PATH.match(path)) and isinstance(document, dict) and "tableReference" in document


def versioned_table_keys(version: int) -> Rewrite:
    """Table keys as real BigQuery reports them: `.../cryptoKeys/K/cryptoKeyVersions/N`.

    Source: Google's notice quoted in hashicorp/terraform-provider-google issue #9208 ("starting
    September 1, 2021 ... the EncryptionConfiguration kmsKeyName field in the table and model metadata
    will display KMS key names in the following format: projects/.../locations/.../keyRings/.../
    cryptoKeys/.../cryptoKeyVersions/..."), and terraform-provider-google
    google/services/bigquery/resource_bigquery_table.go `flattenEncryptionConfiguration`, which exists to
    split that form into `kms_key_name` and `kms_key_version`. The local server returns the name as
    stored (local-bigquery 0.4.0). Datasets keep the unversioned name: the notice names tables and models
    only, and resource_bigquery_dataset.go `flattenBigQueryDatasetDefaultEncryptionConfigurationKmsKeyName`
    returns the API's value unchanged.
    """

    def rewrite(method: str, path: str, document: Any) -> Any:
        key = (document.get("encryptionConfiguration") or {}).get("kmsKeyName") if _is_table(path, document) else None
        if key and "/cryptoKeyVersions/" not in key:
            document["encryptionConfiguration"]["kmsKeyName"] = f"{key}/cryptoKeyVersions/{version}"
        return document

    return rewrite


def streaming_buffer(table_id: str) -> Rewrite:
    """A streaming buffer on `table_id` (project.dataset.table), as real BigQuery reports one after
    tabledata.insertAll: the REST reference's Table.streamingBuffer (Streamingbuffer: estimatedBytes,
    estimatedRows, oldestEntryTime; uint64, which the JSON API writes as strings), the fields of
    google-cloud-bigquery's own unit-test resource (googleapis/python-bigquery tests/unit/test_table.py,
    `TestTable._make_resource`). The values are any; the product reads only that the buffer is there
    (infra/bigquery_edge/live_migrate.py `read_live`). The local server never reports one (local-bigquery 0.4.0).
    """
    project, dataset, table = table_id.split(".")
    path = f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}"

    def rewrite(method: str, request_path: str, document: Any) -> Any:
        if request_path == path and _is_table(request_path, document):
            document["streamingBuffer"] = {
                "estimatedBytes": "329",
                "estimatedRows": "1",
                "oldestEntryTime": "1736055744577",
            }
        return document

    return rewrite


def dry_run_bytes(bytes_for: Callable[[str], int | None]) -> Rewrite:
    """Dry runs answered as real BigQuery answers them: the Job resource of jobs.insert with
    `configuration.dryRun`, whose JobStatistics.totalBytesProcessed and JobStatistics2
    (`statistics.query`).totalBytesProcessed hold the bytes the query would process, an int64 the JSON API
    writes as a string (REST reference: Job, JobStatistics, JobStatistics2, "If this query was a dry run, this
    is the number of bytes that would be processed if the query were run"); google-cloud-bigquery reads the
    second (google/cloud/bigquery/job/query.py `QueryJob.total_bytes_processed`). `bytes_for(sql)` gives the
    bytes of each query; None leaves both fields out, as an answer that reports nothing. The local server
    answers every dry run with "0" (local-bigquery 0.4.0), whatever the query reads; it keeps the rest of the
    resource (`referencedTables`, `statementType`), which real BigQuery sends in the same form.
    """

    def rewrite(method: str, path: str, document: Any) -> Any:
        configuration = document.get("configuration") if isinstance(document, dict) else None
        if method != "POST" or not path.endswith("/jobs") or not isinstance(configuration, dict):
            return document
        if not configuration.get("dryRun"):
            return document
        count = bytes_for(configuration["query"]["query"])
        statistics = document.setdefault("statistics", {})
        query = statistics.setdefault("query", {})
        for fields in (statistics, query):
            fields.pop("totalBytesProcessed", None)
            if count is not None:
                fields["totalBytesProcessed"] = str(count)
        return document

    return rewrite
