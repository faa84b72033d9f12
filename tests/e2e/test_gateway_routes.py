"""The path allowlist on a real HAProxy: every route, every method, admin paths, odd paths.

Each row is also asked of `routes.route`, the reference router: HAProxy must route
where the reference routes (the upstream and the path it gets) and refuse what it
refuses, with the same status, body and `Allow` header, before any upstream sees it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from opstrace import data_token
from opstrace.gateway import routes
from opstrace.gateway.haproxy import NOT_FOUND_BODY, REFUSAL_CONTENT_TYPE
from tests.e2e.conftest import METRICS_QUERY_PREFIX, Minted
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    bearer,
    host,
    request,
    unique_path,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

Expected = routes.Route | routes.Refusal
NOT_A_ROUTE = routes.Refusal(404, routes.ROUTE_NOT_FOUND)


def allowed_only(*methods: str) -> routes.Refusal:
    return routes.Refusal(405, routes.METHOD_NOT_ALLOWED, ", ".join(methods))


def to(backend: str, path: str) -> routes.Route:
    """Where a request goes; its scope is held to the scope table in test_gateway_scopes.py
    and tests/test_routes.py, and left out here (`unscoped`)."""
    return routes.Route(backend, path, "")


def unscoped(decision: Expected) -> Expected:
    return replace(decision, scope="") if isinstance(decision, routes.Route) else decision


def query(path: str) -> routes.Route:
    """A metrics query as the Mimir-style backend of the shared gateway gets it."""
    return to("cortex_query", METRICS_QUERY_PREFIX + path)


def ruler(path: str) -> routes.Route:
    """The ruler's Prometheus API as the shared gateway's metrics backend gets it."""
    return to("cortex_ruler", METRICS_QUERY_PREFIX + path)


def ruler_config(path: str) -> routes.Route:
    """The ruler's configuration API as the shared gateway's backend (Cortex's layout)
    gets it."""
    return to("cortex_ruler", routes.CORTEX_RULER_CONFIG_PATH + path)


CONFIG_API = routes.RULER_CONFIG_PATH
SILENCE_ID = "8f3c3b0e-6a6e-4c39-9a3f-1f2d9e5b7a10"


CORTEX_ROWS: list[tuple[str, str, Expected]] = [
    ("POST", "/api/v1/push", to("cortex_push", "/api/v1/push")),
    ("GET", "/api/v1/push", allowed_only("POST")),
    ("PUT", "/api/v1/push", allowed_only("POST")),
    ("POST", "/prometheus/api/v1/push", NOT_A_ROUTE),
    # OpenTelemetry's metrics, at the path the metrics backend serves them (Cortex's here).
    ("POST", "/otlp/v1/metrics", to("cortex_push", "/api/v1/otlp/v1/metrics")),
    ("GET", "/otlp/v1/metrics", allowed_only("POST")),
    ("POST", "/api/v1/otlp/v1/metrics", NOT_A_ROUTE),
    ("POST", "/otlp/v1/logs", NOT_A_ROUTE),
    ("POST", "/otlp/v1/traces", NOT_A_ROUTE),
    ("POST", "/otlp//v1/metrics", NOT_A_ROUTE),
    *[
        (method, f"{alias}/api/v1/{name}", query(f"/api/v1/{name}"))
        for name in ("query", "query_range", "query_exemplars", "series", "labels")
        for method in ("GET", "POST")
        for alias in ("", "/prometheus")
    ],
    *[
        (method, f"{alias}/api/v1/{name}", allowed_only("GET", "POST"))
        for name in ("query", "series")
        for method in ("DELETE", "PUT", "PATCH", "OPTIONS", "HEAD")
        for alias in ("", "/prometheus")
    ],
    *[
        ("GET", f"{alias}/api/v1/{name}", query(f"/api/v1/{name}"))
        for name in (
            "label/job/values",
            "label/__name__/values",
            "label/U__http_2e_method/values",
            "metadata",
            "status/buildinfo",
        )
        for alias in ("", "/prometheus")
    ],
    ("POST", "/api/v1/label/job/values", allowed_only("GET")),
    ("POST", "/prometheus/api/v1/metadata", allowed_only("GET")),
    # The ruler: its Prometheus-compatible rules and alerts, and its configuration API.
    ("GET", "/api/v1/rules", ruler("/api/v1/rules")),
    ("GET", "/prometheus/api/v1/rules", ruler("/api/v1/rules")),
    ("GET", "/prometheus/api/v1/alerts", ruler("/api/v1/alerts")),
    ("DELETE", "/api/v1/rules", allowed_only("GET")),
    ("POST", "/prometheus/api/v1/alerts", allowed_only("GET")),
    ("GET", CONFIG_API, ruler_config("")),
    ("POST", CONFIG_API, allowed_only("GET")),
    *[
        (method, f"{CONFIG_API}/{namespace}", ruler_config(f"/{namespace}"))
        for method in ("GET", "POST", "DELETE")
        for namespace in ("opstrace", "team-a_1", "node.rules", "_")
    ],
    *[
        (method, f"{CONFIG_API}/opstrace/{group}", ruler_config(f"/opstrace/{group}"))
        for method in ("GET", "DELETE")
        for group in ("latency", "node.rules", "x")
    ],
    ("POST", f"{CONFIG_API}/opstrace/latency", allowed_only("GET", "DELETE")),
    ("PUT", f"{CONFIG_API}/opstrace", allowed_only("GET", "POST", "DELETE")),
    # The tenant's Alertmanager: its configuration (unprefixed /api/v1/alerts) and alerts.
    *[
        (method, "/api/v1/alerts", to("cortex_alertmanager", "/api/v1/alerts"))
        for method in ("GET", "POST", "DELETE")
    ],
    ("PUT", "/api/v1/alerts", allowed_only("GET", "POST", "DELETE")),
    *[
        (
            method,
            "/alertmanager/api/v2/alerts",
            to("cortex_alertmanager", "/alertmanager/api/v2/alerts"),
        )
        for method in ("GET", "POST")
    ],
    ("DELETE", "/alertmanager/api/v2/alerts", allowed_only("GET", "POST")),
    (
        "GET",
        "/alertmanager/api/v2/alerts/groups",
        to("cortex_alertmanager", "/alertmanager/api/v2/alerts/groups"),
    ),
    # Its status (Grafana's Alertmanager data source checks it by), read only.
    (
        "GET",
        "/alertmanager/api/v2/status",
        to("cortex_alertmanager", "/alertmanager/api/v2/status"),
    ),
    ("POST", "/alertmanager/api/v2/status", allowed_only("GET")),
    # Its silences: list, create, read and expire one (the ID is the Alertmanager's UUID).
    *[
        (
            method,
            "/alertmanager/api/v2/silences",
            to("cortex_alertmanager", "/alertmanager/api/v2/silences"),
        )
        for method in ("GET", "POST")
    ],
    ("DELETE", "/alertmanager/api/v2/silences", allowed_only("GET", "POST")),
    *[
        (
            method,
            f"/alertmanager/api/v2/silence/{silence}",
            to("cortex_alertmanager", f"/alertmanager/api/v2/silence/{silence}"),
        )
        for method in ("GET", "DELETE")
        for silence in (SILENCE_ID, "opstrace")
    ],
    ("POST", f"/alertmanager/api/v2/silence/{SILENCE_ID}", allowed_only("GET", "DELETE")),
    ("GET", "/alertmanager/api/v2/silence", NOT_A_ROUTE),
    ("DELETE", "/alertmanager/api/v2/silence/..", NOT_A_ROUTE),
    ("DELETE", f"/alertmanager/api/v2/silence/{SILENCE_ID}/x", NOT_A_ROUTE),
    ("POST", "/api/v1/read", query("/api/v1/read")),
    ("POST", "/prometheus/api/v1/read", query("/api/v1/read")),
    ("GET", "/api/v1/read", allowed_only("POST")),
    # Admin, ring and status pages of Cortex/Mimir: never reachable.
    *[
        (method, path, NOT_A_ROUTE)
        for path in (
            "/ingester/shutdown",
            "/ingester/flush",
            "/ingester/ring",
            "/distributor/all_user_stats",
            "/distributor/ha_tracker",
            "/config",
            "/runtime_config",
            "/metrics",
            "/ready",
            "/ring",
            "/services",
            "/memberlist",
            "/flush",
            "/shutdown",
            "/compactor/ring",
            "/store-gateway/ring",
            "/ruler/ring",
            "/ruler/rule_groups",
            "/ruler/delete_tenant_config",
            "/ruler/tenants",
            "/multitenant_alertmanager/status",
            "/multitenant_alertmanager/configs",
            "/multitenant_alertmanager/ring",
            "/multitenant_alertmanager/delete_tenant_config",
            "/alertmanager",
            "/alertmanager/",
            "/alertmanager/api/v2/receivers",
            "/alertmanager/api/v1/alerts",
            "/api/v1/alertmanager",
            "/api/v1/multitenant_alertmanager/status",
            "/api/prom/rules",
            "/api/prom/rules/opstrace",
            "/config/v1/rules",
            "/prometheus/config/v1/rules/opstrace/latency/x",
            "/api/v1/grafana/config",
            "/api/v1/user_limits",
            "/debug/pprof/heap",
            "/api/v1/status/config",
            "/api/v1/status/flags",
            "/api/v1/targets",
            "/api/v1/admin/tsdb/delete_series",
            "/prometheus/api/v1/status/config",
            "/api/v1/rules/namespace",
            "/api/v1/rules/namespace/group",
            "/api/prom/push",
            "/api/prom/api/v1/query",
            "/api/v1/user_stats",
            "/loki/api/v1/push",
            "/",
        )
        for method in ("GET", "POST")
    ],
    # Not the canonical spelling of an allowed path: refused, never cleaned up.
    *[
        ("GET", path, NOT_A_ROUTE)
        for path in (
            "//api/v1/query",
            "/api//v1/query",
            "/api/v1//query",
            "/api/v1/query/",
            "/./api/v1/query",
            "/api/./v1/query",
            "/api/v1/./query",
            "/api/v1/../v1/query",
            "/api/v2/../v1/query",
            "/api/v1/query/..",
            "/api/v1/query/.",
            "/%61pi/v1/query",
            "/api/v1/%71uery",
            "/api/v1/query%2f",
            "/api%2fv1%2fquery",
            "/api/v1/query%00",
            "/api/v1\\query",
            "/API/v1/query",
            "/api/V1/query",
            "/api/v1/Query",
            "/api/v1/query;x=1",
            "/api/v1/label/a.b/values",
            "/api/v1/label/a-b/values",
            "/api/v1/label/9a/values",
            "/api/v1/label//values",
            "/api/v1/label/job/values/",
            "/api/v1/label/a%2fb/values",
            "/api/v1/label/../../../ingester/shutdown/x/values",
            "/api/v1/label/job/../../../../ingester/shutdown",
            "/prometheus//api/v1/query",
            "/prometheus/prometheus/api/v1/query",
            "/prom/api/v1/query",
        )
    ],
    *[
        (method, path, NOT_A_ROUTE)
        for method in ("GET", "POST", "DELETE")
        for path in (
            f"{CONFIG_API}/",
            f"{CONFIG_API}/opstrace/",
            f"{CONFIG_API}//opstrace",
            f"{CONFIG_API}/.",
            f"{CONFIG_API}/..",
            f"{CONFIG_API}/../../../ruler/rule_groups",
            f"{CONFIG_API}/opstrace/..",
            f"{CONFIG_API}/.hidden",
            f"{CONFIG_API}/a%2fb",
            f"{CONFIG_API}/a%2e%2e",
            f"{CONFIG_API}/a%20b",
            f"{CONFIG_API}/a:b",
            f"{CONFIG_API}/opstrace/latency/..",
            "/api/v1/alerts/",
            "/api//v1/alerts",
            "/alertmanager/api/v2/alerts/",
            "/alertmanager/api/v2/alerts/../status",
            "/alertmanager/api/v2/alerts/groups/",
            "/prometheus/config/v1/Rules",
        )
    ],
    ("POST", "/api/v1/push/", NOT_A_ROUTE),
    ("POST", "/api/v1/push/../push", NOT_A_ROUTE),
    ("POST", "//api/v1/push", NOT_A_ROUTE),
    ("POST", "/api/v1/%70ush", NOT_A_ROUTE),
]

LOKI_QUERY = (
    "query",
    "query_range",
    "labels",
    "label/app/values",
    "label/__stream_shard__/values",
    "series",
    "index/stats",
    "index/volume",
    "index/volume_range",
    "detected_labels",
    "detected_fields",
    "patterns",
)

LOKI_ROWS: list[tuple[str, str, Expected]] = [
    ("POST", "/loki/api/v1/push", to("loki_push", "/loki/api/v1/push")),
    ("GET", "/loki/api/v1/push", allowed_only("POST")),
    # OpenTelemetry's logs, at the path Loki serves them.
    ("POST", "/otlp/v1/logs", to("loki_push", "/otlp/v1/logs")),
    ("GET", "/otlp/v1/logs", allowed_only("POST")),
    ("POST", "/otlp/v1/metrics", NOT_A_ROUTE),
    ("POST", "/otlp/v1/traces", NOT_A_ROUTE),
    ("POST", "/otlp/v1/logs/", NOT_A_ROUTE),
    ("GET", "/loki/api/v1/tail", to("loki_query", "/loki/api/v1/tail")),
    # One detected field's values (Grafana's Loki query editor).
    *[
        (
            "GET",
            f"/loki/api/v1/detected_field/{field}/values",
            to("loki_query", f"/loki/api/v1/detected_field/{field}/values"),
        )
        for field in ("opstrace", "service.name", "level")
    ],
    ("POST", "/loki/api/v1/detected_field/level/values", allowed_only("GET")),
    ("GET", "/loki/api/v1/detected_field/.hidden/values", NOT_A_ROUTE),
    ("GET", "/loki/api/v1/detected_field/a/b/values", NOT_A_ROUTE),
    ("GET", "/loki/api/v1/detected_field//values", NOT_A_ROUTE),
    ("POST", "/loki/api/v1/tail", allowed_only("GET")),
    *[
        (method, f"/loki/api/v1/{name}", to("loki_query", f"/loki/api/v1/{name}"))
        for name in LOKI_QUERY
        for method in ("GET", "POST")
    ],
    *[
        (method, f"/loki/api/v1/{name}", allowed_only("GET", "POST"))
        for name in ("query_range", "series")
        for method in ("DELETE", "PUT", "HEAD")
    ],
    # Loki's ruler: its Prometheus-compatible rules and alerts, and its configuration.
    *[
        ("GET", f"/prometheus/api/v1/{name}", to("loki_ruler", f"/prometheus/api/v1/{name}"))
        for name in ("rules", "alerts")
    ],
    ("POST", "/prometheus/api/v1/rules", allowed_only("GET")),
    ("GET", "/loki/api/v1/rules", to("loki_ruler", "/loki/api/v1/rules")),
    ("DELETE", "/loki/api/v1/rules", allowed_only("GET")),
    *[
        (
            method,
            f"/loki/api/v1/rules/{namespace}",
            to("loki_ruler", f"/loki/api/v1/rules/{namespace}"),
        )
        for method in ("GET", "POST", "DELETE")
        for namespace in ("opstrace", "app.logs")
    ],
    *[
        (
            method,
            "/loki/api/v1/rules/opstrace/errors",
            to("loki_ruler", "/loki/api/v1/rules/opstrace/errors"),
        )
        for method in ("GET", "DELETE")
    ],
    ("POST", "/loki/api/v1/rules/opstrace/errors", allowed_only("GET", "DELETE")),
    *[
        (method, path, NOT_A_ROUTE)
        for path in (
            "/loki/api/v1/delete",
            "/loki/api/v1/cache/generation_numbers",
            "/loki/api/v1/status/buildinfo",
            "/api/prom/rules",
            "/api/prom/rules/opstrace",
            "/api/v1/rules",
            "/api/v1/alerts",
            "/prometheus/config/v1/rules",
            "/ruler/rule_groups",
            "/ruler/ring",
            "/loki/api/v1/rules/a/b/c",
            "/loki/api/v1/format_query",
            "/api/prom/push",
            "/api/prom/query",
            "/api/prom/tail",
            "/api/prom/label",
            "/api/v1/push",
            "/api/v1/query",
            "/prometheus/api/v1/query",
            "/ready",
            "/metrics",
            "/config",
            "/ring",
            "/flush",
            "/ingester/shutdown",
            "/ingester/flush_shutdown",
            "/distributor/ring",
            "/compactor/ring",
            "/loki/api/v1",
            "/loki/api/v1/",
        )
        for method in ("GET", "POST", "DELETE")
    ],
    *[
        ("GET", path, NOT_A_ROUTE)
        for path in (
            "//loki/api/v1/query",
            "/loki//api/v1/query",
            "/loki/api/v1//query",
            "/loki/api/v1/query/",
            "/loki/api/v1/./query",
            "/loki/api/v1/../v1/query",
            "/loki/api/v1/%71uery",
            "/loki/api/v1/label/app.name/values",
            "/loki/api/v1/label/../../../../ready",
            "/loki/api/v1/tail/",
            "/loki/api/v1\\tail",
            "/Loki/api/v1/query",
            "/loki/api/v1/rules/",
            "/loki/api/v1/rules/..",
            "/loki/api/v1/rules/opstrace/",
            "/loki/api/v1/rules/../../../ruler/rule_groups",
            "/loki/api/v1/rules/a%2fb",
        )
    ],
    ("POST", "/loki/api/v1/push/", NOT_A_ROUTE),
    ("POST", "/loki/api/v1/%70ush", NOT_A_ROUTE),
]

ROWS = [("cortex", *row) for row in CORTEX_ROWS] + [("loki", *row) for row in LOKI_ROWS]


@pytest.mark.parametrize(
    ("service", "method", "path", "expected"),
    ROWS,
    ids=[f"{service} {method} {path}" for service, method, path, _ in ROWS],
)
def test_haproxy_routes_and_refuses_as_the_reference_router(
    service: str,
    method: str,
    path: str,
    expected: Expected,
    gateway: Gateway,
    minted: dict[str, Minted],
    upstreams: dict[str, Recorder],
) -> None:
    assert unscoped(routes.route(service, method, path, METRICS_QUERY_PREFIX)) == expected
    before = {backend: len(recorder.requests) for backend, recorder in upstreams.items()}
    probe = unique_path(path)
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    response = request(
        gateway.port,
        host(service, "prod"),
        probe,
        bearer(minted["prod"].token),
        method=method,
        body=body,
    )
    after = {backend: len(recorder.requests) for backend, recorder in upstreams.items()}

    if isinstance(expected, routes.Route):
        assert response.status == 200, response
        arrived = upstreams[expected.backend].arrived(expected.path + probe.removeprefix(path))
        assert arrived.method == method
        assert arrived.values("X-Scope-OrgID") == ["prod"]
    else:
        answer = (response.status, response.content_type, response.header("Allow") or "")
        assert answer == (expected.status, REFUSAL_CONTENT_TYPE, expected.allow)
        assert response.body == ("" if method == "HEAD" else expected.body)
        assert after == before, "a refused path reached an upstream"


def test_the_route_is_checked_before_the_credentials(
    gateway: Gateway, upstreams: dict[str, Recorder]
) -> None:
    before = sum(len(recorder.requests) for recorder in upstreams.values())
    admin = request(gateway.port, host("cortex", "prod"), "/ingester/shutdown", method="POST")
    wrong_method = request(gateway.port, host("cortex", "prod"), "/api/v1/push")
    allowed = request(gateway.port, host("cortex", "prod"), "/api/v1/push", method="POST")
    assert (admin.status, admin.body) == (404, routes.ROUTE_NOT_FOUND)
    assert (wrong_method.status, wrong_method.body) == (405, routes.METHOD_NOT_ALLOWED)
    assert (allowed.status, allowed.body) == (401, data_token.MISSING)
    assert sum(len(recorder.requests) for recorder in upstreams.values()) == before


def test_the_host_is_checked_before_the_route(gateway: Gateway) -> None:
    response = request(
        gateway.port,
        "cortex.nobody.acme.example.com",
        "/ingester/shutdown",
        sni=host("cortex", "prod"),
    )
    assert (response.status, response.body) == (404, NOT_FOUND_BODY)


@pytest.mark.parametrize(
    ("target", "statuses"),
    [
        ("\\api\\v1\\query", {400}),
        ("api/v1/query", {400}),
        # 3.4's parser refuses `GET *` (400); 2.6 passes it on and the allowlist refuses it.
        ("*", {400, 404}),
    ],
)
def test_a_request_target_that_is_no_path_never_reaches_an_upstream(
    target: str,
    statuses: set[int],
    gateway: Gateway,
    minted: dict[str, Minted],
    upstreams: dict[str, Recorder],
) -> None:
    before = sum(len(recorder.requests) for recorder in upstreams.values())
    response = request(gateway.port, host("cortex", "prod"), target, bearer(minted["prod"].token))
    assert response.status in statuses, response
    assert sum(len(recorder.requests) for recorder in upstreams.values()) == before


def test_every_route_of_the_allowlist_has_a_row() -> None:
    covered = {(service, method, path) for service, method, path, _ in ROWS}
    for rule in routes.ROUTES:
        for path in rule.client_paths():
            concrete = path.replace(routes.LABEL_NAME, "job" if rule.service == "cortex" else "app")
            concrete = concrete.replace(routes.NAME, "opstrace", 1)
            concrete = concrete.replace(
                routes.NAME, "latency" if rule.service == "cortex" else "errors"
            )
            for method in rule.methods:
                assert (rule.service, method, concrete) in covered, (rule.service, method, path)


RULES_AND_ALERTS = sorted(
    {
        (rule.service, method, path.replace(routes.NAME, "opstrace"))
        for rule in routes.ROUTES
        if rule.upstream in ("ruler", "alertmanager")
        for path in rule.client_paths()
        for method in rule.methods
    }
)


@pytest.mark.parametrize(
    ("service", "method", "path"),
    RULES_AND_ALERTS,
    ids=[f"{service} {method} {path}" for service, method, path in RULES_AND_ALERTS],
)
def test_a_tenants_token_never_reaches_another_tenants_rules_or_alerts(
    service: str,
    method: str,
    path: str,
    gateway: Gateway,
    minted: dict[str, Minted],
    upstreams: dict[str, Recorder],
) -> None:
    before = {backend: len(recorder.requests) for backend, recorder in upstreams.items()}
    body = b"{}" if method == "POST" else None
    other = request(
        gateway.port,
        host(service, "staging"),
        path,
        bearer(minted["prod"].token),
        method=method,
        body=body,
    )
    assert (other.status, other.body) == (401, data_token.BAD_TOKEN), other
    assert {b: len(r.requests) for b, r in upstreams.items()} == before
    probe = unique_path(path)
    own = request(
        gateway.port,
        host(service, "staging"),
        probe,
        bearer(minted["staging"].token),
        method=method,
        body=body,
    )
    assert own.status == 200, own
    expected = routes.route(service, method, path, METRICS_QUERY_PREFIX)
    assert isinstance(expected, routes.Route)
    arrived = upstreams[expected.backend].arrived(expected.path + probe.removeprefix(path))
    assert arrived.values("X-Scope-OrgID") == ["staging"]
