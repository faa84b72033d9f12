"""The data API's network allowlists in the stack file: `dataApiAllowedCidrs` for the
instance and per tenant, parsed and checked against what the load balancer can enforce.

Pure, no Pulumi; what the lists mean at the gateway is `opstrace.gateway.sources`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, Final

from opstrace.config.platform import PRIVATE_NETWORKS
from opstrace.config.read import ConfigError
from opstrace.gateway import sources

KEY: Final = "dataApiAllowedCidrs"
EXAMPLE: Final = "203.0.113.0/24"
MAX_LOAD_BALANCER_NETWORKS: Final = 24
"""The instance's networks on an NLB: its security group takes 60 inbound rules (the
default quota), and the controller makes one per network and listener port (443, 80),
leaving room for six NAT gateways' addresses."""


def parse_networks(field: str, raw: Any, owner: str = "") -> tuple[str, ...]:
    """A list of networks (a YAML list, or text with commas), sorted and each once."""
    entries = [e for e in raw.split(",") if e.strip()] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(
            f"{field}{owner}: expected networks (a list, or text with commas), got {raw!r}"
        )
    parsed = []
    for entry in (e.strip() for e in entries):
        if problem := sources.network_problem(entry):
            raise ConfigError(f"{field}{owner}: {problem}, e.g. {EXAMPLE}")
        parsed.append(sources.network(entry))
    if not parsed and not isinstance(raw, str):
        raise ConfigError(
            f"{field}{owner}: empty: list at least one network, or leave it out for every address"
        )
    return tuple(str(n) for n in sorted(set(parsed), key=lambda n: (n.version, n)))


def load_balancer_problem(networks: Sequence[str], load_balancer: str) -> str | None:
    """Why the load balancer cannot let these networks in (or the gateway would never see
    them), or None."""
    if load_balancer != "aws":
        return None
    for text in networks:
        network = sources.network(text)
        if not isinstance(network, ipaddress.IPv4Network):
            return f"{text!r} is IPv6, but the NLB serves IPv4 only: list IPv4 networks"
        if any(network.subnet_of(block) for block in PRIVATE_NETWORKS):
            return (
                f"{text!r} is a private network, which never reaches the internet-facing "
                "NLB (clients in the VPC come from its NAT gateways' addresses, which the "
                "system tenant takes already): list public networks"
            )
    return None


def instance_networks(raw: Any, load_balancer: str) -> tuple[str, ...]:
    """The instance's `dataApiAllowedCidrs`: () for every address."""
    networks = parse_networks(KEY, raw)
    if problem := load_balancer_problem(networks, load_balancer):
        raise ConfigError(f"{KEY}: {problem}")
    if load_balancer == "aws" and len(networks) > MAX_LOAD_BALANCER_NETWORKS:
        raise ConfigError(
            f"{KEY}: {len(networks)} networks, but the NLB's security group takes at most "
            f"{MAX_LOAD_BALANCER_NETWORKS} (two rules each, 60 rules): merge them into "
            "wider ones, or set the rest per tenant"
        )
    return networks


def tenant_networks_problem(own: Sequence[str], instance: Sequence[str]) -> str | None:
    """Why a tenant's list lets no address in, given the instance's, or None."""
    if sources.within(own, instance):
        return None
    return (
        f"none of {', '.join(own)} lies within the instance's {KEY} "
        f"({', '.join(instance)}): no address could reach the tenant; list networks "
        "within those"
    )
