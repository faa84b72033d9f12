"""HTTPS on every endpoint: each tenant's own certificate by SNI, nothing for other names,
HTTP/2 by ALPN, modern TLS only, and a plain-HTTP port that forwards nothing."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from opstrace import names
from opstrace.gateway.haproxy import PLAIN_HTTP_BODY, PLAIN_HTTP_STATUS, REFUSAL_CONTENT_TYPE
from tests.e2e.conftest import METRICS_QUERY_PREFIX, Minted
from tests.e2e.harness import (
    CLIENT_TIMEOUT_SECONDS,
    CURL,
    NEEDS_CURL,
    NEEDS_HAPROXY,
    TENANTS,
    Gateway,
    Recorder,
    bearer,
    client_context,
    gateway_ca,
    host,
    peer_certificate,
    plain_request,
    san_names,
    unique_path,
    websocket_echo,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

SERVED = (names.SYSTEM_TENANT, *TENANTS)


@pytest.mark.parametrize("service", names.ENDPOINT_SERVICES)
@pytest.mark.parametrize("tenant", SERVED)
def test_each_endpoint_presents_its_own_tenants_certificate(
    gateway: Gateway, tenant: str, service: str
) -> None:
    certificate = peer_certificate(gateway.port, host(service, tenant))  # verified by the CA
    assert san_names(certificate) == [host("cortex", tenant), host("loki", tenant)]


@pytest.mark.parametrize(
    "server_name",
    [
        "cortex.unknown.acme.example.com",
        "cortex.prod.other.example.com",
        "acme.example.com",
        "example.com",
        "localhost",
        None,
    ],
)
def test_a_name_that_is_no_endpoint_gets_no_certificate(
    gateway: Gateway, server_name: str | None
) -> None:
    context = client_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(
            ("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_SECONDS
        ) as raw,
        pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|HANDSHAKE_FAILURE"),
    ):
        context.wrap_socket(raw, server_hostname=server_name)


@pytest.mark.parametrize(
    ("offered", "selected"), [(("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1")]
)
def test_alpn_selects_http2_when_the_client_offers_it(
    gateway: Gateway, offered: tuple[str, ...], selected: str
) -> None:
    with (
        socket.create_connection(
            ("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_SECONDS
        ) as raw,
        client_context(offered).wrap_socket(raw, server_hostname=host("cortex", "prod")) as tls,
    ):
        assert tls.selected_alpn_protocol() == selected


@NEEDS_CURL
def test_an_http2_request_is_authenticated_and_forwarded(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    assert CURL is not None
    endpoint = host("cortex", "prod")
    path = unique_path("/api/v1/query")
    result = subprocess.run(
        [
            CURL,
            "--http2",
            "--silent",
            "--show-error",
            "--cacert",
            str(gateway_ca().file),
            "--resolve",
            f"{endpoint}:{gateway.port}:127.0.0.1",
            "--header",
            f"Authorization: Bearer {minted['prod'].token}",
            "--write-out",
            "\n%{http_version} %{http_code}",
            f"https://{endpoint}:{gateway.port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_SECONDS,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "2 200"
    arrived = upstreams["cortex_query"].arrived(METRICS_QUERY_PREFIX + path)
    assert arrived.values("X-Scope-OrgID") == ["prod"]
    assert arrived.values("Authorization") == []


@pytest.mark.parametrize(
    ("version", "cipher", "accepted"),
    [
        (ssl.TLSVersion.TLSv1_3, None, True),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", True),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", True),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256", False),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA", False),
    ],
    ids=["tls1.3", "tls1.2-aes-gcm", "tls1.2-chacha20", "tls1.2-cbc-sha256", "tls1.2-cbc-sha1"],
)
def test_only_tls_1_2_and_later_with_aead_ciphers_is_accepted(
    gateway: Gateway, version: ssl.TLSVersion, cipher: str | None, accepted: bool
) -> None:
    context = client_context()
    context.maximum_version = version
    if cipher is not None:
        context.set_ciphers(cipher)
    with socket.create_connection(
        ("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_SECONDS
    ) as raw:
        if accepted:
            with context.wrap_socket(raw, server_hostname=host("cortex", "prod")) as tls:
                assert tls.version() == version.name.replace("_", ".")
        else:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname=host("cortex", "prod"))


@pytest.mark.parametrize(
    ("method", "host_header", "path"),
    [
        ("POST", host("cortex", "prod"), "/api/v1/push"),
        ("GET", host("cortex", "prod"), "/api/v1/query?query=up"),
        ("POST", host("loki", "prod"), "/loki/api/v1/push"),
        ("GET", host("cortex", "prod"), "/ingester/shutdown"),
        ("GET", "cortex.unknown.acme.example.com", "/api/v1/query"),
        ("GET", "127.0.0.1", "/"),
    ],
)
def test_plain_http_refuses_every_request_and_forwards_nothing(
    gateway: Gateway,
    minted: dict[str, Minted],
    upstreams: dict[str, Recorder],
    method: str,
    host_header: str,
    path: str,
) -> None:
    before = sum(len(recorder.requests) for recorder in upstreams.values())
    response = plain_request(
        gateway.http_port, host_header, path, bearer(minted["prod"].token), method=method
    )
    assert (response.status, response.body, response.content_type) == (
        PLAIN_HTTP_STATUS,
        PLAIN_HTTP_BODY,
        REFUSAL_CONTENT_TYPE,
    )
    assert response.header("Location") is None
    assert sum(len(recorder.requests) for recorder in upstreams.values()) == before


def test_loki_tail_websocket_upgrade_is_passed_through(
    gateway: Gateway, minted: dict[str, Minted], upstreams: dict[str, Recorder]
) -> None:
    path = unique_path("/loki/api/v1/tail")
    authorization = f"Authorization: Bearer {minted['prod'].token}\r\n"
    echoed = websocket_echo(gateway.port, host("loki", "prod"), path, authorization, b"frame bytes")
    assert echoed == b"frame bytes"
    assert upstreams["loki_query"].arrived(path).values("X-Scope-OrgID") == ["prod"]
