"""The gateway's settings, what its files are called, and every rule they must keep.

Pure, no Pulumi. `GatewaySettings` is checked once, when it is made: an object of it is
always one the renderers can turn into a safe configuration (no field reaches HAProxy's
files unchecked). Keys and their bindings are checked where they are rendered (`files`),
because they arrive later, as Outputs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from opstrace import keys, names
from opstrace.errors import OpstraceError
from opstrace.gateway import routes, sources
from sidecar import contract

HAPROXY_CONFIG: Final = "haproxy.cfg"
HOSTS_MAP: Final = "hosts.map"
KEYS_MAP: Final = "keys.map"
CREDENTIALS_MAP: Final = "credentials.map"
RATE_LIMITS_MAP: Final = "rate-limits.map"
BINDINGS_MAP: Final = "bindings.map"
ROUTES_MAP: Final = "routes.map"
METHODS_MAP: Final = "methods.map"
SCOPES_MAP: Final = "scopes.map"
NETWORKS_MAP: Final = "networks.map"
ALLOWED_NETWORKS_MAP: Final = "allowed-networks.map"
CRT_LIST: Final = "crt-list"
KEY_FILE_PREFIX: Final = "key-"
"""Every trusted key file's name begins so (`key_file_name`); no other file's does."""
HEALTH_PATH: Final = "/healthz"

DEFAULT_CONFIG_DIR: Final = "."
"""HAProxy's working directory (its `-C`): in the pod, the generation of files the sidecar
made current, so that every path in the files is relative to it."""
CERTS_SUBDIR: Final = "certs"
"""The certificates' directory under the config directory."""
DEFAULT_LISTEN: Final = "0.0.0.0:8443"
DEFAULT_HTTP_LISTEN: Final = "0.0.0.0:8080"
DEFAULT_HEALTH_LISTEN: Final = "0.0.0.0:8081"
DEFAULT_INTERNAL_LISTEN: Final = "0.0.0.0:9443"
"""The in-cluster listener: the same TLS and rules as `listen`, except the network
allowlists; only the tenants' Grafana pods reach it (a NetworkPolicy), through the
gateway's ClusterIP Service, to read their tenant's data without leaving the cluster."""
DEFAULT_USAGE_LOG: Final = f"127.0.0.1:{contract.USAGE_LOG_PORT}"

_KID_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_DIR_RE: Final = re.compile(r"^/[A-Za-z0-9._/-]*$")
_LISTEN_RE: Final = re.compile(r"^(?P<host>[0-9.]+):(?P<port>[0-9]{1,5})$")
_UPSTREAM_RULE: Final = (
    "use http://HOST[:PORT] with a DNS name or IPv4 address, no path, query, "
    "credentials or TLS (e.g. http://cortex-gateway.cortex.svc.cluster.local:80)"
)
UPSTREAM_FIELDS: Final = tuple(
    f"{service}_{upstream}_url"
    for service, upstream in (
        ("cortex", "push"),
        ("cortex", "query"),
        ("cortex", "ruler"),
        ("cortex", "alertmanager"),
        ("loki", "push"),
        ("loki", "query"),
        ("loki", "ruler"),
    )
)
"""One upstream per backend of the route allowlist (`routes.ROUTES`: `<service>_<upstream>`)."""

MIN_REPLICAS: Final = 2
"""So that one gateway pod can restart (rollout, node drain) while another serves."""


def replicas_problem(replicas: int) -> str | None:
    """Why `replicas` gateway pods are too few, or None."""
    if replicas < MIN_REPLICAS:
        return (
            f"{replicas} is too few: use at least {MIN_REPLICAS} so that one pod can "
            "restart while another serves"
        )
    return None


