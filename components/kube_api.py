"""A Kubernetes API client in the Python standard library alone.

One client for everything here that talks to an API server: the local cluster's tools
and tests, a dynamic provider on the operator's machine, and a script shipped into a pod
beside it. None of those can count on a package being installed, so this file imports
nothing outside the standard library (a test runs it alone to keep it so).

    api = Api.from_kubeconfig(document)            # a parsed kubeconfig, one of its contexts
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

import base64
import contextlib
import datetime
import http
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
"""Server-side apply; its body may be JSON, which is YAML."""
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_API_VERSIONS: Final = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
LIST_PAGE: Final = 500
REQUEST_TIMEOUT: Final = 30.0
WATCH_TIMEOUT: Final = 300
"""Seconds the API server keeps a watch open before it ends it (the caller watches again)."""
EXEC_TIMEOUT: Final = 120.0

_UNSUPPORTED_CLUSTER_FIELDS: Final = ("tls-server-name", "proxy-url")
_UNSUPPORTED_USER_FIELDS: Final = (
    "auth-provider",
    "username",
    "password",
    "as",
    "as-uid",
    "as-groups",
    "as-user-extra",
)


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


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


def api_error(method: str, path: str, status: int, body: Any) -> ApiError:
    """The error for an answer: the API server's message from its Status, else the body."""
    message = body.get("message") if isinstance(body, Mapping) else None
    text = str(message) if message else (body if isinstance(body, str) else json.dumps(body))
    return _ERRORS.get(status, ApiError)(method, path, status, _one_line(text or "(no body)"))


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


