"""A Kubernetes API client on the Python standard library alone.

The gateway pod's sidecar runs it (no package can be installed there), and so does
everything on the operator's side that talks to an API server: the dynamic providers, the
local cluster's tools and the tests, which build it from a kubeconfig with
`opstrace.kubeconfig` (the one kubeconfig loader).

    api = Api.in_cluster()                         # a pod's service account
    api.get("/api/v1/namespaces/default")          # the object, or None if there is none
    listing = api.list("/api/v1/namespaces/x/configmaps", label_selector="app=gateway")
    for event in api.watch(path, resource_version=listing["metadata"]["resourceVersion"]):
        ...                                        # Gone (410): list again, watch from there
    api.create(path, obj)
    api.merge_patch(path, patch)
    api.apply(path, obj, field_manager="opstrace")  # server-side apply
    api.delete(path)

Paths are the API server's own (`/api/v1/...`, `/apis/<group>/<version>/...`): the caller
says what it means; there is no discovery and no mapping of kinds to paths.

Every error is one line: `ApiError` names the method, the path, the status and the API
server's message (`NotFound`, `Conflict` and `Gone` are the statuses callers act on);
`Unreachable` when no answer came; `KubeconfigError` and `CredentialError` when the client
cannot be built or cannot get a credential.
"""

from __future__ import annotations

import contextlib
import http
import http.client
import json
import os
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from sidecar.contract import SERVICE_ACCOUNT_DIR

JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
"""Server-side apply; its body may be JSON, which is YAML."""
LIST_PAGE: Final = 500
REQUEST_TIMEOUT: Final = 30.0
WATCH_TIMEOUT: Final = 300
"""Seconds the API server keeps a watch open before it ends it (the caller watches again)."""


class KubeApiError(Exception):
    """Raised when the API cannot be used; the message is one line saying why."""


class KubeconfigError(KubeApiError):
    """Raised when a kubeconfig (or a pod's service account) cannot give a client."""


class CredentialError(KubeApiError):
    """Raised when a credential cannot be had: a token file, an exec plugin's answer."""


class Unreachable(KubeApiError):
    """Raised when a request got no HTTP answer (connection, TLS or timeout)."""


class ApiError(KubeApiError):
    """Raised when the API server answers a request with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{method} {path}: {status} {_phrase(status)}: {message}")


class NotFound(ApiError):
    """Raised when the object or the collection does not exist (404)."""


class Conflict(ApiError):
    """Raised when the object exists already or was changed meanwhile (409)."""


class Gone(ApiError):
    """Raised when a watch's (or a list's) resourceVersion is too old (410): list again."""


_ERRORS: Final[dict[int, type[ApiError]]] = {404: NotFound, 409: Conflict, 410: Gone}


def _phrase(status: int) -> str:
    with contextlib.suppress(ValueError):
        return http.HTTPStatus(status).phrase
    return "Error"


def one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


def api_error(method: str, path: str, status: int, body: Any) -> ApiError:
    """The error for an answer: the API server's message from its Status, else the body."""
    message = body.get("message") if isinstance(body, Mapping) else None
    text = str(message) if message else (body if isinstance(body, str) else json.dumps(body))
    return _ERRORS.get(status, ApiError)(method, path, status, one_line(text or "(no body)"))


# --- credentials ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """What requests authenticate with: a bearer token, a client certificate, or both."""

    token: str | None = None
    certificate_pem: bytes | None = None
    key_pem: bytes | None = None
    expires_at: float | None = None
    """Epoch seconds after which it must be fetched again; None: until it is refused."""


class Credentials(Protocol):
    """Where a client's credential comes from."""

    def current(self) -> Credential:
        """The credential to send now (fetched again when it has expired or changed)."""
        ...

    def refresh(self) -> Credential:
        """A fresh credential, after the API server refused the current one (401)."""
        ...


@dataclass(frozen=True)
class Static:
    """A credential that never changes (a kubeconfig's certificate or token)."""

    credential: Credential = Credential()

    def current(self) -> Credential:
        return self.credential

    def refresh(self) -> Credential:
        return self.credential


