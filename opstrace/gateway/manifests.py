"""The gateway's Kubernetes objects as plain manifests (the component registers these).

Pure, no Pulumi: tests validate exactly the dicts the component registers.

How a change reaches the pods without a restart: nothing of the trust store, the
tenants or their certificates is in the pod template. The `gateway-sync` sidecar (a
native sidecar: it starts, and has the files written, before HAProxy) watches the two
gateway ConfigMaps and the tenants' certificate Secrets through the API server, writes
each whole file set as a new generation and asks HAProxy's master, through its CLI
socket, to reload (`sidecar.sync`). So adding, removing or revoking rolls no
pod; only a new image, a new sidecar program or a new replica count changes the
template, and then readiness gates, `minReadySeconds` and a draining `preStop` keep
every request served. No process namespace is shared: the sidecar reaches HAProxy's
master through the socket only, and HAProxy has no credential for the API server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from opstrace.gateway import sources
from opstrace.gateway.haproxy import HARD_STOP_SECONDS
from opstrace.gateway.settings import (
    DEFAULT_HEALTH_LISTEN,
    DEFAULT_HTTP_LISTEN,
    DEFAULT_IMAGE,
    DEFAULT_INTERNAL_LISTEN,
    DEFAULT_LISTEN,
    DEFAULT_SYNC_IMAGE,
    DEFAULT_USAGE_LOG,
    HAPROXY_CONFIG,
    HEALTH_PATH,
)
from sidecar import contract

Manifest = dict[str, Any]

TLS_PORT: Final = int(DEFAULT_LISTEN.rpartition(":")[2])
PLAIN_PORT: Final = int(DEFAULT_HTTP_LISTEN.rpartition(":")[2])
HEALTH_PORT: Final = int(DEFAULT_HEALTH_LISTEN.rpartition(":")[2])
INTERNAL_PORT: Final = int(DEFAULT_INTERNAL_LISTEN.rpartition(":")[2])
"""The in-cluster listener: only the tenants' Grafana pods reach it (a NetworkPolicy,
`network_policies.INTERNAL_LISTENER`), through `internal_service`, never the load
balancer."""
INTERNAL_SERVICE_PORT: Final = 443
"""Where `internal_service` takes the Grafana pods' queries: the data API's own port, so
that its `https://cortex.<tenant>...` URLs stay as they are (the hosts resolve to the
Service's ClusterIP in those pods, `hostAliases`)."""
RUN_AS_USER: Final = 99
"""The `haproxy` user of the stock image; numeric so that runAsNonRoot can be checked."""

DRAIN_SECONDS: Final = 40
"""How long a stopping pod keeps serving before HAProxy is told to stop: the NLB stops
sending new connections to a deregistering target within its deregistration delay (30 s,
set below). Then the container runtime sends the image's STOPSIGNAL (SIGUSR1, a soft stop:
in-flight requests finish, for at most `hard-stop-after`)."""
DEREGISTRATION_DELAY_SECONDS: Final = 30
MIN_READY_SECONDS: Final = {"aws": 10, "generic": 120}
"""How long a new pod must be ready before the rollout goes on, unless the stack says
(`gatewayMinReadySeconds`): with the AWS controller's readiness gate a pod is ready only
once the NLB sends to it; without one, wait out a typical load balancer's registration."""
MAX_MIN_READY_SECONDS: Final = 600


def min_ready_seconds_problem(seconds: int) -> str | None:
    """Why a new gateway pod cannot be made to wait `seconds` (0: the load balancer's)."""
    if 0 <= seconds <= MAX_MIN_READY_SECONDS:
        return None
    return (
        f"{seconds} is not from 1 to {MAX_MIN_READY_SECONDS} seconds (or 0, the load "
        "balancer's default)"
    )


NLB_ANNOTATIONS: Final = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(HEALTH_PORT),
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": HEALTH_PATH,
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
        f"deregistration_delay.timeout_seconds={DEREGISTRATION_DELAY_SECONDS},"
        "deregistration_delay.connection_termination.enabled=true,"
        "preserve_client_ip.enabled=true"
    ),
}
"""An internet-facing NLB passing TCP to pod IPs (TLS ends in HAProxy, so HTTP/2 and
SNI work end to end); the controller deregisters a stopping pod before it stops.

Client IP preservation (off by default for IP targets over TCP, per the ELB guide,
edit-target-group-attributes.html#client-ip-preservation) makes the pods see each client's
own address: the access log's `client` and the tenants' allowlists need it. The pods
still accept the NLB's traffic: the controller (v2.6 and later) gives the NLB a security
group and lets it in by reference (pkg/service/model_build_target_group.go,
buildTargetGroupBindingNetworking), which "ensures that your targets accept traffic from
your Network Load Balancer even if you enable client IP preservation" (ELB guide,
load-balancer-security-groups.html). Without an NLB security group (older controllers),
the controller opens the targets to the source ranges instead (the same file's
buildTargetGroupBindingNetworkingLegacy). Loopback (a target that is its own client) is
no concern: the NLB is internet-facing and the instance's collector reaches it from its
NAT gateways' public addresses."""


