"""The chart check's pure parts (devtools/chart_check.py): which releases it renders, with what.

Rendering needs Helm and the charts (`make charts`, not in CI); what it renders is the
program's own plan, and that is checked here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from devtools import chart_check as check
from opstrace import charts, names
from opstrace.aws import eks_versions
from opstrace.policy import limits


@pytest.fixture(scope="module")
def dev_cases() -> list[check.Case]:
    return list(check.cases(["dev"], ["small", "production"]))


def test_every_stack_is_planned_at_both_presets_in_its_region(dev_cases: list[check.Case]) -> None:
    assert [(c.label, c.region, c.kubernetes_version) for c in dev_cases] == [
        ("dev/small", "eu-central-1", eks_versions.DEFAULT_VERSION),
        ("dev/production", "eu-central-1", eks_versions.DEFAULT_VERSION),
    ]
    assert [c.config.platform.size.name for c in dev_cases] == ["small", "production"]


def test_a_placeholder_domain_is_replaced_by_the_stand_in(dev_cases: list[check.Case]) -> None:
    assert {c.config.domain for c in dev_cases} == {check.STAND_IN_DOMAIN}


def test_each_release_is_rendered_as_the_program_registers_it(dev_cases: list[check.Case]) -> None:
    small = {r.chart.name: r for r in check.releases(dev_cases[0])}
    assert set(small) == {c.name for c in charts.ALL_CHARTS}
    loki = small[charts.LOKI.name]
    assert (loki.name, loki.namespace) == (charts.LOKI.release, charts.LOKI.namespace)
    assert loki.values["deploymentMode"] == "Monolithic"
    production = {r.chart.name: r for r in check.releases(dev_cases[1])}
    assert production[charts.LOKI.name].values["deploymentMode"] == "SimpleScalable"


def test_values_reach_helm_as_the_engine_hands_them_over() -> None:
    # The engine sends every number as a float; Helm's schemas want integers.
    assert check.plain({"replicas": 3.0, "ratio": 0.5, "list": [1.0]}) == {
        "replicas": 3,
        "ratio": 0.5,
        "list": [1],
    }


def test_each_chart_has_its_local_copy_variable() -> None:
    assert [check.env_name(c) for c in charts.ALL_CHARTS] == [
        "OPSTRACE_CHART_MIMIR_DISTRIBUTED",
        "OPSTRACE_CHART_LOKI",
        "OPSTRACE_CHART_ALLOY",
        "OPSTRACE_CHART_AWS_LOAD_BALANCER_CONTROLLER",
        "OPSTRACE_CHART_CERT_MANAGER",
        "OPSTRACE_CHART_GRAFANA",
    ]


@pytest.mark.parametrize("chart", [charts.MIMIR, charts.LOKI], ids=lambda c: c.name)
def test_the_policy_check_changes_the_runtime_configuration_where_the_program_puts_it(
    dev_cases: list[check.Case], chart: charts.Chart
) -> None:
    case = dev_cases[0]
    release = next(r for r in check.releases(case) if r.chart == chart)
    backend = check.BACKENDS[chart.name]

    def runtime(values: dict[str, Any]) -> Any:
        for key in backend.runtime_config_at:
            values = values[key]
        return values

    assert runtime(release.values) == limits.runtime_config(case.config.overrides(backend.group))
    variant = check.with_changed_policy(case, release)
    assert runtime(variant.values) != runtime(release.values)
    for values in (variant.values, release.values):
        holder = values
        for key in backend.runtime_config_at[:-1]:
            holder = holder[key]
        holder.pop(backend.runtime_config_at[-1])
    assert variant.values == release.values


def test_each_tenants_grafana_is_rendered_in_its_namespace(dev_cases: list[check.Case]) -> None:
    case = dev_cases[0]
    grafanas = [r for r in check.releases(case) if r.chart == charts.GRAFANA]
    with_grafana = [t.name for t in case.config.tenants if t.grafana.enabled]
    assert with_grafana
    assert sorted(r.namespace for r in grafanas) == sorted(
        names.tenant_namespace(t) for t in with_grafana
    )
    assert {r.name for r in grafanas} == {charts.GRAFANA.release}
    # Each is a render of its own, beside the instance's charts.
    keys = [r.key for r in check.releases(case)]
    assert len(keys) == len(set(keys))


def test_a_tenant_with_a_grafana_setting_but_no_release_is_named(
    dev_cases: list[check.Case],
) -> None:
    case = dev_cases[0]
    assert check.grafana_coverage_problems(case) == []
    staging = next(t for t in case.config.tenants if t.name == "staging")
    spec = replace(staging.grafana, enabled=False)
    tenants = tuple(replace(t, grafana=spec) if t is staging else t for t in case.config.tenants)
    changed = replace(case, config=replace(case.config, tenants=tenants))
    assert check.grafana_coverage_problems(changed) == [
        "grafana: the plan has a Grafana release in staging-tenant, whose tenant has none"
    ]
