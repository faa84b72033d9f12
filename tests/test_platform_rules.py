"""The platform's pure rules: address plan, IAM documents, charts, certificates, presets."""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from opstrace import alloy_config, certificates, charts, keys, names
from opstrace.aws import iam, subnets
from opstrace.aws.eks_kubeconfig import eks_kubeconfig
from opstrace.config import platform, sizes
from opstrace.gateway import manifests as gateway_manifests
from opstrace.gateway import upstreams as gateway_upstreams

# Address plan ------------------------------------------------------------------------


@pytest.mark.parametrize("cidr", ["10.40.0.0/16", "172.20.0.0/18", "192.168.16.0/20"])
@pytest.mark.parametrize("zones", [1, 2, 3])
def test_subnets_lie_in_the_vpc_and_never_overlap(cidr: str, zones: int) -> None:
    plan = subnets.subnet_plan(cidr, zones)
    blocks = [ipaddress.IPv4Network(b) for p in plan for b in (p.private, p.public)]
    vpc = ipaddress.IPv4Network(cidr)
    assert len(plan) == zones
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not [(a, b) for a, b in itertools.combinations(blocks, 2) if a.overlaps(b)]


def test_private_subnets_get_a_quarter_of_the_vpc_each() -> None:
    plan = subnets.subnet_plan("10.40.0.0/16", 3)
    assert [p.private for p in plan] == ["10.40.0.0/18", "10.40.64.0/18", "10.40.128.0/18"]
    assert [p.public for p in plan] == ["10.40.192.0/20", "10.40.208.0/20", "10.40.224.0/20"]


def test_more_than_three_zones_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^zones: 4 is not allowed: use 1 to 3$"):
        subnets.subnet_plan("10.0.0.0/16", 4)


# IAM ---------------------------------------------------------------------------------


def test_bucket_access_names_the_bucket_and_its_objects_only() -> None:
    document = iam.bucket_access("arn:aws:s3:::b")
    resources = [s["Resource"] for s in document["Statement"]]
    assert resources == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    assert iam.wildcard_problems(document) == []


def test_service_account_trust_names_one_service_account() -> None:
    document = iam.service_account_trust("arn:oidc", "oidc.example/id/X", "ns", "sa")
    (statement,) = document["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        "oidc.example/id/X:sub": "system:serviceaccount:ns:sa",
        "oidc.example/id/X:aud": "sts.amazonaws.com",
    }


def test_dns01_policy_changes_only_txt_records_of_the_instance_zone() -> None:
    document = iam.dns01_challenges("Z123")
    change = document["Statement"][1]
    assert change["Resource"] == "arn:aws:route53:::hostedzone/Z123"
    assert change["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
    }
    assert iam.wildcard_problems(document) == []


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            {"Effect": "Allow", "Action": "*", "Resource": "arn:x"},
            "statement 0 allows every action of a service: ['*']",
        ),
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:x"},
            "statement 0 allows every action of a service: ['s3:*']",
        ),
        (
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"},
            "statement 0 allows a wildcard action on every resource",
        ),
    ],
)
def test_wildcard_check_finds_each_kind_of_wildcard(
    statement: dict[str, str], problem: str
) -> None:
    assert iam.wildcard_problems({"Statement": [statement]}) == [problem]


def test_wildcard_check_lets_a_deny_and_a_named_action_on_every_resource_pass() -> None:
    statements = [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
    ]
    assert iam.wildcard_problems({"Statement": statements}) == []


# Charts and presets --------------------------------------------------------------------


def test_every_chart_is_pinned_to_one_exact_version() -> None:
    for chart in charts.ALL_CHARTS:
        assert chart.version.lstrip("v").count(".") == 2, chart.name
        assert not set(chart.version) & set("^~*<>=|, "), chart.name


