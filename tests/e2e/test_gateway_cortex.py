"""The metrics data path end to end: Prometheus remote-writes two tenants' series through
the gateway into a real Cortex, and each tenant queries them back through the gateway.

sender Prometheus --HTTPS remote_write, a token per tenant--> gateway --> Cortex distributor
client --HTTPS Prometheus API, a token per tenant-----------> (HAProxy) --> Cortex queriers
                                                           X-Scope-OrgID

Cortex (built by `make cortex`) stands in for the instance's Mimir, which is not built here
(AGPL): the same remote-write and Prometheus query API, tenants by X-Scope-OrgID. The
gateway's settings are the program's own (`gateway_upstreams.upstreams`), in both of its layouts:
- own backends: pushes to a distributor, queries under Mimir's prefix to a query
  frontend; here a Cortex distributor and a Cortex with all the rest (default layout);
- `cortexUrl`: one URL, the query API at `/api/v1/...`; here one Cortex configured as
  Opstrace configured its Cortex (`http_prefix: ""`).
Prometheus reaches the tenants' endpoint hosts through a CONNECT tunnel to the gateway
(standing in for DNS), so TLS, SNI and Host are what a tenant's Prometheus sends.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from opstrace import data_token, scopes
from opstrace.config import sizes
from opstrace.gateway import routes
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.settings import GatewaySettings
from tests.e2e.backends import (
    CORTEX_PROMETHEUS_PREFIX,
    NEEDS_CORTEX,
    Cortex,
    cortex,
    prometheus,
    split_cortex,
)
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    DOMAIN,
    INSTANCE,
    NEEDS_HAPROXY,
    NEEDS_PROMETHEUS,
    TENANTS,
    Gateway,
    Recorder,
    Response,
    Signer,
    bearer,
    connect_tunnel,
    gateway_ca,
    host,
    on_loopback,
    request,
    started_gateway,
    wait_until,
)
from tools.ports import free_port

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY, NEEDS_PROMETHEUS, NEEDS_CORTEX]

ARRIVAL_SECONDS = 120.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CORTEX_NO_ROUTE = "404 page not found\n"
"""Cortex's answer to a path none of its handlers serves (its router's, not a handler's)."""


@dataclass(frozen=True)
class Layout:
    name: str
    cortex_url_setting: bool
    """Whether the gateway is set up as with `cortexUrl` (one Cortex for pushes and queries,
    Opstrace's layout); else as for the instance's own Mimir (pushes to a distributor,
    queries to a query frontend: here two Cortex processes split the same way)."""


LAYOUTS = (Layout("own-backends", False), Layout("cortex-url", True))
OPSTRACE_HTTP_PREFIX = ""
"""Opstrace's Cortex `http_prefix` (Cortex's default is /api/prom): the Prometheus API,
push included, at `/api/v1/...` too."""


def job(tenant: str) -> str:
    """The scrape job whose `up` series only `tenant`'s remote write sends."""
    return f"sender-{tenant}"


@dataclass(frozen=True)
class Deployment:
    """Cortex behind the gateway, with each tenant's series written through the gateway."""

    cortex: Cortex
    """The Cortex that serves queries (and holds the ingester)."""
    gateway: Gateway
    tokens: Mapping[str, str]
    """Each tenant's full token, and `prod/write` and `prod/read`, tokens of prod limited
    to `metrics:write` and to `metrics:read`."""
    tunnel_port: int
    """A CONNECT proxy to the gateway: how clients reach the endpoint hosts (for DNS)."""
    logs: Recorder
    """Loki's stand-in (Loki is AGPL, not built here): it records what reaches it."""

    def ask(
        self,
        tenant: str,
        path: str,
        params: Mapping[str, str],
        *,
        form: bool = False,
        token_of: str = "",
    ) -> Response:
        """A Prometheus API request at `tenant`'s endpoint with its token, or the token
        `token_of` names (GET, or a form POST as Grafana sends queries)."""
        encoded = urllib.parse.urlencode(params)
        headers = bearer(self.tokens[token_of or tenant])
        endpoint = host("cortex", tenant)
        if form:
            return request(
                self.gateway.port,
                endpoint,
                path,
                {**headers, **FORM},
                method="POST",
                body=encoded.encode(),
            )
        return request(self.gateway.port, endpoint, f"{path}?{encoded}", headers)

    def sees_up(self, tenant: str) -> bool:
        """Whether `tenant` can query any `up` series yet (a backend still starting may
        answer 5xx meanwhile; any other answer but 200 is a failure)."""
        response = self.ask(tenant, "/api/v1/query", {"query": "up"})
        return response.status < 500 and bool(success_data(response)["result"])

    def data(self, tenant: str, path: str, params: Mapping[str, str], *, form: bool = False) -> Any:
        """The `data` of a successful Prometheus API answer."""
        return success_data(self.ask(tenant, path, params, form=form))


