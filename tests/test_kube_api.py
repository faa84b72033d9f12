"""The Kubernetes client without a server: kubeconfig contexts, credentials, error lines.

What it does against a real API server is in tests/engine/test_kube_api.py.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import kube_api
from components.kube_api import Api, Credential, ExecPlugin, Static, TokenFile

PROJECT_DIR = Path(__file__).resolve().parent.parent
CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
EXEC = {"apiVersion": "client.authentication.k8s.io/v1", "command": "plugin"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A kubeconfig with one context `main` (current) and a second one, `other`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c1",
                "cluster": {"server": "https://k8s.example:6443"} if cluster is None else cluster,
            },
            {"name": "c2", "cluster": {"server": "https://other.example"}},
        ],
        "users": [{"name": "u1", "user": user or {}}, {"name": "u2", "user": {"token": "t2"}}],
        "contexts": [
            {"name": "main", "context": context or {"cluster": "c1", "user": "u1"}},
            {"name": "other", "context": {"cluster": "c2", "user": "u2", "namespace": "ops"}},
        ],
        "current-context": "main",
    }


def described(api: Api) -> dict[str, Any]:
    """What a client was built with, as plain values."""
    credentials = api.credentials
    if isinstance(credentials, Static):
        c = credentials.credential
        source: Any = ("static", c.token, c.certificate_pem, c.key_pem)
    elif isinstance(credentials, TokenFile):
        source = ("token file", str(credentials.path))
    elif isinstance(credentials, ExecPlugin):
        source = ("exec", credentials.argv)
    else:
        source = type(credentials).__name__
    return {
        "server": api.server,
        "namespace": api.namespace,
        "ca": api.certificate_authority,
        "insecure": api.insecure,
        "credentials": source,
    }


def expect(
    server: str = "https://k8s.example:6443",
    namespace: str = "default",
    ca: bytes | None = None,
    insecure: bool = False,
    credentials: Any = ("static", None, None, None),
) -> dict[str, Any]:
    return {
        "server": server,
        "namespace": namespace,
        "ca": ca,
        "insecure": insecure,
        "credentials": credentials,
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A kubeconfig's folder, with the files its relative names point at."""
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "client.crt").write_bytes(CERT)
    (tmp_path / "client.key").write_bytes(KEY)
    return tmp_path


