"""The one kubeconfig loader (`opstrace.kubeconfig`): a client as kubectl would connect."""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstrace import kubeconfig as kubeconfigs
from opstrace.kubeconfig import ExecPlugin
from sidecar import kube_client
from sidecar.kube_client import Api, Credential, Static, TokenFile
from tools import pki

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
    api = kubeconfigs.from_document(document, context=context or "", directory=folder)
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
    with pytest.raises(kube_client.KubeconfigError) as raised:
        kubeconfigs.from_document(document, context=context or "", directory=folder)
    assert str(raised.value) == message.replace("{folder}", str(folder))


def test_kubeconfig_file_is_read_as_yaml(folder: Path) -> None:
    path = folder / "config"
    path.write_text(json.dumps(kubeconfig({"token": "t"})))
    assert described(kubeconfigs.client(str(path)))["credentials"] == ("static", "t", None, None)
    path.write_text("clusters: [")
    with pytest.raises(kube_client.KubeconfigError, match=rf"^kubeconfig {path}: not YAML: "):
        kubeconfigs.client(str(path))


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
    credentials = kubeconfigs.from_document(document).credentials
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
    with pytest.raises(kube_client.CredentialError) as raised:
        plugin.plugin().current()
    assert str(raised.value) == f"kubeconfig user 'eks': exec {sys.executable}: {reason}"


def test_exec_plugin_that_is_not_installed_says_how_to_install_it() -> None:
    spec = {
        **EXEC,
        "command": "no-such-plugin",
        "installHint": "Install the AWS CLI:\n aws.amazon.com/cli",
    }
    with pytest.raises(kube_client.CredentialError) as raised:
        ExecPlugin(spec, user="eks").current()
    assert str(raised.value) == (
        "kubeconfig user 'eks': exec no-such-plugin: command not found "
        "(Install the AWS CLI: aws.amazon.com/cli)"
    )


# --- $KUBECONFIG, as kubectl merges it --------------------------------------------------------


def one_context(server: str, name: str = "local", **cluster: Any) -> dict[str, Any]:
    return {
        "clusters": [{"name": name, "cluster": {"server": server, **cluster}}],
        "users": [{"name": name, "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def test_each_entry_of_kubeconfig_files_comes_from_the_first_file_that_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(json.dumps(one_context("http://127.0.0.1:1", "prod")))
    later = one_context("http://127.0.0.1:2", "prod")
    later["contexts"].append({"name": "ci", "context": {"cluster": "prod", "user": "prod"}})
    second.write_text(json.dumps({**later, "current-context": "ci"}))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert kubeconfigs.client().server == "http://127.0.0.1:1"
    assert kubeconfigs.client(context="ci").server == "http://127.0.0.1:1"


def test_a_context_only_the_second_kubeconfig_file_names_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(json.dumps(one_context("http://127.0.0.1:1", "prod")))
    second.write_text(json.dumps(one_context("http://127.0.0.1:2", "staging")))
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert kubeconfigs.client(context="staging").server == "http://127.0.0.1:2"


def test_relative_files_of_each_kubeconfig_are_relative_to_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_bytes(CA)
    (tmp_path / "a" / "config").write_text(json.dumps(one_context("https://k1", "one")))
    second = one_context("https://k2", "two", **{"certificate-authority": "ca.crt"})
    (tmp_path / "b" / "config").write_text(json.dumps(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a' / 'config'}:{tmp_path / 'b' / 'config'}")
    assert kubeconfigs.client(context="two").certificate_authority == CA


def test_kubeconfig_files_that_do_not_exist_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = tmp_path / "config"
    present.write_text(json.dumps(one_context("http://127.0.0.1:3")))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'gone'}:{present}")
    assert kubeconfigs.client().server == "http://127.0.0.1:3"


def test_no_kubeconfig_file_at_all_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    with pytest.raises(kube_client.KubeconfigError) as raised:
        kubeconfigs.client()
    assert str(raised.value) == f"kubeconfig: none of {tmp_path / 'a'}, {tmp_path / 'b'} exists"


def test_an_explicit_kubeconfig_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(kube_client.KubeconfigError) as raised:
        kubeconfigs.client(str(tmp_path / "missing"))
    assert str(raised.value) == (
        f"kubeconfig {tmp_path / 'missing'}: cannot read: No such file or directory"
    )


# --- tls-server-name and proxy-url, against real servers on 127.0.0.1 -------------------------


@dataclass
class TlsServer:
    """An HTTPS server on 127.0.0.1 whose certificate names `api.internal` only."""

    url: str
    authority: bytes


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    ca = pki.Authority.create("test-ca", days=1)
    certificate, key = ca.issue(pki.name("api.internal"), days=1, dns_names=["api.internal"])
    (tmp_path / "tls.crt").write_bytes(pki.certificate_pem(certificate))
    pki.write_private_key(key, tmp_path / "tls.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"gitVersion": "v1.34.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield TlsServer(
        f"https://127.0.0.1:{server.server_address[1]}", pki.certificate_pem(ca.certificate)
    )
    server.shutdown()
    server.server_close()


@pytest.fixture
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT requests; (its URL, targets)."""
    targets: list[str] = []

    class Proxy(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                head += self.request.recv(4096)
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            targets.append(f"{method} {target}")
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipes = [
                    threading.Thread(target=pipe, args=(a, b), daemon=True)
                    for a, b in ((self.request, upstream), (upstream, self.request))
                ]
                for thread in pipes:
                    thread.start()
                for thread in pipes:
                    thread.join(timeout=30)

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", targets
    server.shutdown()
    server.server_close()


def cluster_at(server: TlsServer, **cluster: Any) -> dict[str, Any]:
    authority = {"certificate-authority-data": b64(server.authority)}
    return one_context(server.url, **authority, **cluster)


def test_tls_server_name_is_the_name_the_servers_certificate_is_checked_for(
    tls_server: TlsServer,
) -> None:
    api = kubeconfigs.from_document(cluster_at(tls_server, **{"tls-server-name": "api.internal"}))
    assert api.get("/version") == {"gitVersion": "v1.34.0"}


def test_without_tls_server_name_a_certificate_for_another_name_is_refused(
    tls_server: TlsServer,
) -> None:
    api = kubeconfigs.from_document(cluster_at(tls_server))
    with pytest.raises(kube_client.Unreachable, match="certificate verify failed"):
        api.get("/version")


def test_proxy_url_tunnels_every_request_through_the_proxy(
    tls_server: TlsServer, connect_proxy: tuple[str, list[str]]
) -> None:
    proxy, targets = connect_proxy
    document = cluster_at(tls_server, **{"tls-server-name": "api.internal", "proxy-url": proxy})
    assert kubeconfigs.from_document(document).get("/version") == {"gitVersion": "v1.34.0"}
    assert targets == [f"CONNECT {tls_server.url.removeprefix('https://')}"]


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "https://proxy:3128"])
def test_a_proxy_other_than_http_is_refused_with_one_line(proxy: str) -> None:
    with pytest.raises(kube_client.KubeconfigError) as raised:
        kubeconfigs.from_document(one_context("https://k", **{"proxy-url": proxy}))
    assert str(raised.value) == (
        f"proxy {proxy!r}: expected http://<host>[:<port>] (an HTTP proxy that tunnels with "
        "CONNECT; https and socks5 proxies are not supported)"
    )