def success_data(response: Response) -> Any:
    assert response.status == 200, response
    document = json.loads(response.body)
    assert document["status"] == "success", document
    return document["data"]


def program_settings(
    layout: Layout, push_url: str, query_url: str, logs_url: str
) -> GatewaySettings:
    """The gateway settings the program makes, with this machine's backends."""
    size = sizes.SIZES["small"]
    if layout.cortex_url_setting:
        assert push_url == query_url
        upstreams = gateway_upstreams.upstreams(size, push_url, logs_url)
    else:
        # Where Cortex differs from Mimir here: where its ruler serves its configuration
        # API (Cortex's /api/v1/rules, Mimir's under /prometheus/config), and OTLP
        # (Cortex's /api/v1/otlp/v1/metrics, Mimir's /otlp/v1/metrics).
        upstreams = dataclasses.replace(
            gateway_upstreams.upstreams(size),
            cortex_push=push_url,
            cortex_query=query_url,
            cortex_ruler=query_url,
            cortex_alertmanager=query_url,
            loki_push=logs_url,
            loki_query=logs_url,
            loki_ruler=logs_url,
            ruler_config_prefix=routes.CORTEX_RULER_CONFIG_PATH,
            metrics_otlp_path=routes.CORTEX_OTLP_METRICS_PATH,
        )
    return gateway_upstreams.gateway_settings(INSTANCE, DOMAIN, TENANTS, upstreams)


def sender_config(port: int, tunnel_port: int, token_files: Mapping[str, Path]) -> dict[str, Any]:
    """A Prometheus that scrapes itself once per tenant (job `sender-<tenant>`) and
    remote-writes each job's `up` to its tenant's endpoint only, with the tenant's token."""
    return {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": job(tenant), "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for tenant in TENANTS
        ],
        "remote_write": [
            {
                "name": tenant,
                "url": f"https://{host('cortex', tenant)}/api/v1/push",
                "proxy_url": f"http://127.0.0.1:{tunnel_port}",
                "tls_config": {"ca_file": str(gateway_ca().file)},
                "authorization": {"credentials_file": str(token_files[tenant])},
                "queue_config": {"batch_send_deadline": "1s", "max_backoff": "1s"},
                "write_relabel_configs": [
                    {
                        "source_labels": ["__name__", "job"],
                        "regex": f"up;{job(tenant)}",
                        "action": "keep",
                    }
                ],
            }
            for tenant in TENANTS
        ],
    }


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda layout: layout.name)
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    minted: dict[str, Minted],
    bound_signer: Signer,
) -> Iterator[Deployment]:
    """Cortex, the gateway in front of it, and a Prometheus writing through the gateway
    until every tenant's series can be queried back through it."""
    layout: Layout = request.param
    directory = tmp_path_factory.mktemp(layout.name)
    trusted = {m.kid: m.public_pem for m in minted.values()}
    trusted[bound_signer.kid] = bound_signer.public_pem
    bindings = {m.kid: tenant for tenant, m in minted.items()}
    bindings[bound_signer.kid] = "prod"
    token_files = {tenant: directory / f"{tenant}.token" for tenant in TENANTS}
    for tenant, file in token_files.items():
        file.write_text(minted[tenant].token, encoding="utf-8")
    with ExitStack() as stack:
        if layout.cortex_url_setting:
            single = stack.enter_context(
                cortex(directory / "cortex", http_prefix=OPSTRACE_HTTP_PREFIX)
            )
            pushes, queries = single, single
        else:
            pushes, queries = stack.enter_context(split_cortex(directory / "cortex"))
        logs = stack.enter_context(Recorder("logs").running())
        settings = program_settings(layout, pushes.url, queries.url, logs.url)
        gateway = stack.enter_context(
            started_gateway(
                on_loopback(settings, directory / "gateway"), trusted, bindings=bindings
            )
        )
        tunnel_port, _ = stack.enter_context(connect_tunnel(gateway.port))
        tokens = {tenant: minted[tenant].token for tenant in TENANTS}
        for scope in ("write", "read"):
            tokens[f"prod/{scope}"] = bound_signer.token("prod", scope=f"metrics:{scope}")
        running = Deployment(queries, gateway, tokens, tunnel_port, logs)
        sender_port = free_port()
        config = sender_config(sender_port, tunnel_port, token_files)
        stack.enter_context(prometheus(directory / "sender", sender_port, config))
        for tenant in TENANTS:
            wait_until(
                functools.partial(running.sees_up, tenant),
                f"{tenant}'s series through the gateway",
                timeout=ARRIVAL_SECONDS,
            )
        yield running