class TokenFile:
    """A bearer token read from a file, again whenever the file changes: the kubelet
    rotates a pod's projected service account token by swapping the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._credential = Credential()
        self._lock = threading.Lock()

    def current(self) -> Credential:
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError as error:
                raise CredentialError(
                    f"token file {self.path}: cannot read: {error.strerror}"
                ) from None
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                self._credential = self._read()
                self._seen = seen
            return self._credential

    def refresh(self) -> Credential:
        with self._lock:
            self._seen = None
        return self.current()

    def _read(self) -> Credential:
        try:
            token = self.path.read_text().strip()
        except OSError as error:
            raise CredentialError(
                f"token file {self.path}: cannot read: {error.strerror}"
            ) from None
        if not token:
            raise CredentialError(f"token file {self.path}: empty")
        return Credential(token=token)


# --- the client ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        """Where a later watch resumes after this event."""
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


class Api:
    """A client of one API server, authenticated by `credentials`."""

    def __init__(
        self,
        server: str,
        *,
        certificate_authority: bytes | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        namespace: str = "default",
        timeout: float = REQUEST_TIMEOUT,
        tls_server_name: str | None = None,
        proxy: str | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise KubeconfigError(f"server {server!r}: expected https://<host>[:<port>]")
        proxy_url = urllib.parse.urlsplit(proxy) if proxy else None
        if proxy_url is not None and (proxy_url.scheme != "http" or not proxy_url.hostname):
            raise KubeconfigError(
                f"proxy {proxy!r}: expected http://<host>[:<port>] (an HTTP proxy that "
                "tunnels with CONNECT; https and socks5 proxies are not supported)"
            )
        self.server = server
        self.namespace = namespace
        """The default namespace of the kubeconfig's context, or the pod's namespace."""
        self.credentials: Credentials = credentials or Static()
        self.timeout = timeout
        self._tls = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/")
        self.certificate_authority = certificate_authority
        self.insecure = insecure
        self.tls_server_name = tls_server_name
        """The name the server's certificate is checked for, when it is not the host's."""
        self._proxy = (
            (proxy_url.hostname, proxy_url.port or 80)
            if proxy_url is not None and proxy_url.hostname
            else None
        )
        self._contexts: dict[tuple[bytes | None, bytes | None], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    # Construction -------------------------------------------------------------------------

    @classmethod
    def in_cluster(
        cls,
        directory: Path = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] = os.environ,
    ) -> Api:
        """A client as the pod's service account: the API server from the environment the
        kubelet sets, the token re-read whenever it is rotated."""
        host = environ.get("KUBERNETES_SERVICE_HOST")
        port = environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise KubeconfigError(
                "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
            )
        try:
            certificate_authority = (directory / "ca.crt").read_bytes()
            namespace = (directory / "namespace").read_text().strip()
        except OSError as error:
            raise KubeconfigError(
                f"service account {directory}: cannot read {error.filename}: {error.strerror}"
            ) from None
        return cls(
            f"https://{f'[{host}]' if ':' in host else host}:{port}",
            certificate_authority=certificate_authority,
            credentials=TokenFile(directory / "token"),
            namespace=namespace or "default",
        )

    # Requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Any:
        """The decoded JSON answer (text if it is not JSON, None if empty); ApiError for
        an error status. A refused credential (401) is refreshed once and retried."""
        payload = None if body is None else json.dumps(body).encode()
        response, connection = self._send(method, path, query, payload, content_type, self.timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise self._unreachable(method, path, error) from None
        finally:
            connection.close()
        answer = _decode(raw)
        if response.status >= 400:
            raise api_error(method, _shown(path, query), response.status, answer)
        return answer

    def get(self, path: str, **query: Any) -> Any:
        """The object (or collection) at `path`, or None if there is none (404)."""
        try:
            return self.request("GET", path, query=query)
        except NotFound:
            return None

    def list(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """Every object of a collection, fetched page by page; the result's
        `metadata.resourceVersion` is where a watch of the same collection starts."""
        query = {
            "limit": LIST_PAGE,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        page = self.request("GET", path, query=query)
        listing = {**page, "items": list(page.get("items") or ())}
        while token := page.get("metadata", {}).get("continue"):
            page = self.request("GET", path, query={**query, "continue": token})
            listing["items"].extend(page.get("items") or ())
        listing["metadata"] = {
            k: v for k, v in listing.get("metadata", {}).items() if k != "continue"
        }
        return listing

    def watch(
        self,
        path: str,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = WATCH_TIMEOUT,
        bookmarks: bool = False,
    ) -> Iterator[Event]:
        """The events of a collection after `resource_version`, as they happen, until the
        API server ends the watch (after `timeout_seconds`): watch again from the last
        event's `resource_version`. Gone (410) when that version is too old: list again.
        One object: its collection with `field_selector="metadata.name=<name>"`."""
        query = {
            "watch": "true",
            "timeoutSeconds": timeout_seconds,
            "resourceVersion": resource_version or None,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }
        shown = _shown(path, query)
        # The API server ends the watch after timeoutSeconds: wait that long for a line.
        timeout = timeout_seconds + self.timeout
        response, connection = self._send("GET", path, query, None, JSON, timeout)
        try:
            if response.status >= 400:
                raise api_error("GET", shown, response.status, _decode(response.read()))
            while True:
                try:
                    line = response.readline()
                    event = json.loads(line) if line.strip() else None
                except (OSError, http.client.HTTPException, ValueError) as error:
                    raise self._unreachable("GET", path, error) from None
                if not line:
                    return  # the API server ended the watch
                if event is None:
                    continue
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise api_error("GET", shown, int(status.get("code") or 500), status)
                yield Event(str(event.get("type")), dict(event.get("object") or {}))
        finally:
            connection.close()

    def create(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST `body` to its collection at `path`; Conflict if it exists already."""
        return self.request("POST", path, body=body)

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> Any:
        """A JSON merge patch (RFC 7386) of the object at `path` (or its `/status`)."""
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def apply(
        self, path: str, body: Mapping[str, Any], *, field_manager: str, force: bool = False
    ) -> Any:
        """Server-side apply of `body` to the object at `path` (created if missing), as
        `field_manager`; `force` takes over fields another manager owns."""
        query: dict[str, Any] = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        return self.request("PATCH", path, query=query, body=body, content_type=APPLY_PATCH)

    def delete(self, path: str, *, propagation_policy: str | None = None) -> bool:
        """Delete the object at `path`: True, or False if there was none."""
        body = None if propagation_policy is None else {"propagationPolicy": propagation_policy}
        try:
            self.request("DELETE", path, body=body)
        except NotFound:
            return False
        return True

    # Plumbing -----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        payload: bytes | None,
        content_type: str,
        timeout: float,
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """Send a request and read the answer's headers; the caller reads the body and
        closes the connection. A refused credential (401) is refreshed and tried again."""
        target = self._target(path, query)
        credential = self.credentials.current()
        for attempt in (1, 2):
            connection = self._connection(credential, timeout)
            try:
                headers = self._headers(credential, content_type)
                connection.request(method, target, body=payload, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise self._unreachable(method, path, error) from None
            if response.status != 401 or attempt == 2:
                return response, connection
            connection.close()
            credential = self.credentials.refresh()
        raise AssertionError("not reached: the second attempt returns")

    def _target(self, path: str, query: Mapping[str, Any] | None) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path {path!r}: expected an absolute API path")
        given = {k: v for k, v in (query or {}).items() if v is not None}  # None: not asked
        encoded = urllib.parse.urlencode(given)
        separator = "&" if "?" in path else "?"
        return f"{self._prefix}{path}{separator + encoded if encoded else ''}"

    def _headers(self, credential: Credential, content_type: str) -> dict[str, str]:
        headers = {"Accept": JSON, "Content-Type": content_type}
        if credential.token:
            headers["Authorization"] = f"Bearer {credential.token}"
        return headers

    def _connection(self, credential: Credential, timeout: float) -> http.client.HTTPConnection:
        host, port = self._proxy or (self._host, self._port)
        connection: http.client.HTTPConnection
        if not self._tls:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            connection = _TlsConnection(
                host,
                port,
                context=self._ssl_context(credential),
                timeout=timeout,
                server_name=self.tls_server_name,
            )
        if self._proxy is not None:
            connection.set_tunnel(self._host, self._port)
        return connection

    def _ssl_context(self, credential: Credential) -> ssl.SSLContext:
        identity = (credential.certificate_pem, credential.key_pem)
        with self._lock:
            context = self._contexts.get(identity)
            if context is None:
                context = self._new_ssl_context(credential)
                # One entry per client certificate in use: an old one is no longer needed.
                self._contexts = {identity: context}
            return context

    def _new_ssl_context(self, credential: Credential) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.certificate_authority is not None:
            try:
                context.load_verify_locations(cadata=self.certificate_authority.decode())
            except (ssl.SSLError, ValueError, UnicodeDecodeError) as error:
                raise KubeconfigError(
                    f"server {self.server}: certificate authority: {one_line(str(error))}"
                ) from None
        if credential.certificate_pem and credential.key_pem:
            # `ssl` loads a certificate and key from files only: hand it private ones.
            with tempfile.TemporaryDirectory(prefix="kube-api-") as folder:
                certificate, key = Path(folder) / "client.crt", Path(folder) / "client.key"
                certificate.write_bytes(credential.certificate_pem)
                key.touch(mode=0o600)
                key.write_bytes(credential.key_pem)
                try:
                    context.load_cert_chain(str(certificate), str(key))
                except ssl.SSLError as error:
                    raise CredentialError(
                        f"client certificate for {self.server}: {one_line(str(error))}"
                    ) from None
        return context

    def _unreachable(self, method: str, path: str, error: BaseException) -> Unreachable:
        reason = one_line(str(error)) or type(error).__name__
        return Unreachable(f"{method} {path}: no answer from {self.server}: {reason}")


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked for `server_name` when one is given (a
    kubeconfig's `tls-server-name`), through a proxy's tunnel or not."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        timeout: float,
        server_name: str | None,
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._tls_context = context
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, and the proxy's tunnel if any
        name = self._server_name or getattr(self, "_tunnel_host", None) or self.host
        self.sock = self._tls_context.wrap_socket(self.sock, server_hostname=name)


def _shown(path: str, query: Mapping[str, Any] | None) -> str:
    """The path as errors show it: with the selectors that say which objects were meant."""
    keep = ("labelSelector", "fieldSelector", "resourceVersion")
    shown = {k: v for k, v in (query or {}).items() if k in keep and v}
    return f"{path}?{urllib.parse.urlencode(shown)}" if shown else path


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
