"""The platform under mocks: cluster, storage, backends, add-ons, telemetry, destroy order.

What `pulumi up` would register for an `eks` stack (the dev stack, as an operator fills
it in) and for production sizing; the pure rules beneath have plain tests in
`test_platform_rules.py`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from pulumi.runtime import rpc

from opstrace import alloy_config, charts, data_token, names
from opstrace.aws import iam
from opstrace.gateway.settings import BINDINGS_MAP
from tests import key_documents
from tests.conftest import OPERATOR_DOMAIN, dev_config
from tools.offline import ProgramRun, Registration, run_program
from tools.plan import redact

BUCKET = "aws:s3/bucket:Bucket"
ADDON = "aws:eks/addon:Addon"
OFFICE = "198.51.100.0/24, 203.0.113.7/32"
"""The networks an operator lets reach the API (documentation networks, RFC 5737)."""
RELEASE = "kubernetes:helm.sh/v3:Release"


def of_type(run: ProgramRun, typ: str) -> list[Registration]:
    return [r for r in run.resources if r.type == typ]


def named(run: ProgramRun, name: str) -> Registration:
    (resource,) = [r for r in run.resources if r.name == name]
    return resource


def load_balancer_service(run: ProgramRun) -> Registration:
    """The gateway's public Service (not its in-cluster one, for the tenants' Grafana)."""
    (service,) = [
        r
        for r in of_type(run, "kubernetes:core/v1:Service")
        if r.inputs["spec"]["type"] == "LoadBalancer"
    ]
    return service


def release(run: ProgramRun, chart: charts.Chart) -> Registration:
    (found,) = [r for r in of_type(run, RELEASE) if r.inputs["chart"] == chart.name]
    return found


@pytest.fixture(scope="module")
def production_run() -> ProgramRun:
    """Production sizing, keeping data on destroy (the default)."""
    config = dev_config(sizing="production", keepDataOnDestroy=None, apiAllowedCidrs=OFFICE)
    return run_program(config, stack="prod")


# The cluster -----------------------------------------------------------------------


def test_eks_cluster_spans_private_subnets_in_every_zone(dev_run: ProgramRun) -> None:
    subnets = of_type(dev_run, "aws:ec2/subnet:Subnet")
    zones = {s.inputs["availabilityZone"] for s in subnets}
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
    public = [s for s in subnets if "kubernetes.io/role/elb" in s.inputs["tags"]]
    assert (len(private), len(public), len(zones)) == (3, 3, 3)
    nodes = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")[0].inputs
    assert nodes["scalingConfig"]["desiredSize"] == 3
    assert nodes["instanceTypes"] == ["m7i.large"]


def test_small_sizing_has_one_nat_gateway_and_production_one_per_zone(
    dev_run: ProgramRun, production_run: ProgramRun
) -> None:
    nat = "aws:ec2/natGateway:NatGateway"
    assert (len(of_type(dev_run, nat)), len(of_type(production_run, nat))) == (1, 3)


def test_eks_cluster_has_its_oidc_provider_and_the_ebs_csi_add_on(dev_run: ProgramRun) -> None:
    (addon,) = [r.inputs for r in of_type(dev_run, ADDON) if r.name == "dev-acme-cluster-ebs-csi"]
    oidc = of_type(dev_run, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0].inputs
    assert addon["addonName"] == "aws-ebs-csi-driver"
    assert addon["serviceAccountRoleArn"]
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]


# Hardening -------------------------------------------------------------------------


def test_the_vpc_cni_add_on_enforces_network_policies_with_its_own_role(
    dev_run: ProgramRun,
) -> None:
    (addon,) = [r for r in of_type(dev_run, ADDON) if r.inputs["addonName"] == "vpc-cni"]
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
    assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
    roles = {r.state["arn"]: r.name for r in of_type(dev_run, "aws:iam/role:Role")}
    assert roles[addon.inputs["serviceAccountRoleArn"]] == "dev-acme-cluster-vpc-cni"


def test_nodes_join_after_the_cni_can_give_their_pods_addresses(dev_run: ProgramRun) -> None:
    (nodes,) = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")
    (cni,) = [r for r in of_type(dev_run, ADDON) if r.inputs["addonName"] == "vpc-cni"]
    assert cni.urn in nodes.dependencies


def test_nodes_require_imdsv2_with_a_hop_limit_that_stops_at_the_pods(
    dev_run: ProgramRun,
) -> None:
    (nodes,) = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")
    (template,) = of_type(dev_run, "aws:ec2/launchTemplate:LaunchTemplate")
    assert nodes.inputs["launchTemplate"] == {
        "id": template.id,
        "version": str(int(template.state["latestVersion"])),
    }
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }


def test_the_api_endpoint_is_private_and_public_only_to_the_allowed_networks(
    production_run: ProgramRun,
) -> None:
    (cluster,) = of_type(production_run, "aws:eks/cluster:Cluster")
    access = cluster.inputs["vpcConfig"]
    assert (access["endpointPrivateAccess"], access["endpointPublicAccess"]) == (True, True)
    assert access["publicAccessCidrs"] == ["198.51.100.0/24", "203.0.113.7/32"]


def test_a_small_cluster_without_allowed_networks_keeps_eks_default_of_every_address(
    dev_run: ProgramRun,
) -> None:
    (cluster,) = of_type(dev_run, "aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]


def test_secrets_are_encrypted_with_a_rotated_key_made_for_the_cluster(
    dev_run: ProgramRun,
) -> None:
    (cluster,) = of_type(dev_run, "aws:eks/cluster:Cluster")
    (key,) = of_type(dev_run, "aws:kms/key:Key")
    assert cluster.inputs["encryptionConfig"] == {
        "provider": {"keyArn": key.state["arn"]},
        "resources": ["secrets"],
    }
    assert key.inputs["enableKeyRotation"] is True
    assert "policy" not in key.inputs  # KMS's default: the account's IAM decides


def test_secrets_are_encrypted_with_the_given_key_and_no_key_is_made() -> None:
    arn = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    run = run_program(dev_config(secretsKeyArn=arn), stack="dev")
    (cluster,) = of_type(run, "aws:eks/cluster:Cluster")
    assert cluster.inputs["encryptionConfig"]["provider"] == {"keyArn": arn}
    assert of_type(run, "aws:kms/key:Key") == []


def test_destroy_leaves_a_zone_that_holds_records_the_program_did_not_make(
    dev_run: ProgramRun,
) -> None:
    (zone,) = of_type(dev_run, "aws:route53/zone:Zone")
    assert zone.inputs["forceDestroy"] is False


def test_kubeconfig_stack_output_is_a_secret(dev_run: ProgramRun) -> None:
    assert rpc.is_rpc_secret(dev_run.stack_outputs["kubeconfig"])


# Storage ---------------------------------------------------------------------------


def bucket_children(run: ProgramRun, bucket: Registration) -> dict[str, Registration]:
    """The bucket's settings resources, by their type's last part."""
    return {r.type.rsplit(":", 1)[-1]: r for r in run.resources if r.parent == bucket.parent}


def test_one_bucket_per_backend(dev_run: ProgramRun) -> None:
    assert sorted(r.inputs["tags"]["opstrace.io/data"] for r in of_type(dev_run, BUCKET)) == [
        "logs",
        "metrics",
    ]
    assert sorted(dev_run.stack_outputs["bucket_names"]) == ["logs", "metrics"]


def test_every_bucket_is_encrypted_private_owner_enforced_and_tls_only(
    dev_run: ProgramRun,
) -> None:
    for bucket in of_type(dev_run, BUCKET):
        children = bucket_children(dev_run, bucket)
        encryption = children["BucketServerSideEncryptionConfiguration"].inputs["rules"][0]
        assert encryption["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        private = children["BucketPublicAccessBlock"].inputs
        assert all(
            private[flag]
            for flag in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        ownership = children["BucketOwnershipControls"].inputs["rule"]
        assert ownership["objectOwnership"] == "BucketOwnerEnforced"
        (statement,) = json.loads(children["BucketPolicy"].inputs["policy"])["Statement"]
        assert (statement["Effect"], statement["Condition"]) == (
            "Deny",
            {"Bool": {"aws:SecureTransport": "false"}},
        )


def test_dev_stack_deletes_its_buckets_on_destroy(dev_run: ProgramRun) -> None:
    for bucket in of_type(dev_run, BUCKET):
        assert bucket.inputs["forceDestroy"] is True
        assert not bucket.retain_on_delete


def test_by_default_destroy_keeps_the_buckets_and_their_settings(
    production_run: ProgramRun,
) -> None:
    for bucket in of_type(production_run, BUCKET):
        assert bucket.inputs["forceDestroy"] is False
        children = bucket_children(production_run, bucket)
        kept = {name for name, r in children.items() if r.retain_on_delete}
        assert kept >= {
            "Bucket",
            "BucketServerSideEncryptionConfiguration",
            "BucketPublicAccessBlock",
            "BucketPolicy",
        }


def test_each_backend_role_reaches_only_its_own_bucket(dev_run: ProgramRun) -> None:
    policies = {
        r.name: json.loads(r.inputs["policy"])
        for r in of_type(dev_run, "aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("-access")
    }
    buckets = {
        r.inputs["tags"]["opstrace.io/data"]: r.state["arn"] for r in of_type(dev_run, BUCKET)
    }
    assert set(policies) == {"dev-acme-backends-metrics-access", "dev-acme-backends-logs-access"}
    for purpose, arn in buckets.items():
        resources = {
            resource
            for statement in policies[f"dev-acme-backends-{purpose}-access"]["Statement"]
            for resource in [statement["Resource"]]
        }
        assert resources == {arn, f"{arn}/*"}


def test_backend_roles_trust_only_their_service_account(dev_run: ProgramRun) -> None:
    for role in of_type(dev_run, "aws:iam/role:Role"):
        if not role.name.endswith("-access"):
            continue
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        subjects = [
            v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")
        ]
        assert len(subjects) == 1
        assert re.fullmatch(
            r"system:serviceaccount:opstrace-(metrics|logs):(mimir|loki)", subjects[0]
        )


# IAM and secrets ---------------------------------------------------------------------


def test_no_iam_policy_allows_every_action_or_a_wildcard_action_on_every_resource(
    production_run: ProgramRun,
) -> None:
    documents = [
        json.loads(r.inputs[key])
        for r in production_run.resources
        for key in ("policy", "assumeRolePolicy")
        if r.type.startswith("aws:iam/") and isinstance(r.inputs.get(key), str)
    ]
    assert len(documents) > 10
    assert [problem for document in documents for problem in iam.wildcard_problems(document)] == []


def test_managed_policies_are_only_the_eks_ones(production_run: ProgramRun) -> None:
    attached = {
        r.inputs["policyArn"]
        for r in of_type(production_run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    allowed = {
        *iam.MANAGED_CLUSTER_POLICIES,
        *iam.MANAGED_NODE_POLICIES,
        iam.MANAGED_CNI_POLICY,
        iam.MANAGED_EBS_CSI_POLICY,
    }
    assert attached == allowed


def test_no_token_or_kubeconfig_appears_in_plain_text_in_any_input(
    minted_dev_run: ProgramRun,
) -> None:
    tokens = [
        token
        for by_name in rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["tokens"]).values()
        for token in by_name.values()
    ]
    kubeconfig = rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["kubeconfig"])
    for resource in minted_dev_run.resources:
        shown = json.dumps(redact(resource.inputs), default=str)
        assert not [t for t in tokens if t in shown], resource.urn
        assert kubeconfig not in shown, resource.urn


def test_the_system_token_reaches_the_collector_only_as_a_secret(dev_run: ProgramRun) -> None:
    string_data = collector_secret(dev_run).inputs["stringData"]
    assert rpc.is_rpc_secret(string_data)
    assert list(rpc.unwrap_rpc_secret(string_data)) == ["token"]


def collector_secret(run: ProgramRun) -> Registration:
    (secret,) = [
        secret
        for secret in of_type(run, "kubernetes:core/v1:Secret")
        if secret.inputs["metadata"]["namespace"] == charts.ALLOY.namespace
    ]
    return secret


def test_the_collectors_secret_holds_the_system_tenants_default_token(
    minted_dev_run: ProgramRun,
) -> None:
    token = rpc.unwrap_rpc_secret(collector_secret(minted_dev_run).inputs["stringData"])[
        alloy_config.TOKEN_FILE
    ]
    tokens = rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["tokens"])
    assert token == tokens[names.SYSTEM_TENANT][names.DEFAULT_TOKEN_NAME]


def test_the_collectors_token_is_accepted_at_the_system_endpoints_only(
    minted_dev_run: ProgramRun,
) -> None:
    # As the gateway decides it, from the trust store and the key bindings it serves.
    token = rpc.unwrap_rpc_secret(collector_secret(minted_dev_run).inputs["stringData"])[
        alloy_config.TOKEN_FILE
    ]
    key_set = key_documents.key_set(minted_dev_run)
    gateway_files = key_documents.gateway_files(minted_dev_run)
    bindings = dict(line.split() for line in gateway_files[BINDINGS_MAP].splitlines())

    def decision(endpoint: str) -> data_token.Decision:
        return data_token.authenticate(
            f"Bearer {token}", endpoint, key_set, "dev-acme", int(time.time()), bindings
        )

    assert decision(names.SYSTEM_TENANT) == data_token.Decision(200, tenant=names.SYSTEM_TENANT)
    assert decision("prod") == data_token.Decision(401, data_token.BAD_TOKEN)


def test_the_collector_reads_its_token_where_the_secret_is_mounted(dev_run: ProgramRun) -> None:
    secret = collector_secret(dev_run).inputs
    values = release(dev_run, charts.ALLOY).inputs["values"]
    (volume,) = values["controller"]["volumes"]["extra"]
    (mount,) = values["alloy"]["mounts"]["extra"]
    read_from = f"{mount['mountPath']}/{next(iter(rpc.unwrap_rpc_secret(secret['stringData'])))}"
    assert secret["metadata"]["namespace"] == charts.ALLOY.namespace
    assert volume == {"name": mount["name"], "secret": {"secretName": secret["metadata"]["name"]}}
    assert f'bearer_token_file = "{read_from}"' in values["alloy"]["configMap"]["content"]


# Every IAM document, statement by statement ----------------------------------------


def documents_by_name(run: ProgramRun, typ: str, key: str) -> dict[str, Any]:
    return {r.name: json.loads(r.inputs[key]) for r in of_type(run, typ)}


def irsa_trust(run: ProgramRun, subject: str) -> dict[str, Any]:
    """What an IAM role that only `subject` may assume says, with the run's OIDC provider."""
    provider = of_type(run, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0]
    host = provider.inputs["url"].removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider.state["arn"]},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:sub": f"system:serviceaccount:{subject}",
                        f"{host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def service_trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def test_each_role_is_assumed_by_exactly_its_service_or_service_account(
    production_run: ProgramRun,
) -> None:
    trusts = documents_by_name(production_run, "aws:iam/role:Role", "assumeRolePolicy")
    assert trusts == {
        "dev-acme-cluster-control-plane": service_trust("eks.amazonaws.com"),
        "dev-acme-cluster-nodes": service_trust("ec2.amazonaws.com"),
        "dev-acme-cluster-ebs-csi": irsa_trust(production_run, "kube-system:ebs-csi-controller-sa"),
        "dev-acme-cluster-vpc-cni": irsa_trust(production_run, "kube-system:aws-node"),
        "dev-acme-addons-lbc": irsa_trust(
            production_run, "kube-system:aws-load-balancer-controller"
        ),
        "dev-acme-addons-cert-manager": irsa_trust(production_run, "cert-manager:cert-manager"),
        "dev-acme-backends-metrics-access": irsa_trust(production_run, "opstrace-metrics:mimir"),
        "dev-acme-backends-logs-access": irsa_trust(production_run, "opstrace-logs:loki"),
    }