def labels(instance: str) -> dict[str, str]:
    """Labels on every gateway object; the selector of its pods."""
    return {
        "app.kubernetes.io/name": "opstrace-gateway",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": "data-api-gateway",
        "app.kubernetes.io/managed-by": "pulumi",
    }


SERVICE_ACCOUNT: Final = "opstrace-gateway"
"""The sidecar's identity; HAProxy's container gets no token."""
CODE_DIR: Final = "/opt/opstrace"
TOKEN_SECONDS: Final = 3600
"""The sidecar's projected token's lifetime; the kubelet renews it, the client re-reads it."""
CODE_ANNOTATION: Final = "opstrace.io/sync-code"
"""On the pod template: the checksum of the sidecar's code, so that a new program rolls
the pods (a running sidecar does not re-read its code)."""
SIDECAR_PACKAGE: Final = "sidecar"
"""The sidecar's program: this repository's package of that name, shipped whole (standard
library only; a test checks that it imports nothing else)."""


def sync_code() -> dict[str, str]:
    """ConfigMap key -> content of the sidecar's program (keys cannot hold '/', so `--`
    stands for it; the volume's `items` put the files back in place)."""
    package = Path(__file__).resolve().parent.parent.parent / SIDECAR_PACKAGE
    return {
        _code_key(f"{SIDECAR_PACKAGE}/{path.name}"): path.read_text(encoding="utf-8")
        for path in sorted(package.glob("*.py"))
    }


def _code_key(path: str) -> str:
    return path.replace("/", "--")


def code_path(key: str) -> str:
    return key.replace("--", "/")


def code_checksum(code: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key, content in sorted(code.items()):
        digest.update(f"{len(key)}:{key}{len(content)}:{content}".encode())
    return digest.hexdigest()


def service_account(namespace: str, instance: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels(instance)},
        "automountServiceAccountToken": False,
    }


def role(namespace: str, instance: str, config_map_names: Sequence[str]) -> Manifest:
    """Read-only: its two ConfigMaps by name, Secrets of its namespace (it selects the
    certificates by label; no other Secret lives there), and its pods' status Leases."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels(instance)},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": sorted(config_map_names),
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "patch"],
            },
        ],
    }


def role_binding(namespace: str, instance: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels(instance)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": SERVICE_ACCOUNT,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
    }


_HARDENED: Final[Manifest] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
"""Every container's securityContext."""

