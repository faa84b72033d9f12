"""A tenant: its Kubernetes namespace and its data API credentials."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.rules import names
from components.rules.config import TenantSpec
from components.tokens import TenantToken, TenantTokenArgs


@dataclass(frozen=True)
class TenantArgs:
    """One tenant of an instance, with the instance-wide token settings."""

    instance: str
    domain: str
    spec: TenantSpec
    key_bits: int
    token_lifetime_seconds: int


class Tenant(pulumi.ComponentResource):
    """A unit of isolation: a namespace, endpoints, and one token per credential."""

    namespace: pulumi.Output[str]
    endpoints: dict[str, str]
    """Service (`cortex`, `loki`) -> endpoint URL; known without deploying anything."""
    tokens: pulumi.Output[dict[str, str]]
    """Token name -> token; always a secret."""
    public_keys: list[pulumi.Output[str]]
    """The public key of each credential, for the trust store."""
    key_ids: pulumi.Output[dict[str, str]]
    """Token name -> key ID."""

    def __init__(
        self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Tenant", name, None, opts)
        tenant = args.spec.name
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=names.tenant_namespace(tenant),
                labels={
                    "app.kubernetes.io/part-of": "opstrace",
                    "opstrace.io/instance": args.instance,
                    "opstrace.io/tenant": tenant,
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        credentials = {
            token.name: TenantToken(
                f"{name}-token-{token.name}",
                TenantTokenArgs(
                    instance=args.instance,
                    tenant=tenant,
                    token_name=token.name,
                    key_bits=args.key_bits,
                    lifetime_seconds=args.token_lifetime_seconds,
                    rotation=token.rotation,
                    private_key_dir=token.export_keys_to,
                    signing_key_file=token.signing_key_file,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            for token in args.spec.tokens
        }
        self.namespace = namespace.metadata.apply(lambda m: m.name or "")
        self.endpoints = names.tenant_endpoints(tenant, args.instance, args.domain)
        self.tokens = pulumi.Output.secret(
            pulumi.Output.all(**{n: c.token for n, c in credentials.items()})
        )
        self.public_keys = [c.public_key_pem for c in credentials.values()]
        self.key_ids = pulumi.Output.all(**{n: c.key_id for n, c in credentials.items()})
        self.register_outputs(
            {
                "namespace": self.namespace,
                "endpoints": self.endpoints,
                "tokens": self.tokens,
                "key_ids": self.key_ids,
            }
        )