def test_own_backends_are_reached_at_their_in_cluster_services() -> None:
    small, production = sizes.SIZES["small"], sizes.SIZES["production"]
    assert gateway_upstreams.upstreams(small) == gateway_upstreams.Upstreams(
        cortex_push="http://mimir-distributor.opstrace-metrics.svc.cluster.local:8080",
        cortex_query="http://mimir-query-frontend.opstrace-metrics.svc.cluster.local:8080",
        cortex_ruler="http://mimir-ruler.opstrace-metrics.svc.cluster.local:8080",
        cortex_alertmanager="http://mimir-alertmanager.opstrace-metrics.svc.cluster.local:8080",
        loki_push="http://loki.opstrace-logs.svc.cluster.local:3100",
        loki_query="http://loki.opstrace-logs.svc.cluster.local:3100",
        loki_ruler="http://loki.opstrace-logs.svc.cluster.local:3100",
        metrics_query_prefix="/prometheus",
        ruler_config_prefix="/prometheus/config/v1/rules",
        metrics_otlp_path="/otlp/v1/metrics",
    )
    scalable = gateway_upstreams.upstreams(production)
    assert (scalable.loki_push, scalable.loki_query, scalable.loki_ruler) == (
        "http://loki-write.opstrace-logs.svc.cluster.local:3100",
        "http://loki-read.opstrace-logs.svc.cluster.local:3100",
        "http://loki-backend.opstrace-logs.svc.cluster.local:3100",
    )


def test_the_rulers_send_alerts_to_the_alertmanager_tenants_reach() -> None:
    def alertmanager(cortex_url: str = "") -> str:
        to = gateway_upstreams.upstreams(sizes.SIZES["small"], cortex_url)
        settings = gateway_upstreams.gateway_settings("acme", "acme.dev", ["prod"], to)
        return gateway_upstreams.rulers_alertmanager(settings)

    assert alertmanager() == (
        "http://mimir-alertmanager.opstrace-metrics.svc.cluster.local:8080/alertmanager"
    )
    assert alertmanager("http://c:80") == "http://c:80/alertmanager"


def test_external_backends_replace_the_own_ones_queried_under_prometheus() -> None:
    upstreams = gateway_upstreams.upstreams(sizes.SIZES["small"], "http://c:80", "http://l:3100")
    cortex = ("cortex_push", "cortex_query", "cortex_ruler", "cortex_alertmanager")
    assert {getattr(upstreams, name) for name in cortex} == {"http://c:80"}
    loki = ("loki_push", "loki_query", "loki_ruler")
    assert {getattr(upstreams, name) for name in loki} == {"http://l:3100"}
    # Where a stock Cortex, Mimir and Opstrace's own Cortex all serve the query API.
    assert upstreams.metrics_query_prefix == "/prometheus"
    # An external metrics backend has Cortex's layout: its ruler configuration API too.
    assert upstreams.ruler_config_prefix == "/api/v1/rules"


def test_every_preset_says_what_it_is_sized_for() -> None:
    for size in sizes.SIZES.values():
        assert "series" in size.sized_for
        assert "logs" in size.sized_for
        assert size.node_count >= 2


def test_production_preset_survives_a_zone() -> None:
    production = sizes.SIZES["production"]
    assert production.metrics.zone_aware
    assert production.metrics.replication_factor == 3
    assert production.logs.replication_factor == 3
    assert production.nat_per_zone


# Certificates, kubeconfig, telemetry ---------------------------------------------------


def test_tenant_certificate_names_exactly_its_two_endpoints() -> None:
    manifest = certificates.tenant_certificate("prod", "acme", "example.org", "system-tenant", "le")
    assert manifest["spec"]["dnsNames"] == [
        "cortex.prod.acme.example.org",
        "loki.prod.acme.example.org",
    ]
    assert manifest["spec"]["secretName"] == certificates.certificate_secret("prod")
    assert manifest["spec"]["issuerRef"] == {
        "kind": "ClusterIssuer",
        "name": "le",
        "group": "cert-manager.io",
    }


def test_acme_issuer_answers_dns01_in_the_instance_zone() -> None:
    issuer = certificates.acme_cluster_issuer("le", platform.LETS_ENCRYPT, "", "eu-west-1", "Z1")
    assert issuer["spec"]["acme"]["solvers"] == [
        {"dns01": {"route53": {"region": "eu-west-1", "hostedZoneID": "Z1"}}}
    ]
    assert "email" not in issuer["spec"]["acme"]


