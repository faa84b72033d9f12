"""The data API allowlist and the reference router (`opstrace.gateway.routes`)."""

from __future__ import annotations

import re

import pytest

from opstrace import names
from opstrace.gateway import routes
from opstrace.gateway.routes import (
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    ROUTES,
    UPSTREAMS,
    Refusal,
    Route,
    metrics_query_prefix_problem,
    path_pattern,
    route,
)
from opstrace.gateway.settings import UPSTREAM_FIELDS

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
    assert route("cortex", method, path, prefix) == Route("cortex_query", expected, "metrics:read")


@pytest.mark.parametrize("prefix", ["", "/prometheus"])
def test_pushes_are_never_rewritten(prefix: str) -> None:
    assert route("cortex", "POST", "/api/v1/push", prefix) == Route(
        "cortex_push", "/api/v1/push", "metrics:write"
    )
    assert route("loki", "POST", "/loki/api/v1/push", prefix) == Route(
        "loki_push", "/loki/api/v1/push", "logs:write"
    )


def test_otlp_metrics_reach_the_push_upstream_at_the_path_the_backend_serves() -> None:
    cortex, mimir = routes.CORTEX_OTLP_METRICS_PATH, routes.OTLP_METRICS_PATH
    assert route("cortex", "POST", mimir) == Route("cortex_push", cortex, "metrics:write")
    assert route("cortex", "POST", mimir, "/prometheus", routes.RULER_CONFIG_PATH, mimir) == (
        Route("cortex_push", mimir, "metrics:write")
    )
    assert route("cortex", "GET", mimir) == Refusal(405, METHOD_NOT_ALLOWED, "POST")
    assert route("cortex", "POST", cortex) == NOT_A_ROUTE


def test_otlp_logs_reach_the_logs_push_upstream_unchanged() -> None:
    logs = routes.OTLP_LOGS_PATH
    assert route("loki", "POST", logs) == Route("loki_push", logs, "logs:write")
    assert route("cortex", "POST", logs) == NOT_A_ROUTE
    assert route("loki", "POST", routes.OTLP_METRICS_PATH) == NOT_A_ROUTE
    assert route("loki", "POST", "/otlp/v1/traces") == NOT_A_ROUTE


def test_logs_queries_and_tail_go_to_the_logs_query_upstream_unchanged() -> None:
    assert route("loki", "GET", "/loki/api/v1/tail") == Route(
        "loki_query", "/loki/api/v1/tail", "logs:read"
    )
    assert route("loki", "POST", "/loki/api/v1/query_range") == Route(
        "loki_query", "/loki/api/v1/query_range", "logs:read"
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


def test_every_route_belongs_to_a_service_and_an_upstream_the_settings_name() -> None:
    backends = {field.removesuffix("_url") for field in UPSTREAM_FIELDS}
    for rule in ROUTES:
        assert rule.service in names.ENDPOINT_SERVICES
        assert rule.upstream in UPSTREAMS
        assert rule.backend in backends
        assert set(rule.methods) <= {"GET", "POST", "DELETE"}
    assert {rule.backend for rule in ROUTES} == backends


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        (
            "/prometheus/config/v1/rules",
            "/prometheus/config/v1/rules",
            "/prometheus/config/v1/rules",
        ),
        (
            "/prometheus/config/v1/rules",
            "/prometheus/config/v1/rules/ns",
            "/prometheus/config/v1/rules/ns",
        ),
        ("/api/v1/rules", "/prometheus/config/v1/rules", "/api/v1/rules"),
        (
            "/api/v1/rules",
            "/prometheus/config/v1/rules/ns/node.rules",
            "/api/v1/rules/ns/node.rules",
        ),
    ],
)
def test_the_ruler_configuration_api_reaches_the_ruler_at_its_own_path(
    prefix: str, path: str, expected: str
) -> None:
    assert route("cortex", "GET", path, "/prometheus", prefix) == Route(
        "cortex_ruler", expected, "rules:read"
    )


@pytest.mark.parametrize("prefix", ["", "/prometheus"])
def test_the_rulers_prometheus_api_is_rewritten_as_the_query_api(prefix: str) -> None:
    for path in ("/api/v1/rules", "/prometheus/api/v1/rules"):
        assert route("cortex", "GET", path, prefix) == Route(
            "cortex_ruler", f"{prefix}/api/v1/rules", "rules:read"
        )
    assert route("cortex", "GET", "/prometheus/api/v1/alerts", prefix) == Route(
        "cortex_ruler", f"{prefix}/api/v1/alerts", "rules:read"
    )


