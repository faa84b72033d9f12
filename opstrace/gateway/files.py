"""Everything the gateway pods read, rendered in one place from settings and keys.

Pure, no Pulumi: the Gateway component puts these files into ConfigMaps (the
configuration's, and one per key shard, `opstrace.key_shards`), `python -m tools.gateway
render` writes them to a directory, and the tests run them in a real HAProxy, so the
configuration tested is the one the pods get.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Final, TypeVar

from opstrace import data_token, key_shards, keys
from opstrace.gateway import haproxy, maps, sources
from opstrace.gateway.settings import (
    ALLOWED_NETWORKS_MAP,
    BINDINGS_MAP,
    CREDENTIALS_MAP,
    CRT_LIST,
    HAPROXY_CONFIG,
    HOSTS_MAP,
    KEYS_MAP,
    METHODS_MAP,
    NETWORKS_MAP,
    RATE_LIMITS_MAP,
    ROUTES_MAP,
    SCOPES_MAP,
    GatewayConfigError,
    GatewaySettings,
    gateway_tenants,
    key_file_name,
    validate_bindings,
    validate_keys,
)
from sidecar import contract
from sidecar.contract import config_checksum

__all__ = ["config_checksum"]  # the checksum of a file set, defined in the pod's contract

T = TypeVar("T")


@dataclass(frozen=True)
class GatewayFiles:
    """The gateway's files as its ConfigMaps hold them: the configuration's, and each key
    shard's part (its keys' files, and their lines of the key maps and of haproxy.cfg),
    which join into the whole set (`contract.joined`) as the pods' sidecar joins them."""

    base: dict[str, str]
    shards: dict[str, dict[str, str]]
    """Shard (`key_shards.SHARDS`, every one) -> its part; no empty texts."""

    def whole(self) -> dict[str, str]:
        """File name -> content of everything HAProxy reads (but the certificates)."""
        return contract.joined(self.base, (self.shards[shard] for shard in key_shards.SHARDS))

    def checksum(self) -> str:
        """What a pod serving this set reports."""
        return config_checksum(self.whole())


def render_gateway_parts(
    settings: GatewaySettings,
    trusted: Mapping[str, str],
    bindings: Mapping[str, str] = data_token.NO_BINDINGS,
    credentials: Mapping[str, str] = data_token.NO_BINDINGS,
    rate_limits: Mapping[str, int] = MappingProxyType({}),
    egress: Sequence[str] = (),
    shards: Mapping[str, str] = MappingProxyType({}),
) -> GatewayFiles:
    """Everything HAProxy reads (but the certificates), as its configuration's part and
    its key shards' parts.

    `trusted` is the key set (key ID -> PEM); `bindings` maps a key ID to the one tenant
    whose endpoints accept its tokens (keys absent from it are instance-wide);
    `credentials` maps a key ID to the names the access log gives its tokens;
    `rate_limits` a key ID to the requests per second its tokens may make (at each pod);
    `egress` the instance's own outbound addresses (`sources.allowlists`); `shards` a key
    ID to its shard (`key_shards`; by default, the shard of its key ID as holder).
    Deterministic for equal inputs (sorted everywhere), so the checksum of the result
    changes exactly when the behaviour can change, and a shard's part exactly when one
    of its keys does. The certificates are not among the files: they come from each
    tenant's TLS Secret (the pod's sidecar writes them into `certificates_dir` beside
    these).
    """
    checked = validate_keys(trusted)
    tenants = gateway_tenants(settings.tenants)
    bound = validate_bindings(bindings, checked, tenants)
    allowlists = sources.allowlists(
        tenants, settings.instance_networks, settings.tenant_networks, egress
    )
    keyed = partial(_keyed_files, settings, bound, credentials, rate_limits)
    base = {
        **keyed({}),
        HAPROXY_CONFIG: haproxy.haproxy_config(settings),
        HOSTS_MAP: maps.hosts_map(settings, tenants),
        ROUTES_MAP: maps.routes_map(),
        METHODS_MAP: maps.methods_map(),
        SCOPES_MAP: maps.scopes_map(),
        NETWORKS_MAP: sources.networks_map(allowlists),
        ALLOWED_NETWORKS_MAP: sources.allowed_networks_map(allowlists),
        CRT_LIST: maps.crt_list(settings, tenants),
    }
    held: dict[str, dict[str, str]] = {shard: {} for shard in key_shards.SHARDS}
    for kid, pem in checked.items():
        held[shards.get(kid) or key_shards.shard_of(kid)][kid] = pem
    parts = {
        shard: {name: text for name, text in keyed(by_kid).items() if text}
        for shard, by_kid in held.items()
    }
    return GatewayFiles(base, parts)


def _keyed_files(
    settings: GatewaySettings,
    bindings: Mapping[str, str],
    credentials: Mapping[str, str],
    rate_limits: Mapping[str, int],
    trusted: Mapping[str, str],
) -> dict[str, str]:
    """What these keys (in key ID order) add: their files, their lines of the key maps
    and their lines of haproxy.cfg."""
    return {
        HAPROXY_CONFIG: haproxy.key_preloads(settings, trusted),
        KEYS_MAP: maps.keys_map(settings, trusted),
        BINDINGS_MAP: maps.bindings_map(_held(bindings, trusted)),
        CREDENTIALS_MAP: maps.credentials_map(_held(credentials, trusted)),
        RATE_LIMITS_MAP: maps.rate_limits_map(_held(rate_limits, trusted)),
        **{key_file_name(kid): pem for kid, pem in trusted.items()},
    }


