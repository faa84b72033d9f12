"""The control plane, by kwokctl: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, from the binaries `make engine` built, with its fake nodes.

`kwokctl create cluster --runtime binary` (sigs.k8s.io/kwok, the module the engine pins)
starts the components in order with the flags `config` gives it, and `kwokctl scale node`
registers the nodes from this module's template (one per zone). What it does not do, this
module does (docs/architecture.md, "Decisions"):
- ports: kwokctl picks its own without a lock; these come from `tools.ports` (reserved);
- certificates: the project's CA (`credentials.seed`), so that the cert-manager stand-in
  issues from it; kwokctl makes a CA only where none is;
- health: kwokctl's exit code says nothing about whether the API server came up, so the
  caller waits on the cluster itself (`lifecycle`), naming what did not come up with the
  tail of its log;
- isolation from the operator's setup: its work directory, kubectl's cache and no
  kubeconfig of the operator's touched; no download (every binary is a local path, and the
  proxy is a dead address, so an attempt would fail at once).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

import yaml

from tools.cluster.state import (
    BIN,
    CLUSTER_DIR,
    CLUSTER_NAME,
    KWOK_WORKDIR,
    STATE,
    ClusterError,
    Ports,
    binary,
)
from tools.cluster.supervisor import START_TIMEOUT, wait_until

CONFIG: Final = STATE / "kwokctl.yaml"
COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KWOK: Final = "kwok-controller"
"""kwok's component name in kwokctl (its binary is `kwok`)."""
NODE: Final = "kwok-node"
ZONES: Final = ("local-a", "local-b")
"""One fake node per zone: zone spreading and zone-aware settings have zones to spread over."""
SERVICE_CIDR: Final = "10.96.0.0/16"
KUBERNETES_SERVICE_ADDRESS: Final = str(ipaddress.ip_network(SERVICE_CIDR)[1])
"""The `kubernetes` Service's address (the service network's first): in the serving
certificate, for clients in pods."""
POD_CIDR: Final = "10.244.0.1/16"
KUBERNETES_VERSION: Final = "1.34.4"
"""What engine/kube builds; kwokctl only reports it (the binaries are used as they are)."""
COMMAND_TIMEOUT: Final = 300.0
DEAD_PROXY: Final = "http://127.0.0.1:9"
"""Where a download would go: nothing listens there, so one fails at once."""

NODE_TEMPLATE: Final = """\
kind: Node
apiVersion: v1
metadata:
  name: {{ Name }}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: {{ Name }}
    type: kwok
    topology.kubernetes.io/region: local
    topology.kubernetes.io/zone: {{ index .zones (mod Index (len .zones)) }}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
"""


def _args(**flags: str) -> list[dict[str, Any]]:
    return [{"key": key.replace("_", "-"), "value": value} for key, value in flags.items()]


def config(ports: Ports) -> list[dict[str, Any]]:
    """kwokctl's configuration: the engine's binaries, our ports, 127.0.0.1 only, TLS with
    client certificates, RBAC and admission on, and the node template."""
    options = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "securePort": True,
        "kubeAuthorization": True,
        # Off, kwokctl passes --admission-control= and so turns every admission plugin off.
        "kubeAdmission": True,
        "kubeVersion": KUBERNETES_VERSION,
        "kubeApiserverPort": ports.apiserver,
        "etcdPort": ports.etcd,
        "etcdPeerPort": ports.etcd_peer,
        "kubeControllerManagerPort": ports.controller_manager,
        "kubeSchedulerPort": ports.scheduler,
        "kwokControllerPort": ports.kwok,
        "etcdBinary": binary("etcd"),
        "kubeApiserverBinary": binary("kube-apiserver"),
        "kubeControllerManagerBinary": binary("kube-controller-manager"),
        "kubeSchedulerBinary": binary("kube-scheduler"),
        "kubectlBinary": binary("kubectl"),
        "kwokControllerBinary": binary("kwok"),
        "kubeApiserverCertSANs": [KUBERNETES_SERVICE_ADDRESS],
        "etcdQuotaBackendSize": "2Gi",
        "nodeLeaseDurationSeconds": 40,
        # Its default, 5, multiplies the node lease and node-monitor periods by 5.
        "heartbeatFactor": 1,
        "quietPull": True,
    }
    patches = [
        {"name": "etcd", "extraArgs": _args(unsafe_no_fsync="true", log_level="warn")},
        {
            "name": "kube-apiserver",
            "extraArgs": _args(
                advertise_address="127.0.0.1",
                anonymous_auth="false",
                service_cluster_ip_range=SERVICE_CIDR,
                # The "kubernetes" Service cannot have a loopback endpoint: keep none.
                endpoint_reconciler_type="none",
                enable_priority_and_fairness="false",
                profiling="false",
            ),
        },
        {
            "name": "kube-controller-manager",
            "extraArgs": _args(
                leader_elect="false",
                cluster_name=CLUSTER_NAME,
                kube_api_qps="200",
                kube_api_burst="400",
            ),
        },
        {
            "name": "kube-scheduler",
            "extraArgs": _args(leader_elect="false", kube_api_qps="200", kube_api_burst="400"),
        },
        {
            "name": KWOK,
            "extraArgs": [
                {"key": "node-ip", "value": "127.0.0.1", "override": True},
                {"key": "cidr", "value": POD_CIDR},
            ],
        },
    ]
    return [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": patches,
        },
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlResource",
            "metadata": {"name": "node"},
            "parameters": {"zones": list(ZONES)},
            "template": NODE_TEMPLATE,
        },
    ]


def kwokctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One kwokctl command for this cluster, in its own work directory, offline."""
    env = {
        **os.environ,
        "KWOK_WORKDIR": str(KWOK_WORKDIR),
        "KUBECACHEDIR": str(STATE / "kube-cache"),
        # kwokctl looks kubectl up on PATH before its kubectlBinary: the engine's first.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **{name: DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "",
        "no_proxy": "",
    }
    command = [binary("kwokctl"), "-c", str(CONFIG), "--name", CLUSTER_NAME, *args]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ClusterError(
            f"kwokctl {' '.join(args)}: no answer in {COMMAND_TIMEOUT:.0f}s"
        ) from error
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ClusterError(
            f"kwokctl {' '.join(args)}: exited {done.returncode}: {' / '.join(said)}"
        )
    return done


def create(ports: Ports) -> None:
    """Write the configuration and create the cluster (the CA must be seeded first); the
    caller waits until it is healthy: kwokctl's exit code does not say."""
    CONFIG.write_text(yaml.safe_dump_all(config(ports), sort_keys=False))
    # Not the operator's ~/.kube/config: kwokctl would add a context there and select it.
    kwokctl("create", "cluster", "--kubeconfig", "", "--timeout", "2m", "--wait", "2m")
    kwokctl("scale", "node", NODE, "--replicas", str(len(ZONES)))


def node_names() -> list[str]:
    """The nodes `create` registers (kwokctl numbers them from 0, six digits)."""
    return [f"{NODE}-{index:06d}" for index in range(len(ZONES))]


def delete() -> None:
    """Stop every component and delete the cluster's files (a kubeconfig path that does not
    exist: kwokctl refuses an empty one, and must not edit the operator's)."""
    if CLUSTER_DIR.exists():
        kwokctl("delete", "cluster", "--kubeconfig", str(STATE / "no-kubeconfig"), check=False)


def alive() -> dict[str, bool]:
    """Each component -> whether its process runs, by the pid kwokctl recorded and the
    binary in that process's command line (kwokctl links each binary under the component's
    name: a reused pid is not taken for it)."""
    return {component: _runs(component) for component in (*COMPONENTS, KWOK)}


def _runs(component: str) -> bool:
    try:
        pid = int((CLUSTER_DIR / "pids" / f"{component}.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return False
    return Path(command).name == component


def log_tail(component: str, lines: int = 25) -> str:
    path = CLUSTER_DIR / "logs" / f"{component}.log"
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(text)


def wait_for(
    condition: Callable[[], bool], what: str, component: str, timeout: float = START_TIMEOUT
) -> None:
    """Poll `condition` until it holds; fail naming `what`, with `component`'s log tail,
    when its process exits or after `timeout` seconds."""
    wait_until(
        condition,
        what,
        component,
        alive=lambda: alive().get(component, False),
        log_tail=partial(log_tail, component),
        timeout=timeout,
    )
