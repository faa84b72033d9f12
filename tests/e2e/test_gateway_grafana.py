"""What Grafana's Prometheus, Loki and Alertmanager data sources send, through a real
HAProxy with a read-scoped token: every read passes to its upstream, every write is
refused with 403 and reaches none. Each row is a request Grafana's own code sends
(grafana/grafana, read 2026-12-07; the files are named per group), with the data
sources pointed as a tenant's Grafana will point them: Prometheus at
`https://cortex.<tenant>.../prometheus` (Mimir's layout, which also gives Grafana the
ruler's `config/v1/rules`), Loki at `https://loki.<tenant>...`, the Alertmanager
(implementation `mimir`) at `https://cortex.<tenant>...`. The reference decision
(`routes.route` and the scope it needs) agrees with every row."""

from __future__ import annotations

import uuid

import pytest

from opstrace import scopes
from opstrace.gateway import routes
from tests.e2e.conftest import METRICS_QUERY_PREFIX
from tests.e2e.harness import NEEDS_HAPROXY, Gateway, Recorder, Signer, host, request

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

READ = "metrics:read logs:read rules:read alerts:read"
"""What a tenant's Grafana holds: reading, nothing else."""
SILENCE = f"/alertmanager/api/v2/silence/{uuid.uuid4()}"

# (service, method, path with query) of requests that must reach their upstream.
PASSES: list[tuple[str, str, str]] = [
    # Prometheus data source: pkg/promlib (healthcheck.go: the instant query `1+1`, POST
    # by default; heuristics.go: buildinfo; client/client.go: query, query_range,
    # query_exemplars), packages/grafana-prometheus (resource_clients.ts: labels and
    # series by POST then GET, label values and metadata by GET; datasource.ts: the
    # rules at startup), alerting (lotex_prom.go, lotex_ruler.go: rules and the Mimir
    # ruler's configuration, read).
    ("cortex", "POST", "/prometheus/api/v1/query"),
    ("cortex", "GET", "/prometheus/api/v1/query?query=1%2B1&time=4"),
    ("cortex", "POST", "/prometheus/api/v1/query_range"),
    ("cortex", "POST", "/prometheus/api/v1/query_exemplars"),
    ("cortex", "GET", "/prometheus/api/v1/query_exemplars?query=test"),
    ("cortex", "POST", "/prometheus/api/v1/labels"),
    ("cortex", "GET", "/prometheus/api/v1/labels?start=1&end=2"),
    ("cortex", "GET", "/prometheus/api/v1/label/__name__/values"),
    ("cortex", "POST", "/prometheus/api/v1/series"),
    ("cortex", "GET", "/prometheus/api/v1/metadata?limit=10000"),
    ("cortex", "GET", "/prometheus/api/v1/status/buildinfo"),
    ("cortex", "GET", "/prometheus/api/v1/rules?rule_group=g"),
    ("cortex", "GET", "/prometheus/config/v1/rules"),
    ("cortex", "GET", "/prometheus/config/v1/rules/team"),
    ("cortex", "GET", "/prometheus/config/v1/rules/team/group.1"),
    # Loki data source: pkg/tsdb/loki (healthcheck.go: the instant query
    # `vector(1)+vector(1)`; api.go: query, query_range), public/app/plugins/datasource/
    # loki (LanguageProvider.ts: labels, label values, series, detected fields and a
    # field's values; datasource.ts: index/stats, the live tail), alerting (the ruler's
    # rules).
    ("loki", "GET", "/loki/api/v1/query?query=vector%281%29%2Bvector%281%29"),
    ("loki", "GET", "/loki/api/v1/query_range?query=%7Bjob%3D%22a%22%7D"),
    ("loki", "GET", "/loki/api/v1/labels?start=1&end=2"),
    ("loki", "GET", "/loki/api/v1/label/job/values"),
    ("loki", "GET", "/loki/api/v1/series?match%5B%5D=%7Bjob%3D%22a%22%7D"),
    ("loki", "GET", "/loki/api/v1/index/stats?query=%7Bjob%3D%22a%22%7D"),
    ("loki", "GET", "/loki/api/v1/detected_fields"),
    ("loki", "GET", "/loki/api/v1/detected_field/service_name/values"),
    ("loki", "GET", "/loki/api/v1/tail?query=%7Bjob%3D%22a%22%7D"),
    ("loki", "GET", "/prometheus/api/v1/rules"),
    # Alertmanager data source, implementation mimir: DataSource.ts (testDatasource:
    # buildinfo, then its status), lotex_am.go (alerts, groups, silences, a silence,
    # the configuration).
    ("cortex", "GET", "/api/v1/status/buildinfo"),
    ("cortex", "GET", "/alertmanager/api/v2/status"),
    ("cortex", "GET", "/alertmanager/api/v2/alerts?silenced=false&active=true"),
    ("cortex", "GET", "/alertmanager/api/v2/alerts/groups"),
    ("cortex", "GET", "/alertmanager/api/v2/silences"),
    ("cortex", "GET", SILENCE),
    ("cortex", "GET", "/api/v1/alerts"),
]

