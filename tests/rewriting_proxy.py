"""An HTTP proxy on loopback between google-cloud-bigquery's client and the local BigQuery API server
that rewrites the server's JSON answers into the form real BigQuery gives, where the two differ.

The product then reads the real form through its own code path (`--endpoint` at the proxy): the client
library, `infra/live.py`, `drift.py`, `migration.py`, `live_migrate.py`. Each rewrite names its source.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# (method, path without query, the decoded JSON answer) -> the answer to hand the client.
Rewrite = Callable[[str, str, Any], Any]

# Hop-by-hop headers (RFC 9110 section 7.6.1) and those the proxy recomputes for the rewritten body.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
_TABLE_PATH = re.compile(r"^/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables(/[^/]+)?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects
    server: _ProxyServer

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
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


@contextmanager
def rewriting_proxy(upstream: str, *rewrites: Rewrite) -> Iterator[str]:
    """A proxy to `upstream` (http://host:port) on a free loopback port; yields its endpoint URL."""
    target = urlsplit(upstream)
    server = _ProxyServer(("127.0.0.1", 0), _Handler)
    server.upstream_host, server.upstream_port = target.hostname or "127.0.0.1", target.port or 80
    server.rewrites = list(rewrites)
    thread = threading.Thread(target=server.serve_forever, name="rewriting-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
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
    (infra/live_migrate.py `read_live`). The local server never reports one (local-bigquery 0.4.0).
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
