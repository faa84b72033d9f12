"""The `Gateway` component: HAProxy pods that terminate TLS and authenticate data API tokens.

Every request to `cortex|loki.<tenant>.<instance>.<domain>` passes here; the gateway
checks the token against the instance's trust store and forwards to the metrics or logs
backend with `X-Scope-OrgID: <tenant>`. The files come from `files`, the Kubernetes
objects from `manifests`; this module only registers them.

A key, trust store or certificate change updates the files in place and the pods reload
themselves (no restart; see `manifests`): that is how a revocation takes effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import pulumi
import pulumi_kubernetes as k8s

from components.bail import reported
from components.gateway import files as gateway_files
from components.gateway import manifests
from components.gateway.settings import (
    DEFAULT_IMAGE,
    GatewayConfigError,
    GatewaySettings,
    replicas_problem,
)
from components.rules import config_maps
from components.trust_store import BoundKey


@dataclass(frozen=True)
class GatewayArgs:
    """Inputs of a Gateway."""

    settings: GatewaySettings
    """What the files are rendered from: instance, domain, tenants, upstreams (checked)."""
    keys: Sequence[BoundKey]
    """The trust store's keys, each with the one tenant it signs for (or every tenant);
    removing one revokes its tokens."""
    namespace: pulumi.Input[str]
    """The Kubernetes namespace the gateway runs in."""
    certificate_secrets: Mapping[str, str]
    """Tenant -> the Secret holding its endpoint certificate (in `namespace`)."""
    load_balancer: str = "aws"
    """`aws`: an NLB of the AWS Load Balancer Controller; `generic`: the cluster's own."""
    replicas: int = 2
    """Pods behind the load balancer; at least 2 so a node loss or a rollout keeps serving."""
    image: str = DEFAULT_IMAGE
    """The HAProxy image; keep a pinned, stock LTS image."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the pods and the load balancer need first: the certificates, the controller."""


class Gateway(pulumi.ComponentResource):
    """HAProxy pods behind a load balancer that authenticate data API tokens per tenant."""

    load_balancer_hostname: pulumi.Output[str]
    """The load balancer's DNS name; tenant endpoint records point here."""
    config_checksum: pulumi.Output[str]
    """SHA-256 of the rendered files; changes exactly when the pods reload."""

    def __init__(
        self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Everything but the keys is known now (and the settings checked themselves):
        # fail at construction, not mid-preview.
        if problem := replicas_problem(args.replicas):
            raise GatewayConfigError(f"replicas: {problem}")
        super().__init__("opstrace:index:Gateway", name, None, opts)
        settings = args.settings
        instance = settings.instance
        labels = manifests.labels(instance)
        child = pulumi.ResourceOptions(parent=self)

        tenants = [key.tenant for key in args.keys]
        # The keys are known only once minted: their rules are checked here, and a broken
        # one ends the update in one line (components.bail).
        files = pulumi.Output.all(*(key.pem for key in args.keys)).apply(
            reported(
                lambda pems: gateway_files.gateway_files(settings, zip(pems, tenants, strict=True))
            )
        )
        split = files.apply(gateway_files.config_map_data)
        created = [
            k8s.core.v1.ConfigMap(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
                data=split.apply(reported(partial(_config_map_data, role))),
                opts=child,
            )
            for role in gateway_files.CONFIG_MAP_ROLES
        ]
        deployment_doc = pulumi.Output.all(
            args.namespace,
            pulumi.Output.all(*(c.metadata.apply(lambda m: m.name) for c in created)),
        ).apply(
            lambda values: manifests.deployment(
                values[0],
                instance,
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
            lambda namespace: manifests.pod_disruption_budget(namespace, instance)
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=pdb_doc.apply(lambda doc: doc["metadata"]),
            spec=pdb_doc.apply(lambda doc: doc["spec"]),
            opts=child,
        )
        service_doc = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: manifests.service(namespace, instance, args.load_balancer)
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
        self.config_checksum = files.apply(gateway_files.config_checksum)
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
        raise GatewayConfigError(
            "the gateway Service has no load balancer address yet: check that the "
            "cluster's load balancer controller runs"
        )
    return address.hostname or address.ip or ""
