"""The data API gateway: HAProxy pods that terminate TLS and authenticate data API tokens.

Every request to `cortex|loki.<tenant>.<instance>.<domain>` passes here; the gateway
checks the token against the instance's trust store and forwards to the metrics or logs
backend with `X-Scope-OrgID: <tenant>`. The HAProxy files come from the pure renderer
in `components.rules.gateway_config`, the Kubernetes objects from
`components.rules.gateway_manifests`; this module only registers them.

A key, trust store or certificate change updates the files in place and the pods reload
themselves (no restart; see `gateway_manifests`): that is how a revocation takes effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.bail import reported
from components.rules import config_maps, gateway_config, gateway_manifests
from components.rules.charts import Upstreams
from components.rules.gateway_config import GatewaySettings

CONFIG_MAP_ROLES: Final = ("config", "keys")
"""The gateway's files come in two ConfigMaps (see `config_maps.gateway_data`)."""


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
    upstreams: Upstreams
    """Where pushes and queries of each service go."""
    certificate_secrets: Mapping[str, str]
    """Tenant -> the Secret holding its endpoint certificate (in `namespace`)."""
    bindings: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    """Key ID -> the one tenant it signs for; other keys sign for every tenant."""
    load_balancer: str = "aws"
    """`aws`: an NLB of the AWS Load Balancer Controller; `generic`: the cluster's own."""
    replicas: int = 2
    """Pods behind the load balancer; at least 2 so a node loss or a rollout keeps serving."""
    image: str = gateway_manifests.DEFAULT_IMAGE
    """The HAProxy image; keep a pinned, stock LTS image."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the pods and the load balancer need first: the certificates, the controller."""


def gateway_settings(args: GatewayArgs) -> GatewaySettings:
    """The renderer settings of the pod: listeners on all addresses, files in the mount."""
    return args.upstreams.gateway_settings(args.instance, args.domain, args.tenants)


class Gateway(pulumi.ComponentResource):
    """HAProxy pods behind a load balancer that authenticate data API tokens per tenant."""

    load_balancer_hostname: pulumi.Output[str]
    """The load balancer's DNS name; tenant endpoint records point here."""
    config_checksum: pulumi.Output[str]
    """SHA-256 of the rendered files; changes exactly when the pods reload."""

    def __init__(
        self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings = gateway_settings(args)
        # Everything but the keys is known now: fail at construction, not mid-preview.
        gateway_config.validate_settings(settings)
        if problem := gateway_config.replicas_problem(args.replicas):
            raise gateway_config.GatewayConfigError(f"replicas: {problem}")
        super().__init__("opstrace:index:Gateway", name, None, opts)
        labels = gateway_manifests.labels(args.instance)
        child = pulumi.ResourceOptions(parent=self)

        files = pulumi.Output.all(args.key_set, args.bindings).apply(
            reported(
                lambda values: gateway_config.render_gateway_files(settings, values[0], values[1])
            )
        )
        split = files.apply(config_maps.gateway_data)
        created = [
            k8s.core.v1.ConfigMap(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
                data=split.apply(reported(partial(_config_map_data, role))),
                opts=child,
            )
            for role in CONFIG_MAP_ROLES
        ]
        deployment_doc = pulumi.Output.all(
            args.namespace,
            pulumi.Output.all(*(c.metadata.apply(lambda m: m.name) for c in created)),
        ).apply(
            lambda values: gateway_manifests.deployment(
                values[0],
                args.instance,
                values[1],
                args.certificate_secrets,
                args.replicas,
                args.load_balancer,
                args.image,
            )
        )
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=deployment_doc.apply(lambda doc: doc["metadata"]),
            spec=deployment_doc.apply(lambda doc: doc["spec"]),
            opts=after,
        )
        pdb_doc = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: gateway_manifests.pod_disruption_budget(namespace, args.instance)
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=pdb_doc.apply(lambda doc: doc["metadata"]),
            spec=pdb_doc.apply(lambda doc: doc["spec"]),
            opts=child,
        )
        service_doc = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: gateway_manifests.service(
                namespace, args.instance, args.load_balancer
            )
        )
        # Made after the load balancer controller and deleted before it, so that the
        # controller is still there to delete the NLB (before the VPC goes).
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=service_doc.apply(lambda doc: doc["metadata"]),
            spec=service_doc.apply(lambda doc: doc["spec"]),
            opts=after,
        )

        self.load_balancer_hostname = service.status.apply(reported(_load_balancer_hostname))
        self.config_checksum = files.apply(gateway_config.config_checksum)
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
    address = ingress[0] if ingress else None
    if address is None or not (address.hostname or address.ip):
        raise gateway_config.GatewayConfigError(
            "the gateway Service has no load balancer address yet: check that the "
            "cluster's load balancer controller runs"
        )
    return address.hostname or address.ip or ""
