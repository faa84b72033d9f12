"""A tenant's Grafana as its chart is given it (`chart_values.grafana_values`), and what
`make charts` checks of its render (`devtools.chart_wiring.grafana_problems`).

The values are read as the grafana chart (`charts.GRAFANA`) and Grafana read them: the
chart's keys, then Grafana's configuration sections (`grafana.ini`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

import jmespath
import pytest

from devtools import chart_check
from devtools import chart_wiring as wiring
from opstrace import chart_images, chart_values, charts, grafana, names
from opstrace.grafana import GrafanaRelease, RoleGrant, SingleSignOn

TENANT, INSTANCE, DOMAIN = "prod", "dev-acme", "observability.acme.dev"
SSO = SingleSignOn(
    "Acme SSO",
    "https://sso.acme.dev/oauth2/authorize",
    "https://sso.acme.dev/oauth2/token",
    "https://sso.acme.dev/oauth2/userinfo",
    "grafana-prod",
)
ROLES = (
    RoleGrant("Admin", groups=("ops",)),
    RoleGrant("Editor", groups=("developers",)),
    RoleGrant("Viewer", email_domains=("acme.dev",)),
)
HOSTS = names.endpoint_hosts(TENANT, INSTANCE, DOMAIN)
RELEASE = GrafanaRelease(
    tenant=TENANT,
    root_url=f"https://grafana.{TENANT}.{INSTANCE}.{DOMAIN}",
    datasources=grafana.datasources(TENANT, INSTANCE, DOMAIN),
    sso=SSO,
    roles=ROLES,
    storage_class="gp3",
    storage_gib=10,
    gateway_address="10.100.0.10",
    data_api_hosts=HOSTS,
    dashboard_files=("overview.json",),
    secret_version="key-1:password-1",
)
WITHOUT_SSO = replace(RELEASE, sso=None, roles=())


def values(release: GrafanaRelease = RELEASE) -> dict[str, Any]:
    return chart_values.grafana_values(release)


def ini(release: GrafanaRelease = RELEASE) -> dict[str, Any]:
    config: dict[str, Any] = values(release)["grafana.ini"]
    return config


def secret_ref(key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": grafana.SECRET, "key": key}}


# The chart and its pin ----------------------------------------------------------------


def test_grafana_is_a_chart_installed_in_each_tenants_namespace_not_the_instances() -> None:
    assert charts.GRAFANA in charts.ALL_CHARTS
    assert charts.GRAFANA.per_tenant
    assert charts.TENANT_CHARTS == (charts.GRAFANA,)
    assert charts.GRAFANA not in charts.INSTANCE_CHARTS
    assert not any(c.per_tenant for c in charts.INSTANCE_CHARTS)


def test_a_per_tenant_charts_namespace_placeholder_is_no_namespace_kubernetes_takes() -> None:
    # A release given it by mistake is refused instead of landing in a namespace of its own.
    assert names.tenant_namespace("<tenant>") == charts.PER_TENANT
    assert not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", charts.PER_TENANT)


def test_the_grafana_release_is_named_as_its_service_and_its_chart_from_the_community_repo() -> (
    None
):
    assert charts.GRAFANA.release == grafana.RELEASE
    assert charts.GRAFANA.repository == charts.LOKI.repository
    assert charts.GRAFANA.source.repository == charts.LOKI.source.repository


def test_grafana_runs_the_image_of_its_pinned_charts_app_version_mirrored() -> None:
    (image,) = chart_images.image_values(charts.GRAFANA.name, {})
    assert image == {
        "image": {"registry": "docker.io", "repository": "grafana/grafana", "tag": "13.2.0"}
    }
    mirrors = {"docker.io": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub"}
    assert chart_images.expected_images(charts.GRAFANA.name, mirrors) == {
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub/grafana/grafana:13.2.0"
    }


# Secrets ---------------------------------------------------------------------------------


def test_grafana_reads_its_admin_password_from_the_tenant_secret() -> None:
    assert values()["admin"] == {
        "existingSecret": grafana.SECRET,
        "userKey": grafana.ADMIN_USER_KEY,
        "passwordKey": grafana.ADMIN_PASSWORD_KEY,
    }
    assert "adminPassword" not in values()


def test_grafana_reads_its_data_token_from_the_tenant_secret_into_the_token_variable() -> None:
    assert values(WITHOUT_SSO)["envValueFrom"] == {grafana.TOKEN_ENV: secret_ref(grafana.TOKEN_KEY)}


def test_grafana_reads_the_sso_client_secret_from_the_tenant_secret_not_its_config() -> None:
    env = values()["envValueFrom"]
    assert env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"] == secret_ref(grafana.CLIENT_SECRET_KEY)
    assert "client_secret" not in ini()["auth.generic_oauth"]


def test_no_secret_is_written_in_grafanas_values() -> None:
    text = str(values())
    for leaked in ("password", "client_secret"):
        assert f"'{leaked}'" not in text
    assert "env" not in values()
    assert "envRenderSecret" not in values()


def test_a_new_secret_version_changes_grafanas_pod_template_so_that_it_restarts() -> None:
    annotation = chart_values.GRAFANA_SECRET_VERSION_ANNOTATION
    assert values()["podAnnotations"] == {annotation: "key-1:password-1"}
    changed = values(replace(RELEASE, secret_version="key-2:password-1"))
    assert changed["podAnnotations"][annotation] != values()["podAnnotations"][annotation]


# Who gets in --------------------------------------------------------------------------


def test_grafana_serves_its_public_address_and_names_its_host() -> None:
    assert ini()["server"] == {
        "root_url": "https://grafana.prod.dev-acme.observability.acme.dev",
        "domain": "grafana.prod.dev-acme.observability.acme.dev",
    }


def test_grafanas_session_cookie_travels_over_https_only_and_not_cross_site() -> None:
    security = ini()["security"]
    assert security["cookie_secure"] is True
    assert security["cookie_samesite"] == "lax"
    assert security["strict_transport_security"] is True


def test_grafana_is_not_framed_by_other_sites_and_calls_no_gravatar() -> None:
    security = ini()["security"]
    assert security["allow_embedding"] is False
    assert security["disable_gravatar"] is True


def test_anonymous_users_get_nothing_from_grafana() -> None:
    assert ini()["auth.anonymous"] == {"enabled": False}
    assert ini(WITHOUT_SSO)["auth.anonymous"] == {"enabled": False}


def test_nobody_signs_up_from_the_login_page_or_makes_an_organization() -> None:
    assert ini()["users"] == {"allow_sign_up": False, "allow_org_create": False}


def test_grafana_reports_nothing_home_and_checks_no_updates() -> None:
    assert ini()["analytics"] == {
        "reporting_enabled": False,
        "check_for_updates": False,
        "check_for_plugin_updates": False,
    }
    assert ini()["news"] == {"news_feed_enabled": False}


def test_without_single_sign_on_only_the_admin_logs_in() -> None:
    assert "auth.generic_oauth" not in ini(WITHOUT_SSO)
    assert "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET" not in values(WITHOUT_SSO)["envValueFrom"]


def test_single_sign_on_is_the_providers_generic_oauth_with_pkce() -> None:
    oauth = ini()["auth.generic_oauth"]
    assert {k: oauth[k] for k in ("enabled", "name", "client_id", "scopes", "use_pkce")} == {
        "enabled": True,
        "name": "Acme SSO",
        "client_id": "grafana-prod",
        "scopes": "openid email profile",
        "use_pkce": True,
    }
    assert (oauth["auth_url"], oauth["token_url"], oauth["api_url"]) == (
        SSO.auth_url,
        SSO.token_url,
        SSO.api_url,
    )
    assert oauth["groups_attribute_path"] == "groups"


def test_a_single_sign_on_user_gets_the_role_the_tenants_grants_map_or_is_refused() -> None:
    oauth = ini()["auth.generic_oauth"]
    assert oauth["role_attribute_path"] == grafana.role_attribute_path(ROLES, "groups")
    assert oauth["role_attribute_strict"] is True
    # A mapped user's account is made at their first login, their role synced at each.
    assert oauth["allow_sign_up"] is True
    assert oauth["skip_org_role_sync"] is False


def test_no_single_sign_on_user_becomes_grafana_server_admin() -> None:
    assert ini()["auth.generic_oauth"]["allow_assign_grafana_admin"] is False


def test_with_no_role_grants_every_single_sign_on_user_is_refused() -> None:
    oauth = ini(replace(RELEASE, roles=()))["auth.generic_oauth"]
    # '' is no role; strict, Grafana refuses the login instead of giving a default role.
    assert oauth["role_attribute_path"] == "''"
    assert oauth["role_attribute_strict"] is True


def test_the_role_mapping_reads_the_providers_groups_where_it_puts_them() -> None:
    sso = replace(SSO, groups_attribute_path="realm_access.roles")
    oauth = ini(replace(RELEASE, sso=sso))["auth.generic_oauth"]
    assert "contains(realm_access.roles || `[]`, 'ops')" in oauth["role_attribute_path"]
    assert oauth["groups_attribute_path"] == "realm_access.roles"


# The role mapping, evaluated as JMESPath ---------------------------------------------


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"groups": ["ops", "developers"], "email": "ann@acme.dev"}, "Admin"),
        ({"groups": ["developers"], "email": "bob@partner.org"}, "Editor"),
        ({"groups": [], "email": "cyd@acme.dev"}, "Viewer"),
        ({"groups": ["sales"], "email": "dan@acme.dev.evil.org"}, ""),
        ({"groups": ["Ops"], "email": "eve@partner.org"}, ""),
    ],
    ids=["admin-group", "editor-group", "viewer-domain", "lookalike-domain", "case-differs"],
)
def test_the_role_mapping_gives_each_user_their_highest_granted_role(
    claims: dict[str, Any], role: str
) -> None:
    assert jmespath.search(grafana.role_attribute_path(ROLES), claims) == role


def test_a_user_without_a_groups_claim_still_gets_the_role_of_their_email_domain() -> None:
    assert jmespath.search(grafana.role_attribute_path(ROLES), {"email": "cyd@acme.dev"}) == (
        "Viewer"
    )


def test_a_user_without_an_email_claim_still_gets_the_role_of_their_groups() -> None:
    assert jmespath.search(grafana.role_attribute_path(ROLES), {"groups": ["ops"]}) == "Admin"


def test_with_no_grants_the_role_mapping_gives_no_role_to_anyone() -> None:
    assert jmespath.search(grafana.role_attribute_path(()), {"groups": ["ops"]}) == ""


# Data sources and dashboards -----------------------------------------------------------


def test_grafanas_data_sources_are_the_tenants_provisioned_read_only() -> None:
    provisioned = values()["datasources"]["datasources.yaml"]
    assert provisioned == {"apiVersion": 1, "datasources": list(RELEASE.datasources)}
    assert all(d["editable"] is False for d in provisioned["datasources"])


def test_the_tenants_dashboards_are_read_from_their_config_map_and_not_editable_in_the_ui() -> None:
    given = values()
    provider = chart_values.GRAFANA_DASHBOARDS_PROVIDER
    assert given["dashboardsConfigMaps"] == {provider: grafana.DASHBOARDS_CONFIG_MAP}
    (entry,) = given["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    # The chart mounts the ConfigMap at /var/lib/grafana/dashboards/<provider>.
    assert entry["options"] == {"path": f"/var/lib/grafana/dashboards/{provider}"}
    assert (entry["type"], entry["allowUiUpdates"], entry["disableDeletion"]) == (
        "file",
        False,
        True,
    )


def test_without_dashboard_files_grafana_has_no_dashboard_provider() -> None:
    given = values(replace(RELEASE, dashboard_files=()))
    assert "dashboardProviders" not in given
    assert "dashboardsConfigMaps" not in given


def test_grafana_watches_no_config_maps_through_the_kubernetes_api() -> None:
    assert all(not sidecar["enabled"] for sidecar in values()["sidecar"].values())
    assert set(values()["sidecar"]) == {
        "alerts",
        "dashboards",
        "datasources",
        "plugins",
        "notifiers",
    }


# The pod, its disk and its network ---------------------------------------------------------


def test_grafanas_database_is_on_a_disk_of_the_tenants_size_and_class() -> None:
    assert values()["persistence"] == {
        "enabled": True,
        "type": "pvc",
        "accessModes": ["ReadWriteOnce"],
        "size": "10Gi",
        "storageClassName": "gp3",
    }


def test_grafanas_disk_takes_the_clusters_default_class_when_none_is_given() -> None:
    persistence = values(replace(RELEASE, storage_class="", storage_gib=25))["persistence"]
    assert "storageClassName" not in persistence
    assert persistence["size"] == "25Gi"


def test_grafana_is_replaced_not_rolled_as_its_disk_is_read_write_once() -> None:
    assert values()["deploymentStrategy"] == {"type": "Recreate"}


def test_grafanas_disk_is_not_chowned_by_a_root_init_container() -> None:
    assert values()["initChownData"] == {"enabled": False}


def test_the_tenants_data_api_hosts_resolve_to_the_gateway_in_grafanas_pod() -> None:
    assert values()["hostAliases"] == [{"ip": "10.100.0.10", "hostnames": list(HOSTS)}]


def test_without_a_gateway_address_the_data_api_hosts_resolve_through_dns() -> None:
    assert "hostAliases" not in values(replace(RELEASE, gateway_address=""))


def test_a_gateway_address_that_is_no_ip_address_is_refused_with_the_fix() -> None:
    message = (
        "prod: Grafana's gateway address 'gateway.opstrace.svc' is not an IP address: give "
        "the gateway Service's cluster IP, or '' to resolve the data API hosts through DNS"
    )
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        values(replace(RELEASE, gateway_address="gateway.opstrace.svc"))
    assert str(raised.value) == message


def test_grafana_is_reached_at_its_cluster_service_port_on_its_container_port() -> None:
    assert values()["service"] == {
        "enabled": True,
        "type": "ClusterIP",
        "port": grafana.SERVICE_PORT,
        "targetPort": grafana.CONTAINER_PORT,
    }
    assert values()["ingress"] == {"enabled": False}


def test_grafana_holds_no_kubernetes_api_token_and_the_chart_makes_no_role() -> None:
    given = values()
    assert given["automountServiceAccountToken"] is False
    assert given["serviceAccount"]["automountServiceAccountToken"] is False
    assert given["rbac"]["create"] is False


def test_the_chart_makes_no_network_policy_and_no_test_pod_of_its_own() -> None:
    assert values()["networkPolicy"] == {"enabled": False}
    assert values()["testFramework"] == {"enabled": False}


def test_grafana_asks_for_a_little_and_is_held_to_a_memory_limit() -> None:
    assert values()["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": chart_values.GRAFANA_MEMORY_LIMIT},
    }


def test_grafanas_values_are_plain_data_helm_takes() -> None:
    given = values()
    assert copy.deepcopy(given) == given
    assert "None" not in str(given)


# What `make charts` checks of a render ---------------------------------------------------


def render() -> list[dict[str, Any]]:
    """A render of the chart's shape, as the pinned chart renders `values()`."""
    container = {
        "name": "grafana",
        "ports": [{"name": "grafana", "containerPort": grafana.CONTAINER_PORT}],
        "env": [
            {"name": "GF_SECURITY_ADMIN_USER", "valueFrom": secret_ref(grafana.ADMIN_USER_KEY)},
            {
                "name": "GF_SECURITY_ADMIN_PASSWORD",
                "valueFrom": secret_ref(grafana.ADMIN_PASSWORD_KEY),
            },
            {"name": grafana.TOKEN_ENV, "valueFrom": secret_ref(grafana.TOKEN_KEY)},
        ],
        "volumeMounts": [{"name": "storage", "mountPath": "/var/lib/grafana"}],
    }
    labels = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"}
    pod = {
        "automountServiceAccountToken": False,
        "hostAliases": [{"ip": "10.100.0.10", "hostnames": list(HOSTS)}],
        "containers": [container],
        "volumes": [{"name": "storage", "persistentVolumeClaim": {"claimName": "grafana"}}],
    }
    return [
        {
            "kind": "Service",
            "metadata": {"name": "grafana"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "grafana"}]},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "grafana"},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": pod}},
        },
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "grafana"}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "grafana"},
            "data": {"grafana.ini": "[auth.anonymous]\nenabled = false\n"},
        },
    ]