ACCEPTED: list[tuple[str, dict[str, Any], str | None, dict[str, Any]]] = [
    ("current_context", kubeconfig(), None, expect()),
    (
        "named_context_with_its_namespace",
        kubeconfig(),
        "other",
        expect("https://other.example", "ops", credentials=("static", "t2", None, None)),
    ),
    (
        "namespace_of_the_context",
        kubeconfig(context={"cluster": "c1", "user": "u1", "namespace": "tenants"}),
        None,
        expect(namespace="tenants"),
    ),
    (
        "certificate_authority_data",
        kubeconfig(cluster={"server": "https://k", "certificate-authority-data": b64(CA)}),
        None,
        expect("https://k", ca=CA),
    ),
    (
        "certificate_authority_file_relative_to_the_kubeconfig",
        kubeconfig(cluster={"server": "https://k", "certificate-authority": "ca.crt"}),
        None,
        expect("https://k", ca=CA),
    ),
    (
        "insecure_skip_tls_verify",
        kubeconfig(cluster={"server": "https://k", "insecure-skip-tls-verify": True}),
        None,
        expect("https://k", insecure=True),
    ),
    (
        "client_certificate_data",
        kubeconfig({"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)}),
        None,
        expect(credentials=("static", None, CERT, KEY)),
    ),
    (
        "client_certificate_files",
        kubeconfig({"client-certificate": "client.crt", "client-key": "client.key"}),
        None,
        expect(credentials=("static", None, CERT, KEY)),
    ),
    (
        "token",
        kubeconfig({"token": "s3cret"}),
        None,
        expect(credentials=("static", "s3cret", None, None)),
    ),
    (
        "token_file_relative_to_the_kubeconfig",
        kubeconfig({"tokenFile": "token"}),
        None,
        expect(credentials=("token file", "{folder}/token")),
    ),
    (
        "exec_plugin_with_its_arguments",
        kubeconfig({"exec": {**EXEC, "command": "aws", "args": ["eks", "get-token"]}}),
        None,
        expect(credentials=("exec", ["aws", "eks", "get-token"])),
    ),
    (
        "exec_command_with_a_slash_relative_to_the_kubeconfig",
        kubeconfig({"exec": {**EXEC, "command": "bin/plugin"}}),
        None,
        expect(credentials=("exec", ["{folder}/bin/plugin"])),
    ),
    (
        "exec_command_without_a_slash_from_path",
        kubeconfig({"exec": {**EXEC, "command": "plugin"}}),
        None,
        expect(credentials=("exec", ["plugin"])),
    ),
]


@pytest.mark.parametrize(
    ("document", "context", "expected"),
    [row[1:] for row in ACCEPTED],
    ids=[row[0] for row in ACCEPTED],
)
def test_kubeconfig_gives_a_client_of_its_context(
    folder: Path, document: dict[str, Any], context: str | None, expected: dict[str, Any]
) -> None:
    api = Api.from_kubeconfig(document, context=context, directory=folder)
    text = json.dumps(expected, default=lambda b: b.decode()).replace("{folder}", str(folder))
    assert json.dumps(described(api), default=lambda b: b.decode()) == text


REFUSED: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "no_current_context",
        {**kubeconfig(), "current-context": ""},
        None,
        "kubeconfig: no context given and no current-context set",
    ),
    (
        "unknown_context",
        kubeconfig(),
        "prod",
        "kubeconfig: no context 'prod' in contexts (there: main, other)",
    ),
    (
        "context_without_a_cluster",
        kubeconfig(context={"user": "u1"}),
        None,
        "kubeconfig context 'main': names no cluster",
    ),
    (
        "unknown_cluster",
        kubeconfig(context={"cluster": "c9", "user": "u1"}),
        None,
        "kubeconfig: no cluster 'c9' in clusters (there: c1, c2)",
    ),
    (
        "unknown_user",
        kubeconfig(context={"cluster": "c1", "user": "u9"}),
        None,
        "kubeconfig: no user 'u9' in users (there: u1, u2)",
    ),
    (
        "cluster_without_a_server",
        kubeconfig(cluster={}),
        None,
        "kubeconfig cluster 'c1': no server",
    ),
    (
        "server_not_a_url",
        kubeconfig(cluster={"server": "k8s.example:6443"}),
        None,
        "server 'k8s.example:6443': expected https://<host>[:<port>]",
    ),
    (
        "certificate_authority_data_not_base64",
        kubeconfig(cluster={"server": "https://k", "certificate-authority-data": "%%%"}),
        None,
        "kubeconfig cluster 'c1': certificate-authority-data: not base64",
    ),
    (
        "certificate_authority_file_missing",
        kubeconfig(cluster={"server": "https://k", "certificate-authority": "missing.crt"}),
        None,
        "kubeconfig cluster 'c1': certificate-authority {folder}/missing.crt: cannot read: "
        "No such file or directory",
    ),
    (
        "tls_server_name",
        kubeconfig(cluster={"server": "https://k", "tls-server-name": "api"}),
        None,
        "kubeconfig cluster 'c1': tls-server-name is not supported by this client",
    ),
    (
        "client_certificate_without_its_key",
        kubeconfig({"client-certificate-data": b64(CERT)}),
        None,
        "kubeconfig user 'u1': a client certificate needs its key: set both "
        "client-certificate(-data) and client-key(-data)",
    ),
    (
        "token_and_exec",
        kubeconfig({"token": "t", "exec": EXEC}),
        None,
        "kubeconfig user 'u1': token and exec exclude each other: keep one",
    ),
    (
        "auth_provider",
        kubeconfig({"auth-provider": {"name": "gcp"}}),
        None,
        "kubeconfig user 'u1': auth-provider is not supported by this client",
    ),
    (
        "exec_api_version",
        kubeconfig({"exec": {**EXEC, "apiVersion": "client.authentication.k8s.io/v1alpha1"}}),
        None,
        "kubeconfig user 'u1': exec: apiVersion 'client.authentication.k8s.io/v1alpha1' is not "
        "one of client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1",
    ),
    (
        "exec_without_a_command",
        kubeconfig({"exec": {**EXEC, "command": ""}}),
        None,
        "kubeconfig user 'u1': exec: command: expected the plugin's command",
    ),
    (
        "exec_that_always_prompts",
        kubeconfig({"exec": {**EXEC, "interactiveMode": "Always"}}),
        None,
        "kubeconfig user 'u1': exec: interactiveMode Always: the plugin needs a terminal, and "
        "this client has none; use a plugin or mode that does not prompt",
    ),
]


@pytest.mark.parametrize(
    ("document", "context", "message"),
    [row[1:] for row in REFUSED],
    ids=[row[0] for row in REFUSED],
)
def test_kubeconfig_mistake_is_refused_with_one_line(
    folder: Path, document: dict[str, Any], context: str | None, message: str
) -> None:
    with pytest.raises(kube_api.KubeconfigError) as raised:
        Api.from_kubeconfig(document, context=context, directory=folder)
    assert str(raised.value) == message.replace("{folder}", str(folder))


