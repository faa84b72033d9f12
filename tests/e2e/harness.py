"""Real processes on 127.0.0.1 for the gateway's end-to-end tests.

HAProxy runs the configuration rendered by `tools.gateway` (the pods' renderer), with
the files laid out as the kubelet lays out a projected volume (symlinks into a `..data`
directory swapped atomically) and per-tenant certificates from a test CA; upstreams are
small Python HTTP servers that record what reached them. Clients speak HTTPS with the
endpoint host as SNI and verify the gateway's certificate against the test CA. Every
wait is a bounded poll for an event; output goes to files, never to pipes that nobody
reads. Ports come from `tools.ports`: a range the kernel never hands out by itself,
reserved across processes, so that suites running at once on one machine never share one.
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import functools
import hashlib
import http.client
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from opstrace import data_token, keys, names
from opstrace.gateway import routes
from opstrace.gateway.files import render_gateway_files
from opstrace.gateway.settings import (
    CERTS_SUBDIR,
    HAPROXY_CONFIG,
    UPSTREAM_FIELDS,
    GatewaySettings,
    certificate_file_name,
    gateway_tenants,
    private_key_file_name,
)
from tools import pki
from tools.ports import free_port

HAPROXY_ENV: Final = "OPSTRACE_HAPROXY"
"""Names the haproxy binary to test (e.g. the pinned LTS from `make haproxy`)."""


def find_tool(env: str, name: str, directory: str | None = None) -> str | None:
    """$`env` when set (it must be an executable file), else `name` on PATH or in
    `directory`."""
    chosen = os.environ.get(env)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise RuntimeError(f"{env}={chosen!r} is not an executable file")
        return chosen
    return shutil.which(name) or (directory and shutil.which(name, path=directory)) or None


HAPROXY: Final = find_tool(HAPROXY_ENV, "haproxy", "/usr/sbin")
PROMETHEUS: Final = shutil.which("prometheus")
CURL: Final = shutil.which("curl")
NEEDS_HAPROXY: Final = pytest.mark.skipif(
    HAPROXY is None,
    reason=f"haproxy is not installed (apt-get install haproxy, or set {HAPROXY_ENV})",
)
NEEDS_PROMETHEUS: Final = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)
NEEDS_CURL: Final = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (apt-get install curl)"
)
STARTUP_SECONDS: Final = 120.0
"""A bound on waits for a process to come up: generous, so that a loaded machine (other
suites, a build) slows the tests down without failing them."""
CLIENT_TIMEOUT_SECONDS: Final = 60.0
"""A bound on one request's socket operations, for the same reason."""
POLL_SECONDS: Final = 0.05

INSTANCE: Final = "acme"
DOMAIN: Final = "example.com"
TENANTS: Final = ("prod", "staging")
BACKENDS: Final = tuple(field.removesuffix("_url") for field in UPSTREAM_FIELDS)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for_clock(moment: float, timeout: float) -> None:
    """Wait until the wall clock, the one HAProxy's `date` reads, shows `moment`."""
    wait_until(lambda: time.time() >= moment, f"the clock to reach {moment}", timeout)


def host(service: str, tenant: str) -> str:
    """A tenant endpoint's host name (SNI and Host header)."""
    return names.endpoint_host(service, tenant, INSTANCE, DOMAIN)


# Certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateAuthority:
    """A certificate authority for the tests: issues each tenant's endpoint certificate."""

    authority: pki.Authority
    file: Path
    """The CA certificate as PEM, for clients (Python's ssl, curl, Prometheus)."""

    @classmethod
    def generate(cls, directory: Path) -> CertificateAuthority:
        authority = pki.Authority.create("opstrace gateway test CA", days=1)
        directory.mkdir(parents=True, exist_ok=True)
        file = directory / "test-ca.pem"
        file.write_bytes(pki.certificate_pem(authority.certificate))
        return cls(authority, file)

    def issue(self, tenant: str, grafana: bool = False) -> tuple[str, str]:
        """(certificate PEM, private key PEM) valid for exactly the tenant's two hosts
        (and its Grafana host with `grafana`), as cert-manager's `tls.crt` and `tls.key`;
        a new serial number each time."""
        hosts = names.tenant_hosts(tenant, INSTANCE, DOMAIN, grafana)
        certificate, key = self.authority.issue(pki.name(hosts[0]), days=1, dns_names=hosts)
        return pki.certificate_pem(certificate).decode(), pki.private_pem(key).decode()