def test_kubeconfig_gets_a_token_from_the_aws_cli_and_holds_no_credential() -> None:
    document = yaml.safe_load(eks_kubeconfig("c1", "https://k", "Q0E=", "eu-west-1"))
    (user,) = document["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert set(user["user"]) == {"exec"}
    assert document["clusters"][0]["cluster"] == {
        "server": "https://k",
        "certificate-authority-data": "Q0E=",
    }


def test_collector_config_reads_the_token_from_the_mounted_secret() -> None:
    config = alloy_config.alloy_config("acme", "example.org")
    assert (
        config.count(f'bearer_token_file = "{alloy_config.TOKEN_DIR}/{alloy_config.TOKEN_FILE}"')
        == 2
    )
    assert "https://cortex.system.acme.example.org/api/v1/push" in config
    assert "https://loki.system.acme.example.org/loki/api/v1/push" in config


def discovered(pod: Mapping[str, Any], namespace: str, port: int) -> dict[str, str]:
    """The labels Alloy's pod discovery gives one container port of `pod`."""
    return {
        "__meta_kubernetes_namespace": namespace,
        **{
            "__meta_kubernetes_pod_label_" + re.sub("[^a-zA-Z0-9_]", "_", key): value
            for key, value in pod["metadata"]["labels"].items()
        },
        "__meta_kubernetes_pod_container_port_number": str(port),
    }


def test_the_collector_scrapes_the_gateway_pods_sidecar_and_nothing_else() -> None:
    config = alloy_config.alloy_config("acme", "example.org")
    block = config.split('discovery.relabel "gateway_usage"')[1].split("\n}\n")[0]
    (listed,) = re.findall(r"source_labels = \[(.*)\]", block.split("action")[0])
    (regex,) = re.findall(r'regex += "(.*)"', block)
    keys_ = [key.strip().strip('"') for key in listed.split(",")]
    pod = gateway_manifests.deployment("system-tenant", "acme", ["c", "k"], "code", 2, 5)
    template = pod["spec"]["template"]
    sidecar = next(c for c in template["spec"]["initContainers"] if c["name"] == "gateway-sync")
    ports = {
        c["name"]: [p["containerPort"] for p in c["ports"]] for c in template["spec"]["containers"]
    }

    def kept(namespace: str, port: int, instance_pod: Mapping[str, Any] = template) -> bool:
        labels = discovered(instance_pod, namespace, port)
        return re.fullmatch(regex, ";".join(labels.get(k, "") for k in keys_)) is not None

    assert [kept("system-tenant", p["containerPort"]) for p in sidecar["ports"]] == [True]
    assert not any(kept("system-tenant", p) for p in ports["haproxy"])
    assert not kept("prod-tenant", sidecar["ports"][0]["containerPort"])
    other = gateway_manifests.deployment("system-tenant", "other", ["c"], "code", 2, 5)
    assert not kept("system-tenant", 8082, other["spec"]["template"])


def test_load_balancer_name_is_the_dns_name_without_its_id() -> None:
    hostname = "k8s-systemte-gw-1a2b3c4d5e-0123456789abcdef.elb.eu-west-1.amazonaws.com"
    assert names.load_balancer_name(hostname) == "k8s-systemte-gw-1a2b3c4d5e"


def test_a_host_that_is_no_aws_load_balancer_has_no_load_balancer_name() -> None:
    with pytest.raises(ValueError, match=r"^'gw\.local' is not an AWS load balancer's DNS name$"):
        names.load_balancer_name("gw.local")


# Key bindings --------------------------------------------------------------------------


PEM_A = keys.stand_in_public_key("a")
PEM_B = keys.stand_in_public_key("b")


def test_a_credentials_key_is_bound_to_its_tenant() -> None:
    assert keys.key_bindings([(PEM_A, "prod"), (PEM_B, None)]) == {keys.key_id(PEM_A): "prod"}


def test_a_key_also_trusted_without_a_tenant_is_instance_wide() -> None:
    assert keys.key_bindings([(PEM_A, "prod"), (PEM_A, None)]) == {}


def test_a_key_bound_to_two_tenants_is_refused() -> None:
    with pytest.raises(keys.KeySetError, match=r"is bound to tenants 'prod' and 'dev'"):
        keys.key_bindings([(PEM_A, "prod"), (PEM_A, "dev")])
