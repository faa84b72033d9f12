"""The key-derived documents of a program run, read back whole as their readers join them:
the trust store's key set and JWKS (the union of their shards) and the gateway's files
(its configuration and key shards joined, as the pods' sidecar joins them)."""

from __future__ import annotations

import json
from typing import Any

from opstrace import key_shards, keys
from opstrace.config_maps import JWKS_FILE
from opstrace.gateway.files import CONFIG_MAP_ROLES
from sidecar import contract
from tools.offline import ProgramRun


def _data(run: ProgramRun, name: str) -> dict[str, str]:
    (resource,) = [r for r in run.resources if r.name == name]
    data: dict[str, str] = resource.inputs["data"]
    return data


def key_set(run: ProgramRun, instance: str = "dev-acme") -> dict[str, str]:
    """Key ID -> PEM: every trust store shard's key set, each checked as an Opstrace
    authenticator loads one (but an empty shard, which it would refuse alone)."""
    joined: dict[str, str] = {}
    for shard in key_shards.SHARDS:
        text = _data(run, f"{instance}-trust-store-keys-{shard}")[keys.KEYSET_ENV_NAME]
        if text != "{}":
            joined |= keys.parse_key_set_json(text)
    return joined


def shards_holding(run: ProgramRun, kids: set[str], instance: str = "dev-acme") -> set[str]:
    """The trust store shards whose key sets hold any of these key IDs."""
    return {
        shard
        for shard in key_shards.SHARDS
        if kids
        & json.loads(
            _data(run, f"{instance}-trust-store-keys-{shard}")[keys.KEYSET_ENV_NAME]
        ).keys()
    }


def jwks_keys(run: ProgramRun, instance: str = "dev-acme") -> list[dict[str, Any]]:
    """Every trust store JWKS shard's keys, in the shards' order."""
    return [
        key
        for shard in key_shards.SHARDS
        for key in json.loads(_data(run, f"{instance}-trust-store-jwks-{shard}")[JWKS_FILE])["keys"]
    ]


def gateway_files(run: ProgramRun, instance: str = "dev-acme") -> dict[str, str]:
    """The gateway's files as its pods' sidecar joins them from its ConfigMaps."""
    config, *shards = (_data(run, f"{instance}-gateway-{role}") for role in CONFIG_MAP_ROLES)

    def files(data: dict[str, str]) -> dict[str, str]:
        return {
            k: v for k, v in data.items() if k not in (contract.CHECKSUM_KEY, contract.PARTS_KEY)
        }

    return contract.joined(files(config), map(files, shards))
