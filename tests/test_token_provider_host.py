"""`TokenProvider` through the real provider host, the way `pulumi up` and `refresh` drive it.

Each call crosses a process boundary: inputs and outputs go through the SDK's
property serialization (numbers come back as floats) and the provider is the pickle
the SDK records in state. Tokens are checked with PyJWT and an independent key ID
computation, not with the project's own helpers.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.output import Unknown
from pulumi.runtime import rpc

from opstrace.data_token import Decision, authenticate
from tests.leaks import leaked
from tests.provider_host import (
    DiffChanges,
    DiffResponse,
    ProviderHost,
    ProviderHostError,
    ReadResponse,
    ResourceState,
    mint,
    mint_resource,
)

pytestmark = pytest.mark.provider_host

INSTANCE: Final = "acme"
TENANT: Final = "prod"
BASE: Final = {"instance": INSTANCE, "tenant": TENANT}
TEN_YEARS: Final = 10 * 365 * 24 * 3600
INPUT_NAMES: Final = (
    "instance",
    "tenant",
    "token_name",
    "key_bits",
    "lifetime_seconds",
    "rotation",
    "private_key_dir",
    "signing_key_file",
    "scope",
)
OUTPUT_NAMES: Final = ("token", "key_id", "public_key_pem", "issued_at", "expires_at")
TENANT_RULE: Final = (
    "use lowercase letters, digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)"
)
NEEDS_KEY_FILE: Final = (
    "a new token needs this keypair file; put it there, or remove signingKeyFile to mint "
    "with a new key"
)
INSTANCE_RULE: Final = (
    "use 1 to 23 lowercase letters, digits and inner hyphens "
    "(rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and outer '-' cannot "
    "appear in a DNS name)"
)


def sha1_key_id(public_key_pem: str) -> str:
    """The reference's key ID rule, written out again so that the test does not trust keys.py."""
    digest = hashlib.sha1(public_key_pem.strip().encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()


def decode(token: str, public_key_pem: str) -> dict[str, Any]:
    """Verify as the reference does: RS256 only, this instance's audience, our issuer."""
    claims: dict[str, Any] = jwt.decode(
        token,
        public_key_pem,
        algorithms=["RS256"],
        audience=f"opstrace-cluster-{INSTANCE}",
        issuer="opstrace-cli",
        options={"require": ["aud", "iss", "sub", "iat", "exp"]},
    )
    return claims


def write_keypair(path: Path, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A keypair file as `ta-create-keypair` writes it (PKCS#8 PEM, 0600)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def spki_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@pytest.fixture(scope="module")
def minted(provider_host: ProviderHost) -> ResourceState:
    """One default token, shared by the tests that only look at it."""
    return mint_resource(provider_host, **BASE)


@dataclass(frozen=True)
class Exported:
    """A token whose private key was exported, so that the test knows the secret."""

    state: ResourceState
    directory: Path
    key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def exported(provider_host: ProviderHost, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    directory = tmp_path_factory.mktemp("keys")
    state = mint_resource(provider_host, **BASE, private_key_dir=str(directory))
    (path,) = directory.iterdir()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return Exported(state, directory, key)


@pytest.fixture
def signing_key_file(tmp_path: Path) -> tuple[Path, rsa.RSAPrivateKey]:
    path = tmp_path / "ops.pem"
    return path, write_keypair(path)


# Check


def test_check_fills_in_every_default(provider_host: ProviderHost) -> None:
    checked = provider_host.check(BASE)
    assert checked.failures == ()
    assert checked.inputs == {
        "instance": INSTANCE,
        "tenant": TENANT,
        "token_name": "default",
        "key_bits": 2048,
        "lifetime_seconds": TEN_YEARS,
        "rotation": "",
        "private_key_dir": "",
        "signing_key_file": "",
        "scope": "",
    }


def test_check_refuses_a_bad_tenant_naming_the_field(provider_host: ProviderHost) -> None:
    assert provider_host.check({**BASE, "tenant": "Prod"}).failures == (
        ("tenant", f"'Prod' is not a valid tenant name: {TENANT_RULE}"),
    )


def test_check_leaves_the_system_tenant_to_the_instance_config(
    provider_host: ProviderHost,
) -> None:
    # Whether `system` may have tokens is the instance's rule; the provider only needs a name.
    assert provider_host.check({**BASE, "tenant": "system"}).failures == ()


def test_check_refuses_a_bad_instance_naming_the_field(provider_host: ProviderHost) -> None:
    assert provider_host.check({**BASE, "instance": "acme_1"}).failures == (
        ("instance", f"'acme_1' is not a valid instance name: {INSTANCE_RULE}"),
    )


def test_check_refuses_1024_bit_keys_showing_the_value_as_given(
    provider_host: ProviderHost,
) -> None:
    # The engine sends numbers as floats; the message must still say 1024, not 1024.0.
    assert provider_host.check({**BASE, "key_bits": 1024}).failures == (
        (
            "key_bits",
            "key_bits: 1024 is not allowed: use 2048, 3072 or 4096 (keys under 2048 bits "
            "are refused)",
        ),
    )


def test_check_refuses_a_non_integer_lifetime(provider_host: ProviderHost) -> None:
    assert provider_host.check({**BASE, "lifetime_seconds": 1.5}).failures == (
        ("lifetime_seconds", "lifetime_seconds must be an integer, got 1.5"),
    )


def test_check_refuses_private_key_dir_with_signing_key_file(
    provider_host: ProviderHost, signing_key_file: tuple[Path, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    path, _ = signing_key_file
    news = {**BASE, "signing_key_file": str(path), "private_key_dir": str(tmp_path)}
    assert provider_host.check(news).failures == (
        (
            "private_key_dir",
            "exportKeysTo and signingKeyFile exclude each other: a signing key file is "
            "already a keypair file",
        ),
    )


def test_check_refuses_a_signing_key_file_that_cannot_be_read(
    provider_host: ProviderHost, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    assert provider_host.check({**BASE, "signing_key_file": str(missing)}).failures == (
        (
            "signing_key_file",
            f"{missing}: cannot read keypair file: No such file or directory: {NEEDS_KEY_FILE}",
        ),
    )


def test_check_needs_no_signing_key_file_when_no_token_is_minted(
    provider_host: ProviderHost, tmp_path: Path
) -> None:
    # Another operator's machine, without the key file, updating an existing stack.
    inputs = provider_host.check(BASE).inputs
    news = {**inputs, "signing_key_file": str(tmp_path / "elsewhere.pem")}
    olds = {**inputs, "signing_key_file": str(tmp_path / "elsewhere.pem")}
    assert provider_host.check(news, olds=olds).failures == ()


def test_check_refuses_an_export_directory_that_cannot_be_written(
    provider_host: ProviderHost, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    news = {**BASE, "private_key_dir": str(blocker / "keys")}
    assert provider_host.check(news).failures == (
        (
            "private_key_dir",
            f"exportKeysTo: '{blocker / 'keys'}' ({blocker / 'keys'}): {blocker} is a file, "
            "not a directory: choose a directory you can write to, or fix its permissions",
        ),
    )


def test_check_refuses_a_signing_key_file_without_a_private_key(
    provider_host: ProviderHost, signing_key_file: tuple[Path, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    public_only = tmp_path / "ops.pub"
    public_only.write_text(spki_pem(signing_key_file[1]))
    assert provider_host.check({**BASE, "signing_key_file": str(public_only)}).failures == (
        (
            "signing_key_file",
            f"{public_only}: not an unencrypted PEM private key (expected a keypair file "
            f"as written by ta-create-keypair): {NEEDS_KEY_FILE}",
        ),
    )


def test_check_passes_unknown_values_through_during_preview(provider_host: ProviderHost) -> None:
    # The host hands the provider `Unknown` objects, not the engine's sentinel string.
    checked = provider_host.check({**BASE, "tenant": rpc.UNKNOWN, "key_bits": rpc.UNKNOWN})
    assert checked.failures == ()
    assert isinstance(checked.inputs["tenant"], Unknown)
    assert isinstance(checked.inputs["key_bits"], Unknown)


# Create and the token it returns


def test_create_returns_the_inputs_and_the_token_outputs(minted: ResourceState) -> None:
    outputs = minted.properties
    assert set(outputs) == {*INPUT_NAMES, *OUTPUT_NAMES}
    assert all(isinstance(outputs[name], str) for name in ("token", "key_id", "public_key_pem"))
    assert outputs["expires_at"] - outputs["issued_at"] == TEN_YEARS
    assert minted.id == f"{TENANT}.default.{outputs['key_id']}"


def test_key_id_is_the_sha1_of_the_stripped_spki_pem(minted: ResourceState) -> None:
    pem = minted.properties["public_key_pem"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert minted.properties["key_id"] == sha1_key_id(pem)


def test_token_header_is_rs256_jwt_with_the_key_id(minted: ResourceState) -> None:
    assert jwt.get_unverified_header(minted.properties["token"]) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": minted.properties["key_id"],
    }


def test_token_verifies_against_the_returned_key_with_exactly_opstraces_claims(
    minted: ResourceState,
) -> None:
    outputs = minted.properties
    assert decode(outputs["token"], outputs["public_key_pem"]) == {
        "aud": "opstrace-cluster-acme",
        "iss": "opstrace-cli",
        "sub": "tenant-prod",
        "iat": outputs["issued_at"],
        "exp": outputs["expires_at"],
    }


def test_token_lifetime_is_exp_minus_iat(provider_host: ProviderHost) -> None:
    outputs = mint(provider_host, **BASE, lifetime_seconds=3600)
    claims = decode(outputs["token"], outputs["public_key_pem"])
    assert claims["exp"] - claims["iat"] == 3600


def test_token_is_accepted_by_the_reference_authenticator(minted: ResourceState) -> None:
    outputs = minted.properties
    decision = authenticate(
        f"Bearer {outputs['token']}",
        TENANT,
        {outputs["key_id"]: outputs["public_key_pem"]},
        INSTANCE,
        now=int(outputs["issued_at"]),
    )
    assert decision == Decision(200, tenant=TENANT)


def test_a_scoped_token_carries_its_scopes_and_is_held_to_them(
    provider_host: ProviderHost,
) -> None:
    outputs = mint(provider_host, **BASE, scope="metrics:write logs:write")
    claims = decode(outputs["token"], outputs["public_key_pem"])
    assert claims["scope"] == "metrics:write logs:write"
    trusted = {outputs["key_id"]: outputs["public_key_pem"]}
    decide = partial(
        authenticate, f"Bearer {outputs['token']}", TENANT, trusted, INSTANCE, int(claims["iat"])
    )
    assert decide(scope="metrics:write") == Decision(200, tenant=TENANT)
    assert decide(scope="metrics:read") == Decision(403, "token lacks scope metrics:read")


def test_token_is_refused_by_another_instance_audience(minted: ResourceState) -> None:
    outputs = minted.properties
    decision = authenticate(
        f"Bearer {outputs['token']}",
        TENANT,
        {outputs["key_id"]: outputs["public_key_pem"]},
        "other",
        now=int(outputs["issued_at"]),
    )
    assert decision == Decision(401, "bad authentication token")


def test_each_create_makes_its_own_key(provider_host: ProviderHost, minted: ResourceState) -> None:
    other = mint(provider_host, **BASE)
    assert other["key_id"] != minted.properties["key_id"]
    with pytest.raises(jwt.InvalidSignatureError):
        decode(minted.properties["token"], other["public_key_pem"])


@pytest.mark.parametrize("bits", [3072, 4096])
def test_key_bits_sets_the_rsa_key_size(provider_host: ProviderHost, bits: int) -> None:
    outputs = mint(provider_host, **BASE, key_bits=bits)
    key = serialization.load_pem_public_key(outputs["public_key_pem"].encode("ascii"))
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == bits
    assert decode(outputs["token"], outputs["public_key_pem"])["sub"] == "tenant-prod"


def test_create_failure_carries_the_hosts_message(
    provider_host: ProviderHost, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    inputs = provider_host.check({**BASE, "private_key_dir": str(not_a_directory)}).inputs
    with pytest.raises(ProviderHostError) as raised:
        provider_host.create(inputs)
    assert raised.value.code == "UNKNOWN"
    assert f"FileExistsError: [Errno 17] File exists: '{not_a_directory}'" in raised.value.details


# Diff, Read, Update, Delete: what `pulumi up` and `pulumi refresh` do later


def test_unchanged_inputs_give_no_diff(provider_host: ProviderHost, minted: ResourceState) -> None:
    news = provider_host.check(BASE, olds=provider_host.check(BASE).inputs).inputs
    assert provider_host.diff(minted.id, minted.properties, news) == DiffResponse(
        DiffChanges.NONE, replaces=(), delete_before_replace=False
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "dev"),
        ("instance", "other"),
        ("key_bits", 3072),
        ("rotation", "2026-12"),
        ("token_name", "ci"),
        ("lifetime_seconds", 3600),
    ],
)
def test_changing_an_input_baked_into_the_token_replaces_it(
    provider_host: ProviderHost, minted: ResourceState, field: str, value: object
) -> None:
    news = provider_host.check({**BASE, field: value}, olds=provider_host.check(BASE).inputs)
    assert provider_host.diff(minted.id, minted.properties, news.inputs) == DiffResponse(
        DiffChanges.SOME, replaces=(field,), delete_before_replace=False
    )


def test_unknown_replacing_input_during_preview_plans_a_replace(
    provider_host: ProviderHost, minted: ResourceState
) -> None:
    news = provider_host.check({**BASE, "tenant": rpc.UNKNOWN}).inputs
    assert provider_host.diff(minted.id, minted.properties, news) == DiffResponse(
        DiffChanges.SOME, replaces=("tenant",), delete_before_replace=False
    )


def test_refresh_reads_the_state_back_unchanged(
    provider_host: ProviderHost, minted: ResourceState
) -> None:
    inputs = provider_host.check(BASE).inputs
    assert provider_host.read(minted.id, minted.properties, inputs) == ReadResponse(
        minted.id, minted.properties, inputs=None
    )


def test_clearing_private_key_dir_is_an_update_not_a_replace(
    provider_host: ProviderHost, exported: Exported
) -> None:
    news = provider_host.check(BASE).inputs
    assert provider_host.diff(exported.state.id, exported.state.properties, news) == (
        DiffResponse(DiffChanges.SOME, replaces=(), delete_before_replace=False)
    )


def test_update_keeps_the_token_and_its_key(
    provider_host: ProviderHost, exported: Exported
) -> None:
    olds = exported.state.properties
    outputs = provider_host.update(exported.state.id, olds, provider_host.check(BASE).inputs)
    assert outputs == {**olds, "private_key_dir": ""}


def test_delete_leaves_the_exported_keypair_file_to_the_operator(
    provider_host: ProviderHost, tmp_path: Path
) -> None:
    state = mint_resource(provider_host, **BASE, private_key_dir=str(tmp_path))
    (path,) = tmp_path.iterdir()
    provider_host.delete(state.id, state.properties)
    assert list(tmp_path.iterdir()) == [path]


# Key files


def test_private_key_dir_gets_a_keypair_file_with_mode_0600(exported: Exported) -> None:
    kid = exported.state.properties["key_id"]
    (path,) = exported.directory.iterdir()
    assert path.name == f"acme-prod-default-{kid[:16]}.pem"
    assert path.stat().st_mode & 0o777 == 0o600


def test_exported_keypair_file_holds_the_key_of_key_id(exported: Exported) -> None:
    assert sha1_key_id(spki_pem(exported.key)) == exported.state.properties["key_id"]


def test_signing_key_file_signs_with_that_files_key(
    provider_host: ProviderHost, signing_key_file: tuple[Path, rsa.RSAPrivateKey]
) -> None:
    path, key = signing_key_file
    outputs = mint(provider_host, **BASE, signing_key_file=str(path))
    assert outputs["key_id"] == sha1_key_id(spki_pem(key))
    assert decode(outputs["token"], spki_pem(key))["sub"] == "tenant-prod"


# Private key material stays on the operator's disk


def test_no_call_returns_private_key_material(
    provider_host: ProviderHost, exported: Exported
) -> None:
    state = exported.state
    news = provider_host.check({**BASE, "private_key_dir": str(exported.directory)})
    responses = [
        state,
        news,
        provider_host.diff(state.id, state.properties, news.inputs),
        provider_host.read(state.id, state.properties, news.inputs),
        provider_host.update(state.id, state.properties, provider_host.check(BASE).inputs),
    ]
    assert leaked(repr(responses), exported.key) == []


def test_no_call_returns_the_signing_key_files_material(
    provider_host: ProviderHost, signing_key_file: tuple[Path, rsa.RSAPrivateKey]
) -> None:
    path, key = signing_key_file
    checked = provider_host.check({**BASE, "signing_key_file": str(path)})
    state = provider_host.create(checked.inputs)
    responses = [checked, state, provider_host.read(state.id, state.properties, checked.inputs)]
    assert leaked(repr(responses) + provider_host.stderr_text(), key) == []


def test_serialized_provider_recorded_after_a_create_holds_no_private_key_material(
    exported: Exported,
) -> None:
    # What the host hands back after the key existed: the `__provider` in the state.
    recorded = exported.state.serialized_provider
    pickled = base64.b64decode(recorded)
    assert b"components.tokens" in pickled
    assert leaked(recorded + pickled.decode("latin-1"), exported.key) == []


def test_serialized_provider_is_a_reference_to_the_token_provider_class(
    provider_host: ProviderHost,
) -> None:
    # By reference, not by value: the module path and class name are in every stack's state.
    pickled = base64.b64decode(provider_host.serialized_provider)
    assert b"components.tokens" in pickled
    assert b"TokenProvider" in pickled
    assert len(pickled) < 200


def test_host_stderr_holds_no_private_key_material(
    provider_host: ProviderHost, exported: Exported
) -> None:
    assert leaked(provider_host.stderr_text(), exported.key) == []


@pytest.mark.parametrize("form", ["decimal", "hex", "base64url"])
def test_leak_search_finds_the_private_exponent_in_each_form(exported: Exported, form: str) -> None:
    # Guards the guards above: a search that finds nothing proves nothing.
    d = exported.key.private_numbers().d
    raw = d.to_bytes((d.bit_length() + 7) // 8, "big")
    text = {
        "decimal": str(d),
        "hex": format(d, "x"),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii"),
    }[form]
    assert leaked(f'{{"note": "{text}"}}', exported.key) != []