class GatewayConfigError(OpstraceError):
    """Raised when gateway settings or keys cannot make a safe gateway configuration."""


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway configuration depends on except the trusted keys.

    The keys (and their bindings) are separate because they arrive later (a Pulumi
    Output) and change more often; everything here is known when the component is
    constructed. Defaults are the pod's.
    """

    instance: str
    """The instance name; tokens must carry `aud: opstrace-cluster-<instance>`."""
    domain: str
    """The base domain; endpoints are `cortex|loki.<tenant>.<instance>.<domain>`."""
    tenants: Sequence[str]
    """Tenant names; the system tenant is added when missing."""
    cortex_push_url: str
    """Where metrics pushes go (Cortex/Mimir distributor), `http://host[:port]`."""
    cortex_query_url: str
    """Where metrics queries go (query frontend), `http://host[:port]`."""
    loki_push_url: str
    """Where log pushes go (Loki distributor), `http://host[:port]`."""
    loki_query_url: str
    """Where log queries and tails go (Loki query frontend), `http://host[:port]`."""
    cortex_ruler_url: str
    """Where the metrics ruler's APIs go (rules, alerts, rule configuration)."""
    cortex_alertmanager_url: str
    """Where the Alertmanager's APIs go (its configuration, its alerts)."""
    loki_ruler_url: str
    """Where Loki's ruler APIs go (Loki's backend target, or the single binary)."""
    metrics_query_prefix: str = ""
    """Path prefix of the metrics backend's query API: "" for Cortex's `/api/v1/...`
    (Opstrace's layout), "/prometheus" for Grafana Mimir (`/prometheus/api/v1/...`)."""
    ruler_config_prefix: str = routes.CORTEX_RULER_CONFIG_PATH
    """Where the metrics ruler serves its configuration API: Cortex's `/api/v1/rules`,
    or Mimir's `/prometheus/config/v1/rules` (what clients send, either way)."""
    metrics_otlp_path: str = routes.CORTEX_OTLP_METRICS_PATH
    """Where the metrics backend serves OTLP metrics: Cortex's `/api/v1/otlp/v1/metrics`,
    or Mimir's `/otlp/v1/metrics` (what clients send, either way)."""
    listen: str = DEFAULT_LISTEN
    """IPv4 address and port of the data API listener (HTTPS)."""
    internal_listen: str | None = DEFAULT_INTERNAL_LISTEN
    """IPv4 address and port of the in-cluster listener (HTTPS, the same certificates and
    rules as `listen` but the network allowlists), or None for none."""
    http_listen: str | None = DEFAULT_HTTP_LISTEN
    """Address and port of the plain-HTTP listener that refuses everything, or None."""
    health_listen: str | None = DEFAULT_HEALTH_LISTEN
    """Address and port of the health endpoint for probes, or None for none."""
    usage_log: str | None = DEFAULT_USAGE_LOG
    """IPv4 address and TCP port HAProxy forwards each access log line to as well (its
    ring's server: the sidecar's usage counters, `sidecar.usage`), or None."""
    config_dir: str = DEFAULT_CONFIG_DIR
    """The directory the rendered files live in when HAProxy reads them: "." (HAProxy's
    `-C` directory, as in the pod) or an absolute path. The tenants' certificates are
    `<config_dir>/certs/<tenant>.pem` (chain) and `<tenant>.pem.key` (private key)."""
    instance_networks: tuple[str, ...] = ()
    """The networks every tenant's endpoints take requests from; (): every address."""
    tenant_networks: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    """Tenant -> the networks its own endpoints take requests from, within the instance's
    (`sources.allowlists`); a tenant absent here: the instance's."""
    grafana_urls: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    """Tenant -> `http://host[:port]` of its own Grafana, served at
    `grafana.<tenant>.<instance>.<domain>` (`grafana.service_url`); a tenant absent here
    has no Grafana host (404, as any unknown host)."""

    def __post_init__(self) -> None:
        # Checked once, here: every object of this class renders safely.
        validate_settings(self)

    @property
    def certificates_dir(self) -> str:
        """Where the tenants' certificates and private keys are read from."""
        return f"{self.config_dir}/{CERTS_SUBDIR}"


def gateway_tenants(tenants: Sequence[str]) -> tuple[str, ...]:
    """The tenants served, sorted, with the system tenant always among them."""
    return tuple(sorted({*tenants, names.SYSTEM_TENANT}))


def certificate_file_name(tenant: str) -> str:
    """The tenant's certificate chain in the certificates directory (cert-manager's tls.crt)."""
    return f"{tenant}.pem"


def private_key_file_name(tenant: str) -> str:
    """The tenant's private key beside its certificate (tls.key); HAProxy finds it by name."""
    return f"{certificate_file_name(tenant)}.key"


