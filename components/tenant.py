"""A tenant: its Kubernetes namespace and its data API credentials."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import pulumi
import pulumi_kubernetes as k8s

from components.tokens import TenantToken, TenantTokenArgs
from opstrace import certificates, data_token, names, scopes
from opstrace.config.schema import TenantSpec


@dataclass(frozen=True)
class TenantArgs:
    """One tenant of an instance, with the instance-wide token and certificate settings."""

    instance: str
    domain: str
    spec: TenantSpec
    key_bits: int
    token_lifetime_seconds: int
    certificate_issuer: str
    """The cert-manager ClusterIssuer of the tenant's endpoint certificate."""
    gateway_namespace: pulumi.Input[str] | None = None
    """Where the gateway (and so the certificate) lives; None: this tenant's namespace
    (the system tenant's)."""
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels of the tenant's namespace (the system tenant's: readiness gates)."""
    certificate_depends_on: Sequence[pulumi.Resource] = ()
    """cert-manager and the issuer: the certificate is made after them, deleted before."""


class Tenant(pulumi.ComponentResource):
    """A unit of isolation: a namespace, endpoints, and one token per credential."""

    namespace: pulumi.Output[str]
    endpoints: dict[str, str]
    """Service (`cortex`, `loki`) -> endpoint URL; known without deploying anything."""
    tokens: pulumi.Output[dict[str, str]]
    """Token name -> token; always a secret."""
    public_keys: dict[str, pulumi.Output[str]]
    """Token name -> the public key of its credential, for the trust store."""
    key_ids: pulumi.Output[dict[str, str]]
    """Token name -> key ID."""
    token_expiry: pulumi.Output[dict[str, str]]
    """Token name -> expiry time (ISO 8601 UTC); not secret."""
    certificate: pulumi.Resource
    """The endpoints' certificate; `pulumi up` waits until it is issued."""
    certificate_secret: str
    """The Secret the certificate is in (`tls.crt`, `tls.key`)."""

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
                    **args.namespace_labels,
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
                    scope=scopes.claim_value(token.scopes),
                ),
                pulumi.ResourceOptions(parent=self),
            )
            for token in args.spec.tokens
        }
        for token_name, credential in credentials.items():
            credential.expires_at.apply(partial(_report_expiry, tenant, token_name, credential))
        self.namespace = namespace.metadata.apply(lambda m: m.name or "")
        gateway_namespace = args.gateway_namespace or self.namespace
        manifest = pulumi.Output.from_input(gateway_namespace).apply(
            lambda where: certificates.tenant_certificate(
                tenant,
                args.instance,
                args.domain,
                where,
                args.certificate_issuer,
                grafana=args.spec.grafana.enabled,
            )
        )
        self.certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version=certificates.API_VERSION,
            kind="Certificate",
            metadata=manifest.apply(lambda doc: doc["metadata"]),
            spec=manifest.apply(lambda doc: doc["spec"]),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[namespace, *args.certificate_depends_on]
            ),
        )
        self.certificate_secret = certificates.certificate_secret(tenant)
        self.endpoints = names.tenant_endpoints(
            tenant, args.instance, args.domain, grafana=args.spec.grafana.enabled
        )
        self.tokens = pulumi.Output.secret(
            pulumi.Output.all(**{n: c.token for n, c in credentials.items()})
        )
        self.public_keys = {n: c.public_key_pem for n, c in credentials.items()}
        self.key_ids = pulumi.Output.all(**{n: c.key_id for n, c in credentials.items()})
        self.token_expiry = pulumi.Output.all(
            **{n: c.expires_at.apply(_timestamp) for n, c in credentials.items()}
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "endpoints": self.endpoints,
                "tokens": self.tokens,
                "key_ids": self.key_ids,
                "token_expiry": self.token_expiry,
            }
        )


def _timestamp(expires_at: float) -> str:
    # Numbers come back from the engine as floats.
    return data_token.timestamp(int(expires_at))


def _report_expiry(
    tenant: str, token_name: str, credential: TenantToken, expires_at: float
) -> None:
    """A warning in every preview and update when the token expires within 30 days, an
    error once it has expired (a 401 on every request is an outage, not a detail)."""
    notice = data_token.expiry_notice(tenant, token_name, int(expires_at), int(time.time()))
    if notice is not None:
        report = pulumi.log.error if notice.expired else pulumi.log.warn
        report(notice.message, resource=credential)
