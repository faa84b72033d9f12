"""Tenants' Grafana hosts and the in-cluster listener in a real HAProxy (2.6 and 3.4).

`grafana.<tenant>...` is served for the tenants with a Grafana only: to that tenant's
Grafana (a recording upstream per tenant here), with no token, route, scope or rate rule
(Grafana authenticates its users itself: Authorization and cookies pass untouched), the
tenant's network allowlist still applied, X-Scope-OrgID removed, X-Forwarded-Proto and
X-Forwarded-For set by the gateway. The in-cluster listener has the same certificates and
rules but the allowlists: a client outside a tenant's networks is served there, with a
valid token for a data API host. Clients connect from different loopback addresses, so
the gateway sees each one's own address.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import MappingProxyType

import pytest

from opstrace import data_token, names
from opstrace.gateway.haproxy import GRAFANA_ROUTE, NOT_FOUND_BODY
from opstrace.gateway.routes import ROUTE_NOT_FOUND
from opstrace.gateway.sources import REFUSED_BODY
from tests.e2e.harness import (
    CLIENT_TIMEOUT_SECONDS,
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    Response,
    Signer,
    TLSConnection,
    bearer,
    client_context,
    gateway_settings,
    host,
    peer_certificate,
    san_names,
    send,
    started_gateway,
    unique_path,
    wait_until,
    websocket_echo,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

GRAFANA_TENANTS = ("prod", names.SYSTEM_TENANT)
"""The tenants with a Grafana; staging has none."""
INSTANCE_NETWORKS = ("127.0.0.0/24",)
OWN = MappingProxyType({"prod": ("127.0.0.0/30",)})
LISTED = "127.0.0.2"
"""Within prod's networks (and the instance's)."""
UNLISTED = "127.0.1.1"
"""Within nobody's: a tenant's Grafana pod, say, seen from the public listener."""


@pytest.fixture(scope="module")
def grafanas() -> Iterator[dict[str, Recorder]]:
    """Tenant -> its Grafana (records what reaches it)."""
    with ExitStack() as stack:
        yield {
            tenant: stack.enter_context(Recorder(f"grafana_{tenant}").running())
            for tenant in GRAFANA_TENANTS
        }


@pytest.fixture(scope="module")
def grafana_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    upstreams: dict[str, Recorder],
    grafanas: dict[str, Recorder],
) -> Iterator[Gateway]:
    directory: Path = tmp_path_factory.mktemp("grafana-hosts") / "config"
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    settings = dataclasses.replace(
        gateway_settings(directory, urls),
        instance_networks=INSTANCE_NETWORKS,
        tenant_networks=OWN,
        grafana_urls=MappingProxyType({t: grafanas[t].url for t in GRAFANA_TENANTS}),
    )
    with started_gateway(settings, trusted) as running:
        yield running


def call(
    port: int,
    host_header: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    source: str = LISTED,
    sni: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request from `source` on a fresh connection; SNI the Host's unless given."""
    connection = TLSConnection(port, sni or host_header, source=source)
    try:
        return send(connection, host_header, path, headers, method=method, body=body)
    finally:
        connection.close()


def forwarded(upstreams: dict[str, Recorder], grafanas: dict[str, Recorder]) -> int:
    """Requests that reached any upstream, data API or Grafana."""
    every = [*upstreams.values(), *grafanas.values()]
    return sum(len(recorder.requests) for recorder in every)


