"""Every chart value that switches a feature on or off, read as the backend reads it.

The values functions of `opstrace.charts`, at both presets: what Mimir, Loki, the
load balancer controller, cert-manager and Alloy do with what the program gives them.
`make charts` (devtools/chart_check.py) checks the same in the charts' rendered configuration.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from opstrace import chart_images, chart_values, charts, mimir_sizing
from opstrace.config import sizes
from opstrace.policy import rule_files

SMALL, PRODUCTION = sizes.SIZES["small"], sizes.SIZES["production"]
BUCKET, REGION, ROLE = "acme-metrics-1", "us-east-1", "arn:aws:iam::123456789012:role/r"
ALERTMANAGER = "http://mimir-alertmanager.opstrace-metrics.svc.cluster.local:8080/alertmanager"
NO_POLICY = chart_values.TenantPolicy()
LOKI_POLICY = chart_values.TenantPolicy(alertmanager_url=ALERTMANAGER)


def mimir(
    size: sizes.Size = SMALL,
    retention_days: int = 30,
    policy: chart_values.TenantPolicy = NO_POLICY,
) -> dict[str, Any]:
    return chart_values.mimir_values(size, BUCKET, REGION, ROLE, retention_days, "gp3", policy)


def loki(
    size: sizes.Size = SMALL,
    retention_days: int = 30,
    policy: chart_values.TenantPolicy = LOKI_POLICY,
) -> dict[str, Any]:
    return chart_values.loki_values(size, BUCKET, REGION, ROLE, retention_days, "gp3", policy)


def mimir_config(size: sizes.Size = SMALL) -> dict[str, Any]:
    config: dict[str, Any] = mimir(size)["mimir"]["structuredConfig"]
    return config


# Mimir -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, PRODUCTION], ids=["small", "production"])
def test_mimir_distributors_push_to_the_ingesters_without_kafka(size: sizes.Size) -> None:
    values, config = mimir(size), mimir_config(size)
    assert values["kafka"] == {"enabled": False}
    assert config["ingest_storage"] == {"enabled": False}
    # Off (the chart's 6.x default) every push from a distributor is refused.
    assert config["ingester"]["push_grpc_method_enabled"] is True


def nulls(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return [path] if value is None else []


@pytest.mark.parametrize("size", [SMALL, PRODUCTION], ids=["small", "production"])
def test_no_value_is_null_since_pulumi_drops_nulls_before_helm_sees_them(
    size: sizes.Size,
) -> None:
    every = [
        mimir(size),
        loki(size),
        chart_values.load_balancer_controller_values("c", REGION, "v", ROLE),
        chart_values.cert_manager_values(ROLE),
        chart_values.alloy_values("config", "secret", "/t"),
    ]
    assert [path for values in every for path in nulls(values)] == []


def test_mimir_takes_each_tenant_from_the_scope_header() -> None:
    assert mimir_config()["multitenancy_enabled"] is True


@pytest.mark.parametrize("days", [1, 90, 3650])
def test_mimirs_compactor_deletes_blocks_older_than_the_retention(days: int) -> None:
    limits = mimir(retention_days=days)["mimir"]["structuredConfig"]["limits"]
    assert limits == {"compactor_blocks_retention_period": f"{days}d"}


def test_mimir_keeps_every_store_in_the_bucket_of_its_region() -> None:
    config = mimir_config()
    assert config["common"]["storage"] == {
        "backend": "s3",
        "s3": {"bucket_name": BUCKET, "endpoint": f"s3.{REGION}.amazonaws.com", "region": REGION},
    }
    prefixes = [
        config[store]["storage_prefix"]
        for store in ("blocks_storage", "ruler_storage", "alertmanager_storage")
    ]
    assert prefixes == ["blocks", "ruler", "alertmanager"]


def test_small_mimir_keeps_one_copy_of_each_series_in_one_zone() -> None:
    values, ring = mimir(SMALL), mimir_config(SMALL)["ingester"]["ring"]
    assert ring == {"replication_factor": 1, "zone_awareness_enabled": False}
    assert values["ingester"]["zoneAwareReplication"]["enabled"] is False
    assert values["rollout_operator"] == {"enabled": False}


def test_production_mimir_keeps_three_copies_one_per_zone() -> None:
    values, ring = mimir(PRODUCTION), mimir_config(PRODUCTION)["ingester"]["ring"]
    assert ring == {"replication_factor": 3, "zone_awareness_enabled": True}
    for component in ("ingester", "store_gateway"):
        assert values[component]["zoneAwareReplication"] == {
            "enabled": True,
            "topologyKey": "topology.kubernetes.io/zone",
        }, component
    # The chart's zone-aware StatefulSets are rolled out by its rollout-operator.
    assert values["rollout_operator"] == {"enabled": True}


def test_mimir_runs_no_minio_or_gateway_of_its_own() -> None:
    values = mimir()
    assert values["minio"] == {"enabled": False}
    assert values["gateway"] == {"enabled": False}


@pytest.mark.parametrize(
    ("size", "rulers", "alertmanagers"),
    [(SMALL, 1, 1), (PRODUCTION, 2, 3)],
    ids=["small", "production"],
)
def test_mimir_runs_its_ruler_and_alertmanager(
    size: sizes.Size, rulers: int, alertmanagers: int
) -> None:
    values = mimir(size)
    assert (values["ruler"]["enabled"], values["ruler"]["replicas"]) == (True, rulers)
    assert values["alertmanager"]["enabled"] is True
    assert values["alertmanager"]["replicas"] == alertmanagers
    # One Service (mimir-alertmanager) reaches every replica, as the gateway expects.
    assert values["alertmanager"]["zoneAwareReplication"] == {"enabled": False}


def test_every_tenant_starts_with_opstraces_alertmanager_configuration() -> None:
    fallback = yaml.safe_load(mimir()["alertmanager"]["fallbackConfig"])
    assert fallback == {"route": {"receiver": "blackhole"}, "receivers": [{"name": "blackhole"}]}
    assert mimir()["alertmanager"]["fallbackConfig"] == rule_files.DEFAULT_ALERTMANAGER_CONFIG


def test_mimirs_ruler_and_alertmanager_keep_their_state_in_the_bucket() -> None:
    config = mimir_config()
    assert config["ruler_storage"] == {"storage_prefix": "ruler"}
    assert config["alertmanager_storage"] == {"storage_prefix": "alertmanager"}
    assert config["common"]["storage"]["backend"] == "s3"


def test_the_tenants_overrides_are_mimirs_runtime_configuration() -> None:
    overrides = {"prod": {"max_global_series_per_user": 1000000}}
    values = mimir(policy=chart_values.TenantPolicy(overrides))
    assert values["runtimeConfig"] == {"overrides": overrides}
    assert mimir()["runtimeConfig"] == {"overrides": {}}


@pytest.mark.parametrize("component", ["ingester", "store_gateway", "compactor", "alertmanager"])
def test_mimirs_disks_go_with_their_pods_and_survive_a_scale_down(component: str) -> None:
    volume = mimir()[component]["persistentVolume"]
    assert (volume["enableRetentionPolicy"], volume["whenDeleted"], volume["whenScaled"]) == (
        True,
        "Delete",
        "Retain",
    )
    assert volume["storageClass"] == "gp3"


# Loki --------------------------------------------------------------------------------


def test_loki_takes_each_tenant_from_the_scope_header() -> None:
    assert loki()["loki"]["auth_enabled"] is True


def test_loki_keeps_otlp_attributes_as_structured_metadata() -> None:
    config = loki()["loki"]
    assert config["limits_config"]["allow_structured_metadata"] is True
    assert config["schemaConfig"]["configs"][0]["schema"] == "v13"


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_lokis_compactor_deletes_logs_older_than_the_retention(days: int) -> None:
    config = loki(retention_days=days)["loki"]
    assert config["limits_config"]["retention_period"] == f"{days * 24}h"
    assert config["compactor"] == {"retention_enabled": True, "delete_request_store": "s3"}


def test_loki_keeps_chunks_rules_and_admin_data_in_the_bucket_of_its_region() -> None:
    storage = loki()["loki"]["storage"]
    assert storage == {
        "type": "s3",
        "bucketNames": {"chunks": BUCKET, "ruler": BUCKET, "admin": BUCKET},
        "s3": {"region": REGION},
    }


def test_small_loki_is_one_single_binary_pod_without_replication() -> None:
    values = loki(SMALL)
    # Monolithic: the chart's name for SingleBinary since its 12.0.0 (the same render).
    assert (values["deploymentMode"], values["singleBinary"]["replicas"]) == ("Monolithic", 1)
    assert [values[t]["replicas"] for t in ("write", "read", "backend")] == [0, 0, 0]
    assert values["loki"]["commonConfig"] == {"replication_factor": 1}
    assert (values["chunksCache"], values["resultsCache"]) == ({"enabled": False},) * 2


def test_production_loki_is_simple_scalable_three_by_three_replicated_three_times() -> None:
    values = loki(PRODUCTION)
    assert (values["deploymentMode"], values["singleBinary"]["replicas"]) == ("SimpleScalable", 0)
    assert [values[t]["replicas"] for t in ("write", "read", "backend")] == [3, 3, 3]
    assert values["loki"]["commonConfig"] == {"replication_factor": 3}
    assert (values["chunksCache"], values["resultsCache"]) == ({"enabled": True},) * 2


@pytest.mark.parametrize("target", ["singleBinary", "write", "read", "backend"])
def test_lokis_disks_go_with_their_pods(target: str) -> None:
    assert loki()[target]["persistence"] == {
        "enableStatefulSetAutoDeletePVC": True,
        "whenDeleted": "Delete",
        "storageClass": "gp3",
    }


def test_loki_runs_no_gateway_canary_test_or_minio_of_its_own() -> None:
    values = loki()
    assert [values[k] for k in ("gateway", "lokiCanary", "test", "minio")] == [
        {"enabled": False}
    ] * 4


def test_lokis_ruler_serves_its_api_and_alerts_the_tenants_alertmanager() -> None:
    assert loki()["loki"]["rulerConfig"] == {"enable_api": True, "alertmanager_url": ALERTMANAGER}


def test_the_tenants_overrides_are_lokis_runtime_configuration() -> None:
    overrides = {"prod": {"retention_period": "336h", "ingestion_rate_mb": 8}}
    values = loki(policy=chart_values.TenantPolicy(overrides, ALERTMANAGER))
    assert values["loki"]["runtimeConfig"] == {"overrides": overrides}


def test_an_existing_cluster_gets_its_default_disk_class() -> None:
    values = chart_values.loki_values(SMALL, BUCKET, REGION, ROLE, 30, "", NO_POLICY)
    assert "storageClass" not in values["singleBinary"]["persistence"]
    mimir_values = chart_values.mimir_values(SMALL, BUCKET, REGION, ROLE, 30, "", NO_POLICY)
    for component in ("ingester", "alertmanager"):
        assert "storageClass" not in mimir_values[component]["persistentVolume"]


# The add-ons and the collector --------------------------------------------------------


def test_the_controller_serves_only_load_balancer_services_it_is_asked_to() -> None:
    values = chart_values.load_balancer_controller_values("c", REGION, "vpc-1", ROLE)
    # Its Service webhook would take over every LoadBalancer Service of the cluster.
    assert values["enableServiceMutatorWebhook"] is False
    assert (values["clusterName"], values["region"], values["vpcId"]) == ("c", REGION, "vpc-1")
    assert values["replicaCount"] == 2


def test_cert_manager_installs_its_crds_and_removes_them_with_itself() -> None:
    assert chart_values.cert_manager_values(ROLE)["crds"] == {"enabled": True, "keep": False}


def test_cert_managers_non_root_user_can_read_its_projected_aws_token() -> None:
    assert chart_values.cert_manager_values(ROLE)["securityContext"] == {
        "fsGroup": 1001,
        "runAsNonRoot": True,
    }


def test_alloy_runs_on_every_node_reports_nothing_home_and_installs_no_crds() -> None:
    values = chart_values.alloy_values("config", "secret", "/t")
    assert values["controller"]["type"] == "daemonset"
    assert values["alloy"]["enableReporting"] is False
    assert values["crds"] == {"create": False}
    assert values["alloy"]["mounts"]["extra"] == [
        {"name": "token", "mountPath": "/t", "readOnly": True}
    ]


@pytest.mark.parametrize(
    ("values", "name"),
    [
        (mimir(), charts.MIMIR_SERVICE_ACCOUNT),
        (loki(), charts.LOKI_SERVICE_ACCOUNT),
        (chart_values.cert_manager_values(ROLE), charts.CERT_MANAGER_SERVICE_ACCOUNT),
        (
            chart_values.load_balancer_controller_values("c", REGION, "v", ROLE),
            charts.LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
        ),
    ],
)
def test_each_aws_client_runs_as_a_service_account_annotated_with_its_role(
    values: dict[str, Any], name: str
) -> None:
    assert values["serviceAccount"] == {
        "create": True,
        "name": name,
        "annotations": {"eks.amazonaws.com/role-arn": ROLE},
    }


# Pins --------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", charts.ALL_CHARTS, ids=lambda c: c.name)
def test_each_pin_is_the_version_recorded_at_its_source(chart: charts.Chart) -> None:
    source = chart.source
    assert source.version == chart.version
    # A release tag names the version; eks-charts tags none, so its ref is the commit.
    assert source.ref.endswith(chart.version) or source.ref == source.commit
    assert re.fullmatch(r"[0-9a-f]{40}", source.commit), source.commit
    assert re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", source.date), source.date


# Production sizing: Mimir's own small.yaml ------------------------------------------------


def test_production_mimir_requests_what_small_yaml_asks_for_a_million_series() -> None:
    values = mimir(PRODUCTION)
    for component, keys in mimir_sizing.SMALL_YAML.items():
        if "resources" in keys:
            assert values[component]["resources"] == keys["resources"], component
    assert values["ingester"]["resources"]["requests"] == {"cpu": 3.5, "memory": "8Gi"}
    for cache in ("chunks-cache", "index-cache", "metadata-cache", "results-cache"):
        assert values[cache] == {"enabled": True, "replicas": 3}, cache


def test_production_mimir_survives_a_zone_where_small_yaml_runs_one_of_a_kind() -> None:
    values = mimir(PRODUCTION)
    replicas = {c: values[c]["replicas"] for c in ("querier", "query_frontend", "ruler")}
    assert replicas == {"querier": 2, "query_frontend": 2, "ruler": 2}
    for component in ("ingester", "store_gateway"):
        assert values[component]["zoneAwareReplication"] == {
            "enabled": True,
            "topologyKey": "topology.kubernetes.io/zone",
        }
        # small.yaml's one pod per node stays.
        assert values[component]["affinity"] == mimir_sizing.SMALL_YAML[component]["affinity"]


def test_small_mimir_keeps_the_chart_defaults_and_no_caches() -> None:
    values = mimir(SMALL)
    assert "chunks-cache" not in values
    assert values["ingester"]["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"}}


def test_the_mimir_image_is_pinned_not_left_to_the_chart() -> None:
    (image,) = chart_images.image_values(charts.MIMIR.name, {})[:1]
    assert image == {"image": {"repository": "docker.io/grafana/mimir", "tag": "3.0.1"}}
