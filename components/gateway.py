"""The data API gateway: HAProxy pods that authenticate tenants' data API tokens.

Every request to `cortex|loki.<tenant>.<instance>.<domain>` passes here; the gateway
checks the token against the instance's trust store and forwards to Cortex or Loki
with `X-Scope-OrgID: <tenant>`. The HAProxy files come from the pure renderer in
`components.rules.gateway_config`; the Kubernetes manifests come from the pure functions
below, so tests validate exactly the dicts the component registers.

A trust store or tenant change changes the files, hence the checksum annotation on
the pod template, hence a rolling restart: that is how revocation takes effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.rules import config_maps, gateway_config
from components.rules.gateway_config import GatewaySettings

DEFAULT_IMAGE: Final = "haproxy:3.4.7"
"""Stock HAProxy image of the current LTS branch (3.4), the release `make e2e-haproxy` tests.

A version tag, not yet a digest: no registry is reachable where this was chosen and no
published digest of `haproxy:3.4.7` could be found; add `@sha256:<index digest>` once read
from the registry (docs/gateway.md, "Image"). The config also runs on HAProxy 2.6.
"""

HTTP_PORT: Final = 8080
HEALTH_PORT: Final = 8081
SERVICE_PORT: Final = 80
RUN_AS_USER: Final = 99
"""The `haproxy` user (UID and GID 99 in the image's Dockerfile); numeric for runAsNonRoot."""

CHECKSUM_ANNOTATION: Final = "opstrace.io/gateway-config-sha256"
CONFIG_MAP_ROLES: Final = ("config", "keys")
"""The gateway's files come in two ConfigMaps (see `config_maps.gateway_data`)."""

NLB_ANNOTATIONS: Final = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "http",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(HEALTH_PORT),
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path": gateway_config.HEALTH_PATH,
}


@dataclass(frozen=True)
class GatewayArgs:
    """Inputs of a Gateway."""

    instance: str
    """The instance name; tokens must be issued for it (`aud`)."""
    domain: str
    """The base domain; tenant endpoints are `cortex|loki.<tenant>.<instance>.<domain>`."""
    tenants: Sequence[str]
    """All tenant names, including `system` (added if missing)."""
    key_set: pulumi.Input[Mapping[str, str]]
    """The trust store: key ID -> SPKI PEM; removing a key revokes its tokens."""
    namespace: pulumi.Input[str]
    """The Kubernetes namespace the gateway runs in."""
    cortex_url: str
    """The metrics backend, `http://host:port`."""
    loki_url: str
    """The logs backend, `http://host:port`."""
    replicas: int = 2
    """Pods behind the load balancer; at least 2 so a node loss or a rollout keeps serving."""
    image: str = DEFAULT_IMAGE
    """The HAProxy image; keep a pinned, stock LTS image."""


def gateway_settings(args: GatewayArgs) -> GatewaySettings:
    """The renderer settings of the pod: listeners on all addresses, config in the mount."""
    return GatewaySettings(
        instance=args.instance,
        domain=args.domain,
        tenants=tuple(args.tenants),
        cortex_url=args.cortex_url,
        loki_url=args.loki_url,
        listen=f"0.0.0.0:{HTTP_PORT}",
        health_listen=f"0.0.0.0:{HEALTH_PORT}",
        config_dir=gateway_config.DEFAULT_CONFIG_DIR,
    )


