"""The real Pulumi engine for tests: the CLI and plugins that `make engine` built.

`Workspace` runs `pulumi` from `.engine/bin` in a project folder with everything
isolated in temporary folders: PULUMI_HOME, a file backend, passphrase secrets, no
plugin downloads, no update check, no prompts. The engine finds its language host and
the dynamic provider shim beside the `pulumi` binary (as a release bundles them), and
the Kubernetes provider in its plugin cache, installed there with `pulumi plugin install
--file` as an operator's CLI downloads it: nothing from PATH (the CLI would warn "using
pulumi-resource-kubernetes from $PATH" on every run). A program's Python is the
checkout's `.venv` (Pulumi.yaml `runtime.options.virtualenv`).

`require_tools` skips a test when a tool is missing, or fails it when
OPSTRACE_REQUIRE_TOOLS=1 (CI), so that CI never passes by skipping.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import os
import shutil
import socket
import ssl
import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from components import kube_api
from tools import cluster as local_cluster
from tools.cluster import state as cluster_state

ROOT: Final = Path(__file__).resolve().parent.parent.parent
ENGINE_BIN: Final = cluster_state.BIN
VENV: Final = ROOT / ".venv"
PASSPHRASE: Final = "engine-tests-passphrase"
COMMAND_TIMEOUT: Final = 900.0
PROGRAM_FILES: Final = ("__main__.py", "components")
"""What of the checkout a copy of the project needs to run the program."""
KUBERNETES_PROVIDER_VERSION: Final = importlib.metadata.version("pulumi-kubernetes")
"""The provider release the program's SDK asks the engine for (engine/build.sh builds it)."""

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
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "AWS_", "KUBECONFIG", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "PATH": f"{ENGINE_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_EXPERIMENTAL": "false",
            "NO_COLOR": "1",
        }
    )
    return env


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
        self.run(
            "plugin",
            "install",
            "resource",
            "kubernetes",
            f"v{KUBERNETES_PROVIDER_VERSION}",
            "--file",
            str(ENGINE_BIN / "pulumi-resource-kubernetes"),
        )

    def run(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi <args> --non-interactive`; with `check`, fail showing its output."""
        result = subprocess.run(
            [str(ENGINE_BIN / "pulumi"), *args, "--non-interactive"],
            cwd=self.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
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


GATEWAY: Final = ("127.0.0.1", 8443)
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


def local_stack(
    instance: str,
    tenants: list[Any],
    *,
    cortex_url: str = "http://127.0.0.1:9009",
    loki_url: str = "http://127.0.0.1:3100",
) -> dict[str, Any]:
    """A stack the engine can run on the local cluster: `existing` mode with `dns: none`, a
    generic load balancer, the cluster's stand-in issuer, external backends, no telemetry:
    no AWS resource and no Helm chart. The local cluster enforces no NetworkPolicy, so the
    stack accepts that risk (a key an earlier release ignores)."""
    return {
        "opstrace:instanceName": instance,
        "opstrace:domain": "example.com",
        "opstrace:dns": "none",
        "opstrace:cluster": "existing",
        "opstrace:kubeconfig": str(local_cluster.KUBECONFIG),
        "opstrace:loadBalancer": "generic",
        "opstrace:certificateIssuer": local_cluster.TEST_ISSUER,
        "opstrace:cortexUrl": cortex_url,
        "opstrace:lokiUrl": loki_url,
        "opstrace:telemetry": False,
        "opstrace:networkPolicyRiskAccepted": True,
        "opstrace:tenants": tenants,
    }


def gateway_pods(api: kube_api.Api, namespace: str = "system-tenant") -> set[str]:
    """The UIDs of the gateway's live pods."""
    pods = api.list(
        f"/api/v1/namespaces/{namespace}/pods",
        label_selector="app.kubernetes.io/name=opstrace-gateway",
    )["items"]
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}
