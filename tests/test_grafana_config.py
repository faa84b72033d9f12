"""The Grafana settings of a stack as the program reads them: who has a Grafana, its
read-only credential, its login and roles, its dashboards. The refusals are rows of
tests/test_broken_stacks.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opstrace import grafana, names, system_dashboards
from opstrace.config.parse import parse_config
from opstrace.config.schema import InstanceConfig
from opstrace.gateway.settings import DEFAULT_INTERNAL_LISTEN
from opstrace.grafana import RoleGrant, SingleSignOn

PROJECT_DIR = Path(__file__).resolve().parent.parent
SSO = {
    "name": "Okta",
    "authUrl": "https://idp.acme.dev/oauth2/v1/authorize",
    "tokenUrl": "https://idp.acme.dev/oauth2/v1/token",
    "apiUrl": "https://idp.acme.dev/oauth2/v1/userinfo",
    "clientId": "opstrace",
}


def parse(**overrides: Any) -> InstanceConfig:
    raw: dict[str, Any] = {
        "instanceName": "acme",
        "domain": "acme.dev",
        "tenants": ["prod"],
        **overrides,
    }
    return parse_config(raw, base_dir=PROJECT_DIR, aws_region="eu-central-1")


def test_every_tenant_and_the_system_tenant_have_a_grafana_by_default() -> None:
    config = parse(tenants=["prod", "ci"])
    assert [(t.name, t.grafana.enabled) for t in config.tenants] == [
        ("system", True),
        ("prod", True),
        ("ci", True),
    ]


def test_a_tenants_grafana_reads_with_a_credential_of_its_own_with_read_scopes_only() -> None:
    *listed, credential = parse().tenants[1].tokens
    assert [t.name for t in listed] == [names.DEFAULT_TOKEN_NAME]
    assert credential.name == grafana.TOKEN_NAME
    assert credential.scopes == ("metrics:read", "logs:read", "rules:read", "alerts:read")
    assert credential.rate_limit == 0


def test_the_grafana_credential_rotates_with_the_tenant_but_is_never_exported() -> None:
    entry = {"name": "prod", "rotation": "2026-12", "exportKeysTo": "keys"}
    credential = parse(tenants=[entry]).tenants[1].tokens[-1]
    assert (credential.rotation, credential.export_keys_to, credential.signing_key_file) == (
        "2026-12",
        "",
        "",
    )


def test_the_system_tenants_grafana_credential_rotates_with_the_system_token() -> None:
    system = parse(systemTokenRotation="r2").tenants[0]
    assert [(t.name, t.rotation) for t in system.tokens] == [("default", "r2"), ("grafana", "r2")]


def test_grafana_false_on_a_tenant_leaves_out_its_grafana_and_its_credential() -> None:
    tenant = parse(tenants=[{"name": "prod", "grafana": False}]).tenants[1]
    assert not tenant.grafana.enabled
    assert [t.name for t in tenant.tokens] == ["default"]


def test_a_tenant_without_a_grafana_may_name_a_token_grafana() -> None:
    tenant = parse(tenants=[{"name": "prod", "tokens": ["grafana"], "grafana": False}]).tenants[1]
    assert [t.name for t in tenant.tokens] == ["grafana"]


def test_the_instances_grafana_false_leaves_out_every_grafana() -> None:
    config = parse(grafana=False, tenants=["prod", "ci"])
    assert not any(t.grafana.enabled for t in config.tenants)
    assert all(grafana.TOKEN_NAME not in {k.name for k in t.tokens} for t in config.tenants)


def test_role_grants_are_read_and_kept_highest_last() -> None:
    roles = {
        "Admin": {"groups": ["ops"]},
        "Viewer": {"emailDomains": ["acme.dev"]},
        "Editor": {"groups": ["developers", "sre"], "emailDomains": ["partner.org"]},
    }
    tenant = parse(tenants=[{"name": "prod", "grafana": {"roles": roles}}]).tenants[1]
    assert tenant.grafana.roles == (
        RoleGrant("Viewer", (), ("acme.dev",)),
        RoleGrant("Editor", ("developers", "sre"), ("partner.org",)),
        RoleGrant("Admin", ("ops",), ()),
    )


def test_a_grafana_keeps_10_gib_unless_the_tenant_says() -> None:
    config = parse(tenants=["prod", {"name": "ci", "grafana": {"storageGi": 50}}])
    assert [t.grafana.storage_gib for t in config.tenants[1:]] == [10, 50]


def test_a_folder_of_dashboards_is_read_in_name_order(tmp_path: Path) -> None:
    for name, title in (("b.json", "Latency"), ("a.json", "Errors")):
        (tmp_path / name).write_text(json.dumps({"title": title, "uid": name[0], "panels": []}))
    (tmp_path / "notes.txt").write_text("not a dashboard")
    entry = {"name": "prod", "grafana": {"dashboards": str(tmp_path)}}
    boards = parse(tenants=[entry]).tenants[1].grafana.dashboards
    assert [(b.uid, b.title) for b in boards] == [("a", "Errors"), ("b", "Latency")]


def test_the_system_tenants_grafana_has_the_instances_own_dashboards() -> None:
    system = parse().tenants[0]
    assert system.grafana.dashboards == system_dashboards.system_dashboards()


def test_the_system_tenants_roles_are_their_own_setting() -> None:
    config = parse(systemGrafanaRoles={"Admin": {"groups": ["platform"]}})
    assert config.tenants[0].grafana.roles == (RoleGrant("Admin", ("platform",), ()),)
    assert config.tenants[1].grafana.roles == ()


def test_single_sign_on_is_read_with_its_client_secret_kept_out_of_the_configs_repr() -> None:
    config = parse(grafanaSso=SSO, grafanaClientSecret="s3cret")
    assert config.grafana_sso == SingleSignOn(
        name="Okta",
        auth_url=SSO["authUrl"],
        token_url=SSO["tokenUrl"],
        api_url=SSO["apiUrl"],
        client_id="opstrace",
    )
    assert config.grafana_client_secret == "s3cret"
    assert "s3cret" not in repr(config)


def test_without_single_sign_on_only_each_grafanas_admin_logs_in() -> None:
    config = parse()
    assert (config.grafana_sso, config.grafana_client_secret) == (None, "")


def test_the_gateway_serves_each_grafana_host_and_opens_its_in_cluster_door() -> None:
    gateway = parse(tenants=["prod", {"name": "ci", "grafana": False}]).gateway
    assert dict(gateway.grafana_urls) == {
        "system": "http://grafana.system-tenant.svc.cluster.local:80",
        "prod": "http://grafana.prod-tenant.svc.cluster.local:80",
    }
    assert gateway.internal_listen == DEFAULT_INTERNAL_LISTEN


def test_without_any_grafana_the_gateway_has_no_in_cluster_door() -> None:
    gateway = parse(grafana=False).gateway
    assert (dict(gateway.grafana_urls), gateway.internal_listen) == ({}, None)
