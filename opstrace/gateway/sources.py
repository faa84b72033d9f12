"""Who may reach a tenant's endpoints, by client address: the network allowlists
(`dataApiAllowedCidrs`, for the instance and per tenant) as the gateway enforces them.

Pure, no Pulumi. A tenant's allowlist is its own networks within the instance's (the
load balancer keeps every other address out before the gateway sees it), the instance's
when it has none of its own, and none (every address) when neither is set. The system
tenant, never configured, takes the instance's list plus the instance's own egress
addresses (its collector pushes through the public endpoints from there).

HAProxy cannot test an address against a list chosen at run time, so the lists become
two maps that need two lookups per request, however many tenants and networks:
- `networks.map` holds every listed network; `map_ip` gives the longest one holding the
  client's address. The networks holding an address are nested, so every listed
  network that holds it holds that longest one too;
- `allowed-networks.map` has a `<tenant>` line for each tenant with a list, and a
  `<tenant>@<network>` line for each listed network within one of the tenant's.
So a listed tenant accepts the address exactly when `<tenant>@<longest>` is a line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opstrace import names

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWLIST_SEPARATOR: Final = "@"
"""Between tenant and network in `allowed-networks.map` (in neither a tenant name nor a
network)."""
REFUSED_BODY: Final = "client address not allowed for this tenant"
"""The 403 body for a request from outside the tenant's allowlist."""


def network(text: str) -> Network:
    """`text` as a network (ADDRESS/PREFIX, host bits zero); ValueError otherwise."""
    return ipaddress.ip_network(text, strict=True)


def network_problem(text: str) -> str | None:
    """Why `text` is no network `network` takes, or None."""
    try:
        network(text)
    except ValueError:
        return f"{text!r} is not a network: write ADDRESS/PREFIX with the host bits zero"
    return None


def collapsed(networks: Iterable[Network]) -> tuple[str, ...]:
    """The same addresses in the fewest networks, IPv4 first, sorted."""
    listed = list(networks)
    v4 = [n for n in listed if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in listed if isinstance(n, ipaddress.IPv6Network)]
    return tuple(
        str(n) for n in (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))
    )


def within(own: Sequence[str], instance: Sequence[str]) -> tuple[str, ...]:
    """The addresses of `own` that `instance` allows too (either empty: the other)."""
    if not own or not instance:
        return collapsed(network(n) for n in (*own, *instance))
    overlaps = []
    for a in map(network, own):
        for b in map(network, instance):
            if a.version == b.version and a.overlaps(b):
                overlaps.append(a if a.prefixlen >= b.prefixlen else b)
    return collapsed(overlaps)


def allowlists(
    tenants: Sequence[str],
    instance: Sequence[str],
    own: Mapping[str, Sequence[str]],
    egress: Sequence[str] = (),
) -> dict[str, tuple[str, ...]]:
    """Tenant -> the networks its endpoints take requests from; a tenant absent from the
    result takes them from every address. `egress`: the instance's own addresses, which
    the system tenant takes too whenever the instance has a list."""
    lists = {tenant: within(own.get(tenant, ()), instance) for tenant in tenants}
    if instance and names.SYSTEM_TENANT in lists:
        lists[names.SYSTEM_TENANT] = collapsed(
            network(n) for n in (*lists[names.SYSTEM_TENANT], *egress)
        )
    return {tenant: networks for tenant, networks in sorted(lists.items()) if networks}


def networks_map(lists: Mapping[str, Sequence[str]]) -> str:
    """Every listed network, mapped to itself: `map_ip` returns the longest that holds
    the client's address."""
    every = {n for networks in lists.values() for n in networks}
    return "".join(f"{n} {n}\n" for n in sorted(every))


def allowed_networks_map(lists: Mapping[str, Sequence[str]]) -> str:
    """`<tenant>` for each listed tenant; `<tenant>@<network>` for each listed network
    that lies within one of the tenant's networks (found by walking each network's
    supernets, at most 128: linear in the networks, whatever the tenants)."""
    listing: dict[Network, set[str]] = {}
    for tenant, networks in lists.items():
        for text in networks:
            listing.setdefault(network(text), set()).add(tenant)
    lines = [f"{tenant} {len(networks)}\n" for tenant, networks in lists.items()]
    for candidate in listing:
        holders = set(listing[candidate])
        for prefix in range(candidate.prefixlen - 1, -1, -1):
            holders |= listing.get(candidate.supernet(new_prefix=prefix), set())
        lines += [f"{tenant}{ALLOWLIST_SEPARATOR}{candidate} 1\n" for tenant in holders]
    return "".join(sorted(lines))
