"""What each ConfigMap of the instance holds, and the one size rule they share.

The instance's keys are spread over sixteen shards by holder (`key_shards`), and each
document that grows with them comes in one ConfigMap per shard: the trust store (the
keys in Opstrace's key set format, `opstrace-trust-store-<shard>`; the same keys as a
JWKS, `opstrace-trust-store-jwks-<shard>`) and the gateway's key files and lines; the
gateway's configuration is one more. Each key is stored once per document, so about
20,000 RSA-2048 credentials fit (`capacity_problem` says how many of a given size). The
size rule is checked twice: on the configuration before anything is registered
(`capacity_problem`, with stand-in keys of the configured sizes in the shards the real
keys will be in, which gives exactly the real documents' sizes), and on the real
documents (`checked_data`) as the last guard.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opstrace import key_shards, keys
from opstrace.errors import OpstraceError
from opstrace.gateway import files as gateway_files
from opstrace.gateway.settings import GatewaySettings

CONFIGMAP_MAX_BYTES: Final = 1024 * 1024
"""Kubernetes refuses a ConfigMap whose keys and values exceed 1 MiB together."""

TRUST_STORE_PREFIX: Final = "opstrace-trust-store"
"""The trust store's names: this, then its shard (the key set in Opstrace's format), or
`-jwks-` and its shard (the same keys as JWKS). Fixed: a stable contract for whatever
reads the key set, which is the union of the shards."""
JWKS_FILE: Final = "jwks.json"


def trust_store_name(shard: str) -> str:
    """The ConfigMap of a shard's keys in Opstrace's key set format."""
    return f"{TRUST_STORE_PREFIX}-{shard}"


def jwks_name(shard: str) -> str:
    """The ConfigMap of a shard's keys as a JWKS document."""
    return f"{TRUST_STORE_PREFIX}-jwks-{shard}"


class CapacityError(OpstraceError):
    """Raised when keys do not fit the ConfigMaps that must hold them."""


def checked_data(what: str, data: Mapping[str, str]) -> dict[str, str]:
    """`data` if ConfigMap `what` can hold it; else CapacityError (the config check
    should have refused the keys already: this is the last guard)."""
    if problem := size_problem(what, data):
        raise CapacityError(problem)
    return dict(data)


def shard_key_set(pems: Sequence[str]) -> dict[str, str]:
    """A shard's key set from its keys' PEMs: a shard may hold none (`keys.key_set`
    refuses an empty set, as an authenticator would)."""
    return keys.key_set(pems) if pems else {}


def trust_store_shard(shard: str, key_set: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """ConfigMap name -> data of a shard's two: its keys in Opstrace's format (an empty
    shard is `{}`, which an Opstrace authenticator refuses on its own: give it the
    union), and the same keys as JWKS."""
    jwks = json.dumps(keys.jwks(key_set), indent=2, sort_keys=True) + "\n"
    return {
        trust_store_name(shard): {keys.KEYSET_ENV_NAME: keys.key_set_json(key_set)},
        jwks_name(shard): {JWKS_FILE: jwks},
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


@dataclasses.dataclass(frozen=True)
class Document:
    """One ConfigMap's data, and how many keys it holds (None: not a key shard's)."""

    data: dict[str, str]
    keys: int | None


def instance_config_maps(
    entries: Iterable[gateway_files.KeyEntry], settings: GatewaySettings
) -> dict[str, Document]:
    """Every key-derived ConfigMap (trust store and gateway) by a readable name: what the
    components render from the same keys (`gateway.files.gateway_files`,
    `trust_store_shard`)."""
    listed = list(entries)
    gateway = gateway_files.config_map_data(gateway_files.gateway_files(settings, listed))
    held: dict[str, list[str]] = {shard: [] for shard in key_shards.SHARDS}
    for entry in listed:
        held[entry.shard()].append(entry.pem)
    config = gateway_files.CONFIG_ROLE
    documents = {f"gateway {config}": Document(gateway[config], None)}
    for shard, pems in held.items():
        key_set = shard_key_set(pems)
        documents[f"gateway keys-{shard}"] = Document(gateway[f"keys-{shard}"], len(key_set))
        for name, data in trust_store_shard(shard, key_set).items():
            documents[f"trust store {name}"] = Document(data, len(key_set))
    return documents


def capacity_problem(
    credentials: Iterable[tuple[gateway_files.KeyEntry, int]],
    trusted: Iterable[gateway_files.KeyEntry],
    settings: GatewaySettings,
) -> str | None:
    """Why the instance's keys do not fit its ConfigMaps, with how many do; or None.

    `credentials` are each token credential's entry (its key not known yet) and RSA size:
    stood in for by keys of that size, in the shards their holders put them in (exactly
    where the real keys will be); `trusted` are the extra keys.
    """
    stand_ins = [
        dataclasses.replace(entry, pem=keys.stand_in_public_key(f"capacity-{i}", size))
        for i, (entry, size) in enumerate(credentials)
    ]
    extra = list(trusted)
    for name, document in instance_config_maps([*stand_ins, *extra], settings).items():
        problem = size_problem(name, document.data)
        if problem is None:
            continue
        if not document.keys:
            return f"{problem}: remove tenants, or split them over two instances"
        per_shard = int(CONFIGMAP_MAX_BYTES // (data_size(document.data) / document.keys))
        return (
            f"{len(stand_ins)} credentials and {len(extra)} trusted keys are too many: "
            f"{problem} with {document.keys} keys; about {per_shard} keys of this size fit in "
            f"each of the {len(key_shards.SHARDS)} shards ({per_shard * len(key_shards.SHARDS)} "
            "in all, as credentials spread): remove tenants or tokens, or split the tenants "
            "over two instances"
        )
    return None
