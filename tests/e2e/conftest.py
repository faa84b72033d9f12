"""Fixtures of the gateway's end-to-end tests: keys, tokens, upstreams, a running HAProxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.rules import keys
from tests.e2e.harness import INSTANCE, Gateway, Recorder, Signer, running_gateway
from tests.provider_host import ProviderHost, mint
from tests.provider_host import provider_host as provider_host  # the fixture, re-exported

TENANTS = ("prod", "staging")


@dataclass(frozen=True)
class Minted:
    """A token and its public key, made by the real token provider in its host process."""

    token: str
    kid: str
    public_pem: str


@pytest.fixture(scope="session")
def minted(provider_host: ProviderHost) -> dict[str, Minted]:
    """Tenant -> its default token, minted through `python -m pulumi.dynamic`."""
    tokens = {}
    for tenant in ("system", *TENANTS):
        outs: dict[str, Any] = mint(provider_host, instance=INSTANCE, tenant=tenant)
        tokens[tenant] = Minted(outs["token"], outs["key_id"], outs["public_key_pem"])
    return tokens


@pytest.fixture(scope="session")
def signer() -> Signer:
    """A trusted key whose tokens the tests shape (expired, wrong aud, ...)."""
    return Signer.generate()


@pytest.fixture(scope="session")
def untrusted() -> Signer:
    """A key the gateway does not trust."""
    return Signer.generate()


@pytest.fixture(scope="session")
def trusted(minted: dict[str, Minted], signer: Signer) -> dict[str, str]:
    """The gateway's key set: every minted token's key and the test signer's."""
    return keys.key_set([*(m.public_pem for m in minted.values()), signer.public_pem])


@pytest.fixture(scope="module")
def cortex() -> Iterator[Recorder]:
    with Recorder("cortex").running() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def loki() -> Iterator[Recorder]:
    with Recorder("loki").running() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    cortex: Recorder,
    loki: Recorder,
) -> Iterator[Gateway]:
    directory: Path = tmp_path_factory.mktemp("gateway")
    with running_gateway(directory, trusted, cortex.url, loki.url, TENANTS) as running:
        yield running