class ExecPlugin:
    """A kubeconfig user's `exec` credential plugin (`aws eks get-token`, ...): the command
    runs when a credential is needed and its ExecCredential is kept until its
    `expirationTimestamp` (or, without one, until the API server refuses it)."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        user: str,
        cluster: Mapping[str, Any] | None = None,
        directory: Path | None = None,
    ) -> None:
        where = f"kubeconfig user {user!r}: exec"
        api_version = spec.get("apiVersion")
        if api_version not in EXEC_API_VERSIONS:
            raise KubeconfigError(
                f"{where}: apiVersion {api_version!r} is not one of {', '.join(EXEC_API_VERSIONS)}"
            )
        command = spec.get("command")
        if not isinstance(command, str) or not command:
            raise KubeconfigError(f"{where}: command: expected the plugin's command")
        if spec.get("interactiveMode") == "Always":
            raise KubeconfigError(
                f"{where}: interactiveMode Always: the plugin needs a terminal, and this "
                "client has none; use a plugin or mode that does not prompt"
            )
        # As kubectl: a relative command with a slash is relative to the kubeconfig's folder.
        if os.sep in command and not os.path.isabs(command) and directory is not None:
            command = str(directory / command)
        self.api_version = str(api_version)
        self.argv = [command, *(str(a) for a in spec.get("args") or ())]
        self.env = {str(e["name"]): str(e["value"]) for e in spec.get("env") or ()}
        self.install_hint = str(spec.get("installHint") or "")
        self.cluster = dict(cluster) if cluster and spec.get("provideClusterInfo") else None
        self.where = f"{where} {command}"
        self._credential: Credential | None = None
        self._lock = threading.Lock()

    def current(self) -> Credential:
        with self._lock:
            cached = self._credential
            if cached is None or (
                cached.expires_at is not None and time.time() >= cached.expires_at
            ):
                self._credential = cached = self._exec()
            return cached

    def refresh(self) -> Credential:
        with self._lock:
            self._credential = None
        return self.current()

    def _exec(self) -> Credential:
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster is not None:
            spec["cluster"] = self.cluster
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        try:
            done = subprocess.run(
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            hint = f" ({_one_line(self.install_hint)})" if self.install_hint else ""
            raise CredentialError(f"{self.where}: command not found{hint}") from None
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CredentialError(f"{self.where}: {_one_line(str(error))}") from None
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.strip()]
            tail = f": {_one_line(said[-1])}" if said else ""
            raise CredentialError(f"{self.where}: exited {done.returncode}{tail}")
        return self._parse(done.stdout)

    def _parse(self, output: str) -> Credential:
        try:
            answer = json.loads(output)
        except ValueError:
            raise CredentialError(f"{self.where}: the output is not JSON") from None
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise CredentialError(f"{self.where}: the output is not an ExecCredential")
        if answer.get("apiVersion") != self.api_version:
            raise CredentialError(
                f"{self.where}: answered apiVersion {answer.get('apiVersion')!r}, "
                f"asked for {self.api_version!r}"
            )
        status = answer.get("status") or {}
        token = status.get("token") or None
        certificate = status.get("clientCertificateData") or None
        key = status.get("clientKeyData") or None
        if bool(certificate) != bool(key):
            raise CredentialError(
                f"{self.where}: status has one of clientCertificateData and clientKeyData "
                "without the other"
            )
        if not token and not certificate:
            raise CredentialError(f"{self.where}: status has no token and no client certificate")
        return Credential(
            token=token,
            certificate_pem=certificate.encode() if certificate else None,
            key_pem=key.encode() if key else None,
            expires_at=self._expiry(status.get("expirationTimestamp")),
        )

    def _expiry(self, stamp: Any) -> float | None:
        if not stamp:
            return None
        try:
            moment = datetime.datetime.fromisoformat(str(stamp))
        except ValueError:
            raise CredentialError(
                f"{self.where}: expirationTimestamp {stamp!r} is not an RFC 3339 time"
            ) from None
        if moment.tzinfo is None:
            raise CredentialError(f"{self.where}: expirationTimestamp {stamp!r} has no time zone")
        return moment.timestamp()


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
    ) -> None:
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise KubeconfigError(f"server {server!r}: expected https://<host>[:<port>]")
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
        self._contexts: dict[tuple[bytes | None, bytes | None], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    # Construction -------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        document: Mapping[str, Any],
        *,
        context: str | None = None,
        directory: Path | None = None,
    ) -> Api:
        """A client for `context` (else the current context) of a parsed kubeconfig.

        Relative file names (and a relative exec command with a slash) are resolved
        against `directory`, the kubeconfig file's folder, as kubectl resolves them."""
        return _from_kubeconfig(document, context, directory)

    @classmethod
    def from_kubeconfig_file(
        cls,
        path: Path,
        *,
        context: str | None = None,
        parse: Callable[[str], Any] = json.loads,
    ) -> Api:
        """A client from a kubeconfig file. Kubeconfigs are YAML: pass a YAML parser as
        `parse` (e.g. `yaml.safe_load`) unless the file is JSON (which is YAML too)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KubeconfigError(f"kubeconfig {path}: cannot read: {error.strerror}") from None
        try:
            document = parse(text)
        except Exception as error:  # whatever the parser raises for text it cannot read
            raise KubeconfigError(f"kubeconfig {path}: {_one_line(str(error))}") from None
        if not isinstance(document, Mapping):
            raise KubeconfigError(f"kubeconfig {path}: expected a mapping")
        return cls.from_kubeconfig(document, context=context, directory=path.parent)

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
        if not self._tls:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPSConnection(
            self._host, self._port, context=self._ssl_context(credential), timeout=timeout
        )

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
                    f"server {self.server}: certificate authority: {_one_line(str(error))}"
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
                        f"client certificate for {self.server}: {_one_line(str(error))}"
                    ) from None
        return context

    def _unreachable(self, method: str, path: str, error: BaseException) -> Unreachable:
        reason = _one_line(str(error)) or type(error).__name__
        return Unreachable(f"{method} {path}: no answer from {self.server}: {reason}")


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


# --- kubeconfig ----------------------------------------------------------------------------


def _named(document: Mapping[str, Any], section: str, name: str, field: str) -> dict[str, Any]:
    entries = document.get(section) or []
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            value = entry.get(field)
            return dict(value) if isinstance(value, Mapping) else {}
    known = ", ".join(str(e.get("name")) for e in entries if isinstance(e, Mapping)) or "none"
    raise KubeconfigError(f"kubeconfig: no {field} {name!r} in {section} (there: {known})")


def _file_or_data(
    entry: Mapping[str, Any], field: str, directory: Path | None, where: str
) -> bytes | None:
    """`<field>-data` (base64) or the file `<field>` names, or None if neither is set."""
    data = entry.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except ValueError:
            raise KubeconfigError(f"{where}: {field}-data: not base64") from None
    name = entry.get(field)
    if not name:
        return None
    path = Path(str(name)).expanduser()
    if not path.is_absolute() and directory is not None:
        path = directory / path
    try:
        return path.read_bytes()
    except OSError as error:
        raise KubeconfigError(f"{where}: {field} {path}: cannot read: {error.strerror}") from None


def _from_kubeconfig(
    document: Mapping[str, Any],
    context_name: str | None,
    directory: Path | None,
) -> Api:
    name = context_name or document.get("current-context")
    if not name:
        raise KubeconfigError("kubeconfig: no context given and no current-context set")
    context = _named(document, "contexts", str(name), "context")
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if not cluster_name:
        raise KubeconfigError(f"kubeconfig context {name!r}: names no cluster")
    cluster = _named(document, "clusters", str(cluster_name), "cluster")
    user = _named(document, "users", str(user_name), "user") if user_name else {}
    cluster_where = f"kubeconfig cluster {cluster_name!r}"
    user_where = f"kubeconfig user {user_name!r}"
    for field in _UNSUPPORTED_CLUSTER_FIELDS:
        if cluster.get(field):
            raise KubeconfigError(f"{cluster_where}: {field} is not supported by this client")
    for field in _UNSUPPORTED_USER_FIELDS:
        if user.get(field):
            raise KubeconfigError(f"{user_where}: {field} is not supported by this client")
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"{cluster_where}: no server")
    certificate_authority = _file_or_data(
        cluster, "certificate-authority", directory, cluster_where
    )
    return Api(
        str(server),
        certificate_authority=certificate_authority,
        insecure=cluster.get("insecure-skip-tls-verify") is True,
        credentials=_credentials(user, str(user_name), cluster, certificate_authority, directory),
        namespace=str(context.get("namespace") or "default"),
    )


def _credentials(
    user: Mapping[str, Any],
    user_name: str,
    cluster: Mapping[str, Any],
    certificate_authority: bytes | None,
    directory: Path | None,
) -> Credentials:
    where = f"kubeconfig user {user_name!r}"
    certificate = _file_or_data(user, "client-certificate", directory, where)
    key = _file_or_data(user, "client-key", directory, where)
    if bool(certificate) != bool(key):
        raise KubeconfigError(
            f"{where}: a client certificate needs its key: set both client-certificate(-data) "
            "and client-key(-data)"
        )
    kinds = [k for k in ("token", "tokenFile", "exec") if user.get(k)]
    if len(kinds) > 1:
        raise KubeconfigError(f"{where}: {' and '.join(kinds)} exclude each other: keep one")
    if user.get("exec"):
        if certificate:
            raise KubeconfigError(f"{where}: exec and client-certificate exclude each other")
        cluster_info = {
            "server": cluster.get("server"),
            "insecure-skip-tls-verify": cluster.get("insecure-skip-tls-verify") is True,
            **(
                {"certificate-authority-data": base64.b64encode(certificate_authority).decode()}
                if certificate_authority
                else {}
            ),
            **({"config": _exec_config(cluster)} if _exec_config(cluster) is not None else {}),
        }
        return ExecPlugin(
            user["exec"],
            user=user_name,
            cluster=cluster_info,
            directory=directory,
        )
    token = str(user["token"]) if user.get("token") else None
    if user.get("tokenFile"):
        path = Path(str(user["tokenFile"])).expanduser()
        if not path.is_absolute() and directory is not None:
            path = directory / path
        if certificate:
            raise KubeconfigError(f"{where}: tokenFile and client-certificate exclude each other")
        return TokenFile(path)
    return Static(Credential(token=token, certificate_pem=certificate, key_pem=key))


def _exec_config(cluster: Mapping[str, Any]) -> Any:
    """The cluster's `client.authentication.k8s.io/exec` extension, handed to the plugin."""
    for extension in cluster.get("extensions") or ():
        if isinstance(extension, Mapping) and extension.get("name") == (
            "client.authentication.k8s.io/exec"
        ):
            return extension.get("extension")
    return None
