"""The data API gateway's HAProxy configuration, rendered from plain settings.

Pure functions, no Pulumi: the Gateway component puts these files into a ConfigMap
and `python -m tools.gateway render` writes the same files to a directory, so the
configuration that the tests run against a real HAProxy is the one the pods get.

The decision is the reference authenticator's (`components.rules.data_token.authenticate`),
expressed with HAProxy 2.6 built-ins only (`jwt_verify`, `jwt_header_query`,
`jwt_payload_query`, `http_auth_pass`, maps), so a stock image runs it unchanged: the
same files pass every end-to-end test on Debian's 2.6.12 and on the 3.4 LTS release the
image pins (`make e2e-haproxy`).

How keys are found without trusting the token's `kid`:
- `keys.map` maps each trusted key ID (40 hex digits we computed from the PEM) to the
  path of its key file, `key-<kid>.pem`. The token's `kid` is only ever a lookup key
  into that map (an exact string match); it never becomes part of a path or of an
  expression.
- HAProxy (2.6 and 3.4 alike) verifies only with keys it loaded while parsing the
  configuration, and it loads a key file only where the path appears literally in a
  `jwt_verify` call.
  Each key therefore gets one never-evaluated `acl trusted_key_file` line that names
  its file; the request rules pass the path looked up in `keys.map` as a variable.
  A path that was not preloaded makes `jwt_verify` fail (it fails closed).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from components.rules import data_token, keys, names

HAPROXY_CONFIG: Final = "haproxy.cfg"
HOSTS_MAP: Final = "hosts.map"
KEYS_MAP: Final = "keys.map"
HEALTH_PATH: Final = "/healthz"
NOT_FOUND_BODY: Final = "no data API endpoint at this host"
"""The 404 body for a Host that is no tenant's endpoint."""

DEFAULT_CONFIG_DIR: Final = "/usr/local/etc/haproxy"
"""Where the stock HAProxy image reads its configuration; the ConfigMap is mounted here."""

_KID_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_CONFIG_DIR_RE: Final = re.compile(r"^/[A-Za-z0-9._/-]*$")
_LISTEN_RE: Final = re.compile(r"^(?P<host>[0-9.]+):(?P<port>[0-9]{1,5})$")
_UPSTREAM_RULE: Final = (
    "use http://HOST[:PORT] with a DNS name or IPv4 address, no path, query, "
    "credentials or TLS (e.g. http://cortex-gateway.cortex.svc.cluster.local:80)"
)


HAPROXY_PROLOGUE: Final = """\
global
    log stdout format raw local0 info
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    timeout connect 5s
    timeout http-request 10s
    timeout client 60s
    timeout server 120s
"""
"""Process and proxy defaults; the benchmark's pass-through baseline shares them."""


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


