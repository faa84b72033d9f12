"""The instance: everything one Opstrace-style deployment consists of."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.dns import Dns, DnsArgs
from components.gateway import Gateway, GatewayArgs
from components.name_lock import NameLock
from components.rules import names
from components.rules.config import InstanceConfig
from components.tenant import Tenant, TenantArgs
from components.trust_store import TrustStore, TrustStoreArgs


@dataclass(frozen=True)
class InstanceArgs:
    """The validated stack configuration (see `components.rules.config`)."""

    config: InstanceConfig


class Instance(pulumi.ComponentResource):
    """An instance with its system and user tenants, trust store, gateway and DNS.

    Adding a tenant adds that tenant's resources and changes only the trust store
    (and the gateway configuration rendered from it) among existing resources.
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

    def __init__(
        self, name: str, args: InstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Instance", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        NameLock(config.instance_name, child)
        tenants = {
            spec.name: Tenant(
                f"{name}-tenant-{spec.name}",
                TenantArgs(
                    instance=config.instance_name,
                    domain=config.domain,
                    spec=spec,
                    key_bits=config.key_bits,
                    token_lifetime_seconds=config.token_lifetime_seconds,
                ),
                child,
            )
            for spec in config.tenants
        }
        system_namespace = tenants[names.SYSTEM_TENANT].namespace
        trust_store = TrustStore(
            f"{name}-trust-store",
            TrustStoreArgs(
                namespace=system_namespace,
                public_keys=[
                    *(key for tenant in tenants.values() for key in tenant.public_keys),
                    *config.trusted_keys,
                ],
            ),
            child,
        )
        gateway = Gateway(
            f"{name}-gateway",
            GatewayArgs(
                instance=config.instance_name,
                domain=config.domain,
                tenants=list(tenants),
                key_set=trust_store.key_set,
                namespace=system_namespace,
                cortex_url=config.cortex_url,
                loki_url=config.loki_url,
                replicas=config.gateway_replicas,
            ),
            child,
        )
        if config.dns == "route53":
            Dns(
                f"{name}-dns",
                DnsArgs(
                    instance=config.instance_name,
                    domain=config.domain,
                    tenants=list(tenants),
                    target=gateway.load_balancer_hostname,
                    parent_zone_id=config.parent_zone_id,
                ),
                child,
            )
        self.dns_name = names.instance_dns_name(config.instance_name, config.domain)
        self.tenant_names = list(tenants)
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
                self.tenant_names, config.instance_name, config.domain, target
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
            }
        )
