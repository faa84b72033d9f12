"""A tenant's own Grafana: who may log in and as what, its data sources (the tenant
itself, through the gateway, with a read-only token), and where its secrets live.

Pure, no Pulumi. The chart's values are built from a `GrafanaRelease`
(`chart_values.grafana_values`); the component (`components.tenant_grafana`) makes the
Secret, the dashboards and the release.

A tenant's Grafana sees that tenant only because of what it holds, not because of
how it is set up: its one credential is a token of that tenant with the read scopes
alone, and its data sources are that tenant's public endpoints, so even a Grafana
user who edits a data source reaches nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from opstrace import names
from opstrace.charts import PROMETHEUS_API_PREFIX

if TYPE_CHECKING:
    from opstrace.dashboards import Dashboard

TOKEN_NAME: Final = "grafana"
"""The credential a tenant's Grafana reads with, minted like any other: reserved, so no
tenant may list a token of that name while it has a Grafana."""
TOKEN_SCOPES: Final = ("alerts:read", "logs:read", "metrics:read", "rules:read")
"""What that credential may do: read, nothing else (see `scopes`)."""

ROLES: Final = ("Viewer", "Editor", "Admin")
"""Grafana's organization roles, least first."""

RELEASE: Final = "grafana"
"""The Helm release in the tenant's namespace; also its Service's name."""
SERVICE_PORT: Final = 80
"""Where its Service takes the gateway's requests (the chart's default)."""
CONTAINER_PORT: Final = 3000

SECRET: Final = "grafana-opstrace"
"""The Secret in the tenant's namespace with what the Grafana must not show: its data
source token, its admin's name and password, the single sign-on client secret."""
TOKEN_KEY: Final = "token"
ADMIN_USER_KEY: Final = "admin-user"
ADMIN_PASSWORD_KEY: Final = "admin-password"
CLIENT_SECRET_KEY: Final = "oidc-client-secret"
ADMIN_USER: Final = "admin"
TOKEN_ENV: Final = "OPSTRACE_DATA_TOKEN"
"""The environment variable the token reaches Grafana's data source provisioning by
(`$OPSTRACE_DATA_TOKEN` in the provisioning file, from the Secret)."""

DATASOURCE_UIDS: Final = {
    "prometheus": "prometheus",
    "loki": "loki",
    "alertmanager": "alertmanager",
}
"""Data source type -> the uid of a tenant Grafana's data source of that type
(`datasources`): what dashboards refer to them by."""

DASHBOARDS_CONFIG_MAP: Final = "grafana-dashboards"
"""The ConfigMap with the tenant's dashboards as code (file name -> dashboard JSON)."""

DEFAULT_STORAGE_GIB: Final = 10


@dataclass(frozen=True)
class SingleSignOn:
    """The instance's OpenID Connect provider, as Grafana's generic OAuth takes it; the
    client secret is a stack secret and reaches Grafana from `SECRET`."""

    name: str
    """Shown on the login button ("Sign in with <name>")."""
    auth_url: str
    token_url: str
    api_url: str
    """The provider's userinfo endpoint."""
    client_id: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    groups_attribute_path: str = "groups"
    """JMESPath of the user's groups in the ID token or userinfo."""


@dataclass(frozen=True)
class RoleGrant:
    """Who gets a role in one tenant's Grafana: members of any of `groups` and holders of
    an e-mail address in any of `email_domains` (no group holds `'` or `\\`: they are
    quoted as JMESPath raw strings)."""

    role: str
    groups: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrafanaSpec:
    """A tenant's Grafana as its stack file entry says."""

    enabled: bool = True
    roles: tuple[RoleGrant, ...] = ()
    """Who may log in through single sign-on, and as what; (): nobody but the admin."""
    dashboards: tuple[Dashboard, ...] = ()
    """Its dashboards as code, read and checked (`opstrace.dashboards`)."""
    storage_gib: int = DEFAULT_STORAGE_GIB


NO_GRAFANA: Final = GrafanaSpec(enabled=False)