def gateway_labels(instance: str) -> dict[str, str]:
    """Labels on every gateway object; the selector of its pods."""
    return {
        "app.kubernetes.io/name": "opstrace-gateway",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": "data-api-gateway",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def deployment_manifest(
    namespace: str,
    labels: Mapping[str, str],
    config_map_names: Sequence[str],
    checksum: str,
    replicas: int,
    image: str,
) -> dict[str, Any]:
    """The HAProxy Deployment; the checksum annotation rolls the pods on any file change."""
    config_dir = gateway_config.DEFAULT_CONFIG_DIR
    probe = {"httpGet": {"path": gateway_config.HEALTH_PATH, "port": "health"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            # Never below the desired count during a rollout (a revocation rolls pods).
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {CHECKSUM_ANNOTATION: checksum},
                },
                "spec": {
                    "automountServiceAccountToken": False,
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
                            "labelSelector": {"matchLabels": dict(labels)},
                        }
                    ],
                    "containers": [
                        {
                            "name": "haproxy",
                            "image": image,
                            # -W: master-worker (clean signal handling), -db: foreground.
                            "command": ["haproxy", "-W", "-db", "-f", f"{config_dir}/haproxy.cfg"],
                            "ports": [
                                {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
                                {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
                            ],
                            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 2},
                            "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "1", "memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": config_dir, "readOnly": True},
                                # The pod's own scratch emptyDir, not a shared /tmp.
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "config",
                            "projected": {
                                "sources": [
                                    {"configMap": {"name": config_map}}
                                    for config_map in config_map_names
                                ]
                            },
                        },
                        # The root filesystem is read-only; /tmp is the one scratch path.
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


def pod_disruption_budget_manifest(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Voluntary disruptions (node drains) keep at least one gateway pod serving."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"namespace": namespace, "labels": dict(labels)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(labels)}},
    }


def service_manifest(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """An internet-facing AWS NLB sending to pod IPs (plain HTTP for now)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(NLB_ANNOTATIONS),
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": dict(labels),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


class Gateway(pulumi.ComponentResource):
    """HAProxy pods behind an NLB that authenticate data API tokens per tenant."""

    load_balancer_hostname: pulumi.Output[str]
    """The NLB's DNS name; tenant endpoint records point here."""
    config_checksum: pulumi.Output[str]
    """SHA-256 of the rendered files; changes exactly when the pods must restart."""

    def __init__(
        self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings = gateway_settings(args)
        # Everything but the keys is known now: fail at construction, not mid-preview.
        gateway_config.validate_settings(settings)
        if problem := gateway_config.replicas_problem(args.replicas):
            raise gateway_config.GatewayConfigError(f"replicas: {problem}")
        super().__init__("opstrace:index:Gateway", name, None, opts)
        labels = gateway_labels(args.instance)
        child = pulumi.ResourceOptions(parent=self)

        files = pulumi.Output.from_input(args.key_set).apply(
            lambda trusted: gateway_config.render_gateway_files(settings, trusted)
        )
        checksum = files.apply(gateway_config.config_checksum)
        split = files.apply(config_maps.gateway_data)
        created = [
            k8s.core.v1.ConfigMap(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
                data=split.apply(partial(_config_map_data, role)),
                opts=child,
            )
            for role in CONFIG_MAP_ROLES
        ]
        deployment_doc = pulumi.Output.all(
            args.namespace,
            pulumi.Output.all(*(c.metadata.apply(lambda m: m.name) for c in created)),
            checksum,
        ).apply(
            lambda values: deployment_manifest(
                values[0], labels, values[1], values[2], args.replicas, args.image
            )
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=deployment_doc.apply(lambda doc: doc["metadata"]),
            spec=deployment_doc.apply(lambda doc: doc["spec"]),
            opts=child,
        )
        pdb_doc = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: pod_disruption_budget_manifest(namespace, labels)
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=pdb_doc.apply(lambda doc: doc["metadata"]),
            spec=pdb_doc.apply(lambda doc: doc["spec"]),
            opts=child,
        )
        service_doc = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: service_manifest(namespace, labels)
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=service_doc.apply(lambda doc: doc["metadata"]),
            spec=service_doc.apply(lambda doc: doc["spec"]),
            opts=child,
        )

        self.load_balancer_hostname = service.status.apply(_load_balancer_hostname)
        self.config_checksum = checksum
        self.register_outputs(
            {
                "load_balancer_hostname": self.load_balancer_hostname,
                "config_checksum": self.config_checksum,
            }
        )


def _config_map_data(role: str, split: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return config_maps.checked_data(f"gateway {role}", split[role])


def _load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    if not ingress or not ingress[0].hostname:
        raise gateway_config.GatewayConfigError(
            "the gateway Service has no load balancer hostname yet: check that the AWS "
            "Load Balancer Controller runs in the cluster"
        )
    return ingress[0].hostname
