"""RSA key material: key IDs, public-key validation, keypair files, key sets.

Pure functions, no Pulumi. The key ID and key set rules are Opstrace's, so that
trust stores made here are accepted by an Opstrace-style authenticator unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from opstrace.errors import OpstraceError

MIN_KEY_BITS: Final = 2048
ALLOWED_KEY_BITS: Final = (2048, 3072, 4096)
PUBLIC_KEY_BEGIN: Final = "-----BEGIN PUBLIC KEY-----"
PUBLIC_KEY_END: Final = "-----END PUBLIC KEY-----"
KEYSET_ENV_NAME: Final = "API_AUTHTOKEN_VERIFICATION_PUBKEY_SET"
"""Where Opstrace's API proxies read the key set; also our ConfigMap key."""


EXPORT_EXCLUDES_SIGNING_FILE: Final = (
    "exportKeysTo and signingKeyFile exclude each other: a signing key file is already a "
    "keypair file"
)
"""The one way to say it, wherever the two meet (stack config, the token provider)."""


class KeyMaterialError(OpstraceError):
    """Raised when key material is not an RSA key this project can trust or use."""


class PrivateKeyMaterialError(KeyMaterialError):
    """Raised when private key material appears where only public keys belong."""


class KeySetError(OpstraceError):
    """Raised when a key set document is empty, malformed or has a wrong key ID."""


def key_id(public_key_pem: str) -> str:
    """Opstrace's key ID: SHA-1 over the stripped SPKI PEM text, lowercase hex."""
    return hashlib.sha1(public_key_pem.strip().encode("utf-8"), usedforsecurity=False).hexdigest()


def key_bits_problem(bits: int) -> str | None:
    """Why `bits` is not a key size this project makes keys of, or None."""
    if bits in ALLOWED_KEY_BITS:
        return None
    *first, last = map(str, ALLOWED_KEY_BITS)
    return (
        f"{bits} is not allowed: use {', '.join(first)} or {last} "
        f"(keys under {MIN_KEY_BITS} bits are refused)"
    )


