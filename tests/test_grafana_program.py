"""Each tenant's Grafana as the whole program registers it under Pulumi's mocks: bound
to its own tenant through the gateway with a read-only credential, its secrets in its
own namespace, its disk kept by `destroy` when data is kept. The chart's rendering is
checked by `make charts` (devtools/chart_check.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from pulumi.runtime import rpc

from opstrace import certificates, charts, data_token, grafana, names
from opstrace.gateway.settings import BINDINGS_MAP
from tests import key_documents
from tests.conftest import OPERATOR_DOMAIN, dev_config
from tools.offline import ProgramRun, Registration, cluster_ip, run_program
from tools.stack_files import stack_config

RELEASE = "kubernetes:helm.sh/v3:Release"
EXAMPLE_TENANTS = stack_config("example-prod")["opstrace:tenants"]
SECRET = "kubernetes:core/v1:Secret"


def in_namespace(run: ProgramRun, typ: str, namespace: str) -> list[Registration]:
    return [
        r
        for r in run.resources
        if r.type == typ
        and (r.inputs.get("metadata", {}).get("namespace") or r.inputs.get("namespace"))
        == namespace
    ]


def grafana_secret(run: ProgramRun, tenant: str) -> dict[str, Any]:
    (secret,) = in_namespace(run, SECRET, names.tenant_namespace(tenant))
    assert secret.inputs["metadata"]["name"] == grafana.SECRET
    data: dict[str, Any] = rpc.unwrap_rpc_secret(secret.inputs["stringData"])
    return data


def grafana_values(run: ProgramRun, tenant: str) -> dict[str, Any]:
    (found,) = in_namespace(run, RELEASE, names.tenant_namespace(tenant))
    assert (found.inputs["chart"], found.inputs["version"]) == ("grafana", charts.GRAFANA.version)
    values: dict[str, Any] = found.inputs["values"]
    return values


def test_each_tenants_grafana_is_a_release_in_its_own_namespace(dev_run: ProgramRun) -> None:
    releases = [
        r for r in dev_run.resources if r.type == RELEASE and r.inputs["chart"] == "grafana"
    ]
    assert sorted(r.inputs["namespace"] for r in releases) == [
        "prod-tenant",
        "staging-tenant",
        "system-tenant",
    ]
    assert all(not r.inputs["createNamespace"] for r in releases)


def test_a_grafanas_secret_holds_its_tenants_grafana_token_and_admin_password_as_secrets(
    minted_dev_run: ProgramRun,
) -> None:
    (secret,) = in_namespace(minted_dev_run, SECRET, "prod-tenant")
    assert rpc.is_rpc_secret(secret.inputs["stringData"])
    data = grafana_secret(minted_dev_run, "prod")
    tokens = rpc.unwrap_rpc_secret(minted_dev_run.stack_outputs["tokens"])
    assert data[grafana.TOKEN_KEY] == tokens["prod"][grafana.TOKEN_NAME]
    passwords = minted_dev_run.stack_outputs["grafana_admin_passwords"]
    assert rpc.is_rpc_secret(passwords)
    assert data[grafana.ADMIN_PASSWORD_KEY] == rpc.unwrap_rpc_secret(passwords)["prod"]
    assert data[grafana.ADMIN_USER_KEY] == grafana.ADMIN_USER
    assert grafana.CLIENT_SECRET_KEY not in data  # no single sign-on in the dev stack


def test_a_grafanas_token_reads_its_own_tenant_and_nothing_else(
    minted_dev_run: ProgramRun,
) -> None:
    # As the gateway decides it, from the trust store and the key bindings it serves.
    token = grafana_secret(minted_dev_run, "prod")[grafana.TOKEN_KEY]
    key_set = key_documents.key_set(minted_dev_run)
    gateway = key_documents.gateway_files(minted_dev_run)
    bindings = dict(line.split() for line in gateway[BINDINGS_MAP].splitlines())

    def decision(endpoint: str) -> data_token.Decision:
        return data_token.authenticate(
            f"Bearer {token}", endpoint, key_set, "dev-acme", int(time.time()), bindings
        )

    assert decision("prod") == data_token.Decision(200, tenant="prod")
    assert decision("staging") == data_token.Decision(401, data_token.BAD_TOKEN)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert sorted(claims["scope"].split()) == sorted(grafana.TOKEN_SCOPES)


def test_a_grafanas_data_sources_are_its_tenants_endpoints(dev_run: ProgramRun) -> None:
    provisioned = grafana_values(dev_run, "prod")["datasources"]["datasources.yaml"]
    urls = {d["type"]: d["url"] for d in provisioned["datasources"]}
    host = f"prod.dev-acme.{OPERATOR_DOMAIN}"
    assert urls == {
        "prometheus": f"https://cortex.{host}/prometheus",
        "loki": f"https://loki.{host}",
        "alertmanager": f"https://cortex.{host}",
    }


def test_a_tenants_certificate_carries_its_grafanas_host(dev_run: ProgramRun) -> None:
    certificate = next(r for r in dev_run.resources if r.name == "dev-acme-tenant-prod-certificate")
    assert f"grafana.prod.dev-acme.{OPERATOR_DOMAIN}" in certificate.inputs["spec"]["dnsNames"]


def test_a_grafanas_disk_outlives_destroy_when_data_is_kept() -> None:
    run = run_program(dev_config(keepDataOnDestroy=True), stack="dev")
    persistence = grafana_values(run, "prod")["persistence"]
    assert persistence["storageClassName"] == charts.RETAINED_STORAGE_CLASS
    classes = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in run.resources
        if r.type == "kubernetes:storage.k8s.io/v1:StorageClass"
    }
    assert classes[charts.RETAINED_STORAGE_CLASS]["reclaimPolicy"] == "Retain"
    assert classes[charts.STORAGE_CLASS]["reclaimPolicy"] == "Delete"


def test_a_grafanas_disk_goes_with_destroy_when_data_is_not_kept(dev_run: ProgramRun) -> None:
    run = dev_run  # the dev stack keeps no data
    assert grafana_values(run, "prod")["persistence"]["storageClassName"] == charts.STORAGE_CLASS
    assert charts.RETAINED_STORAGE_CLASS not in json.dumps([r.inputs for r in run.resources])


@pytest.fixture(scope="module")
def without_prods_grafana() -> ProgramRun:
    tenants = [{"name": "prod", "grafana": False}, "staging"]
    return run_program(dev_config(tenants=tenants), stack="dev")


def test_a_tenant_with_grafana_false_has_no_grafana_credential_or_host(
    without_prods_grafana: ProgramRun,
) -> None:
    run = without_prods_grafana
    assert not in_namespace(run, RELEASE, "prod-tenant")
    assert not in_namespace(run, SECRET, "prod-tenant")
    assert "dev-acme-tenant-prod-token-grafana" not in {r.name for r in run.resources}
    assert "grafana" not in run.stack_outputs["endpoints"]["prod"]
    certificate = next(r for r in run.resources if r.name == "dev-acme-tenant-prod-certificate")
    assert not [h for h in certificate.inputs["spec"]["dnsNames"] if h.startswith("grafana.")]
    assert sorted(rpc.unwrap_rpc_secret(run.stack_outputs["grafana_admin_passwords"])) == [
        "staging",
        "system",
    ]


def test_with_acme_staging_a_grafanas_data_sources_trust_the_staging_roots(
    dev_run: ProgramRun,
) -> None:
    provisioned = grafana_values(dev_run, "prod")["datasources"]["datasources.yaml"]
    for source in provisioned["datasources"]:
        assert source["jsonData"]["tlsAuthWithCACert"] is True
        assert source["secureJsonData"]["tlsCACert"] == certificates.STAGING_ROOTS


def test_with_a_public_ca_a_grafanas_data_sources_trust_the_system_roots_alone() -> None:
    run = run_program(dev_config(acmeStaging=False), stack="dev")
    provisioned = grafana_values(run, "prod")["datasources"]["datasources.yaml"]
    for source in provisioned["datasources"]:
        assert "tlsAuthWithCACert" not in source["jsonData"]
        assert "tlsCACert" not in source["secureJsonData"]


def test_a_grafana_reaches_its_tenants_hosts_at_the_gateways_in_cluster_service(
    dev_run: ProgramRun,
) -> None:
    aliases = grafana_values(dev_run, "prod")["hostAliases"]
    assert aliases == [
        {
            "ip": cluster_ip("dev-acme-gateway-internal"),
            "hostnames": [
                f"cortex.prod.dev-acme.{OPERATOR_DOMAIN}",
                f"loki.prod.dev-acme.{OPERATOR_DOMAIN}",
            ],
        }
    ]


@pytest.fixture(scope="module")
def example_prod() -> ProgramRun:
    """The production example as the plan runs it: its placeholders and the missing client
    secret are warnings there."""
    return run_program(stack_config("example-prod"), stack="example-prod", plan=True)


def test_the_production_example_plans_a_grafana_for_every_tenant(example_prod: ProgramRun) -> None:
    releases = [
        r for r in example_prod.resources if r.type == RELEASE and r.inputs["chart"] == "grafana"
    ]
    tenants = [spec if isinstance(spec, str) else spec["name"] for spec in EXAMPLE_TENANTS]
    assert sorted(r.inputs["namespace"] for r in releases) == sorted(
        names.tenant_namespace(t) for t in ("system", *tenants)
    )


def test_the_production_example_signs_in_through_its_provider_with_prods_roles(
    example_prod: ProgramRun,
) -> None:
    oauth = grafana_values(example_prod, "prod")["grafana.ini"]["auth.generic_oauth"]
    assert (oauth["enabled"], oauth["client_id"]) == (True, "opstrace-grafana")
    assert "contains(groups || `[]`, 'platform')) && 'Admin'" in oauth["role_attribute_path"]


def test_the_production_example_provisions_prods_dashboards_and_holds_the_client_secret(
    example_prod: ProgramRun,
) -> None:
    (dashboards_map,) = [
        r
        for r in in_namespace(example_prod, "kubernetes:core/v1:ConfigMap", "prod-tenant")
        if r.inputs["metadata"]["name"] == grafana.DASHBOARDS_CONFIG_MAP
    ]
    assert sorted(dashboards_map.inputs["data"]) == ["service-overview.json"]
    secret = next(r for r in in_namespace(example_prod, SECRET, "prod-tenant")).inputs["stringData"]
    assert rpc.is_rpc_secret(secret)
    assert sorted(rpc.unwrap_rpc_secret(secret)) == sorted(
        (
            grafana.TOKEN_KEY,
            grafana.ADMIN_USER_KEY,
            grafana.ADMIN_PASSWORD_KEY,
            grafana.CLIENT_SECRET_KEY,
        )
    )


def test_a_grafana_depends_on_no_other_tenants_certificate(dev_run: ProgramRun) -> None:
    # Through the gateway's key ConfigMaps it would: Pulumi's cycle check walks each
    # dependency's whole closure, so a plan would grow with the square of the tenants.
    by_urn = dev_run.by_urn()
    certificate = "kubernetes:cert-manager.io/v1:Certificate"
    for release in in_namespace(dev_run, RELEASE, "prod-tenant"):
        closure, todo = set(), list(release.dependencies)
        while todo:
            urn = todo.pop()
            if urn not in closure:
                closure.add(urn)
                todo += by_urn[urn].dependencies
        certificates = [by_urn[urn].name for urn in closure if by_urn[urn].type == certificate]
        assert [name for name in certificates if "-tenant-prod-" not in name] == []
