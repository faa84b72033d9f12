"""The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok, their flags, and the order they start in.

etcd first (the API server's store), the API server once etcd is healthy (real
authentication: client certificates, anonymous requests refused, RBAC), then the
controller manager (Deployments get ReplicaSets and pods, namespaces are finalized,
garbage collection runs), the scheduler and kwok, which fakes the nodes' kubelets: it
makes the pods on its nodes Running and Ready at once.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any, Final

from tools.cluster import credentials
from tools.cluster.state import PKI, STATE, Ports, binary
from tools.cluster.supervisor import Supervisor

COMPONENTS: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
"""In the order they start (and the reverse of the order they stop)."""
POD_CIDR: Final = "10.244.0.1/16"


def start(ports: Ports, supervisor: Supervisor) -> None:
    """Start every component and wait until each is healthy; the components' kubeconfigs
    must be in STATE (`credentials.write_kubeconfig`)."""
    for name in COMPONENTS:
        binary(name)
    _start_etcd(ports, supervisor)
    _start_apiserver(ports, supervisor)
    _start_controllers(ports, supervisor)


def ready(port: int, path: str) -> bool:
    """Does the component on 127.0.0.1:`port` answer `path` (readyz, healthz) with ok?"""
    return str(credentials.client(port).request("GET", path)).strip() == "ok"


def _start_etcd(ports: Ports, supervisor: Supervisor) -> None:
    etcd_url = f"http://127.0.0.1:{ports.etcd}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    supervisor.start(
        "etcd",
        [
            binary("etcd"),
            f"--name={credentials.CLUSTER_NAME}",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={credentials.CLUSTER_NAME}={peer_url}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ],
    )

    def etcd_healthy() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", ports.etcd, timeout=5)
        try:
            conn.request("GET", "/health")
            health: Any = json.loads(conn.getresponse().read())
            return bool(health.get("health") == "true")
        finally:
            conn.close()

    supervisor.wait_for(etcd_healthy, f"etcd to be healthy on {etcd_url}", "etcd", timeout=60)


def _serving() -> list[str]:
    return [
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={PKI / 'serving.crt'}",
        f"--tls-private-key-file={PKI / 'serving.key'}",
    ]


def _start_apiserver(ports: Ports, supervisor: Supervisor) -> None:
    supervisor.start(
        "kube-apiserver",
        [
            binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
            f"--secure-port={ports.apiserver}",
            "--advertise-address=127.0.0.1",
            *_serving(),
            f"--client-ca-file={PKI / 'ca.crt'}",
            "--anonymous-auth=false",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            f"--service-cluster-ip-range={credentials.SERVICE_CIDR}",
            # The "kubernetes" Service cannot have a loopback endpoint: keep none.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={STATE / 'apiserver-certs'}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ],
    )
    supervisor.wait_for(
        lambda: ready(ports.apiserver, "/readyz"),
        f"kube-apiserver to be ready on https://127.0.0.1:{ports.apiserver}",
        "kube-apiserver",
    )


def _component_flags(user: str, port: int) -> list[str]:
    config = str(STATE / f"{user}.kubeconfig")
    return [
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        f"--secure-port={port}",
        *_serving(),
        "--leader-elect=false",
    ]


def _start_controllers(ports: Ports, supervisor: Supervisor) -> None:
    supervisor.start(
        "kube-controller-manager",
        [
            binary("kube-controller-manager"),
            *_component_flags("kube-controller-manager", ports.controller_manager),
            f"--root-ca-file={PKI / 'ca.crt'}",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            "--use-service-account-credentials=false",
            f"--cluster-name={credentials.CLUSTER_NAME}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )
    supervisor.start(
        "kube-scheduler",
        [
            binary("kube-scheduler"),
            *_component_flags("kube-scheduler", ports.scheduler),
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )
    # kwok reads ~/.kwok/kwok.yaml if present: give it an empty home so that its built-in
    # stages (nodes Ready, pods Running and Ready at once) apply.
    kwok_home = STATE / "kwok-home"
    kwok_home.mkdir()
    supervisor.start(
        "kwok",
        [
            binary("kwok"),
            f"--kubeconfig={STATE / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--node-port={ports.kwok}",
            f"--server-address=127.0.0.1:{ports.kwok}",
            "--node-lease-duration-seconds=40",
        ],
        env={**os.environ, "HOME": str(kwok_home)},
    )
    supervisor.wait_for(
        lambda: ready(ports.controller_manager, "/healthz"),
        f"kube-controller-manager to be healthy on 127.0.0.1:{ports.controller_manager}",
        "kube-controller-manager",
    )
    supervisor.wait_for(
        lambda: ready(ports.scheduler, "/healthz"),
        f"kube-scheduler to be healthy on 127.0.0.1:{ports.scheduler}",
        "kube-scheduler",
    )
