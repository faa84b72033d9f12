"""How the instance's keys spread over ConfigMaps: sixteen shards, by who holds each key.

A ConfigMap holds at most 1 MiB, about 1,200 RSA-2048 keys in the gateway's form, so an
instance's keys live in sixteen shards of each document that grows with them (the
gateway's key files and lines, the trust store, its JWKS). A key's shard follows from
its holder, a name known before the key exists: its credential (`<tenant>/<token>`), its
tenant where the tenant signs every token with one key file (so that the shared key is
in one shard), or its key ID for a `trustedKeys` entry. So a plan shows exactly the
shards a change touches (a key ID is known only once minted), and adding, revoking or
removing a credential changes its shard only. Names hash uniformly: shards fill evenly.
"""

from __future__ import annotations

import hashlib
from typing import Final

SHARDS: Final = tuple("0123456789abcdef")
"""The shards, in the order their parts join."""


def shard_of(holder: str) -> str:
    """The shard of the keys of this holder: the first hex digit of the SHA-1 of its name."""
    return hashlib.sha1(holder.encode("utf-8"), usedforsecurity=False).hexdigest()[0]
