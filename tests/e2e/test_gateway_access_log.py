"""The gateway's access log as an audit trail, in a real HAProxy: each request's line names
the tenant, the credential (its name and key ID), the route, the scope, the status and the
bytes, and never the token."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from opstrace.gateway.haproxy import ACCESS_LOG_FIELDS
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Signer,
    bearer,
    host,
    request,
    wait_until,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]


def logged(gateway: Gateway, send: Callable[[], object]) -> dict[str, str]:
    """The audit fields of the one access log line written for the request `send` makes
    (the log's lines after the ones already there; this module's tests run one by one)."""
    before = len(gateway.log_text())
    send()
    lines: list[str] = []

    def found() -> bool:
        lines[:] = [line for line in gateway.log_text()[before:].splitlines() if "route=" in line]
        return len(lines) == 1

    wait_until(found, "the request's access log line")
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


def sender(gateway: Gateway, token: str, path: str, method: str = "GET") -> Callable[[], object]:
    body = b"x" * 100 if method == "POST" else None
    headers = bearer(token)
    return lambda: request(
        gateway.port, host("cortex", "prod"), path, headers, method=method, body=body
    )


def test_an_accepted_request_names_tenant_credential_key_route_scope_and_bytes(
    gateway: Gateway, minted: dict[str, Minted]
) -> None:
    token = minted["prod"].token

    fields = logged(gateway, sender(gateway, token, "/api/v1/push", "POST"))

    assert [name for name, _ in ACCESS_LOG_FIELDS] == list(fields)
    assert fields["tenant"] == "prod"
    assert fields["credential"] == "prod/default"
    assert fields["key"] == minted["prod"].kid
    assert fields["route"] == "cortex:/api/v1/push"
    assert fields["scope"] == "metrics:write"
    assert (fields["status"], fields["method"]) == ("200", "POST")
    assert int(fields["bytes_in"]) > 100
    assert token not in gateway.log_text()


def test_a_refused_scoped_token_is_logged_with_its_credential_and_403(
    gateway: Gateway, signer: Signer
) -> None:
    token = signer.token("prod", scope="metrics:read")

    fields = logged(gateway, sender(gateway, token, "/api/v1/push", "POST"))

    assert (fields["credential"], fields["key"]) == ("trustedKeys[0]", signer.kid)
    assert (fields["status"], fields["scope"]) == ("403", "metrics:write")


def test_a_token_of_an_untrusted_key_names_no_credential(
    gateway: Gateway, untrusted: Signer
) -> None:
    fields = logged(gateway, sender(gateway, untrusted.token("prod"), "/api/v1/labels"))

    assert (fields["credential"], fields["key"], fields["status"]) == ("-", "-", "401")
    assert untrusted.kid not in gateway.log_text()
