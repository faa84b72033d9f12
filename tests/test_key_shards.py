"""The instance's keys in sixteen shards: where each key goes, that the shards' parts join
into the gateway's whole file set (as the pods' sidecar joins them), that a change
touches its shard only, and how many credentials fit."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import replace

import pytest

from opstrace import config_maps, key_shards, keys, names
from opstrace.config import sizes
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.files import (
    CONFIG_MAP_ROLES,
    CONFIG_ROLE,
    KeyEntry,
    config_map_data,
    gateway_files,
    shard_part,
)
from opstrace.gateway.settings import (
    CREDENTIALS_MAP,
    HAPROXY_CONFIG,
    KEYS_MAP,
    GatewayConfigError,
    GatewaySettings,
    key_file_name,
)
from sidecar import contract, sync

TENANTS = ("system", "prod", "dev")


def settings(tenants: tuple[str, ...] = TENANTS) -> GatewaySettings:
    return gateway_upstreams.gateway_settings(
        "acme", "example.com", tenants, gateway_upstreams.upstreams(sizes.SIZES["small"])
    )


def credential(tenant: str, token: str, *, holder: str = "") -> KeyEntry:
    """A minted credential's entry with a stand-in key of its own."""
    name = names.credential_name(tenant, token)
    pem = keys.stand_in_public_key(name)
    return KeyEntry(pem, tenant, name, holder=holder or name)


ENTRIES = [credential(tenant, f"t{i}") for tenant in TENANTS for i in range(12)]


def kid(entry: KeyEntry) -> str:
    return keys.key_id(entry.pem)


# Where keys go ------------------------------------------------------------------------


def test_a_holder_is_always_in_the_same_shard() -> None:
    assert key_shards.shard_of("prod/default") == key_shards.shard_of("prod/default")
    assert key_shards.shard_of("prod/default") in key_shards.SHARDS


def test_ten_thousand_credentials_fill_the_sixteen_shards_evenly() -> None:
    counts = Counter(key_shards.shard_of(f"t{i // 4}/token-{i % 4}") for i in range(10_000))
    assert set(counts) == set(key_shards.SHARDS)
    assert 500 < min(counts.values()) <= max(counts.values()) < 750


def test_each_key_is_in_the_shard_of_its_holder() -> None:
    parts = gateway_files(settings(), ENTRIES)
    for entry in ENTRIES:
        shard = key_shards.shard_of(entry.holder)
        assert key_file_name(kid(entry)) in parts.shards[shard]
        others = [s for s in key_shards.SHARDS if s != shard]
        assert all(key_file_name(kid(entry)) not in parts.shards[s] for s in others)


def test_a_tenant_signing_with_one_key_file_keeps_its_key_in_one_shard() -> None:
    shared = keys.stand_in_public_key("prod's key file")
    entries = [KeyEntry(shared, "prod", f"prod/t{i}", holder="prod") for i in range(4)]
    parts = gateway_files(settings(), entries)
    (holding,) = [s for s, part in parts.shards.items() if part]
    assert holding == key_shards.shard_of("prod")
    assert parts.shards[holding][CREDENTIALS_MAP] == (
        f"{keys.key_id(shared)} prod/t0,prod/t1,prod/t2,prod/t3\n"
    )


def test_a_key_whose_holders_are_in_two_shards_is_refused_naming_both() -> None:
    pem = next(
        pem
        for pem in (keys.stand_in_public_key(f"listed twice {i}") for i in range(100))
        if key_shards.shard_of(keys.key_id(pem)) != key_shards.shard_of("prod")
    )
    trusted = KeyEntry(pem, None, "trustedKeys[0]", holder=keys.key_id(pem))
    token = KeyEntry(pem, "prod", "prod/t0", holder="prod")
    with pytest.raises(GatewayConfigError, match=r"is the key of prod/t0 and trustedKeys\[0\]"):
        gateway_files(settings(), [trusted, token])


# Parts and the whole ------------------------------------------------------------------


def test_the_shards_parts_join_into_every_key_file_and_map_line() -> None:
    whole = gateway_files(settings(), ENTRIES).whole()
    assert {key_file_name(kid(e)) for e in ENTRIES} <= set(whole)
    assert sorted(whole[KEYS_MAP].splitlines()) == sorted(
        f"{kid(e)} ./{key_file_name(kid(e))}" for e in ENTRIES
    )