@pytest.mark.parametrize("tenant", TENANTS)
def test_a_tenant_queries_back_its_own_series_and_nothing_else(
    deployment: Deployment, tenant: str
) -> None:
    everything = deployment.data(tenant, "/api/v1/query", {"query": '{__name__=~".+"}'})
    assert [(s["metric"]["__name__"], s["metric"]["job"]) for s in everything["result"]] == [
        ("up", job(tenant))
    ]


@pytest.mark.parametrize("tenant", TENANTS)
def test_a_query_sent_as_a_form_post_reaches_cortex_with_its_form(
    deployment: Deployment, tenant: str
) -> None:
    up = deployment.data(tenant, "/api/v1/query", {"query": "up"}, form=True)
    assert [s["metric"]["job"] for s in up["result"]] == [job(tenant)]
    assert up["result"][0]["value"][1] == "1"


@pytest.mark.parametrize("tenant", TENANTS)
def test_label_values_labels_and_series_show_only_the_tenants_own(
    deployment: Deployment, tenant: str
) -> None:
    assert deployment.data(tenant, "/api/v1/label/job/values", {}) == [job(tenant)]
    assert deployment.data(tenant, "/api/v1/labels", {}) == ["__name__", "instance", "job"]
    series = deployment.data(tenant, "/api/v1/series", {"match[]": '{job=~".+"}'})
    assert [(s["__name__"], s["job"]) for s in series] == [("up", job(tenant))]


def test_a_tenants_token_is_refused_at_another_tenants_endpoint(deployment: Deployment) -> None:
    # Its key is bound to prod, as the program binds each tenant's: refused as a bad token.
    prods_token = bearer(deployment.tokens["prod"])
    path = "/api/v1/query?query=up"
    response = request(deployment.gateway.port, host("cortex", "staging"), path, prods_token)
    assert response == Response(401, data_token.BAD_TOKEN)


@pytest.mark.parametrize("tenant", TENANTS)
def test_the_samples_landed_in_cortex_under_the_tenants_org_id(
    deployment: Deployment, tenant: str
) -> None:
    path = f"{CORTEX_PROMETHEUS_PREFIX}/api/v1/label/job/values"
    status, body = deployment.cortex.get(path, org_id=tenant)
    assert (status, json.loads(body)["data"]) == (200, [job(tenant)])


def test_cortex_itself_requires_an_org_id_and_has_none_for_the_system_tenant(
    deployment: Deployment,
) -> None:
    path = f"{CORTEX_PROMETHEUS_PREFIX}/api/v1/label/job/values"
    assert deployment.cortex.get(path, org_id=None) == (401, "no org id\n")
    status, body = deployment.cortex.get(path, org_id="system")
    assert (status, json.loads(body)["data"]) == (200, [])


def _cortex_routes() -> list[tuple[str, str]]:
    """(method, path) of every metrics route of the allowlist, names filled in."""
    return [
        (method, path.replace(routes.LABEL_NAME, "job").replace(routes.NAME, "probe"))
        for rule in routes.ROUTES
        if rule.service == "cortex"
        for path in rule.client_paths()
        for method in rule.methods
    ]