def test_api_v1_alerts_is_the_alertmanager_configuration_in_every_method() -> None:
    for method in ("GET", "POST", "DELETE"):
        assert route("cortex", method, "/api/v1/alerts", "/prometheus") == Route(
            "cortex_alertmanager",
            "/api/v1/alerts",
            "alerts:read" if method == "GET" else "alerts:write",
        )
    assert route("cortex", "PUT", "/api/v1/alerts") == Refusal(
        405, METHOD_NOT_ALLOWED, "GET, POST, DELETE"
    )


def test_the_alertmanager_alerts_api_takes_and_lists_alerts_only() -> None:
    assert route("cortex", "POST", "/alertmanager/api/v2/alerts") == Route(
        "cortex_alertmanager", "/alertmanager/api/v2/alerts", "alerts:write"
    )
    assert route("cortex", "GET", "/alertmanager/api/v2/alerts/groups") == Route(
        "cortex_alertmanager", "/alertmanager/api/v2/alerts/groups", "alerts:read"
    )
    assert route("cortex", "GET", "/alertmanager/api/v2/status") == Route(
        "cortex_alertmanager", "/alertmanager/api/v2/status", "alerts:read"
    )
    for path in ("/alertmanager/api/v2/receivers", "/alertmanager"):
        assert route("cortex", "GET", path) == NOT_A_ROUTE


def test_silences_are_listed_created_and_expired_at_the_alertmanager() -> None:
    silences, one = "/alertmanager/api/v2/silences", "/alertmanager/api/v2/silence/8f3c-1"
    assert route("cortex", "GET", silences) == Route("cortex_alertmanager", silences, "alerts:read")
    assert route("cortex", "POST", silences) == Route(
        "cortex_alertmanager", silences, "alerts:write"
    )
    assert route("cortex", "DELETE", one) == Route("cortex_alertmanager", one, "alerts:write")
    assert route("cortex", "DELETE", silences) == Refusal(405, METHOD_NOT_ALLOWED, "GET, POST")
    assert route("loki", "GET", silences) == NOT_A_ROUTE


def test_a_rule_group_is_set_and_deleted_by_namespace_and_removed_alone() -> None:
    config = "/prometheus/config/v1/rules"
    assert route("cortex", "POST", f"{config}/ns") == Route(
        "cortex_ruler", "/api/v1/rules/ns", "rules:write"
    )
    assert route("cortex", "POST", f"{config}/ns/group") == Refusal(
        405, METHOD_NOT_ALLOWED, "GET, DELETE"
    )
    assert route("loki", "DELETE", "/loki/api/v1/rules/ns/group") == Route(
        "loki_ruler", "/loki/api/v1/rules/ns/group", "rules:write"
    )


def test_rule_names_are_letters_digits_and_inner_punctuation_never_dots_alone() -> None:
    pattern = path_pattern("/loki/api/v1/rules/{name}")
    for name in ("ns", "node.rules", "team-a_1", "_", "-x", "a..b"):
        assert re.fullmatch(pattern, f"/loki/api/v1/rules/{name}"), name
    for name in ("", ".", "..", ".hidden", "a/b", "a%2fb", "a b", "a:b", "ä"):
        assert not re.fullmatch(pattern, f"/loki/api/v1/rules/{name}"), name


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("cortex", "/ruler/rule_groups"),
        ("cortex", "/ruler/ring"),
        ("cortex", "/ruler/delete_tenant_config"),
        ("cortex", "/multitenant_alertmanager/configs"),
        ("cortex", "/multitenant_alertmanager/status"),
        ("cortex", "/multitenant_alertmanager/delete_tenant_config"),
        ("cortex", "/api/v1/rules/ns"),
        ("cortex", "/api/prom/rules"),
        ("cortex", "/config/v1/rules"),
        ("cortex", "/prometheus/config/v1/rules/a/b/c"),
        ("cortex", "/prometheus/config/v1/rules/../../ruler/rule_groups"),
        ("loki", "/api/prom/rules"),
        ("loki", "/loki/api/v1/rules/a/b/c"),
        ("loki", "/prometheus/config/v1/rules"),
    ],
)
def test_admin_and_other_spellings_of_the_rules_apis_are_no_route(service: str, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        assert route(service, method, path) == NOT_A_ROUTE


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
