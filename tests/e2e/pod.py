"""A gateway pod on the local cluster, its containers running for real on this machine.

`running_pod` makes, in a namespace of its own on the local cluster (`make cluster-up`),
what the Gateway component makes for the pods — the sidecar's ServiceAccount, Role and
RoleBinding, its code ConfigMap, the two gateway ConfigMaps, each tenant's labelled
certificate Secret — and one Pod of the component's own pod template, then runs that
pod's `gateway-sync` sidecar and HAProxy as processes (`tools.cluster.gateway_pods`,
the local cluster's stand-in for a kubelet). The test changes the objects through the
API server, as `pulumi up` does, and sees what the pod serves.

The listeners are free loopback ports (they are in the rendered files), and the
sidecar's status port too, so that nothing collides with the pods the local cluster
runs for the engine tests. The pod carries another name label than the component's,
so that the cluster's own stand-in leaves it to the test.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509

from opstrace.gateway import files as gateway_files
from opstrace.gateway import manifests
from opstrace.gateway.settings import HAPROXY_CONFIG, GatewaySettings
from sidecar import contract, kube_client
from tests.e2e.harness import (
    HAPROXY,
    INSTANCE,
    TENANTS,
    Upstreams,
    base_settings,
    gateway_ca,
    loads_in,
    on_loopback,
    plain_request,
    reload_done,
    wait_until,
)
from tools.cluster import admin_api, read_ports
from tools.cluster.gateway_pods import LocalPod
from tools.ports import free_port

CONFIG_MAPS: Final = tuple(f"gateway-{role}" for role in gateway_files.CONFIG_MAP_ROLES)
CODE: Final = "gateway-sync"
POD: Final = "gateway-0"
LABEL: Final = {"app.kubernetes.io/name": "opstrace-gateway-e2e"}
FIELD_MANAGER: Final = "e2e"


@dataclass
class GatewayPod:
    """One gateway pod and the objects it reads, in namespace `namespace`."""

    api: kube_client.Api
    namespace: str
    settings: GatewaySettings
    local: LocalPod | None = None
    files: dict[str, str] = field(default_factory=dict)
    checksum: str = ""

    @property
    def port(self) -> int:
        return int(self.settings.listen.rpartition(":")[2])

    @property
    def health_port(self) -> int:
        assert self.settings.health_listen is not None
        return int(self.settings.health_listen.rpartition(":")[2])

    def publish(
        self, trusted: Mapping[str, str], bindings: Mapping[str, str] | None = None
    ) -> None:
        """The gateway's ConfigMaps as `pulumi up` updates them (the sidecar loads the set
        once every shard is the one the configuration names)."""
        self.publish_parts(
            gateway_files.render_gateway_parts(self.settings, trusted, bindings or {})
        )

    def publish_parts(self, parts: gateway_files.GatewayFiles) -> None:
        """These files in the gateway's ConfigMaps: the key shards', then the
        configuration's."""
        self.files, self.checksum = parts.whole(), parts.checksum()
        split = gateway_files.config_map_data(parts)
        for name, role in reversed(
            list(zip(CONFIG_MAPS, gateway_files.CONFIG_MAP_ROLES, strict=True))
        ):
            self.apply_config_map(name, split[role])

    def apply_config_map(self, name: str, data: Mapping[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": dict(data),
        }
        path = f"/api/v1/namespaces/{self.namespace}/configmaps/{name}"
        self.api.apply(path, body, field_manager=FIELD_MANAGER, force=True)

    def issue(self, tenant: str) -> x509.Certificate:
        """A (new) certificate for `tenant`'s endpoints in its Secret, as cert-manager
        issues one; the certificate."""
        chain, key = gateway_ca().issue(tenant)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": f"{tenant}-endpoints-tls",
                "namespace": self.namespace,
                "labels": {contract.CERTIFICATE_LABEL: INSTANCE, contract.TENANT_LABEL: tenant},
            },
            "data": {
                "tls.crt": base64.b64encode(chain.encode()).decode(),
                "tls.key": base64.b64encode(key.encode()).decode(),
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{tenant}-endpoints-tls"
        self.api.apply(path, secret, field_manager=FIELD_MANAGER, force=True)
        return x509.load_pem_x509_certificate(chain.encode())

    def lease(self) -> dict[str, str]:
        """The annotations of the pod's status Lease ({} before the first report)."""
        found = self.api.get(
            f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/"
            f"{contract.LEASE_PREFIX}{POD}"
        )
        return dict(((found or {}).get("metadata") or {}).get("annotations") or {})

    def serves(self, checksum: str) -> bool:
        return self.lease().get(contract.SERVED_ANNOTATION) == checksum

    def log_text(self) -> str:
        assert self.local is not None
        path = self.local.supervisor.log("haproxy")
        return path.read_text(errors="replace") if path.exists() else ""

    def sync_log(self) -> str:
        assert self.local is not None
        path = self.local.supervisor.log("gateway-sync")
        return path.read_text(errors="replace") if path.exists() else ""

    def loads(self) -> int:
        return loads_in(self.log_text())

    def wait_reloaded(self, loads_before: int, timeout: float) -> None:
        wait_until(
            lambda: reload_done(self.log_text(), self.files[HAPROXY_CONFIG], loads_before),
            "the reload: new worker loaded, old ones not listening",
            timeout,
        )

    def healthy(self) -> bool:
        try:
            return plain_request(self.health_port, "probe", "/healthz").status == 200
        except OSError:
            return False


def pod_manifest(namespace: str, status_port: int) -> dict[str, Any]:
    """One pod of the component's own template, its status port on loopback."""
    deployment = manifests.deployment(namespace, INSTANCE, CONFIG_MAPS, CODE, 1, 120)
    template = deployment["spec"]["template"]
    spec = template["spec"]
    (sidecar,) = spec["initContainers"]
    sidecar["args"] = [
        f"--listen=127.0.0.1:{status_port}" if arg.startswith("--listen=") else arg
        for arg in sidecar["args"]
    ]
    sidecar["ports"] = [{**port, "containerPort": status_port} for port in sidecar["ports"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": namespace,
            "labels": dict(LABEL),
            "annotations": template["metadata"]["annotations"],
        },
        "spec": spec,
    }


@contextmanager
def running_pod(
    upstreams: Upstreams,
    trusted: Mapping[str, str],
    *,
    bindings: Mapping[str, str] | None = None,
    tenants: tuple[str, ...] = TENANTS,
    haproxy: str | None = HAPROXY,
) -> Iterator[GatewayPod]:
    """The objects, the pod, its processes; all gone on exit."""
    api = admin_api()
    namespace = f"e2e-gateway-{secrets.token_hex(4)}"
    settings = on_loopback(base_settings(upstreams, tenants))
    pod = GatewayPod(api, namespace, settings)
    api.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        ns = f"/api/v1/namespaces/{namespace}"
        api.create(f"{ns}/serviceaccounts", manifests.service_account(namespace, INSTANCE))
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        api.create(f"{rbac}/roles", manifests.role(namespace, INSTANCE, CONFIG_MAPS))
        api.create(f"{rbac}/rolebindings", manifests.role_binding(namespace, INSTANCE))
        api.create(
            f"{ns}/configmaps",
            {"metadata": {"name": CODE, "namespace": namespace}, "data": manifests.sync_code()},
        )
        for tenant in (*tenants, "system"):
            pod.issue(tenant)
        pod.publish(trusted, bindings)
        created = api.create(f"{ns}/pods", pod_manifest(namespace, free_port()))
        pod.local = LocalPod(api, created, read_ports().apiserver, haproxy)
        pod.local.start()
        wait_until(pod.healthy, "the pod's HAProxy to answer its probe", 180)
        yield pod
    finally:
        if pod.local is not None:
            pod.local.stop()
        api.delete(f"/api/v1/namespaces/{namespace}")
