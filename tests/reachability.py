"""Which pod reaches which port, computed by np-guard's netpol-analyzer from manifests.

The analyzer (`bash engine/build.sh netpol` links it into .engine/bin; $OPSTRACE_NETPOL
names another, else `k8snetpolicy` on PATH) reads a folder of Kubernetes manifests
(namespaces, workloads, NetworkPolicies) and lists every allowed connection between
workloads and to and from addresses outside the cluster. `cluster_of` lays out what the
program registered (its NetworkPolicies, namespaces and gateway Deployment) beside
stand-ins for the pods the charts run, which carry the labels and ports those charts
give them; `connections` runs the analyzer over it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from devtools.chart_check import plain
from opstrace import charts, grafana, names
from opstrace.config.schema import InstanceConfig
from opstrace.config.sizes import SINGLE_BINARY
from opstrace.gateway import manifests as gateway_manifests
from opstrace.network_policies import GRAFANA_PODS, NAMESPACE_NAME_LABEL
from tools.cluster import state as cluster_state
from tools.offline import ProgramRun

ANALYZER_ENV: Final = "OPSTRACE_NETPOL"
ANALYZER: Final = (
    os.environ.get(ANALYZER_ENV)
    or shutil.which("k8snetpolicy")
    or shutil.which("k8snetpolicy", path=str(cluster_state.BIN))
)
NEEDS_ANALYZER: Final = pytest.mark.skipif(
    ANALYZER is None,
    reason=f"netpol-analyzer is not built (`bash engine/build.sh netpol`, or set {ANALYZER_ENV})",
)
OUTSIDE: Final = "0.0.0.0-255.255.255.255"
"""How the analyzer names every address outside the cluster (the NLB, the API server)."""
ALL: Final = "All Connections"
NONE: Final = "No Connections"
TCP_PORTS: Final = range(1, 65536)


@dataclass(frozen=True)
class Workload:
    """A workload as the analyzer names it (`namespace/name[Kind]`), with its pod labels."""

    namespace: str
    name: str
    kind: str
    labels: Mapping[str, str]
    ports: tuple[int, ...] = ()

    @property
    def peer(self) -> str:
        return f"{self.namespace}/{self.name}[{self.kind}]"

    def manifest(self) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "main", "image": "stand-in:1"}
        if self.ports:
            container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in self.ports]
        return {
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "selector": {"matchLabels": dict(self.labels)},
                "template": {
                    "metadata": {"labels": dict(self.labels)},
                    "spec": {"containers": [container]},
                },
            },
        }


def _chart_pod(chart: charts.Chart, app: str, component: str, ports: tuple[int, ...]) -> Workload:
    """A pod of a Grafana chart: `<release>-<component>` (Loki's single binary: the
    release), labelled as the chart's helpers label it (app, release, component)."""
    kind = "StatefulSet" if component in STATEFUL else "Deployment"
    return Workload(
        chart.namespace,
        f"{chart.release}-{component}" if component else chart.release,
        kind,
        {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": chart.release,
            "app.kubernetes.io/component": component or "single-binary",
        },
        ports,
    )


GRPC_PORT: Final = 9095
MEMBERLIST_PORT: Final = 7946
STATEFUL: Final = (
    "ingester",
    "store-gateway",
    "compactor",
    "alertmanager",
    "",
    "write",
    "backend",
)
MIMIR_COMPONENTS: Final = (
    "distributor",
    "ingester",
    "querier",
    "query-frontend",
    "query-scheduler",
    "store-gateway",
    "compactor",
    "ruler",
    "alertmanager",
)


def chart_stand_ins(config: InstanceConfig) -> list[Workload]:
    """The pods the instance's charts run, by what the configuration installs."""
    platform = config.platform
    backend_ports = (GRPC_PORT, MEMBERLIST_PORT)
    pods: list[Workload] = []
    if not config.cortex_url:
        pods += [
            _chart_pod(charts.MIMIR, "mimir", c, (charts.MIMIR_HTTP_PORT, *backend_ports))
            for c in MIMIR_COMPONENTS
        ]
        if platform.size.metrics.zone_aware:
            pods.append(
                Workload(
                    charts.MIMIR.namespace,
                    f"{charts.MIMIR.release}-rollout-operator",
                    "Deployment",
                    charts.MIMIR_ROLLOUT_OPERATOR_LABELS,
                    (charts.MIMIR_ROLLOUT_OPERATOR_WEBHOOK_PORT, 8001),
                )
            )
    if not config.loki_url:
        targets = (
            ("",) if platform.size.logs.mode == SINGLE_BINARY else ("write", "read", "backend")
        )
        pods += [
            _chart_pod(charts.LOKI, "loki", t, (charts.LOKI_HTTP_PORT, *backend_ports))
            for t in targets
        ]
    if platform.telemetry:
        pods.append(
            Workload(
                charts.ALLOY.namespace,
                charts.ALLOY.release,
                "DaemonSet",
                {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": "alloy"},
                (12345,),
            )
        )
    return pods


ROGUE_NAMESPACE: Final = "rogue"
"""A namespace that is no tenant's but labelled as the first user tenant's namespace is
(anyone who may label a namespace may do so), with a pod labelled as Grafana."""


def grafana_pod(namespace: str) -> Workload:
    """A pod of a Grafana release named as a tenant's is (`opstrace.grafana`), labelled as
    the chart labels its pods."""
    return Workload(
        namespace, grafana.RELEASE, "Deployment", GRAFANA_PODS, (grafana.CONTAINER_PORT,)
    )


def bystanders(config: InstanceConfig) -> list[Workload]:
    """Pods that are none of the instance's own: in each tenant's namespace one app and
    the tenant's Grafana (whatever its `grafana` switch says: the policies go by labels);
    one in the first user tenant's carrying the gateway's labels (anyone who may run a pod
    may label it so); in `default`, one pod and one carrying Grafana's labels (outside any
    tenant's namespace); one carrying Grafana's labels in `ROGUE_NAMESPACE`; and CoreDNS
    in `kube-system` (anything else the cluster runs)."""
    pods = [
        Workload(names.tenant_namespace(t.name), "app", "Deployment", {"app": t.name}, (8080,))
        for t in config.tenants
    ]
    pods += [grafana_pod(names.tenant_namespace(t.name)) for t in config.tenants]
    impostor_namespace = names.tenant_namespace(config.user_tenants[0].name)
    gateway_labels = gateway_manifests.labels(config.instance_name)
    pods.append(Workload(impostor_namespace, "impostor", "Deployment", gateway_labels, (8080,)))
    pods += [
        Workload("default", "anything", "Deployment", {"app": "anything"}, (8080,)),
        grafana_pod("default"),
        grafana_pod(ROGUE_NAMESPACE),
        Workload("kube-system", "coredns", "Deployment", {"k8s-app": "kube-dns"}, (53,)),
    ]
    return pods


def gateway_of(run: ProgramRun) -> Workload:
    """The gateway as the program registers its Deployment."""
    (deployment,) = [r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment"]
    inputs = plain(deployment.inputs)
    template = inputs["spec"]["template"]
    pod = template["spec"]
    containers = (*pod.get("initContainers", ()), *pod["containers"])  # the sidecar's first
    ports = tuple(p["containerPort"] for c in containers for p in c.get("ports", ()))
    return Workload(
        inputs["metadata"]["namespace"],
        deployment.state["metadata"]["name"],
        "Deployment",
        template["metadata"]["labels"],
        ports,
    )


def policies_of(run: ProgramRun) -> list[dict[str, Any]]:
    """Every NetworkPolicy the program registers, as the provider would apply it."""
    kind = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **plain(r.inputs)}
        for r in run.resources
        if r.type == kind
    ]


