"""Specification of key IDs, public-key validation, key sets, JWKS and keypair files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from opstrace.keys import (
    KeyMaterialError,
    KeySetError,
    PrivateKeyMaterialError,
    generate_private_key,
    jwks,
    key_id,
    key_set,
    key_set_json,
    load_private_key_file,
    parse_key_set_json,
    public_key_pem,
    validate_public_key_pem,
    write_keypair_file,
)

# A fixed 2048-bit RSA key made with `openssl genpkey` + `openssl pkey -pubout`. Its key ID
# was computed outside Python with `printf '%s' "$(cat pub.pem)" | sha1sum`.
FIXED_PEM = """\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1HCo/WK1HFHeIYHM4TgW
d3XOuPcfo/aYFDMM+Ml4sCdY6HWC+KC8rFe4/BUPSETTgbantpBELprMVfl4lwpf
dq/Ky05dYxAnGvGx2vw62MDW8aHmKVyF+B8/TqYZ9pqE+PKz3mjmS1quuMq86x8k
0giuDYaVhsCeY20C4bkap/yngAPA4m5TdIAvQHfAJXOk0L7iW1AET92YQq80WuLO
1VNxn5nqpzzsKLth8wNmbJt1mibmESPvTVmb3ni/PBLa9RxE2Jh2DhF2GkBeMuAj
lR7Z3N8LEUyFNNdFe/RaqHmB/cg+t+ErUDC93jp7GVdDIMRz9iRMylPbzdHN1Iax
TwIDAQAB
-----END PUBLIC KEY-----
"""
FIXED_KID = "8fb18229d4d6db745164185068e97ad77fedbff9"

NOT_SINGLE_SPKI = (
    "not a single SubjectPublicKeyInfo PEM key: expected one -----BEGIN PUBLIC KEY----- "
    "block (PKCS#1 'BEGIN RSA PUBLIC KEY' is not accepted)"
)
CONTAINS_PRIVATE = (
    "contains private key material; only public keys (-----BEGIN PUBLIC KEY-----) may be trusted"
)
NOT_A_KEYPAIR_FILE = (
    "not an unencrypted PEM private key (expected a keypair file as written by ta-create-keypair)"
)
OBJECT_OF_STRINGS = "must be a JSON object mapping key IDs to PEM strings"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def small_rsa_key() -> rsa.RSAPrivateKey:
    """A key too small to trust, made only to be refused."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return _spki(rsa_key)


@pytest.fixture(scope="module")
def other_pem(other_rsa_key: rsa.RSAPrivateKey) -> str:
    return _spki(other_rsa_key)


def _spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _private_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    form: serialization.PrivateFormat,
    encryption: serialization.KeySerializationEncryption | None = None,
) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, form, encryption or serialization.NoEncryption()
    ).decode("ascii")


def _b64url_to_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


# --- key IDs -------------------------------------------------------------------------


def test_key_id_of_the_fixed_key_is_its_known_sha1() -> None:
    assert key_id(FIXED_PEM) == FIXED_KID


def test_key_id_is_the_sha1_hex_of_the_stripped_pem_text(pem: str) -> None:
    expected = hashlib.sha1(pem.strip().encode("utf-8"), usedforsecurity=False).hexdigest()

    assert key_id(pem) == expected


def test_key_id_is_40_lowercase_hex_characters(pem: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", key_id(pem))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(FIXED_PEM.strip(), id="no-trailing-newline"),
        pytest.param(FIXED_PEM + "\n\n", id="extra-newlines"),
        pytest.param(FIXED_PEM + " \t\r\n", id="trailing-spaces"),
        pytest.param("\n  " + FIXED_PEM, id="leading-whitespace"),
    ],
)
def test_key_id_ignores_surrounding_whitespace(variant: str) -> None:
    assert key_id(variant) == FIXED_KID


def test_key_id_differs_between_keys(pem: str, other_pem: str) -> None:
    assert key_id(pem) != key_id(other_pem)


