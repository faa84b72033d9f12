"""The Kubernetes API client the gateway's sidecar runs (`sidecar.kube_client`)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstrace.gateway import manifests
from sidecar import kube_client
from sidecar.kube_client import Api, TokenFile

PROJECT_DIR = Path(__file__).resolve().parent.parent
CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"


# --- token files ----------------------------------------------------------------------------


def test_token_file_is_read_again_when_it_is_swapped(tmp_path: Path) -> None:
    """As the kubelet rotates a projected token: a new file renamed over the old one."""
    token = tmp_path / "token"
    token.write_text("first\n")
    source = TokenFile(token)
    assert source.current().token == "first"
    (tmp_path / "token.new").write_text("second\n")
    os.replace(tmp_path / "token.new", token)
    assert source.current().token == "second"


def test_missing_token_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(kube_client.CredentialError) as raised:
        TokenFile(tmp_path / "token").current()
    assert (
        str(raised.value) == f"token file {tmp_path}/token: cannot read: No such file or directory"
    )


def test_in_cluster_outside_a_pod_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(kube_client.KubeconfigError) as raised:
        Api.in_cluster(tmp_path, environ={})
    assert str(raised.value) == (
        "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
    )


def test_in_cluster_reads_the_service_account_folder(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "namespace").write_text("system-tenant")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    api = Api.in_cluster(tmp_path, environ=environ)
    assert (api.server, api.namespace, api.certificate_authority) == (
        "https://[fd00::1]:443",
        "system-tenant",
        CA,
    )
    assert isinstance(api.credentials, TokenFile)
    assert api.credentials.path == tmp_path / "token"


# --- errors ---------------------------------------------------------------------------------


def test_api_error_names_method_path_status_and_the_servers_message() -> None:
    status = {"kind": "Status", "code": 404, "message": 'configmaps "x" not found'}
    error = kube_client.api_error("GET", "/api/v1/namespaces/a/configmaps/x", 404, status)
    assert isinstance(error, kube_client.NotFound)
    assert (
        str(error)
        == 'GET /api/v1/namespaces/a/configmaps/x: 404 Not Found: configmaps "x" not found'
    )


def test_api_error_without_a_status_object_shows_the_body_on_one_line() -> None:
    error = kube_client.api_error("POST", "/api/v1/nodes", 502, "<html>\n  bad gateway\n</html>")
    assert type(error) is kube_client.ApiError
    assert str(error) == "POST /api/v1/nodes: 502 Bad Gateway: <html> bad gateway </html>"


def test_unreachable_server_is_one_line() -> None:
    api = Api("https://127.0.0.1:1", timeout=5)
    with pytest.raises(kube_client.Unreachable) as raised:
        api.get("/version")
    assert str(raised.value) == (
        "GET /version: no answer from https://127.0.0.1:1: [Errno 111] Connection refused"
    )


# --- a watch's stream -----------------------------------------------------------------------

TOO_OLD = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "too old resource version: 7 (425)",
    "reason": "Expired",
    "code": 410,
}
"""What an API server sends when a watch's version has left its window (the local
cluster's cannot be made to, its watch cache replays from any version it has seen)."""


@pytest.fixture
def stream_server() -> Iterator[tuple[str, list[bytes], list[str]]]:
    """An HTTP server that answers every GET with `lines`, chunk by chunk, and records
    the request targets; (its URL, lines, targets)."""
    lines: list[bytes] = []
    targets: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            targets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", lines, targets
    server.shutdown()
    server.server_close()


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def test_watch_yields_each_event_until_the_server_ends_it(
    stream_server: tuple[str, list[bytes], list[str]],
) -> None:
    url, lines, targets = stream_server
    first = {"metadata": {"name": "a", "resourceVersion": "8"}}
    lines += [
        event("ADDED", first),
        b"\n",
        event("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
    ]
    events = list(Api(url).watch("/api/v1/configmaps", resource_version="7", timeout_seconds=5))
    assert [(e.type, e.resource_version) for e in events] == [("ADDED", "8"), ("BOOKMARK", "9")]
    assert events[0].object == first
    assert targets == ["/api/v1/configmaps?watch=true&timeoutSeconds=5&resourceVersion=7"]


def test_watch_whose_version_is_too_old_is_gone(
    stream_server: tuple[str, list[bytes], list[str]],
) -> None:
    url, lines, _ = stream_server
    lines += [event("ADDED", {"metadata": {"name": "a"}}), event("ERROR", TOO_OLD)]
    events = Api(url).watch("/api/v1/namespaces/x/configmaps", resource_version="7")
    assert next(events).type == "ADDED"
    with pytest.raises(kube_client.Gone) as raised:
        next(events)
    assert str(raised.value) == (
        "GET /api/v1/namespaces/x/configmaps?resourceVersion=7: 410 Gone: "
        "too old resource version: 7 (425)"
    )


# --- standing alone -------------------------------------------------------------------------


def test_the_sidecar_runs_from_what_the_pod_is_given_on_the_standard_library(
    tmp_path: Path,
) -> None:
    """The pod gets the files `sync_code` ships and nothing else: from those alone, with no
    site-packages, every module of the sidecar loads and imports nothing outside the
    standard library."""
    for key, content in manifests.sync_code().items():
        path = tmp_path / manifests.code_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    probe = (
        "import sys, pkgutil, importlib\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import sidecar\n"
        "for info in pkgutil.iter_modules(sidecar.__path__):\n"
        "    importlib.import_module(f'sidecar.{info.name}')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'__main__', 'sidecar'}))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    shipped = {manifests.code_path(key) for key in manifests.sync_code()}
    assert shipped == {f"sidecar/{p.name}" for p in (PROJECT_DIR / "sidecar").glob("*.py")}
