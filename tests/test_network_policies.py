"""The NetworkPolicy rules: which policies each layout gets. What they allow is proven by
reachability in test_isolation.py."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from opstrace import charts, grafana, network_policies
from opstrace.config import sizes
from opstrace.config.platform import PRIVATE_NETWORKS
from opstrace.gateway import manifests as gateway_manifests
from opstrace.gateway.settings import DEFAULT_INTERNAL_LISTEN
from opstrace.network_policies import Layout, instance_policies, own_backends
from sidecar import contract

SMALL, PRODUCTION = sizes.SIZES["small"], sizes.SIZES["production"]


BASE = Layout(
    instance="acme",
    gateway_namespace="system-tenant",
    tenant_namespaces=("prod-tenant", "dev-tenant"),
    backends=own_backends(SMALL, metrics=True, logs=True),
    telemetry_namespace=charts.ALLOY.namespace,
    grafana_namespaces=("system-tenant", "prod-tenant", "dev-tenant"),
)


def layout(**changes: Any) -> Layout:
    return dataclasses.replace(BASE, **changes)


def placed(policies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies)


def test_every_namespace_of_the_instance_denies_ingress_that_no_policy_allows() -> None:
    denied = {
        ns for ns, name in placed(instance_policies(layout())) if name == "opstrace-deny-ingress"
    }
    assert denied == set(layout().namespaces)


def test_each_policy_has_a_name_of_its_own_in_its_namespace() -> None:
    counts = Counter(
        placed(
            instance_policies(layout(backends=own_backends(PRODUCTION, metrics=True, logs=True)))
        )
    )
    assert [place for place, count in counts.items() if count > 1] == []


def test_external_backends_get_no_policy_and_no_telemetry_no_collector_policy() -> None:
    policies = instance_policies(layout(backends=(), telemetry_namespace=None))
    assert placed(policies) == [
        ("dev-tenant", "opstrace-deny-ingress"),
        ("dev-tenant", "opstrace-grafana-egress"),
        ("dev-tenant", "opstrace-grafana-from-gateway"),
        ("prod-tenant", "opstrace-deny-ingress"),
        ("prod-tenant", "opstrace-grafana-egress"),
        ("prod-tenant", "opstrace-grafana-from-gateway"),
        ("system-tenant", "opstrace-deny-ingress"),
        ("system-tenant", "opstrace-gateway-listeners"),
        ("system-tenant", "opstrace-grafana-egress"),
        ("system-tenant", "opstrace-grafana-from-gateway"),
        ("system-tenant", "opstrace-internal-listener"),
    ]


def test_only_mimir_with_its_rollout_operator_opens_a_webhook_port() -> None:
    def webhooks(size: sizes.Size) -> list[tuple[str, str]]:
        policies = instance_policies(layout(backends=own_backends(size, metrics=True, logs=True)))
        return [place for place in placed(policies) if place[1] == network_policies.WEBHOOKS]

    assert (webhooks(SMALL), webhooks(PRODUCTION)) == (
        [],
        [(charts.MIMIR.namespace, "opstrace-webhooks")],
    )


def test_mimirs_alertmanager_accepts_lokis_ruler_only_where_the_instance_runs_both() -> None:
    def alert_paths(metrics: bool, logs: bool) -> list[tuple[str, str]]:
        policies = instance_policies(
            layout(backends=own_backends(SMALL, metrics=metrics, logs=logs))
        )
        return [p for p in placed(policies) if p[1] == network_policies.ALERTS_FROM_RULER]

    assert alert_paths(True, True) == [(charts.MIMIR.namespace, "opstrace-alerts-from-ruler")]
    assert alert_paths(True, False) == alert_paths(False, True) == []


def test_the_gateway_pods_declare_their_listeners_and_the_sidecars_status_port_only() -> None:
    deployment = gateway_manifests.deployment("system-tenant", "acme", ["cfg"], "code", 2, 10)
    pod = deployment["spec"]["template"]["spec"]
    declared = {
        port["containerPort"]
        for container in (*pod["initContainers"], *pod["containers"])
        for port in container.get("ports", ())
    }
    assert declared == {
        *network_policies.GATEWAY_PORTS,
        contract.STATUS_PORT,
        gateway_manifests.INTERNAL_PORT,
    }


def test_the_sidecars_status_port_is_not_among_the_ports_the_policies_open() -> None:
    assert contract.STATUS_PORT not in network_policies.GATEWAY_PORTS


def test_the_internal_listener_is_not_among_the_ports_open_to_anywhere() -> None:
    assert gateway_manifests.INTERNAL_PORT not in network_policies.GATEWAY_PORTS
    assert int(DEFAULT_INTERNAL_LISTEN.rpartition(":")[2]) == gateway_manifests.INTERNAL_PORT


def by_name(policies: list[dict[str, Any]], namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        p
        for p in policies
        if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, name)
    ]
    return found


def test_every_tenants_namespace_admits_its_grafana_from_the_gateway_on_its_port_only() -> None:
    policies = instance_policies(layout())
    for namespace in ("system-tenant", "prod-tenant", "dev-tenant"):
        spec = by_name(policies, namespace, network_policies.GRAFANA_FROM_GATEWAY)["spec"]
        assert spec["podSelector"] == {"matchLabels": network_policies.GRAFANA_PODS}
        assert spec["policyTypes"] == ["Ingress"]
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": grafana.CONTAINER_PORT}]
        assert rule["from"] == [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "system-tenant"}
                },
                "podSelector": {"matchLabels": gateway_manifests.labels("acme")},
            }
        ]


def test_a_grafanas_egress_is_dns_the_internal_listener_and_https_to_public_addresses() -> None:
    spec = by_name(instance_policies(layout()), "prod-tenant", network_policies.GRAFANA_EGRESS)[
        "spec"
    ]
    assert spec["podSelector"] == {"matchLabels": network_policies.GRAFANA_PODS}
    assert spec["policyTypes"] == ["Egress"]
    assert "ingress" not in spec
    dns, gateway, public = spec["egress"]
    assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    assert gateway["ports"] == [{"protocol": "TCP", "port": gateway_manifests.INTERNAL_PORT}]
    assert gateway["to"][0]["podSelector"] == {"matchLabels": gateway_manifests.labels("acme")}
    (block,) = public["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {*map(str, PRIVATE_NETWORKS), "169.254.0.0/16"} <= set(block["ipBlock"]["except"])
    assert public["ports"] == [{"protocol": "TCP", "port": 443}]


def test_the_internal_listener_admits_grafana_pods_of_the_instances_tenants_only() -> None:
    spec = by_name(
        instance_policies(layout()), "system-tenant", network_policies.INTERNAL_LISTENER
    )["spec"]
    assert spec["podSelector"] == {"matchLabels": gateway_manifests.labels("acme")}
    ((peer,),) = [rule["from"] for rule in spec["ingress"]]
    assert [rule["ports"] for rule in spec["ingress"]] == [
        [{"protocol": "TCP", "port": gateway_manifests.INTERNAL_PORT}]
    ]
    assert peer["podSelector"] == {"matchLabels": network_policies.GRAFANA_PODS}
    selector = peer["namespaceSelector"]
    assert selector["matchLabels"] == {
        "app.kubernetes.io/part-of": "opstrace",
        "opstrace.io/instance": "acme",
    }
    assert {"key": "opstrace.io/tenant", "operator": "Exists"} in selector["matchExpressions"]
    assert {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["dev-tenant", "prod-tenant", "system-tenant"],
    } in selector["matchExpressions"]


def test_grafanas_labels_are_the_charts_for_its_release() -> None:
    assert network_policies.GRAFANA_PODS == {
        "app.kubernetes.io/name": "grafana",
        "app.kubernetes.io/instance": grafana.RELEASE,
    }


def test_the_load_balancers_health_checks_reach_a_gateway_listener() -> None:
    health = gateway_manifests.NLB_ANNOTATIONS[
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"
    ]
    assert int(health) in network_policies.GATEWAY_PORTS


def test_the_grafanas_egress_names_the_internal_services_selector_and_target_port() -> None:
    """The AWS network policy controller opens a ClusterIP to a pod's egress only for a
    Service whose selector the rule's pod selector matches, on the port its target port
    is (see `gateway_manifests.internal_service`)."""
    spec = by_name(instance_policies(layout()), "dev-tenant", network_policies.GRAFANA_EGRESS)[
        "spec"
    ]
    (to_gateway,) = [
        rule
        for rule in spec["egress"]
        if rule["to"][0].get("podSelector") == {"matchLabels": gateway_manifests.labels("acme")}
    ]
    service = gateway_manifests.internal_service("system-tenant", "acme")["spec"]
    assert to_gateway["to"][0]["podSelector"] == {"matchLabels": service["selector"]}
    assert [p["port"] for p in to_gateway["ports"]] == [p["targetPort"] for p in service["ports"]]


def test_without_a_grafana_no_grafana_policy_and_no_door_for_one_is_made() -> None:
    names = {name for _, name in placed(instance_policies(layout(grafana_namespaces=())))}
    assert not names & {
        "opstrace-internal-listener",
        "opstrace-grafana-from-gateway",
        "opstrace-grafana-egress",
    }


def test_only_the_namespaces_of_tenants_with_a_grafana_get_its_policies() -> None:
    chosen = layout(grafana_namespaces=("prod-tenant",))
    grafana_policies = [
        (namespace, name)
        for namespace, name in placed(instance_policies(chosen))
        if name.startswith("opstrace-grafana-")
    ]
    assert grafana_policies == [
        ("prod-tenant", "opstrace-grafana-egress"),
        ("prod-tenant", "opstrace-grafana-from-gateway"),
    ]
    (door,) = [
        p
        for p in instance_policies(chosen)
        if p["metadata"]["name"] == "opstrace-internal-listener"
    ]
    (peer,) = door["spec"]["ingress"][0]["from"]
    (named,) = [e for e in peer["namespaceSelector"]["matchExpressions"] if e["operator"] == "In"]
    assert named["values"] == ["prod-tenant"]