def test_public_key_pem_is_the_spki_pem_of_the_public_half(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    assert public_key_pem(rsa_key) == _spki(rsa_key)


# --- validate_public_key_pem: accepted -----------------------------------------------


def test_rsa_2048_spki_pem_is_accepted_unchanged() -> None:
    assert validate_public_key_pem(FIXED_PEM) == FIXED_PEM


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(FIXED_PEM.strip(), id="no-trailing-newline"),
        pytest.param(FIXED_PEM + "\n\n\n", id="extra-newlines"),
        pytest.param("\n\n" + FIXED_PEM + "  ", id="surrounding-whitespace"),
    ],
)
def test_accepted_pem_is_normalized_to_one_trailing_newline(variant: str) -> None:
    assert validate_public_key_pem(variant) == FIXED_PEM


def test_generated_rsa_2048_key_is_accepted(pem: str) -> None:
    assert validate_public_key_pem(pem) == pem


# --- validate_public_key_pem: refused ------------------------------------------------


def test_pkcs1_rsa_public_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    pkcs1 = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode("ascii")
    )
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")

    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(pkcs1)

    assert str(raised.value) == f"public key: {NOT_SINGLE_SPKI}"


def test_ec_public_key_is_refused(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(_spki(ec_key))

    # The class name after "got" is the cryptography library's.
    assert re.fullmatch(r"public key: only RSA keys are accepted, got \w+", str(raised.value))


def test_rsa_1024_public_key_is_refused(small_rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(_spki(small_rsa_key))

    assert str(raised.value) == "public key: RSA key has 1024 bits; at least 2048 are required"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key", id="garbage"),
        pytest.param(FIXED_PEM + FIXED_PEM, id="two-pem-blocks"),
        pytest.param(FIXED_PEM + "trailing text\n", id="text-after-end"),
        pytest.param(FIXED_PEM + "-----END PUBLIC KEY-----\n", id="second-end-line"),
        pytest.param("comment\n" + FIXED_PEM, id="text-before-begin"),
        pytest.param(FIXED_PEM.replace("-----END PUBLIC KEY-----\n", ""), id="no-end-line"),
    ],
)
def test_text_that_is_not_one_spki_block_is_refused(text: str) -> None:
    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(text)

    assert str(raised.value) == f"public key: {NOT_SINGLE_SPKI}"


def test_spki_block_that_does_not_decode_is_refused() -> None:
    text = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"

    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(text)

    assert str(raised.value) == "public key: the PEM block does not decode to a public key"


def test_spki_block_with_non_ascii_text_is_refused() -> None:
    text = FIXED_PEM.replace("MIIB", "MIIBé", 1)

    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem(text)

    assert str(raised.value) == "public key: the PEM block does not decode to a public key"


def test_refusal_names_the_given_source() -> None:
    with pytest.raises(KeyMaterialError) as raised:
        validate_public_key_pem("not a key", source="tenants.prod.public_keys[1]")

    assert str(raised.value) == f"tenants.prod.public_keys[1]: {NOT_SINGLE_SPKI}"


def _private_key_texts(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> Iterator[tuple[str, str]]:
    pkcs8 = serialization.PrivateFormat.PKCS8
    yield "pkcs8", _private_pem(rsa_key, pkcs8)
    yield "pkcs1", _private_pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    yield (
        "encrypted-pkcs8",
        _private_pem(rsa_key, pkcs8, serialization.BestAvailableEncryption(b"secret")),
    )
    yield "ec", _private_pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL)
    yield "public-then-private", _spki(rsa_key) + _private_pem(rsa_key, pkcs8)


_PRIVATE_KEY_FORMS = ["pkcs8", "pkcs1", "encrypted-pkcs8", "ec", "public-then-private"]