_FILES_MOUNT: Final = {"name": "files", "mountPath": contract.FILES_DIR}
_RUN_MOUNT: Final = {"name": "run", "mountPath": contract.RUN_DIR}
_TMP_MOUNT: Final = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 (the pod's own emptyDir)


def _sidecar(instance: str, config_map_names: Sequence[str], sync_image: str) -> Manifest:
    """The `gateway-sync` native sidecar: writes the file sets, reloads HAProxy."""
    return {
        "name": "gateway-sync",
        "image": sync_image,
        # A native sidecar: started (and its startup probe passed: a whole file set
        # written) before HAProxy, running as long as the pod.
        "restartPolicy": "Always",
        "command": ["python3", "-m", "sidecar.sync"],
        "args": [
            "--namespace=$(POD_NAMESPACE)",
            "--pod=$(POD_NAME)",
            "--pod-uid=$(POD_UID)",
            f"--config-maps={','.join(config_map_names)}",
            f"--certificates={contract.CERTIFICATE_LABEL}={instance}",
            f"--files={contract.FILES_DIR}",
            f"--master-socket={contract.MASTER_SOCKET}",
            f"--listen=0.0.0.0:{contract.STATUS_PORT}",
            f"--usage-log={DEFAULT_USAGE_LOG}",
            f"--service-account={contract.SERVICE_ACCOUNT_DIR!s}",
        ],
        "env": [
            *(
                {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
                for name, path in (
                    ("POD_NAMESPACE", "metadata.namespace"),
                    ("POD_NAME", "metadata.name"),
                    ("POD_UID", "metadata.uid"),
                )
            ),
            {"name": "PYTHONPATH", "value": CODE_DIR},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "ports": [{"name": "sync", "containerPort": contract.STATUS_PORT, "protocol": "TCP"}],
        "startupProbe": {
            "httpGet": {"path": "/ready", "port": "sync"},
            "periodSeconds": 1,
            # A new instance's certificates may still be on their way: wait for them.
            "failureThreshold": 900,
        },
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "sync"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "sync"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": dict(_HARDENED),
        "volumeMounts": [
            _FILES_MOUNT,
            _RUN_MOUNT,
            _TMP_MOUNT,
            {"name": "code", "mountPath": CODE_DIR, "readOnly": True},
            {"name": "api-token", "mountPath": str(contract.SERVICE_ACCOUNT_DIR), "readOnly": True},
        ],
    }


HAPROXY_CONTAINER: Final = "haproxy"
"""The gateway pod's HAProxy container: its logs (the access log) carry this name."""


def _haproxy(image: str) -> Manifest:
    """HAProxy in master-worker mode on the files the sidecar made current."""
    haproxy_probe = {"httpGet": {"path": HEALTH_PATH, "port": "health"}}
    return {
        "name": HAPROXY_CONTAINER,
        "image": image,
        # -W: master-worker (reloads, clean stops), -db: foreground, -S: the master CLI
        # the sidecar reloads through, -C: the generation of files the sidecar made current.
        "command": [
            "haproxy",
            "-W",
            "-db",
            "-S",
            f"{contract.MASTER_SOCKET},mode,600",
            "-C",
            f"{contract.FILES_DIR}/{contract.CURRENT}",
            "-f",
            HAPROXY_CONFIG,
        ],
        "ports": [
            {"name": "https", "containerPort": TLS_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": PLAIN_PORT, "protocol": "TCP"},
            {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "internal", "containerPort": INTERNAL_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {**haproxy_probe, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**haproxy_probe, "periodSeconds": 10, "failureThreshold": 3},
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "resources": {
            "requests": {"cpu": "250m", "memory": "128Mi"},
            # The master and two or three workers while old connections drain after a
            # reload: at 20,000 keys a worker holds about 210 MiB (docs/gateway.md).
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "securityContext": dict(_HARDENED),
        "volumeMounts": [{**_FILES_MOUNT, "readOnly": True}, _RUN_MOUNT, _TMP_MOUNT],
    }


def _volumes(code_config_map: str, code: Mapping[str, str]) -> list[Manifest]:
    """The pod's volumes: its memory-backed file trees, the sidecar's code, its API token."""
    return [
        # Certificates' private keys among them: memory, not a disk.
        {"name": "files", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {
            "name": "code",
            "configMap": {
                "name": code_config_map,
                "items": [{"key": key, "path": code_path(key)} for key in sorted(code)],
            },
        },
        {
            "name": "api-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": "token",
                            "expirationSeconds": TOKEN_SECONDS,
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ]
            },
        },
    ]


def deployment(
    namespace: str,
    instance: str,
    config_map_names: Sequence[str],
    code_config_map: str,
    replicas: int,
    min_ready_seconds: int,
    image: str = DEFAULT_IMAGE,
    sync_image: str = DEFAULT_SYNC_IMAGE,
) -> Manifest:
    """HAProxy and its sidecar; never below `replicas` while rolling."""
    selector = labels(instance)
    code = sync_code()
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "minReadySeconds": min_ready_seconds,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(selector),
                    "annotations": {CODE_ANNOTATION: code_checksum(code)},
                },
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    # The sidecar alone gets a token (its projected volume).
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": DRAIN_SECONDS + HARD_STOP_SECONDS + 10,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(selector)},
                        }
                    ],
                    "initContainers": [_sidecar(instance, config_map_names, sync_image)],
                    "containers": [_haproxy(image)],
                    "volumes": _volumes(code_config_map, code),
                },
            },
        },
    }