@pytest.mark.parametrize("tenant", GRAFANA_TENANTS)
def test_a_grafana_host_reaches_its_tenants_grafana_with_no_token(
    grafana_gateway: Gateway,
    upstreams: dict[str, Recorder],
    grafanas: dict[str, Recorder],
    tenant: str,
) -> None:
    path = unique_path("/d/abc/overview") + "&orgId=1"
    sent = {
        "Cookie": "grafana_session=0123abcd; theme=dark",
        "Authorization": "Bearer glsa_notAJwt_0123456789",
        "X-Scope-OrgID": "staging",
        "X-Forwarded-For": "203.0.113.9",
        "X-Real-IP": "203.0.113.9",
        "X-Forwarded-Proto": "http",
    }
    before = forwarded(upstreams, grafanas)

    response = call(grafana_gateway.port, host("grafana", tenant), path, sent)

    assert (response.status, response.body) == (200, f"grafana_{tenant} got GET {path}")
    arrived = grafanas[tenant].arrived(path)
    assert arrived.values("Cookie") == [sent["Cookie"]]
    assert arrived.values("Authorization") == [sent["Authorization"]]
    assert arrived.values("X-Scope-OrgID") == []
    assert arrived.values("X-Real-IP") == []
    assert arrived.values("X-Forwarded-For") == [LISTED]
    assert arrived.values("X-Forwarded-Proto") == ["https"]
    assert forwarded(upstreams, grafanas) == before + 1


def test_a_data_api_token_and_a_body_pass_to_grafana_untouched(
    grafana_gateway: Gateway, signer: Signer, grafanas: dict[str, Recorder]
) -> None:
    # Another tenant's valid token: Grafana's business, not the gateway's.
    token = signer.token("staging")
    path = unique_path("/login")
    body = b'{"user":"admin","password":"secret"}'

    response = call(
        grafana_gateway.port, host("grafana", "prod"), path, bearer(token), method="POST", body=body
    )

    assert response.status == 200, response
    arrived = grafanas["prod"].arrived(path)
    assert (arrived.method, arrived.body) == ("POST", body)
    assert arrived.values("Authorization") == [f"Bearer {token}"]


def test_a_data_api_host_never_reaches_a_grafana(
    grafana_gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    grafanas: dict[str, Recorder],
) -> None:
    token = bearer(signer.token("prod"))
    grafana_requests = sum(len(recorder.requests) for recorder in grafanas.values())

    for service in names.ENDPOINT_SERVICES:
        response = call(grafana_gateway.port, host(service, "prod"), "/login", token)
        assert (response.status, response.body) == (404, ROUTE_NOT_FOUND), service
    path = unique_path()
    served = call(grafana_gateway.port, host("cortex", "prod"), path, token)

    assert served.status == 200, served
    assert upstreams["cortex_query"].arrived(path).values("X-Scope-OrgID") == ["prod"]
    assert sum(len(recorder.requests) for recorder in grafanas.values()) == grafana_requests


def test_a_tenant_without_grafana_has_no_grafana_host(
    grafana_gateway: Gateway, upstreams: dict[str, Recorder], grafanas: dict[str, Recorder]
) -> None:
    before = forwarded(upstreams, grafanas)
    context = client_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(
            ("127.0.0.1", grafana_gateway.port), timeout=CLIENT_TIMEOUT_SECONDS
        ) as raw,
        pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|HANDSHAKE_FAILURE"),
    ):
        context.wrap_socket(raw, server_hostname=host("grafana", "staging"))

    for grafana_host in (host("grafana", "staging"), host("grafana", "nobody")):
        response = call(grafana_gateway.port, grafana_host, "/login", sni=host("cortex", "staging"))
        assert (response.status, response.body) == (404, NOT_FOUND_BODY), grafana_host
    assert forwarded(upstreams, grafanas) == before


@pytest.mark.parametrize(
    ("tenant", "source"),
    [("prod", "127.0.0.9"), ("prod", UNLISTED), (names.SYSTEM_TENANT, UNLISTED)],
)
def test_the_allowlist_refuses_a_grafana_host_on_the_public_listener(
    grafana_gateway: Gateway,
    upstreams: dict[str, Recorder],
    grafanas: dict[str, Recorder],
    tenant: str,
    source: str,
) -> None:
    before = forwarded(upstreams, grafanas)

    response = call(
        grafana_gateway.port, host("grafana", tenant), "/login", {"Cookie": "a=b"}, source=source
    )

    assert (response.status, response.body) == (403, REFUSED_BODY), response
    assert forwarded(upstreams, grafanas) == before


