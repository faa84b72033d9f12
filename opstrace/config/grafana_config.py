"""The Grafana settings of a stack: the instance's single sign-on (`grafanaSso`, its
client secret `grafanaClientSecret`), the system tenant's roles (`systemGrafanaRoles`),
and a tenant's `grafana` option, parsed into `opstrace.grafana` objects.

Pure, no Pulumi. Each refusal is one line naming the field and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from opstrace import dashboards, names, system_dashboards
from opstrace.config.local_files import path_setting, resolve
from opstrace.config.read import ConfigError
from opstrace.grafana import (
    DEFAULT_STORAGE_GIB,
    NO_GRAFANA,
    ROLES,
    GrafanaSpec,
    RoleGrant,
    SingleSignOn,
)

SSO_KEY: Final = "grafanaSso"
CLIENT_SECRET_KEY: Final = "grafanaClientSecret"
SYSTEM_ROLES_KEY: Final = "systemGrafanaRoles"
SSO_OPTIONS: Final = (
    "name",
    "authUrl",
    "tokenUrl",
    "apiUrl",
    "clientId",
    "scopes",
    "groupsAttributePath",
)
SSO_URLS: Final = ("authUrl", "tokenUrl", "apiUrl")
TENANT_OPTIONS: Final = ("roles", "dashboards", "storageGi")
GRANT_OPTIONS: Final = ("groups", "emailDomains")
MAX_STORAGE_GIB: Final = 1000
_SCOPE_RE: Final = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
"""An OAuth scope token (RFC 6749 3.3)."""


def parse_sso(raw: Any, client_secret: str) -> SingleSignOn | None:
    """The instance's OpenID Connect provider, or None when `grafanaSso` is empty. Its
    client secret is required where something is created (`stack.client_secret_problem`)."""
    if raw in (None, {}):
        if client_secret:
            raise ConfigError(
                f"{CLIENT_SECRET_KEY}: is set, but {SSO_KEY} is empty: set {SSO_KEY} too or "
                "remove the secret"
            )
        return None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{SSO_KEY}: expected an object {{{', '.join(SSO_OPTIONS)}}}, got {raw!r}"
        )
    if unknown := sorted(set(raw) - set(SSO_OPTIONS)):
        raise ConfigError(f"{SSO_KEY}.{unknown[0]}: unknown option; use {', '.join(SSO_OPTIONS)}")
    for key in ("name", "clientId", *SSO_URLS):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(
                f"{SSO_KEY}.{key}: required, a non-empty string; copy the endpoints from your "
                "provider's /.well-known/openid-configuration"
            )
    for key in SSO_URLS:
        if problem := _https_url_problem(raw[key]):
            raise ConfigError(f"{SSO_KEY}.{key}: {problem}")
    scopes = raw.get("scopes", ["openid", "email", "profile"])
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and _SCOPE_RE.fullmatch(s) for s in scopes)
    ):
        raise ConfigError(
            f"{SSO_KEY}.scopes: expected a non-empty list of OAuth scopes (no spaces or "
            f"quotes), got {scopes!r}"
        )
    groups_path = raw.get("groupsAttributePath", "groups")
    if not isinstance(groups_path, str) or not groups_path.strip():
        raise ConfigError(
            f"{SSO_KEY}.groupsAttributePath: expected a JMESPath (e.g. groups), got {groups_path!r}"
        )
    return SingleSignOn(
        name=raw["name"].strip(),
        auth_url=raw["authUrl"],
        token_url=raw["tokenUrl"],
        api_url=raw["apiUrl"],
        client_id=raw["clientId"],
        scopes=tuple(scopes),
        groups_attribute_path=groups_path,
    )


def _https_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return f"{url!r} is not an https:// URL with a host and no credentials"
    return None


def parse_roles(field: str, raw: Any, owner: str = "") -> tuple[RoleGrant, ...]:
    """`{Admin: {groups: [...], emailDomains: [...]}, Editor: ..., Viewer: ...}`; each
    refusal names the field, then `owner` (the tenant)."""
    if raw in (None, {}):
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{field}{owner}: expected {{<role>: {{groups, emailDomains}}}} with roles "
            f"{', '.join(ROLES)}, got {raw!r}"
        )
    grants = []
    for role, entry in raw.items():
        where = f"{field}.{role}"
        if role not in ROLES:
            raise ConfigError(f"{where}{owner}: unknown role; use {', '.join(ROLES)}")
        if not isinstance(entry, dict) or not entry:
            raise ConfigError(f"{where}{owner}: expected {{groups: [...], emailDomains: [...]}}")
        if unknown := sorted(set(entry) - set(GRANT_OPTIONS)):
            raise ConfigError(
                f"{where}.{unknown[0]}{owner}: unknown option; use {', '.join(GRANT_OPTIONS)}"
            )
        groups = _strings(f"{where}.groups{owner}", entry.get("groups", []))
        for position, group in enumerate(groups):
            if "'" in group or "\\" in group:
                raise ConfigError(
                    f"{where}.groups[{position}]{owner}: {group!r} holds a quote or a "
                    "backslash, which Grafana's role mapping cannot match: rename the group"
                )
        domains = _strings(f"{where}.emailDomains{owner}", entry.get("emailDomains", []))
        for position, domain in enumerate(domains):
            if problem := names.domain_problem(domain):
                raise ConfigError(f"{where}.emailDomains[{position}]{owner}: {problem}")
        if not groups and not domains:
            raise ConfigError(
                f"{where}{owner}: grants the role to nobody: list groups or emailDomains"
            )
        grants.append(RoleGrant(role, groups, domains))
    return tuple(sorted(grants, key=lambda grant: ROLES.index(grant.role)))


def _strings(field: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ConfigError(f"{field}: expected a list of non-empty strings, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise ConfigError(f"{field}: lists a value twice")
    return tuple(raw)


def parse_tenant_grafana(
    field: str, raw: Any, enabled: bool, base_dir: Path, owner: str
) -> GrafanaSpec:
    """A tenant's `grafana` option: absent or `true`: a Grafana with defaults; `false`: none;
    an object: `{roles, dashboards, storageGi}`. `enabled`: the instance's `grafana`."""
    if raw is None or raw is True:
        raw = {}
    if raw is False:
        return NO_GRAFANA
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{field}{owner}: expected true, false or {{{', '.join(TENANT_OPTIONS)}}}, got {raw!r}"
        )
    if raw and not enabled:
        raise ConfigError(
            f"{field}{owner}: is set, but the instance's grafana is false: no tenant has a "
            "Grafana; remove the option or set opstrace:grafana to true"
        )
    if not enabled:
        return NO_GRAFANA
    if unknown := sorted(set(raw) - set(TENANT_OPTIONS)):
        raise ConfigError(
            f"{field}.{unknown[0]}{owner}: unknown option; use {', '.join(TENANT_OPTIONS)}"
        )
    storage = raw.get("storageGi", DEFAULT_STORAGE_GIB)
    if isinstance(storage, bool) or not isinstance(storage, int):
        storage = -1
    if not 1 <= storage <= MAX_STORAGE_GIB:
        raise ConfigError(
            f"{field}.storageGi{owner}: expected GiB, a whole number from 1 to "
            f"{MAX_STORAGE_GIB}, got {raw.get('storageGi')!r}"
        )
    return GrafanaSpec(
        enabled=True,
        roles=parse_roles(f"{field}.roles", raw.get("roles"), owner),
        dashboards=_dashboards(f"{field}.dashboards", raw.get("dashboards"), base_dir),
        storage_gib=storage,
    )


