"""The data API routes: which method and path of which endpoint reaches which upstream.

Pure functions, no Pulumi. `ROUTES` is the allowlist, written once: the gateway's HAProxy
configuration is rendered from it (`gateway_config`), and `route` is the reference
decision the end-to-end tests hold HAProxy to, row by row.

It follows the routes of Opstrace's tenant proxies (`/api/v1/push` and the Prometheus
query API on `cortex.*`; `/loki/api/v1/push`, `/loki/api/v1/tail` and the Loki query
API on `loki.*`), spelled out path by path instead of `/api/v1/*`, adds OpenTelemetry's
OTLP/HTTP push (`/otlp/v1/metrics`, `/otlp/v1/logs`), and adds what
Opstrace's config API served, at the tenant's own endpoints: the rulers' rules APIs
and the Alertmanager's configuration and alerts APIs. Whatever is not listed (admin
and ring pages such as `/ingester/shutdown`, `/distributor/all_user_stats` or
`/ruler/rule_groups`, `/metrics`, `/config`, Loki's legacy `/api/prom/*`) is refused
before any backend sees it. Paths are matched exactly as sent, over a small
character set: `//`, `/./`, `/../`, percent-encoding, backslashes and trailing slashes
never match, so no backend's own path cleaning can turn a refused path into an admin one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from opstrace import scopes

ROUTE_NOT_FOUND: Final = "no data API route for this path"
"""The 404 body for a path that is no data API route of the endpoint's service."""
METHOD_NOT_ALLOWED: Final = "method not allowed on this path"
"""The 405 body for a data API path asked with a method it does not serve."""

LABEL_NAME: Final = "{label}"
"""Stands for one label name in a path (`/api/v1/label/{label}/values`)."""
LABEL_NAME_RE: Final = "[A-Za-z_][A-Za-z0-9_]*"
"""A Prometheus/Loki label name; also covers Prometheus 3's `U__` escaped UTF-8 names."""
NAME: Final = "{name}"
"""Stands for one rule namespace or rule group name in a path (the rulers' config APIs),
a silence's ID (a UUID, the Alertmanager's), or a field Loki detected in log lines."""
NAME_RE: Final = "[A-Za-z0-9_-][A-Za-z0-9_.-]*"
"""A rule namespace or group name the gateway passes: letters, digits, `_`, `-`, `.`, not
starting with `.` (so never `.` or `..`, which a backend's path cleaning would act on)."""
METRICS_QUERY_ALIASES: Final = ("", "/prometheus")
"""Prefixes under which clients may send the metrics query API: Opstrace's `/api/v1/...`
and Grafana Mimir's native `/prometheus/api/v1/...`; both reach the query upstream as
`<metrics_query_prefix>/api/v1/...`."""
RULER_CONFIG_PATH: Final = "/prometheus/config/v1/rules"
"""The metrics ruler's configuration API as clients send it (Mimir's spelling, which
mimirtool, Grafana and Alloy use); it reaches the ruler at `ruler_config_prefix`."""
CORTEX_RULER_CONFIG_PATH: Final = "/api/v1/rules"
"""Where Cortex (and Opstrace's config API) serve the ruler's configuration API."""
LOKI_RULER_CONFIG_PATH: Final = "/loki/api/v1/rules"
"""Loki's ruler configuration API, as clients send it and Loki serves it."""
OTLP_METRICS_PATH: Final = "/otlp/v1/metrics"
"""OpenTelemetry's OTLP/HTTP metrics, as clients send them (an OTLP exporter's endpoint
`https://cortex.<tenant>...` plus its signal path) and as Grafana Mimir serves them."""
CORTEX_OTLP_METRICS_PATH: Final = "/api/v1/otlp/v1/metrics"
"""Where Cortex serves OTLP metrics (cortexproject/cortex pkg/api/api.go, v1.21)."""
OTLP_LOGS_PATH: Final = "/otlp/v1/logs"
"""OTLP/HTTP logs, as clients send them and as Loki (3.x) serves them."""
ALERTMANAGER_PREFIX: Final = "/alertmanager"
"""Where Mimir and Cortex serve each tenant's Alertmanager (`alertmanager_http_prefix`)."""

METRICS_API: Final = "metrics"
"""Rewrite of the Prometheus API: `<metrics_query_prefix>/api/v1/...`."""
RULER_CONFIG: Final = "ruler-config"
"""Rewrite of the ruler's configuration API: `<ruler_config_prefix>/...`."""
OTLP_METRICS: Final = "otlp-metrics"
"""Rewrite of OTLP metrics: `<metrics_otlp_path>`."""

_LITERAL_RE: Final = re.compile(r"^(/[a-z0-9_]+)+$")
_PREFIX_RE: Final = re.compile(r"^(/[a-z0-9][a-z0-9_-]*)*$")


UPSTREAMS: Final = ("push", "query", "ruler", "alertmanager")