class GatewayConfigError(ValueError):
    """Raised when gateway settings or keys cannot make a safe gateway configuration."""


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway configuration depends on except the trusted keys.

    The keys are separate because they arrive later (a Pulumi Output) and change more
    often; everything here is known when the component is constructed.
    """

    instance: str
    """The instance name; tokens must carry `aud: opstrace-cluster-<instance>`."""
    domain: str
    """The base domain; endpoints are `cortex|loki.<tenant>.<instance>.<domain>`."""
    tenants: Sequence[str]
    """Tenant names; the system tenant is added when missing."""
    cortex_url: str
    """The metrics backend (Cortex), `http://host:port`."""
    loki_url: str
    """The logs backend (Loki), `http://host:port`."""
    listen: str = "0.0.0.0:8080"
    """IPv4 address and port of the data API listener (plain HTTP)."""
    health_listen: str | None = "0.0.0.0:8081"
    """Address and port of the health endpoint for probes, or None for none."""
    config_dir: str = DEFAULT_CONFIG_DIR
    """The absolute directory the rendered files live in when HAProxy reads them."""


def gateway_tenants(tenants: Sequence[str]) -> tuple[str, ...]:
    """The tenants served, sorted, with the system tenant always among them."""
    return tuple(sorted({*tenants, names.SYSTEM_TENANT}))


def validate_settings(settings: GatewaySettings) -> None:
    """Raise GatewayConfigError naming the first field that cannot be rendered safely."""
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
    _check_upstream("cortex_url", settings.cortex_url)
    _check_upstream("loki_url", settings.loki_url)
    _check_listen("listen", settings.listen)
    if settings.health_listen is not None:
        _check_listen("health_listen", settings.health_listen)
        if _port(settings.health_listen) == _port(settings.listen):
            raise GatewayConfigError(
                f"health_listen: {settings.health_listen!r} has the data API port: use another port"
            )
    if not _CONFIG_DIR_RE.fullmatch(settings.config_dir) or "/../" in f"{settings.config_dir}/":
        raise GatewayConfigError(
            f"config_dir: {settings.config_dir!r} is not usable in the configuration: use "
            "an absolute path of letters, digits, '.', '_', '-' and '/' without '..'"
        )


def validate_keys(trusted: Mapping[str, str]) -> dict[str, str]:
    """The key set checked as an Opstrace authenticator does (`keys.check_key_set`)."""
    try:
        return keys.check_key_set(trusted, source="keys")
    except (keys.KeySetError, keys.KeyMaterialError) as error:
        raise GatewayConfigError(str(error)) from None


def key_file_name(kid: str) -> str:
    """The file holding a trusted key; only ever called with a key ID we computed."""
    if not _KID_RE.fullmatch(kid):
        raise GatewayConfigError(f"{kid!r} is not a key ID: expected 40 lowercase hex digits")
    return f"key-{kid}.pem"


def render_gateway_files(settings: GatewaySettings, trusted: Mapping[str, str]) -> dict[str, str]:
    """File name -> content of everything HAProxy reads: config, maps and key files.

    Deterministic for equal inputs (sorted everywhere), so the checksum of the result
    changes exactly when the behaviour can change.
    """
    validate_settings(settings)
    checked = validate_keys(trusted)
    tenants = gateway_tenants(settings.tenants)
    files = {
        HAPROXY_CONFIG: _haproxy_config(settings, checked),
        HOSTS_MAP: _hosts_map(settings, tenants),
        KEYS_MAP: "".join(f"{kid} {settings.config_dir}/{key_file_name(kid)}\n" for kid in checked),
    }
    files.update({key_file_name(kid): pem for kid, pem in checked.items()})
    return files


def config_checksum(files: Mapping[str, str]) -> str:
    """SHA-256 over file names and contents; the pod annotation that rolls the pods."""
    digest = hashlib.sha256()
    for file_name, content in sorted(files.items()):
        for part in (file_name, content):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


def upstream_address(url: str) -> str:
    """`host:port` of a checked upstream URL (port 80 when the URL has none)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return f"{parts.hostname}:{parts.port or 80}"


def upstream_problem(url: str) -> str | None:
    """Why `url` cannot be a backend of the gateway, or None if it can."""
    refusal = f"{url!r} is not an upstream URL: {_UPSTREAM_RULE}"
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


def _check_listen(field: str, address: str) -> None:
    match = _LISTEN_RE.fullmatch(address)
    if not match or not _is_ipv4(match["host"]) or not 1 <= int(match["port"]) <= 65535:
        raise GatewayConfigError(
            f"{field}: {address!r} is not a listen address: use IPV4:PORT with a port "
            "from 1 to 65535 (e.g. 0.0.0.0:8080)"
        )


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _hosts_map(settings: GatewaySettings, tenants: Sequence[str]) -> str:
    lines = [
        f"{names.endpoint_host(service, tenant, settings.instance, settings.domain)} {tenant}\n"
        for tenant in tenants
        for service in names.ENDPOINT_SERVICES
    ]
    return "".join(sorted(lines))


def _quoted(text: str) -> str:
    """A double-quoted HAProxy argument; the texts quoted here are our own constants."""
    assert all(c.isprintable() and c not in '"\\$%' for c in text), text
    return f'"{text}"'