@pytest.mark.parametrize(("method", "path"), _cortex_routes())
def test_every_metrics_route_the_gateway_lets_through_has_a_cortex_handler(
    deployment: Deployment, method: str, path: str
) -> None:
    response = request(
        deployment.gateway.port,
        host("cortex", "prod"),
        path,
        bearer(deployment.tokens["prod"]),
        method=method,
        body=b"" if method == "POST" else None,
    )
    assert response.body != CORTEX_NO_ROUTE, f"Cortex has no handler for {method} {path}"
    assert response.status != 405, response


# OpenTelemetry (OTLP/HTTP) ---------------------------------------------------------------


def otlp_session(deployment: Deployment) -> requests.Session:
    """What an OTLP exporter sends through: the tunnel to the gateway for the endpoint hosts."""
    session = requests.Session()
    # No CA bundle from the environment (REQUESTS_CA_BUNDLE would replace the exporter's
    # certificate_file): the test CA only.
    session.trust_env = False
    session.proxies = {"https": f"http://127.0.0.1:{deployment.tunnel_port}"}
    return session


def otlp_metrics_exporter(deployment: Deployment, endpoint_of: str, token_of: str) -> Any:
    """OpenTelemetry's own OTLP/HTTP metrics exporter (protobuf, gzip as Collectors send),
    at `endpoint_of`'s endpoint with the token `token_of` names (`deployment.tokens`)."""
    return OTLPMetricExporter(
        endpoint=f"https://{host('cortex', endpoint_of)}{routes.OTLP_METRICS_PATH}",
        certificate_file=str(gateway_ca().file),
        headers={"Authorization": f"Bearer {deployment.tokens[token_of]}"},
        compression=Compression.Gzip,
        session=otlp_session(deployment),
    )


def push_metric(exporter: Any, name: str) -> bool:
    """One counter increment, collected by the SDK and exported once, as its periodic
    reader would; whether the exporter reports success."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "otlp-probe"}), metric_readers=[reader]
    )
    try:
        provider.get_meter("e2e").create_counter(name).add(3, {"path": "/checkout"})
        collected = reader.get_metrics_data()
        assert collected is not None
        return bool(exporter.export(collected) == MetricExportResult.SUCCESS)
    finally:
        exporter.shutdown()
        provider.shutdown()


def raw_otlp_push(deployment: Deployment, token_of: str) -> Response:
    """An empty OTLP metrics push at prod's endpoint with the token `token_of` names."""
    return request(
        deployment.gateway.port,
        host("cortex", "prod"),
        routes.OTLP_METRICS_PATH,
        {**bearer(deployment.tokens[token_of]), "Content-Type": "application/x-protobuf"},
        method="POST",
        body=b"",
    )


def otlp_series(deployment: Deployment, tenant: str, name: str) -> list[dict[str, Any]]:
    data = deployment.data(tenant, "/api/v1/query", {"query": f'{{__name__=~"{name}.*"}}'})
    return list(data["result"])


def test_an_opentelemetry_sdk_push_lands_in_cortex_and_is_queried_back_by_its_tenant_only(
    deployment: Deployment,
) -> None:
    name = f"otlp_probe_{uuid.uuid4().hex[:8]}"
    assert push_metric(otlp_metrics_exporter(deployment, "prod", "prod"), name)

    wait_until(lambda: bool(otlp_series(deployment, "prod", name)), f"{name} in prod")
    (found,) = otlp_series(deployment, "prod", name)
    assert found["metric"]["path"] == "/checkout"
    assert found["value"][1] == "3"
    assert otlp_series(deployment, "staging", name) == []


def test_a_write_scoped_otlp_push_is_queried_back_with_a_read_scoped_token_only(
    deployment: Deployment,
) -> None:
    name = f"otlp_scoped_{uuid.uuid4().hex[:8]}"
    assert push_metric(otlp_metrics_exporter(deployment, "prod", "prod/write"), name)

    query = {"query": f'{{__name__=~"{name}.*"}}'}
    wait_until(
        lambda: bool(
            success_data(deployment.ask("prod", "/api/v1/query", query, token_of="prod/read"))[
                "result"
            ]
        ),
        f"{name} read back with the read-scoped token",
    )
    asked_by_writer = deployment.ask("prod", "/api/v1/query", query, token_of="prod/write")
    assert asked_by_writer == Response(403, f"{scopes.MISSING_SCOPE_PREFIX}metrics:read")
    pushed_by_reader = otlp_metrics_exporter(deployment, "prod", "prod/read")
    assert not push_metric(pushed_by_reader, f"{name}_reader")
    assert raw_otlp_push(deployment, "prod/read") == Response(
        403, f"{scopes.MISSING_SCOPE_PREFIX}metrics:write"
    )
    assert otlp_series(deployment, "prod", f"{name}_reader") == []
    assert deployment.ask("staging", "/api/v1/query", query, token_of="prod/read").status == 401
    assert otlp_series(deployment, "staging", name) == []


