"""Everything the gateway pods read, rendered in one place from settings and keys.

Pure, no Pulumi: the Gateway component puts these files into ConfigMaps, `python -m
tools.gateway render` writes them to a directory, and the tests run them in a real
HAProxy, so the configuration tested is the one the pods get.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from opstrace import data_token, keys
from opstrace.gateway import haproxy, maps, sources
from opstrace.gateway.settings import (
    ALLOWED_NETWORKS_MAP,
    BINDINGS_MAP,
    CREDENTIALS_MAP,
    CRT_LIST,
    HAPROXY_CONFIG,
    HOSTS_MAP,
    KEY_FILE_PREFIX,
    KEYS_MAP,
    METHODS_MAP,
    NETWORKS_MAP,
    RATE_LIMITS_MAP,
    ROUTES_MAP,
    SCOPES_MAP,
    GatewaySettings,
    gateway_tenants,
    key_file_name,
    validate_bindings,
    validate_keys,
)
from sidecar import contract


def render_gateway_files(
    settings: GatewaySettings,
    trusted: Mapping[str, str],
    bindings: Mapping[str, str] = data_token.NO_BINDINGS,
    credentials: Mapping[str, str] = data_token.NO_BINDINGS,
    rate_limits: Mapping[str, int] = MappingProxyType({}),
    egress: Sequence[str] = (),
) -> dict[str, str]:
    """File name -> content of everything HAProxy reads (but the certificates).

    `trusted` is the key set (key ID -> PEM); `bindings` maps a key ID to the one tenant
    whose endpoints accept its tokens (keys absent from it are instance-wide);
    `credentials` maps a key ID to the names the access log gives its tokens;
    `rate_limits` a key ID to the requests per second its tokens may make (at each pod);
    `egress` the instance's own outbound addresses (`sources.allowlists`).
    Deterministic for equal inputs (sorted everywhere), so the checksum of the result
    changes exactly when the behaviour can change. The certificates are not among the
    files: they come from each tenant's TLS Secret (the pod's sidecar writes them into
    `certificates_dir` beside these).
    """
    checked = validate_keys(trusted)
    tenants = gateway_tenants(settings.tenants)
    bound = validate_bindings(bindings, checked, tenants)
    allowlists = sources.allowlists(
        tenants, settings.instance_networks, settings.tenant_networks, egress
    )
    files = {
        HAPROXY_CONFIG: haproxy.haproxy_config(settings, checked),
        HOSTS_MAP: maps.hosts_map(settings, tenants),
        KEYS_MAP: maps.keys_map(settings, checked),
        BINDINGS_MAP: maps.bindings_map(bound),
        CREDENTIALS_MAP: maps.credentials_map(
            {kid: name for kid, name in credentials.items() if kid in checked}
        ),
        RATE_LIMITS_MAP: maps.rate_limits_map(
            {kid: limit for kid, limit in rate_limits.items() if kid in checked}
        ),
        ROUTES_MAP: maps.routes_map(),
        METHODS_MAP: maps.methods_map(),
        SCOPES_MAP: maps.scopes_map(),
        NETWORKS_MAP: sources.networks_map(allowlists),
        ALLOWED_NETWORKS_MAP: sources.allowed_networks_map(allowlists),
        CRT_LIST: maps.crt_list(settings, tenants),
    }
    files.update({key_file_name(kid): pem for kid, pem in checked.items()})
    return files


def config_checksum(files: Mapping[str, str]) -> str:
    """SHA-256 over file names and contents, in name order."""
    digest = hashlib.sha256()
    for file_name, content in sorted(files.items()):
        for part in (file_name, content):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


CONFIG_MAP_ROLES: Final = ("config", "keys")
"""The gateway's files come in two ConfigMaps: the configuration and maps, and one file
per trusted key, so that each key is stored once and about 2,000 RSA-2048 keys fit."""


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


def gateway_files(
    settings: GatewaySettings, entries: Iterable[KeyEntry], egress: Sequence[str] = ()
) -> dict[str, str]:
    """The gateway's files from the instance's keys (and its own outbound addresses): the
    one way from its keys to what its gateway reads, for the Gateway component and for
    the capacity check alike."""
    listed = list(entries)
    pairs = [(entry.pem, entry.tenant) for entry in listed]
    named: dict[str, set[str]] = {}
    limits: dict[str, int] = {}
    for entry in listed:
        kid = keys.key_id(keys.validate_public_key_pem(entry.pem))
        named.setdefault(kid, set()).add(entry.name)
        if entry.rate_limit:
            # A key shared by tokens (one signing key file) names them all and gets the
            # lowest of their limits.
            limits[kid] = min(limits.get(kid, entry.rate_limit), entry.rate_limit)
    return render_gateway_files(
        settings,
        keys.key_set(pem for pem, _ in pairs),
        keys.key_bindings(pairs),
        {kid: ",".join(sorted(names)) for kid, names in named.items()},
        limits,
        egress,
    )


def config_map_data(files: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Role (`config`, `keys`) -> ConfigMap data: the rendered files split in two, each
    half carrying the checksum of the whole, so that the pods' sidecar loads the two
    halves of one render only (`contract.CHECKSUM_KEY`)."""
    checksum = config_checksum(files)
    split: dict[str, dict[str, str]] = {role: {} for role in CONFIG_MAP_ROLES}
    for name, content in sorted(files.items()):
        split["keys" if name.startswith(KEY_FILE_PREFIX) else "config"][name] = content
    for data in split.values():
        data[contract.CHECKSUM_KEY] = checksum
    return split
