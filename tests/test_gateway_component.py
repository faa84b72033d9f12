"""The Gateway component under Pulumi's mocks: what it registers, and that it is valid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.gateway import Gateway, GatewayArgs, component
from components.trust_store import BoundKey
from opstrace import key_shards, keys
from opstrace.config import sizes
from opstrace.gateway import files as gateway_files
from opstrace.gateway import manifests
from opstrace.gateway import settings as gateway_settings
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.haproxy import HARD_STOP_SECONDS
from opstrace.gateway.settings import GatewaySettings
from sidecar import contract
from tools.offline import ProgramRun, Registration, run_components

KUBERNETES_VERSION = "1.33.0"


@dataclass(frozen=True)
class Deployed:
    """What one Gateway registered, and its output values."""

    run: ProgramRun
    outputs: dict[str, str]

    def registration(self, typ: str, name: str | None = None) -> Registration:
        (registration,) = [
            r for r in self.run.resources if r.type == typ and name in (None, r.name)
        ]
        return registration

    def manifest(self, typ: str, name: str | None = None) -> dict[str, Any]:
        """The one object of `typ` (and `name`) as the program registered it."""
        return self.registration(typ, name).inputs

    def config_maps(self) -> dict[str, dict[str, Any]]:
        """Logical name -> registered inputs of each ConfigMap."""
        return {
            r.name: r.inputs for r in self.run.resources if r.type == "kubernetes:core/v1:ConfigMap"
        }

    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.manifest("kubernetes:apps/v1:Deployment")["spec"]
        return dict(spec["template"]["spec"])

    def pod_metadata(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.manifest("kubernetes:apps/v1:Deployment")["spec"]
        return dict(spec["template"]["metadata"])


def deploy(args: GatewayArgs) -> Deployed:
    """Construct a Gateway named `gw` under mocks and wait for every registration."""
    outputs: dict[str, str] = {}

    def program() -> None:
        gateway = Gateway("gw", args)
        pulumi.Output.all(
            gateway.load_balancer_hostname, gateway.config_checksum, gateway.internal_address
        ).apply(
            lambda values: outputs.update(
                hostname=values[0], checksum=values[1], internal_address=values[2]
            )
        )

    return Deployed(run_components(program), outputs)


@pytest.fixture(scope="module")
def key_set() -> dict[str, str]:
    pems = [keys.public_key_pem(keys.generate_private_key(2048)) for _ in range(2)]
    return keys.key_set(pems)


def settings(tenants: tuple[str, ...] = ("system", "prod")) -> GatewaySettings:
    return gateway_upstreams.gateway_settings(
        "acme", "example.com", tenants, gateway_upstreams.upstreams(sizes.SIZES["small"])
    )


def gateway_args(key_set: Mapping[str, str], **overrides: Any) -> GatewayArgs:
    """A gateway trusting `key_set` for every tenant."""
    args = GatewayArgs(
        settings=settings(),
        keys=[
            BoundKey(pem, gateway_files.KeyEntry("", None, f"trustedKeys[{i}]"))
            for i, pem in enumerate(key_set.values())
        ],
        namespace="system-tenant",
    )
    return replace(args, **overrides)


@pytest.fixture(scope="module")
def deployed(key_set: dict[str, str]) -> Deployed:
    return deploy(gateway_args(key_set))


def test_children_are_named_after_the_component_and_parented_to_it(deployed: Deployed) -> None:
    children = {
        tuple(r.urn.split("::")[2:]) for r in deployed.run.resources if r.type.startswith("kube")
    }
    assert children == {
        *(
            ("opstrace:index:Gateway$kubernetes:core/v1:ConfigMap", f"gw-{role}")
            for role in gateway_files.CONFIG_MAP_ROLES
        ),
        ("opstrace:index:Gateway$kubernetes:core/v1:ConfigMap", "gw-sync"),
        ("opstrace:index:Gateway$kubernetes:core/v1:ServiceAccount", "gw-account"),
        ("opstrace:index:Gateway$kubernetes:rbac.authorization.k8s.io/v1:Role", "gw-role"),
        (
            "opstrace:index:Gateway$kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
            "gw-role-binding",
        ),
        ("opstrace:index:Gateway$kubernetes:apps/v1:Deployment", "gw-deployment"),
        ("opstrace:index:Gateway$kubernetes:policy/v1:PodDisruptionBudget", "gw-pdb"),
        ("opstrace:index:Gateway$kubernetes:core/v1:Service", "gw-service"),
        ("opstrace:index:Gateway$kubernetes:core/v1:Service", "gw-internal"),
    }


def test_load_balancer_hostname_comes_from_the_service_status(deployed: Deployed) -> None:
    status = deployed.registration("kubernetes:core/v1:Service", "gw-service").state["status"]
    assert deployed.outputs["hostname"] == status["loadBalancer"]["ingress"][0]["hostname"]


def test_config_maps_hold_the_rendered_files_in_the_configuration_and_sixteen_shards(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    credentials = {kid: f"trustedKeys[{i}]" for i, kid in enumerate(key_set)}
    parts = gateway_files.render_gateway_parts(settings(), key_set, credentials=credentials)
    expected = gateway_files.config_map_data(parts)
    config_maps = deployed.config_maps()
    roles = gateway_files.CONFIG_MAP_ROLES
    assert {role: config_maps[f"gw-{role}"]["data"] for role in roles} == expected


def test_checksum_output_is_the_checksum_of_the_rendered_files(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    credentials = {kid: f"trustedKeys[{i}]" for i, kid in enumerate(key_set)}
    parts = gateway_files.render_gateway_parts(settings(), key_set, credentials=credentials)
    assert deployed.outputs["checksum"] == parts.checksum()


def test_a_key_change_leaves_the_pod_template_alone(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    # The pods reload the files in place: a revocation rolls no pod.
    after = deploy(gateway_args(dict(list(key_set.items())[:1])))
    assert after.outputs["checksum"] != deployed.outputs["checksum"]
    assert after.pod() == deployed.pod()


def test_a_new_tenant_leaves_the_pod_template_alone(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    # Its certificate reaches the pods through the API server: adding a tenant rolls none.
    after = deploy(gateway_args(key_set, settings=settings(("system", "prod", "qa"))))
    assert after.outputs["checksum"] != deployed.outputs["checksum"]
    assert after.pod() == deployed.pod()


def test_no_process_namespace_is_shared_and_haproxy_has_no_credential(
    deployed: Deployed,
) -> None:
    pod = deployed.pod()
    (haproxy,) = pod["containers"]
    token_mounts = [
        m for m in haproxy["volumeMounts"] if m["mountPath"] == str(contract.SERVICE_ACCOUNT_DIR)
    ]
    assert "shareProcessNamespace" not in pod
    assert pod["automountServiceAccountToken"] is False
    assert token_mounts == []


def test_the_sidecar_starts_first_and_runs_beside_haproxy(deployed: Deployed) -> None:
    pod = deployed.pod()
    (sidecar,) = pod["initContainers"]
    assert sidecar["name"] == "gateway-sync"
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: it runs as long as the pod
    # HAProxy starts only once a whole file set is written.
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/ready", "port": "sync"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "sync"}


def test_the_sidecar_watches_the_gateways_own_config_maps_by_name(deployed: Deployed) -> None:
    names = [
        deployed.registration("kubernetes:core/v1:ConfigMap", name).state["metadata"]["name"]
        for name in (f"gw-{role}" for role in gateway_files.CONFIG_MAP_ROLES)
    ]
    (sidecar,) = deployed.pod()["initContainers"]
    assert f"--config-maps={','.join(names)}" in sidecar["args"]
    assert f"--certificates={contract.CERTIFICATE_LABEL}=acme" in sidecar["args"]


def test_haproxy_reads_the_sidecars_current_files_and_opens_its_master_socket(
    deployed: Deployed,
) -> None:
    (haproxy,) = deployed.pod()["containers"]
    (sidecar,) = deployed.pod()["initContainers"]
    command = haproxy["command"]
    assert command[command.index("-C") + 1] == f"{contract.FILES_DIR}/{contract.CURRENT}"
    assert command[command.index("-S") + 1] == f"{contract.MASTER_SOCKET},mode,600"
    assert f"--master-socket={contract.MASTER_SOCKET}" in sidecar["args"]
    assert f"--files={contract.FILES_DIR}" in sidecar["args"]


def test_the_sidecars_role_reads_its_config_maps_by_name_and_nothing_more(
    deployed: Deployed,
) -> None:
    names = sorted(
        deployed.registration("kubernetes:core/v1:ConfigMap", name).state["metadata"]["name"]
        for name in (f"gw-{role}" for role in gateway_files.CONFIG_MAP_ROLES)
    )
    role = deployed.manifest("kubernetes:rbac.authorization.k8s.io/v1:Role", "gw-role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": names,
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "patch"],
        },
    ]
    binding = deployed.manifest(
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "gw-role-binding"
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": manifests.SERVICE_ACCOUNT, "namespace": "system-tenant"}
    ]
    assert deployed.pod()["serviceAccountName"] == manifests.SERVICE_ACCOUNT


def test_the_sidecars_code_is_this_checkouts_and_a_new_one_rolls_the_pods(
    deployed: Deployed,
) -> None:
    code = deployed.manifest("kubernetes:core/v1:ConfigMap", "gw-sync")["data"]
    shipped = Path(__file__).parent.parent / "sidecar" / "sync.py"
    assert code["sidecar--sync.py"] == shipped.read_text()
    annotations = deployed.pod_metadata()["annotations"]
    assert annotations[manifests.CODE_ANNOTATION] == manifests.code_checksum(code)


def test_up_waits_until_the_pods_serve_the_rendered_files(deployed: Deployed) -> None:
    rollout = deployed.registration("pulumi-python:dynamic/opstrace:GatewayRollout")
    deployment = deployed.registration("kubernetes:apps/v1:Deployment")
    config_maps = [
        deployed.registration("kubernetes:core/v1:ConfigMap", name).urn
        for name in (f"gw-{role}" for role in gateway_files.CONFIG_MAP_ROLES)
    ]
    assert rollout.inputs["checksum"] == deployed.outputs["checksum"]
    assert rollout.inputs["selector"] == manifests.labels("acme")
    assert {deployment.urn, *config_maps} <= set(rollout.dependencies)


def test_the_config_maps_change_only_after_the_certificates_are_issued(
    key_set: dict[str, str],
) -> None:
    def program() -> None:
        issued = pulumi.CustomResource("test:index:Certificate", "prod-certificate", {})
        Gateway("gw", gateway_args(key_set, certificates=(issued,)))

    run = run_components(program)
    (certificate,) = [r for r in run.resources if r.name == "prod-certificate"]
    for name in (f"gw-{role}" for role in gateway_files.CONFIG_MAP_ROLES):
        (config_map,) = [r for r in run.resources if r.name == name]
        assert certificate.urn in config_map.dependencies, name


def test_service_is_an_internet_facing_nlb_to_pod_ips_on_443_and_80(deployed: Deployed) -> None:
    service = deployed.manifest("kubernetes:core/v1:Service", "gw-service")
    annotations = service["metadata"]["annotations"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (443, "https"),
        (80, "http"),
    ]


def test_generic_load_balancer_has_no_aws_annotations(key_set: dict[str, str]) -> None:
    service = deploy(gateway_args(key_set, load_balancer="generic")).manifest(
        "kubernetes:core/v1:Service", "gw-service"
    )
    assert "annotations" not in service["metadata"]


@pytest.mark.parametrize("load_balancer", ["aws", "generic"])
def test_no_load_balancer_carries_the_internal_listener(
    key_set: dict[str, str], load_balancer: str
) -> None:
    deployed = deploy(gateway_args(key_set, load_balancer=load_balancer))
    service = deployed.manifest("kubernetes:core/v1:Service", "gw-service")
    ports = service["spec"]["ports"]
    assert {p["targetPort"] for p in ports} == {"https", "http"}
    assert manifests.INTERNAL_PORT not in {p["port"] for p in ports}
    (load_balancers,) = [
        r.name
        for r in deployed.run.resources
        if r.type == "kubernetes:core/v1:Service" and r.inputs["spec"]["type"] == "LoadBalancer"
    ]
    assert load_balancers == "gw-service"


def test_the_internal_service_is_a_cluster_ip_443_to_the_internal_listener(
    deployed: Deployed,
) -> None:
    service = deployed.manifest("kubernetes:core/v1:Service", "gw-internal")
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert "annotations" not in service["metadata"]
    assert (
        spec["selector"]
        == deployed.manifest("kubernetes:apps/v1:Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in spec["ports"]] == [
        (443, manifests.INTERNAL_PORT, "TCP")
    ]
    (haproxy,) = deployed.pod()["containers"]
    named = {p["name"]: p["containerPort"] for p in haproxy["ports"]}
    assert named["internal"] == manifests.INTERNAL_PORT
    listen = gateway_settings.DEFAULT_INTERNAL_LISTEN
    assert int(listen.rpartition(":")[2]) == manifests.INTERNAL_PORT


def test_the_internal_address_is_the_internal_services_cluster_ip(deployed: Deployed) -> None:
    # Pulumi's mocks allocate no ClusterIP: the output is what the state holds.
    state = deployed.registration("kubernetes:core/v1:Service", "gw-internal").state
    assert deployed.outputs["internal_address"] == state["spec"].get("clusterIP", "")
    spec = k8s.core.v1.outputs.ServiceSpec(cluster_ip="10.100.7.9")
    assert component._cluster_ip(spec) == "10.100.7.9"
    assert component._cluster_ip(None) == ""


def test_pod_disruption_budget_keeps_one_pod_of_the_deployment(deployed: Deployed) -> None:
    pdb = deployed.manifest("kubernetes:policy/v1:PodDisruptionBudget")["spec"]
    deployment = deployed.manifest("kubernetes:apps/v1:Deployment")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"] == deployment["selector"]


def test_every_registered_manifest_is_valid_against_the_kubernetes_schema(
    deployed: Deployed,
) -> None:
    objects = [r for r in deployed.run.resources if r.type.startswith("kubernetes:")]
    assert len(objects) == 9 + len(key_shards.SHARDS)
    for resource in objects:
        manifest = {**resource.inputs, **api_version_and_kind(resource.type)}
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def api_version_and_kind(typ: str) -> dict[str, str]:
    group_version, kind = typ.removeprefix("kubernetes:").rsplit(":", 1)
    group, version = group_version.split("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind}


def test_pod_runs_hardened(deployed: Deployed) -> None:
    pod = deployed.pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in [*pod["initContainers"], *pod["containers"]]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert set(container["resources"]) == {"requests", "limits"}


def test_stopping_pod_drains_before_haproxy_stops(deployed: Deployed) -> None:
    pod = deployed.pod()
    haproxy = pod["containers"][0]
    assert haproxy["lifecycle"]["preStop"] == {"sleep": {"seconds": manifests.DRAIN_SECONDS}}
    assert pod["terminationGracePeriodSeconds"] > manifests.DRAIN_SECONDS + HARD_STOP_SECONDS
    assert manifests.DRAIN_SECONDS > manifests.DEREGISTRATION_DELAY_SECONDS


def test_rollout_never_drops_below_the_desired_replicas(key_set: dict[str, str]) -> None:
    spec = deploy(gateway_args(key_set, replicas=3)).manifest("kubernetes:apps/v1:Deployment")[
        "spec"
    ]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["minReadySeconds"] > 0


def test_default_image_is_the_stock_haproxy_release_the_end_to_end_tests_run() -> None:
    """The tag is the LTS release tools/haproxy/build.sh fetches for the tests."""
    script = Path(__file__).parent.parent / "tools" / "haproxy" / "build.sh"
    pinned = re.search(
        r"^VERSION=\$\{OPSTRACE_HAPROXY_VERSION:-(\d+\.\d+\.\d+)\}$",
        script.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert pinned is not None
    name, _, reference = gateway_settings.DEFAULT_IMAGE.partition(":")
    tag, _, digest = reference.partition("@")
    assert name == "haproxy"
    assert tag == pinned[1]
    assert digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


DIGEST = "@sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "image",
    [
        gateway_settings.DEFAULT_IMAGE,
        "haproxy:3.4.7" + DIGEST,
        "haproxytech/haproxy-debian:3.2",
        "registry.example.org:5000/mirror/haproxy:2.6.12-bookworm" + DIGEST,
    ],
)
def test_an_image_with_a_version_is_accepted(image: str) -> None:
    assert gateway_settings.image_problem(image) is None


@pytest.mark.parametrize(
    "image",
    ["haproxy", "haproxy:latest", "haproxy" + DIGEST, "haproxy:latest" + DIGEST],
)
def test_an_image_without_a_version_is_refused(image: str) -> None:
    assert "does not pin a version" in str(gateway_settings.image_problem(image))


@pytest.mark.parametrize(
    "image", ["", "HAProxy:3.4", "haproxy:3.4 ", "haproxy:3.4@sha256:ABC", "haproxy:-3"]
)
def test_a_malformed_image_is_refused(image: str) -> None:
    assert "is not an image reference" in str(gateway_settings.image_problem(image))


def test_one_replica_is_refused(key_set: dict[str, str]) -> None:
    with pytest.raises(gateway_settings.GatewayConfigError, match=r"^replicas: 1 is too few"):
        Gateway("gw", gateway_args(key_set, replicas=1))


def test_settings_with_an_invalid_tenant_cannot_be_made() -> None:
    with pytest.raises(gateway_settings.GatewayConfigError, match=r"^tenants\[1\]: 'Prod'"):
        settings(("system", "Prod"))


def test_more_keys_than_a_config_map_holds_are_refused_naming_the_config_map() -> None:
    pems = [keys.stand_in_public_key(f"k{i}", 4096) for i in range(1400)]
    # One holder: every key in its one shard, which cannot hold them. The config check
    # refuses such keys first; this is the last guard.
    held = [
        BoundKey(pem, gateway_files.KeyEntry("", None, "prod/ci", holder="prod")) for pem in pems
    ]
    shard = key_shards.shard_of("prod")
    with pytest.raises(
        ValueError, match=rf"the gateway keys-{shard} ConfigMap would take \d+ bytes"
    ):
        deploy(gateway_args({}, keys=held))