def validate_settings(settings: GatewaySettings) -> None:
    """Raise GatewayConfigError naming the first field that cannot be rendered safely
    (run by `GatewaySettings` itself when it is made)."""
    problem = names.instance_name_problem(settings.instance)
    if problem:
        raise GatewayConfigError(f"instance: {problem}")
    problem = names.domain_problem(settings.domain)
    if problem:
        raise GatewayConfigError(f"domain: {problem}")
    seen: set[str] = set()
    for index, tenant in enumerate(settings.tenants):
        problem = names.tenant_name_problem(tenant)
        if problem:
            raise GatewayConfigError(f"tenants[{index}]: {problem}")
        if tenant in seen:
            raise GatewayConfigError(
                f"tenants[{index}]: {tenant!r} is listed twice: list each tenant once"
            )
        seen.add(tenant)
        for service in names.ENDPOINT_SERVICES:
            host = names.endpoint_host(service, tenant, settings.instance, settings.domain)
            problem = names.hostname_problem(host)
            if problem:
                raise GatewayConfigError(
                    f"tenants[{index}]: endpoint {problem}: use a shorter tenant or domain"
                )
    for field in UPSTREAM_FIELDS:
        _check_upstream(field, getattr(settings, field))
    if problem := routes.metrics_query_prefix_problem(settings.metrics_query_prefix):
        raise GatewayConfigError(f"metrics_query_prefix: {problem}")
    if problem := routes.ruler_config_prefix_problem(settings.ruler_config_prefix):
        raise GatewayConfigError(f"ruler_config_prefix: {problem}")
    if problem := routes.otlp_path_problem(settings.metrics_otlp_path):
        raise GatewayConfigError(f"metrics_otlp_path: {problem}")
    _check_listeners(settings)
    _check_dir("config_dir", settings.config_dir)
    _check_networks(settings)
    _check_grafana(settings)


def _check_grafana(settings: GatewaySettings) -> None:
    served = gateway_tenants(settings.tenants)
    for tenant, url in settings.grafana_urls.items():
        if tenant not in served:
            raise GatewayConfigError(f"grafana_urls: {tenant!r} is not a tenant served")
        host = names.endpoint_host(
            names.GRAFANA_SERVICE, tenant, settings.instance, settings.domain
        )
        if problem := names.hostname_problem(host):
            raise GatewayConfigError(
                f"grafana_urls[{tenant!r}]: Grafana host {problem}: use a shorter tenant or domain"
            )
        _check_upstream(f"grafana_urls[{tenant!r}]", url)


def _check_networks(settings: GatewaySettings) -> None:
    lists = {"instance_networks": settings.instance_networks} | {
        f"tenant_networks[{tenant!r}]": networks
        for tenant, networks in settings.tenant_networks.items()
    }
    for where, networks in lists.items():
        for text in networks:
            if problem := sources.network_problem(text):
                raise GatewayConfigError(f"{where}: {problem}")
    for tenant, networks in settings.tenant_networks.items():
        if tenant not in settings.tenants:
            raise GatewayConfigError(f"tenant_networks: {tenant!r} is not a tenant served")
        if not networks:
            raise GatewayConfigError(
                f"tenant_networks[{tenant!r}]: empty: leave the tenant out to take the "
                "instance's networks"
            )
        if not sources.within(networks, settings.instance_networks):
            raise GatewayConfigError(
                f"tenant_networks[{tenant!r}]: no network lies within instance_networks: "
                "no address could reach the tenant"
            )


def validate_keys(trusted: Mapping[str, str]) -> dict[str, str]:
    """The key set checked as an Opstrace authenticator does (`keys.check_key_set`)."""
    try:
        return keys.check_key_set(trusted, source="keys")
    except (keys.KeySetError, keys.KeyMaterialError) as error:
        raise GatewayConfigError(str(error)) from None


def validate_bindings(
    bindings: Mapping[str, str], trusted: Mapping[str, str], tenants: Sequence[str]
) -> dict[str, str]:
    """Key ID -> tenant, sorted; each key trusted, each tenant served by the gateway."""
    for kid, tenant in sorted(bindings.items()):
        if kid not in trusted:
            raise GatewayConfigError(
                f"bindings[{kid!r}]: is not a key of the key set: bind only trusted keys"
            )
        if tenant not in tenants:
            raise GatewayConfigError(
                f"bindings[{kid!r}]: {tenant!r} is not a tenant of this gateway: bind the "
                f"key to one of {', '.join(tenants)}"
            )
    return dict(sorted(bindings.items()))


