"""The NetworkPolicy rules: which policies each layout gets. What they allow is proven by
reachability in test_isolation.py."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from opstrace import charts, network_policies
from opstrace.config import sizes
from opstrace.gateway import manifests as gateway_manifests
from opstrace.network_policies import Layout, instance_policies, own_backends
from sidecar import contract

SMALL, PRODUCTION = sizes.SIZES["small"], sizes.SIZES["production"]


BASE = Layout(
    instance="acme",
    gateway_namespace="system-tenant",
    tenant_namespaces=("prod-tenant", "dev-tenant"),
    backends=own_backends(SMALL, metrics=True, logs=True),
    telemetry_namespace=charts.ALLOY.namespace,
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
        ("prod-tenant", "opstrace-deny-ingress"),
        ("system-tenant", "opstrace-deny-ingress"),
        ("system-tenant", "opstrace-gateway-listeners"),
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
    assert declared == {*network_policies.GATEWAY_PORTS, contract.STATUS_PORT}


def test_the_sidecars_status_port_is_not_among_the_ports_the_policies_open() -> None:
    assert contract.STATUS_PORT not in network_policies.GATEWAY_PORTS


def test_the_load_balancers_health_checks_reach_a_gateway_listener() -> None:
    health = gateway_manifests.NLB_ANNOTATIONS[
        "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"
    ]
    assert int(health) in network_policies.GATEWAY_PORTS