@dataclass(frozen=True)
class RouteRule:
    """Paths of one service that one upstream serves with the same methods."""

    service: str
    """`cortex` or `loki`: the first label of the endpoint host."""
    upstream: str
    """`push`, `query`, `ruler` or `alertmanager` (`UPSTREAMS`)."""
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    """Paths as clients send them; `{label}` stands for one label name, `{name}` for a
    rule namespace or group name."""
    rewrite: str = ""
    """How the upstream gets the path: unchanged (""), `METRICS_API`, `RULER_CONFIG` or
    `OTLP_METRICS`."""
    aliases: tuple[str, ...] = ("",)
    """Prefixes a client may put before each path (`METRICS_QUERY_ALIASES`)."""

    @property
    def backend(self) -> str:
        """The upstream's name in the configuration, e.g. `cortex_query`."""
        return f"{self.service}_{self.upstream}"

    def client_paths(self) -> tuple[str, ...]:
        """Every path a client may send for this rule (each path under each alias)."""
        return tuple(alias + path for path in self.paths for alias in self.aliases)


_GET_POST: Final = ("GET", "POST")
_GET_POST_DELETE: Final = ("GET", "POST", "DELETE")
_GET_DELETE: Final = ("GET", "DELETE")


def _metrics_api(upstream: str, methods: tuple[str, ...], *paths: str) -> RouteRule:
    """The Prometheus API of the metrics backend, under both aliases."""
    return RouteRule("cortex", upstream, methods, paths, METRICS_API, METRICS_QUERY_ALIASES)


def _rules_api(service: str, prefix: str, rewrite: str = "") -> tuple[RouteRule, ...]:
    """A ruler's configuration API under `prefix`: list, one namespace, one group."""
    return (
        RouteRule(service, "ruler", ("GET",), (prefix,), rewrite),
        RouteRule(service, "ruler", _GET_POST_DELETE, (f"{prefix}/{NAME}",), rewrite),
        RouteRule(service, "ruler", _GET_DELETE, (f"{prefix}/{NAME}/{NAME}",), rewrite),
    )


ROUTES: Final = (
    RouteRule("cortex", "push", ("POST",), ("/api/v1/push",)),
    RouteRule("cortex", "push", ("POST",), (OTLP_METRICS_PATH,), OTLP_METRICS),
    _metrics_api(
        "query",
        _GET_POST,
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/query_exemplars",
        "/api/v1/series",
        "/api/v1/labels",
    ),
    _metrics_api(
        "query",
        ("GET",),
        f"/api/v1/label/{LABEL_NAME}/values",
        "/api/v1/metadata",
        "/api/v1/status/buildinfo",
    ),
    # Prometheus remote read.
    _metrics_api("query", ("POST",), "/api/v1/read"),
    # The ruler's Prometheus-compatible rules and alerts (read only). `/api/v1/alerts`
    # without the prefix is the Alertmanager's configuration (below), as in Mimir, Cortex
    # and Opstrace's config API.
    _metrics_api("ruler", ("GET",), "/api/v1/rules"),
    RouteRule("cortex", "ruler", ("GET",), ("/api/v1/alerts",), METRICS_API, ("/prometheus",)),
    *_rules_api("cortex", RULER_CONFIG_PATH, RULER_CONFIG),
    # The tenant's Alertmanager: its configuration, and its alerts (Alertmanager's v2 API).
    RouteRule("cortex", "alertmanager", _GET_POST_DELETE, ("/api/v1/alerts",)),
    RouteRule("cortex", "alertmanager", _GET_POST, (f"{ALERTMANAGER_PREFIX}/api/v2/alerts",)),
    RouteRule(
        "cortex",
        "alertmanager",
        ("GET",),
        (
            f"{ALERTMANAGER_PREFIX}/api/v2/alerts/groups",
            # Its status: what Grafana's Alertmanager data source checks it by.
            f"{ALERTMANAGER_PREFIX}/api/v2/status",
        ),
    ),
    # Its silences: list and create (or update), read and expire one by its ID.
    RouteRule("cortex", "alertmanager", _GET_POST, (f"{ALERTMANAGER_PREFIX}/api/v2/silences",)),
    RouteRule(
        "cortex", "alertmanager", _GET_DELETE, (f"{ALERTMANAGER_PREFIX}/api/v2/silence/{NAME}",)
    ),
    RouteRule("loki", "push", ("POST",), ("/loki/api/v1/push", OTLP_LOGS_PATH)),
    # Live tailing: a WebSocket upgrade, passed through as such.
    RouteRule("loki", "query", ("GET",), ("/loki/api/v1/tail",)),
    RouteRule(
        "loki",
        "query",
        _GET_POST,
        (
            "/loki/api/v1/query",
            "/loki/api/v1/query_range",
            "/loki/api/v1/labels",
            f"/loki/api/v1/label/{LABEL_NAME}/values",
            "/loki/api/v1/series",
            "/loki/api/v1/index/stats",
            "/loki/api/v1/index/volume",
            "/loki/api/v1/index/volume_range",
            "/loki/api/v1/detected_labels",
            "/loki/api/v1/detected_fields",
            "/loki/api/v1/patterns",
        ),
    ),
    # The values of one detected field (Grafana's Loki query editor and Logs Drilldown).
    RouteRule("loki", "query", ("GET",), (f"/loki/api/v1/detected_field/{NAME}/values",)),
    # Loki's ruler: its Prometheus-compatible rules and alerts, and its configuration.
    RouteRule("loki", "ruler", ("GET",), ("/prometheus/api/v1/rules", "/prometheus/api/v1/alerts")),
    *_rules_api("loki", LOKI_RULER_CONFIG_PATH),
)
"""The allowlist, by service; no path appears twice within a service."""


