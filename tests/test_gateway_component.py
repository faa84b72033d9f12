"""The Gateway component under Pulumi's mocks: what it registers, and that it is valid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pytest

from components.gateway import (
    CHECKSUM_ANNOTATION,
    NLB_ANNOTATIONS,
    Gateway,
    GatewayArgs,
    deployment_manifest,
    gateway_labels,
    gateway_settings,
)
from components.rules import gateway_config, keys
from tools.offline import ProgramRun, Registration, run_components

KUBERNETES_VERSION = "1.30.0"


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


def deploy(args: GatewayArgs) -> Deployed:
    """Construct a Gateway named `gw` under mocks and wait for every registration."""
    outputs: dict[str, str] = {}

    def program() -> None:
        gateway = Gateway("gw", args)
        pulumi.Output.all(gateway.load_balancer_hostname, gateway.config_checksum).apply(
            lambda values: outputs.update(hostname=values[0], checksum=values[1])
        )

    return Deployed(run_components(program), outputs)


@pytest.fixture(scope="module")
def key_set() -> dict[str, str]:
    pems = [keys.public_key_pem(keys.generate_private_key(2048)) for _ in range(2)]
    return keys.key_set(pems)


def gateway_args(key_set: Mapping[str, str], **overrides: Any) -> GatewayArgs:
    args = GatewayArgs(
        instance="acme",
        domain="example.com",
        tenants=["system", "prod"],
        key_set=key_set,
        namespace="system-tenant",
        cortex_url="http://cortex-gateway.cortex.svc.cluster.local:80",
        loki_url="http://loki-gateway.loki.svc.cluster.local:80",
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
        ("opstrace:index:Gateway$kubernetes:core/v1:ConfigMap", "gw-config"),
        ("opstrace:index:Gateway$kubernetes:core/v1:ConfigMap", "gw-keys"),
        ("opstrace:index:Gateway$kubernetes:apps/v1:Deployment", "gw-deployment"),
        ("opstrace:index:Gateway$kubernetes:policy/v1:PodDisruptionBudget", "gw-pdb"),
        ("opstrace:index:Gateway$kubernetes:core/v1:Service", "gw-service"),
    }


def test_load_balancer_hostname_comes_from_the_service_status(deployed: Deployed) -> None:
    status = deployed.registration("kubernetes:core/v1:Service").state["status"]
    assert deployed.outputs["hostname"] == status["loadBalancer"]["ingress"][0]["hostname"]


def test_config_maps_hold_exactly_the_rendered_files_keys_apart(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    files = gateway_config.render_gateway_files(gateway_settings(gateway_args(key_set)), key_set)
    key_files = {name: content for name, content in files.items() if name.startswith("key-")}
    config_maps = deployed.config_maps()
    assert len(key_files) == len(key_set)
    assert config_maps["gw-keys"]["data"] == key_files
    assert config_maps["gw-config"]["data"] == {
        name: content for name, content in files.items() if name not in key_files
    }


def test_pod_template_annotation_is_the_checksum_of_the_rendered_files(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    files = gateway_config.render_gateway_files(gateway_settings(gateway_args(key_set)), key_set)
    template = deployed.manifest("kubernetes:apps/v1:Deployment")["spec"]["template"]
    assert deployed.outputs["checksum"] == gateway_config.config_checksum(files)
    assert template["metadata"]["annotations"] == {
        CHECKSUM_ANNOTATION: deployed.outputs["checksum"]
    }


def test_removing_a_key_changes_the_checksum_annotation(
    deployed: Deployed, key_set: dict[str, str]
) -> None:
    fewer = dict(list(key_set.items())[:1])
    after = deploy(gateway_args(fewer))
    template = after.manifest("kubernetes:apps/v1:Deployment")["spec"]["template"]
    assert after.outputs["checksum"] != deployed.outputs["checksum"]
    assert template["metadata"]["annotations"] == {CHECKSUM_ANNOTATION: after.outputs["checksum"]}


def test_deployment_mounts_both_registered_config_maps_read_only_in_one_directory(
    deployed: Deployed,
) -> None:
    names = [
        deployed.registration("kubernetes:core/v1:ConfigMap", name).state["metadata"]["name"]
        for name in ("gw-config", "gw-keys")
    ]
    pod = deployed.manifest("kubernetes:apps/v1:Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert volumes["config"]["projected"] == {
        "sources": [{"configMap": {"name": name}} for name in names]
    }
    assert mounts["config"] == {
        "name": "config",
        "mountPath": gateway_config.DEFAULT_CONFIG_DIR,
        "readOnly": True,
    }


def test_service_is_an_internet_facing_nlb_to_pod_ips(deployed: Deployed) -> None:
    service = deployed.manifest("kubernetes:core/v1:Service")
    annotations = service["metadata"]["annotations"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert annotations == NLB_ANNOTATIONS


def test_pod_disruption_budget_keeps_one_pod_of_the_deployment(deployed: Deployed) -> None:
    pdb = deployed.manifest("kubernetes:policy/v1:PodDisruptionBudget")["spec"]
    deployment = deployed.manifest("kubernetes:apps/v1:Deployment")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"] == deployment["selector"]


def test_every_registered_manifest_is_valid_against_the_kubernetes_schema(
    deployed: Deployed,
) -> None:
    objects = [r for r in deployed.run.resources if r.type.startswith("kubernetes:")]
    assert len(objects) == 5
    for resource in objects:
        manifest = {**resource.inputs, **_api_version_and_kind(resource.type)}
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def _api_version_and_kind(typ: str) -> dict[str, str]:
    group_version, kind = typ.removeprefix("kubernetes:").rsplit(":", 1)
    group, version = group_version.split("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind}


def test_pod_runs_hardened() -> None:
    pod = deployment_manifest("ns", gateway_labels("acme"), "cm", "0" * 64, 2, "haproxy:x")["spec"][
        "template"
    ]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_pod_has_resource_requests_and_limits() -> None:
    container = deployment_manifest("ns", gateway_labels("acme"), "cm", "0" * 64, 2, "img")["spec"][
        "template"
    ]["spec"]["containers"][0]
    assert set(container["resources"]) == {"requests", "limits"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_probes_use_the_health_endpoint_of_the_rendered_config() -> None:
    container = deployment_manifest("ns", gateway_labels("acme"), "cm", "0" * 64, 2, "img")["spec"][
        "template"
    ]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = gateway_settings(gateway_args({}))
    assert settings.health_listen == f"0.0.0.0:{ports['health']}"
    assert settings.listen == f"0.0.0.0:{ports['http']}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {
            "path": gateway_config.HEALTH_PATH,
            "port": "health",
        }


def test_rollout_never_drops_below_the_desired_replicas() -> None:
    spec = deployment_manifest("ns", gateway_labels("acme"), "cm", "0" * 64, 3, "img")["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_default_image_is_the_stock_haproxy_release_the_end_to_end_tests_run() -> None:
    """The tag is the LTS release tools/haproxy/build.sh fetches for `make e2e-haproxy`."""
    script = Path(__file__).parent.parent / "tools" / "haproxy" / "build.sh"
    pinned = re.search(
        r"^VERSION=\$\{OPSTRACE_HAPROXY_VERSION:-(\d+\.\d+\.\d+)\}$",
        script.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert pinned is not None
    name, _, reference = GatewayArgs.image.partition(":")
    tag, _, digest = reference.partition("@")
    assert name == "haproxy"
    assert tag == pinned[1]
    assert digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_one_replica_is_refused(key_set: dict[str, str]) -> None:
    with pytest.raises(gateway_config.GatewayConfigError, match=r"^replicas: 1 is too few"):
        Gateway("gw", gateway_args(key_set, replicas=1))


def test_invalid_tenant_is_refused_at_construction(key_set: dict[str, str]) -> None:
    with pytest.raises(gateway_config.GatewayConfigError, match=r"^tenants\[1\]: 'Prod'"):
        Gateway("gw", gateway_args(key_set, tenants=["system", "Prod"]))


def test_more_keys_than_a_config_map_holds_are_refused_naming_the_config_map() -> None:
    many = keys.key_set(keys.stand_in_public_key(f"k{i}", 4096) for i in range(1400))
    # The config check refuses such a key set first; this is the last guard.
    with pytest.raises(ValueError, match=r"the gateway keys ConfigMap would take \d+ bytes"):
        deploy(gateway_args(many))
