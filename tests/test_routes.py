"""The data API allowlist and the reference router (`components.rules.routes`)."""

from __future__ import annotations

import re

import pytest

from components.gateway.routes import (
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    ROUTES,
    Refusal,
    Route,
    metrics_query_prefix_problem,
    path_pattern,
    route,
)
from components.rules import names

NOT_A_ROUTE = Refusal(404, ROUTE_NOT_FOUND)


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("", "/api/v1/query", "/api/v1/query"),
        ("", "/prometheus/api/v1/query", "/api/v1/query"),
        ("/prometheus", "/api/v1/query", "/prometheus/api/v1/query"),
        ("/prometheus", "/prometheus/api/v1/query", "/prometheus/api/v1/query"),
        ("/api/prom", "/api/v1/label/job/values", "/api/prom/api/v1/label/job/values"),
        ("/api/prom", "/prometheus/api/v1/read", "/api/prom/api/v1/read"),
    ],
)
def test_metrics_queries_reach_the_query_upstream_under_the_configured_prefix(
    prefix: str, path: str, expected: str
) -> None:
    method = "POST" if path.endswith("/read") else "GET"
    assert route("cortex", method, path, prefix) == Route("cortex_query", expected)


@pytest.mark.parametrize("prefix", ["", "/prometheus"])
def test_pushes_are_never_rewritten(prefix: str) -> None:
    assert route("cortex", "POST", "/api/v1/push", prefix) == Route("cortex_push", "/api/v1/push")
    assert route("loki", "POST", "/loki/api/v1/push", prefix) == Route(
        "loki_push", "/loki/api/v1/push"
    )


def test_logs_queries_and_tail_go_to_the_logs_query_upstream_unchanged() -> None:
    assert route("loki", "GET", "/loki/api/v1/tail") == Route("loki_query", "/loki/api/v1/tail")
    assert route("loki", "POST", "/loki/api/v1/query_range") == Route(
        "loki_query", "/loki/api/v1/query_range"
    )


def test_a_known_path_with_another_method_is_405_with_the_allowed_methods() -> None:
    assert route("cortex", "GET", "/api/v1/push") == Refusal(405, METHOD_NOT_ALLOWED, "POST")
    assert route("cortex", "DELETE", "/api/v1/series") == Refusal(
        405, METHOD_NOT_ALLOWED, "GET, POST"
    )
    assert route("loki", "POST", "/loki/api/v1/tail") == Refusal(405, METHOD_NOT_ALLOWED, "GET")


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("cortex", "/ingester/shutdown"),
        ("cortex", "/distributor/all_user_stats"),
        ("cortex", "/api/v1/push/"),
        ("cortex", "/api/v1/../v1/push"),
        ("cortex", "/api/v1/%70ush"),
        ("cortex", "/prometheus/api/v1/push"),
        ("cortex", "/api/v1/label/a.b/values"),
        ("cortex", "/api/v1/query\n"),
        ("cortex", "/loki/api/v1/push"),
        ("loki", "/api/v1/push"),
        ("loki", "/api/prom/push"),
        ("loki", "/loki/api/v1/delete"),
    ],
)
def test_anything_else_is_no_route(service: str, path: str) -> None:
    assert route(service, "POST", path) == NOT_A_ROUTE
    assert route(service, "GET", path) == NOT_A_ROUTE


def test_label_paths_allow_prometheus_and_escaped_utf8_label_names_only() -> None:
    pattern = path_pattern("/api/v1/label/{label}/values")
    assert pattern == "^/api/v1/label/[A-Za-z_][A-Za-z0-9_]*/values$"
    for name in ("job", "__name__", "U__http_2e_method", "_x1"):
        assert re.fullmatch(pattern, f"/api/v1/label/{name}/values")
    for name in ("", "1a", "a.b", "a-b", "a/b", "a%2fb", "..", "a\n"):
        assert not re.fullmatch(pattern, f"/api/v1/label/{name}/values")


def test_no_path_is_listed_twice_for_a_service() -> None:
    for service in names.ENDPOINT_SERVICES:
        paths = [p for rule in ROUTES if rule.service == service for p in rule.client_paths()]
        assert len(paths) == len(set(paths)), service


def test_every_route_belongs_to_a_service_and_an_upstream() -> None:
    for rule in ROUTES:
        assert rule.service in names.ENDPOINT_SERVICES
        assert rule.upstream in ("push", "query")
        assert set(rule.methods) <= {"GET", "POST"}


@pytest.mark.parametrize("prefix", ["", "/prometheus", "/api/prom", "/a-b/c_d/0"])
def test_usable_metrics_query_prefixes(prefix: str) -> None:
    assert metrics_query_prefix_problem(prefix) is None


@pytest.mark.parametrize("prefix", ["/", "prometheus", "/prometheus/", "/a//b", "/A", "/a b"])
def test_unusable_metrics_query_prefixes(prefix: str) -> None:
    assert metrics_query_prefix_problem(prefix) == (
        f"{prefix!r} is not a path prefix: use '' (Cortex's layout, /api/v1/...) or "
        "/SEGMENT[/SEGMENT...] of lowercase letters, digits, '_' and '-' without a trailing "
        "'/' (e.g. /prometheus for Grafana Mimir)"
    )
