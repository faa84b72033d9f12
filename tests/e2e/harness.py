"""Real processes on 127.0.0.1 for the gateway's end-to-end tests.

HAProxy runs the configuration rendered by `tools.gateway` (the pods' renderer);
upstreams are small Python HTTP servers that record what reached them. Every wait is
a bounded poll; ports are picked by the OS; output goes to files, never to pipes that
nobody reads.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from components.rules import data_token, keys
from components.rules.gateway_config import GatewaySettings, render_gateway_files

HAPROXY_ENV: Final = "OPSTRACE_HAPROXY"
"""Names the haproxy binary to test (e.g. the pinned LTS from `make haproxy`)."""


def _find_haproxy() -> str | None:
    """$OPSTRACE_HAPROXY when set (it must exist), else haproxy on PATH or in /usr/sbin."""
    chosen = os.environ.get(HAPROXY_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise RuntimeError(f"{HAPROXY_ENV}={chosen!r} is not an executable file")
        return chosen
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")


HAPROXY: Final = _find_haproxy()
PROMETHEUS: Final = shutil.which("prometheus")
NEEDS_HAPROXY: Final = pytest.mark.skipif(
    HAPROXY is None,
    reason=f"haproxy is not installed (apt-get install haproxy, or set {HAPROXY_ENV})",
)
NEEDS_PROMETHEUS: Final = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)
STARTUP_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.05

INSTANCE: Final = "acme"
DOMAIN: Final = "example.com"


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (closed again for the caller to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def host(service: str, tenant: str) -> str:
    """A tenant endpoint's Host header value."""
    return f"{service}.{tenant}.{INSTANCE}.{DOMAIN}"


REFUSAL_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
"""The content type of every answer the gateway gives itself (401, 404)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str = field(default="", compare=False)
    """The Content-Type header ("" when absent); compared only where a test asks for it."""


def request(
    port: int,
    host_header: str,
    path: str = "/api/v1/labels",
    headers: Mapping[str, str] | None = None,
    header_list: list[tuple[str, str]] | None = None,
) -> Response:
    """One GET on a fresh connection (so a reloaded HAProxy's new worker answers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host_header)
        for name, value in [*(headers or {}).items(), *(header_list or [])]:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        return Response(response.status, body, response.getheader("Content-Type") or "")
    finally:
        connection.close()


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

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Recorder:
    """An upstream that answers 200 (or forwards) and records each request it got."""

    name: str
    forward_to: str | None = None
    """`host:port` to forward POSTs to as `/api/v1/write` (a Prometheus receiver)."""
    delay: float = 0.0
    """Seconds to wait, after recording a request, before answering it."""
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    @contextmanager
    def running(self) -> Iterator[Recorder]:
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes) -> None:
                recorder.requests.append(
                    Recorded(self.command, self.path, list(self.headers.items()))
                )
                time.sleep(recorder.delay)
                status, reply = recorder._reply(self, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

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
        connection = http.client.HTTPConnection(forward_host, int(forward_port), timeout=10)
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


# HAProxy ------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A real HAProxy (master-worker) running the rendered gateway configuration."""

    directory: Path
    settings: GatewaySettings
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.settings.listen.rpartition(":")[2])

    @property
    def health_port(self) -> int:
        assert self.settings.health_listen is not None
        return int(self.settings.health_listen.rpartition(":")[2])

    @property
    def log(self) -> Path:
        return self.directory / "haproxy.log"

    def render(self, trusted: Mapping[str, str]) -> None:
        """Write the files as the pods get them, dropping key files no longer trusted."""
        files = render_gateway_files(self.settings, trusted)
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("key-*.pem"):
            if stale.name not in files:
                stale.unlink()
        for name, content in files.items():
            (self.directory / name).write_text(content, encoding="utf-8")

    def start(self) -> None:
        assert HAPROXY is not None
        config = str(self.directory / "haproxy.cfg")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-W", "-db", "-f", config],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, f"haproxy health on port {self.health_port}")
        wait_until(lambda: self._loads() > 0, "haproxy's master to report the load")
        wait_until(self._master_handles_signals, "haproxy's master to handle signals")

    def reload(self) -> None:
        """Soft reload (SIGUSR2 to the master): new worker with the new files, no restart.

        Sent only once the master handles signals (2.6's re-executes itself after each
        load), and again every second until the master logs another successful load.
        """
        assert self.process is not None
        loaded = self._loads()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self.process.send_signal(signal.SIGUSR2)
            try:
                wait_until(lambda: self._loads() > loaded, "a reload", timeout=1.0)
            except AssertionError:
                continue
            wait_until(self._master_handles_signals, "haproxy's master to handle signals")
            return
        raise AssertionError(f"haproxy did not reload; its log:\n{self._log_text()}")

    def _master_handles_signals(self) -> bool:
        """The master catches SIGTERM, SIGUSR1 and SIGUSR2 (its SigCgt mask in /proc).

        2.6's master re-executes itself once loaded ("wait mode"); a signal that arrives
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

    def _loads(self) -> int:
        return self._log_text().count("Loading success.")

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
            raise AssertionError(f"haproxy exited ({self.process.returncode}):\n{self._log_text()}")
        try:
            return request(self.health_port, "probe", "/healthz").status == 200
        except OSError:
            return False

    def _log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_gateway(
    directory: Path,
    trusted: Mapping[str, str],
    cortex_url: str,
    loki_url: str,
    tenants: tuple[str, ...] = ("prod", "staging"),
) -> Iterator[Gateway]:
    """A started gateway in `directory`; stopped (and waited for) on exit."""
    settings = GatewaySettings(
        instance=INSTANCE,
        domain=DOMAIN,
        tenants=tenants,
        cortex_url=cortex_url,
        loki_url=loki_url,
        listen=f"127.0.0.1:{free_port()}",
        health_listen=f"127.0.0.1:{free_port()}",
        config_dir=str(directory),
    )
    gateway = Gateway(directory, settings)
    gateway.render(trusted)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