def test_kubeconfig_file_is_parsed_by_the_given_parser(folder: Path) -> None:
    path = folder / "config"
    path.write_text(json.dumps(kubeconfig({"token": "t"})))
    assert described(Api.from_kubeconfig_file(path))["credentials"] == ("static", "t", None, None)
    path.write_text("clusters: [")
    with pytest.raises(kube_api.KubeconfigError, match=rf"^kubeconfig {path}: Expecting value"):
        Api.from_kubeconfig_file(path)


# --- the exec credential plugin -------------------------------------------------------------

PLUGIN = """\
    import json, os, pathlib, sys
    here = pathlib.Path(sys.argv[0]).parent
    with open(here / "runs", "a") as runs:
        run = {"info": json.loads(os.environ["KUBERNETES_EXEC_INFO"])}
        runs.write(json.dumps({**run, "profile": os.environ.get("AWS_PROFILE")}) + "\\n")
    answer = json.loads((here / "answer.json").read_text())
    if "exit" in answer:
        print("warming up", file=sys.stderr)
        print(answer["stderr"], file=sys.stderr)
        sys.exit(answer["exit"])
    print(json.dumps(answer))
"""


def moment(seconds_from_now: float) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds_from_now)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Plugin:
    """A fake credential plugin: a script that answers what `answer` says, logging each run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.script = folder / "plugin.py"
        self.script.write_text(textwrap.dedent(PLUGIN))

    def answer(
        self, status: dict[str, Any] | None = None, *, document: dict[str, Any] | None = None
    ) -> None:
        document = document or {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": status,
        }
        (self.folder / "answer.json").write_text(json.dumps(document))

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {**EXEC, "command": sys.executable, "args": [str(self.script)], **extra}

    def plugin(self, cluster: dict[str, Any] | None = None, **extra: Any) -> ExecPlugin:
        return ExecPlugin(self.spec(**extra), user="eks", cluster=cluster)

    def runs(self) -> list[dict[str, Any]]:
        path = self.folder / "runs"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path)


def test_exec_plugin_token_is_kept_until_it_expires(plugin: Plugin) -> None:
    plugin.answer({"token": "k8s-aws-v1.abc", "expirationTimestamp": moment(600)})
    exec_plugin = plugin.plugin()
    first, second = exec_plugin.current(), exec_plugin.current()
    assert first == second
    assert first.token == "k8s-aws-v1.abc"
    assert len(plugin.runs()) == 1


def test_exec_plugin_runs_again_once_its_token_has_expired(plugin: Plugin) -> None:
    plugin.answer({"token": "old", "expirationTimestamp": moment(-1)})
    exec_plugin = plugin.plugin()
    assert exec_plugin.current().token == "old"
    plugin.answer({"token": "new", "expirationTimestamp": moment(600)})
    assert exec_plugin.current().token == "new"
    assert len(plugin.runs()) == 2


def test_exec_plugin_token_without_expiry_is_kept_until_refreshed(plugin: Plugin) -> None:
    plugin.answer({"token": "one"})
    exec_plugin = plugin.plugin()
    assert [exec_plugin.current().token, exec_plugin.current().token] == ["one", "one"]
    plugin.answer({"token": "two"})
    assert exec_plugin.refresh().token == "two"
    assert len(plugin.runs()) == 2


def test_exec_plugin_client_certificate(plugin: Plugin) -> None:
    plugin.answer({"clientCertificateData": CERT.decode(), "clientKeyData": KEY.decode()})
    credential = plugin.plugin().current()
    assert credential == Credential(certificate_pem=CERT, key_pem=KEY)


def test_exec_plugin_gets_its_env_and_the_exec_info(plugin: Plugin) -> None:
    plugin.answer({"token": "t"})
    plugin.plugin(env=[{"name": "AWS_PROFILE", "value": "ops"}]).current()
    assert plugin.runs() == [
        {
            "info": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "spec": {"interactive": False},
            },
            "profile": "ops",
        }
    ]


def test_exec_plugin_is_told_the_cluster_only_when_it_asks(plugin: Plugin) -> None:
    plugin.answer({"token": "t"})
    cluster = {"server": "https://k", "certificate-authority-data": b64(CA)}
    plugin.plugin(cluster).current()
    plugin.plugin(cluster, provideClusterInfo=True).current()
    assert [run["info"]["spec"].get("cluster") for run in plugin.runs()] == [None, cluster]


def test_kubeconfig_exec_plugin_is_told_its_cluster() -> None:
    document = kubeconfig(
        {"exec": {**EXEC, "provideClusterInfo": True}},
        cluster={"server": "https://k", "certificate-authority-data": b64(CA)},
    )
    credentials = Api.from_kubeconfig(document).credentials
    assert isinstance(credentials, ExecPlugin)
    assert credentials.cluster == {
        "server": "https://k",
        "insecure-skip-tls-verify": False,
        "certificate-authority-data": b64(CA),
    }


EXEC_FAILURES: list[tuple[str, dict[str, Any], str]] = [
    (
        "exit_status",
        {
            "exit": 3,
            "stderr": "ExpiredToken: the security token included in the request is expired",
        },
        "exited 3: ExpiredToken: the security token included in the request is expired",
    ),
    ("not_json", {"raw": "not json"}, "the output is not JSON"),
    ("not_an_exec_credential", {"kind": "Status"}, "the output is not an ExecCredential"),
    (
        "other_api_version",
        {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"},
        "answered apiVersion 'client.authentication.k8s.io/v1beta1', asked for "
        "'client.authentication.k8s.io/v1'",
    ),
    (
        "no_credential",
        {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {}},
        "status has no token and no client certificate",
    ),
    (
        "certificate_without_key",
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"clientCertificateData": "x"},
        },
        "status has one of clientCertificateData and clientKeyData without the other",
    ),
    (
        "bad_expiry",
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": "t", "expirationTimestamp": "tomorrow"},
        },
        "expirationTimestamp 'tomorrow' is not an RFC 3339 time",
    ),
]


@pytest.mark.parametrize(
    ("answer", "reason"), [row[1:] for row in EXEC_FAILURES], ids=[row[0] for row in EXEC_FAILURES]
)
def test_exec_plugin_failure_is_one_line(
    plugin: Plugin, answer: dict[str, Any], reason: str
) -> None:
    if "raw" in answer:
        plugin.script.write_text(f"print({answer['raw']!r})")
    else:
        plugin.answer(document=answer)
    with pytest.raises(kube_api.CredentialError) as raised:
        plugin.plugin().current()
    assert str(raised.value) == f"kubeconfig user 'eks': exec {sys.executable}: {reason}"


def test_exec_plugin_that_is_not_installed_says_how_to_install_it() -> None:
    spec = {
        **EXEC,
        "command": "no-such-plugin",
        "installHint": "Install the AWS CLI:\n aws.amazon.com/cli",
    }
    with pytest.raises(kube_api.CredentialError) as raised:
        ExecPlugin(spec, user="eks").current()
    assert str(raised.value) == (
        "kubeconfig user 'eks': exec no-such-plugin: command not found "
        "(Install the AWS CLI: aws.amazon.com/cli)"
    )


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
    with pytest.raises(kube_api.CredentialError) as raised:
        TokenFile(tmp_path / "token").current()
    assert (
        str(raised.value) == f"token file {tmp_path}/token: cannot read: No such file or directory"
    )


def test_in_cluster_outside_a_pod_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(kube_api.KubeconfigError) as raised:
        Api.in_cluster(tmp_path, environ={})
    assert str(raised.value) == (
        "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
    )


def test_in_cluster_reads_the_service_account_folder(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "namespace").write_text("system-tenant")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    api = Api.in_cluster(tmp_path, environ=environ)
    assert described(api) == expect(
        "https://[fd00::1]:443",
        "system-tenant",
        CA,
        credentials=("token file", f"{tmp_path}/token"),
    )


# --- errors ---------------------------------------------------------------------------------


def test_api_error_names_method_path_status_and_the_servers_message() -> None:
    status = {"kind": "Status", "code": 404, "message": 'configmaps "x" not found'}
    error = kube_api.api_error("GET", "/api/v1/namespaces/a/configmaps/x", 404, status)
    assert isinstance(error, kube_api.NotFound)
    assert (
        str(error)
        == 'GET /api/v1/namespaces/a/configmaps/x: 404 Not Found: configmaps "x" not found'
    )


def test_api_error_without_a_status_object_shows_the_body_on_one_line() -> None:
    error = kube_api.api_error("POST", "/api/v1/nodes", 502, "<html>\n  bad gateway\n</html>")
    assert type(error) is kube_api.ApiError
    assert str(error) == "POST /api/v1/nodes: 502 Bad Gateway: <html> bad gateway </html>"


def test_unreachable_server_is_one_line() -> None:
    api = Api("https://127.0.0.1:1", timeout=5)
    with pytest.raises(kube_api.Unreachable) as raised:
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
    with pytest.raises(kube_api.Gone) as raised:
        next(events)
    assert str(raised.value) == (
        "GET /api/v1/namespaces/x/configmaps?resourceVersion=7: 410 Gone: "
        "too old resource version: 7 (425)"
    )


# --- standing alone -------------------------------------------------------------------------


def test_the_client_runs_alone_on_the_standard_library() -> None:
    """It is shipped into pods as a single file: it must load with no site-packages."""
    probe = (
        f"import sys; sys.path.insert(0, {str(PROJECT_DIR / 'components')!r}); import kube_api; "
        "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'__main__', 'kube_api'}))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
