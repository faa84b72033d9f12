"""The instance: everything one Opstrace-style deployment consists of on its cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.alerting import (
    TenantAlertmanagerConfig,
    TenantAlertmanagerConfigArgs,
    TenantRules,
    TenantRulesArgs,
)
from components.backends import Backends, BackendsArgs
from components.cluster import Cluster
from components.dns import Dns, DnsArgs
from components.gateway.component import ClusterAccess, Gateway, GatewayArgs
from components.irsa import existing_cluster_oidc
from components.isolation import EnforcementCheck, Isolation, IsolationArgs
from components.name_lock import NameLock
from components.telemetry import Telemetry, TelemetryArgs
from components.tenant import Tenant, TenantArgs
from components.tenant_grafana import TenantGrafana, TenantGrafanaArgs
from components.trust_store import BoundKey, TrustStore, TrustStoreArgs
from opstrace import certificates, charts, grafana, names, network_policies
from opstrace.config.platform import PlatformConfig
from opstrace.config.schema import InstanceConfig, TenantSpec
from opstrace.gateway import routes

READINESS_GATE_LABELS = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
"""On the gateway's namespace: a gateway pod counts as ready only once the NLB sends to it."""


@dataclass(frozen=True)
class InstanceArgs:
    """The validated stack configuration, and the cluster the program made (eks mode)."""

    config: InstanceConfig
    cluster: Cluster | None = None
    cluster_access: ClusterAccess = field(default_factory=ClusterAccess)
    """How the operator's machine reaches the cluster (as the Kubernetes provider does)."""