def test_an_otlp_push_with_another_tenants_token_is_refused_and_lands_nowhere(
    deployment: Deployment,
) -> None:
    name = f"otlp_stray_{uuid.uuid4().hex[:8]}"
    assert not push_metric(otlp_metrics_exporter(deployment, "prod", "staging"), name)
    assert raw_otlp_push(deployment, "staging") == Response(401, data_token.BAD_TOKEN)
    assert otlp_series(deployment, "prod", name) == otlp_series(deployment, "staging", name) == []


def test_an_otlp_json_push_lands_too(deployment: Deployment) -> None:
    name = f"otlp_json_{uuid.uuid4().hex[:8]}"
    now = str(time.time_ns())
    point = {"asInt": "5", "timeUnixNano": now, "startTimeUnixNano": now}
    document = {
        "resourceMetrics": [
            {
                "resource": {"attributes": []},
                "scopeMetrics": [{"metrics": [{"name": name, "gauge": {"dataPoints": [point]}}]}],
            }
        ]
    }
    response = request(
        deployment.gateway.port,
        host("cortex", "prod"),
        routes.OTLP_METRICS_PATH,
        {**bearer(deployment.tokens["prod"]), "Content-Type": "application/json"},
        method="POST",
        body=json.dumps(document).encode(),
    )
    assert response.status == 200, response
    wait_until(lambda: bool(otlp_series(deployment, "prod", name)), f"{name} in prod")


def test_an_opentelemetry_sdk_log_export_reaches_the_logs_push_upstream_as_the_tenant(
    deployment: Deployment,
) -> None:
    # The proof stops at Loki's door: Loki (AGPL) is not built here, its stand-in records
    # what the gateway forwards (path, tenant, the body as the SDK sent it).
    exporter = OTLPLogExporter(
        endpoint=f"https://{host('loki', 'prod')}{routes.OTLP_LOGS_PATH}",
        certificate_file=str(gateway_ca().file),
        headers={"Authorization": f"Bearer {deployment.tokens['prod']}"},
        session=otlp_session(deployment),
    )
    marker = f"checkout failed {uuid.uuid4().hex}"
    provider = LoggerProvider(resource=Resource.create({"service.name": "otlp-probe"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        provider.get_logger("e2e").emit(body=marker, severity_text="ERROR")
    finally:
        provider.shutdown()

    (arrived,) = [r for r in deployment.logs.requests if marker.encode() in r.body]
    assert (arrived.method, arrived.path) == ("POST", routes.OTLP_LOGS_PATH)
    assert arrived.values("X-Scope-OrgID") == ["prod"]
    assert arrived.values("Authorization") == []
    sent = ExportLogsServiceRequest.FromString(arrived.body)
    (record,) = sent.resource_logs[0].scope_logs[0].log_records
    assert record.body.string_value == marker


def test_a_large_gzip_otlp_body_passes_the_gateway_unchanged(deployment: Deployment) -> None:
    # A Collector's batch: several MiB of compressed protobuf. The gateway buffers no
    # body and sets no size limit of its own (the backends' limits apply).
    body = gzip.compress(os.urandom(4 * 1024 * 1024), compresslevel=1)
    headers = {
        **bearer(deployment.tokens["prod"]),
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }
    response = request(
        deployment.gateway.port,
        host("loki", "prod"),
        routes.OTLP_LOGS_PATH,
        headers,
        method="POST",
        body=body,
    )
    assert response.status == 200, response
    (arrived,) = [r for r in deployment.logs.requests if r.body == body]
    assert arrived.values("Content-Encoding") == ["gzip"]
    assert arrived.values("X-Scope-OrgID") == ["prod"]
