"""Isolation holds: under the program's NetworkPolicies, only the gateway reaches a backend.

Not that policies exist, but what they allow, computed by np-guard's netpol-analyzer
(`tests.reachability`) from what the program registers (its NetworkPolicies, namespaces
and gateway Deployment) beside stand-ins for every pod the charts run and for pods that
are none of the instance's. For each shipped layout: the dev stack (eks, small), the
same at production sizing (Loki scalable, Mimir's rollout operator), and an existing
cluster.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from opstrace import charts, grafana, names, network_policies
from opstrace.config.schema import InstanceConfig
from opstrace.config.stack import config_of_stack
from opstrace.gateway.manifests import INTERNAL_PORT
from opstrace.gateway.settings import UPSTREAM_FIELDS
from sidecar import contract
from tests.conftest import OPERATOR_DOMAIN, dev_config
from tests.reachability import (
    NEEDS_ANALYZER,
    OUTSIDE,
    ROGUE_NAMESPACE,
    Cluster,
    Connection,
    Workload,
    allowed_ports,
    cluster_of,
    connections,
    reachable_ports,
    sources,
)
from tools.offline import run_program
from tools.stack_files import PROJECT_DIR, cli_config, stack_config

DATA_PATH: Final = ("cortex_push_url", "cortex_query_url", "loki_push_url", "loki_query_url")
"""The upstreams of tenants' data: no pod but the gateway's may reach them."""


def existing_stack() -> dict[str, Any]:
    config = stack_config("example-existing")
    config["opstrace:domain"] = OPERATOR_DOMAIN
    return config


STACKS = {
    "dev": lambda: dev_config(),
    "production": lambda: dev_config(sizing="production", apiAllowedCidrs="203.0.113.0/24"),
    "existing": existing_stack,
}


@dataclass(frozen=True)
class Analysed:
    """A stack's cluster as the analyzer sees it, and every connection it allows."""

    config: InstanceConfig
    cluster: Cluster
    found: list[Connection]

    @property
    def gateway(self) -> Workload:
        return self.cluster.workloads[0]

    def workload(self, namespace: str, name: str) -> Workload:
        (found,) = [w for w in self.cluster.workloads if (w.namespace, w.name) == (namespace, name)]
        return found

    def targets(self, fields: tuple[str, ...] = DATA_PATH) -> list[tuple[Workload, int]]:
        """Each backend pod the gateway forwards to (by default, pushes and queries), and
        the port."""
        urls = {getattr(self.config.gateway, field) for field in fields}
        found = []
        for url in sorted(urls):
            parts = urlsplit(url)
            assert parts.hostname is not None
            assert parts.port is not None
            service, namespace = parts.hostname.split(".")[:2]
            found.append((self.workload(namespace, service), parts.port))
        return found

    def in_namespace(self, namespace: str) -> set[str]:
        return {w.peer for w in self.cluster.workloads if w.namespace == namespace}

    def grafanas(self) -> set[str]:
        """The tenants' Grafana pods (not the one in `default` wearing their labels)."""
        return {
            self.workload(names.tenant_namespace(t.name), grafana.RELEASE).peer
            for t in self.config.tenants
        }


def analyse(stack: str, directory: Path, *, with_policies: bool = True) -> Analysed:
    settings = STACKS[stack]()
    config = config_of_stack(cli_config(settings), PROJECT_DIR)
    cluster = cluster_of(run_program(settings, stack=stack), config, with_policies=with_policies)
    return Analysed(config, cluster, connections(cluster, directory))


@pytest.fixture(scope="module", params=list(STACKS))
def analysed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Analysed:
    return analyse(request.param, tmp_path_factory.mktemp(request.param))