def namespace_labels_of(run: ProgramRun) -> dict[str, dict[str, str]]:
    """Name -> labels of every Namespace the program registers (the tenants')."""
    found = {}
    for resource in run.resources:
        if resource.type == "kubernetes:core/v1:Namespace":
            metadata = plain(resource.inputs)["metadata"]
            found[metadata["name"]] = dict(metadata.get("labels") or {})
    return found


def namespace(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A namespace as the API server holds it: with `labels` (the program's), and the
    name label it adds to every one."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**(labels or {}), NAMESPACE_NAME_LABEL: name}},
    }


@dataclass(frozen=True)
class Cluster:
    """A cluster as the analyzer sees it: workloads and the manifests laid out."""

    workloads: tuple[Workload, ...]
    manifests: tuple[dict[str, Any], ...]

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump_all(self.manifests, sort_keys=False)
        (directory / "cluster.yaml").write_text(text)
        return directory


def cluster_of(run: ProgramRun, config: InstanceConfig, *, with_policies: bool = True) -> Cluster:
    """The program's NetworkPolicies, gateway and namespaces (with their labels), with
    stand-ins for every other pod."""
    workloads = (gateway_of(run), *chart_stand_ins(config), *bystanders(config))
    namespaces = sorted({w.namespace for w in workloads})
    labels = namespace_labels_of(run)
    impersonated = labels.get(names.tenant_namespace(config.user_tenants[0].name), {})
    labels[ROGUE_NAMESPACE] = {**impersonated, "opstrace.io/tenant": ROGUE_NAMESPACE}
    manifests = [
        *(namespace(n, labels.get(n)) for n in namespaces),
        *(w.manifest() for w in workloads),
        *(policies_of(run) if with_policies else ()),
    ]
    return Cluster(tuple(workloads), tuple(manifests))


@dataclass(frozen=True)
class Connection:
    """One allowed connection as the analyzer lists it."""

    src: str
    dst: str
    conn: str

    def allows(self, port: int, protocol: str = "TCP") -> bool:
        return port in allowed_ports(self.conn, protocol)


def allowed_ports(conn: str, protocol: str = "TCP") -> set[int]:
    """The ports of `protocol` an analyzer connection string allows: "All Connections",
    "No Connections", or comma-separated items, each "<PROTOCOL> <port or a-b>" or a
    further port or range of the protocol before it ("SCTP 1-65535,TCP 80,443-445")."""
    if conn == ALL:
        return set(TCP_PORTS)
    if conn == NONE:
        return set()
    ports: set[int] = set()
    current = None
    for item in conn.split(","):
        words = item.split()
        if len(words) == 2:
            current, item = words
        elif len(words) != 1 or current is None:
            raise ValueError(f"not an analyzer connection string: {conn!r}")
        low, _, high = item.partition("-")
        if current == protocol:
            ports.update(range(int(low), int(high or low) + 1))
    return ports


def connections(cluster: Cluster, directory: Path) -> list[Connection]:
    """Every connection the analyzer allows in `cluster` (laid out in `directory`)."""
    assert ANALYZER is not None
    result = subprocess.run(
        [ANALYZER, "list", "--dirpath", str(cluster.write(directory)), "-o", "json", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [Connection(**entry) for entry in json.loads(result.stdout)]


def reachable_ports(found: Iterable[Connection], src: str, dst: str) -> set[int]:
    """The TCP ports `src` reaches on `dst`."""
    return {p for c in found if (c.src, c.dst) == (src, dst) for p in allowed_ports(c.conn)}


def sources(found: Sequence[Connection], dst: str, port: int) -> set[str]:
    """Every peer that reaches `dst` on TCP `port`."""
    return {c.src for c in found if c.dst == dst and c.allows(port)}
