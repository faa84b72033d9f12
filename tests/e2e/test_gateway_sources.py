"""Network allowlists in a real HAProxy: a tenant's endpoints take requests only from its
networks within the instance's, the system tenant from the instance's and the instance's
own egress addresses too; any other address gets 403 before its credentials are read, and
nothing is forwarded. Clients connect from different loopback addresses (127.0.0.0/8 all
reach a listener on 127.0.0.1), so the gateway sees each one's own address, as behind an
NLB that preserves it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from opstrace import names
from opstrace.gateway.haproxy import NOT_FOUND_BODY, REFUSAL_CONTENT_TYPE
from opstrace.gateway.sources import REFUSED_BODY
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    Response,
    Signer,
    TLSConnection,
    bearer,
    gateway_settings,
    host,
    send,
    started_gateway,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

INSTANCE_NETWORKS = ("127.0.0.0/24",)
OWN = MappingProxyType({"prod": ("127.0.0.0/30",), "staging": ("127.0.0.1/32",)})
"""prod's network holds staging's: an address in both has staging's as its longest
listed network, and prod must still take it."""
EGRESS = ("127.0.9.9/32",)
"""The instance's own address, outside the instance's list: the system tenant's only."""


@pytest.fixture(scope="module")
def listed_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    upstreams: dict[str, Recorder],
) -> Iterator[Gateway]:
    directory: Path = tmp_path_factory.mktemp("sources") / "config"
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    settings = dataclasses.replace(
        gateway_settings(directory, urls),
        instance_networks=INSTANCE_NETWORKS,
        tenant_networks=OWN,
    )
    with started_gateway(settings, trusted, egress=EGRESS) as running:
        yield running


def query(gateway: Gateway, tenant: str, source: str, token: str | None) -> Response:
    """A metrics query at `tenant`'s endpoint from `source`, with `tenant`'s token."""
    connection = TLSConnection(gateway.port, host("cortex", tenant), source=source)
    try:
        headers = bearer(token) if token else {}
        return send(connection, host("cortex", tenant), "/api/v1/labels", headers)
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("tenant", "source"),
    [
        ("prod", "127.0.0.1"),  # in prod's /30 and in staging's /32 (the longest)
        ("prod", "127.0.0.2"),  # in prod's /30 only
        ("staging", "127.0.0.1"),
        (names.SYSTEM_TENANT, "127.0.0.200"),  # the instance's list
        (names.SYSTEM_TENANT, EGRESS[0].removesuffix("/32")),  # the instance's egress
    ],
)
def test_a_listed_address_is_served(
    listed_gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    tenant: str,
    source: str,
) -> None:
    before = len(upstreams["cortex_query"].requests)

    response = query(listed_gateway, tenant, source, signer.token(tenant))

    assert response.status == 200, response
    assert len(upstreams["cortex_query"].requests) == before + 1


@pytest.mark.parametrize(
    ("tenant", "source"),
    [
        ("prod", "127.0.0.4"),  # the instance's list, not prod's
        ("staging", "127.0.0.2"),  # prod's, not staging's
        ("prod", "127.0.1.1"),  # nobody's
        ("prod", EGRESS[0].removesuffix("/32")),  # the system tenant's only
        (names.SYSTEM_TENANT, "127.0.1.1"),
    ],
)
def test_any_other_address_gets_403_and_nothing_is_forwarded(
    listed_gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    tenant: str,
    source: str,
) -> None:
    before = sum(len(recorder.requests) for recorder in upstreams.values())

    response = query(listed_gateway, tenant, source, signer.token(tenant))

    assert (response.status, response.body) == (403, REFUSED_BODY), response
    assert response.header("Content-Type") == REFUSAL_CONTENT_TYPE
    assert sum(len(recorder.requests) for recorder in upstreams.values()) == before


def test_a_refused_address_is_refused_before_its_credentials_are_read(
    listed_gateway: Gateway,
) -> None:
    response = query(listed_gateway, "prod", "127.0.1.1", token=None)

    assert (response.status, response.body) == (403, REFUSED_BODY)


def test_an_unknown_host_is_still_404_from_any_address(listed_gateway: Gateway) -> None:
    connection = TLSConnection(listed_gateway.port, host("cortex", "prod"), source="127.0.1.1")
    try:
        response = send(connection, "cortex.nobody.acme.example.com", "/api/v1/labels")
    finally:
        connection.close()

    assert (response.status, response.body) == (404, NOT_FOUND_BODY)