def key_file_name(kid: str) -> str:
    """The file holding a trusted key; only ever called with a key ID we computed."""
    if not _KID_RE.fullmatch(kid):
        raise GatewayConfigError(f"{kid!r} is not a key ID: expected 40 lowercase hex digits")
    return f"{KEY_FILE_PREFIX}{kid}.pem"


def upstream_address(url: str) -> str:
    """`host:port` of a checked upstream URL (port 80 when the URL has none)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return f"{parts.hostname}:{parts.port or 80}"


def upstream_problem(url: str) -> str | None:
    """Why `url` cannot be a backend of the gateway, or None if it can."""
    refusal = f"{url!r} is not an upstream URL: {_UPSTREAM_RULE}"
    if any(character.isspace() or not character.isprintable() for character in url):
        return refusal  # urlsplit would quietly drop a newline or a tab
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return refusal
    host = parts.hostname or ""
    if (
        parts.scheme != "http"
        or not (_is_ipv4(host) or (host and names.hostname_problem(host) is None))
        or not url.startswith(f"http://{host}")
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == 0
    ):
        return refusal
    return None


def _check_upstream(field: str, url: str) -> None:
    if problem := upstream_problem(url):
        raise GatewayConfigError(f"{field}: {problem}")


def _check_listeners(settings: GatewaySettings) -> None:
    listeners = {
        "listen": (settings.listen, "data API"),
        "internal_listen": (settings.internal_listen, "in-cluster"),
        "http_listen": (settings.http_listen, "plain-HTTP"),
        "health_listen": (settings.health_listen, "health"),
        "usage_log": (settings.usage_log, "usage log"),
    }
    ports: dict[str, str] = {}
    for field, (address, role) in listeners.items():
        if address is None:
            continue
        match = _LISTEN_RE.fullmatch(address)
        if not match or not _is_ipv4(match["host"]) or not 1 <= int(match["port"]) <= 65535:
            raise GatewayConfigError(
                f"{field}: {address!r} is not a listen address: use IPV4:PORT with a port "
                "from 1 to 65535 (e.g. 0.0.0.0:8080)"
            )
        if match["port"] in ports:
            raise GatewayConfigError(
                f"{field}: {address!r} has the {ports[match['port']]} port: use another port"
            )
        ports[match["port"]] = role


def _check_dir(field: str, directory: str) -> None:
    if directory != "." and (not _DIR_RE.fullmatch(directory) or "/../" in f"{directory}/"):
        raise GatewayConfigError(
            f"{field}: {directory!r} is not usable in the configuration: use '.' (HAProxy's "
            "-C directory) or an absolute path of letters, digits, '.', '_', '-' and '/' "
            "without '..'"
        )


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


DEFAULT_SYNC_IMAGE: Final = "python:3.13.9-slim-trixie"
"""The sidecar's image: the stock Python image, the sidecar's code from a ConfigMap. The
tag is listed in docker-library/official-images library/python (commit 01732a42e52e);
pin its digest too where a registry is reachable (docs/gateway.md)."""
DEFAULT_IMAGE: Final = "haproxy:3.4.7"
"""Stock HAProxy LTS image, pinned to the release the end-to-end tests run (3.4 LTS, fixes
CVE-2025-11230 and CVE-2025-32464); `tools/haproxy/build.sh` builds the same version.
Pin its digest too once a registry is reachable (docs/gateway.md says how)."""

_IMAGE_RE: Final = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?"  # registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?P<tag>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?P<digest>@sha256:[0-9a-f]{64})?$"
)


def image_problem(image: str) -> str | None:
    """Why `image` is not a pinned image reference, or None.

    A reference without a version (or `latest`) would change under a running instance
    with the next pull; a digest alone is pinned but says nothing to a reader."""
    match = _IMAGE_RE.fullmatch(image)
    if not match:
        return (
            f"{image!r} is not an image reference: write <repository>:<version>, "
            "optionally followed by @sha256:<64 hex digits>"
        )
    if match["tag"] in (None, ":latest"):
        return (
            f"{image!r} does not pin a version: write <repository>:<version> "
            f"(e.g. {DEFAULT_IMAGE}), optionally followed by @sha256:<digest>"
        )
    return None
