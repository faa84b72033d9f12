"""The lookup files HAProxy's rules read: which host is whose, which key signs for whom,
which route serves which methods, and which certificate answers which name.

Pure, no Pulumi. Each map is sorted, so that equal inputs give equal files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from opstrace import names, scopes
from opstrace.gateway import routes
from opstrace.gateway.settings import GatewaySettings, certificate_file_name, key_file_name


def served_hosts(settings: GatewaySettings, tenant: str) -> tuple[str, ...]:
    """A tenant's hosts the gateway serves: its data API hosts, then its Grafana's when
    it has one (`settings.grafana_urls`)."""
    grafana = tenant in settings.grafana_urls
    return names.tenant_hosts(tenant, settings.instance, settings.domain, grafana)


def hosts_map(settings: GatewaySettings, tenants: Sequence[str]) -> str:
    """Host -> its tenant: each data API host, and the Grafana host of each tenant with a
    Grafana (the rules tell the two apart by the host's first label)."""
    lines = [f"{host} {tenant}\n" for tenant in tenants for host in served_hosts(settings, tenant)]
    return "".join(sorted(lines))


def crt_list(settings: GatewaySettings, tenants: Sequence[str]) -> str:
    """One line per tenant: its certificate, served only for its hosts (its two data API
    hosts, and its Grafana host when it has a Grafana).

    The system tenant comes first, which makes it HAProxy's default certificate; with
    `strict-sni` a client naming no served host gets no certificate at all.
    """
    ordered = sorted(tenants, key=lambda tenant: (tenant != names.SYSTEM_TENANT, tenant))
    lines = []
    for tenant in ordered:
        hosts = " ".join(served_hosts(settings, tenant))
        lines.append(f"{settings.certificates_dir}/{certificate_file_name(tenant)} {hosts}\n")
    return "".join(lines)


LABEL_SEGMENT: Final = f"/label/{routes.LABEL_NAME}/values"
LABEL_PLACEHOLDER: Final = "_"
"""Every label name and rule namespace or group name in a path becomes this before the
route lookup; being such a name itself, it cannot reach the maps any other way than
through that rewrite."""


def named_paths() -> tuple[str, ...]:
    """The route paths with rule namespace or group names in them, longest first."""
    paths = {p for rule in routes.ROUTES for p in rule.client_paths() if routes.NAME in p}
    return tuple(sorted(paths, key=lambda p: (-len(p), p)))


def route_key(service: str, path: str) -> str:
    """The key of a route path in the route maps: `<service>:<path>`, names as `_`."""
    assert routes.is_literal(path) or path.endswith(LABEL_SEGMENT) or path in named_paths(), path
    placeholders = path.replace(routes.LABEL_NAME, LABEL_PLACEHOLDER)
    return f"{service}:{placeholders.replace(routes.NAME, LABEL_PLACEHOLDER)}"


def routes_map() -> str:
    """Route key -> the methods the route serves (its `Allow` header)."""
    return "".join(
        f"{route_key(rule.service, path)} {routes.allow_header(rule.methods)}\n"
        for rule in routes.ROUTES
        for path in rule.client_paths()
    )


def methods_map() -> str:
    """`<METHOD>:<route key>` -> the backend that serves it."""
    return "".join(
        f"{method}:{route_key(rule.service, path)} {rule.backend}\n"
        for rule in routes.ROUTES
        for path in rule.client_paths()
        for method in rule.methods
    )


def scopes_map() -> str:
    """`<METHOD>:<route key>` -> the scope a token needs for it (`scopes.required_scope`)."""
    return "".join(
        f"{method}:{route_key(rule.service, path)} "
        f"{scopes.required_scope(rule.service, rule.upstream, method)}\n"
        for rule in routes.ROUTES
        for path in rule.client_paths()
        for method in rule.methods
    )


def keys_map(settings: GatewaySettings, trusted: Mapping[str, str]) -> str:
    """Key ID -> the path of its key file, for every trusted key."""
    return "".join(f"{kid} {settings.config_dir}/{key_file_name(kid)}\n" for kid in trusted)


def credentials_map(credentials: Mapping[str, str]) -> str:
    """Key ID -> the credentials it signs for, as the access log names them."""
    assert all(" " not in name for name in credentials.values()), credentials
    return "".join(f"{kid} {name}\n" for kid, name in sorted(credentials.items()))


def rate_limits_map(rate_limits: Mapping[str, int]) -> str:
    """Key ID -> requests per second its tokens may make at each gateway pod."""
    assert all(limit > 0 for limit in rate_limits.values()), rate_limits
    return "".join(f"{kid} {limit}\n" for kid, limit in sorted(rate_limits.items()))


def bindings_map(bindings: Mapping[str, str]) -> str:
    """Key ID -> the one tenant whose endpoints accept its tokens."""
    return "".join(f"{kid} {tenant}\n" for kid, tenant in bindings.items())
