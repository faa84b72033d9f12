"""Name rules for instances and tenants, and the DNS names derived from them.

Pure functions, no Pulumi: the same rules serve config validation, the components
and the gateway renderer. The rules are Opstrace's (see the compat reference),
narrowed where Opstrace would accept a name that cannot become a valid hostname.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

SYSTEM_TENANT: Final = "system"
"""The tenant every instance has; it cannot be configured, renamed or removed."""

DEFAULT_TOKEN_NAME: Final = "default"
"""The credential every tenant gets unless its config lists token names."""

INSTANCE_NAME_MAX: Final = 23
DNS_LABEL_MAX: Final = 63
DNS_NAME_MAX: Final = 253

ENDPOINT_SERVICES: Final = ("cortex", "loki")
"""The data API services each tenant gets an endpoint for, in a stable order."""
GRAFANA_SERVICE: Final = "grafana"
"""The host of a tenant's own Grafana (`grafana.<tenant>.<instance>.<domain>`), served by
the gateway like the data API hosts, unless the tenant has `grafana: false`."""

TENANT_NAMESPACE_SUFFIX: Final = "-tenant"
"""Opstrace's Kubernetes namespace convention: tenant `prod` lives in `prod-tenant`."""

# Opstrace's instance rule is ^[a-z0-9-_]+$; `_` and an outer `-` are refused here
# because the name becomes a DNS label that certificates must be able to carry.
# All rules use fullmatch: `$` alone would let a trailing newline through.
_INSTANCE_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TENANT_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TOKEN_RE: Final = re.compile(r"^[a-z0-9]+$")
DNS_LABEL_PATTERN: Final = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
"""A DNS label's letters (RFC 1123, lowercase): its length is checked apart."""
_DNS_LABEL_RE: Final = re.compile(rf"^{DNS_LABEL_PATTERN}$")

INSTANCE_RULE: Final = (
    f"use 1 to {INSTANCE_NAME_MAX} lowercase letters, digits and inner hyphens "
    r"(rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and outer '-' cannot "
    "appear in a DNS name)"
)
TENANT_RULE: Final = (
    r"use lowercase letters, digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)"
)
"""Opstrace's rule had no hyphen, but its own documentation names tenants `team-revenue`."""
TOKEN_RULE: Final = f"use 1 to {DNS_LABEL_MAX} lowercase letters and digits (rule ^[a-z0-9]+$)"
"""No hyphen, unlike tenants: `<tenant>-token-<token>` must name exactly one credential."""

RESERVED_DOMAINS: Final = ("example", "invalid", "localhost", "test", "local")
"""Top-level names reserved by RFC 2606 and RFC 6761 (and mDNS' `local`)."""
RESERVED_SECOND_LEVEL: Final = ("example.com", "example.net", "example.org")


def instance_name_problem(name: str) -> str | None:
    """Why `name` cannot be an instance name, or None if it can."""
    if not 1 <= len(name) <= INSTANCE_NAME_MAX or not _INSTANCE_RE.fullmatch(name):
        return f"{name!r} is not a valid instance name: {INSTANCE_RULE}"
    return None


def tenant_name_problem(name: str) -> str | None:
    """Why `name` cannot be a tenant name, or None if it can."""
    if not _TENANT_RE.fullmatch(name):
        return f"{name!r} is not a valid tenant name: {TENANT_RULE}"
    limit = DNS_LABEL_MAX - len(TENANT_NAMESPACE_SUFFIX)
    if len(name) > limit:
        return (
            f"{name!r} is not a valid tenant name: at most {limit} characters, "
            f"so that its namespace {name + TENANT_NAMESPACE_SUFFIX!r} is a valid "
            f"Kubernetes name (63 characters)"
        )
    return None


def credential_name(tenant: str, token_name: str) -> str:
    """How the gateway's access log names a minted credential: `<tenant>/<token name>`."""
    return f"{tenant}/{token_name}"


def trusted_key_name(position: int) -> str:
    """How the gateway's access log names a `trustedKeys` entry: its place in the list."""
    return f"trustedKeys[{position}]"


def token_name_problem(name: str) -> str | None:
    """Why `name` cannot be a token (credential) name, or None if it can."""
    if not _TOKEN_RE.fullmatch(name) or len(name) > DNS_LABEL_MAX:
        return f"{name!r} is not a valid token name: {TOKEN_RULE}"
    return None


