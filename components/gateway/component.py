"""The `Gateway` component: HAProxy pods that terminate TLS and authenticate data API tokens.

Every request to `cortex|loki.<tenant>.<instance>.<domain>` passes here; the gateway
checks the token against the instance's trust store and forwards to the metrics or logs
backend with `X-Scope-OrgID: <tenant>`. The files come from `opstrace.gateway.files`, the
Kubernetes objects from `opstrace.gateway.manifests`; this module only registers them.

A key, trust store, tenant or certificate change updates its ConfigMaps in place (the
configuration's, and a key's shard only: `opstrace.key_shards`); the pods' sidecar
loads them without a restart (`sidecar.sync`), and `GatewayRollout` (see
`rollout`) makes `pulumi up` wait until every pod serves them: that is how a revocation
takes effect, and when `up` says done it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, Final, TypeVar

import pulumi
import pulumi_kubernetes as k8s

from components.bail import reported
from components.gateway.rollout import DEFAULT_TIMEOUT_SECONDS, GatewayRollout, GatewayRolloutArgs
from components.trust_store import BoundKey
from opstrace import config_maps, key_shards
from opstrace.gateway import files as gateway_files
from opstrace.gateway import manifests
from opstrace.gateway.settings import (
    DEFAULT_IMAGE,
    DEFAULT_SYNC_IMAGE,
    GatewayConfigError,
    GatewaySettings,
    replicas_problem,
)

R = TypeVar("R", bound=pulumi.CustomResource)


@dataclass(frozen=True)
class ClusterAccess:
    """How the operator's machine reaches the cluster, as the Kubernetes provider does:
    for `up` to wait until the pods serve what it rendered."""

    kubeconfig: pulumi.Input[str] = ""
    """A kubeconfig document (the eks cluster's), or "" for `kubeconfig_path`."""
    kubeconfig_path: str = ""
    context: str = ""


@dataclass(frozen=True)
class GatewayArgs:
    """Inputs of a Gateway."""

    settings: GatewaySettings
    """What the files are rendered from: instance, domain, tenants, upstreams (checked)."""
    keys: Sequence[BoundKey]
    """The trust store's keys, each with the one tenant it signs for (or every tenant);
    removing one revokes its tokens."""
    namespace: pulumi.Input[str]
    """The Kubernetes namespace the gateway runs in (the tenants' certificates too)."""
    cluster: ClusterAccess = field(default_factory=ClusterAccess)
    load_balancer: str = "aws"
    """`aws`: an NLB of the AWS Load Balancer Controller; `generic`: the cluster's own."""
    replicas: int = 2
    """Pods behind the load balancer; at least 2 so a node loss or a rollout keeps serving."""
    min_ready_seconds: int = manifests.MIN_READY_SECONDS["aws"]
    """How long a new pod must be ready before a rollout goes on."""
    image: str = DEFAULT_IMAGE
    """The HAProxy image; keep a pinned, stock LTS image."""
    sync_image: str = DEFAULT_SYNC_IMAGE
    """The sidecar's stock Python image."""
    egress: pulumi.Input[Sequence[str]] = ()
    """The instance's own outbound addresses (its NAT gateways' `/32`s): where its
    collector's pushes come from, let in whenever the instance has an allowlist."""
    certificates: Sequence[pulumi.Resource] = ()
    """The tenants' certificates: the files naming one change once it is issued."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the pods and the load balancer need first: the load balancer controller."""
    rollout_timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


class Gateway(pulumi.ComponentResource):
    """HAProxy pods behind a load balancer that authenticate data API tokens per tenant."""

    load_balancer_hostname: pulumi.Output[str]
    """The load balancer's DNS name; tenant endpoint records point here."""
    config_checksum: pulumi.Output[str]
    """SHA-256 of the rendered files; what every pod serves once `up` is done."""
    internal_address: pulumi.Output[str]
    """The ClusterIP of the gateway's in-cluster Service (443 to the internal listener):
    what the tenants' data API hosts resolve to in their Grafana pods (`hostAliases`)."""
    serving: tuple[pulumi.Resource, ...]
    """What a resource that needs the gateway to serve depends on: the wait until every
    pod serves the current files, and the two Services. Not the component, whose every
    child would be walked: the key ConfigMaps depend on every tenant's certificate, and
    Pulumi's cycle check walks a dependency's whole closure for each dependant, so each
    dependant costs a walk of every certificate (a plan grew with the square of the
    tenants: bench/program_bench.py, by credentials). Depend on this only where needed."""

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

        # Only an instance with an allowlist lets its egress addresses in: without one,
        # nothing waits for them (they are unknown until the NAT gateways exist).
        egress = pulumi.Output.from_input(args.egress if settings.instance_networks else ())
        parts = _rendered_parts(settings, args.keys, egress)
        # After the certificates: a crt-list naming a tenant is loaded once its
        # certificate exists (the sidecar waits for it, but need not wait long).
        issued = pulumi.ResourceOptions(parent=self, depends_on=list(args.certificates))
        # The configuration from every key (its manifest names every shard's part); each
        # shard from its own keys, so that a plan shows the shards a change touches only.
        documents = {gateway_files.CONFIG_ROLE: parts.apply(_config_data)}
        for shard in key_shards.SHARDS:
            held = [key for key in args.keys if key.shard == shard]
            documents[f"keys-{shard}"] = _rendered_shard(settings, held, shard)
        created = [
            k8s.core.v1.ConfigMap(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
                data=documents[role],
                opts=issued,
            )
            for role in gateway_files.CONFIG_MAP_ROLES
        ]
        config_map_names = pulumi.Output.all(*(c.metadata.apply(lambda m: m.name) for c in created))
        code = k8s.core.v1.ConfigMap(
            f"{name}-sync",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            data=manifests.sync_code(),
            opts=child,
        )
        namespace = pulumi.Output.from_input(args.namespace)
        account = _registered(
            k8s.core.v1.ServiceAccount,
            f"{name}-account",
            namespace.apply(lambda ns: manifests.service_account(ns, instance)),
            child,
            automount_service_account_token=False,
        )
        role = _registered(
            k8s.rbac.v1.Role,
            f"{name}-role",
            pulumi.Output.all(args.namespace, config_map_names).apply(
                lambda values: manifests.role(values[0], instance, values[1])
            ),
            child,
        )
        binding = _registered(
            k8s.rbac.v1.RoleBinding,
            f"{name}-role-binding",
            namespace.apply(lambda ns: manifests.role_binding(ns, instance)),
            pulumi.ResourceOptions(parent=self, depends_on=[account, role]),
        )
        deployment_doc = pulumi.Output.all(
            args.namespace, config_map_names, code.metadata.apply(lambda m: m.name)
        ).apply(
            lambda values: manifests.deployment(
                values[0],
                instance,
                values[1],
                values[2],
                args.replicas,
                args.min_ready_seconds,
                args.image,
                args.sync_image,
            )
        )
        deployment = _registered(
            k8s.apps.v1.Deployment,
            f"{name}-deployment",
            deployment_doc,
            pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, binding, *created]),
        )
        _registered(
            k8s.policy.v1.PodDisruptionBudget,
            f"{name}-pdb",
            namespace.apply(lambda ns: manifests.pod_disruption_budget(ns, instance)),
            child,
        )
        # Made after the load balancer controller and deleted before it, so that the
        # controller is still there to delete the NLB (before the VPC goes).
        service = _registered(
            k8s.core.v1.Service,
            f"{name}-service",
            pulumi.Output.all(namespace, egress).apply(
                lambda v: manifests.service(
                    v[0], instance, args.load_balancer, settings.instance_networks, v[1]
                )
            ),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        # In the cluster only: the tenants' Grafana pods query through it (and only they
        # may, `network_policies.INTERNAL_LISTENER`); no load balancer carries its port.
        # Registered after the load balancer's Service, so that "the gateway's first
        # Service" stays the load balancer wherever a reader takes the first.
        internal = _registered(
            k8s.core.v1.Service,
            f"{name}-internal",
            namespace.apply(lambda ns: manifests.internal_service(ns, instance)),
            pulumi.ResourceOptions(parent=self, depends_on=[service]),
        )
        self.config_checksum = parts.apply(gateway_files.GatewayFiles.checksum)
        rollout = GatewayRollout(
            f"{name}-rollout",
            GatewayRolloutArgs(
                namespace=args.namespace,
                selector=labels,
                checksum=self.config_checksum,
                kubeconfig=args.cluster.kubeconfig,
                kubeconfig_path=args.cluster.kubeconfig_path,
                context=args.cluster.context,
                timeout_seconds=args.rollout_timeout_seconds,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[deployment, *created]),
        )
        self.serving = (rollout, service, internal)

        self.load_balancer_hostname = service.status.apply(reported(_load_balancer_hostname))
        self.internal_address = internal.spec.apply(_cluster_ip)
        self.register_outputs(
            {
                "load_balancer_hostname": self.load_balancer_hostname,
                "config_checksum": self.config_checksum,
                "internal_address": self.internal_address,
            }
        )


def _rendered_parts(
    settings: GatewaySettings, keys: Sequence[BoundKey], egress: pulumi.Output[Sequence[str]]
) -> pulumi.Output[gateway_files.GatewayFiles]:
    """The gateway's files in their ConfigMaps' parts, once every key is minted: their
    rules are checked then, and a broken one ends the update in one line (components.bail)."""
    entries = [key.entry for key in keys]
    return pulumi.Output.all(egress, *(key.pem for key in keys)).apply(
        reported(
            lambda values: gateway_files.gateway_files(
                settings,
                (replace(e, pem=pem) for pem, e in zip(values[1:], entries, strict=True)),
                values[0],
            )
        )
    )


_FIELDS: Final[Mapping[Any, Mapping[str, str]]] = {
    k8s.core.v1.ServiceAccount: {},
    k8s.rbac.v1.Role: {"rules": "rules"},
    k8s.rbac.v1.RoleBinding: {"role_ref": "roleRef", "subjects": "subjects"},
    k8s.apps.v1.Deployment: {"spec": "spec"},
    k8s.policy.v1.PodDisruptionBudget: {"spec": "spec"},
    k8s.core.v1.Service: {"spec": "spec"},
}
"""Each kind's resource arguments besides `metadata`, and the manifest keys they come from."""


def _registered(
    kind: Callable[..., R],
    name: str,
    manifest: pulumi.Output[manifests.Manifest],
    opts: pulumi.ResourceOptions,
    **fixed: Any,
) -> R:
    """`kind` registered from a manifest that `opstrace.gateway.manifests` makes once the
    namespace is known: its metadata and its kind's fields (`_FIELDS`), and `fixed`."""
    fields = {argument: manifest.apply(itemgetter(key)) for argument, key in _FIELDS[kind].items()}
    return kind(name, metadata=manifest.apply(itemgetter("metadata")), **fields, **fixed, opts=opts)


def _config_data(parts: gateway_files.GatewayFiles) -> dict[str, str]:
    role = gateway_files.CONFIG_ROLE
    return config_maps.checked_data(f"gateway {role}", gateway_files.config_map_data(parts)[role])


def _rendered_shard(
    settings: GatewaySettings, keys: Sequence[BoundKey], shard: str
) -> pulumi.Output[dict[str, str]]:
    """A key shard's ConfigMap data, once its own keys are minted."""
    entries = [key.entry for key in keys]

    def data(pems: Sequence[str]) -> dict[str, str]:
        held = [replace(e, pem=pem) for pem, e in zip(pems, entries, strict=True)]
        part = gateway_files.shard_part(settings, held, shard)
        return config_maps.checked_data(f"gateway keys-{shard}", gateway_files.shard_data(part))

    return pulumi.Output.all(*(key.pem for key in keys)).apply(reported(data))


def _cluster_ip(spec: k8s.core.v1.outputs.ServiceSpec | None) -> str:
    """The address the API server gave the Service ("" until it has one: never, under
    Pulumi's mocks)."""
    return (spec.cluster_ip if spec else None) or ""


def _load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    address = ingress[0] if ingress else None
    if address is None or not (address.hostname or address.ip):
        raise GatewayConfigError(
            "the gateway Service has no load balancer address yet: check that the "
            "cluster's load balancer controller runs"
        )
    return address.hostname or address.ip or ""