def certificate_files(
    ca: CertificateAuthority, tenants: tuple[str, ...], grafana: Sequence[str] = ()
) -> dict[str, str]:
    """Relative path -> content of every served tenant's certificate and key, as the pod's
    projected volume puts each tenant's TLS Secret under `certs/`; the tenants in
    `grafana` have a Grafana host, which their certificates name too."""
    files = {}
    for tenant in gateway_tenants(tenants):
        chain, key = ca.issue(tenant, tenant in grafana)
        files[f"{CERTS_SUBDIR}/{certificate_file_name(tenant)}"] = chain
        files[f"{CERTS_SUBDIR}/{private_key_file_name(tenant)}"] = key
    return files


@functools.cache
def gateway_ca() -> CertificateAuthority:
    """The CA of every gateway the tests start (one per test process)."""
    directory = Path(tempfile.mkdtemp(prefix="opstrace-test-ca-"))
    atexit.register(shutil.rmtree, directory, True)
    return CertificateAuthority.generate(directory)


def client_context(alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A client TLS context that trusts only the test CA and checks host names."""
    context = ssl.create_default_context(cafile=str(gateway_ca().file))
    context.set_alpn_protocols(list(alpn))
    return context


def peer_certificate(port: int, server_name: str | None) -> x509.Certificate:
    """The certificate the gateway presents for `server_name` (SNI), verified."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_SECONDS) as raw,
        client_context().wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def san_names(certificate: x509.Certificate) -> list[str]:
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return extension.value.get_values_for_type(x509.DNSName)


# Projected volumes ----------------------------------------------------------------------


def project(directory: Path, files: Mapping[str, str]) -> None:
    """Write `files` (relative path -> content) as the kubelet updates a projected volume.

    The content goes into a new hidden directory; `..data` is switched to it with one
    rename (atomic); each top-level name is a symlink through `..data`; names no longer
    present and the previous directory are removed afterwards.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "..data"
    previous = os.readlink(data) if data.is_symlink() else None
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:8]}"
    for name, content in files.items():
        path = stamp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    staging = directory / "..data_tmp"
    staging.symlink_to(stamp.name)
    staging.rename(data)
    top = {name.split("/", 1)[0] for name in files}
    for name in top:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for entry in directory.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in top:
            entry.unlink()
    if previous is not None:
        shutil.rmtree(directory / previous)


# Requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str = field(default="", compare=False)
    """The Content-Type header ("" when absent); compared only where a test asks for it."""
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class TLSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:`port` with `server_name` as SNI (what DNS would achieve)."""

    def __init__(
        self,
        port: int,
        server_name: str,
        timeout: float = CLIENT_TIMEOUT_SECONDS,
        source: str = "127.0.0.1",
    ) -> None:
        self.tls_context = client_context()
        self.source = source
        """The client's address: any of 127.0.0.0/8 reaches a listener on 127.0.0.1."""
        super().__init__(server_name, port, timeout=timeout, context=self.tls_context)

    def connect(self) -> None:
        raw = socket.create_connection(
            ("127.0.0.1", self.port), self.timeout, source_address=(self.source, 0)
        )
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def send(
    connection: http.client.HTTPConnection,
    host_header: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    header_list: list[tuple[str, str]] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request on `connection` (opened if needed), with exactly these headers."""
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host_header)
    for name, value in [*(headers or {}).items(), *(header_list or [])]:
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    text = response.read().decode("utf-8")
    return Response(
        response.status,
        text,
        response.getheader("Content-Type") or "",
        tuple(response.getheaders()),
    )


def request(
    port: int,
    host_header: str,
    path: str = "/api/v1/labels",
    headers: Mapping[str, str] | None = None,
    header_list: list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    body: bytes | None = None,
    sni: str | None = None,
) -> Response:
    """One HTTPS request on a fresh connection (so a reloaded HAProxy's new worker
    answers); SNI is the Host header's name unless `sni` says otherwise."""
    server_name = sni or host_header.partition(":")[0].lower()
    connection = TLSConnection(port, server_name)
    try:
        return send(connection, host_header, path, headers, header_list, method, body)
    finally:
        connection.close()


def plain_request(
    port: int,
    host_header: str,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
) -> Response:
    """One plain-HTTP request (health port, plain-HTTP port) on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
    try:
        return send(connection, host_header, path, headers, method=method)
    finally:
        connection.close()


def websocket_echo(
    port: int,
    endpoint: str,
    path: str,
    headers: str,
    frame: bytes,
    source: str | None = None,
) -> bytes:
    """Open a WebSocket at `https://<endpoint><path>` through the gateway on `port` (from
    `source`'s address), with `headers` (CRLF-ended lines) added to the handshake; assert
    it is switched (101), send `frame`, return what comes back."""
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: {endpoint}\r\n{headers}"
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n\r\n"
    )
    with (
        socket.create_connection(
            ("127.0.0.1", port),
            timeout=CLIENT_TIMEOUT_SECONDS,
            source_address=(source, 0) if source else None,
        ) as raw,
        client_context().wrap_socket(raw, server_hostname=endpoint) as tls,
    ):
        tls.sendall(handshake.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 "), head
        tls.sendall(frame)
        return tls.recv(4096)


def unique_path(path: str = "/api/v1/labels") -> str:
    """`path` with a query no other request carries, so a test finds its own request."""
    return f"{path}?probe={uuid.uuid4().hex}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {credentials}"}


# Tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """A keypair whose tokens the tests shape freely (expired, wrong aud, ...)."""

    private_key: rsa.RSAPrivateKey
    public_pem: str
    kid: str

    @classmethod
    def generate(cls) -> Signer:
        private_key = keys.generate_private_key(2048)
        public_pem = keys.public_key_pem(private_key)
        return cls(private_key, public_pem, keys.key_id(public_pem))

    def claims(self, tenant: str, **overrides: Any) -> dict[str, Any]:
        claims = data_token.token_claims(INSTANCE, tenant, int(time.time()), 3600)
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, tenant: str, *, kid: str | None = None, **overrides: Any) -> str:
        """A token of `tenant`; a claim set to None is left out."""
        return data_token.sign_token(
            self.private_key, kid or self.kid, self.claims(tenant, **overrides)
        )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_token(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> str:
    """A compact JWS assembled by hand, for tokens no library would sign."""
    parts = (json.dumps(dict(header)).encode(), json.dumps(dict(claims)).encode())
    return ".".join([*map(b64url, parts), b64url(signature)])


# Upstreams ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


WEBSOCKET_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Recorder:
    """An upstream that answers 200 (or forwards) and records each request it got.

    A WebSocket upgrade is answered with 101, after which it echoes what it receives.
    """

    name: str
    forward_to: str | None = None
    """`host:port` to forward POSTs to as `/api/v1/write` (a Prometheus receiver)."""
    hold: threading.Event | None = None
    """When set, each request is recorded, then answered only once this event is set."""
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    @contextmanager
    def running(self) -> Iterator[Recorder]:
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if (self.headers.get("Upgrade") or "").lower() == "websocket":
                    self._upgrade()
                else:
                    self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def do_DELETE(self) -> None:
                self._answer(b"")

            def _record(self, body: bytes = b"") -> None:
                recorder.requests.append(
                    Recorded(self.command, self.path, list(self.headers.items()), body)
                )

            def _answer(self, body: bytes) -> None:
                self._record(body)
                if recorder.hold is not None:
                    recorder.hold.wait(timeout=STARTUP_SECONDS)
                status, reply = recorder._reply(self, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _upgrade(self) -> None:
                self._record()
                challenge = (self.headers.get("Sec-WebSocket-Key") or "") + WEBSOCKET_GUID
                accept = base64.b64encode(hashlib.sha1(challenge.encode()).digest()).decode()  # noqa: S324
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.end_headers()
                self.wfile.flush()
                chunk = self.connection.recv(4096)
                self.connection.sendall(chunk)
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arrived(self, path: str) -> Recorded:
        """The one request that reached this upstream for `path` (see `unique_path`)."""
        matching = [r for r in self.requests if r.path == path]
        assert len(matching) == 1, f"{self.name} got {len(matching)} requests for {path}"
        return matching[0]

    def _reply(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes]:
        if self.forward_to is None:
            return 200, f"{self.name} got {handler.command} {handler.path}".encode()
        forward_host, _, forward_port = self.forward_to.partition(":")
        connection = http.client.HTTPConnection(
            forward_host, int(forward_port), timeout=CLIENT_TIMEOUT_SECONDS
        )
        try:
            forwarded = {
                k: v
                for k, v in handler.headers.items()
                if k.lower()
                in ("content-type", "content-encoding", "x-prometheus-remote-write-version")
            }
            connection.request("POST", "/api/v1/write", body=body, headers=forwarded)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # HAProxy closing an idle keep-alive connection is not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


Upstreams = Mapping[str, str]
"""Backend name (`cortex_push`, ...) -> its URL."""


def one_upstream(url: str) -> dict[str, str]:
    """Every backend at the same URL."""
    return dict.fromkeys(BACKENDS, url)


@contextmanager
def recorders() -> Iterator[dict[str, Recorder]]:
    """One recording upstream per backend, so that a test sees where a request went."""
    with ExitStack() as stack:
        yield {backend: stack.enter_context(Recorder(backend).running()) for backend in BACKENDS}


@contextmanager
def connect_tunnel(target_port: int) -> Iterator[tuple[int, list[str]]]:
    """An HTTP proxy that answers every CONNECT with a tunnel to 127.0.0.1:`target_port`.

    Stands in for DNS: a client told to use it as proxy for `https://<endpoint host>/`
    reaches the gateway with that host as SNI and Host. Yields the proxy's port and the
    CONNECT targets it was asked for.
    """
    asked: list[str] = []

    class Tunnel(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = request_line.split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            asked.append(target)
            with socket.create_connection(("127.0.0.1", target_port), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    upstream.sendall(rest)
                _pipe(client, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="connect-tunnel", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 60)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


# HAProxy ------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A real HAProxy (master-worker) running the rendered gateway configuration."""

    directory: Path
    settings: GatewaySettings
    certificates: dict[str, str] = field(default_factory=dict)
    """Relative path -> content of the tenants' certificates and keys (`certs/...`)."""
    files: dict[str, str] = field(default_factory=dict)
    """The rendered files last written."""
    quiet: bool = False
    """Discard HAProxy's output instead of logging it (the benchmark: no log file cost)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return _port(self.settings.listen)

    @property
    def internal_port(self) -> int:
        assert self.settings.internal_listen is not None
        return _port(self.settings.internal_listen)

    @property
    def http_port(self) -> int:
        assert self.settings.http_listen is not None
        return _port(self.settings.http_listen)

    @property
    def health_port(self) -> int:
        assert self.settings.health_listen is not None
        return _port(self.settings.health_listen)

    @property
    def log(self) -> Path:
        return self.directory.parent / f"{self.directory.name}-haproxy.log"

    def render(
        self,
        trusted: Mapping[str, str],
        bindings: Mapping[str, str] | None = None,
        credentials: Mapping[str, str] | None = None,
        rate_limits: Mapping[str, int] | None = None,
        egress: Sequence[str] = (),
    ) -> None:
        """Write the files as the pod's projected volume gets them (one atomic swap)."""
        self.files = render_gateway_files(
            self.settings, trusted, bindings or {}, credentials or {}, rate_limits or {}, egress
        )
        project(self.directory, {**self.files, **self.certificates})

    def replace_certificate(self, tenant: str) -> x509.Certificate:
        """Reissue `tenant`'s certificate (as a renewal does) and write it; the new one."""
        chain, key = gateway_ca().issue(tenant, tenant in self.settings.grafana_urls)
        self.certificates[f"{CERTS_SUBDIR}/{certificate_file_name(tenant)}"] = chain
        self.certificates[f"{CERTS_SUBDIR}/{private_key_file_name(tenant)}"] = key
        project(self.directory, {**self.files, **self.certificates})
        return x509.load_pem_x509_certificate(chain.encode())

    def start(self) -> None:
        assert HAPROXY is not None
        config = str(self.directory / HAPROXY_CONFIG)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-W", "-db", "-f", config],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if self.quiet else log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, f"haproxy health on port {self.health_port}")
        if not self.quiet:
            wait_until(lambda: self.loads() > 0, "haproxy's master to report the load")
        wait_until(self._master_handles_signals, "haproxy's master to handle signals")

    def reload(self) -> None:
        """Soft reload (SIGUSR2 to the master): new worker with the new files, no restart.

        Sent once the master handles the signal (it re-executes itself around each load;
        meanwhile SIGUSR2 is ignored or, right after the exec, fatal), and only once: a
        second signal could meet the master in that window. Returns once the new
        worker alone accepts connections (`wait_reloaded`).
        """
        assert self.process is not None
        assert not self.quiet, "a quiet gateway keeps no log to see the reload in"
        loaded = self.loads()
        wait_until(self._master_handles_signals, "haproxy's master to handle signals")
        self.process.send_signal(signal.SIGUSR2)
        self.wait_reloaded(loaded)

    def wait_reloaded(self, loads_before: int, timeout: float = STARTUP_SECONDS) -> None:
        """Wait until the master loaded the files again (a load after `loads_before`
        loads), every earlier worker stopped listening and the master handles signals.

        The master reports the load before the old worker has closed its listeners: a
        connection made in between may still be accepted (and answered with the old
        files) by the old worker. After this, every new connection reaches the new one.
        """

        def reloaded() -> bool:
            return (
                reload_done(self.log_text(), self.files[HAPROXY_CONFIG], loads_before)
                and self._master_handles_signals()
            )

        wait_until(reloaded, "the reload: new worker loaded, old ones not listening", timeout)

    def stopped_listening(self) -> bool:
        """Every worker has stopped listening (a soft stop) or exited."""
        text = self.log_text()
        return all(
            stopped_listening(int(pid), text, self.files[HAPROXY_CONFIG])
            for pid in _WORKER_STARTED.findall(text)
        )

    def _master_handles_signals(self) -> bool:
        """The master catches SIGTERM, SIGUSR1 and SIGUSR2 (its SigCgt mask in /proc).

        The master re-executes itself once loaded ("wait mode"); a signal that arrives
        meanwhile meets no handler (SIGTERM then kills it: exit status -15).
        """
        assert self.process is not None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        except OSError:
            return False
        masks = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
        caught = int(masks[0], 16) if masks else 0
        wanted = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
        return all(caught >> (number - 1) & 1 for number in wanted)

    def loads(self) -> int:
        """How many times the master has loaded the configuration successfully."""
        return loads_in(self.log_text())

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"haproxy exited ({self.process.returncode}):\n{self.log_text()}")
        try:
            return plain_request(self.health_port, "probe", "/healthz").status == 200
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


_LOADED: Final = "Loading success."
"""What the master logs after each successful load (2.6 and 3.x)."""
_WORKER_STARTED: Final = re.compile(r"(?:New worker|Initializing new worker) \((\d+)\)")
"""What the master logs when it starts a worker: 2.6 `New worker (PID) forked`, 3.x
`Initializing new worker (PID)`."""


def reload_done(log_text: str, haproxy_cfg: str, loads_before: int) -> bool:
    """From an HAProxy master's log: it loaded the files after `loads_before` loads, and
    every earlier worker stopped listening.

    The master reports the load before the old worker has closed its listeners: a
    connection made in between may still be accepted (and answered with the old files)
    by the old worker. Once this holds, every new connection reaches the new one."""
    started = [int(pid) for pid in _WORKER_STARTED.findall(log_text)]
    return log_text.count(_LOADED) > loads_before and all(
        stopped_listening(pid, log_text, haproxy_cfg) for pid in started[:-1]
    )


def stopped_listening(pid: int, log_text: str, haproxy_cfg: str) -> bool:
    """The worker `pid` accepts no more connections: it has stopped every frontend
    (soft stop) or exited."""
    if f"Former worker ({pid}) exited" in log_text:
        return True
    frontends = re.findall(r"^frontend (\S+)$", haproxy_cfg, re.MULTILINE)
    return all(f"({pid}) : Proxy {frontend} stopped" in log_text for frontend in frontends)


def loads_in(log_text: str) -> int:
    """How many times an HAProxy master has loaded its configuration successfully."""
    return log_text.count(_LOADED)


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def gateway_settings(
    directory: Path,
    upstreams: Upstreams,
    tenants: tuple[str, ...] = TENANTS,
    metrics_query_prefix: str = "",
    ruler_config_prefix: str = routes.CORTEX_RULER_CONFIG_PATH,
) -> GatewaySettings:
    """The pod's settings, with listeners on free loopback ports and files in `directory`."""
    return on_loopback(
        base_settings(upstreams, tenants, metrics_query_prefix, ruler_config_prefix), directory
    )


def base_settings(
    upstreams: Upstreams,
    tenants: tuple[str, ...] = TENANTS,
    metrics_query_prefix: str = "",
    ruler_config_prefix: str = routes.CORTEX_RULER_CONFIG_PATH,
) -> GatewaySettings:
    """The test instance's settings for `tenants` in front of `upstreams`."""
    urls: dict[str, Any] = {f"{backend}_url": upstreams[backend] for backend in BACKENDS}
    return GatewaySettings(
        instance=INSTANCE,
        domain=DOMAIN,
        tenants=tenants,
        **urls,
        metrics_query_prefix=metrics_query_prefix,
        ruler_config_prefix=ruler_config_prefix,
    )


def on_loopback(settings: GatewaySettings, directory: Path | None = None) -> GatewaySettings:
    """`settings` with the pod's listeners moved to free loopback ports, and its files in
    `directory` when given (a pod's sidecar keeps them where the pod's settings say)."""
    return dataclasses.replace(
        settings,
        listen=f"127.0.0.1:{free_port()}",
        internal_listen=f"127.0.0.1:{free_port()}",
        http_listen=f"127.0.0.1:{free_port()}",
        health_listen=f"127.0.0.1:{free_port()}",
        # No sidecar counts the lines here (tests/e2e/test_gateway_usage.py sets one).
        usage_log=None,
        config_dir=settings.config_dir if directory is None else str(directory),
    )


@contextmanager
def running_gateway(
    directory: Path,
    trusted: Mapping[str, str],
    upstreams: Upstreams,
    tenants: tuple[str, ...] = TENANTS,
    *,
    bindings: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    rate_limits: Mapping[str, int] | None = None,
    metrics_query_prefix: str = "",
    ruler_config_prefix: str = routes.CORTEX_RULER_CONFIG_PATH,
    quiet: bool = False,
) -> Iterator[Gateway]:
    """A started gateway in `directory`; stopped (and waited for) on exit."""
    settings = gateway_settings(
        directory, upstreams, tenants, metrics_query_prefix, ruler_config_prefix
    )
    with started_gateway(
        settings,
        trusted,
        bindings=bindings,
        credentials=credentials,
        rate_limits=rate_limits,
        quiet=quiet,
    ) as gateway:
        yield gateway


@contextmanager
def started_gateway(
    settings: GatewaySettings,
    trusted: Mapping[str, str],
    *,
    bindings: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    rate_limits: Mapping[str, int] | None = None,
    egress: Sequence[str] = (),
    quiet: bool = False,
) -> Iterator[Gateway]:
    """A gateway started with `settings` (files in its `config_dir`), with certificates of
    the test CA; stopped (and waited for) on exit."""
    certificates = certificate_files(
        gateway_ca(), tuple(settings.tenants), tuple(settings.grafana_urls)
    )
    gateway = Gateway(Path(settings.config_dir), settings, certificates, quiet=quiet)
    gateway.render(trusted, bindings, credentials, rate_limits, egress)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
