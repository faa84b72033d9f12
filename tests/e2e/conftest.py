"""Fixtures of the gateway's end-to-end tests: keys, tokens, upstreams, a running HAProxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstrace import keys, names
from tests.e2e.harness import (
    INSTANCE,
    TENANTS,
    Gateway,
    Recorder,
    Signer,
    recorders,
    running_gateway,
)
from tests.provider_host import ProviderHost, mint
from tests.provider_host import provider_host as provider_host  # the fixture, re-exported

METRICS_QUERY_PREFIX = "/prometheus"
"""The shared gateway fronts a Mimir-style metrics backend (query API under /prometheus)."""


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
    """A trusted, instance-wide key whose tokens the tests shape (expired, wrong aud, ...)."""
    return Signer.generate()


@pytest.fixture(scope="session")
def bound_signer() -> Signer:
    """A trusted key bound to `prod`: its tokens are accepted at prod's endpoints only."""
    return Signer.generate()


@pytest.fixture(scope="session")
def untrusted() -> Signer:
    """A key the gateway does not trust."""
    return Signer.generate()


@pytest.fixture(scope="session")
def trusted(minted: dict[str, Minted], signer: Signer, bound_signer: Signer) -> dict[str, str]:
    """The gateway's key set: every minted token's key and the test signers'."""
    pems = [*(m.public_pem for m in minted.values()), signer.public_pem, bound_signer.public_pem]
    return keys.key_set(pems)


@pytest.fixture(scope="session")
def bindings(minted: dict[str, Minted], bound_signer: Signer) -> dict[str, str]:
    """Each minted key bound to its own tenant (as the program binds them), and the
    bound signer to prod; the signer stays instance-wide (a `trustedKeys` entry)."""
    return {**{m.kid: tenant for tenant, m in minted.items()}, bound_signer.kid: "prod"}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Recorder]]:
    with recorders() as running:
        yield running


@pytest.fixture(scope="session")
def credentials(minted: dict[str, Minted], signer: Signer) -> dict[str, str]:
    """Key ID -> credential name in the access log, as the program names them: each
    minted token `<tenant>/default`, the instance-wide signer a `trustedKeys` entry."""
    return {
        **{m.kid: names.credential_name(tenant, "default") for tenant, m in minted.items()},
        signer.kid: names.trusted_key_name(0),
    }


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    bindings: dict[str, str],
    credentials: dict[str, str],
    upstreams: dict[str, Recorder],
) -> Iterator[Gateway]:
    directory: Path = tmp_path_factory.mktemp("gateway") / "config"
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    with running_gateway(
        directory,
        trusted,
        urls,
        bindings=bindings,
        credentials=credentials,
        metrics_query_prefix=METRICS_QUERY_PREFIX,
    ) as running:
        yield running