@dataclass(frozen=True)
class Route:
    """Where an allowed request goes: the upstream, and the path it gets there."""

    backend: str
    """`<service>_<upstream>`, e.g. `cortex_push` or `loki_ruler`."""
    path: str
    scope: str
    """The scope a token needs for it (`scopes.required_scope`), e.g. `metrics:write`."""


@dataclass(frozen=True)
class Refusal:
    """The gateway's own answer to a request no route takes."""

    status: int
    body: str
    allow: str = ""
    """The `Allow` header of a 405: the methods the path serves."""


def path_pattern(path: str) -> str:
    """An anchored regular expression for a route path (HAProxy's PCRE and Python's `re`)."""
    literal = path.replace(LABEL_NAME, "x").replace(NAME, "x")
    assert _LITERAL_RE.fullmatch(literal), path
    return "^" + path.replace(LABEL_NAME, LABEL_NAME_RE).replace(NAME, NAME_RE) + "$"


def is_literal(path: str) -> bool:
    """Whether a route path is matched as an exact string (no placeholder in it)."""
    return LABEL_NAME not in path and NAME not in path


def allow_header(methods: Sequence[str]) -> str:
    """The `Allow` header value for `methods`."""
    return ", ".join(methods)


def metrics_query_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be the metrics backend's query API prefix, or None."""
    if _PREFIX_RE.fullmatch(prefix):
        return None
    return (
        f"{prefix!r} is not a path prefix: use '' (Cortex's layout, /api/v1/...) or "
        "/SEGMENT[/SEGMENT...] of lowercase letters, digits, '_' and '-' without a "
        "trailing '/' (e.g. /prometheus for Grafana Mimir)"
    )


def ruler_config_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be where the metrics ruler serves its configuration API."""
    if prefix and _PREFIX_RE.fullmatch(prefix):
        return None
    return (
        f"{prefix!r} is not a path: use /SEGMENT[/SEGMENT...] of lowercase letters, "
        f"digits, '_' and '-' without a trailing '/' ({RULER_CONFIG_PATH} for Grafana "
        f"Mimir, {CORTEX_RULER_CONFIG_PATH} for Cortex)"
    )


def otlp_path_problem(path: str) -> str | None:
    """Why `path` cannot be where the metrics backend serves OTLP metrics, or None."""
    if path and _PREFIX_RE.fullmatch(path):
        return None
    return (
        f"{path!r} is not a path: use /SEGMENT[/SEGMENT...] of lowercase letters, digits, "
        f"'_' and '-' without a trailing '/' ({OTLP_METRICS_PATH} for Grafana Mimir, "
        f"{CORTEX_OTLP_METRICS_PATH} for Cortex)"
    )


def upstream_path(
    rule: RouteRule,
    client_path: str,
    metrics_query_prefix: str,
    ruler_config_prefix: str,
    metrics_otlp_path: str = CORTEX_OTLP_METRICS_PATH,
) -> str:
    """The path the upstream gets for `client_path`, which `rule` matched."""
    if rule.rewrite == OTLP_METRICS:
        return metrics_otlp_path
    if rule.rewrite == METRICS_API:
        return metrics_query_prefix + client_path.removeprefix("/prometheus")
    if rule.rewrite == RULER_CONFIG:
        return ruler_config_prefix + client_path.removeprefix(RULER_CONFIG_PATH)
    return client_path


def route(
    service: str,
    method: str,
    path: str,
    metrics_query_prefix: str = "",
    ruler_config_prefix: str = CORTEX_RULER_CONFIG_PATH,
    metrics_otlp_path: str = CORTEX_OTLP_METRICS_PATH,
) -> Route | Refusal:
    """Decide a request's route as the gateway must (the path without its query string).

    404 when the path is no route of `service`; 405 (with `Allow`) when it is one but
    not for `method`.
    """
    for rule in ROUTES:
        if rule.service != service:
            continue
        if any(re.fullmatch(path_pattern(p), path) for p in rule.client_paths()):
            if method not in rule.methods:
                return Refusal(405, METHOD_NOT_ALLOWED, allow_header(rule.methods))
            rewritten = upstream_path(
                rule, path, metrics_query_prefix, ruler_config_prefix, metrics_otlp_path
            )
            scope = scopes.required_scope(rule.service, rule.upstream, method)
            return Route(rule.backend, rewritten, scope)
    return Refusal(404, ROUTE_NOT_FOUND)
