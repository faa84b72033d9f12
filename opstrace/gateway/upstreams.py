"""Where the gateway sends each kind of request, and the one builder of its settings.

Pure, no Pulumi. The instance's own backends are the Services their charts create
(`charts`: release, namespace, port); `cortexUrl`/`lokiUrl` name external ones instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from opstrace import grafana
from opstrace.charts import (
    LOKI,
    LOKI_HTTP_PORT,
    MIMIR,
    MIMIR_HTTP_PORT,
    PROMETHEUS_API_PREFIX,
    Chart,
)
from opstrace.config.sizes import SINGLE_BINARY, Size
from opstrace.gateway import routes
from opstrace.gateway.settings import DEFAULT_INTERNAL_LISTEN, GatewaySettings


@dataclass(frozen=True)
class Upstreams:
    """Where the gateway sends each kind of request (`http://host:port`)."""

    cortex_push: str
    cortex_query: str
    cortex_ruler: str
    cortex_alertmanager: str
    loki_push: str
    loki_query: str
    loki_ruler: str
    metrics_query_prefix: str
    """The path prefix of the metrics backend's Prometheus query API."""
    ruler_config_prefix: str
    """Where the metrics ruler serves its configuration API."""
    metrics_otlp_path: str
    """Where the metrics backend serves OTLP metrics."""


def upstreams(size: Size, cortex_url: str = "", loki_url: str = "") -> Upstreams:
    """The in-cluster services of the instance's own backends, or the external ones."""

    def service(chart: Chart, component: str, port: int) -> str:
        host = f"{chart.release}{component}.{chart.namespace}.svc.cluster.local"
        return f"http://{host}:{port}"

    single = size.logs.mode == SINGLE_BINARY
    return Upstreams(
        cortex_push=cortex_url or service(MIMIR, "-distributor", MIMIR_HTTP_PORT),
        cortex_query=cortex_url or service(MIMIR, "-query-frontend", MIMIR_HTTP_PORT),
        cortex_ruler=cortex_url or service(MIMIR, "-ruler", MIMIR_HTTP_PORT),
        cortex_alertmanager=cortex_url or service(MIMIR, "-alertmanager", MIMIR_HTTP_PORT),
        loki_push=loki_url or service(LOKI, "" if single else "-write", LOKI_HTTP_PORT),
        loki_query=loki_url or service(LOKI, "" if single else "-read", LOKI_HTTP_PORT),
        # Loki's ruler runs in its backend target (in the single binary when there is one).
        loki_ruler=loki_url or service(LOKI, "" if single else "-backend", LOKI_HTTP_PORT),
        # Mimir serves queries under /prometheus only, and so does a stock Cortex; a Cortex
        # set up as Opstrace's (http_prefix "") serves them there too (tests/e2e checks all).
        metrics_query_prefix=PROMETHEUS_API_PREFIX,
        # An external backend has Cortex's layout (Opstrace's); Mimir's ruler has its own.
        ruler_config_prefix=(
            routes.CORTEX_RULER_CONFIG_PATH if cortex_url else routes.RULER_CONFIG_PATH
        ),
        metrics_otlp_path=(
            routes.CORTEX_OTLP_METRICS_PATH if cortex_url else routes.OTLP_METRICS_PATH
        ),
    )


def gateway_settings(
    instance: str,
    domain: str,
    tenants: Sequence[str],
    to: Upstreams,
    instance_networks: Sequence[str] = (),
    tenant_networks: Mapping[str, tuple[str, ...]] = MappingProxyType({}),
    grafana_tenants: Sequence[str] = (),
) -> GatewaySettings:
    """The settings the gateway pods render their files from (listeners and paths: the
    pod's defaults), with the instance's and the tenants' allowlists, and the tenants
    whose Grafana it serves. The one place an instance's gateway settings are made."""
    return GatewaySettings(
        instance=instance,
        domain=domain,
        tenants=tuple(tenants),
        cortex_push_url=to.cortex_push,
        cortex_query_url=to.cortex_query,
        cortex_ruler_url=to.cortex_ruler,
        cortex_alertmanager_url=to.cortex_alertmanager,
        loki_push_url=to.loki_push,
        loki_query_url=to.loki_query,
        loki_ruler_url=to.loki_ruler,
        metrics_query_prefix=to.metrics_query_prefix,
        ruler_config_prefix=to.ruler_config_prefix,
        metrics_otlp_path=to.metrics_otlp_path,
        instance_networks=tuple(instance_networks),
        tenant_networks=MappingProxyType(dict(tenant_networks)),
        grafana_urls=MappingProxyType({t: grafana.service_url(t) for t in grafana_tenants}),
        # The in-cluster door (no allowlists) only where a Grafana needs it.
        internal_listen=DEFAULT_INTERNAL_LISTEN if grafana_tenants else None,
    )


def rulers_alertmanager(settings: GatewaySettings) -> str:
    """Where the rulers send their alerts: the Alertmanager the gateway sends tenants to
    (Mimir's, or the external backend's), at its tenants' API."""
    return settings.cortex_alertmanager_url + routes.ALERTMANAGER_PREFIX
