"""The gateway's Kubernetes objects as plain manifests (the component registers these).

Pure, no Pulumi: tests validate exactly the dicts the component registers.

How a change reaches the pods without a restart: the rendered files (two ConfigMaps,
updated in place) and every tenant's certificate Secret are one projected volume, which
the kubelet swaps atomically when any of them changes; the reloader container (same
image, same user) sees the new files and signals HAProxy's master, which starts new
workers and lets the old ones finish their requests. Only a changed tenant list (a new
certificate to mount) or image changes the pod template and rolls the pods, and then
readiness gates, `minReadySeconds` and a draining `preStop` keep every request served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from components.gateway.haproxy import HARD_STOP_SECONDS
from components.gateway.settings import (
    CERTS_SUBDIR,
    DEFAULT_CONFIG_DIR,
    DEFAULT_HEALTH_LISTEN,
    DEFAULT_HTTP_LISTEN,
    DEFAULT_IMAGE,
    DEFAULT_LISTEN,
    HEALTH_PATH,
    RELOAD_SCRIPT,
    certificate_file_name,
    private_key_file_name,
)

Manifest = dict[str, Any]

TLS_PORT: Final = int(DEFAULT_LISTEN.rpartition(":")[2])
PLAIN_PORT: Final = int(DEFAULT_HTTP_LISTEN.rpartition(":")[2])
HEALTH_PORT: Final = int(DEFAULT_HEALTH_LISTEN.rpartition(":")[2])
RUN_AS_USER: Final = 99
"""The `haproxy` user of the stock image; numeric so that runAsNonRoot can be checked."""

DRAIN_SECONDS: Final = 40
"""How long a stopping pod keeps serving before HAProxy is told to stop: the NLB stops
sending new connections to a deregistering target within its deregistration delay (30 s,
set below). Then the container runtime sends the image's STOPSIGNAL (SIGUSR1, a soft stop:
in-flight requests finish, for at most `hard-stop-after`)."""
DEREGISTRATION_DELAY_SECONDS: Final = 30
MIN_READY_SECONDS: Final = {"aws": 10, "generic": 120}
"""How long a new pod must be ready before the rollout goes on: with the AWS controller's
readiness gate a pod is ready only once the NLB sends to it; without one, wait out a
typical load balancer's registration."""

NLB_ANNOTATIONS: Final = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(HEALTH_PORT),
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": HEALTH_PATH,
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
        f"deregistration_delay.timeout_seconds={DEREGISTRATION_DELAY_SECONDS},"
        "deregistration_delay.connection_termination.enabled=true"
    ),
}
"""An internet-facing NLB passing TCP to pod IPs (TLS ends in HAProxy, so HTTP/2 and
SNI work end to end); the controller deregisters a stopping pod before it stops."""


def labels(instance: str) -> dict[str, str]:
    """Labels on every gateway object; the selector of its pods."""
    return {
        "app.kubernetes.io/name": "opstrace-gateway",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": "data-api-gateway",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def config_volume(
    config_map_names: Sequence[str], certificate_secrets: Mapping[str, str]
) -> Manifest:
    """One projected volume: the rendered files, and `certs/<tenant>.pem` (+ `.key`)."""
    sources: list[Manifest] = [{"configMap": {"name": name}} for name in config_map_names]
    for tenant, secret in sorted(certificate_secrets.items()):
        directory = CERTS_SUBDIR
        sources.append(
            {
                "secret": {
                    "name": secret,
                    "items": [
                        {
                            "key": "tls.crt",
                            "path": f"{directory}/{certificate_file_name(tenant)}",
                        },
                        {
                            "key": "tls.key",
                            "path": f"{directory}/{private_key_file_name(tenant)}",
                        },
                    ],
                }
            }
        )
    return {"name": "config", "projected": {"sources": sources}}


def deployment(
    namespace: str,
    instance: str,
    config_map_names: Sequence[str],
    certificate_secrets: Mapping[str, str],
    replicas: int,
    load_balancer: str,
    image: str = DEFAULT_IMAGE,
) -> Manifest:
    """The HAProxy Deployment with its reloader; never below `replicas` while rolling."""
    selector = labels(instance)
    config_dir = DEFAULT_CONFIG_DIR
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "health"}}
    hardened = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = [
        {"name": "config", "mountPath": config_dir, "readOnly": True},
        # The pod's own scratch emptyDir, not a shared /tmp.
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "minReadySeconds": MIN_READY_SECONDS[load_balancer],
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {
                    "automountServiceAccountToken": False,
                    # The reloader signals HAProxy's master in the other container.
                    "shareProcessNamespace": True,
                    "terminationGracePeriodSeconds": DRAIN_SECONDS + HARD_STOP_SECONDS + 10,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
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
                    "containers": [
                        {
                            "name": "haproxy",
                            "image": image,
                            # -W: master-worker (reloads, clean stops), -db: foreground.
                            "command": ["haproxy", "-W", "-db", "-f", f"{config_dir}/haproxy.cfg"],
                            "ports": [
                                {"name": "https", "containerPort": TLS_PORT, "protocol": "TCP"},
                                {"name": "http", "containerPort": PLAIN_PORT, "protocol": "TCP"},
                                {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
                            ],
                            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 2},
                            "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                            "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "128Mi"},
                                "limits": {"cpu": "2", "memory": "512Mi"},
                            },
                            "securityContext": dict(hardened),
                            "volumeMounts": list(mounts),
                        },
                        {
                            "name": "reloader",
                            "image": image,
                            # Reloads HAProxy when its files change (see gateway_config).
                            "command": ["/bin/sh", f"{config_dir}/{RELOAD_SCRIPT}"],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                            },
                            "securityContext": dict(hardened),
                            "volumeMounts": list(mounts),
                        },
                    ],
                    "volumes": [
                        config_volume(config_map_names, certificate_secrets),
                        # The root filesystem is read-only; /tmp is the one scratch path.
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
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


def service(namespace: str, instance: str, load_balancer: str) -> Manifest:
    """The load balancer: 443 to HAProxy's TLS listener, 80 to its plain-HTTP refusal.

    `load_balancer`: `aws` (an NLB of the AWS Load Balancer Controller) or `generic`
    (whatever serves `type: LoadBalancer` in the cluster)."""
    metadata: Manifest = {"namespace": namespace, "labels": labels(instance)}
    if load_balancer == "aws":
        metadata["annotations"] = dict(NLB_ANNOTATIONS)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "LoadBalancer",
            "selector": labels(instance),
            "ports": [
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }
