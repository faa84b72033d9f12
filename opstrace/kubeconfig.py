"""The one kubeconfig loader: a Kubernetes API client as kubectl would connect.

Everything on the operator's side that talks to a cluster builds its client here: the
rollout and enforcement providers (with the stack's `kubeconfig`/`kubeContext`, as the
Kubernetes provider connects), the local cluster's tools and the tests. The rules are
kubectl's (client-go's `clientcmd` loading rules):

- an explicit path, else every file of `$KUBECONFIG` (merged: for each named cluster,
  user and context, and for `current-context`, the first file that sets it wins; files
  that do not exist are skipped), else `~/.kube/config`;
- relative paths in a file are relative to that file's folder;
- a cluster's `proxy-url` (an HTTP proxy that tunnels with CONNECT) and `tls-server-name`
  are honoured; credentials are a client certificate, a token, a token file, or an exec
  plugin (`aws eks get-token`, ...), whose ExecCredential is kept until it expires.

What this client cannot do is refused with a one-line `KubeconfigError` naming the field
(an `auth-provider`, basic auth, impersonation, a proxy other than http://).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from sidecar.kube_client import (
    Api,
    Credential,
    CredentialError,
    Credentials,
    KubeconfigError,
    Static,
    TokenFile,
    one_line,
)

DEFAULT_PATH: Final = "~/.kube/config"
EXEC_API_VERSIONS: Final = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
EXEC_TIMEOUT: Final = 120.0
_UNSUPPORTED_USER_FIELDS: Final = (
    "auth-provider",
    "username",
    "password",
    "as",
    "as-uid",
    "as-groups",
    "as-user-extra",
)
_SECTIONS: Final = ("clusters", "users", "contexts")
_PATH_FIELDS: Final = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}
"""Fields naming a file, relative to the kubeconfig's folder (kubectl's ResolvePaths)."""


def client(path: str = "", context: str = "", *, document: str = "") -> Api:
    """A client as kubectl connects: `document` (a kubeconfig's text, e.g. the eks
    cluster's) if given, else the file `path` as written (`~` expanded; it must exist),
    else the merged files of `$KUBECONFIG`, else `~/.kube/config`; `context`, else the
    current one."""
    if document:
        return from_document(_parsed(document, "kubeconfig"), context=context)
    if path:
        file = Path(path).expanduser()
        return from_document(_read(file), context=context, directory=file.parent)
    return from_document(merged(listed()), context=context)


def listed(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The kubeconfig files kubectl reads without an explicit one, in its order."""
    files = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in files or [DEFAULT_PATH]]


def merged(files: Iterable[Path]) -> dict[str, Any]:
    """One kubeconfig from `files`: each named entry and `current-context` from the first
    file that sets it; relative paths resolved against each file's own folder. A file
    that does not exist is skipped, unless none of them exists."""
    files = list(files)
    documents = [
        _resolved(_read(path), path.parent) for path in files if path.exists() or len(files) == 1
    ]
    if not documents:
        shown = ", ".join(str(p) for p in files)
        raise KubeconfigError(f"kubeconfig: none of {shown} exists")
    result: dict[str, Any] = {section: [] for section in _SECTIONS}
    for document in documents:
        for section in _SECTIONS:
            known = {entry.get("name") for entry in result[section]}
            result[section].extend(
                entry
                for entry in document.get(section) or ()
                if isinstance(entry, Mapping) and entry.get("name") not in known
            )
        if document.get("current-context") and not result.get("current-context"):
            result["current-context"] = document["current-context"]
    return result


def from_document(
    document: Mapping[str, Any], *, context: str = "", directory: Path | None = None
) -> Api:
    """A client for `context` (else the current context) of a parsed kubeconfig.

    Relative file names (and a relative exec command with a slash) are resolved against
    `directory`, the kubeconfig file's folder, as kubectl resolves them."""
    if directory is not None:
        document = _resolved(document, directory)
    return _from_kubeconfig(document, context or None)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KubeconfigError(f"kubeconfig {path}: cannot read: {error.strerror}") from None
    return _parsed(text, f"kubeconfig {path}")


def _parsed(text: str, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KubeconfigError(f"{where}: not YAML: {one_line(str(error))}") from None
    if not isinstance(document, dict):
        raise KubeconfigError(f"{where}: expected a mapping")
    return document


def _resolved(document: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """`document` with the files its clusters and users name made absolute."""
    result = dict(document)
    for section, fields in _PATH_FIELDS.items():
        entries = []
        for entry in document.get(section) or ():
            if not isinstance(entry, Mapping):
                continue
            inner_name = section[:-1]
            inner = dict(entry.get(inner_name) or {})
            for field in fields:
                value = inner.get(field)
                if isinstance(value, str) and value:
                    path = Path(value).expanduser()
                    inner[field] = str(path if path.is_absolute() else directory / path)
            exec_spec = inner.get("exec")
            if isinstance(exec_spec, Mapping):
                command = exec_spec.get("command")
                if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
                    inner["exec"] = {**exec_spec, "command": str(directory / command)}
            entries.append({**entry, inner_name: inner})
        if section in document:
            result[section] = entries
    return result


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
            hint = f" ({one_line(self.install_hint)})" if self.install_hint else ""
            raise CredentialError(f"{self.where}: command not found{hint}") from None
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CredentialError(f"{self.where}: {one_line(str(error))}") from None
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.strip()]
            tail = f": {one_line(said[-1])}" if said else ""
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


def _named(document: Mapping[str, Any], section: str, name: str, field: str) -> dict[str, Any]:
    entries = document.get(section) or []
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            value = entry.get(field)
            return dict(value) if isinstance(value, Mapping) else {}
    known = ", ".join(str(e.get("name")) for e in entries if isinstance(e, Mapping)) or "none"
    raise KubeconfigError(f"kubeconfig: no {field} {name!r} in {section} (there: {known})")


def _file_or_data(entry: Mapping[str, Any], field: str, where: str) -> bytes | None:
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
    try:
        return path.read_bytes()
    except OSError as error:
        raise KubeconfigError(f"{where}: {field} {path}: cannot read: {error.strerror}") from None


def _from_kubeconfig(document: Mapping[str, Any], context_name: str | None) -> Api:
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
    for field in _UNSUPPORTED_USER_FIELDS:
        if user.get(field):
            raise KubeconfigError(f"{user_where}: {field} is not supported by this client")
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"{cluster_where}: no server")
    certificate_authority = _file_or_data(cluster, "certificate-authority", cluster_where)
    return Api(
        str(server),
        certificate_authority=certificate_authority,
        insecure=cluster.get("insecure-skip-tls-verify") is True,
        credentials=_credentials(user, str(user_name), cluster, certificate_authority),
        namespace=str(context.get("namespace") or "default"),
        tls_server_name=str(cluster.get("tls-server-name") or "") or None,
        proxy=str(cluster.get("proxy-url") or "") or None,
    )


def _credentials(
    user: Mapping[str, Any],
    user_name: str,
    cluster: Mapping[str, Any],
    certificate_authority: bytes | None,
) -> Credentials:
    where = f"kubeconfig user {user_name!r}"
    certificate = _file_or_data(user, "client-certificate", where)
    key = _file_or_data(user, "client-key", where)
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
        return ExecPlugin(user["exec"], user=user_name, cluster=cluster_info)
    token = str(user["token"]) if user.get("token") else None
    if user.get("tokenFile"):
        path = Path(str(user["tokenFile"])).expanduser()
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
