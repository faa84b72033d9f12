"""The sizing presets (`opstrace:sizing`): each backend's shape, and what it is sized for.

Pure, no Pulumi. The numbers behind each preset are in its `sized_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class MetricsSize:
    """Grafana Mimir's shape (classic architecture: ingesters, no Kafka)."""

    replication_factor: int
    zone_aware: bool
    ingesters: int
    ingester_memory: str
    distributors: int
    queriers: int
    query_frontends: int
    store_gateways: int
    rulers: int
    alertmanagers: int
    sizing_file: bool = False
    """Run Mimir's own `small.yaml` (`opstrace.mimir_sizing`: requests, limits, caches)
    under these replica counts; else the chart's defaults and `ingester_memory`."""


SINGLE_BINARY: Final = "Monolithic"
"""Loki's one-process deployment mode, named `Monolithic` since chart 12 (`SingleBinary`
before, still accepted, rendered the same: `loki.deployment.isMonolithic` in the chart's
`_helpers.tpl` takes both)."""


@dataclass(frozen=True)
class LogsSize:
    """Loki's deployment mode and shape."""

    mode: str
    """`Monolithic` (one process kind) or `SimpleScalable` (write, read, backend)."""
    replicas: int
    """Pods per target."""
    replication_factor: int


@dataclass(frozen=True)
class Size:
    """A named preset, with what it is sized for (the numbers behind it)."""

    name: str
    node_instance_type: str
    node_count: int
    nat_per_zone: bool
    """One NAT gateway per zone (no single zone outage cuts egress), or one in all."""
    metrics: MetricsSize
    logs: LogsSize
    sized_for: str


SIZES: Final[Mapping[str, Size]] = {
    "small": Size(
        name="small",
        node_instance_type="m7i.large",
        node_count=3,
        nat_per_zone=False,
        metrics=MetricsSize(
            replication_factor=1,
            zone_aware=False,
            ingesters=1,
            ingester_memory="4Gi",
            distributors=1,
            queriers=1,
            query_frontends=1,
            store_gateways=1,
            rulers=1,
            alertmanagers=1,
        ),
        logs=LogsSize(mode=SINGLE_BINARY, replicas=1, replication_factor=1),
        sized_for=(
            "a trial: about 100,000 active series (15 s scrape, ~7,000 samples/s), 10-20 GB "
            "of logs a day, a few queries a second; no replication, so losing a node "
            "loses up to two hours of unflushed samples"
        ),
    ),
    "production": Size(
        name="production",
        # Three a zone: Mimir's small.yaml requests about 38 CPUs and 97 GiB with the
        # replicas below (caches included), Loki's caches 11 GiB more; 9 nodes of 8 vCPUs
        # and 32 GiB keep them near 60% of the CPUs (devtools/chart_check.py prints the
        # rendered figures).
        node_instance_type="m7i.2xlarge",
        node_count=9,
        nat_per_zone=True,
        metrics=MetricsSize(
            replication_factor=3,
            zone_aware=True,
            ingesters=3,
            ingester_memory="8Gi",
            # small.yaml's counts, but two of each component it runs once, so that one
            # zone's loss leaves one.
            distributors=2,
            queriers=2,
            query_frontends=2,
            store_gateways=3,
            rulers=2,
            # Mimir's Alertmanager keeps each tenant's state on 3 replicas by default.
            alertmanagers=3,
            sizing_file=True,
        ),
        logs=LogsSize(mode="SimpleScalable", replicas=3, replication_factor=3),
        sized_for=(
            "about 1,000,000 active series (Mimir's own small.yaml, whose requests it runs: "
            "~66,000 samples/s, ~5 queries a second) replicated 3 ways over 3 zones, a few "
            "hundred GB of logs a day; any one zone can fail"
        ),
    ),
}


NODE_SHAPES: Final[Mapping[str, tuple[int, int]]] = {
    "m7i.large": (2, 8),
    "m7i.xlarge": (4, 16),
    "m7i.2xlarge": (8, 32),
    "m7i.4xlarge": (16, 64),
}
"""vCPUs and GiB of memory of the presets' node types (EC2's m7i family: 4 GiB a vCPU), for
the chart check's figures of what the charts request of the nodes."""
FIT: Final = 0.75
"""The share of the nodes' CPUs and memory the charts may request: the rest is for the
kubelet's reserve, the add-ons' pods (CoreDNS, the CNI, kube-proxy, the EBS driver), the
gateway, and a node drained in an upgrade."""
