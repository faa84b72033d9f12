"""Searching text for a private key's secrets in every form they could leak in."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY_MARKER = "PRIVATE KEY"
"""In every PEM private key's BEGIN line, whatever the format."""


def private_fragments(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Every form in which this key's secrets could leak (PEM, numbers), by a printable label."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    # Full 64-character lines only: a short last line could match anything by chance.
    body = [line for line in pem.splitlines()[1:-1] if len(line) == 64]
    fragments = {
        "PEM marker": PRIVATE_KEY_MARKER,
        **{f"PEM line {i}": s for i, s in enumerate(body)},
    }
    numbers = key.private_numbers()
    for name in ("d", "p", "q", "dmp1", "dmq1", "iqmp"):
        value: int = getattr(numbers, name)
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        fragments[f"{name} decimal"] = str(value)
        fragments[f"{name} hex"] = format(value, "x")
        fragments[f"{name} HEX"] = format(value, "X")
        fragments[f"{name} base64url"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return fragments


def leaked(text: str, key: rsa.RSAPrivateKey) -> list[str]:
    """Labels of the key's secrets found in `text`; never the secrets, even in a failure."""
    return [label for label, fragment in private_fragments(key).items() if fragment in text]