class Instance(pulumi.ComponentResource):
    """An instance with its system and user tenants, trust store, gateway, DNS, backends
    and telemetry.

    Adding a tenant adds that tenant's resources and changes only the trust store and
    the gateway among existing resources.
    """

    dns_name: str
    tenant_names: list[str]
    endpoints: dict[str, dict[str, str]]
    """Tenant -> service -> URL."""
    key_ids: pulumi.Output[list[str]]
    """Every key ID in the trust store."""
    tokens: pulumi.Output[dict[str, dict[str, str]]]
    """Tenant -> token name -> token; a secret."""
    token_expiry: pulumi.Output[dict[str, dict[str, str]]]
    """Tenant -> token name -> expiry time (ISO 8601 UTC)."""
    dns_records: pulumi.Output[list[dict[str, str]]]
    """The records of every endpoint: managed in Route53, or for the operator to create
    elsewhere when `dns` is `none`."""
    name_servers: pulumi.Output[list[str]] | None
    """The instance zone's name servers (dns route53): delegate to them."""
    bucket_names: dict[str, pulumi.Output[str]]
    """`metrics`/`logs` -> the bucket of the instance's own backend."""
    grafanas: dict[str, TenantGrafana]
    """Tenant -> its Grafana, for the tenants that have one."""

    def __init__(
        self, name: str, args: InstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Instance", name, None, opts)
        config = args.config
        platform = config.platform
        cluster = args.cluster
        ready = tuple(cluster.ready) if cluster else ()
        child = pulumi.ResourceOptions(parent=self)
        NameLock(config.instance_name, child)
        dns = _dns(name, config, child)
        addons = _addons(name, config, cluster, dns, ready, child)
        tenants = self._tenants(name, config, addons, dns, ready)
        bound_keys = _bound_keys(config, tenants)
        system_namespace = tenants[names.SYSTEM_TENANT].namespace
        trust_store = TrustStore(
            f"{name}-trust-store",
            TrustStoreArgs(namespace=system_namespace, keys=bound_keys),
            child,
        )
        gateway = Gateway(
            f"{name}-gateway",
            GatewayArgs(
                settings=config.gateway,
                keys=bound_keys,
                namespace=system_namespace,
                cluster=args.cluster_access,
                load_balancer=platform.load_balancer,
                egress=cluster.egress_addresses if cluster else (),
                replicas=config.gateway_replicas,
                min_ready_seconds=config.gateway_min_ready_seconds,
                image=config.gateway_image,
                sync_image=config.gateway_sync_image,
                certificates=tuple(t.certificate for t in tenants.values()),
                depends_on=tuple(addons.load_balancer),
            ),
            child,
        )
        namespaces = {names.tenant_namespace(t): tenant.namespace for t, tenant in tenants.items()}
        backends = self._backends(name, config, cluster, ready)
        self.bucket_names = backends.bucket_names if backends else {}
        namespaces.update(backends.namespaces if backends else {})
        if platform.telemetry:
            telemetry = _telemetry(name, config, tenants, (*ready, gateway), child)
            namespaces[charts.ALLOY.namespace] = telemetry.namespace
        Isolation(
            f"{name}-isolation",
            IsolationArgs(
                layout=_layout(config),
                namespaces=namespaces,
                enforcement=None
                if platform.makes_cluster
                else EnforcementCheck(
                    config.kubeconfig, config.kube_context, platform.network_policy_risk_accepted
                ),
            ),
            child,
        )
        self.name_servers = None
        records: Mapping[str, Sequence[pulumi.Resource]] = {}
        if dns is not None:
            records = dns.point_endpoints_at(
                gateway.load_balancer_hostname,
                network_load_balancer=platform.load_balancer == "aws",
            )
            self.name_servers = dns.name_servers.apply(list)
        self.grafanas = {
            spec.name: _grafana(
                f"{name}-tenant-{spec.name}-grafana",
                tenants[spec.name],
                spec,
                config,
                gateway,
                # Not after the gateway's rollout: a Grafana starts without its data
                # sources answering, and each dependant of the rollout costs the plan a
                # walk of every certificate (`Gateway.serving`). Its internal address
                # (an input) orders it after the door's Service.
                [*ready, *([backends] if backends else [])],
            )
            for spec in config.tenants
            if spec.grafana.enabled
        }
        for spec in config.user_tenants:
            # Uploaded through the tenant's own endpoint, once everything on its way is up.
            on_the_way = [
                *gateway.serving,
                *([backends] if backends else []),
                *records.get(spec.name, []),
            ]
            _tenant_alerting(
                f"{name}-tenant-{spec.name}",
                tenants[spec.name],
                spec,
                on_the_way,
                certificates.STAGING_ROOTS if platform.acme_staging else "",
            )
        self._outputs(config, tenants, trust_store, gateway)

    def _tenants(
        self,
        name: str,
        config: InstanceConfig,
        addons: ClusterAddons,
        dns: Dns | None,
        ready: Sequence[pulumi.Resource],
    ) -> dict[str, Tenant]:
        """Every tenant, `system` first: its namespace holds the gateway, the others'
        pods count as ready only once the load balancer sends to them."""
        tenants: dict[str, Tenant] = {}
        for spec in config.tenants:
            system = tenants.get(names.SYSTEM_TENANT)
            tenants[spec.name] = Tenant(
                f"{name}-tenant-{spec.name}",
                TenantArgs(
                    instance=config.instance_name,
                    domain=config.domain,
                    spec=spec,
                    key_bits=config.key_bits,
                    token_lifetime_seconds=config.token_lifetime_seconds,
                    certificate_issuer=config.platform.certificate_issuer,
                    gateway_namespace=system.namespace if system else None,
                    namespace_labels={} if system else READINESS_GATE_LABELS,
                    certificate_depends_on=(
                        *addons.certificates,
                        *([dns.delegated] if dns else []),
                    ),
                ),
                pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
            )
        return tenants

    def _backends(
        self,
        name: str,
        config: InstanceConfig,
        cluster: Cluster | None,
        ready: Sequence[pulumi.Resource],
    ) -> Backends | None:
        """The instance's own Mimir and Loki, unless both are external."""
        if config.cortex_url and config.loki_url:
            return None
        platform = config.platform
        oidc_arn, oidc_host = (
            (cluster.oidc_provider_arn, cluster.oidc_issuer_host)
            if cluster
            else existing_cluster_oidc(platform.eks_cluster_name, self)
        )
        return Backends(
            f"{name}-backends",
            BackendsArgs(
                platform=platform,
                metrics=not config.cortex_url,
                logs=not config.loki_url,
                oidc_provider_arn=oidc_arn,
                oidc_issuer_host=oidc_host,
                cluster_ready=tuple(ready),
                policies=config.backend_policies(),
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _outputs(
        self,
        config: InstanceConfig,
        tenants: Mapping[str, Tenant],
        trust_store: TrustStore,
        gateway: Gateway,
    ) -> None:
        tenant_names = [spec.name for spec in config.tenants]
        self.dns_name = names.instance_dns_name(config.instance_name, config.domain)
        self.tenant_names = tenant_names
        self.endpoints = {tenant: t.endpoints for tenant, t in tenants.items()}
        self.key_ids = trust_store.key_ids
        self.tokens = pulumi.Output.secret(
            pulumi.Output.all(**{tenant: t.tokens for tenant, t in tenants.items()})
        )
        self.token_expiry = pulumi.Output.all(
            **{tenant: t.token_expiry for tenant, t in tenants.items()}
        )
        self.dns_records = gateway.load_balancer_hostname.apply(
            lambda target: names.endpoint_records(
                {spec.name: spec.grafana.enabled for spec in config.tenants},
                config.instance_name,
                config.domain,
                target,
            )
        )
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "tenant_names": self.tenant_names,
                "endpoints": self.endpoints,
                "key_ids": self.key_ids,
                "tokens": self.tokens,
                "token_expiry": self.token_expiry,
                "dns_records": self.dns_records,
                "name_servers": self.name_servers,
                "bucket_names": self.bucket_names,
            }
        )


def _dns(name: str, config: InstanceConfig, child: pulumi.ResourceOptions) -> Dns | None:
    """The instance zone and its records (dns route53), else nothing in Route53."""
    if config.dns != "route53":
        return None
    return Dns(
        f"{name}-dns",
        DnsArgs(
            instance=config.instance_name,
            domain=config.domain,
            tenants={spec.name: spec.grafana.enabled for spec in config.tenants},
            parent_zone_id=config.parent_zone_id,
        ),
        child,
    )


def _addons(
    name: str,
    config: InstanceConfig,
    cluster: Cluster | None,
    dns: Dns | None,
    ready: Sequence[pulumi.Resource],
    child: pulumi.ResourceOptions,
) -> ClusterAddons:
    """The cluster's controllers: load balancers, certificates (DNS-01 in the zone)."""
    return ClusterAddons(
        f"{name}-addons",
        ClusterAddonsArgs(
            platform=config.platform,
            instance=config.instance_name,
            cluster_name=cluster.name if cluster else None,
            vpc_id=cluster.vpc_id if cluster else None,
            oidc_provider_arn=cluster.oidc_provider_arn if cluster else None,
            oidc_issuer_host=cluster.oidc_issuer_host if cluster else None,
            zone_id=dns.zone_id if dns else None,
            cluster_ready=tuple(ready),
        ),
        child,
    )


def _bound_keys(config: InstanceConfig, tenants: Mapping[str, Tenant]) -> list[BoundKey]:
    """Every key the instance trusts: each token's (bound to its tenant), then trustedKeys."""
    return [
        *(
            BoundKey(tenants[spec.name].public_keys[token.name], config.key_entry(spec, token))
            for spec in config.tenants
            for token in spec.tokens
        ),
        *(BoundKey(entry.pem, entry) for entry in config.trusted_key_entries()),
    ]


def _telemetry(
    name: str,
    config: InstanceConfig,
    tenants: Mapping[str, Tenant],
    ready: Sequence[pulumi.Resource],
    child: pulumi.ResourceOptions,
) -> Telemetry:
    """The collector shipping the instance's own metrics and logs to `system`."""
    platform = config.platform
    return Telemetry(
        f"{name}-telemetry",
        TelemetryArgs(
            instance=config.instance_name,
            domain=config.domain,
            token=tenants[names.SYSTEM_TENANT].tokens.apply(
                lambda by_name: by_name[names.DEFAULT_TOKEN_NAME]
            ),
            trusted_roots=certificates.STAGING_ROOTS if platform.acme_staging else "",
            image_mirrors=platform.image_mirrors,
            cluster_ready=tuple(ready),
        ),
        child,
    )


def _layout(config: InstanceConfig) -> network_policies.Layout:
    """Where the instance's pods run, as its NetworkPolicies see it."""
    return network_policies.Layout(
        instance=config.instance_name,
        gateway_namespace=names.tenant_namespace(names.SYSTEM_TENANT),
        tenant_namespaces=tuple(names.tenant_namespace(t.name) for t in config.user_tenants),
        backends=network_policies.own_backends(
            config.platform.size, metrics=not config.cortex_url, logs=not config.loki_url
        ),
        telemetry_namespace=charts.ALLOY.namespace if config.platform.telemetry else None,
        grafana_namespaces=tuple(
            names.tenant_namespace(t.name) for t in config.tenants if t.grafana.enabled
        ),
    )


def _grafana(
    name: str,
    tenant: Tenant,
    spec: TenantSpec,
    config: InstanceConfig,
    gateway: Gateway,
    on_the_way: Sequence[pulumi.Resource],
) -> TenantGrafana:
    """The tenant's Grafana, reading with its read-only token through the gateway's
    in-cluster door (`opstrace.grafana`)."""
    token_name = grafana.TOKEN_NAME
    platform = config.platform
    return TenantGrafana(
        name,
        TenantGrafanaArgs(
            tenant=spec.name,
            instance=config.instance_name,
            domain=config.domain,
            spec=spec.grafana,
            namespace=tenant.namespace,
            token=tenant.tokens.apply(lambda tokens: tokens[token_name]),
            token_key_id=tenant.key_ids.apply(lambda ids: ids[token_name]),
            sso=config.grafana_sso,
            client_secret=config.grafana_client_secret,
            gateway_address=gateway.internal_address,
            storage_class=_grafana_storage_class(platform),
            ca_certificates=certificates.STAGING_ROOTS if platform.acme_staging else "",
            mirrors=platform.image_mirrors,
            depends_on=tuple(on_the_way),
        ),
        pulumi.ResourceOptions(parent=tenant),
    )


def _grafana_storage_class(platform: PlatformConfig) -> str:
    """Where a Grafana keeps its disk: in eks mode the program's class, one whose volumes
    `destroy` leaves with `keepDataOnDestroy`; with `existing`, the cluster's default."""
    if not platform.makes_cluster:
        return ""
    return charts.RETAINED_STORAGE_CLASS if platform.keep_data_on_destroy else charts.STORAGE_CLASS


def _tenant_alerting(
    prefix: str,
    tenant: Tenant,
    spec: TenantSpec,
    on_the_way: Sequence[pulumi.Resource],
    trusted_roots: str,
) -> None:
    """The tenant's rules and Alertmanager configuration from the stack file, uploaded
    with its first credential's token (the one every tenant has), each to its ruler
    through the tenant's endpoint of that ruler's service (whose certificate chains to
    `trusted_roots`, if not to the system's CAs)."""
    if spec.rules is None and spec.log_rules is None and spec.alertmanager_config is None:
        return
    endpoint = tenant.endpoints["cortex"]
    first = spec.tokens[0].name
    token = tenant.tokens.apply(lambda tokens: tokens[first])
    opts = pulumi.ResourceOptions(parent=tenant, depends_on=[*on_the_way, tenant.certificate])
    if spec.rules is not None:
        TenantRules(
            f"{prefix}-rules",
            TenantRulesArgs(
                endpoint, spec.name, token, spec.rules.groups, trusted_roots=trusted_roots
            ),
            opts,
        )
    if spec.log_rules is not None:
        TenantRules(
            f"{prefix}-log-rules",
            TenantRulesArgs(
                tenant.endpoints["loki"],
                spec.name,
                token,
                spec.log_rules.groups,
                api=routes.LOKI_RULER_CONFIG_PATH,
                trusted_roots=trusted_roots,
            ),
            opts,
        )
    if spec.alertmanager_config is not None:
        TenantAlertmanagerConfig(
            f"{prefix}-alertmanager-config",
            TenantAlertmanagerConfigArgs(
                endpoint, spec.name, token, spec.alertmanager_config.text, trusted_roots
            ),
            opts,
        )
