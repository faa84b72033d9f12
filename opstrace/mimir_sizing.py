"""Grafana Mimir's own sizing file for about a million series, as the production preset
runs it.

Pure, no Pulumi. `SMALL_YAML` is mimir-distributed 6.0.4's `small.yaml` (Eifoen/mimir,
a fork holding grafana/mimir's history, `operations/helm/charts/mimir-distributed/small.yaml`
@ 8979e969fe918de64d0df7718e19f10f1af90a46; the same file as in 6.0.0), key by key, but
for what the instance does not run: its `gateway` (the instance's gateway is its own),
`minio` (off already) and `admin-cache` (Grafana Enterprise Metrics only). Its header:
"These values are suitable for ingestion of ~1M series and scrape interval of 15s. This
implies ingestion rate of around 66000 samples per second." and "The resource requests
reflect 70% utilization and the limits reflect 100% utilization." It is "not for
high-availability production use": `chart_values.mimir_values` raises to two the
components it runs once (querier, query-frontend, ruler), keeps three Alertmanagers (each
tenant's state is replicated three times), and spreads ingesters and store-gateways over
zones, so that any one zone can fail.
"""

from __future__ import annotations

from typing import Any, Final


def _resources(cpu: Any, memory: str, limit: str) -> dict[str, Any]:
    return {"limits": {"memory": limit}, "requests": {"cpu": cpu, "memory": memory}}


def _one_per_node(component: str) -> dict[str, Any]:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [
                            {
                                "key": "app.kubernetes.io/component",
                                "operator": "In",
                                "values": [component],
                            }
                        ]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


SMALL_YAML: Final[dict[str, Any]] = {
    "alertmanager": {
        "persistentVolume": {"enabled": True},
        "replicas": 2,
        "resources": _resources(1, "1Gi", "1.4Gi"),
        "statefulSet": {"enabled": True},
    },
    "compactor": {
        "persistentVolume": {"size": "20Gi"},
        "resources": _resources(1, "1.5Gi", "2.1Gi"),
    },
    "distributor": {"replicas": 2, "resources": _resources(2, "4Gi", "5.7Gi")},
    "ingester": {
        "persistentVolume": {"size": "50Gi"},
        "replicas": 3,
        "resources": _resources(3.5, "8Gi", "12Gi"),
        "topologySpreadConstraints": {},
        "affinity": _one_per_node("ingester"),
        "zoneAwareReplication": {"topologyKey": "kubernetes.io/hostname"},
    },
    "chunks-cache": {"enabled": True, "replicas": 3},
    "index-cache": {"enabled": True, "replicas": 3},
    "metadata-cache": {"enabled": True, "replicas": 3},
    "results-cache": {"enabled": True, "replicas": 3},
    "overrides_exporter": {"replicas": 1, "resources": _resources("100m", "128Mi", "128Mi")},
    "querier": {"replicas": 1, "resources": _resources(2, "4Gi", "5.6Gi")},
    "query_frontend": {"replicas": 1, "resources": _resources(2, "2Gi", "2.8Gi")},
    "ruler": {"replicas": 1, "resources": _resources(1, "2Gi", "2.8Gi")},
    "store_gateway": {
        "persistentVolume": {"size": "10Gi"},
        "replicas": 3,
        "resources": _resources(1, "1.5Gi", "2.1Gi"),
        "topologySpreadConstraints": {},
        "affinity": _one_per_node("store-gateway"),
        "zoneAwareReplication": {"topologyKey": "kubernetes.io/hostname"},
    },
}
"""small.yaml's values for the components the instance runs (its caches take the chart's
default memory: chunks 8192 MB, index 2048 MB, metadata and results 512 MB each)."""