def test_the_internal_listener_skips_the_allowlist_but_no_other_rule(
    grafana_gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    grafanas: dict[str, Recorder],
) -> None:
    endpoint, own = host("cortex", "prod"), bearer(signer.token("prod"))
    public = call(grafana_gateway.port, endpoint, unique_path(), own, source=UNLISTED)
    assert (public.status, public.body) == (403, REFUSED_BODY)
    before = forwarded(upstreams, grafanas)

    def internal(path: str, headers: dict[str, str] | None) -> Response:
        return call(grafana_gateway.internal_port, endpoint, path, headers, source=UNLISTED)

    no_token = internal(unique_path(), None)
    assert (no_token.status, no_token.body) == (401, data_token.MISSING)
    no_route = internal("/login", own)
    assert (no_route.status, no_route.body) == (404, ROUTE_NOT_FOUND)
    other = internal(unique_path(), bearer(signer.token("staging")))
    assert (other.status, other.body) == (401, f"{data_token.UNEXPECTED_TENANT_PREFIX}staging")
    assert forwarded(upstreams, grafanas) == before

    path = unique_path()
    served = internal(path, own)

    assert served.status == 200, served
    arrived = upstreams["cortex_query"].arrived(path)
    assert (arrived.values("X-Scope-OrgID"), arrived.values("Authorization")) == (["prod"], [])
    assert forwarded(upstreams, grafanas) == before + 1


def test_a_grafana_host_on_the_internal_listener_is_served_from_anywhere(
    grafana_gateway: Gateway, grafanas: dict[str, Recorder]
) -> None:
    path = unique_path("/api/health")

    response = call(grafana_gateway.internal_port, host("grafana", "prod"), path, source=UNLISTED)

    assert response.status == 200, response
    assert grafanas["prod"].arrived(path).values("X-Forwarded-For") == [UNLISTED]


def test_the_internal_listener_presents_the_same_certificates(grafana_gateway: Gateway) -> None:
    for tenant in GRAFANA_TENANTS:
        certificate = peer_certificate(grafana_gateway.internal_port, host("grafana", tenant))
        assert host("grafana", tenant) in san_names(certificate)
    certificate = peer_certificate(grafana_gateway.internal_port, host("loki", "staging"))
    assert san_names(certificate) == [host("cortex", "staging"), host("loki", "staging")]


def test_a_websocket_upgrade_reaches_grafana_live(
    grafana_gateway: Gateway, grafanas: dict[str, Recorder]
) -> None:
    path = unique_path("/api/live/ws")
    cookie = "Cookie: grafana_session=0123abcd\r\n"
    echoed = websocket_echo(
        grafana_gateway.port, host("grafana", "prod"), path, cookie, b"live frame", LISTED
    )
    assert echoed == b"live frame"
    arrived = grafanas["prod"].arrived(path)
    assert arrived.values("Cookie") == ["grafana_session=0123abcd"]
    assert arrived.values("X-Scope-OrgID") == []


def test_the_access_log_names_the_tenant_and_no_credential(
    grafana_gateway: Gateway, signer: Signer
) -> None:
    expected = (
        f"tenant={names.SYSTEM_TENANT} credential=- key=- route={GRAFANA_ROUTE} scope=- status=200 "
    )
    # A token of a trusted key: never read at a Grafana host, so never named.
    token = bearer(signer.token(names.SYSTEM_TENANT))

    response = call(
        grafana_gateway.port,
        host("grafana", names.SYSTEM_TENANT),
        unique_path(),
        token,
        method="DELETE",
    )

    assert response.status == 200, response
    wait_until(
        lambda: any(
            line.startswith(expected)
            and line.endswith(f"client={LISTED} method=DELETE version=HTTP/1.1")
            for line in grafana_gateway.log_text().splitlines()
        ),
        "the Grafana request's access log line",
        timeout=10,
    )