@NEEDS_ANALYZER
def test_no_namespace_but_the_gateways_reaches_a_backends_push_or_query_port(
    analysed: Analysed,
) -> None:
    targets = analysed.targets()
    own = [t for t in targets if t[0].namespace in network_policies_namespaces(analysed)]
    assert own or analysed.config.cortex_url
    for pod, port in own:
        neighbours = analysed.in_namespace(pod.namespace) - {pod.peer}
        assert sources(analysed.found, pod.peer, port) == {analysed.gateway.peer, *neighbours}


@NEEDS_ANALYZER
def test_the_gateway_reaches_each_backend_it_forwards_to_on_that_port_only(
    analysed: Analysed,
) -> None:
    """Rulers and Alertmanagers included: every upstream of the gateway."""
    for pod, port in analysed.targets(UPSTREAM_FIELDS):
        assert reachable_ports(analysed.found, analysed.gateway.peer, pod.peer) == {port}, pod


@NEEDS_ANALYZER
def test_lokis_pods_reach_mimirs_alertmanager_on_its_port_and_nothing_else_of_mimirs(
    analysed: Analysed,
) -> None:
    """Loki's ruler sends its tenants' alerts there (which Loki pod runs it depends on the
    mode); a push or query port stays closed to them. With external backends, no such
    opening at all."""
    if analysed.config.cortex_url or analysed.config.loki_url:
        opened = [m for m in analysed.cluster.manifests if m["kind"] == "NetworkPolicy"]
        assert network_policies.ALERTS_FROM_RULER not in {m["metadata"]["name"] for m in opened}
        return
    alertmanager = analysed.workload(charts.MIMIR.namespace, f"{charts.MIMIR.release}-alertmanager")
    for loki in analysed.in_namespace(charts.LOKI.namespace):
        for mimir in analysed.cluster.workloads:
            if mimir.namespace != charts.MIMIR.namespace:
                continue
            if mimir == alertmanager:
                expected = {charts.MIMIR_HTTP_PORT}
            elif mimir.labels == charts.MIMIR_ROLLOUT_OPERATOR_LABELS:
                expected = {charts.MIMIR_ROLLOUT_OPERATOR_WEBHOOK_PORT}  # open to all
            else:
                expected = set()
            assert reachable_ports(analysed.found, loki, mimir.peer) == expected, (loki, mimir)


@NEEDS_ANALYZER
def test_from_outside_the_cluster_only_the_gateways_listeners_and_webhooks_are_reachable(
    analysed: Analysed,
) -> None:
    for pod in analysed.cluster.workloads:
        if pod == analysed.gateway:
            expected = set(network_policies.GATEWAY_PORTS)
        elif pod.labels == charts.MIMIR_ROLLOUT_OPERATOR_LABELS:
            expected = {charts.MIMIR_ROLLOUT_OPERATOR_WEBHOOK_PORT}
        elif pod.namespace in ("default", "kube-system", ROGUE_NAMESPACE):
            continue  # not the instance's: no policy of ours selects them
        else:
            expected = set()
        assert reachable_ports(analysed.found, OUTSIDE, pod.peer) == expected, pod.peer


@NEEDS_ANALYZER
def test_pods_reach_the_gateway_on_its_listeners_only(analysed: Analysed) -> None:
    """A tenant's Grafana, on its internal listener only (its egress goes nowhere else)."""
    gateway = analysed.gateway.peer
    collector = collector_pods(analysed)
    grafanas = analysed.grafanas()
    for source in {c.src for c in analysed.found if c.dst == gateway}:
        expected = set(network_policies.GATEWAY_PORTS)
        if source in collector:
            expected.add(contract.STATUS_PORT)  # the usage counters
        if source in grafanas:
            expected = {INTERNAL_PORT}
        assert reachable_ports(analysed.found, source, gateway) == expected, source


@NEEDS_ANALYZER
def test_only_the_collector_reaches_the_sync_sidecars_status_port(analysed: Analysed) -> None:
    """It scrapes the usage counters there; the kubelet's probes need no policy."""
    assert contract.STATUS_PORT in analysed.gateway.ports
    reaching = sources(analysed.found, analysed.gateway.peer, contract.STATUS_PORT)
    assert reaching == collector_pods(analysed) != set()


