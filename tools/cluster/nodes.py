"""The cluster's nodes: fake ones that kwok keeps Ready, one per zone.

Each node is labelled with a `topology.kubernetes.io/zone`, so that zone spreading and
zone-aware settings have zones to spread over; kwok manages only nodes annotated
`kwok.x-k8s.io/node: fake`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from components import kube_api

NODES: Final = (("kwok-node-0", "local-a"), ("kwok-node-1", "local-b"))
"""(name, zone) of each node."""


def fake_node(name: str, zone: str) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "local",
            },
        },
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    }


def create_nodes(api: kube_api.Api) -> None:
    """Register every node (a node that exists already is left as it is)."""
    for name, zone in NODES:
        with contextlib.suppress(kube_api.Conflict):
            api.create("/api/v1/nodes", fake_node(name, zone))


def node_ready(api: kube_api.Api, name: str) -> bool:
    node = api.get(f"/api/v1/nodes/{name}")
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