WANT = wiring.GrafanaWiring(
    service=grafana.RELEASE,
    service_port=grafana.SERVICE_PORT,
    container_port=grafana.CONTAINER_PORT,
    secret=grafana.SECRET,
    secret_env={
        "GF_SECURITY_ADMIN_USER": grafana.ADMIN_USER_KEY,
        "GF_SECURITY_ADMIN_PASSWORD": grafana.ADMIN_PASSWORD_KEY,
        grafana.TOKEN_ENV: grafana.TOKEN_KEY,
    },
    data_api_hosts=HOSTS,
    gateway_address="10.100.0.10",
)
WHERE = "grafana prod-tenant"


def test_a_grafana_render_wired_as_the_program_assumes_passes() -> None:
    assert wiring.grafana_problems(render(), "prod-tenant", WANT) == []


def test_a_grafana_service_reaching_another_container_port_is_named() -> None:
    objects = render()
    objects[1]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080
    assert f"{WHERE}: Service grafana port 80 reaches container port 8080, not 3000" in (
        wiring.grafana_problems(objects, "prod-tenant", WANT)
    )


def test_a_grafana_secret_read_from_another_secret_is_named() -> None:
    objects = render()
    env = objects[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    env[1]["valueFrom"] = {"secretKeyRef": {"name": "grafana", "key": "admin-password"}}
    assert wiring.grafana_problems(objects, "prod-tenant", WANT) == [
        f"{WHERE}: GF_SECURITY_ADMIN_PASSWORD is read from ('grafana', 'admin-password'), "
        "not Secret grafana-opstrace key admin-password"
    ]


def test_a_data_api_host_not_aliased_to_the_gateway_is_named() -> None:
    objects = render()
    objects[1]["spec"]["template"]["spec"]["hostAliases"][0]["hostnames"].pop()
    assert wiring.grafana_problems(objects, "prod-tenant", WANT) == [
        f"{WHERE}: {HOSTS[-1]} does not resolve to the gateway 10.100.0.10"
    ]


def test_a_grafana_without_its_claimed_volume_is_named() -> None:
    objects = [o for o in render() if o["kind"] != "PersistentVolumeClaim"]
    assert wiring.grafana_problems(objects, "prod-tenant", WANT) == [
        f"{WHERE}: /var/lib/grafana is not on a PersistentVolumeClaim it renders"
    ]


def test_a_grafana_letting_anonymous_users_in_is_named() -> None:
    objects = render()
    objects[3]["data"]["grafana.ini"] = "[auth.anonymous]\nenabled = true\n"
    assert wiring.grafana_problems(objects, "prod-tenant", WANT) == [
        f"{WHERE}: [auth.anonymous] enabled: anonymous users get in"
    ]


def test_a_grafana_with_an_api_token_a_role_or_a_secret_of_the_charts_is_named() -> None:
    objects = render()
    del objects[1]["spec"]["template"]["spec"]["automountServiceAccountToken"]
    objects += [
        {"kind": "Role", "metadata": {"name": "grafana"}},
        {"kind": "Secret", "metadata": {"name": "grafana"}},
    ]
    assert wiring.grafana_problems(objects, "prod-tenant", WANT) == [
        f"{WHERE}: renders Secret/grafana (its secrets are the program's)",
        f"{WHERE}: its pods get a Kubernetes API token",
        f"{WHERE}: renders Role/grafana (the program makes its own)",
    ]


def test_the_chart_check_expects_a_tenants_own_data_api_hosts_and_secret_keys() -> None:
    release = chart_check.Release(charts.GRAFANA, charts.GRAFANA.release, "prod-tenant", values())
    want = chart_check.grafana_wiring(release, INSTANCE, DOMAIN, sso=True)
    assert (want.data_api_hosts, want.gateway_address) == (HOSTS, "10.100.0.10")
    assert want.secret_env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"] == grafana.CLIENT_SECRET_KEY
    assert release.key == "grafana in prod-tenant"


def test_the_chart_checks_sample_grafana_turns_every_option_on() -> None:
    sample = chart_check.SAMPLE_GRAFANA
    assert sample.sso
    assert sample.roles
    assert sample.dashboard_files
    assert sample.gateway_address
    assert values(sample)["hostAliases"]