def collector_pods(analysed: Analysed) -> set[str]:
    return {
        pod.peer for pod in analysed.cluster.workloads if pod.namespace == charts.ALLOY.namespace
    }


@NEEDS_ANALYZER
def test_nothing_reaches_a_tenants_namespace_or_the_collector(analysed: Analysed) -> None:
    """But the gateway, its tenant's Grafana (next test)."""
    closed = [
        *(n for n in network_policies_namespaces(analysed) if n.endswith("-tenant")),
        charts.ALLOY.namespace,
    ]
    grafanas = analysed.grafanas()
    for pod in analysed.cluster.workloads:
        if pod.namespace in closed and pod != analysed.gateway and pod.peer not in grafanas:
            assert {c.src for c in analysed.found if c.dst == pod.peer} == set(), pod.peer


@NEEDS_ANALYZER
def test_only_the_gateway_reaches_a_tenants_grafana_and_on_its_port_only(
    analysed: Analysed,
) -> None:
    for pod in analysed.grafanas():
        assert {c.src for c in analysed.found if c.dst == pod} == {analysed.gateway.peer}, pod
        assert reachable_ports(analysed.found, analysed.gateway.peer, pod) == {
            grafana.CONTAINER_PORT
        }


@NEEDS_ANALYZER
def test_only_the_tenants_grafana_pods_reach_the_gateways_internal_listener(
    analysed: Analysed,
) -> None:
    """Not a pod of a tenant's namespace that is not labelled as Grafana (the gateway's
    impostor among them), not a pod labelled as Grafana outside the tenants' namespaces
    (even in one labelled as a tenant's), not from outside the cluster."""
    assert INTERNAL_PORT in analysed.gateway.ports
    for namespace in ("default", ROGUE_NAMESPACE):
        impostor = analysed.workload(namespace, grafana.RELEASE)
        assert impostor.labels == network_policies.GRAFANA_PODS
    (rogue,) = [
        m
        for m in analysed.cluster.manifests
        if m["kind"] == "Namespace" and m["metadata"]["name"] == ROGUE_NAMESPACE
    ]
    assert network_policies.TENANT_LABEL in rogue["metadata"]["labels"]
    assert network_policies.INSTANCE_LABEL in rogue["metadata"]["labels"]
    reaching = sources(analysed.found, analysed.gateway.peer, INTERNAL_PORT)
    assert reaching == analysed.grafanas()
    assert len(reaching) == len(analysed.config.tenants)


@NEEDS_ANALYZER
def test_a_tenants_grafana_reaches_dns_and_the_internal_listener_and_nothing_else_inside(
    analysed: Analysed,
) -> None:
    """Not Mimir or Loki, not another tenant's pods or Grafana, not the gateway's other
    ports (its listeners, the sidecar's usage counters), not the collector."""
    dns = analysed.workload(network_policies.DNS_NAMESPACE, "coredns").peer
    for source in analysed.grafanas():
        for pod in analysed.cluster.workloads:
            if pod.peer == source:
                continue
            tcp = reachable_ports(analysed.found, source, pod.peer)
            udp = {
                p
                for c in analysed.found
                if (c.src, c.dst) == (source, pod.peer)
                for p in allowed_ports(c.conn, "UDP")
            }
            expected: tuple[set[int], set[int]]
            if pod == analysed.gateway:
                expected = ({INTERNAL_PORT}, set())
            elif pod.peer == dns:
                expected = ({network_policies.DNS_PORT}, {network_policies.DNS_PORT})
            else:
                expected = (set(), set())
            assert (tcp, udp) == expected, (source, pod.peer)