def _haproxy_config(settings: GatewaySettings, trusted: Mapping[str, str]) -> str:
    d = settings.config_dir
    text = 'content-type "text/plain; charset=utf-8"'
    refuse = f"http-request return status 401 {text} string"
    audience = names.audience(settings.instance)
    prefix = names.subject("")
    token = "var(txn.token)"
    bearer = 'req.fhdr(authorization),regsub("^Bearer ","")'
    kid_lookup = f"{token},jwt_header_query('$.kid'),map_str({d}/{KEYS_MAP})"
    bad_claims = (
        "!audience_valid || !unexpired || nbf_present !nbf_passed"
        " || iat_present !iat_passed || !sub_is_tenant"
    )
    unexpected_tenant = f"{data_token.UNEXPECTED_TENANT_PREFIX}%[var(txn.token_tenant)]"
    server_options = "resolvers cluster_dns init-addr last,libc,none"
    health = (
        ""
        if settings.health_listen is None
        else f"""
# Liveness and readiness probes; kept off the data API port so that no tenant host
# and no path of Cortex or Loki is shadowed by it.
frontend health
    bind {settings.health_listen}
    monitor-uri {HEALTH_PATH}
    http-request return status 404
"""
    )
    preload = "".join(
        f'    acl trusted_key_file str(),jwt_verify("RS256","{d}/{key_file_name(kid)}") -m int 1\n'
        for kid in trusted
    )
    return f"""\
# Rendered by components/rules/gateway_config.py; edit the renderer, not this file.
# Data API gateway of instance {settings.instance!r}: authenticates Opstrace data API
# tokens, sets X-Scope-OrgID and routes to Cortex or Loki.
{HAPROXY_PROLOGUE}
# Upstream service names are resolved at runtime, so that the gateway starts (and
# answers probes) before the backends' DNS names exist.
resolvers cluster_dns
    parse-resolv-conf
    hold valid 10s
{health}
frontend data_api
    bind {settings.listen}
    # Upstreams see origin-form requests whatever form the client used.
    http-request set-uri %[pathq]

    # Tenant: the exact endpoint host (port suffix and case ignored) from {HOSTS_MAP}.
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.tenant) var(txn.host),map_str({d}/{HOSTS_MAP})
    acl known_host var(txn.tenant) -m found
    http-request return status 404 {text} string {_quoted(NOT_FOUND_BODY)} unless known_host

    # Credentials: "Bearer <token>", or the token as HTTP basic auth password.
    acl auth_present req.fhdr(authorization) -m len gt 0
    acl auth_bearer req.fhdr(authorization) -m beg "Bearer "
    acl auth_basic req.fhdr(authorization) -m beg "Basic "
    acl auth_single req.fhdr_cnt(authorization) eq 1
    {refuse} {_quoted(data_token.MISSING)} unless auth_present
    http-request set-var(txn.token) {bearer} if auth_bearer
    http-request set-var(txn.token) http_auth_pass if auth_basic
    acl token_present {token} -m len gt 0
    {refuse} {_quoted(data_token.BAD_FORMAT)} unless auth_single token_present

    # Token: RS256 by a trusted key, chosen by exact lookup of the kid in {KEYS_MAP}.
    http-request set-var(txn.alg) {token},jwt_header_query('$.alg')
    http-request set-var(txn.key_file) {kid_lookup}
    acl key_known var(txn.key_file) -m found
    http-request set-var(txn.signature) {token},jwt_verify("RS256",txn.key_file) if key_known
    acl alg_rs256 var(txn.alg) -m str RS256
    acl signature_valid var(txn.signature) -m int 1
    {refuse} {_quoted(data_token.BAD_TOKEN)} unless alg_rs256 signature_valid

    # Claims: aud names this instance; exp in the future; nbf and iat, when present,
    # not in the future (seconds, no leeway, like the reference); sub names a tenant.
    http-request set-var(txn.now) date
    http-request set-var(txn.exp_in) {token},jwt_payload_query('$.exp','int'),sub(txn.now)
    http-request set-var(txn.nbf_in) {token},jwt_payload_query('$.nbf','int'),sub(txn.now)
    http-request set-var(txn.iat_in) {token},jwt_payload_query('$.iat','int'),sub(txn.now)
    http-request set-var(txn.sub) {token},jwt_payload_query('$.sub')
    acl audience_valid {token},jwt_payload_query('$.aud') -m str {audience}
    acl unexpired var(txn.exp_in) -m int gt 0
    acl nbf_present {token},jwt_payload_query('$.nbf') -m found
    acl nbf_passed var(txn.nbf_in) -m int le 0
    acl iat_present {token},jwt_payload_query('$.iat') -m found
    acl iat_passed var(txn.iat_in) -m int le 0
    acl sub_is_tenant var(txn.sub) -m beg {prefix}
    {refuse} {_quoted(data_token.BAD_TOKEN)} if {bad_claims}

    # Tenant: the token's tenant must be the endpoint's.
    http-request set-var(txn.token_tenant) var(txn.sub),regsub("^{prefix}","")
    acl tenant_matches var(txn.token_tenant),strcmp(txn.tenant) eq 0
    http-request return status 401 {text} lf-string "{unexpected_tenant}" unless tenant_matches

    # Upstream: the tenant from the token, never the client's; credentials stay here.
    http-request del-header authorization
    http-request set-header x-scope-orgid %[var(txn.tenant)]
    use_backend cortex if {{ var(txn.host) -m beg cortex. }}
    use_backend loki if {{ var(txn.host) -m beg loki. }}

    # Never evaluated: names each trusted key file literally so that HAProxy loads it
    # at startup (2.6 verifies only with keys loaded then). One line per key.
{preload}
backend cortex
    server cortex {upstream_address(settings.cortex_url)} {server_options}

backend loki
    server loki {upstream_address(settings.loki_url)} {server_options}
"""
