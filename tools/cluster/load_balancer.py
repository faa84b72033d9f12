"""The load balancer stand-in: what a cloud's load balancer controller does for a Service.

On EKS the AWS Load Balancer Controller makes an NLB for every `type: LoadBalancer`
Service and writes its DNS name into the Service's status; pulumi-kubernetes waits for
that address before it calls the Service created. Here every such Service gets
`status.loadBalancer.ingress[0].hostname = <name>-<namespace>.lb.local` (nothing listens
there), so the await completes as it does on a real cluster.
"""

from __future__ import annotations

from typing import Any, Final

from sidecar import kube_client

LB_DOMAIN: Final = "lb.local"
SERVICES: Final = "/api/v1/services"


def lb_hostname(name: str, namespace: str) -> str:
    """The address the stand-in gives the Service `name` in `namespace`."""
    return f"{name}-{namespace}.{LB_DOMAIN}"


def assign(api: kube_client.Api, service: dict[str, Any]) -> str | None:
    """Give a LoadBalancer Service without an address its hostname; says what it did."""
    if service.get("spec", {}).get("type") != "LoadBalancer":
        return None
    if service.get("status", {}).get("loadBalancer", {}).get("ingress"):
        return None
    meta = service["metadata"]
    hostname = lb_hostname(meta["name"], meta["namespace"])
    patch = {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}
    path = f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}/status"
    try:
        api.merge_patch(path, patch)
    except kube_client.NotFound:
        return None  # deleted meanwhile
    return f"service {meta['namespace']}/{meta['name']} -> {hostname}"