# (service, method, path, the scope it lacks) of what a Grafana user could change.
WRITES: list[tuple[str, str, str, str]] = [
    ("cortex", "POST", "/alertmanager/api/v2/silences", "alerts:write"),
    ("cortex", "DELETE", SILENCE, "alerts:write"),
    ("cortex", "POST", "/api/v1/alerts", "alerts:write"),
    ("cortex", "DELETE", "/api/v1/alerts", "alerts:write"),
    ("cortex", "POST", "/alertmanager/api/v2/alerts", "alerts:write"),
    ("cortex", "POST", "/prometheus/config/v1/rules/team", "rules:write"),
    ("cortex", "DELETE", "/prometheus/config/v1/rules/team/group.1", "rules:write"),
    ("loki", "POST", "/loki/api/v1/rules/team", "rules:write"),
    ("cortex", "POST", "/api/v1/push", "metrics:write"),
    ("cortex", "POST", "/otlp/v1/metrics", "metrics:write"),
    ("loki", "POST", "/loki/api/v1/push", "logs:write"),
]


def sent(
    gateway: Gateway, signer: Signer, service: str, method: str, path: str
) -> tuple[int, str, str]:
    """A request as Grafana's data source sends it, with the read-scoped token."""
    token = signer.token("prod", **{scopes.CLAIM: READ})
    body = b"query=up&start=1&end=2" if method == "POST" else None
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = request(gateway.port, host(service, "prod"), path, headers, method=method, body=body)
    return response.status, response.body, response.header("Allow") or ""


def reached(upstreams: dict[str, Recorder]) -> int:
    return sum(len(recorder.requests) for recorder in upstreams.values())


@pytest.mark.parametrize(("service", "method", "path"), PASSES, ids=lambda v: str(v))
def test_grafanas_reads_reach_their_upstream(
    gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    service: str,
    method: str,
    path: str,
) -> None:
    chosen = routes.route(service, method, path.partition("?")[0], METRICS_QUERY_PREFIX)
    assert isinstance(chosen, routes.Route)
    assert chosen.scope in READ.split()
    before = len(upstreams[chosen.backend].requests)

    status, body, _ = sent(gateway, signer, service, method, path)

    assert status == 200, body
    assert len(upstreams[chosen.backend].requests) == before + 1


@pytest.mark.parametrize(("service", "method", "path", "lacks"), WRITES, ids=lambda v: str(v))
def test_nothing_grafana_could_change_passes(
    gateway: Gateway,
    signer: Signer,
    upstreams: dict[str, Recorder],
    service: str,
    method: str,
    path: str,
    lacks: str,
) -> None:
    chosen = routes.route(service, method, path, METRICS_QUERY_PREFIX)
    assert isinstance(chosen, routes.Route)
    assert chosen.scope == lacks
    before = reached(upstreams)

    status, body, _ = sent(gateway, signer, service, method, path)

    assert (status, body) == (403, scopes.MISSING_SCOPE_PREFIX + lacks)
    assert reached(upstreams) == before


def test_buildinfo_by_post_gets_405_with_allow_get_which_grafana_retries_as_get(
    gateway: Gateway, signer: Signer
) -> None:
    """Grafana's Prometheus client sends a resource by POST first unless its path is one
    it knows to be GET only, and retries by GET on 405 (pkg/promlib/client/client.go)."""
    status, _, allow = sent(
        gateway, signer, "cortex", "POST", "/prometheus/api/v1/status/buildinfo"
    )

    assert (status, allow) == (405, "GET")


def test_the_prometheus_api_status_that_tells_grafana_no_plain_alertmanager_is_here_is_404(
    gateway: Gateway, signer: Signer
) -> None:
    """testDatasource for implementation mimir: a 200 at `api/v2/status` would mean a plain
    Prometheus Alertmanager (DataSource.ts); the gateway has no such route."""
    status, body, _ = sent(gateway, signer, "cortex", "GET", "/api/v2/status")

    assert (status, body) == (404, routes.ROUTE_NOT_FOUND)