@pytest.mark.parametrize("form", _PRIVATE_KEY_FORMS)
def test_text_containing_a_private_key_is_refused_as_private_key_material(
    form: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    text = dict(_private_key_texts(rsa_key, ec_key))[form]

    with pytest.raises(PrivateKeyMaterialError) as raised:
        validate_public_key_pem(text)

    assert str(raised.value) == f"public key: {CONTAINS_PRIVATE}"


def test_private_key_begin_lines_are_what_the_refusal_guards(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    texts = dict(_private_key_texts(rsa_key, ec_key))

    assert texts["pkcs8"].startswith("-----BEGIN PRIVATE KEY-----")
    assert texts["pkcs1"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert texts["encrypted-pkcs8"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert texts["ec"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert sorted(texts) == sorted(_PRIVATE_KEY_FORMS)


def test_private_key_material_error_is_a_key_material_error() -> None:
    assert issubclass(PrivateKeyMaterialError, KeyMaterialError)


# --- key sets ------------------------------------------------------------------------


def test_key_set_maps_the_key_id_to_the_normalized_pem() -> None:
    assert key_set([FIXED_PEM.strip()]) == {FIXED_KID: FIXED_PEM}


def test_key_set_keeps_one_entry_per_key(pem: str, other_pem: str) -> None:
    keys = key_set([pem, other_pem, pem.strip(), "\n" + pem + "\n\n", other_pem])

    assert keys == {key_id(pem): pem, key_id(other_pem): other_pem}


def test_key_set_is_sorted_by_key_id_whatever_the_input_order(pem: str, other_pem: str) -> None:
    forward = key_set([pem, other_pem, FIXED_PEM])
    backward = key_set([FIXED_PEM, other_pem, pem])

    assert list(forward) == sorted([key_id(pem), key_id(other_pem), FIXED_KID])
    assert list(backward) == list(forward)


def test_empty_key_set_is_refused() -> None:
    with pytest.raises(KeySetError) as raised:
        key_set([])

    assert str(raised.value) == "a key set needs at least one public key"


def test_key_set_refusal_names_the_position_of_the_bad_key(pem: str) -> None:
    with pytest.raises(KeyMaterialError) as raised:
        key_set([pem, "not a key"])

    assert str(raised.value) == f"public key #1: {NOT_SINGLE_SPKI}"


def test_key_set_refuses_private_key_material(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(PrivateKeyMaterialError) as raised:
        key_set([_private_pem(rsa_key, serialization.PrivateFormat.PKCS8)])

    assert str(raised.value) == f"public key #0: {CONTAINS_PRIVATE}"


# --- key set JSON --------------------------------------------------------------------


def test_key_set_json_is_a_flat_compact_object_of_key_id_to_pem() -> None:
    assert key_set_json({FIXED_KID: FIXED_PEM}) == (
        '{"' + FIXED_KID + '":"' + FIXED_PEM.replace("\n", "\\n") + '"}'
    )


def test_key_set_json_lists_key_ids_in_sorted_order(pem: str, other_pem: str) -> None:
    keys = {key_id(pem): pem, key_id(other_pem): other_pem, FIXED_KID: FIXED_PEM}
    unsorted = dict(sorted(keys.items(), reverse=True))

    assert list(json.loads(key_set_json(unsorted))) == sorted(keys)


def test_key_set_json_round_trips_through_parse_key_set_json(pem: str, other_pem: str) -> None:
    keys = key_set([pem, other_pem, FIXED_PEM])

    assert parse_key_set_json(key_set_json(keys)) == keys


def test_parse_key_set_json_normalizes_each_pem() -> None:
    text = json.dumps({FIXED_KID: "\n" + FIXED_PEM.strip()})

    assert parse_key_set_json(text) == {FIXED_KID: FIXED_PEM}


def test_parse_key_set_json_refuses_a_key_id_that_does_not_match_its_pem(pem: str) -> None:
    text = json.dumps({FIXED_KID: pem})

    with pytest.raises(KeySetError) as raised:
        parse_key_set_json(text)

    assert str(raised.value) == (
        f"key set['{FIXED_KID}']: key ID does not match the key (its ID is {key_id(pem)})"
    )


def test_parse_key_set_json_refuses_an_uppercase_key_id() -> None:
    text = json.dumps({FIXED_KID.upper(): FIXED_PEM})

    with pytest.raises(KeySetError) as raised:
        parse_key_set_json(text)

    assert str(raised.value) == (
        f"key set['{FIXED_KID.upper()}']: key ID does not match the key (its ID is {FIXED_KID})"
    )


def test_parse_key_set_json_refuses_an_empty_object() -> None:
    with pytest.raises(KeySetError) as raised:
        parse_key_set_json("{}")

    assert str(raised.value) == "key set: is empty; a key set needs at least one public key"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[]", id="array"),
        pytest.param(json.dumps([FIXED_PEM]), id="array-of-pems"),
        pytest.param(json.dumps(FIXED_PEM), id="string"),
        pytest.param("null", id="null"),
        pytest.param("42", id="number"),
        pytest.param(json.dumps({"keys": [{"kid": FIXED_KID}]}), id="jwks"),
    ],
)
def test_parse_key_set_json_refuses_a_document_that_is_not_an_object(text: str) -> None:
    with pytest.raises(KeySetError) as raised:
        parse_key_set_json(text)

    assert str(raised.value) == f"key set: {OBJECT_OF_STRINGS}"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="boolean"),
        pytest.param([FIXED_PEM], id="array"),
        pytest.param({"pem": FIXED_PEM}, id="object"),
    ],
)
def test_parse_key_set_json_refuses_a_value_that_is_not_a_string(value: object) -> None:
    text = json.dumps({FIXED_KID: value})

    with pytest.raises(KeySetError) as raised:
        parse_key_set_json(text)

    assert str(raised.value) == f"key set: {OBJECT_OF_STRINGS}"


def test_parse_key_set_json_refuses_text_that_is_not_json() -> None:
    with pytest.raises(KeySetError) as raised:
        parse_key_set_json("not json")

    assert str(raised.value) == "key set: not JSON: Expecting value at line 1"


def test_parse_key_set_json_refuses_a_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    private = _private_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    text = json.dumps({key_id(_spki(rsa_key)): private})

    with pytest.raises(PrivateKeyMaterialError) as raised:
        parse_key_set_json(text, source="API_AUTHTOKEN_VERIFICATION_PUBKEY_SET")

    assert str(raised.value) == (
        f"API_AUTHTOKEN_VERIFICATION_PUBKEY_SET['{key_id(_spki(rsa_key))}']: {CONTAINS_PRIVATE}"
    )
    assert "MII" not in str(raised.value)


def test_parse_key_set_json_refuses_a_small_key(small_rsa_key: rsa.RSAPrivateKey) -> None:
    small = _spki(small_rsa_key)
    text = json.dumps({key_id(small): small})

    with pytest.raises(KeyMaterialError) as raised:
        parse_key_set_json(text)

    assert str(raised.value) == (
        f"key set['{key_id(small)}']: RSA key has 1024 bits; at least 2048 are required"
    )


# --- JWKS ----------------------------------------------------------------------------


def test_jwks_has_the_key_ids_of_the_key_set_in_order(pem: str, other_pem: str) -> None:
    keys = key_set([pem, other_pem, FIXED_PEM])

    assert [entry["kid"] for entry in jwks(keys)["keys"]] == list(keys)


def test_jwks_entries_are_rs256_signature_keys(pem: str) -> None:
    (entry,) = jwks(key_set([pem]))["keys"]

    assert sorted(entry) == ["alg", "e", "kid", "kty", "n", "use"]
    assert (entry["kty"], entry["alg"], entry["use"]) == ("RSA", "RS256", "sig")


def test_jwks_n_and_e_decode_to_the_public_numbers(pem: str, other_pem: str) -> None:
    keys = key_set([pem, other_pem, FIXED_PEM])

    for entry in jwks(keys)["keys"]:
        public = serialization.load_pem_public_key(keys[entry["kid"]].encode("ascii"))
        assert isinstance(public, rsa.RSAPublicKey)
        numbers = public.public_numbers()
        assert _b64url_to_int(entry["n"]) == numbers.n
        assert _b64url_to_int(entry["e"]) == numbers.e


def test_jwks_n_and_e_are_unpadded_base64url_without_leading_zeros() -> None:
    (entry,) = jwks({FIXED_KID: FIXED_PEM})["keys"]

    assert entry["e"] == "AQAB"  # 65537
    assert re.fullmatch(r"[A-Za-z0-9_-]+", entry["n"])
    # 2048 bits are 256 bytes, which unpadded base64url writes in 342 characters.
    assert len(entry["n"]) == 342
    assert entry["n"].startswith("1HCo_WK1")


# --- keypair files -------------------------------------------------------------------


def test_generate_private_key_refuses_a_size_that_is_not_allowed() -> None:
    with pytest.raises(KeyMaterialError) as raised:
        generate_private_key(1024)

    assert str(raised.value) == (
        "key size 1024 is not allowed: use 2048, 3072 or 4096 (keys under 2048 bits are refused)"
    )


def test_write_keypair_file_creates_an_owner_only_file_holding_the_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "keys" / "prod.pem"

    write_keypair_file(path, rsa_key)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _spki(load_private_key_file(path)) == _spki(rsa_key)
    assert path.read_text("ascii").startswith("-----BEGIN PRIVATE KEY-----")


def test_write_keypair_file_is_owner_only_even_with_a_permissive_umask(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "prod.pem"
    previous = os.umask(0)
    try:
        write_keypair_file(path, rsa_key)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_keypair_file_refuses_to_overwrite_a_different_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "prod.pem"
    write_keypair_file(path, rsa_key)
    before = path.read_bytes()

    with pytest.raises(KeyMaterialError) as raised:
        write_keypair_file(path, other_rsa_key)

    assert str(raised.value) == (
        f"{path}: already holds a different private key; refusing to overwrite it "
        "(move it away or choose another path)"
    )
    assert path.read_bytes() == before


def test_write_keypair_file_refuses_to_overwrite_a_file_that_is_not_a_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("precious notes\n")

    with pytest.raises(KeyMaterialError) as raised:
        write_keypair_file(path, rsa_key)

    assert str(raised.value) == f"{path}: {NOT_A_KEYPAIR_FILE}"
    assert path.read_text() == "precious notes\n"


def test_write_keypair_file_accepts_the_same_key_again_and_restores_0600(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "prod.pem"
    write_keypair_file(path, rsa_key)
    before = path.read_bytes()
    path.chmod(0o644)

    write_keypair_file(path, rsa_key)

    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_private_key_file_reads_pkcs8_and_pkcs1(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    for name, form in [
        ("pkcs8.pem", serialization.PrivateFormat.PKCS8),
        ("pkcs1.pem", serialization.PrivateFormat.TraditionalOpenSSL),
    ]:
        path = tmp_path / name
        path.write_text(_private_pem(rsa_key, form))

        assert _spki(load_private_key_file(path)) == _spki(rsa_key), name


def test_load_private_key_file_refuses_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.pem"

    with pytest.raises(KeyMaterialError) as raised:
        load_private_key_file(path)

    assert str(raised.value) == f"{path}: cannot read keypair file: No such file or directory"


@pytest.mark.parametrize(
    "form",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("public", id="public-key"),
        pytest.param("encrypted", id="encrypted-private-key"),
    ],
)
def test_load_private_key_file_refuses_a_file_that_is_not_an_unencrypted_private_key(
    form: str, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    texts = {
        "garbage": "not a key\n",
        "public": _spki(rsa_key),
        "encrypted": _private_pem(
            rsa_key,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
    }
    path = tmp_path / "key.pem"
    path.write_text(texts[form])

    with pytest.raises(KeyMaterialError) as raised:
        load_private_key_file(path)

    assert str(raised.value) == f"{path}: {NOT_A_KEYPAIR_FILE}"


def test_load_private_key_file_refuses_a_1024_bit_key(
    tmp_path: Path, small_rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "small.pem"
    path.write_text(_private_pem(small_rsa_key, serialization.PrivateFormat.PKCS8))

    with pytest.raises(KeyMaterialError) as raised:
        load_private_key_file(path)

    assert str(raised.value) == f"{path}: RSA key has 1024 bits; at least 2048 are required"


def test_load_private_key_file_refuses_an_ec_key(
    tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    path = tmp_path / "ec.pem"
    path.write_text(_private_pem(ec_key, serialization.PrivateFormat.PKCS8))

    with pytest.raises(KeyMaterialError) as raised:
        load_private_key_file(path)

    assert re.fullmatch(
        rf"{re.escape(str(path))}: only RSA keys are accepted, got \w+", str(raised.value)
    )
