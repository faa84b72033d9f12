"""The Helm charts the instance installs: exact versions, namespaces, and their values.

Pure, no Pulumi: each `*_values` function builds the values of one chart from plain
settings, so tests check exactly what the release will be given. Versions are exact
(never ranges), and each is a release seen in the chart's own sources: `Source` says
where (repository, tag or commit, date), and a test holds every pin to its source.
`make charts` (tools/charts.py) pulls each pinned chart and renders it with these values.
Bump a version here, in one place, after reading the chart's upgrade notes, and record
where you read it.

Grafana Mimir is the metrics backend: maintained by Grafana with Cortex's APIs
(`/api/v1/push`, the Prometheus query API under `/prometheus/api/v1`), tenants from
`X-Scope-OrgID`, and a chart that ships capacity-planned sizes. Cortex's chart depends
on third-party memcached images, and its project is smaller. Mimir runs in its classic
architecture (distributors push to ingesters over gRPC, no Kafka; see `mimir_values`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.rules import gateway_config
from components.rules.platform import Size

Values = dict[str, Any]
ValuesBuilder = Callable[[Size, str, str, str, int, str], Values]
"""(size, bucket, region, role ARN, retention days, storage class) -> a backend's values."""


@dataclass(frozen=True)
class Source:
    """Where a pinned chart version was seen in the chart's own sources."""

    repository: str
    """The GitHub repository (owner/name) holding the chart's source or release."""
    ref: str
    """The release tag, or the commit where the chart's version was bumped."""
    commit: str
    date: str
    """The commit's date (UTC day)."""
    chart_file: str
    """The chart's `Chart.yaml` (or release index) in that repository."""
    version: str
    """The version written there (the release tool's, for cert-manager: its tag)."""


@dataclass(frozen=True)
class Chart:
    """A pinned chart and where its release lives."""

    name: str
    version: str
    repository: str
    namespace: str
    release: str
    source: Source


GRAFANA_CHARTS: Final = "https://grafana.github.io/helm-charts"
MIMIR: Final = Chart(
    "mimir-distributed",
    "6.2.0",
    GRAFANA_CHARTS,
    "opstrace-metrics",
    "mimir",
    # Released from grafana/mimir's operations/helm/charts/mimir-distributed (appVersion
    # 3.2.0) into the Grafana repository: its release tag there, and its entry (created
    # 2026-08-20) in the repository's index.yaml on gh-pages at 970fce783fe0.
    Source(
        "grafana/helm-charts",
        "mimir-distributed-6.2.0",
        "657512bfa4b278832766f91e69807e6ef99cfe33",
        "2026-08-19",
        "index.yaml: entries.mimir-distributed",
        "6.2.0",
    ),
)
LOKI: Final = Chart(
    # The open-source chart moved to the community repository in 2026-03.
    "loki",
    "17.1.7",
    "https://grafana-community.github.io/helm-charts",
    "opstrace-logs",
    "loki",
    Source(
        "grafana-community/helm-charts",
        "loki-17.1.7",
        "abd906bdd2022dabecd868dce3b5205a5a19263e",
        "2026-06-05",
        "charts/loki/Chart.yaml",
        "17.1.7",
    ),
)
ALLOY: Final = Chart(
    "alloy",
    "1.11.1",
    GRAFANA_CHARTS,
    "opstrace-telemetry",
    "alloy",
    # 1.12.0 was bumped and reverted: 1.11.1 is the newest release.
    Source(
        "grafana/alloy",
        "helm-chart/1.11.1",
        "233907cff225ce253f812bdfc14138dac1fa0cd2",
        "2026-08-06",
        "operations/helm/charts/alloy/Chart.yaml",
        "1.11.1",
    ),
)
LOAD_BALANCER_CONTROLLER: Final = Chart(
    "aws-load-balancer-controller",
    "3.5.0",
    "https://aws.github.io/eks-charts",
    "kube-system",
    "aws-load-balancer-controller",
    # eks-charts tags no chart releases: the commit that bumped the chart to 3.5.0.
    Source(
        "aws/eks-charts",
        "5239609242f3430be50fb0b714a24d3ef2b47983",
        "5239609242f3430be50fb0b714a24d3ef2b47983",
        "2026-08-03",
        "stable/aws-load-balancer-controller/Chart.yaml",
        "3.5.0",
    ),
)
LOAD_BALANCER_CONTROLLER_VERSION: Final = "v3.5.0"
"""The controller the chart runs (its appVersion): the release whose IAM policy we follow."""
CERT_MANAGER: Final = Chart(
    "cert-manager",
    "v1.21.1",
    "https://charts.jetstack.io",
    "cert-manager",
    "cert-manager",
    # Chart.yaml says v0.0.0 in the source: the release tool sets the tag's version.
    Source(
        "cert-manager/cert-manager",
        "v1.21.1",
        "24e33194fb39488eff2bbf10c6dc640f407cad44",
        "2026-07-29",
        "deploy/charts/cert-manager/Chart.yaml",
        "v1.21.1",
    ),
)
ALL_CHARTS: Final = (MIMIR, LOKI, ALLOY, LOAD_BALANCER_CONTROLLER, CERT_MANAGER)

IRSA_ANNOTATION: Final = "eks.amazonaws.com/role-arn"
MIMIR_SERVICE_ACCOUNT: Final = "mimir"
LOKI_SERVICE_ACCOUNT: Final = "loki"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT: Final = "aws-load-balancer-controller"
CERT_MANAGER_SERVICE_ACCOUNT: Final = "cert-manager"
STORAGE_CLASS: Final = "gp3"
"""The encrypted gp3 class the program makes default in eks mode."""

MIMIR_HTTP_PORT: Final = 8080
LOKI_HTTP_PORT: Final = 3100
MIMIR_QUERY_PREFIX: Final = "/prometheus"
"""Where Mimir serves the Prometheus query API; push stays at `/api/v1/push`."""


@dataclass(frozen=True)
class Upstreams:
    """Where the gateway sends each kind of request (`http://host:port`)."""

    cortex_push: str
    cortex_query: str
    loki_push: str
    loki_query: str
    metrics_query_prefix: str
    """The path prefix of the metrics backend's query API ("" for Cortex's layout)."""

    def gateway_settings(
        self, instance: str, domain: str, tenants: Sequence[str]
    ) -> gateway_config.GatewaySettings:
        """The settings the gateway pods render their files from (listeners: the pod's)."""
        return gateway_config.GatewaySettings(
            instance=instance,
            domain=domain,
            tenants=tuple(tenants),
            cortex_push_url=self.cortex_push,
            cortex_query_url=self.cortex_query,
            loki_push_url=self.loki_push,
            loki_query_url=self.loki_query,
            metrics_query_prefix=self.metrics_query_prefix,
        )


def upstreams(size: Size, cortex_url: str = "", loki_url: str = "") -> Upstreams:
    """The in-cluster services of the instance's own backends, or the external ones."""

    def service(chart: Chart, component: str, port: int) -> str:
        host = f"{chart.release}{component}.{chart.namespace}.svc.cluster.local"
        return f"http://{host}:{port}"

    single = size.logs.mode == "SingleBinary"
    return Upstreams(
        cortex_push=cortex_url or service(MIMIR, "-distributor", MIMIR_HTTP_PORT),
        cortex_query=cortex_url or service(MIMIR, "-query-frontend", MIMIR_HTTP_PORT),
        loki_push=loki_url or service(LOKI, "" if single else "-write", LOKI_HTTP_PORT),
        loki_query=loki_url or service(LOKI, "" if single else "-read", LOKI_HTTP_PORT),
        metrics_query_prefix="" if cortex_url else MIMIR_QUERY_PREFIX,
    )


def _service_account(name: str, role_arn: str) -> Values:
    return {"create": True, "name": name, "annotations": {IRSA_ANNOTATION: role_arn}}


CLASSIC_ARCHITECTURE: Final[Values] = {
    # The chart's Kafka StatefulSet: not installed.
    "kafka": {"enabled": False},
    # mimir.structuredConfig: distributors write to the ingesters, not to Kafka.
    "ingest_storage": {"enabled": False},
    # The chart turns the ingesters' gRPC Push method off (they read from Kafka); the
    # classic file removes that setting, which leaves Mimir's default, on. Set on here
    # explicitly: with it off every remote_write fails while every pod is healthy.
    "ingester": {"push_grpc_method_enabled": True},
}
"""mimir-distributed 6.x's `classic-architecture.yaml`, key by key. `kafka` is a chart
value; the rest go under `mimir.structuredConfig`.

The file also sets four keys to null, which makes Helm drop the chart's own setting:
`ingest_storage.kafka.address`, `.topic` and `.auto_create_topic_default_partitions`
(the Kafka client, which Mimir does not use while `ingest_storage.enabled` is false) and
`distributor.remote_timeout` (the chart lengthens the distributors' wait for a write).
They are not passed: Pulumi drops null values from a release's values before Helm sees
them (a test keeps every value non-null), so the chart's Kafka client settings stay in
the rendered configuration, unused, and the distributors keep the chart's timeout."""


