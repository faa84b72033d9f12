"""Whether the instance zone is delegated: its NS records as its parent zone serves them.

cert-manager proves each tenant certificate's names with a TXT record in the instance
zone (DNS-01); Let's Encrypt finds that record only once the parent zone (the operator's
`<domain>`, in Route53 or at another DNS provider) delegates `<instance>.<domain>` to the
instance zone's name servers. Without it every Certificate waits until `up` times out.
So `up` waits for the delegation before it requests any certificate, and says which
records are missing when it gives up.

The check asks the parent zone's own name servers (found through the resolver), not a
recursive resolver: those would remember a "no such name" answer from before the records
were added for as long as the parent's SOA says (often an hour), and the check would not
see a delegation that Let's Encrypt, which has never asked, sees at once. Where the
parent's servers cannot be reached from this machine (a network that allows DNS only to
its own resolver), the resolver's answer is taken instead.

Resolution goes through the machine's resolver (`/etc/resolv.conf`), or through the
server `SERVER_VARIABLE` names (`host:port`; its port is then used for the parent's
servers too): the tests' local authoritative server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from opstrace.errors import OpstraceError

SERVER_VARIABLE: Final = "OPSTRACE_DNS_SERVER"
WAIT_SECONDS: Final = 20 * 60
"""How long `up` waits for the delegation: the cluster, made meanwhile, takes about as
long, so that records added when `up` prints them are in time."""
INTERVAL_SECONDS: Final = 15
QUERY_TIMEOUT_SECONDS: Final = 3.0
DELEGATION_TTL: Final = 3600
"""An hour, not the usual two days: a delegation that is still being set up (or fixed)
reaches resolvers quickly. Raise it once the instance is settled, if you like."""


class DelegationMissing(OpstraceError):
    """Raised when the instance zone is still not delegated after the wait."""


@dataclass(frozen=True)
class Servers:
    """Where lookups go: a resolver (None: the machine's) and the port of every server."""

    resolver: str | None = None
    port: int = 53

    @classmethod
    def from_environment(cls) -> Servers:
        named = os.environ.get(SERVER_VARIABLE, "").strip()
        if not named:
            return cls()
        host, _, port = named.rpartition(":")
        return cls(host, int(port))

    def recursive(self) -> dns.resolver.Resolver:
        if self.resolver is None:
            resolver = dns.resolver.Resolver()
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [self.resolver]
        resolver.port = self.port
        resolver.lifetime = QUERY_TIMEOUT_SECONDS * 2
        return resolver


def parent_candidates(domain: str) -> list[str]:
    """Where the instance zone `<instance>.<domain>` can be delegated from: the domain's
    own zone, else a parent domain's (never a top-level domain)."""
    labels = normalized(domain).split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def normalized(server: str) -> str:
    return server.strip().rstrip(".").lower()


def records_to_add(zone: str, name_servers: Iterable[str]) -> str:
    """The NS records the parent zone needs, as one line (zone-file style)."""
    servers = " ".join(f"{normalized(s)}." for s in sorted(name_servers, key=normalized))
    return f"{normalized(zone)}. {DELEGATION_TTL} IN NS {servers}"


def preview_notice(
    domain: str, zone: str, name_servers: Sequence[str] | None, seen: Sequence[str] | None
) -> str | None:
    """What a preview says of a zone the operator delegates elsewhere: the records to
    add (`name_servers`, None while the zone is still to be made), or None once the last
    `up` has `seen` the delegation to them."""
    wait = f"waits up to {WAIT_SECONDS // 60} minutes for them before it requests any certificate"
    if name_servers is None:
        return (
            f"dns: this account has no Route53 zone of {domain} to delegate {zone} from: add "
            f"NS records for {zone} at your DNS provider; `up` makes the zone, names the "
            f"records here, and {wait}"
        )
    if seen is not None and set(map(normalized, seen)) == set(map(normalized, name_servers)):
        return None
    return (
        f"dns: add these NS records at your DNS provider (this account has no Route53 zone of "
        f"{domain}): {records_to_add(zone, name_servers)}; `up` {wait}"
    )


def delegated_to(zone: str, servers: Servers) -> set[str]:
    """The name servers the parent of `zone` delegates it to (empty: none)."""
    resolver = servers.recursive()
    child = dns.name.from_text(zone)
    parent = dns.resolver.zone_for_name(child.parent(), resolver=resolver)
    addresses = [
        address.to_text()
        for ns in resolver.resolve(parent, "NS")
        for address in resolver.resolve(ns.target, "A")
    ]
    query = dns.message.make_query(child, dns.rdatatype.NS)
    query.flags &= ~dns.flags.RD
    for address in addresses:
        try:
            answer, _ = dns.query.udp_with_fallback(
                query, address, timeout=QUERY_TIMEOUT_SECONDS, port=servers.port
            )
        except (dns.exception.Timeout, OSError):
            continue
        if answer.rcode() == dns.rcode.NXDOMAIN:
            return set()
        return {
            normalized(record.target.to_text())
            for section in (answer.answer, answer.authority)
            for rrset in section
            if rrset.name == child and rrset.rdtype == dns.rdatatype.NS
            for record in rrset
        }
    # The parent's servers are out of reach: what the resolver has.
    try:
        return {normalized(r.target.to_text()) for r in resolver.resolve(child, "NS")}
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return set()


@dataclass(frozen=True)
class Check:
    """What the parent zone delegates, against what it should."""

    zone: str
    expected: frozenset[str]
    seen: frozenset[str]

    @property
    def done(self) -> bool:
        return self.seen == self.expected

    def problem(self, waited: int) -> str:
        """The one line that ends `up` when the wait gave up."""
        missing = self.expected - self.seen
        wrong = sorted(self.seen - self.expected)
        parts = [f"add these NS records at your DNS provider: {records_to_add(self.zone, missing)}"]
        if wrong:
            parts.append(f"and remove the NS records to {', '.join(wrong)}")
        return (
            f"dns: {self.zone} is not delegated to its Route53 zone after {_duration(waited)} "
            f"of waiting, so no certificate can be issued: {' '.join(parts)}; then run up again"
        )


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def check(zone: str, expected: Sequence[str], servers: Servers) -> Check:
    try:
        seen = delegated_to(zone, servers)
    except dns.exception.DNSException:
        seen = set()
    return Check(zone, frozenset(map(normalized, expected)), frozenset(seen))


def wait_for_delegation(
    zone: str,
    expected: Sequence[str],
    servers: Servers,
    *,
    timeout: float = WAIT_SECONDS,
    interval: float = INTERVAL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Check:
    """Check until the parent delegates `zone` to `expected`, for at most `timeout`
    seconds; DelegationMissing (naming the records) when it does not."""
    start = clock()
    while True:
        result = check(zone, expected, servers)
        if result.done:
            return result
        waited = clock() - start
        if waited >= timeout:
            raise DelegationMissing(result.problem(int(waited)))
        sleep(min(interval, timeout - waited))