def test_each_role_has_exactly_its_managed_policies(production_run: ProgramRun) -> None:
    attachment = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    attached = sorted(
        (r.inputs["role"], r.inputs["policyArn"].removeprefix("arn:aws:iam::aws:policy/"))
        for r in of_type(production_run, attachment)
    )
    assert attached == [
        ("dev-acme-cluster-control-plane", "AmazonEKSClusterPolicy"),
        ("dev-acme-cluster-ebs-csi", "service-role/AmazonEBSCSIDriverPolicy"),
        ("dev-acme-cluster-nodes", "AmazonEC2ContainerRegistryReadOnly"),
        ("dev-acme-cluster-nodes", "AmazonEKSWorkerNodePolicy"),
        ("dev-acme-cluster-vpc-cni", "AmazonEKS_CNI_Policy"),
    ]


def test_each_backend_role_lists_its_bucket_and_changes_only_its_objects(
    production_run: ProgramRun,
) -> None:
    policies = documents_by_name(production_run, "aws:iam/rolePolicy:RolePolicy", "policy")
    arns = {
        r.inputs["tags"]["opstrace.io/data"]: r.state["arn"]
        for r in of_type(production_run, BUCKET)
    }
    for purpose, arn in arns.items():
        assert policies[f"dev-acme-backends-{purpose}-access"] == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListTheBucket",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": arn,
                },
                {
                    "Sid": "ObjectsOfTheBucket",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{arn}/*",
                },
            ],
        }, purpose


def test_cert_manager_changes_only_txt_records_of_the_instance_zone(
    production_run: ProgramRun,
) -> None:
    policies = documents_by_name(production_run, "aws:iam/rolePolicy:RolePolicy", "policy")
    zone = of_type(production_run, "aws:route53/zone:Zone")[0].id
    assert policies["dev-acme-addons-cert-manager"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": "arn:aws:route53:::change/*",
            },
            {
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": f"arn:aws:route53:::hostedzone/{zone}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    }
                },
            },
            {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    }


def test_the_controller_role_has_the_controller_policy(production_run: ProgramRun) -> None:
    # Its statements are pinned against the official policy in test_iam_upstream.py.
    policies = documents_by_name(production_run, "aws:iam/rolePolicy:RolePolicy", "policy")
    assert policies["dev-acme-addons-lbc"] == iam.load_balancer_controller()
    assert set(policies) == {
        "dev-acme-addons-lbc",
        "dev-acme-addons-cert-manager",
        "dev-acme-backends-metrics-access",
        "dev-acme-backends-logs-access",
    }


def test_every_bucket_refuses_any_request_without_tls_to_it_and_its_objects(
    production_run: ProgramRun,
) -> None:
    policies = documents_by_name(production_run, "aws:s3/bucketPolicy:BucketPolicy", "policy")
    arns = {r.name.removesuffix("-bucket"): r.state["arn"] for r in of_type(production_run, BUCKET)}
    assert {name.removesuffix("-tls-only") for name in policies} == set(arns)
    for name, arn in arns.items():
        assert policies[f"{name}-tls-only"] == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RefuseRequestsWithoutTLS",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }, name


# Charts ----------------------------------------------------------------------------


def test_every_release_is_a_pinned_chart_version_from_its_https_repository(
    dev_run: ProgramRun,
) -> None:
    releases = of_type(dev_run, RELEASE)
    assert {r.inputs["chart"] for r in releases} == {c.name for c in charts.ALL_CHARTS}
    for r in releases:
        chart = next(c for c in charts.ALL_CHARTS if c.name == r.inputs["chart"])
        assert r.inputs["version"] == chart.version
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", r.inputs["version"]), r.inputs["version"]
        assert r.inputs["repositoryOpts"] == {"repo": chart.repository}
        assert chart.repository.startswith("https://")
        assert r.inputs["atomic"] is True


def test_mimir_is_multi_tenant_on_its_bucket_without_kafka_or_its_own_gateway(
    dev_run: ProgramRun,
) -> None:
    values = release(dev_run, charts.MIMIR).inputs["values"]
    config = values["mimir"]["structuredConfig"]
    bucket = dev_run.stack_outputs["bucket_names"]["metrics"]
    assert config["multitenancy_enabled"] is True
    assert config["common"]["storage"]["s3"]["bucket_name"] == bucket
    assert (values["kafka"], values["minio"], values["gateway"]) == (
        {"enabled": False},
        {"enabled": False},
        {"enabled": False},
    )
    assert config["limits"]["compactor_blocks_retention_period"] == "7d"


def test_loki_is_multi_tenant_on_its_bucket_with_the_configured_retention(
    dev_run: ProgramRun,
) -> None:
    values = release(dev_run, charts.LOKI).inputs["values"]
    assert values["loki"]["auth_enabled"] is True
    assert (
        values["loki"]["storage"]["bucketNames"]["chunks"]
        == dev_run.stack_outputs["bucket_names"]["logs"]
    )
    assert values["loki"]["limits_config"]["retention_period"] == "168h"
    assert values["gateway"] == {"enabled": False}


def test_production_replicates_over_zones(production_run: ProgramRun) -> None:
    mimir = release(production_run, charts.MIMIR).inputs["values"]
    loki = release(production_run, charts.LOKI).inputs["values"]
    assert mimir["ingester"]["zoneAwareReplication"]["enabled"] is True
    assert mimir["mimir"]["structuredConfig"]["ingester"]["ring"]["replication_factor"] == 3
    assert (loki["deploymentMode"], loki["loki"]["commonConfig"]["replication_factor"]) == (
        "SimpleScalable",
        3,
    )


def test_backends_use_irsa_roles_of_their_buckets(dev_run: ProgramRun) -> None:
    roles = {r.name: r.state["arn"] for r in of_type(dev_run, "aws:iam/role:Role")}
    for chart, purpose in ((charts.MIMIR, "metrics"), (charts.LOKI, "logs")):
        account = release(dev_run, chart).inputs["values"]["serviceAccount"]
        assert account["annotations"] == {
            charts.IRSA_ANNOTATION: roles[f"dev-acme-backends-{purpose}-access"]
        }


def test_gateway_forwards_to_the_instances_own_backends(dev_run: ProgramRun) -> None:
    config = named(dev_run, "dev-acme-gateway-config").inputs["data"]["haproxy.cfg"]
    assert "mimir-distributor.opstrace-metrics.svc.cluster.local:8080" in config
    assert "loki.opstrace-logs.svc.cluster.local:3100" in config


# Telemetry -------------------------------------------------------------------------


def test_collector_ships_to_the_system_tenants_endpoints_with_its_token(
    dev_run: ProgramRun,
) -> None:
    values = release(dev_run, charts.ALLOY).inputs["values"]
    config = values["alloy"]["configMap"]["content"]
    for service in names.ENDPOINT_SERVICES:
        host = names.endpoint_host(service, "system", "dev-acme", OPERATOR_DOMAIN)
        assert f"https://{host}/" in config
    assert 'bearer_token_file = "/var/run/secrets/opstrace/token"' in config
    assert values["controller"]["type"] == "daemonset"


def test_telemetry_can_be_turned_off() -> None:
    run = run_program(dev_config(telemetry=False), stack="dev")
    assert charts.ALLOY.name not in {r.inputs["chart"] for r in of_type(run, RELEASE)}


# Create and destroy order ----------------------------------------------------------


def depends_on(run: ProgramRun, dependent: Registration, dependency: Registration) -> bool:
    return dependency.urn in dependent.dependencies


def waits_for(run: ProgramRun, resource: Registration) -> set[str]:
    """Every URN `resource` is created after and deleted before, as the engine orders:
    its dependencies (explicit, and those of its inputs), theirs, and so on."""
    by_urn = run.by_urn()
    seen: set[str] = set()
    pending = [resource]
    while pending:
        current = pending.pop()
        direct = {
            *current.dependencies,
            *(urn for urns in current.property_dependencies.values() for urn in urns),
        }
        for urn in direct - seen:
            seen.add(urn)
            pending.append(by_urn[urn])
    return seen


def urns(resources: list[Registration]) -> set[str]:
    return {r.urn for r in resources}


def test_a_nat_gateway_comes_after_the_internet_gateway_and_goes_before_it(
    production_run: ProgramRun,
) -> None:
    # AWS makes no public NAT gateway in a VPC without an internet gateway, and cannot
    # detach one while a NAT gateway's address is mapped. No input says so: dependsOn.
    (internet,) = of_type(production_run, "aws:ec2/internetGateway:InternetGateway")
    for nat in of_type(production_run, "aws:ec2/natGateway:NatGateway"):
        assert internet.urn in nat.dependencies, nat.name


def test_each_private_subnet_leaves_through_the_nat_gateway_of_its_zone(
    production_run: ProgramRun,
) -> None:
    by_id = {r.id: r for r in production_run.resources if r.custom}
    tables = {
        r.name: r
        for r in of_type(production_run, "aws:ec2/routeTable:RouteTable")
        if "-private-" in r.name
    }
    for name, table in tables.items():
        (route,) = table.inputs["routes"]
        nat = by_id[route["natGatewayId"]]
        public_subnet = by_id[nat.inputs["subnetId"]]
        assert route["cidrBlock"] == "0.0.0.0/0"
        assert public_subnet.name == name.replace("-private-", "-public-")
        assert table.property_dependencies["routes"] == (nat.urn,)


def test_the_s3_endpoint_serves_the_private_route_tables_and_nothing_else(
    dev_run: ProgramRun,
) -> None:
    (endpoint,) = of_type(dev_run, "aws:ec2/vpcEndpoint:VpcEndpoint")
    private = [
        r for r in of_type(dev_run, "aws:ec2/routeTable:RouteTable") if "-private-" in r.name
    ]
    assert sorted(endpoint.inputs["routeTableIds"]) == sorted(r.id for r in private)
    assert set(endpoint.property_dependencies["routeTableIds"]) == urns(private)


def test_nodes_come_after_every_subnets_routes_to_the_internet(dev_run: ProgramRun) -> None:
    # Nodes in the private subnets join the cluster (and pull images) through NAT.
    (nodes,) = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")
    routing = [
        *of_type(dev_run, "aws:ec2/routeTableAssociation:RouteTableAssociation"),
        *of_type(dev_run, "aws:ec2/natGateway:NatGateway"),
        *of_type(dev_run, "aws:ec2/internetGateway:InternetGateway"),
    ]
    assert urns(routing) <= waits_for(dev_run, nodes)


def test_the_gateways_load_balancer_goes_before_the_network_it_lives_in(
    dev_run: ProgramRun,
) -> None:
    # The controller deletes the NLB when the Service goes; until then the NLB holds
    # addresses in the public subnets and public addresses the internet gateway maps.
    service = load_balancer_service(dev_run)
    network = [
        *of_type(dev_run, "aws:ec2/vpc:Vpc"),
        *of_type(dev_run, "aws:ec2/subnet:Subnet"),
        *of_type(dev_run, "aws:ec2/internetGateway:InternetGateway"),
    ]
    assert urns(network) <= waits_for(dev_run, service)


def test_whoever_uses_a_role_comes_after_its_permissions_and_goes_before_them(
    dev_run: ProgramRun,
) -> None:
    # Terraform's EKS examples say why: without the node role's policies EKS cannot
    # delete the nodes' instances and interfaces; without its inline policy the load
    # balancer controller cannot delete the NLB, which then blocks the VPC.
    grants = [
        *of_type(dev_run, "aws:iam/rolePolicy:RolePolicy"),
        *of_type(dev_run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
    ]
    checked = 0
    for role in of_type(dev_run, "aws:iam/role:Role"):
        policies = {g.urn for g in grants if role.urn in g.property_dependencies["role"]}
        users = [
            r
            for r in dev_run.resources
            if r.custom and r not in grants and role.state["arn"] in json.dumps(r.inputs)
        ]
        assert policies, role.name
        for user in users:
            assert policies <= waits_for(dev_run, user), (role.name, user.name)
            checked += 1
    assert checked >= 7  # the cluster, the nodes, EBS CSI, LBC, cert-manager, Mimir, Loki


def test_gateway_load_balancer_is_deleted_before_its_controller(dev_run: ProgramRun) -> None:
    service = load_balancer_service(dev_run)
    assert depends_on(dev_run, service, release(dev_run, charts.LOAD_BALANCER_CONTROLLER))


def test_certificates_are_deleted_before_cert_manager_and_its_issuer(dev_run: ProgramRun) -> None:
    issuer = named(dev_run, "dev-acme-addons-issuer")
    assert depends_on(dev_run, issuer, release(dev_run, charts.CERT_MANAGER))
    for certificate in of_type(dev_run, "kubernetes:cert-manager.io/v1:Certificate"):
        assert depends_on(dev_run, certificate, issuer)


def test_in_cluster_releases_wait_for_the_nodes(dev_run: ProgramRun) -> None:
    nodes = of_type(dev_run, "aws:eks/nodeGroup:NodeGroup")[0]
    for r in of_type(dev_run, RELEASE):
        if r.inputs["chart"] != charts.ALLOY.name:
            assert depends_on(dev_run, r, nodes), r.name


def test_certificates_wait_until_issued(dev_run: ProgramRun) -> None:
    for certificate in of_type(dev_run, "kubernetes:cert-manager.io/v1:Certificate"):
        metadata: dict[str, Any] = certificate.inputs["metadata"]
        assert metadata["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
        assert metadata["namespace"] == "system-tenant"


def test_s3_traffic_of_the_private_subnets_bypasses_nat(dev_run: ProgramRun) -> None:
    endpoint = of_type(dev_run, "aws:ec2/vpcEndpoint:VpcEndpoint")[0].inputs
    private_tables = [
        r for r in of_type(dev_run, "aws:ec2/routeTable:RouteTable") if "-private-" in r.name
    ]
    assert (endpoint["serviceName"], endpoint["vpcEndpointType"]) == (
        "com.amazonaws.eu-central-1.s3",
        "Gateway",
    )
    assert len(endpoint["routeTableIds"]) == len(private_tables) == 3


def test_backend_disks_are_deleted_with_their_pods(dev_run: ProgramRun) -> None:
    # Otherwise EBS volumes outlive `pulumi destroy` (Helm leaves StatefulSet claims).
    mimir = release(dev_run, charts.MIMIR).inputs["values"]
    loki = release(dev_run, charts.LOKI).inputs["values"]
    for component in ("ingester", "store_gateway", "compactor"):
        assert mimir[component]["persistentVolume"]["whenDeleted"] == "Delete", component
    for target in ("singleBinary", "write", "read", "backend"):
        assert loki[target]["persistence"]["enableStatefulSetAutoDeletePVC"] is True, target
