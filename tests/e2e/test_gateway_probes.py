"""The pod's probes, its ports and the NLB's health check, asked of a real HAProxy.

Each port a manifest names (a container port by name, the Service's target ports, the
NLB health check's port) is resolved to the listener of the rendered configuration that
binds it in the pod, and that listener of a running gateway is asked what the kubelet,
the NLB or a client would ask it. A probe that reached the TLS or the plain-HTTP
listener, or a path the health listener does not serve, would keep every pod unready.
"""

from __future__ import annotations

from typing import Any

import pytest

from opstrace.config import sizes
from opstrace.gateway import manifests
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.haproxy import PLAIN_HTTP_BODY, PLAIN_HTTP_STATUS
from tests.e2e.harness import (
    DOMAIN,
    INSTANCE,
    NEEDS_HAPROXY,
    TENANTS,
    Gateway,
    host,
    peer_certificate,
    plain_request,
    san_names,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

LISTENERS = ("listen", "internal_listen", "http_listen", "health_listen")
"""The settings that bind a port, each one listener of `haproxy.cfg`."""
POD = gateway_upstreams.gateway_settings(
    INSTANCE,
    DOMAIN,
    TENANTS,
    gateway_upstreams.upstreams(sizes.SIZES["small"]),
    grafana_tenants=TENANTS,
)
"""The pod's own settings: its listeners at their defaults (the in-cluster one with them,
as with any tenant's Grafana)."""
NLB = "service.beta.kubernetes.io/aws-load-balancer-"


def _port(address: str | None) -> int:
    assert address is not None
    return int(address.rpartition(":")[2])


def container() -> dict[str, Any]:
    """The HAProxy container of the gateway Deployment."""
    manifest = manifests.deployment(
        "system-tenant", INSTANCE, ["gw-config", "gw-keys"], "gw-sync", 2, 10
    )
    containers = manifest["spec"]["template"]["spec"]["containers"]
    (haproxy,) = [c for c in containers if c["name"] == "haproxy"]
    return dict(haproxy)


def container_port(port: int | str) -> int:
    """A container port as a probe or a Service names it (by name or number)."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container()["ports"] if p["name"] == port]
    return int(number)


def served_port(gateway: Gateway, pod_port: int) -> int:
    """Where the running gateway serves what the pod serves on `pod_port`: the same
    listener, bound to a loopback port."""
    (listener,) = [name for name in LISTENERS if _port(getattr(POD, name)) == pod_port]
    return _port(getattr(gateway.settings, listener))


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_the_probe_gets_200_from_the_port_and_path_it_names_without_credentials(
    gateway: Gateway, probe: str
) -> None:
    action = container()[probe]["httpGet"]
    port = served_port(gateway, container_port(action["port"]))
    # The kubelet sends no Host the gateway knows and no token.
    assert plain_request(port, "10.0.0.1", action["path"]).status == 200


def test_the_nlb_health_check_gets_200_from_the_port_and_path_it_names(gateway: Gateway) -> None:
    annotations = manifests.service("system-tenant", INSTANCE, "aws")["metadata"]["annotations"]
    assert annotations[NLB + "healthcheck-protocol"] == "http"
    port = int(annotations[NLB + "healthcheck-port"])
    assert port in [p["containerPort"] for p in container()["ports"]]
    response = plain_request(
        served_port(gateway, port), "10.0.0.1", annotations[NLB + "healthcheck-path"]
    )
    assert response.status == 200


def service_target(port: int) -> int:
    """The container port the Service sends its `port` to."""
    ports = manifests.service("system-tenant", INSTANCE, "aws")["spec"]["ports"]
    (target,) = [p["targetPort"] for p in ports if p["port"] == port]
    return container_port(target)


def test_the_services_https_port_reaches_the_tls_listener(gateway: Gateway) -> None:
    endpoint = host("cortex", "prod")
    certificate = peer_certificate(served_port(gateway, service_target(443)), endpoint)
    assert endpoint in san_names(certificate)


def test_the_internal_services_port_reaches_the_internal_tls_listener(gateway: Gateway) -> None:
    (port,) = manifests.internal_service("system-tenant", INSTANCE)["spec"]["ports"]
    served = served_port(gateway, container_port(port["targetPort"]))
    assert served == _port(gateway.settings.internal_listen)
    endpoint = host("loki", "staging")
    assert endpoint in san_names(peer_certificate(served, endpoint))


def test_the_services_http_port_reaches_the_plain_http_refusal(gateway: Gateway) -> None:
    port = served_port(gateway, service_target(80))
    response = plain_request(port, host("cortex", "prod"), "/api/v1/query")
    assert (response.status, response.body) == (PLAIN_HTTP_STATUS, PLAIN_HTTP_BODY)


def test_every_container_port_is_the_port_of_one_listener() -> None:
    declared = sorted(p["containerPort"] for p in container()["ports"])
    assert declared == sorted(_port(getattr(POD, name)) for name in LISTENERS)