def test_haproxy_cfg_ends_with_one_key_line_per_key_in_the_shards_order() -> None:
    parts = gateway_files(settings(), ENTRIES)
    last_lines = parts.whole()[HAPROXY_CONFIG].splitlines()[-len(ENTRIES) :]
    expected = "".join(parts.shards[s].get(HAPROXY_CONFIG, "") for s in key_shards.SHARDS)
    assert last_lines == expected.splitlines()
    assert all("acl trusted_key_file" in line for line in last_lines)


def test_a_shard_rendered_from_its_own_keys_is_that_shard_of_the_whole() -> None:
    parts = gateway_files(settings(), ENTRIES)
    for shard in key_shards.SHARDS:
        held = [e for e in ENTRIES if e.shard() == shard]
        assert shard_part(settings(), held, shard) == parts.shards[shard]


def test_adding_a_credential_changes_its_shard_and_the_configuration_only() -> None:
    added = credential("dev", "new")
    before = config_map_data(gateway_files(settings(), ENTRIES))
    after = config_map_data(gateway_files(settings(), [*ENTRIES, added]))
    changed = {role for role in CONFIG_MAP_ROLES if before[role] != after[role]}
    assert changed == {CONFIG_ROLE, f"keys-{added.shard()}"}


def test_the_sidecar_joins_the_config_maps_into_the_rendered_set() -> None:
    parts = gateway_files(settings(), ENTRIES)
    seen = config_map_data(parts)
    certificate = {"tls.crt": base64.b64encode(b"C").decode(), "tls.key": "Sw=="}
    secrets = {
        tenant: {"metadata": {"labels": {contract.TENANT_LABEL: tenant}}, "data": certificate}
        for tenant in TENANTS
    }
    found = sync.file_set(seen, secrets, CONFIG_MAP_ROLES)
    assert found.checksum == parts.checksum()
    assert {k: v for k, v in found.files.items() if not k.startswith("certs/")} == parts.whole()


def test_a_shard_left_from_the_previous_render_holds_the_set_back() -> None:
    before = config_map_data(gateway_files(settings(), ENTRIES))
    added = credential("dev", "new")
    after = config_map_data(gateway_files(settings(), [*ENTRIES, added]))
    stale = {**after, f"keys-{added.shard()}": before[f"keys-{added.shard()}"]}
    with pytest.raises(sync.Incomplete, match="from different renders"):
        sync.file_set(stale, {}, CONFIG_MAP_ROLES)


# The trust store ----------------------------------------------------------------------


def test_a_trust_store_shard_is_an_opstrace_key_set_and_a_jwks_of_the_same_keys() -> None:
    held = keys.key_set(e.pem for e in ENTRIES[:3])
    documents = config_maps.trust_store_shard("7", held)
    key_set = documents["opstrace-trust-store-7"][keys.KEYSET_ENV_NAME]
    assert keys.parse_key_set_json(key_set) == held
    assert '"kid"' in documents["opstrace-trust-store-jwks-7"][config_maps.JWKS_FILE]


def test_an_empty_trust_store_shard_is_an_empty_set() -> None:
    documents = config_maps.trust_store_shard("0", {})
    assert documents["opstrace-trust-store-0"] == {keys.KEYSET_ENV_NAME: "{}"}


# How many fit -------------------------------------------------------------------------


def many(count: int, per_tenant: int) -> tuple[GatewaySettings, list[tuple[KeyEntry, int]]]:
    """`count` credentials of `per_tenant` per tenant (their keys not known yet)."""
    tenants = tuple(f"t{i}" for i in range(count // per_tenant))
    entries = [
        (replace(credential(tenant, f"c{j}"), pem=""), 2048)
        for tenant in tenants
        for j in range(per_tenant)
    ]
    return settings(tenants), entries


def test_ten_thousand_rsa_2048_credentials_fit() -> None:
    chosen, credentials = many(10_000, 4)
    assert config_maps.capacity_problem(credentials, [], chosen) is None


def test_too_many_credentials_are_refused_naming_the_shard_and_how_many_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A limit of 64 KiB stands for 1 MiB: the same rule, at a sixteenth of the keys.
    monkeypatch.setattr(config_maps, "CONFIGMAP_MAX_BYTES", 64 * 1024)
    chosen, credentials = many(2_000, 400)
    problem = config_maps.capacity_problem(credentials, [], chosen)
    assert problem is not None
    assert problem.startswith("2000 credentials and 0 trusted keys are too many: the ")
    assert "ConfigMap would take" in problem
    assert "keys of this size fit in each of the 16 shards" in problem
