"""`TokenProvider`'s pure decisions, in process: the host would add nothing to these.

What the engine sees end to end (check messages, tokens, refresh, update, key files,
leaks) is in `test_token_provider_host.py`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Final, NamedTuple

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.tokens import TenantTokenArgs, TokenProvider, export_file_name, local_path
from opstrace import keys, scopes

STATE: Final[dict[str, Any]] = {
    "instance": "acme",
    "tenant": "prod",
    "token_name": "default",
    "key_bits": 2048,
    "lifetime_seconds": 315360000,
    "rotation": "",
    "private_key_dir": "",
    "signing_key_file": "",
    "scope": "",
    "token": "eyJ.placeholder.sig",
    "key_id": "0123456789abcdef0123456789abcdef01234567",
    "public_key_pem": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
    "issued_at": 1_700_000_000,
    "expires_at": 2_015_360_000,
    "__provider": "serialized-provider",
}
"""A recorded resource: its checked inputs, its outputs and its pickled provider."""
INPUT_NAMES: Final = frozenset(f.name for f in dataclasses.fields(TenantTokenArgs))
INPUTS: Final = {k: v for k, v in STATE.items() if k in INPUT_NAMES}


class Change(NamedTuple):
    field: str
    old: object
    new: object
    replaces: bool


DIFF_TABLE: Final = [
    Change("instance", "acme", "other", replaces=True),
    Change("tenant", "prod", "dev", replaces=True),
    Change("token_name", "default", "ci", replaces=True),
    Change("key_bits", 2048, 4096, replaces=True),
    Change("lifetime_seconds", 315360000, 3600, replaces=True),
    Change("rotation", "", "2026-12", replaces=True),
    Change("signing_key_file", "", "/keys/ops.pem", replaces=True),
    # The private key is discarded after create: exporting it later needs a new key.
    Change("private_key_dir", "", "/keys", replaces=True),
    Change("private_key_dir", "/keys", "/elsewhere", replaces=True),
    # Stopping an export changes nothing already minted.
    Change("private_key_dir", "/keys", "", replaces=False),
    # A token's scopes are in the token: new scopes, a new token (the old one revoked).
    Change("scope", "", "metrics:write", replaces=True),
    Change("scope", "metrics:write", "", replaces=True),
]


@pytest.mark.parametrize("change", DIFF_TABLE, ids=lambda c: f"{c.field}:{c.old!r}->{c.new!r}")
def test_diff_replaces_exactly_when_the_token_or_its_key_must_change(change: Change) -> None:
    olds = {**STATE, change.field: change.old}
    news = {**INPUTS, change.field: change.new, "__provider": STATE["__provider"]}
    result = TokenProvider().diff("prod.default.0123", olds, news)
    assert (result.changes, result.replaces) == (True, [change.field] if change.replaces else [])


def test_diff_table_covers_every_input() -> None:
    assert {c.field for c in DIFF_TABLE} == INPUT_NAMES


def test_a_new_serialized_provider_alone_gives_no_diff() -> None:
    # An SDK upgrade can change the pickle; it must not replace every token.
    news = {**INPUTS, "__provider": "pickled-by-a-newer-sdk"}
    result = TokenProvider().diff("prod.default.0123", STATE, news)
    assert (result.changes, result.replaces) == (False, [])


def test_a_token_recorded_before_scopes_existed_is_kept_as_it_is() -> None:
    # State of an earlier release has no `scope` input: it means every scope, as before.
    recorded = {k: v for k, v in STATE.items() if k != "scope"}
    news = {**INPUTS, "__provider": STATE["__provider"]}
    result = TokenProvider().diff("prod.default.0123", recorded, news)
    assert (result.changes, result.replaces) == (False, [])


@pytest.mark.parametrize("scope", ["logs:write metrics:write", "metrics:read metrics:read", "x"])
def test_check_refuses_a_scope_claim_not_in_canonical_form(scope: str) -> None:
    checked = TokenProvider().check({}, {**INPUTS, "scope": scope})
    assert [(f.property, f.reason) for f in checked.failures] == [
        ("scope", f"scope: {scope!r} is not {scopes.CLAIM_RULE}")
    ]


def test_export_file_name_is_instance_tenant_token_and_key_id_prefix() -> None:
    name = export_file_name(INPUTS, "0123456789abcdef0123456789abcdef01234567")
    assert name == "acme-prod-default-0123456789abcdef.pem"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_lifetime_is_a_check_failure_not_a_crash(value: float) -> None:
    result = TokenProvider().check({}, {**INPUTS, "lifetime_seconds": value})
    assert [(f.property, f.reason) for f in result.failures] == [
        ("lifetime_seconds", f"lifetime_seconds must be an integer, got {value!r}")
    ]


def test_existing_file_with_another_key_at_the_export_path_is_refused_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through the host the new key, and so the path, cannot be known in advance: pin it here.
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setattr(keys, "generate_private_key", lambda bits: new_key)
    target = tmp_path / export_file_name(INPUTS, keys.key_id(keys.public_key_pem(new_key)))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    target.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    before = target.read_bytes()
    with pytest.raises(keys.KeyMaterialError) as raised:
        TokenProvider().create({**INPUTS, "private_key_dir": str(tmp_path)})
    assert str(raised.value) == (
        f"{target}: already holds a different private key; refusing to overwrite it "
        "(move it away or choose another path)"
    )
    assert target.read_bytes() == before


def test_key_paths_expand_the_home_directory_and_keep_relative_paths_relative(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert local_path("~/keys") == tmp_path / "keys"
    assert local_path("./keys") == Path("keys")


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("private_key_dir", "./keys", "keys"),
        ("private_key_dir", "keys/", "keys"),
        ("signing_key_file", "./keys/ops.pem", "keys/ops.pem"),
    ],
)
def test_one_path_written_two_ways_is_no_change(field: str, old: str, new: str) -> None:
    # Stacks written before paths were normalized must not rotate (revoke) their tokens.
    olds = {**STATE, field: old}
    news = {**INPUTS, field: new, "__provider": STATE["__provider"]}
    result = TokenProvider().diff("prod.default.0123", olds, news)
    assert (result.changes, result.replaces) == (False, [])