def system_grafana(enabled: bool, roles: Any) -> GrafanaSpec:
    """The system tenant's Grafana: the instance's own dashboards, `systemGrafanaRoles`."""
    if not enabled:
        if roles not in (None, {}):
            raise ConfigError(
                f"{SYSTEM_ROLES_KEY}: is set, but grafana is false: remove it or set "
                "opstrace:grafana to true"
            )
        return NO_GRAFANA
    return GrafanaSpec(
        enabled=True,
        roles=parse_roles(SYSTEM_ROLES_KEY, roles),
        dashboards=system_dashboards.system_dashboards(),
    )


def _dashboards(field: str, raw: Any, base_dir: Path) -> tuple[dashboards.Dashboard, ...]:
    """Files or folders of dashboard JSON (a folder: its `*.json` files in name order),
    read whenever the program runs, so that a change shows in preview."""
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else [raw]
    paths = []
    for position, entry in enumerate(entries):
        where = f"{field}[{position}]"
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"{where}: expected a file or folder path, got {entry!r}")
        paths.append(resolve(path_setting(entry, where), base_dir))
    return dashboards.tenant_dashboards(paths, field)


def parse_client_secret(values: Mapping[str, Any]) -> str:
    """`grafanaClientSecret`: "" when unset (a secret in the stack file, decrypted by the
    CLI before the program reads it)."""
    secret = values.get(CLIENT_SECRET_KEY, "")
    if not isinstance(secret, str):
        raise ConfigError(f"{CLIENT_SECRET_KEY}: expected a string (set it with --secret)")
    return secret