def mimir_values(
    size: Size, bucket: str, region: str, role_arn: str, retention_days: int, storage_class: str
) -> Values:
    """Mimir on one S3 bucket (a prefix per store), multi-tenant, no gateway, in the
    classic architecture.

    mimir-distributed 6.x defaults to ingest storage: distributors write to Kafka,
    ingesters read from it, and the chart's config turns the ingesters' gRPC push method
    off. The keys of the chart's own `classic-architecture.yaml` are set here (see
    `CLASSIC_ARCHITECTURE`), so that distributors push straight to the ingesters."""
    metrics = size.metrics
    classic = copy.deepcopy(CLASSIC_ARCHITECTURE)
    zones = {
        "enabled": metrics.zone_aware,
        "topologyKey": "topology.kubernetes.io/zone",
    }
    # Disks go with the pods when the chart is uninstalled (the data is in S3; a disk
    # left behind after `destroy` would be billed forever).
    persistent: Values = {
        "enableRetentionPolicy": True,
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    if storage_class:
        persistent["storageClass"] = storage_class
    return {
        "minio": {"enabled": False},
        "kafka": classic["kafka"],
        "rollout_operator": {"enabled": metrics.zone_aware},
        "alertmanager": {"enabled": False},
        "ruler": {"enabled": False},
        "gateway": {"enabledNonEnterprise": False},
        "serviceAccount": _service_account(MIMIR_SERVICE_ACCOUNT, role_arn),
        "mimir": {
            "structuredConfig": {
                "multitenancy_enabled": True,
                "ingest_storage": classic["ingest_storage"],
                "common": {
                    "storage": {
                        "backend": "s3",
                        "s3": {
                            "bucket_name": bucket,
                            "endpoint": f"s3.{region}.amazonaws.com",
                            "region": region,
                        },
                    }
                },
                "blocks_storage": {"storage_prefix": "blocks"},
                "ruler_storage": {"storage_prefix": "ruler"},
                "alertmanager_storage": {"storage_prefix": "alertmanager"},
                "limits": {"compactor_blocks_retention_period": f"{retention_days}d"},
                "ingester": {
                    **classic["ingester"],
                    "ring": {
                        "replication_factor": metrics.replication_factor,
                        "zone_awareness_enabled": metrics.zone_aware,
                    },
                },
            }
        },
        "ingester": {
            "replicas": metrics.ingesters,
            "zoneAwareReplication": zones,
            "resources": {"requests": {"cpu": "1", "memory": metrics.ingester_memory}},
            "persistentVolume": {"size": "50Gi", **persistent},
        },
        "distributor": {"replicas": metrics.distributors},
        "querier": {"replicas": metrics.queriers},
        "query_frontend": {"replicas": metrics.query_frontends},
        "store_gateway": {
            "replicas": metrics.store_gateways,
            "zoneAwareReplication": zones,
            "persistentVolume": {"size": "20Gi", **persistent},
        },
        "compactor": {"replicas": 1, "persistentVolume": {"size": "20Gi", **persistent}},
    }


def loki_values(
    size: Size, bucket: str, region: str, role_arn: str, retention_days: int, storage_class: str
) -> Values:
    """Loki on one S3 bucket, multi-tenant (`auth_enabled`), no gateway, canary or tests."""
    logs = size.logs
    single = logs.mode == "SingleBinary"
    # Disks go with the pods when the chart is uninstalled (the data is in S3).
    volume: Values = {"enableStatefulSetAutoDeletePVC": True, "whenDeleted": "Delete"}
    if storage_class:
        volume["storageClass"] = storage_class
    persistence = {"persistence": volume}
    targets = {
        name: {"replicas": 0 if single else logs.replicas, **persistence}
        for name in ("write", "read", "backend")
    }
    return {
        "deploymentMode": logs.mode,
        "loki": {
            "auth_enabled": True,
            "commonConfig": {"replication_factor": logs.replication_factor},
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2026-01-01",
                        "store": "tsdb",
                        "object_store": "s3",
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": bucket, "ruler": bucket, "admin": bucket},
                "s3": {"region": region},
            },
            "limits_config": {"retention_period": f"{retention_days * 24}h"},
            "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
        },
        "serviceAccount": _service_account(LOKI_SERVICE_ACCOUNT, role_arn),
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "minio": {"enabled": False},
        "chunksCache": {"enabled": not single},
        "resultsCache": {"enabled": not single},
        "singleBinary": {"replicas": logs.replicas if single else 0, **persistence},
        **targets,
    }


def load_balancer_controller_values(
    cluster_name: str, region: str, vpc_id: str, role_arn: str
) -> Values:
    """The controller, for Services only: it does not take over other LoadBalancers."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "enableServiceMutatorWebhook": False,
        "serviceAccount": _service_account(LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT, role_arn),
    }


def cert_manager_values(role_arn: str) -> Values:
    """cert-manager with its CRDs, allowed to answer DNS-01 in Route53 through IRSA."""
    return {
        "crds": {"enabled": True, "keep": False},
        "serviceAccount": _service_account(CERT_MANAGER_SERVICE_ACCOUNT, role_arn),
        # The projected IRSA token must be readable by cert-manager's non-root user.
        "securityContext": {"fsGroup": 1001, "runAsNonRoot": True},
    }


def alloy_values(config: str, token_secret: str, token_dir: str) -> Values:
    """Alloy on every node with `config` (see `telemetry`), the token mounted read-only."""
    return {
        "controller": {
            "type": "daemonset",
            "volumes": {"extra": [{"name": "token", "secret": {"secretName": token_secret}}]},
        },
        "alloy": {
            "configMap": {"create": True, "content": config},
            "mounts": {"extra": [{"name": "token", "mountPath": token_dir, "readOnly": True}]},
            "enableReporting": False,
        },
        "crds": {"create": False},
    }