def generate_private_key(bits: int) -> rsa.RSAPrivateKey:
    """A fresh RSA private key of an allowed size (public exponent 65537)."""
    if problem := key_bits_problem(bits):
        raise KeyMaterialError(f"key size {problem}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_key_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The SPKI PEM text of a private key's public half."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def private_key_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM bytes of a private key, unencrypted (the keypair file format)."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def contains_private_key(text: str) -> bool:
    """Whether `text` holds any PEM private key block (PKCS#1, PKCS#8, encrypted, EC...)."""
    return "PRIVATE KEY-----" in text


def validate_public_key_pem(pem: str, *, source: str = "public key") -> str:
    """Check that `pem` is one trusted-key-worthy RSA public key; return it normalized.

    Accepts only SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`) of an RSA key with at
    least 2048 bits, and refuses anything carrying private key material, so that a
    trust store can never leak a signing key. The result ends in exactly one newline.
    """
    if contains_private_key(pem):
        raise PrivateKeyMaterialError(
            f"{source}: contains private key material; only public keys "
            f"({PUBLIC_KEY_BEGIN}) may be trusted"
        )
    text = pem.strip()
    # Text after the END line would be kept in the trust store and hashed into the key ID.
    if (
        not text.startswith(PUBLIC_KEY_BEGIN)
        or not text.endswith(PUBLIC_KEY_END)
        or text.count("-----BEGIN") != 1
        or text.count("-----END") != 1
    ):
        raise KeyMaterialError(
            f"{source}: not a single SubjectPublicKeyInfo PEM key: expected one "
            f"{PUBLIC_KEY_BEGIN} block (PKCS#1 'BEGIN RSA PUBLIC KEY' is not accepted)"
        )
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise KeyMaterialError(f"{source}: the PEM block does not decode to a public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyMaterialError(f"{source}: only RSA keys are accepted, got {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise KeyMaterialError(
            f"{source}: RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required"
        )
    return text + "\n"


def write_keypair_file(path: Path, private_key: rsa.RSAPrivateKey) -> None:
    """Write a keypair file with mode 0600, like Opstrace's `ta-create-keypair`.

    Refuses to replace a file holding a different key, so that an export can never
    destroy the only copy of another signing key. The file is created with 0600 from
    the start (never world-readable, not even briefly).
    """
    data = private_key_pem(private_key)
    if path.exists():
        existing = load_private_key_file(path)
        if public_key_pem(existing) != public_key_pem(private_key):
            raise KeyMaterialError(
                f"{path}: already holds a different private key; refusing to overwrite it "
                "(move it away or choose another path)"
            )
        os.chmod(path, 0o600)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def directory_problem(path: Path) -> str | None:
    """Why private keys cannot be written into directory `path` (made if missing), or None.

    Tried, not inferred from permission bits (root passes every `os.access` check, and
    /proc or a read-only mount refuse writes whatever the bits say): a file is made and
    removed in `path` if it exists, else a directory in its nearest existing ancestor,
    which is what the export then does. Nothing is left behind.
    """
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"({path}): {existing} is a file, not a directory"
    try:
        if existing == path:
            handle, probe = tempfile.mkstemp(dir=existing, prefix=".opstrace-probe-")
            os.close(handle)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".opstrace-probe-"))
    except OSError as error:
        verb = "cannot be written" if existing == path else f"cannot be created in {existing}"
        return f"({path}) {verb}: refused ({(error.strerror or 'no reason given').lower()})"
    return None


def export_directory_problem(as_written: str, path: Path) -> str | None:
    """Why private keys cannot be exported to `as_written` (`path` on this machine), with
    the fix; or None."""
    if problem := directory_problem(path):
        return (
            f"{as_written!r} {problem}: choose a directory you can write to, or fix its permissions"
        )
    return None


def load_private_key_file(path: Path) -> rsa.RSAPrivateKey:
    """Read an RSA keypair file (PKCS#8 or PKCS#1 PEM, unencrypted)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KeyMaterialError(f"{path}: cannot read keypair file: {error.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(
            f"{path}: not an unencrypted PEM private key (expected a keypair file "
            "as written by ta-create-keypair)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"{path}: only RSA keys are accepted, got {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise KeyMaterialError(
            f"{path}: RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required"
        )
    return key


def key_set(public_keys: Iterable[str]) -> dict[str, str]:
    """Opstrace's key set: key ID -> PEM, sorted by key ID, each key validated."""
    entries = {}
    for index, pem in enumerate(public_keys):
        normalized = validate_public_key_pem(pem, source=f"public key #{index}")
        entries[key_id(normalized)] = normalized
    if not entries:
        raise KeySetError("a key set needs at least one public key")
    return dict(sorted(entries.items()))


def key_bindings(entries: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Key ID -> the one tenant it signs for, from (PEM, tenant or None) entries.

    A key listed once without a tenant is instance-wide and gets no binding; a key
    bound to two different tenants is refused (a key serves one tenant or all).
    """
    bound: dict[str, str] = {}
    instance_wide: set[str] = set()
    for pem, tenant in entries:
        kid = key_id(validate_public_key_pem(pem))
        if tenant is None:
            instance_wide.add(kid)
        elif bound.setdefault(kid, tenant) != tenant:
            raise KeySetError(
                f"key {kid} is bound to tenants {bound[kid]!r} and {tenant!r}: a key signs "
                "for one tenant, or (in trustedKeys without a tenant) for all"
            )
    return {kid: tenant for kid, tenant in sorted(bound.items()) if kid not in instance_wide}


def key_set_json(keys: Mapping[str, str]) -> str:
    """The key set as the JSON text an Opstrace authenticator loads."""
    return json.dumps(dict(sorted(keys.items())), indent=None, separators=(",", ":"))


def parse_key_set_json(text: str, *, source: str = "key set") -> dict[str, str]:
    """Load and check a key set JSON document the way an Opstrace authenticator does.

    A key ID that does not match its PEM, a non-RSA or private key, a wrong shape or
    an empty set are errors (Opstrace treats them as fatal configuration errors).
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeySetError(f"{source}: not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise KeySetError(f"{source}: must be a JSON object mapping key IDs to PEM strings")
    return check_key_set(document, source=source)


def check_key_set(key_set: Mapping[str, str], *, source: str = "key set") -> dict[str, str]:
    """Check a key set as an Opstrace authenticator does; return it normalized, sorted.

    Every key must be an acceptable public key whose ID is the one computed from its
    PEM (so an ID is always 40 lowercase hex digits); an empty set is an error.
    """
    if not key_set:
        raise KeySetError(f"{source}: is empty; a key set needs at least one public key")
    checked = {}
    for kid, pem in key_set.items():
        normalized = validate_public_key_pem(pem, source=f"{source}[{kid!r}]")
        if key_id(normalized) != kid:
            raise KeySetError(
                f"{source}[{kid!r}]: key ID does not match the key (its ID is {key_id(normalized)})"
            )
        checked[kid] = normalized
    return dict(sorted(checked.items()))


def jwks(keys: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    """A standard JWKS document (RFC 7517) for the key set, with the same key IDs."""
    entries = []
    for kid, pem in sorted(keys.items()):
        key = serialization.load_pem_public_key(pem.encode("ascii"))
        assert isinstance(key, rsa.RSAPublicKey)
        numbers = key.public_numbers()
        entries.append(
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": _b64url_uint(numbers.n),
                "e": _b64url_uint(numbers.e),
            }
        )
    return {"keys": entries}


def stand_in_public_key(seed: str, bits: int = 2048) -> str:
    """A distinct RSA public key of `bits` for `seed` that no private key belongs to.

    Exactly as long as a real key of that size, so documents rendered with stand-ins
    have the real documents' sizes; deterministic, so plans made with them are stable.
    """
    blocks = (bits + 255) // 256
    stream = b"".join(
        hashlib.sha256(f"{seed}/{block}".encode()).digest() for block in range(blocks)
    )
    modulus = int.from_bytes(stream, "big") >> (blocks * 256 - bits) | (1 << (bits - 1)) | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
