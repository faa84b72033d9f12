"""Helm releases of pinned charts (see `components.rules.charts`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.rules import chart_values, charts


def helm_release(
    name: str,
    chart: charts.Chart,
    values: pulumi.Input[chart_values.Values],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart; `pulumi up` waits until its workloads are ready."""
    return k8s.helm.v3.Release(
        name,
        name=chart.release,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=chart.namespace,
        create_namespace=True,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=900,
        opts=opts,
    )
