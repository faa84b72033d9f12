"""The system tenant's dashboards: the instance itself, built with the Grafana Foundation
SDK's builders from what its collector ships (opstrace/alloy_config.py): the gateway's
usage counters (job `gateway-usage`), cAdvisor's container metrics (job `cadvisor`) and
every pod's logs. The collector ships no metrics of Mimir's or Loki's own, so their
ingestion is read from the gateway's access log (each push request's line) and their
errors from their logs.

Pure, no Pulumi: the same JSON on every run (keys sorted).
"""

from __future__ import annotations

import json
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import logs, loki, prometheus, table, timeseries
from grafana_foundation_sdk.cog import encoder
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from opstrace import charts, names
from opstrace.dashboards import Dashboard
from opstrace.gateway.manifests import HAPROXY_CONTAINER
from opstrace.grafana import DATASOURCE_UIDS
from sidecar import usage

GATEWAY_USAGE_UID: Final = "opstrace-gateway-usage"
BACKENDS_UID: Final = "opstrace-mimir-loki"
SYSTEM_TAGS: Final = ("opstrace",)

CADVISOR_JOB: Final = "cadvisor"
"""The collector's job of the kubelets' cAdvisor metrics (`alloy_config`)."""
"""The gateway pods' HAProxy container (`gateway.manifests`), whose standard output is
the access log."""
PUSH_SCOPES: Final = ("metrics:write", "logs:write")
"""The scopes (`scopes.SCOPES`) the routes that write data need: a push's access log
line names one (its `scope` field)."""

REQUESTS, RECEIVED_BYTES, SENT_BYTES = (name for name, _ in usage.METRICS)
_PROMETHEUS: Final = dashboard_model.DataSourceRef(
    type_val="prometheus", uid=DATASOURCE_UIDS["prometheus"]
)
_LOKI: Final = dashboard_model.DataSourceRef(type_val="loki", uid=DATASOURCE_UIDS["loki"])
_REFUSED: Final = 'code=~"4..|5.."'
_BACKENDS: Final = f'namespace=~"{charts.MIMIR.namespace}|{charts.LOKI.namespace}"'
_ACCESS_LOG: Final = (
    f'{{namespace="{names.tenant_namespace(names.SYSTEM_TENANT)}", '
    f'container="{HAPROXY_CONTAINER}"}} | logfmt | scope=~"{"|".join(PUSH_SCOPES)}"'
)


def system_dashboards() -> tuple[Dashboard, ...]:
    """The system tenant's dashboards of the instance, the same JSON on every call."""
    return tuple(Dashboard.of(_encoded(build)) for build in (_gateway_usage(), _backends()))


def _encoded(builder: Builder[dashboard_model.Dashboard]) -> dict[str, Any]:
    encoded = json.loads(json.dumps(builder.build(), cls=encoder.JSONEncoder))
    assert isinstance(encoded, dict)
    return encoded


def _gateway_usage() -> dashboard_builder.Dashboard:
    by_tenant = "sum by (tenant)"
    refused = f"sum by (tenant, code) (rate({REQUESTS}{{{_REFUSED}}}[$__rate_interval]))"
    share = (
        f"{by_tenant} (rate({REQUESTS}{{{_REFUSED}}}[$__rate_interval])) / "
        f"{by_tenant} (rate({REQUESTS}[$__rate_interval]))"
    )
    return (
        _system_dashboard(GATEWAY_USAGE_UID, "Gateway usage")
        .description(
            "Every tenant's use of the data API, counted by the gateway from its access log "
            "(sidecar/usage.py): requests, refusals and bytes, by tenant and credential. "
            "tenant or credential '-': not known when the request was answered."
        )
        .with_row(dashboard_builder.Row("Requests").id(1))
        .with_panel(
            _timeseries(2, "Requests per second by tenant", "reqps").with_target(
                _promql("A", f"{by_tenant} (rate({REQUESTS}[$__rate_interval]))")
            )
        )
        .with_panel(
            _timeseries(3, "Refusals per second by tenant and code (4xx, 5xx)", "reqps")
            .description(
                "4xx: refused (no or a wrong token, a missing scope, a limit); 5xx: failed."
            )
            .with_target(_promql("A", refused, "{{tenant}} {{code}}"))
        )
        .with_panel(
            _timeseries(4, "Share of requests refused by tenant", "percentunit").with_target(
                _promql("A", share)
            )
        )
        .with_row(dashboard_builder.Row("Bytes").id(5))
        .with_panel(
            _timeseries(6, "Bytes received per second by tenant", "Bps")
            .description("Requests as clients sent them, headers and bodies.")
            .with_target(_promql("A", f"{by_tenant} (rate({RECEIVED_BYTES}[$__rate_interval]))"))
        )
        .with_panel(
            _timeseries(7, "Bytes sent per second by tenant", "Bps")
            .description("Responses, headers and bodies.")
            .with_target(_promql("A", f"{by_tenant} (rate({SENT_BYTES}[$__rate_interval]))"))
        )
        .with_row(dashboard_builder.Row("Credentials").id(8))
        .with_panel(_credentials_table(9))
    )


