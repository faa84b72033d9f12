"""Token scopes in a real HAProxy: each row is a token's `scope` claim and a request; the
gateway's answer must be the table's and the reference's (`routes.route` for the scope the
route needs, then `data_token.authenticate`), and a refused request reaches no upstream.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from opstrace import data_token, scopes
from opstrace.gateway import routes
from tests.e2e.conftest import METRICS_QUERY_PREFIX
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    Signer,
    host,
    request,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

SILENCE = f"/alertmanager/api/v2/silence/{uuid.uuid4()}"
LACKS = scopes.MISSING_SCOPE_PREFIX

# (scope claim or None for no claim, service, method, path, status, body)
ROWS: list[tuple[Any, str, str, str, int, str]] = [
    (None, "cortex", "POST", "/api/v1/push", 200, ""),
    (None, "cortex", "DELETE", SILENCE, 200, ""),
    ("metrics:write", "cortex", "POST", "/api/v1/push", 200, ""),
    ("metrics:write", "cortex", "POST", "/otlp/v1/metrics", 200, ""),
    ("metrics:read", "cortex", "POST", "/otlp/v1/metrics", 403, LACKS + "metrics:write"),
    ("logs:write", "loki", "POST", "/otlp/v1/logs", 200, ""),
    ("metrics:write", "loki", "POST", "/otlp/v1/logs", 403, LACKS + "logs:write"),
    ("metrics:write", "cortex", "GET", "/api/v1/query", 403, LACKS + "metrics:read"),
    ("metrics:read", "cortex", "GET", "/api/v1/query", 200, ""),
    ("metrics:read", "cortex", "POST", "/api/v1/query_range", 200, ""),
    ("metrics:read", "cortex", "POST", "/api/v1/read", 200, ""),
    ("metrics:read", "cortex", "POST", "/api/v1/push", 403, LACKS + "metrics:write"),
    ("metrics:read", "loki", "GET", "/loki/api/v1/query", 403, LACKS + "logs:read"),
    ("logs:write metrics:write", "loki", "POST", "/loki/api/v1/push", 200, ""),
    ("logs:write", "loki", "GET", "/loki/api/v1/tail", 403, LACKS + "logs:read"),
    ("logs:read", "loki", "GET", "/loki/api/v1/query_range", 200, ""),
    ("rules:read", "cortex", "GET", "/prometheus/config/v1/rules", 200, ""),
    ("rules:read", "cortex", "GET", "/prometheus/api/v1/rules", 200, ""),
    ("rules:read", "cortex", "POST", "/prometheus/config/v1/rules/ns", 403, LACKS + "rules:write"),
    ("rules:write", "loki", "DELETE", "/loki/api/v1/rules/ns", 200, ""),
    ("metrics:read", "cortex", "GET", "/api/v1/rules", 403, LACKS + "rules:read"),
    ("alerts:read", "cortex", "GET", "/alertmanager/api/v2/silences", 200, ""),
    ("alerts:read", "cortex", "POST", "/alertmanager/api/v2/silences", 403, LACKS + "alerts:write"),
    ("alerts:read", "cortex", "DELETE", SILENCE, 403, LACKS + "alerts:write"),
    ("alerts:write", "cortex", "DELETE", SILENCE, 200, ""),
    ("alerts:write", "cortex", "GET", "/api/v1/alerts", 403, LACKS + "alerts:read"),
    ("alerts:read alerts:write", "cortex", "POST", "/api/v1/alerts", 200, ""),
    # A malformed claim is a bad token, whatever the route.
    ("metrics:read,metrics:write", "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
    ("metrics:read  logs:read", "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
    ("Metrics:read", "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
    ("", "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
    (["metrics:read"], "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
    (7, "cortex", "GET", "/api/v1/query", 401, data_token.BAD_TOKEN),
]


def _authorization(signer: Signer, tenant: str, claim: Any) -> str:
    overrides = {} if claim is None else {scopes.CLAIM: claim}
    return "Bearer " + signer.token(tenant, **overrides)


@pytest.mark.parametrize(
    ("claim", "service", "method", "path", "status", "body"),
    ROWS,
    ids=[f"{claim!r} {method} {service} {path}" for claim, service, method, path, *_ in ROWS],
)
def test_a_scoped_token_passes_only_the_routes_its_scopes_cover(
    claim: Any,
    service: str,
    method: str,
    path: str,
    status: int,
    body: str,
    signer: Signer,
    trusted: dict[str, str],
    bindings: dict[str, str],
    gateway: Gateway,
    upstreams: dict[str, Recorder],
) -> None:
    authorization = _authorization(signer, "prod", claim)
    before = sum(len(recorder.requests) for recorder in upstreams.values())
    chosen = routes.route(service, method, path, METRICS_QUERY_PREFIX)
    assert isinstance(chosen, routes.Route)

    response = request(
        gateway.port,
        host(service, "prod"),
        path,
        {"Authorization": authorization},
        method=method,
        body=b"" if method == "POST" else None,
    )
    reference = data_token.authenticate(
        authorization, "prod", trusted, "acme", int(time.time()), bindings, chosen.scope
    )

    assert (reference.status, reference.body) == (status, body)
    if status == 200:
        assert response.status == 200, response
    else:
        assert (response.status, response.body) == (status, body)
        after = sum(len(recorder.requests) for recorder in upstreams.values())
        assert after == before, "a refused request reached an upstream"


def test_another_tenants_scoped_token_is_refused_for_its_tenant_first(
    signer: Signer, gateway: Gateway
) -> None:
    authorization = _authorization(signer, "staging", "logs:write")
    response = request(
        gateway.port, host("cortex", "prod"), "/api/v1/query", {"Authorization": authorization}
    )
    assert (response.status, response.body) == (
        401,
        data_token.UNEXPECTED_TENANT_PREFIX + "staging",
    )


def test_a_remembered_token_is_still_held_to_its_scopes(signer: Signer, gateway: Gateway) -> None:
    authorization = _authorization(signer, "prod", "metrics:read")
    headers = {"Authorization": authorization}
    assert request(gateway.port, host("cortex", "prod"), "/api/v1/labels", headers).status == 200

    # The same token, now in the verified-token cache, on a route it may not use.
    pushed = request(
        gateway.port, host("cortex", "prod"), "/api/v1/push", headers, method="POST", body=b""
    )

    assert (pushed.status, pushed.body) == (403, LACKS + "metrics:write")
