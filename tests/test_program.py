"""The whole program under Pulumi's mocks: what `pulumi up` registers for a stack."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import kubernetes_validate
import pytest
import yaml
from pulumi.runtime import rpc

from components import tenant as tenant_module
from devtools.chart_check import plain
from opstrace import key_shards, keys
from opstrace.config import platform
from opstrace.data_token import timestamp
from opstrace.gateway.settings import CREDENTIALS_MAP
from tests import key_documents
from tests.conftest import OPERATOR_DOMAIN, dev_config
from tests.leaks import PRIVATE_KEY_MARKER, leaked
from tools.offline import (
    AWS_OUTPUTS,
    PASSWORD_TYPE,
    TOKEN_TYPE,
    ProgramFailed,
    ProgramRun,
    Registration,
    run_program,
)

TENANTS = ("system", "prod", "staging")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def named(run: ProgramRun, name: str) -> Registration:
    (resource,) = [r for r in run.resources if r.name == name]
    return resource


def parent_name(run: ProgramRun, resource: Registration) -> str:
    return run.by_urn()[resource.parent].name if resource.parent else ""


def test_dev_stack_registers_the_instance_tree(dev_run: ProgramRun) -> None:
    tree = {(r.type, r.name, parent_name(dev_run, r)) for r in dev_run.resources}
    expected = {
        ("opstrace:index:Cluster", "dev-acme-cluster", ""),
        ("pulumi:providers:kubernetes", "kubernetes", ""),
        ("opstrace:index:Instance", "dev-acme", ""),
        ("pulumi-python:dynamic/opstrace:NameLock", "instance-name-lock", "dev-acme"),
        ("opstrace:index:Dns", "dev-acme-dns", "dev-acme"),
        ("aws:route53/zone:Zone", "dev-acme-dns-zone", "dev-acme-dns"),
        (
            "pulumi-python:dynamic/opstrace:DelegationCheck",
            "dev-acme-dns-delegation-check",
            "dev-acme-dns",
        ),
        ("opstrace:index:ClusterAddons", "dev-acme-addons", "dev-acme"),
        ("opstrace:index:TrustStore", "dev-acme-trust-store", "dev-acme"),
        ("opstrace:index:Gateway", "dev-acme-gateway", "dev-acme"),
        ("opstrace:index:Backends", "dev-acme-backends", "dev-acme"),
        ("opstrace:index:Telemetry", "dev-acme-telemetry", "dev-acme"),
        ("opstrace:index:Isolation", "dev-acme-isolation", "dev-acme"),
    }
    expected |= {
        (
            "kubernetes:core/v1:ConfigMap",
            f"dev-acme-trust-store-{role}-{shard}",
            "dev-acme-trust-store",
        )
        for role in ("keys", "jwks")
        for shard in key_shards.SHARDS
    }
    for tenant in TENANTS:
        component = f"dev-acme-tenant-{tenant}"
        expected |= {
            ("opstrace:index:Tenant", component, "dev-acme"),
            ("kubernetes:core/v1:Namespace", f"{component}-namespace", component),
            (TOKEN_TYPE, f"{component}-token-default", component),
            ("kubernetes:cert-manager.io/v1:Certificate", f"{component}-certificate", component),
            ("aws:route53/record:Record", f"dev-acme-dns-{tenant}-cortex", "dev-acme-dns"),
            ("aws:route53/record:Record", f"dev-acme-dns-{tenant}-loki", "dev-acme-dns"),
            # Its Grafana, reading with a credential of its own.
            (TOKEN_TYPE, f"{component}-token-grafana", component),
            ("opstrace:index:Grafana", f"{component}-grafana", component),
            (PASSWORD_TYPE, f"{component}-grafana-admin-password", f"{component}-grafana"),
            ("kubernetes:core/v1:Secret", f"{component}-grafana-secret", f"{component}-grafana"),
            (HELM_RELEASE, f"{component}-grafana-release", f"{component}-grafana"),
            ("aws:route53/record:Record", f"dev-acme-dns-{tenant}-grafana", "dev-acme-dns"),
        }
    expected.add((TOKEN_TYPE, "dev-acme-tenant-staging-token-ci", "dev-acme-tenant-staging"))
    # The system tenant's Grafana shows the instance's own dashboards.
    expected.add(
        (
            "kubernetes:core/v1:ConfigMap",
            "dev-acme-tenant-system-grafana-dashboards",
            "dev-acme-tenant-system-grafana",
        )
    )
    assert expected <= tree
    # Everything else belongs to the platform components (cluster, add-ons, backends,
    # telemetry) or the gateway.
    platform_parents = {
        name
        for typ, name, _ in tree
        if typ
        in {
            "opstrace:index:Cluster",
            "opstrace:index:Network",
            "opstrace:index:ClusterAddons",
            "opstrace:index:Backends",
            "opstrace:index:DataBucket",
            "opstrace:index:Telemetry",
            "opstrace:index:Gateway",
            "opstrace:index:Isolation",
        }
    }
    assert {t for t in tree - expected if t[2] not in platform_parents} == {
        ("opstrace:index:Network", "dev-acme-cluster-network", "dev-acme-cluster"),
    } - {t for t in tree - expected if t[2] in platform_parents}


def test_system_tenant_exists_though_config_does_not_list_it(dev_run: ProgramRun) -> None:
    namespace = named(dev_run, "dev-acme-tenant-system-namespace")
    assert namespace.inputs["metadata"]["name"] == "system-tenant"


def test_every_token_resource_registers_its_token_as_secret(dev_run: ProgramRun) -> None:
    tokens = [r for r in dev_run.resources if r.type == TOKEN_TYPE]
    assert len(tokens) == 7  # 4 listed or default, and each tenant's Grafana's
    assert all(r.additional_secret_outputs == ("token",) for r in tokens)


def test_tokens_stack_output_is_secret(dev_run: ProgramRun) -> None:
    assert rpc.is_rpc_secret(dev_run.stack_outputs["tokens"])


def test_tokens_stack_output_has_every_tenant_and_token_name(minted_dev_run: ProgramRun) -> None:
    tokens = rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["tokens"])
    assert {t: sorted(v) for t, v in tokens.items()} == {
        "system": ["default", "grafana"],
        "prod": ["default", "grafana"],
        "staging": ["ci", "default", "grafana"],
    }


def test_stack_outputs_name_the_instance_and_each_tenant_endpoint(dev_run: ProgramRun) -> None:
    outputs = dev_run.stack_outputs
    assert outputs["instance_dns_name"] == f"dev-acme.{OPERATOR_DOMAIN}"
    assert outputs["tenants"] == list(TENANTS)
    assert outputs["endpoints"]["prod"] == {
        "cortex": f"https://cortex.prod.dev-acme.{OPERATOR_DOMAIN}",
        "loki": f"https://loki.prod.dev-acme.{OPERATOR_DOMAIN}",
        "grafana": f"https://grafana.prod.dev-acme.{OPERATOR_DOMAIN}",
    }


def test_every_minted_token_verifies_against_a_trusted_key(minted_dev_run: ProgramRun) -> None:
    key_set = key_documents.key_set(minted_dev_run)
    tokens = rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["tokens"])
    for tenant, by_name in tokens.items():
        for token in by_name.values():
            kid = jwt.get_unverified_header(token)["kid"]
            claims = jwt.decode(
                token, key_set[kid], algorithms=["RS256"], audience="opstrace-cluster-dev-acme"
            )
            assert claims["sub"] == f"tenant-{tenant}"


def test_no_input_output_or_stack_output_holds_private_key_material(tmp_path: Path) -> None:
    # Exported keys are known to the test, so every form of their secrets is searched
    # for; the system tenant's key is dropped unseen, so its PEM marker is.
    tenants = [{"name": "prod", "exportKeysTo": str(tmp_path)}, "staging"]
    run = run_program(dev_config(tenants=tenants), stack="dev", tokens="minted")
    exported = [keys.load_private_key_file(path) for path in tmp_path.iterdir()]
    assert len(exported) == 1
    places = {f"{r.urn} inputs": r.inputs for r in run.resources}
    places |= {f"{r.urn} outputs": r.state for r in run.resources}
    places["stack outputs"] = run.stack_outputs
    for place, value in places.items():
        text = json.dumps(rpc.unwrap_rpc_secret(value), default=str)
        assert PRIVATE_KEY_MARKER not in text, place
        for key in exported:
            assert leaked(text, key) == [], place


def test_trust_store_holds_one_key_per_token_in_opstrace_format(dev_run: ProgramRun) -> None:
    key_set = key_documents.key_set(dev_run)
    assert sorted(key_set) == dev_run.stack_outputs["key_ids"]
    assert len(key_set) == 7


def test_each_key_is_in_one_trust_store_shard_that_of_its_credential(dev_run: ProgramRun) -> None:
    credentials = key_documents.gateway_files(dev_run)[CREDENTIALS_MAP]
    for line in credentials.splitlines():
        kid, names = line.split(" ")
        holder = names.split(",")[0] if "/" in names else kid
        assert key_documents.shards_holding(dev_run, {kid}) == {key_shards.shard_of(holder)}, line


def test_trust_store_jwks_has_the_key_set_ids(dev_run: ProgramRun) -> None:
    jwks = key_documents.jwks_keys(dev_run)
    assert sorted(k["kid"] for k in jwks) == sorted(key_documents.key_set(dev_run))


def test_trust_store_lives_in_the_system_namespace(dev_run: ProgramRun) -> None:
    for shard in key_shards.SHARDS:
        metadata = named(dev_run, f"dev-acme-trust-store-keys-{shard}").inputs["metadata"]
        assert (metadata["namespace"], metadata["name"]) == (
            "system-tenant",
            f"opstrace-trust-store-{shard}",
        )


def test_extra_trusted_key_joins_the_trust_store() -> None:
    extra = keys.public_key_pem(keys.generate_private_key(2048))
    run = run_program(dev_config(trustedKeys=[extra]), stack="dev")
    assert keys.key_id(extra) in run.stack_outputs["key_ids"]


def test_the_instances_nat_addresses_join_its_allowlist_for_the_system_tenant_only() -> None:
    run = run_program(dev_config(dataApiAllowedCidrs="203.0.113.0/24"), stack="dev")
    eip = "aws:ec2/eip:Eip"
    nat = [
        AWS_OUTPUTS[eip](r.name, r.inputs, "")["publicIp"] for r in run.resources if r.type == eip
    ]
    assert len(nat) == 1  # sizing small: one NAT gateway
    service = named(run, "dev-acme-gateway-service").inputs["spec"]
    assert service["loadBalancerSourceRanges"] == [f"{nat[0]}/32", "203.0.113.0/24"]
    allowed = named(run, "dev-acme-gateway-config").inputs["data"]["allowed-networks.map"]
    assert f"system@{nat[0]}/32 1" in allowed.splitlines()
    assert not [line for line in allowed.splitlines() if line.startswith(f"prod@{nat[0]}")]


def test_without_an_instance_allowlist_the_load_balancer_takes_every_address(
    dev_run: ProgramRun,
) -> None:
    service = named(dev_run, "dev-acme-gateway-service").inputs["spec"]
    assert "loadBalancerSourceRanges" not in service


def test_gateway_image_settings_name_the_images_of_haproxy_and_its_sidecar() -> None:
    digest = "@sha256:" + "0123456789abcdef" * 4
    image = "registry.example.org/mirror/haproxy:3.4.7" + digest
    sync_image = "registry.example.org/mirror/python:3.13.9-slim-trixie" + digest
    run = run_program(dev_config(gatewayImage=image, gatewaySyncImage=sync_image), stack="dev")
    pod = named(run, "dev-acme-gateway-deployment").inputs["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == [image]
    assert [c["image"] for c in pod["initContainers"]] == [sync_image]


def test_tenant_endpoint_records_alias_the_gateway_network_load_balancer(
    dev_run: ProgramRun,
) -> None:
    record = named(dev_run, "dev-acme-dns-prod-cortex").inputs
    service = next(r for r in dev_run.resources if r.type == "kubernetes:core/v1:Service")
    assert record["name"] == f"cortex.prod.dev-acme.{OPERATOR_DOMAIN}"
    assert record["type"] == "A"
    assert record["aliases"] == [
        {
            "name": service_hostname(service),
            "zoneId": "Z215JYRZR1TBD5",
            "evaluateTargetHealth": True,
        }
    ]


def test_records_are_cnames_when_the_load_balancer_is_not_an_nlb() -> None:
    run = run_program(existing_config(loadBalancer="generic"), stack="dev")
    record = named(run, "dev-acme-dns-prod-cortex").inputs
    service = next(r for r in run.resources if r.type == "kubernetes:core/v1:Service")
    assert (record["type"], record["records"]) == ("CNAME", [service_hostname(service)])


def service_hostname(service: Registration) -> str:
    """The address the load balancer reported in the Service's status."""
    return str(service.state["status"]["loadBalancer"]["ingress"][0]["hostname"])