def pod_disruption_budget(namespace: str, instance: str) -> Manifest:
    """Voluntary disruptions (node drains) keep at least one gateway pod serving."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"namespace": namespace, "labels": labels(instance)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(instance)}},
    }


def service(
    namespace: str,
    instance: str,
    load_balancer: str,
    networks: Sequence[str] = (),
    egress: Sequence[str] = (),
) -> Manifest:
    """The load balancer: 443 to HAProxy's TLS listener, 80 to its plain-HTTP refusal.

    `load_balancer`: `aws` (an NLB of the AWS Load Balancer Controller) or `generic`
    (whatever serves `type: LoadBalancer` in the cluster). `networks`: the instance's
    allowlist, which the load balancer enforces too (with the controller, as inbound rules
    of the NLB's security group: pkg/service/model_build_managed_sg.go), with `egress`,
    the instance's own addresses; (): every address."""
    metadata: Manifest = {"namespace": namespace, "labels": labels(instance)}
    if load_balancer == "aws":
        metadata["annotations"] = dict(NLB_ANNOTATIONS)
    spec: Manifest = {
        "type": "LoadBalancer",
        "selector": labels(instance),
        "ports": [
            {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        ],
    }
    if networks:
        spec["loadBalancerSourceRanges"] = list(
            sources.collapsed(sources.network(n) for n in (*networks, *egress))
        )
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def internal_service(namespace: str, instance: str) -> Manifest:
    """The in-cluster door for the tenants' Grafana pods: a ClusterIP Service, 443 to
    HAProxy's internal listener. Never a load balancer (`service` does not carry that
    port): outside the cluster, the internal listener is unreachable; inside, only the
    Grafana pods may reach it (`network_policies.INTERNAL_LISTENER`).

    Its selector is the pods' labels, exactly those the Grafana pods' egress policy names,
    and its target port a number: the AWS network policy controller lets a pod's egress
    reach a ClusterIP (its agent sees the packet before the DNAT) only for a Service whose
    selector the policy's pod selector matches, on the service port whose target port is
    the policy's port (amazon-network-policy-controller-k8s, pkg/resolvers/endpoints.go,
    getMatchingServiceClusterIPs; a named target port is resolved only through a running
    pod)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": namespace, "labels": labels(instance)},
        "spec": {
            "type": "ClusterIP",
            "selector": labels(instance),
            "ports": [
                {
                    "name": "internal",
                    "port": INTERNAL_SERVICE_PORT,
                    "targetPort": INTERNAL_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }
