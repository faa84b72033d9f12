"""The chart check's wiring rules (devtools/chart_wiring.py) on small hand-made renders.

`make charts` runs them on the real charts; here each rule is shown to pass what it
should and to name what it catches.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools import chart_wiring as wiring

ROLE = "arn:aws:iam::123456789012:role/acme-metrics-access"
ANNOTATION = "eks.amazonaws.com/role-arn"


def service(name: str, port: int, target: int | str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": port, "targetPort": target}]},
    }


def workload(
    kind: str, name: str, labels: dict[str, str], ports: list[dict[str, Any]], account: str = ""
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "ports": ports}]}
    if account:
        spec["serviceAccountName"] = account
    return {
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": spec}},
    }


DISTRIBUTOR = workload(
    "Deployment",
    "mimir-distributor",
    {"app": "distributor"},
    [{"name": "http", "containerPort": 8080}],
)
UPSTREAM = wiring.Upstream("cortex_push", "mimir-distributor", "opstrace-metrics", 8080)


# The gateway's upstreams ------------------------------------------------------------


def test_the_gateways_upstreams_are_read_from_its_server_lines() -> None:
    config = """
backend cortex_push
    server cortex_push mimir-distributor.opstrace-metrics.svc.cluster.local:8080 resolvers x
backend loki_push
    server loki_push loki.opstrace-logs.svc.cluster.local:3100 check
backend external
    server external cortex.example.org:443 ssl
"""
    assert wiring.gateway_upstreams(config) == [
        UPSTREAM,
        wiring.Upstream("loki_push", "loki", "opstrace-logs", 3100),
    ]


def test_a_service_that_selects_a_workload_serving_its_target_port_passes() -> None:
    objects = [service("mimir-distributor", 8080, "http", {"app": "distributor"}), DISTRIBUTOR]
    assert wiring.service_problems(objects, UPSTREAM, "opstrace-metrics") == []


def test_a_missing_service_is_named() -> None:
    assert wiring.service_problems([DISTRIBUTOR], UPSTREAM, "opstrace-metrics") == [
        "cortex_push: Service opstrace-metrics/mimir-distributor is not in the render"
    ]


def test_a_service_in_another_namespace_is_not_the_upstream() -> None:
    objects = [service("mimir-distributor", 8080, 8080, {"app": "distributor"}), DISTRIBUTOR]
    assert wiring.service_problems(objects, UPSTREAM, "opstrace-logs") == [
        "cortex_push: Service opstrace-metrics/mimir-distributor is not in the render"
    ]


def test_a_service_without_the_port_is_named_with_its_ports() -> None:
    objects = [service("mimir-distributor", 80, 8080, {"app": "distributor"}), DISTRIBUTOR]
    assert wiring.service_problems(objects, UPSTREAM, "opstrace-metrics") == [
        "cortex_push: Service opstrace-metrics/mimir-distributor has no port 8080 (it has [80])"
    ]


def test_a_service_selecting_no_workload_has_no_endpoints() -> None:
    objects = [service("mimir-distributor", 8080, 8080, {"app": "ingester"}), DISTRIBUTOR]
    assert wiring.service_problems(objects, UPSTREAM, "opstrace-metrics") == [
        "cortex_push: Service opstrace-metrics/mimir-distributor selects no rendered workload "
        "(selector {'app': 'ingester'})"
    ]


def test_a_target_port_no_container_declares_is_named() -> None:
    objects = [service("mimir-distributor", 8080, "grpc", {"app": "distributor"}), DISTRIBUTOR]
    assert wiring.service_problems(objects, UPSTREAM, "opstrace-metrics") == [
        "cortex_push: Service opstrace-metrics/mimir-distributor targets port 'grpc', which "
        "none of ['Deployment/mimir-distributor'] declares"
    ]


# IRSA --------------------------------------------------------------------------------


def account(annotations: dict[str, str]) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "metadata": {"name": "mimir", "annotations": annotations}}


INGESTER = workload("StatefulSet", "mimir-ingester", {"app": "ingester"}, [], account="mimir")
TRUST = {ROLE: "system:serviceaccount:opstrace-metrics:mimir"}


def irsa(objects: list[dict[str, Any]], trust: dict[str, str] = TRUST) -> list[str]:
    return wiring.service_account_problems(
        objects, "mimir", "opstrace-metrics", ROLE, trust, ANNOTATION
    )


def test_an_annotated_service_account_its_role_trusts_and_a_workload_uses_passes() -> None:
    assert irsa([account({ANNOTATION: ROLE}), INGESTER]) == []


def test_a_service_account_without_the_role_annotation_gets_no_aws_credentials() -> None:
    assert irsa([account({}), INGESTER]) == [
        f"ServiceAccount opstrace-metrics/mimir: {ANNOTATION} is None, not the role {ROLE!r}",
        "ServiceAccount opstrace-metrics/mimir: its role trusts None, not "
        "'system:serviceaccount:opstrace-metrics:mimir'",
    ]


def test_a_role_that_trusts_another_service_account_is_refused_by_sts() -> None:
    other = {ROLE: "system:serviceaccount:opstrace-metrics:mimir-ingester"}
    assert irsa([account({ANNOTATION: ROLE}), INGESTER], other) == [
        "ServiceAccount opstrace-metrics/mimir: its role trusts "
        "'system:serviceaccount:opstrace-metrics:mimir-ingester', not "
        "'system:serviceaccount:opstrace-metrics:mimir'"
    ]


def test_a_service_account_no_workload_runs_as_is_named() -> None:
    unused = workload("StatefulSet", "mimir-ingester", {}, [], account="default")
    assert irsa([account({ANNOTATION: ROLE}), unused]) == [
        "ServiceAccount opstrace-metrics/mimir: no rendered workload runs as it"
    ]


def test_the_trust_subject_is_the_one_sub_condition_of_an_irsa_trust_policy() -> None:
    statement = {
        "Condition": {"StringEquals": {"x:sub": "system:serviceaccount:a:b", "x:aud": "sts"}}
    }
    assert wiring.trust_subject({"Statement": [statement]}) == "system:serviceaccount:a:b"
    assert wiring.trust_subject({"Statement": [{"Principal": {"Service": "eks"}}]}) is None


# The backends' configuration -------------------------------------------------------------


def config_map(key: str, text: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {key: text}}


MIMIR_YAML = """
multitenancy_enabled: true
ingest_storage: {enabled: false}
ingester: {push_grpc_method_enabled: true, ring: {replication_factor: 3}}
common:
  storage:
    backend: s3
    s3: {bucket_name: b, region: us-east-1, endpoint: s3.us-east-1.amazonaws.com}
limits: {compactor_blocks_retention_period: 90d}
ruler_storage: {storage_prefix: ruler}
alertmanager_storage: {storage_prefix: alertmanager}
alertmanager: {fallback_config_file: /configs/alertmanager_fallback_config.yaml}
runtime_config: {file: /var/mimir/runtime.yaml}
"""


def mimir(text: str = MIMIR_YAML) -> list[str]:
    config = wiring.config_document([config_map("mimir.yaml", text)], "mimir.yaml")
    return wiring.mimir_problems(config, "b", "us-east-1", "90d", 3)


def test_a_multi_tenant_classic_mimir_on_the_bucket_passes() -> None:
    assert mimir() == []


def test_ingesters_that_refuse_pushes_are_caught() -> None:
    assert mimir(
        MIMIR_YAML.replace("push_grpc_method_enabled: true", "push_grpc_method_enabled: false")
    ) == [
        "mimir: ingester.push_grpc_method_enabled (ingesters accept distributors' pushes) is "
        "False, expected True"
    ]


def test_mimir_writing_through_kafka_is_caught() -> None:
    assert mimir(MIMIR_YAML.replace("{enabled: false}", "{enabled: true}")) == [
        "mimir: ingest_storage.enabled (writes through Kafka) is True, expected False"
    ]


def test_mimir_defaults_count_as_mimir_reads_them() -> None:
    # Mimir's own defaults: multi-tenant, gRPC push on, no ingest storage.
    defaults = (
        MIMIR_YAML.replace("multitenancy_enabled: true", "")
        .replace("ingest_storage: {enabled: false}", "")
        .replace("push_grpc_method_enabled: true, ", "")
    )
    assert mimir(defaults) == []


def test_single_tenant_mimir_another_bucket_and_region_are_each_named() -> None:
    text = MIMIR_YAML.replace("multitenancy_enabled: true", "multitenancy_enabled: false")
    text = text.replace("bucket_name: b", "bucket_name: other").replace(
        "region: us-east-1", "region: eu-west-1"
    )
    assert mimir(text) == [
        "mimir: multitenancy_enabled (tenants from X-Scope-OrgID) is False, expected True",
        "mimir: common.storage.s3.bucket_name is 'other', expected 'b'",
        "mimir: common.storage.s3.region is 'eu-west-1', expected 'us-east-1'",
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("ruler_storage: {storage_prefix: ruler}", ""),
            "mimir: ruler_storage.storage_prefix (rule groups in the bucket) is None, "
            "expected 'ruler'",
        ),
        (
            ("{storage_prefix: alertmanager}", "{storage_prefix: ruler}"),
            "mimir: alertmanager_storage.storage_prefix (Alertmanager state in the bucket) "
            "is 'ruler', expected 'alertmanager'",
        ),
        (
            ("fallback_config_file: /configs/alertmanager_fallback_config.yaml", "data_dir: /d"),
            "mimir: alertmanager.fallback_config_file set (every tenant's default "
            "configuration) is False, expected True",
        ),
        (
            ("runtime_config: {file: /var/mimir/runtime.yaml}", ""),
            "mimir: runtime_config.file set (tenants' limits reloaded without a restart) is "
            "False, expected True",
        ),
    ],
    ids=["no_ruler_prefix", "alertmanager_state_elsewhere", "no_fallback", "no_runtime_config"],
)
def test_mimirs_ruler_alertmanager_and_runtime_configuration_are_checked(
    change: tuple[str, str], problem: str
) -> None:
    assert mimir(MIMIR_YAML.replace(*change)) == [problem]


def test_a_render_without_the_mimir_config_is_named() -> None:
    assert wiring.mimir_problems(None, "b", "r", "1d", 1) == [
        "mimir: no ConfigMap with mimir.yaml in the render"
    ]


LOKI_YAML = """
auth_enabled: true
common: {replication_factor: 1, storage: {s3: {bucketnames: b, region: us-east-1}}}
limits_config: {retention_period: 720h}
compactor: {retention_enabled: true, delete_request_store: s3}
ruler:
  storage: {type: s3, s3: {bucketnames: b, region: us-east-1}}
  enable_api: true
  alertmanager_url: http://am.opstrace-metrics.svc.cluster.local:8080/alertmanager
runtime_config: {file: /etc/loki/runtime-config/runtime-config.yaml}
"""
ALERTMANAGER = "http://am.opstrace-metrics.svc.cluster.local:8080/alertmanager"


def loki(text: str = LOKI_YAML) -> list[str]:
    config = wiring.config_document([config_map("config.yaml", text)], "config.yaml")
    return wiring.loki_problems(config, "b", "us-east-1", "720h", 1, ALERTMANAGER)


def test_a_multi_tenant_loki_deleting_old_logs_from_its_bucket_passes() -> None:
    assert loki() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("auth_enabled: true", "auth_enabled: false"),
            "loki: auth_enabled (tenants from X-Scope-OrgID) is False, expected True",
        ),
        (
            ("retention_enabled: true", "retention_enabled: false"),
            "loki: compactor.retention_enabled (the compactor deletes old data) is False, "
            "expected True",
        ),
        (
            ("retention_period: 720h", "retention_period: 0s"),
            "loki: limits_config.retention_period is '0s', expected '720h'",
        ),
        (
            (
                "{bucketnames: b, region: us-east-1}}}\nlimits",
                "{bucketnames: c, region: us-east-1}}}\nlimits",
            ),
            "loki: common.storage.s3.bucketnames is 'c', expected 'b'",
        ),
        (
            ("enable_api: true", "enable_api: false"),
            "loki: ruler.enable_api (the tenants' rules API) is False, expected True",
        ),
        (
            ("  alertmanager_url: http://am", "  alertmanager_url: http://other"),
            "loki: ruler.alertmanager_url is "
            "'http://other.opstrace-metrics.svc.cluster.local:8080/alertmanager', "
            f"expected {ALERTMANAGER!r}",
        ),
        (
            ("runtime_config: {file: /etc/loki/runtime-config/runtime-config.yaml}", ""),
            "loki: runtime_config.file set (tenants' limits reloaded without a restart) is "
            "False, expected True",
        ),
    ],
)
def test_each_loki_setting_that_changes_what_loki_does_is_caught(
    change: tuple[str, str], problem: str
) -> None:
    assert loki(LOKI_YAML.replace(*change)) == [problem]


# A tenant policy change -------------------------------------------------------------

RUNTIME = {
    "kind": "ConfigMap",
    "metadata": {"name": "mimir-runtime"},
    "data": {"runtime.yaml": "overrides: {}\n"},
}
MAIN = config_map("mimir.yaml", MIMIR_YAML)
INGESTERS = workload("StatefulSet", "mimir-ingester", {"app": "ingester"}, [])


def changed(obj: dict[str, Any], key: str, text: str) -> dict[str, Any]:
    return {**obj, "data": {key: text}}


def restarts(after: list[dict[str, Any]]) -> list[str]:
    return wiring.restart_problems("mimir", [RUNTIME, MAIN, INGESTERS], after, "m", "mimir.yaml")


def test_a_policy_change_of_the_runtime_configuration_alone_restarts_nothing() -> None:
    runtime = changed(RUNTIME, "runtime.yaml", "overrides: {prod: {ingestion_rate: 1}}\n")
    assert restarts([runtime, MAIN, INGESTERS]) == []


def test_a_policy_change_of_the_main_configuration_restarts_its_pods() -> None:
    main = changed(MAIN, "mimir.yaml", MIMIR_YAML + "extra: 1\n")
    assert restarts([RUNTIME, main, INGESTERS]) == [
        "mimir: a tenant policy change changes ConfigMap/c, not only the runtime "
        "configuration (its pods restart)"
    ]


def test_a_policy_change_of_a_pod_template_restarts_its_pods() -> None:
    ingester = workload("StatefulSet", "mimir-ingester", {"app": "ingester", "rev": "2"}, [])
    assert restarts([RUNTIME, MAIN, ingester]) == [
        "mimir: a tenant policy change changes StatefulSet/mimir-ingester, not only the "
        "runtime configuration (its pods restart)"
    ]


def test_an_object_a_policy_change_adds_or_removes_is_named() -> None:
    extra = workload("Deployment", "mimir-extra", {}, [])
    assert restarts([RUNTIME, MAIN, extra]) == [
        "mimir: a tenant policy change: Deployment/mimir-extra appears",
        "mimir: a tenant policy change: StatefulSet/mimir-ingester goes",
    ]


# The collector and the controller ------------------------------------------------------

URLS = (
    "https://cortex.system.acme.example.org/api/v1/push",
    "https://loki.system.acme.example.org/loki/api/v1/push",
)
TOKEN = "/var/run/secrets/opstrace/token"


def collector(config: str, mount: dict[str, Any]) -> list[dict[str, Any]]:
    daemon = workload("DaemonSet", "alloy", {}, [])
    spec = daemon["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "token", "secret": {"secretName": "opstrace-system-token"}}]
    spec["containers"][0]["volumeMounts"] = [mount]
    return [config_map("config.alloy", config), daemon]


GOOD_CONFIG = "".join(f'url = "{url}"\nbearer_token_file = "{TOKEN}"\n' for url in URLS)
READ_ONLY = {"name": "token", "mountPath": "/var/run/secrets/opstrace", "readOnly": True}


def alloy(objects: list[dict[str, Any]]) -> list[str]:
    return wiring.collector_problems(
        objects, URLS, TOKEN, "opstrace-system-token", "/var/run/secrets/opstrace"
    )


def test_a_collector_sending_to_both_endpoints_with_the_mounted_token_passes() -> None:
    assert alloy(collector(GOOD_CONFIG, READ_ONLY)) == []


def test_a_collector_missing_an_endpoint_or_its_token_is_named() -> None:
    config = f'url = "{URLS[0]}"\nbearer_token_file = "{TOKEN}"\n'
    assert alloy(collector(config, READ_ONLY)) == [
        f"alloy: config does not send to {URLS[1]}",
        f"alloy: not every endpoint reads its token from {TOKEN}",
    ]


def test_a_token_mounted_elsewhere_or_writable_is_named() -> None:
    for mount in ({**READ_ONLY, "mountPath": "/token"}, {**READ_ONLY, "readOnly": False}):
        assert alloy(collector(GOOD_CONFIG, mount)) == [
            "alloy: Secret opstrace-system-token is not mounted read-only at "
            "/var/run/secrets/opstrace"
        ]


def test_a_controller_started_without_its_cluster_is_named() -> None:
    controller = workload("Deployment", "lbc", {}, [])
    controller["spec"]["template"]["spec"]["containers"][0]["args"] = ["--aws-region=us-east-1"]
    assert wiring.container_args_problems(
        [controller], "Deployment", "lbc", ["--cluster-name=acme", "--aws-region=us-east-1"]
    ) == ["Deployment lbc is not started with --cluster-name=acme"]


# What the pods ask of the nodes ----------------------------------------------------------


def requesting(kind: str, requests: dict[str, str], replicas: int = 1, init: Any = None) -> Any:
    pod: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": requests}}]}
    if init is not None:
        pod["initContainers"] = [{"name": "i", "resources": {"requests": init}}]
    return {"kind": kind, "spec": {"replicas": replicas, "template": {"spec": pod}}}


def test_requests_count_every_replica_and_a_daemonset_on_every_node() -> None:
    objects = [
        requesting("StatefulSet", {"cpu": "3.5", "memory": "8Gi"}, replicas=3),
        requesting("Deployment", {"cpu": "100m", "memory": "512Mi"}, replicas=2),
        requesting("DaemonSet", {"cpu": "50m", "memory": "64Mi"}),
        {"kind": "Service", "spec": {}},
    ]
    total = wiring.requested(objects, nodes=9)
    assert round(total.cpu, 3) == round(3 * 3.5 + 2 * 0.1 + 9 * 0.05, 3)
    assert total.memory == 3 * 8 * 2**30 + 2 * 512 * 2**20 + 9 * 64 * 2**20


def test_a_larger_init_container_sets_what_its_pod_requests() -> None:
    objects = [requesting("Deployment", {"cpu": "1"}, init={"cpu": "2", "memory": "1Gi"})]
    assert wiring.requested(objects, nodes=1) == wiring.Requests(2.0, float(2**30))
