"""What each ConfigMap of the instance holds, and the one size rule they share.

The trust store is two ConfigMaps (Opstrace's key set; a JWKS with the same keys) and
the gateway two (its configuration and maps; one file per trusted key), so that each
key is stored once per ConfigMap and about 2,000 RSA-2048 credentials fit. The size
rule is checked twice: on the configuration before anything is registered
(`capacity_problem`, with stand-in keys of the configured sizes, which give exactly the
real documents' sizes), and on the real documents (`size_problem`) as the last guard.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Final

from opstrace import keys
from opstrace.errors import OpstraceError
from opstrace.gateway import files as gateway_files
from opstrace.gateway.settings import GatewaySettings

CONFIGMAP_MAX_BYTES: Final = 1024 * 1024
"""Kubernetes refuses a ConfigMap whose keys and values exceed 1 MiB together."""

TRUST_STORE_NAME: Final = "opstrace-trust-store"
"""The trust store's fixed name: a stable contract for whatever reads the key set."""
JWKS_NAME: Final = "opstrace-trust-store-jwks"
JWKS_FILE: Final = "jwks.json"


class CapacityError(OpstraceError):
    """Raised when keys do not fit the ConfigMaps that must hold them."""


def checked_data(what: str, data: Mapping[str, str]) -> dict[str, str]:
    """`data` if ConfigMap `what` can hold it; else CapacityError (the config check
    should have refused the keys already: this is the last guard)."""
    if problem := size_problem(what, data):
        raise CapacityError(problem)
    return dict(data)


def trust_store_data(key_set: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """ConfigMap name -> data: the key set in Opstrace's format, and the same keys as JWKS."""
    return {
        TRUST_STORE_NAME: {keys.KEYSET_ENV_NAME: keys.key_set_json(key_set)},
        JWKS_NAME: {JWKS_FILE: json.dumps(keys.jwks(key_set), indent=2, sort_keys=True) + "\n"},
    }


def data_size(data: Mapping[str, str]) -> int:
    """Bytes of a ConfigMap's data as the API server counts them (keys and values)."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in data.items())


def size_problem(what: str, data: Mapping[str, str]) -> str | None:
    """Why ConfigMap `what` cannot hold `data`, or None."""
    size = data_size(data)
    if size > CONFIGMAP_MAX_BYTES:
        return (
            f"the {what} ConfigMap would take {size} bytes, more than Kubernetes allows "
            f"({CONFIGMAP_MAX_BYTES})"
        )
    return None


def instance_config_maps(
    entries: Iterable[gateway_files.KeyEntry], settings: GatewaySettings
) -> dict[str, dict[str, str]]:
    """Every key-derived ConfigMap's data (trust store and gateway), by a readable name:
    what the components render from the same keys (`gateway.files.gateway_files`,
    `trust_store_data`)."""
    listed = list(entries)
    gateway = gateway_files.config_map_data(gateway_files.gateway_files(settings, listed))
    trust_store = trust_store_data(keys.key_set(entry.pem for entry in listed))
    return {
        **{f"trust store {name}": data for name, data in trust_store.items()},
        **{f"gateway {role}": data for role, data in gateway.items()},
    }


def capacity_problem(
    credentials: Iterable[tuple[gateway_files.KeyEntry, int]],
    trusted: Iterable[gateway_files.KeyEntry],
    settings: GatewaySettings,
) -> str | None:
    """Why the instance's keys do not fit its ConfigMaps, with how many do; or None.

    `credentials` are each token credential's entry (its key not known yet) and RSA size:
    stood in for by keys of that size; `trusted` are the extra keys.
    """
    stand_ins = [
        dataclasses.replace(entry, pem=keys.stand_in_public_key(f"capacity-{i}", size))
        for i, (entry, size) in enumerate(credentials)
    ]
    extra = list(trusted)
    all_keys = [*stand_ins, *extra]
    documents = instance_config_maps(all_keys, settings)
    for name, data in documents.items():
        if problem := size_problem(name, data):
            one_key = instance_config_maps(all_keys[:1], settings)[name]
            per_key = (data_size(data) - data_size(one_key)) / max(len(all_keys) - 1, 1)
            fit = 1 + int((CONFIGMAP_MAX_BYTES - data_size(one_key)) // per_key)
            return (
                f"{len(stand_ins)} credentials and {len(extra)} trusted keys are too many: "
                f"{problem}; about {fit} keys of this size fit: remove tenants or tokens, or "
                "split the tenants over two instances"
            )
    return None