def reserved_domain_problem(domain: str) -> str | None:
    """Why Route53 cannot host a zone under `domain` (a reserved name), or None; without
    the fix, which depends on where it is read (`rules.stack.placeholder_domain_problem`)."""
    labels = domain.split(".")
    if labels[-1] in RESERVED_DOMAINS or ".".join(labels[-2:]) in RESERVED_SECOND_LEVEL:
        return (
            f"{domain!r} is a placeholder: it is reserved (RFC 2606/6761), so no one owns it "
            "and Route53 refuses to host it"
        )
    return None


def domain_problem(domain: str) -> str | None:
    """Why `domain` cannot be the base domain, or None if it can."""
    if len(domain) > DNS_NAME_MAX:
        return f"{domain!r} is not a valid domain: longer than {DNS_NAME_MAX} characters"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_is_dns_label(label) for label in labels):
        return (
            f"{domain!r} is not a valid domain: use dot-separated labels of lowercase "
            "letters, digits and inner hyphens, at least two labels, no trailing dot"
        )
    return None


def hostname_problem(hostname: str) -> str | None:
    """Why `hostname` is not a valid DNS hostname, or None if it is."""
    if len(hostname) > DNS_NAME_MAX:
        return f"{hostname!r} is longer than {DNS_NAME_MAX} characters"
    for label in hostname.split("."):
        if not _is_dns_label(label):
            return (
                f"{hostname!r} has the label {label!r}, which is not a valid DNS label "
                f"(1 to {DNS_LABEL_MAX} letters, digits and inner hyphens)"
            )
    return None


def _is_dns_label(label: str) -> bool:
    return len(label) <= DNS_LABEL_MAX and bool(_DNS_LABEL_RE.fullmatch(label))


def instance_dns_name(instance: str, domain: str) -> str:
    """The instance's DNS name and hosted zone: `<instance>.<domain>`."""
    return f"{instance}.{domain}"


def endpoint_host(service: str, tenant: str, instance: str, domain: str) -> str:
    """A tenant's data API host, e.g. `cortex.prod.acme.example.com`."""
    return f"{service}.{tenant}.{instance_dns_name(instance, domain)}"


def endpoint_hosts(tenant: str, instance: str, domain: str) -> tuple[str, ...]:
    """Every data API host of a tenant (the names its certificate must carry)."""
    return tuple(endpoint_host(service, tenant, instance, domain) for service in ENDPOINT_SERVICES)


def tenant_services(grafana: bool) -> tuple[str, ...]:
    """The hosts' first labels of a tenant: the data API's, then its Grafana's if it has one."""
    return (*ENDPOINT_SERVICES, GRAFANA_SERVICE) if grafana else ENDPOINT_SERVICES


def tenant_hosts(tenant: str, instance: str, domain: str, grafana: bool) -> tuple[str, ...]:
    """Every host of a tenant: the names its certificate carries and its DNS records."""
    return tuple(
        endpoint_host(service, tenant, instance, domain) for service in tenant_services(grafana)
    )


def tenant_endpoints(
    tenant: str, instance: str, domain: str, grafana: bool = False
) -> dict[str, str]:
    """Service name -> `https://` URL of each endpoint of a tenant (its Grafana's too)."""
    return {
        service: f"https://{endpoint_host(service, tenant, instance, domain)}"
        for service in tenant_services(grafana)
    }


def endpoint_records(
    tenants: Mapping[str, bool], instance: str, domain: str, target: str
) -> list[dict[str, str]]:
    """The DNS records every tenant host needs (tenant -> whether it has a Grafana): a
    CNAME to the gateway's address."""
    return [
        {"name": host, "type": "CNAME", "value": target}
        for tenant, grafana in tenants.items()
        for host in tenant_hosts(tenant, instance, domain, grafana)
    ]


def load_balancer_name(hostname: str) -> str:
    """An AWS load balancer's name from its DNS name (`<name>-<id>.elb.<region>...`)."""
    first_label = hostname.split(".", 1)[0]
    name, dash, _ = first_label.rpartition("-")
    if not dash or ".elb." not in hostname:
        raise ValueError(f"{hostname!r} is not an AWS load balancer's DNS name")
    return name


def tenant_namespace(tenant: str) -> str:
    """The Kubernetes namespace of a tenant (Opstrace's `<tenant>-tenant`)."""
    return tenant + TENANT_NAMESPACE_SUFFIX


def audience(instance: str) -> str:
    """The `aud` claim of every token of an instance."""
    return f"opstrace-cluster-{instance}"


def subject(tenant: str) -> str:
    """The `sub` claim of every token of a tenant."""
    return f"tenant-{tenant}"