@NEEDS_ANALYZER
def test_outside_the_cluster_a_tenants_grafana_reaches_https_on_public_addresses_only(
    analysed: Analysed,
) -> None:
    """The identity provider's endpoints, wherever they are; not the VPC's addresses (the
    Kubernetes API's private endpoint and ClusterIP, nodes, load balancers) nor the cloud's
    metadata address. The analyzer cannot tell which pod has which address: that an ipBlock
    reaches no pod is the enforcers' (and the pods' private addresses') doing."""
    not_public = [ipaddress.IPv4Network(block) for block in network_policies.NOT_PUBLIC]
    assert any(METADATA_ADDRESS in block for block in not_public)
    for source in analysed.grafanas():
        reached = 0
        for connection in (c for c in analysed.found if c.src == source and "[" not in c.dst):
            low, high = (ipaddress.IPv4Address(a) for a in connection.dst.split("-"))
            for block in not_public:
                assert high < block.network_address or low > block.broadcast_address, connection
            assert allowed_ports(connection.conn) == {network_policies.HTTPS_PORT}, connection
            assert allowed_ports(connection.conn, "UDP") == set(), connection
            reached += int(high) - int(low) + 1
        # Every public address, so wherever the identity provider is.
        assert reached == 2**32 - sum(b.num_addresses for b in not_public), source


METADATA_ADDRESS: Final = ipaddress.IPv4Address("169.254.169.254")


@NEEDS_ANALYZER
def test_a_backends_pods_reach_each_other_on_every_port(analysed: Analysed) -> None:
    for backend in (charts.MIMIR, charts.LOKI):
        pods = sorted(analysed.in_namespace(backend.namespace))
        for source in pods:
            for target in set(pods) - {source}:
                assert reachable_ports(analysed.found, source, target) == set(range(1, 65536)), (
                    source,
                    target,
                )


@NEEDS_ANALYZER
def test_without_the_policies_any_pod_reaches_the_backends(tmp_path: Path) -> None:
    """The analysis can tell: without the policies, what they stop is reachable."""
    open_cluster = analyse("dev", tmp_path, with_policies=False)
    anywhere = open_cluster.workload("default", "anything").peer
    for pod, port in open_cluster.targets():
        assert anywhere in sources(open_cluster.found, pod.peer, port)
    assert anywhere in sources(open_cluster.found, open_cluster.gateway.peer, INTERNAL_PORT)
    querier = open_cluster.workload(charts.MIMIR.namespace, f"{charts.MIMIR.release}-querier")
    for peer in open_cluster.grafanas():
        assert anywhere in sources(open_cluster.found, peer, grafana.CONTAINER_PORT)
        assert charts.MIMIR_HTTP_PORT in reachable_ports(open_cluster.found, peer, querier.peer)


def network_policies_namespaces(analysed: Analysed) -> set[str]:
    """The namespaces the program puts NetworkPolicies in."""
    return {
        m["metadata"]["namespace"]
        for m in analysed.cluster.manifests
        if m["kind"] == "NetworkPolicy"
    }


# The analyzer's connection strings --------------------------------------------------


@pytest.mark.parametrize(
    ("conn", "ports"),
    [
        ("All Connections", set(range(1, 65536))),
        ("No Connections", set()),
        ("TCP 8080", {8080}),
        ("TCP 8080,8443", {8080, 8443}),
        ("TCP 8080-8082,8443", {8080, 8081, 8082, 8443}),
        ("SCTP 1-65535,TCP 443,UDP 53", {443}),
        ("UDP 53", set()),
    ],
)
def test_an_analyzer_connection_string_gives_its_tcp_ports(conn: str, ports: set[int]) -> None:
    assert allowed_ports(conn) == ports


@pytest.mark.parametrize("conn", ["8080", "TCP", "TCP 80 443", ""])
def test_an_unknown_connection_string_is_refused_not_read_as_nothing(conn: str) -> None:
    with pytest.raises(ValueError, match="not an analyzer connection string"):
        allowed_ports(conn)