def _held(by_kid: Mapping[str, T], trusted: Mapping[str, str]) -> dict[str, T]:
    """The entries of these keys, in key ID order."""
    return {kid: by_kid[kid] for kid in trusted if kid in by_kid}


def render_gateway_files(
    settings: GatewaySettings,
    trusted: Mapping[str, str],
    bindings: Mapping[str, str] = data_token.NO_BINDINGS,
    credentials: Mapping[str, str] = data_token.NO_BINDINGS,
    rate_limits: Mapping[str, int] = MappingProxyType({}),
    egress: Sequence[str] = (),
) -> dict[str, str]:
    """File name -> content of everything HAProxy reads (but the certificates): the
    parts `render_gateway_parts` renders from these arguments, joined."""
    parts = render_gateway_parts(settings, trusted, bindings, credentials, rate_limits, egress)
    return parts.whole()


CONFIG_ROLE: Final = "config"
CONFIG_MAP_ROLES: Final = (CONFIG_ROLE, *(f"keys-{shard}" for shard in key_shards.SHARDS))
"""The gateway's ConfigMaps: its configuration, then one per key shard, in the order the
sidecar is given them and joins them in."""


@dataclass(frozen=True)
class KeyEntry:
    """One trusted key as the gateway needs it."""

    pem: str
    tenant: str | None
    """The one tenant whose endpoints accept its tokens; None: every tenant."""
    name: str
    """The credential's name in the access log (`names.credential_name`)."""
    rate_limit: int = 0
    """Requests per second its tokens may make at each gateway pod; 0: no limit."""
    holder: str = ""
    """What places it in a shard (`key_shards.shard_of`); empty: its key ID."""

    def shard(self) -> str:
        """The shard of its key (known before the key is, where it has a holder)."""
        return key_shards.shard_of(
            self.holder or keys.key_id(keys.validate_public_key_pem(self.pem))
        )


def gateway_files(
    settings: GatewaySettings, entries: Iterable[KeyEntry], egress: Sequence[str] = ()
) -> GatewayFiles:
    """The gateway's files from the instance's keys (and its own outbound addresses): the
    one way from its keys to what its gateway reads, for the Gateway component and for
    the capacity check alike."""
    listed = list(entries)
    pairs = [(entry.pem, entry.tenant) for entry in listed]
    named: dict[str, set[str]] = {}
    limits: dict[str, int] = {}
    shards: dict[str, dict[str, str]] = {}
    for entry in listed:
        kid = keys.key_id(keys.validate_public_key_pem(entry.pem))
        named.setdefault(kid, set()).add(entry.name)
        shards.setdefault(kid, {})[entry.shard()] = entry.name
        if entry.rate_limit:
            # A key shared by tokens (one signing key file) names them all and gets the
            # lowest of their limits.
            limits[kid] = min(limits.get(kid, entry.rate_limit), entry.rate_limit)
    for kid, by_shard in shards.items():
        if len(by_shard) > 1:
            holders = " and ".join(sorted(by_shard.values()))
            raise GatewayConfigError(
                f"key {kid} is the key of {holders}, which are kept apart: list a key once "
                "(a tenant's signing key is trusted with its tokens, not in trustedKeys too)"
            )
    return render_gateway_parts(
        settings,
        keys.key_set(pem for pem, _ in pairs),
        keys.key_bindings(pairs),
        {kid: ",".join(sorted(names)) for kid, names in named.items()},
        limits,
        egress,
        {kid: next(iter(by_shard)) for kid, by_shard in shards.items()},
    )


def shard_part(
    settings: GatewaySettings, entries: Sequence[KeyEntry], shard: str
) -> dict[str, str]:
    """A key shard's part from its keys alone (no keys: an empty part), as
    `gateway_files` of every key renders it: what its ConfigMap holds, known as soon as
    its own keys are."""
    return gateway_files(settings, entries).shards[shard] if entries else {}


def shard_data(part: Mapping[str, str]) -> dict[str, str]:
    """A key shard's ConfigMap data: its part, and the part's checksum."""
    return {**part, contract.CHECKSUM_KEY: config_checksum(part)}


def config_map_data(parts: GatewayFiles) -> dict[str, dict[str, str]]:
    """Role (`CONFIG_MAP_ROLES`) -> ConfigMap data. Each shard's part carries its own
    checksum, and the configuration the whole set's and its parts' in order (the
    manifest, `contract.PARTS_KEY`): a pod joins only parts of the render its
    configuration names, and a key change rewrites its shard and the configuration,
    never the other shards."""
    shards = {f"keys-{shard}": shard_data(part) for shard, part in parts.shards.items()}
    manifest = "".join(f"{data[contract.CHECKSUM_KEY]}\n" for data in shards.values())
    config = {**parts.base, contract.CHECKSUM_KEY: parts.checksum(), contract.PARTS_KEY: manifest}
    return {CONFIG_ROLE: config, **shards}