@dataclass(frozen=True)
class GrafanaRelease:
    """Everything one tenant's Grafana values depend on."""

    tenant: str
    root_url: str
    """`https://grafana.<tenant>.<instance>.<domain>`, its public address."""
    datasources: tuple[dict[str, object], ...]
    """Grafana provisioning entries (`datasources`)."""
    sso: SingleSignOn | None
    roles: tuple[RoleGrant, ...]
    storage_class: str
    """"" for the cluster's default."""
    storage_gib: int
    gateway_address: str
    """The gateway's in-cluster address that the tenant's data API hosts resolve to in
    the Grafana pod (`hostAliases`), so that its queries stay in the cluster; ""
    resolves them through DNS."""
    data_api_hosts: tuple[str, ...]
    dashboard_files: tuple[str, ...] = ()
    """The file names in `DASHBOARDS_CONFIG_MAP`; (): no dashboard provider."""
    secret_version: str = ""
    """Changes whenever `SECRET`'s content does (the token's key ID, the password
    resource's ID): a pod annotation, so that Grafana restarts and reads the new values."""


def service_url(tenant: str) -> str:
    """Where the gateway forwards `grafana.<tenant>...` to: its Service in the tenant's
    namespace."""
    namespace = names.tenant_namespace(tenant)
    return f"http://{RELEASE}.{namespace}.svc.cluster.local:{SERVICE_PORT}"


def datasources(
    tenant: str, instance: str, domain: str, ca_certificates: str = ""
) -> tuple[dict[str, object], ...]:
    """The tenant's metrics, logs and Alertmanager, each at the tenant's own public
    endpoint with the read-only token (a Bearer header from `TOKEN_ENV`), not editable in
    the UI. Pointed as `tests/e2e/test_gateway_grafana.py` proves they are served.
    `ca_certificates`: the PEM roots the endpoints' certificates chain to when the system's
    do not hold them (Let's Encrypt's staging roots with `acmeStaging`), else ""."""
    cortex = f"https://{names.endpoint_host('cortex', tenant, instance, domain)}"
    loki = f"https://{names.endpoint_host('loki', tenant, instance, domain)}"
    auth: dict[str, dict[str, object]] = {
        "jsonData": {"httpHeaderName1": "Authorization"},
        "secureJsonData": {"httpHeaderValue1": f"Bearer ${TOKEN_ENV}"},
    }
    if ca_certificates:
        auth["jsonData"]["tlsAuthWithCACert"] = True
        auth["secureJsonData"]["tlsCACert"] = ca_certificates
    return (
        _datasource(
            "Metrics",
            "prometheus",
            f"{cortex}{PROMETHEUS_API_PREFIX}",
            auth,
            {"prometheusType": "Mimir", "httpMethod": "POST"},
            default=True,
        ),
        _datasource("Logs", "loki", loki, auth, {}),
        _datasource(
            "Alertmanager",
            "alertmanager",
            cortex,
            auth,
            {"implementation": "mimir", "handleGrafanaManagedAlerts": False},
        ),
    )


def _datasource(
    name: str,
    kind: str,
    url: str,
    auth: dict[str, dict[str, object]],
    json_data: dict[str, object],
    default: bool = False,
) -> dict[str, object]:
    return {
        "name": name,
        "uid": DATASOURCE_UIDS[kind],
        "type": kind,
        "access": "proxy",
        "url": url,
        "isDefault": default,
        "editable": False,
        "jsonData": {**auth["jsonData"], **json_data},
        "secureJsonData": dict(auth["secureJsonData"]),
    }


def role_attribute_path(grants: Sequence[RoleGrant], groups_path: str = "groups") -> str:
    """The JMESPath Grafana maps a single sign-on user to a role with: the highest role
    any grant gives, else '' (refused, with `role_attribute_strict`). A user without
    groups or e-mail address matches no grant of that kind (rather than an error)."""
    clauses = []
    for role in reversed(ROLES):
        granted = [grant for grant in grants if grant.role == role]
        tests = [
            f"contains({groups_path} || `[]`, '{group}')"
            for grant in granted
            for group in grant.groups
        ] + [
            f"ends_with(email || '', '@{domain}')"
            for grant in granted
            for domain in grant.email_domains
        ]
        if tests:
            clauses.append(f"({' || '.join(tests)}) && '{role}'")
    return " || ".join([*clauses, "''"])
