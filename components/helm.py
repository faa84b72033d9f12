"""Helm releases of pinned charts (see `opstrace.charts`), their images set and mirrored."""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

import pulumi
import pulumi_kubernetes as k8s

from opstrace import chart_images, chart_values, charts


def helm_release(
    name: str,
    chart: charts.Chart,
    values: pulumi.Input[chart_values.Values],
    opts: pulumi.ResourceOptions,
    mirrors: Mapping[str, str],
    namespace: pulumi.Input[str] | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart, each image it runs set where `mirrors` says
    (`opstrace.chart_images`); `pulumi up` waits until its workloads are ready. In the
    chart's own namespace (made with the release), or in `namespace`, which exists."""
    values = pulumi.Output.from_input(values).apply(
        lambda given: reduce(
            chart_values.merged, chart_images.image_values(chart.name, mirrors), dict(given)
        )
    )
    return k8s.helm.v3.Release(
        name,
        name=chart.release,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=chart.namespace if namespace is None else namespace,
        create_namespace=namespace is None,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=900,
        opts=opts,
    )
