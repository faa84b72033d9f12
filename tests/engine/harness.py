"""The real Pulumi engine for tests: the CLI and plugins that `make engine` built.

`Workspace` runs `pulumi` from `.engine/bin` in a project folder with everything
isolated in temporary folders (`tools.engine_cli.environment`: PULUMI_HOME, a file
backend, passphrase secrets, no plugin downloads, no update check, no prompts; the
Kubernetes provider installed into the plugin cache). A program's Python is the
checkout's `.venv` (Pulumi.yaml `runtime.options.virtualenv`).

`require_tools` skips a test when a tool is missing, or fails it when
OPSTRACE_REQUIRE_TOOLS=1 (CI), so that CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from sidecar import kube_client
from tools import cluster as local_cluster
from tools import engine_cli
from tools.cluster import state as cluster_state
from tools.cluster.gateway_pods import ADDRESS as GATEWAY_PODS_ADDRESS
from tools.cluster.supervisor import stat_fields
from tools.ports import free_port

ROOT: Final = Path(__file__).resolve().parent.parent.parent
ENGINE_BIN: Final = cluster_state.BIN
VENV: Final = ROOT / ".venv"
PASSPHRASE: Final = "engine-tests-passphrase"
COMMAND_TIMEOUT: Final = 900.0
PROGRAM_FILES: Final = ("__main__.py", "components", "opstrace", "sidecar")
"""What of the checkout a copy of the project needs to run the program."""

PULUMI_TOOLS: Final = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-pulumi-python",
    "pulumi-resource-kubernetes",
)
CLUSTER_TOOLS: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)


def require_tools(tools: Sequence[str]) -> None:
    """Skip (or, with OPSTRACE_REQUIRE_TOOLS=1, fail) unless every tool is built."""
    missing = [tool for tool in tools if not os.access(ENGINE_BIN / tool, os.X_OK)]
    if not (VENV / "bin" / "python").exists():
        missing.append(f"{VENV}/bin/python")
    if not missing:
        return
    message = f"missing {', '.join(missing)} in {ENGINE_BIN}: run `make engine && make cluster-up`"
    if os.environ.get("OPSTRACE_REQUIRE_TOOLS") == "1":
        pytest.fail(f"OPSTRACE_REQUIRE_TOOLS=1 and {message}")
    pytest.skip(message)


def engine_env(home: Path, backend: Path) -> dict[str, str]:
    """The environment of every `pulumi` command: isolated, offline, non-interactive."""
    return engine_cli.environment(home, backend, PASSPHRASE)


@dataclass
class Workspace:
    """A Pulumi project folder with its own home and file backend."""

    project_dir: Path
    home: Path
    backend: Path
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        for folder in (self.project_dir, self.home, self.backend):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = engine_env(self.home, self.backend)
        self.run(*engine_cli.KUBERNETES_PLUGIN_INSTALL)

    def run(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi <args> --non-interactive`; with `check`, fail showing its output.

        Past `timeout` the CLI and every process it started (the language host, the
        providers: each in a process group of its own) are killed, so that none is left
        running against the next command's cluster."""
        command = subprocess.Popen(
            [str(engine_cli.PULUMI), *args, "--non-interactive"],
            cwd=self.project_dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = command.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(command.pid)
            command.communicate()
            raise
        result = subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)
        if check and result.returncode != 0:
            pytest.fail(
                f"`pulumi {' '.join(args)}` exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def write_project(
        self,
        name: str,
        program: str,
        config: Mapping[str, Any] | None = None,
        files: Mapping[str, str] | None = None,
    ) -> None:
        """Pulumi.yaml (Python, the checkout's venv), __main__.py and extra files."""
        project: dict[str, Any] = {
            "name": name,
            "runtime": {
                "name": "python",
                "options": {"toolchain": "pip", "virtualenv": str(VENV)},
            },
        }
        if config:
            project["config"] = dict(config)
        (self.project_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        (self.project_dir / "__main__.py").write_text(textwrap.dedent(program))
        for filename, text in (files or {}).items():
            (self.project_dir / filename).write_text(textwrap.dedent(text))

    def new_stack(self, stack: str) -> None:
        self.run("stack", "init", stack, "--secrets-provider", "passphrase")

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's outputs, secrets shown."""
        result = self.run("stack", "output", "--stack", stack, "--json", "--show-secrets")
        outputs: dict[str, Any] = json.loads(result.stdout)
        return outputs

    def state_file(self, project: str, stack: str) -> Path:
        """The file backend's checkpoint of a stack (project-scoped layout)."""
        return self.backend / ".pulumi" / "stacks" / project / f"{stack}.json"


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (found in /proc, taken before any is
    killed, so that none is orphaned away from the tree first)."""
    parents: dict[int, int] = {}
    for process in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            parents[int(process.name)] = int(stat_fields(int(process.name))[1])
    tree, grown = {pid}, True
    while grown:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def copy_project(destination: Path, source: Path = ROOT) -> None:
    """The program of `source` (a checkout: this one unless told) as a project on this
    checkout's venv, with an empty stacks/ folder."""
    destination.mkdir(parents=True)
    for name in PROGRAM_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, destination / name)
    project = yaml.safe_load((source / "Pulumi.yaml").read_text())
    project["runtime"]["options"]["virtualenv"] = str(VENV)
    (destination / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (destination / "stacks").mkdir()


GATEWAY: Final = GATEWAY_PODS_ADDRESS
"""Where the local cluster runs the gateway's pods (`tools.cluster.gateway_pods`)."""


def at_gateway(token: str, tenant: str, instance: str) -> tuple[int, str]:
    """(status, body) of a query with `token` at `tenant`'s metrics endpoint, through the
    gateway pods the local cluster runs, over TLS checked against the cluster's test CA."""
    endpoint = f"cortex.{tenant}.{instance}.example.com"
    context = ssl.create_default_context(cafile=str(local_cluster.state.PKI / "ca.crt"))
    connection = http.client.HTTPSConnection(*GATEWAY, context=context, timeout=30)
    connection.sock = context.wrap_socket(
        socket.create_connection(GATEWAY, timeout=30), server_hostname=endpoint
    )
    try:
        connection.request(
            "GET", "/api/v1/labels", headers={"Host": endpoint, "Authorization": f"Bearer {token}"}
        )
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def plural(kind: str) -> str:
    """The resource name of a kind in API paths (NetworkPolicy: networkpolicies)."""
    lowered = kind.lower()
    return f"{lowered[:-1]}ies" if lowered.endswith("y") else f"{lowered}s"


def object_path(manifest: Mapping[str, Any]) -> str:
    """The API path of `manifest` (namespaced or not), by its apiVersion and kind."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    metadata = manifest["metadata"]
    where = f"/namespaces/{metadata['namespace']}" if metadata.get("namespace") else ""
    return f"{base}{where}/{plural(kind)}/{metadata['name']}"


@dataclass
class RecordingBackend:
    """An HTTP server on 127.0.0.1 standing in for the metrics backend behind the gateway:
    it answers 200 and records (X-Scope-OrgID, path) of each request, so that a test can
    tell "forwarded as this tenant" from any other answer."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[RecordingBackend]:
        server = _QuietServer(("127.0.0.1", free_port()), _Recorder)
        recording = cls(f"http://127.0.0.1:{server.server_address[1]}")
        server.recording = recording  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield recording
        finally:
            server.shutdown()
            server.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-request (HAProxy's reload closing idle connections) is no
        failure of the stand-in; anything else is reported as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        recording: RecordingBackend = self.server.recording  # type: ignore[attr-defined]
        recording.requests.append((self.headers.get("X-Scope-OrgID", ""), self.path.split("?")[0]))
        body = b'{"status":"success","data":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def local_stack(
    instance: str,
    tenants: list[Any],
    *,
    cortex_url: str = "http://127.0.0.1:9009",
    loki_url: str = "http://127.0.0.1:3100",
) -> dict[str, Any]:
    """A stack the engine can run on the local cluster: `existing` mode with `dns: none`, a
    generic load balancer (that need not be waited for), the cluster's stand-in issuer,
    external backends, no telemetry and no Grafana: no AWS resource and no Helm chart (no
    chart repository is reachable). The local cluster
    enforces no NetworkPolicy, so the stack accepts that risk (keys an earlier release
    ignores)."""
    return {
        "opstrace:instanceName": instance,
        "opstrace:domain": "example.com",
        "opstrace:dns": "none",
        "opstrace:cluster": "existing",
        "opstrace:kubeconfig": str(local_cluster.KUBECONFIG),
        "opstrace:loadBalancer": "generic",
        # The local gateway pods serve once ready (no real load balancer registers them).
        "opstrace:gatewayMinReadySeconds": 5,
        "opstrace:certificateIssuer": local_cluster.TEST_ISSUER,
        "opstrace:cortexUrl": cortex_url,
        "opstrace:lokiUrl": loki_url,
        "opstrace:telemetry": False,
        "opstrace:grafana": False,
        "opstrace:networkPolicyRiskAccepted": True,
        "opstrace:tenants": tenants,
    }


def gateway_pods(api: kube_client.Api, namespace: str = "system-tenant") -> set[str]:
    """The UIDs of the gateway's live pods."""
    pods = api.list(
        f"/api/v1/namespaces/{namespace}/pods",
        label_selector="app.kubernetes.io/name=opstrace-gateway",
    )["items"]
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}