def test_zone_is_delegated_only_when_a_parent_zone_is_set(dev_run: ProgramRun) -> None:
    assert not [r for r in dev_run.resources if r.name == "dev-acme-dns-delegation"]
    run = run_program(dev_config(parentZoneId="ZPARENT"), stack="dev")
    delegation = named(run, "dev-acme-dns-delegation").inputs
    assert (delegation["zoneId"], delegation["type"]) == ("ZPARENT", "NS")
    assert delegation["name"] == f"dev-acme.{OPERATOR_DOMAIN}"


RECORD = "aws:route53/record:Record"


def endpoint_records(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """Host -> inputs of its record, for every tenant endpoint record."""
    records = [r.inputs for r in run.resources if r.type == RECORD and r.inputs["type"] != "NS"]
    by_host = {record["name"]: record for record in records}
    assert len(by_host) == len(records), "two records for one host"
    return by_host


def test_every_endpoint_has_exactly_one_record_in_the_instance_zone(dev_run: ProgramRun) -> None:
    zone = next(r for r in dev_run.resources if r.type == "aws:route53/zone:Zone")
    hosts = {
        f"{service}.{tenant}.dev-acme.{OPERATOR_DOMAIN}"
        for tenant in TENANTS
        for service in ("cortex", "loki", "grafana")
    }
    records = endpoint_records(dev_run)
    assert set(records) == hosts
    assert {record["zoneId"] for record in records.values()} == {zone.state["zoneId"]}


def test_an_alias_record_has_no_ttl_and_no_values_of_its_own(dev_run: ProgramRun) -> None:
    # Route53 refuses a TTL or values on an alias record: the answer is the load
    # balancer's own A records, with their TTL.
    for host, record in endpoint_records(dev_run).items():
        assert record["type"] == "A", host
        assert "ttl" not in record, host
        assert "records" not in record, host
        assert len(record["aliases"]) == 1, host


def test_a_cname_record_names_only_the_load_balancer_for_a_minute() -> None:
    # A replaced load balancer (a new hostname) is picked up within a minute.
    run = run_program(existing_config(loadBalancer="generic"), stack="dev")
    service = next(r for r in run.resources if r.type == "kubernetes:core/v1:Service")
    for host, record in endpoint_records(run).items():
        assert (record["type"], record["ttl"], record["records"]) == (
            "CNAME",
            60,
            [service_hostname(service)],
        ), host


def test_the_delegation_names_the_zones_own_name_servers_for_an_hour() -> None:
    run = run_program(dev_config(parentZoneId="ZPARENT"), stack="dev")
    zone = next(r for r in run.resources if r.type == "aws:route53/zone:Zone")
    delegation = named(run, "dev-acme-dns-delegation").inputs
    assert (delegation["type"], delegation["ttl"]) == ("NS", 3600)
    assert delegation["name"] == zone.inputs["name"]
    assert delegation["records"] == zone.state["nameServers"]


def kubernetes_providers(run: ProgramRun) -> set[str]:
    """The provider references of every Kubernetes resource of a run."""
    return {r.provider for r in run.resources if r.type.startswith("kubernetes:") and r.custom}


def existing_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack moved into an existing EKS cluster (an operator's settings)."""
    settings = {
        "cluster": "existing",
        "eksClusterName": "platform",
        "certificateIssuer": "letsencrypt-dns01",
        "keepDataOnDestroy": None,
        "acmeStaging": None,
        **overrides,
    }
    return dev_config(**settings)


def test_one_explicit_kubernetes_provider_serves_every_kubernetes_resource(
    dev_run: ProgramRun,
) -> None:
    provider = named(dev_run, "kubernetes")
    assert provider.type == "pulumi:providers:kubernetes"
    assert kubernetes_providers(dev_run) == {f"{provider.urn}::{provider.id}"}


def test_eks_provider_is_built_from_the_cluster_the_program_made(dev_run: ProgramRun) -> None:
    inputs = named(dev_run, "kubernetes").inputs
    kubeconfig = yaml.safe_load(rpc.unwrap_rpc_secret(inputs["kubeconfig"]))
    assert rpc.is_rpc_secret(inputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        "dev-acme-cluster",
        "--region",
        "eu-central-1",
    ]


def test_without_kubeconfig_or_context_the_provider_uses_the_ambient_configuration() -> None:
    run = run_program(existing_config(), stack="dev")
    assert named(run, "kubernetes").inputs == {
        "clusterIdentifier": "opstrace-dev-acme",
        "enableConfigMapMutable": "true",
    }


def test_setting_a_kubeconfig_later_keeps_every_resource_on_the_same_provider() -> None:
    before = run_program(existing_config(), stack="dev")
    after = run_program(existing_config(kubeconfig="~/.kube/config"), stack="dev")
    assert kubernetes_providers(after) == kubernetes_providers(before)
    # As written: the provider expands `~` itself, so state is the same on every machine.
    assert named(after, "kubernetes").inputs["kubeconfig"] == "~/.kube/config"


def test_existing_cluster_is_checked_not_changed() -> None:
    run = run_program(existing_config(), stack="dev")
    types = {r.type for r in run.resources}
    assert not {t for t in types if t.startswith(("aws:eks", "aws:ec2"))}
    # The backends, telemetry and the tenants' Grafanas only: no add-on.
    releases = {
        r.inputs["chart"] for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"
    }
    assert releases == {"mimir-distributed", "loki", "alloy", "grafana"}


def test_invalid_config_stops_the_program_with_one_line_before_any_registration() -> None:
    record = ProgramRun()
    with pytest.raises(ProgramFailed) as raised:
        run_program(dev_config(tenants=["Prod"]), stack="dev", record=record)
    assert str(raised.value).startswith("tenants[0]: 'Prod' is not a valid tenant name")
    assert "\n" not in str(raised.value)
    assert record.resources == []


def test_invalid_config_is_reported_as_the_updates_one_error_and_the_program_bails() -> None:
    # Exit code 32 tells the language host that the operator has seen the error: the
    # CLI adds no "Program exited with non-zero exit code" line (tests/engine checks).
    record = ProgramRun()
    with pytest.raises(ProgramFailed):
        run_program(dev_config(tenants=["Prod"]), stack="dev", record=record)
    errors = [text for level, text in record.messages if level == "error"]
    assert len(errors) == 1
    assert errors[0].startswith("tenants[0]: 'Prod' is not a valid tenant name")


def test_a_key_shared_by_two_tenants_ends_the_update_with_one_line(tmp_path: Path) -> None:
    # Two copies of one keypair file: the same key would sign for two tenants. Only
    # minting reads the files, so the rule is checked on the minted keys.
    pem = keys.private_key_pem(keys.generate_private_key(2048))
    for name in ("a.pem", "b.pem"):
        (tmp_path / name).write_bytes(pem)
    tenants = [
        {"name": "prod", "signingKeyFile": str(tmp_path / "a.pem")},
        {"name": "staging", "signingKeyFile": str(tmp_path / "b.pem")},
    ]
    with pytest.raises(ProgramFailed) as raised:
        run_program(dev_config(tenants=tenants), stack="dev", tokens="minted")
    kid = keys.key_id(keys.public_key_pem(keys.load_private_key_file(tmp_path / "a.pem")))
    assert str(raised.value) == (
        f"key {kid} is bound to tenants 'prod' and 'staging': a key signs for one tenant, "
        "or (in trustedKeys without a tenant) for all"
    )


def test_dns_none_registers_no_aws_resource_and_lists_the_records_to_create() -> None:
    config = existing_config(
        dns="none",
        domain="example.com",
        loadBalancer="generic",
        cortexUrl="http://cortex.example.net:80",
        lokiUrl="http://loki.example.net:3100",
        **{"aws:region": None},
    )
    run = run_program(config, stack="dev")
    service = next(r for r in run.resources if r.type == "kubernetes:core/v1:Service")
    assert not [r for r in run.resources if r.type.startswith("aws:")]
    assert run.stack_outputs["dns_records"][:2] == [
        {
            "name": "cortex.system.dev-acme.example.com",
            "type": "CNAME",
            "value": service_hostname(service),
        },
        {
            "name": "loki.system.dev-acme.example.com",
            "type": "CNAME",
            "value": service_hostname(service),
        },
    ]
    # Each tenant's three: cortex, loki and grafana.
    assert len(run.stack_outputs["dns_records"]) == 9


def test_a_token_expiring_within_30_days_is_reported_by_every_run() -> None:
    run = run_program(dev_config(tokenLifetime="20d"), stack="dev")
    warnings = sorted(
        text for level, text in run.messages if level == "warning" and " expires at " in text
    )
    assert [text.split(" expires at ")[0] for text in warnings] == [
        "token 'ci' of tenant 'staging'",
        "token 'default' of tenant 'prod'",
        "token 'default' of tenant 'staging'",
        "token 'default' of tenant 'system'",
        # A Grafana whose token expires shows no data: its tenant's rotation renews it.
        "token 'grafana' of tenant 'prod'",
        "token 'grafana' of tenant 'staging'",
        "token 'grafana' of tenant 'system'",
    ]


def test_an_expired_token_is_reported_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The program checks expiry against its clock: a clock a year ahead sees them expired.
    later = time.time() + 366 * 86400
    monkeypatch.setattr(tenant_module, "time", SimpleNamespace(time=lambda: later))
    run = run_program(dev_config(), stack="dev")
    errors = [text for level, text in run.messages if level == "error"]
    assert len(errors) == 7
    assert all("every request with it gets 401" in text for text in errors)


def test_system_token_rotation_setting_replaces_the_system_token_and_its_key(
    dev_run: ProgramRun,
) -> None:
    after = run_program(dev_config(systemTokenRotation="2026-11"), stack="dev")
    assert change(dev_run, after).changed == {
        "dev-acme-tenant-system-token-default",
        *key_derived(dev_run, after),
        "dev-acme-tenant-system-token-grafana",
        "dev-acme-tenant-system-grafana-release",
    }


def test_token_expiry_is_a_plain_output_per_tenant_and_token(dev_run: ProgramRun) -> None:
    expiry = dev_run.stack_outputs["token_expiry"]
    assert not rpc.is_rpc_secret(expiry)
    assert {t: sorted(v) for t, v in expiry.items()} == {
        "system": ["default", "grafana"],
        "prod": ["default", "grafana"],
        "staging": ["ci", "default", "grafana"],
    }
    for tenant, by_token in expiry.items():
        for token_name, when in by_token.items():
            state = named(dev_run, f"dev-acme-tenant-{tenant}-token-{token_name}").state
            assert when == timestamp(int(state["expires_at"]))


def comparable(resource: Registration) -> Any:
    return json.dumps(rpc.unwrap_rpc_secret(resource.inputs), sort_keys=True, default=str)


@dataclass(frozen=True)
class Change:
    """What `pulumi up` would do going from one run's registrations to another's."""

    added: set[str]
    removed: set[str]
    changed: set[str]
    """Custom resources present in both runs whose inputs differ."""


def change(before: ProgramRun, after: ProgramRun) -> Change:
    old, new = before.by_urn(), after.by_urn()
    return Change(
        added={new[urn].name for urn in new.keys() - old.keys()},
        removed={old[urn].name for urn in old.keys() - new.keys()},
        changed={
            old[urn].name
            for urn in old.keys() & new.keys()
            if old[urn].custom and comparable(old[urn]) != comparable(new[urn])
        },
    )


def run_with_tenants(*tenants: Any) -> ProgramRun:
    return run_program(dev_config(tenants=list(tenants)), stack="dev")


def tenant_resources(tenant: str) -> set[str]:
    """Everything a user tenant with one token adds: component, namespace, token,
    certificate, its three DNS records, the policy that closes its namespace; its Grafana
    (its credential, admin password, Secret and release) and the two policies that let
    the gateway alone reach it and it reach the gateway alone."""
    component = f"dev-acme-tenant-{tenant}"
    return {
        component,
        f"{component}-namespace",
        f"{component}-token-default",
        f"{component}-certificate",
        f"dev-acme-dns-{tenant}-cortex",
        f"dev-acme-dns-{tenant}-loki",
        f"dev-acme-isolation-{tenant}-tenant-deny-ingress",
        f"{component}-token-grafana",
        f"{component}-grafana",
        f"{component}-grafana-admin-password",
        f"{component}-grafana-secret",
        f"{component}-grafana-release",
        f"dev-acme-dns-{tenant}-grafana",
        f"dev-acme-isolation-{tenant}-tenant-grafana-from-gateway",
        f"dev-acme-isolation-{tenant}-tenant-grafana-egress",
    }


def key_derived(before: ProgramRun, after: ProgramRun) -> set[str]:
    """What a key change may touch: the shards of the keys added or removed (the trust
    store's two and the gateway's), the gateway's configuration (which names every
    shard's part) and the wait for the pods to serve them. Never the other shards, and
    never the gateway's Deployment: no pod rolls."""
    moved = set(before.stack_outputs["key_ids"]) ^ set(after.stack_outputs["key_ids"])
    assert moved, "no key changed"
    shards = key_documents.shards_holding(before, moved) | key_documents.shards_holding(
        after, moved
    )
    return {"dev-acme-gateway-config", "dev-acme-gateway-rollout"} | {
        name
        for shard in shards
        for name in (
            f"dev-acme-trust-store-keys-{shard}",
            f"dev-acme-trust-store-jwks-{shard}",
            f"dev-acme-gateway-keys-{shard}",
        )
    }


def tenant_derived(before: ProgramRun, after: ProgramRun) -> set[str]:
    """What a tenant change may touch: the key-derived objects of its keys, and the
    policy that names the tenants' namespaces whose Grafanas may reach the gateway's
    in-cluster door."""
    return key_derived(before, after) | {"dev-acme-isolation-system-tenant-internal-listener"}


STAGING = {"name": "staging", "tokens": ["default", "ci"]}


def test_appending_a_tenant_adds_its_resources_and_changes_only_key_derived_ones(
    dev_run: ProgramRun,
) -> None:
    after = run_with_tenants("prod", STAGING, "qa")
    assert change(dev_run, after) == Change(
        tenant_resources("qa"), set(), tenant_derived(dev_run, after)
    )


def test_inserting_a_tenant_mid_list_changes_no_other_tenants_resources(
    dev_run: ProgramRun,
) -> None:
    after = run_with_tenants("qa", "prod", STAGING)
    assert change(dev_run, after) == Change(
        tenant_resources("qa"), set(), tenant_derived(dev_run, after)
    )


def test_removing_a_tenant_mid_list_removes_only_its_resources() -> None:
    before = run_with_tenants("prod", "qa", STAGING)
    after = run_with_tenants("prod", STAGING)
    assert change(before, after) == Change(
        set(), tenant_resources("qa"), tenant_derived(before, after)
    )


def test_reordering_tenants_changes_nothing(dev_run: ProgramRun) -> None:
    after = run_with_tenants(STAGING, "prod")
    assert change(dev_run, after) == Change(set(), set(), set())


def test_rotating_a_token_changes_only_it_and_the_key_derived_files(dev_run: ProgramRun) -> None:
    # Also guards the guards above: a rotation must show as a change of its token.
    after = run_with_tenants({"name": "prod", "rotation": "r1"}, STAGING)
    assert change(dev_run, after).changed == {
        "dev-acme-tenant-prod-token-default",
        *key_derived(dev_run, after),
        # Its Grafana's credential too, which restarts its Grafana with the new token.
        "dev-acme-tenant-prod-token-grafana",
        "dev-acme-tenant-prod-grafana-release",
    }


KUBERNETES_VERSION = "1.33.0"
"""An EKS-supported Kubernetes version the manifests are checked against."""


BUILT_IN_GROUPS = ("core/", "apps/", "policy/", "storage.k8s.io/", "networking.k8s.io/")
"""API groups the Kubernetes schema describes (not Helm releases or cert-manager's CRDs)."""


@pytest.mark.parametrize("version", platform.KUBERNETES_VERSIONS)
@pytest.mark.parametrize("stack", ["eks", "existing"])
def test_every_built_in_kubernetes_object_is_valid_for_every_supported_version(
    dev_run: ProgramRun, stack: str, version: str
) -> None:
    run = dev_run if stack == "eks" else run_program(existing_config(), stack="dev")
    objects = [
        r
        for r in run.resources
        if r.custom and r.type.removeprefix("kubernetes:").startswith(BUILT_IN_GROUPS)
    ]
    kinds = {r.type.split(":")[-1] for r in objects}
    assert kinds >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for resource in objects:
        kubernetes_validate.validate(plain(resource.inputs), f"{version}.0", strict=True)