def _credentials_table(panel_id: int) -> table.Panel:
    """Per tenant and credential, over the dashboard's time range."""
    by_credential = "sum by (tenant, credential)"
    columns = (
        ("A", "Requests", f"{by_credential} (increase({REQUESTS}[$__range]))"),
        ("B", "Refused", f"{by_credential} (increase({REQUESTS}{{{_REFUSED}}}[$__range]))"),
        ("C", "Bytes received", f"{by_credential} (increase({RECEIVED_BYTES}[$__range]))"),
        ("D", "Bytes sent", f"{by_credential} (increase({SENT_BYTES}[$__range]))"),
    )
    panel = (
        table.Panel()
        .id(panel_id)
        .title("By credential over the time range")
        .description("Each tenant's credentials: requests, refusals and bytes.")
        .datasource(_PROMETHEUS)
        .span(24)
        .height(10)
        .decimals(0)
        .with_transformation(dashboard_model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dashboard_model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": {f"Value #{ref}": name for ref, name, _ in columns},
                },
            )
        )
    )
    for ref, name, expr in columns:
        panel = panel.with_target(
            _promql(ref, expr, "").instant().format(prometheus_model.PromQueryFormat.TABLE)
        )
        if name.startswith("Bytes"):
            panel = panel.override_by_name(
                name, [dashboard_model.DynamicConfigValue(id_val="unit", value="bytes")]
            )
    return panel


def _backends() -> dashboard_builder.Dashboard:
    by_scope = "sum by (scope)"
    resources = f'job="{CADVISOR_JOB}", {_BACKENDS}, container!=""'
    errors = f'{{{_BACKENDS}}} |= "level=error"'
    return (
        _system_dashboard(BACKENDS_UID, "Mimir and Loki")
        .description(
            "Ingestion as the gateway saw it (its access log: metrics:write and logs:write "
            "requests), errors from Mimir's and Loki's own logs, and their containers' CPU "
            "and memory (cAdvisor). The collector does not scrape Mimir's or Loki's own "
            "metrics."
        )
        .with_row(dashboard_builder.Row("Ingestion (the gateway's access log)").id(1))
        .with_panel(
            _timeseries(2, "Push requests per second by scope", "reqps", _LOKI).with_target(
                _logql("A", f"{by_scope} (rate({_ACCESS_LOG} [$__auto]))", "{{scope}}")
            )
        )
        .with_panel(
            _timeseries(3, "Pushed bytes per second by tenant and scope", "Bps", _LOKI).with_target(
                _logql(
                    "A",
                    f"sum by (tenant, scope) (rate({_ACCESS_LOG} | unwrap bytes_in "
                    '| __error__="" [$__auto]))',
                    "{{tenant}} {{scope}}",
                )
            )
        )
        .with_panel(
            _timeseries(
                4, "Pushes refused or failed per second by scope and status", "reqps", _LOKI
            ).with_target(
                _logql(
                    "A",
                    f"sum by (scope, status) (rate({_ACCESS_LOG} | status >= 400 [$__auto]))",
                    "{{scope}} {{status}}",
                )
            )
        )
        .with_row(dashboard_builder.Row("Errors (their logs)").id(5))
        .with_panel(
            _timeseries(6, "Error log lines per second by container", "short", _LOKI).with_target(
                _logql(
                    "A",
                    f"sum by (namespace, container) (rate({errors} [$__auto]))",
                    "{{namespace}}/{{container}}",
                )
            )
        )
        .with_panel(
            logs.Panel()
            .id(7)
            .title("Error log lines")
            .datasource(_LOKI)
            .span(12)
            .height(8)
            .show_time(True)
            .with_target(loki.Dataquery().ref_id("A").datasource(_LOKI).expr(errors))
        )
        .with_row(dashboard_builder.Row("Resources (cAdvisor)").id(8))
        .with_panel(
            _timeseries(9, "CPU by container", "short")
            .description("Cores in use.")
            .with_target(
                _promql(
                    "A",
                    "sum by (namespace, container) (rate(container_cpu_usage_seconds_total"
                    f"{{{resources}}}[$__rate_interval]))",
                    "{{namespace}}/{{container}}",
                )
            )
        )
        .with_panel(
            _timeseries(10, "Memory (working set) by container", "bytes").with_target(
                _promql(
                    "A",
                    "sum by (namespace, container) (container_memory_working_set_bytes"
                    f"{{{resources}}})",
                    "{{namespace}}/{{container}}",
                )
            )
        )
    )


def _system_dashboard(uid: str, title: str) -> dashboard_builder.Dashboard:
    return (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .tags(list(SYSTEM_TAGS))
        .readonly()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
    )


def _timeseries(
    panel_id: int,
    title: str,
    unit: str,
    datasource: dashboard_model.DataSourceRef = _PROMETHEUS,
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .datasource(datasource)
        .unit(unit)
        .min(0)
        .span(12)
        .height(8)
        .fill_opacity(10)
    )


def _promql(ref: str, expr: str, legend: str = "{{tenant}}") -> prometheus.Dataquery:
    query = prometheus.Dataquery().ref_id(ref).datasource(_PROMETHEUS).expr(expr)
    return query.legend_format(legend) if legend else query


def _logql(ref: str, expr: str, legend: str) -> loki.Dataquery:
    return loki.Dataquery().ref_id(ref).datasource(_LOKI).expr(expr).legend_format(legend)
