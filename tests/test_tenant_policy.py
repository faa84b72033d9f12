"""Tenant limits and retention: from the stack file to the backends' runtime overrides.

A table of stacks, each read as the CLI hands it to the program, with the overrides
each backend is given; then the whole program under the mocks, where a changed limit
or retention changes nothing but the runtime configuration in the Helm releases' values
(which Mimir and Loki reload without a restart; `make charts` checks that the charts
render that as a change of the runtime ConfigMap alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi.runtime import rpc

from devtools.chart_check import plain
from opstrace.config.stack import config_of_stack
from opstrace.policy import limits, rule_files
from tests.conftest import dev_config
from tools.offline import ProgramRun, run_program
from tools.stack_files import PROJECT_DIR, cli_config

RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Row:
    name: str
    settings: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    logs: dict[str, dict[str, Any]]


ROWS = [
    Row("no_policy", {}, {}, {}),
    Row(
        "instance_limits_hold_for_every_tenant",
        {"limits": {"metrics": {"maxGlobalSeriesPerUser": 300000}, "logs": {"ingestionRateMb": 8}}},
        {t: {"max_global_series_per_user": 300000} for t in ("prod", "staging", "system")},
        {t: {"ingestion_rate_mb": 8} for t in ("prod", "staging", "system")},
    ),
    Row(
        "a_tenants_own_limit_wins_key_by_key",
        {
            "limits": {"metrics": {"maxGlobalSeriesPerUser": 300000, "ingestionRate": 20000}},
            "tenants": [
                {"name": "prod", "limits": {"metrics": {"maxGlobalSeriesPerUser": 1000000}}},
                "staging",
            ],
        },
        {
            "prod": {"ingestion_rate": 20000, "max_global_series_per_user": 1000000},
            "staging": {"ingestion_rate": 20000, "max_global_series_per_user": 300000},
            "system": {"ingestion_rate": 20000, "max_global_series_per_user": 300000},
        },
        {},
    ),
    Row(
        "a_tenants_own_retention_in_each_backends_unit",
        {"tenants": [{"name": "prod", "metricsRetention": "90d", "logsRetention": "14d"}]},
        {"prod": {"compactor_blocks_retention_period": "90d"}},
        {"prod": {"retention_period": "336h"}},
    ),
    Row(
        "every_kind_of_limit_as_the_backend_reads_it",
        {
            "tenants": [
                {
                    "name": "prod",
                    "limits": {
                        "metrics": {
                            "ingestionRate": 12500.5,
                            "ingestionBurstSize": 2.5e5,
                            "maxQueryLookback": "2160h",
                        },
                        "logs": {"maxLineSize": "256KB", "maxQuerySeries": 500},
                    },
                }
            ]
        },
        {
            "prod": {
                "ingestion_rate": 12500.5,
                "ingestion_burst_size": 250000,
                "max_query_lookback": "2160h",
            }
        },
        {"prod": {"max_line_size": "256KB", "max_query_series": 500}},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_the_stack_gives_each_backend_its_tenants_overrides(row: Row) -> None:
    config = config_of_stack(cli_config(dev_config(**row.settings)), PROJECT_DIR)
    assert config.overrides(limits.METRICS) == row.metrics
    assert config.overrides(limits.LOGS) == row.logs


def test_each_limit_is_named_as_its_backend_names_it_in_camel_case() -> None:
    for group in limits.GROUPS:
        for limit in limits.LIMITS[group]:
            assert re.sub(r"([A-Z])", r"_\1", limit.key).lower() == limit.backend_key, limit


def test_a_limit_is_set_once_per_group() -> None:
    for group in limits.GROUPS:
        keys = [limit.key for limit in limits.LIMITS[group]]
        assert len(keys) == len(set(keys)), group


# The whole program: a changed policy restarts nothing ---------------------------------


def prod(**policy: Any) -> list[Any]:
    return [{"name": "prod", **policy}, {"name": "staging", "tokens": ["default", "ci"]}]


def changed_inputs(before: ProgramRun, after: ProgramRun) -> dict[str, list[str]]:
    """Resource name -> the paths of its inputs that differ between two runs."""
    old = {r.name: plain(r.inputs) for r in before.resources}
    new = {r.name: plain(r.inputs) for r in after.resources}
    assert set(old) == set(new)
    return {name: paths for name in old if (paths := differences(old[name], new[name]))}


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            p
            for key in sorted(set(old) | set(new))
            for p in differences(old.get(key), new.get(key), f"{path}.{key}")
        ]
    return [] if old == new else [path]


@pytest.fixture(scope="module")
def before() -> ProgramRun:
    return run_program(dev_config(tenants=prod(limits={"metrics": {"ingestionRate": 10000}})))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            {"limits": {"metrics": {"ingestionRate": 50000}}},
            {"dev-acme-backends-metrics": [".values.runtimeConfig.overrides.prod.ingestion_rate"]},
        ),
        (
            {
                "limits": {
                    "metrics": {"ingestionRate": 10000},
                    "logs": {"maxLineSize": "512KB"},
                }
            },
            {"dev-acme-backends-logs": [".values.loki.runtimeConfig.overrides.prod"]},
        ),
        (
            {"limits": {"metrics": {"ingestionRate": 10000}}, "metricsRetention": "90d"},
            {
                "dev-acme-backends-metrics": [
                    ".values.runtimeConfig.overrides.prod.compactor_blocks_retention_period"
                ]
            },
        ),
    ],
    ids=["a_metrics_limit", "a_logs_limit", "a_retention"],
)
def test_a_changed_policy_changes_only_the_runtime_configuration(
    before: ProgramRun, policy: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    after = run_program(dev_config(tenants=prod(**policy)))
    assert changed_inputs(before, after) == expected
    releases = [r.name for r in after.resources if r.type == RELEASE]
    assert set(expected) <= set(releases)


# The uploads: what `up` registers for a tenant's rules and Alertmanager configuration ----

RULES_TYPE = "pulumi-python:dynamic/opstrace:TenantRules"
ALERTMANAGER_TYPE = "pulumi-python:dynamic/opstrace:TenantAlertmanagerConfig"
RULE_FILE = {"groups": [{"name": "latency", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
RECEIVERS = {"route": {"receiver": "team"}, "receivers": [{"name": "team"}]}


@pytest.fixture(scope="module")
def uploading() -> ProgramRun:
    return run_program(dev_config(tenants=prod(rules=RULE_FILE, alertmanagerConfig=RECEIVERS)))


def test_a_tenant_without_rules_or_receivers_uploads_nothing(before: ProgramRun) -> None:
    assert not [r for r in before.resources if r.type in (RULES_TYPE, ALERTMANAGER_TYPE)]


def test_a_tenants_rules_and_receivers_go_to_its_own_endpoint_with_its_token(
    uploading: ProgramRun,
) -> None:
    by_urn = uploading.by_urn()
    for typ, name in (
        (RULES_TYPE, "dev-acme-tenant-prod-rules"),
        (ALERTMANAGER_TYPE, "dev-acme-tenant-prod-alertmanager-config"),
    ):
        (upload,) = [r for r in uploading.resources if r.type == typ]
        assert upload.name == name
        assert by_urn[upload.parent].name == "dev-acme-tenant-prod"
        inputs = plain(upload.inputs)
        assert inputs["endpoint"] == "https://cortex.prod.dev-acme.observability.acme.dev"
        assert inputs["tenant"] == "prod"
        prod_token = next(
            r for r in uploading.resources if r.name == "dev-acme-tenant-prod-token-default"
        )
        assert inputs["token"] == prod_token.state["token"]
        assert rpc.is_rpc_secret(upload.inputs["token"])
        assert "token" in upload.additional_secret_outputs


def test_the_rules_are_each_groups_canonical_text_in_the_stacks_namespace(
    uploading: ProgramRun,
) -> None:
    (rules,) = [r for r in uploading.resources if r.type == RULES_TYPE]
    assert rules.inputs["api"] == "/prometheus/config/v1/rules"
    assert rules.inputs["namespace"] == "opstrace"
    assert rules.inputs["groups"] == [rule_files.canonical(RULE_FILE["groups"][0])]


def test_log_rules_go_to_lokis_ruler_at_the_tenants_logs_endpoint() -> None:
    run = run_program(dev_config(tenants=prod(logRules=RULE_FILE), acmeStaging=False))
    (rules,) = [r for r in run.resources if r.type == RULES_TYPE]
    assert rules.name == "dev-acme-tenant-prod-log-rules"
    inputs = {k: v for k, v in plain(rules.inputs).items() if k != "__provider"}
    assert inputs | {"token": "-"} == {
        "endpoint": "https://loki.prod.dev-acme.observability.acme.dev",
        "api": "/loki/api/v1/rules",
        "tenant": "prod",
        "token": "-",
        "namespace": "opstrace",
        "groups": [rule_files.canonical(RULE_FILE["groups"][0])],
    }
    assert rpc.is_rpc_secret(rules.inputs["token"])


def test_the_alertmanager_configuration_is_a_secret(uploading: ProgramRun) -> None:
    (upload,) = [r for r in uploading.resources if r.type == ALERTMANAGER_TYPE]
    assert rpc.is_rpc_secret(upload.inputs["config"])
    assert plain(upload.inputs)["config"] == rule_files.canonical(RECEIVERS)
    assert set(upload.additional_secret_outputs) == {"token", "config"}


def descendants(run: ProgramRun, name: str) -> set[str]:
    """The custom resources under the component `name` (what depending on it means)."""
    by_urn = run.by_urn()

    def under(resource: Any) -> bool:
        parent = by_urn.get(resource.parent)
        return parent is not None and (parent.name == name or under(parent))

    return {r.urn for r in run.resources if r.custom and under(r)}


def test_uploads_wait_for_everything_on_the_tenants_way_and_go_first_on_destroy(
    uploading: ProgramRun,
) -> None:
    names = {r.urn: r.name for r in uploading.resources}
    # The gateway serving (every pod serves the current files: the rollout, which waits
    # for its ConfigMaps and Deployment; its Services), not every one of its children.
    serving = {"dev-acme-gateway-rollout", "dev-acme-gateway-service", "dev-acme-gateway-internal"}
    on_the_way = {r.urn for r in uploading.resources if r.name in serving} | descendants(
        uploading, "dev-acme-backends"
    )
    assert {names[urn] for urn in on_the_way} >= serving
    assert any(r.type == RELEASE and r.urn in on_the_way for r in uploading.resources)
    for upload in (r for r in uploading.resources if r.type in (RULES_TYPE, ALERTMANAGER_TYPE)):
        after = set(upload.dependencies)
        assert on_the_way <= after, upload.name
        assert {
            "dev-acme-dns-prod-cortex",
            "dev-acme-dns-prod-loki",
            "dev-acme-tenant-prod-certificate",
        } <= {names[urn] for urn in after}, upload.name
