"""The data API gateway's HAProxy configuration, rendered from plain settings.

Pure functions, no Pulumi: the Gateway component puts these files into ConfigMaps and
`python -m tools.gateway render` writes the same files to a directory, so the
configuration that the tests run against a real HAProxy is the one the pods get.

The decision is the reference one: `routes.route` for the path, then
`data_token.authenticate` for the token, expressed with built-ins that HAProxy 2.6 has
too (`jwt_verify`, `ub64dec`, `json_query`, `http_auth_pass`, maps, stick tables), so a
stock image runs it unchanged: the same files pass every end-to-end test on Debian's
2.6.12 and on the 3.4 LTS release the image pins (`make e2e-haproxy`).

How keys are found without trusting the token's `kid`:
- `keys.map` maps each trusted key ID (40 hex digits we computed from the PEM) to the
  path of its key file, `key-<kid>.pem`; `bindings.map` maps a bound key's ID to its
  tenant. The token's `kid` is only ever a lookup key into those maps (an exact string
  match); it never becomes part of a path or of an expression.
- HAProxy (2.6 and 3.4 alike) verifies only with keys it loaded while parsing the
  configuration, and it loads a key file only where the path appears literally in a
  `jwt_verify` call.
  Each key therefore gets one never-evaluated `acl trusted_key_file` line that names
  its file; the request rules pass the path looked up in `keys.map` as a variable.
  A path that was not preloaded makes `jwt_verify` fail (it fails closed).

The token is decoded once per request (`field(2,.),ub64dec` into a variable, then
`json_query` per claim; `jwt_payload_query` without a path would do on 3.4 only), and a
token accepted at a host is remembered in a stick table (`verified_tokens`, no `peers`:
a reload starts it empty), so that a repeated token skips the RSA verification; every
other rule still runs on every request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from components.rules import data_token, keys, names, routes
from components.rules.errors import OpstraceError

HAPROXY_CONFIG: Final = "haproxy.cfg"
HOSTS_MAP: Final = "hosts.map"
KEYS_MAP: Final = "keys.map"
BINDINGS_MAP: Final = "bindings.map"
ROUTES_MAP: Final = "routes.map"
METHODS_MAP: Final = "methods.map"
CRT_LIST: Final = "crt-list"
RELOAD_SCRIPT: Final = "reload-on-change.sh"
HEALTH_PATH: Final = "/healthz"
NOT_FOUND_BODY: Final = "no data API endpoint at this host"
"""The 404 body for a Host that is no tenant's endpoint."""
PLAIN_HTTP_STATUS: Final = 403
PLAIN_HTTP_BODY: Final = "plain HTTP is refused: use https://"
"""The answer to every request on the plain-HTTP port: refused, never forwarded, and not
redirected (a redirect makes clients send their token in clear text once more)."""
REFUSAL_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
"""The content type of every answer the gateway gives itself."""

DEFAULT_CONFIG_DIR: Final = "/usr/local/etc/haproxy"
"""Where the stock HAProxy image reads its configuration; the ConfigMaps are mounted here."""
CERTS_SUBDIR: Final = "certs"
"""The certificates' directory under the config directory, unless `certs_dir` says."""
DEFAULT_LISTEN: Final = "0.0.0.0:8443"
DEFAULT_HTTP_LISTEN: Final = "0.0.0.0:8080"
DEFAULT_HEALTH_LISTEN: Final = "0.0.0.0:8081"

ALPN: Final = "h2,http/1.1"
"""HTTP/2 first, as Opstrace's ingress offered it; HTTP/1.1 for the rest."""
VERIFIED_TOKENS_SIZE: Final = 10_000
"""Entries of the verified-token cache (token, host); the least recent go first. An
instance has at most about 2,000 credentials, each used at two hosts."""
VERIFIED_TOKENS_SECONDS: Final = 600
"""How long a token stays verified after its verification (not refreshed by use)."""
HARD_STOP_SECONDS: Final = 130
"""After a reload or a stop, the old process ends at the latest this long after: more
than `timeout server` (so no request that may still succeed is cut), and the bound on
how long a long-lived connection (a Loki tail) keeps an old configuration."""
RELOAD_POLL_SECONDS: Final = 2
"""How often the reload script looks at the files, by default."""

_KID_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_DIR_RE: Final = re.compile(r"^/[A-Za-z0-9._/-]*$")
_LISTEN_RE: Final = re.compile(r"^(?P<host>[0-9.]+):(?P<port>[0-9]{1,5})$")
_UPSTREAM_RULE: Final = (
    "use http://HOST[:PORT] with a DNS name or IPv4 address, no path, query, "
    "credentials or TLS (e.g. http://cortex-gateway.cortex.svc.cluster.local:80)"
)
_UPSTREAMS: Final = ("cortex_push_url", "cortex_query_url", "loki_push_url", "loki_query_url")
_TLS_CIPHERS: Final = ":".join(
    f"ECDHE-{key}-{cipher}"
    for cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
    for key in ("ECDSA", "RSA")
)
_TLS13_CIPHERSUITES: Final = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
)


HAPROXY_PROLOGUE: Final = f"""\
global
    log stdout format raw local0 info
    maxconn 4096
    # TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only (Mozilla's "intermediate").
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-bind-ciphers {_TLS_CIPHERS}
    ssl-default-bind-ciphersuites {_TLS13_CIPHERSUITES}
    # A reload or a stop lets what is in flight finish, for at most this long.
    hard-stop-after {HARD_STOP_SECONDS}s

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    # On a reload or a stop, idle keep-alive connections are not cut (a client could be
    # sending on one that very moment): each one's next request is answered, with
    # "Connection: close" (HTTP/1) or GOAWAY (HTTP/2), and the client reconnects.
    option idle-close-on-response
    timeout connect 5s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout client 60s
    timeout server 120s
    # Loki's tail (a WebSocket); a reload ends it after hard-stop-after.
    timeout tunnel 1h
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
    cortex_push_url: str = ""
    """Where metrics pushes go (Cortex/Mimir distributor), `http://host[:port]`."""
    cortex_query_url: str = ""
    """Where metrics queries go (query frontend), `http://host[:port]`."""
    loki_push_url: str = ""
    """Where log pushes go (Loki distributor), `http://host[:port]`."""
    loki_query_url: str = ""
    """Where log queries and tails go (Loki query frontend), `http://host[:port]`."""
    metrics_query_prefix: str = ""
    """Path prefix of the metrics backend's query API: "" for Cortex's `/api/v1/...`
    (Opstrace's layout), "/prometheus" for Grafana Mimir (`/prometheus/api/v1/...`)."""
    listen: str = DEFAULT_LISTEN
    """IPv4 address and port of the data API listener (HTTPS)."""
    http_listen: str | None = DEFAULT_HTTP_LISTEN
    """Address and port of the plain-HTTP listener that refuses everything, or None."""
    health_listen: str | None = DEFAULT_HEALTH_LISTEN
    """Address and port of the health endpoint for probes, or None for none."""
    config_dir: str = DEFAULT_CONFIG_DIR
    """The absolute directory the rendered files live in when HAProxy reads them."""
    certs_dir: str | None = None
    """The absolute directory of `<tenant>.pem` (certificate chain) and `<tenant>.pem.key`
    (private key) of every tenant; None: `<config_dir>/certs`."""

    @property
    def certificates_dir(self) -> str:
        """Where the tenants' certificates and private keys are read from."""
        return self.certs_dir if self.certs_dir is not None else f"{self.config_dir}/{CERTS_SUBDIR}"


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
    for field in _UPSTREAMS:
        _check_upstream(field, getattr(settings, field))
    if problem := routes.metrics_query_prefix_problem(settings.metrics_query_prefix):
        raise GatewayConfigError(f"metrics_query_prefix: {problem}")
    _check_listeners(settings)
    _check_dir("config_dir", settings.config_dir)
    if settings.certs_dir is not None:
        _check_dir("certs_dir", settings.certs_dir)


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
    return f"key-{kid}.pem"


def render_gateway_files(
    settings: GatewaySettings,
    trusted: Mapping[str, str],
    bindings: Mapping[str, str] = data_token.NO_BINDINGS,
) -> dict[str, str]:
    """File name -> content of everything HAProxy reads, and the reload script.

    `trusted` is the key set (key ID -> PEM); `bindings` maps a key ID to the one tenant
    whose endpoints accept its tokens (keys absent from it are instance-wide).
    Deterministic for equal inputs (sorted everywhere), so the checksum of the result
    changes exactly when the behaviour can change. The certificates are not among the
    files: they come from each tenant's TLS Secret (see `certificates_dir`).
    """
    validate_settings(settings)
    checked = validate_keys(trusted)
    tenants = gateway_tenants(settings.tenants)
    bound = validate_bindings(bindings, checked, tenants)
    files = {
        HAPROXY_CONFIG: _haproxy_config(settings, checked),
        HOSTS_MAP: _hosts_map(settings, tenants),
        KEYS_MAP: "".join(f"{kid} {settings.config_dir}/{key_file_name(kid)}\n" for kid in checked),
        BINDINGS_MAP: "".join(f"{kid} {tenant}\n" for kid, tenant in bound.items()),
        ROUTES_MAP: _routes_map(),
        METHODS_MAP: _methods_map(),
        CRT_LIST: _crt_list(settings, tenants),
        RELOAD_SCRIPT: reload_script(settings),
    }
    files.update({key_file_name(kid): pem for kid, pem in checked.items()})
    return files


def config_checksum(files: Mapping[str, str]) -> str:
    """SHA-256 over file names and contents, in name order."""
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


def tls_bind(settings: GatewaySettings) -> str:
    """The data API's `bind` line: TLS with each tenant's certificate chosen by SNI."""
    return (
        f"bind {settings.listen} ssl crt-list {settings.config_dir}/{CRT_LIST} "
        f"alpn {ALPN} strict-sni"
    )


def _check_upstream(field: str, url: str) -> None:
    if problem := upstream_problem(url):
        raise GatewayConfigError(f"{field}: {problem}")


def _check_listeners(settings: GatewaySettings) -> None:
    listeners = {
        "listen": (settings.listen, "data API"),
        "http_listen": (settings.http_listen, "plain-HTTP"),
        "health_listen": (settings.health_listen, "health"),
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
    if not _DIR_RE.fullmatch(directory) or "/../" in f"{directory}/":
        raise GatewayConfigError(
            f"{field}: {directory!r} is not usable in the configuration: use "
            "an absolute path of letters, digits, '.', '_', '-' and '/' without '..'"
        )


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


def _crt_list(settings: GatewaySettings, tenants: Sequence[str]) -> str:
    """One line per tenant: its certificate, served only for its two endpoint hosts.

    The system tenant comes first, which makes it HAProxy's default certificate; with
    `strict-sni` a client naming no endpoint host gets no certificate at all.
    """
    ordered = sorted(tenants, key=lambda tenant: (tenant != names.SYSTEM_TENANT, tenant))
    lines = []
    for tenant in ordered:
        hosts = " ".join(names.endpoint_hosts(tenant, settings.instance, settings.domain))
        lines.append(f"{settings.certificates_dir}/{certificate_file_name(tenant)} {hosts}\n")
    return "".join(lines)


def _quoted(text: str) -> str:
    """A double-quoted HAProxy argument; the texts quoted here are our own constants."""
    assert all(c.isprintable() and c not in '"\\$%' for c in text), text
    return f'"{text}"'


_LABEL_SEGMENT: Final = f"/label/{routes.LABEL_NAME}/values"
_LABEL_PLACEHOLDER: Final = "_"
"""Every label name in a path becomes this before the route lookup; being a label name
itself, it cannot reach the maps any other way than through that rewrite."""


def _route_key(service: str, path: str) -> str:
    """The key of a route path in the route maps: `<service>:<path>`, label names as `_`."""
    assert routes.is_literal(path) or path.endswith(_LABEL_SEGMENT), path
    return f"{service}:{path.replace(routes.LABEL_NAME, _LABEL_PLACEHOLDER)}"


def _routes_map() -> str:
    """Route key -> the methods the route serves (its `Allow` header)."""
    return "".join(
        f"{_route_key(rule.service, path)} {routes.allow_header(rule.methods)}\n"
        for rule in routes.ROUTES
        for path in rule.client_paths()
    )


def _methods_map() -> str:
    """`<METHOD>:<route key>` -> the backend that serves it."""
    return "".join(
        f"{method}:{_route_key(rule.service, path)} {rule.backend}\n"
        for rule in routes.ROUTES
        for path in rule.client_paths()
        for method in rule.methods
    )


def _path_rewrite(settings: GatewaySettings) -> str:
    """The metrics query API reaches its upstream as `<metrics_query_prefix>/api/v1/...`."""
    query = "{ var(txn.backend) -m str cortex_query }"
    lines = [
        "    http-request set-path %[path,regsub(^/prometheus/,/)] "
        f"if {query} {{ path -m beg /prometheus/ }}\n"
    ]
    if settings.metrics_query_prefix:
        lines.append(
            f"    http-request set-path {settings.metrics_query_prefix}%[path] if {query}\n"
        )
    return "".join(lines)


def _haproxy_config(settings: GatewaySettings, trusted: Mapping[str, str]) -> str:
    d = settings.config_dir
    text = f"content-type {_quoted(REFUSAL_CONTENT_TYPE)}"
    refuse = f"http-request return status 401 {text} string"
    audience = names.audience(settings.instance)
    prefix = names.subject("")
    token = "var(txn.token)"
    payload = "var(txn.payload)"
    bearer = 'var(txn.authorization),regsub("^Bearer ","")'
    miss = "unless verified_before"
    cache_key = f"{token},concat(,txn.host,),sha2(256)"
    kid = "var(txn.header),json_query('$.kid')"
    sub = f"{payload},json_query('$.sub')"
    label_segment = routes.path_pattern(_LABEL_SEGMENT).removeprefix("^")
    label_placeholder = _LABEL_SEGMENT.replace(routes.LABEL_NAME, _LABEL_PLACEHOLDER)
    no_route = f"http-request return status 404 {text} string {_quoted(routes.ROUTE_NOT_FOUND)}"
    wrong_method = (
        f"http-request return status 405 {text} string {_quoted(routes.METHOD_NOT_ALLOWED)}"
        ' hdr allow "%[var(txn.allow)]"'
    )
    verify = f'http-request set-var(txn.signature) {token},jwt_verify("RS256",txn.key_file)'
    bad_claims = " || ".join(
        [
            "!unexpired",
            "nbf_future",
            *(
                f"!verified_before {terms}"
                for terms in (
                    "nbf_present !nbf_int",
                    "iat_present !iat_int",
                    "iat_future",
                    "!audience_valid",
                    "!sub_is_tenant",
                )
            ),
        ]
    )
    unexpected_tenant = f"{data_token.UNEXPECTED_TENANT_PREFIX}%[var(txn.token_tenant)]"
    wrong_tenant = f'http-request return status 401 {text} lf-string "{unexpected_tenant}"'
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
    plain_http = (
        ""
        if settings.http_listen is None
        else f"""
# Plain HTTP: every request is refused with the same answer and nothing is forwarded.
# Not a redirect: that would make clients send their token in clear text once more.
frontend plain_http
    bind {settings.http_listen}
    option httpclose
    http-request return status {PLAIN_HTTP_STATUS} {text} string {_quoted(PLAIN_HTTP_BODY)}
"""
    )
    preload = "".join(
        f'    acl trusted_key_file str(),jwt_verify("RS256","{d}/{key_file_name(kid)}") -m int 1\n'
        for kid in trusted
    )
    backends = "".join(
        f"""
backend {backend}
    server {backend} {upstream_address(getattr(settings, f"{backend}_url"))} {server_options}
"""
        for backend in (url.removesuffix("_url") for url in _UPSTREAMS)
    )
    return f"""\
# Rendered by components/rules/gateway_config.py; edit the renderer, not this file.
# Data API gateway of instance {settings.instance!r}: terminates TLS, lets only data API
# routes through, authenticates Opstrace data API tokens, sets X-Scope-OrgID and
# forwards to the metrics or logs backend.
{HAPROXY_PROLOGUE}
# Upstream service names are resolved at runtime, so that the gateway starts (and
# answers probes) before the backends' DNS names exist.
resolvers cluster_dns
    parse-resolv-conf
    hold valid 10s
{health}{plain_http}
# Tokens accepted at a host since this process started: SHA-256 of token and host. No
# peers, so a reload (a key removed, say) starts with an empty table.
backend verified_tokens
    stick-table type binary len 32 size {VERIFIED_TOKENS_SIZE} expire {VERIFIED_TOKENS_SECONDS}s

frontend data_api
    {tls_bind(settings)}
    # Upstreams see origin-form requests whatever form the client used.
    http-request set-uri %[pathq] unless {{ url_beg / }}

    # Rules numbered as in docs/gateway.md; the first refusal wins.
    # 1. Tenant: the exact endpoint host (port suffix and case ignored) from {HOSTS_MAP}.
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.tenant) var(txn.host),map_str({d}/{HOSTS_MAP})
    acl known_host var(txn.tenant) -m found
    http-request return status 404 {text} string {_quoted(NOT_FOUND_BODY)} unless known_host

    # 2. Route: only the data API paths of the endpoint's service ({ROUTES_MAP}, from
    # components/rules/routes.py), looked up exactly as sent (a label name becomes
    # "{_LABEL_PLACEHOLDER}"), and only with the methods {METHODS_MAP} lists for them; refused
    # before any credential is looked at.
    http-request set-var(txn.path) path,regsub({label_segment},{label_placeholder})
    http-request set-var(txn.route) var(txn.host),field(1,.),concat(:,txn.path)
    http-request set-var(txn.allow) var(txn.route),map_str({d}/{ROUTES_MAP})
    http-request set-var(txn.backend) method,concat(:,txn.route),map_str({d}/{METHODS_MAP})
    {no_route} unless {{ var(txn.allow) -m found }}
    {wrong_method} unless {{ var(txn.backend) -m found }}

    # 3-4. Credentials: "Bearer <token>", or the token as HTTP basic auth password.
    http-request set-var(txn.authorization) req.fhdr(authorization)
    acl auth_present var(txn.authorization) -m len gt 0
    acl auth_bearer var(txn.authorization) -m beg "Bearer "
    acl auth_basic var(txn.authorization) -m beg "Basic "
    acl auth_single req.fhdr_cnt(authorization) eq 1
    {refuse} {_quoted(data_token.MISSING)} unless auth_present
    http-request set-var(txn.token) {bearer} if auth_bearer
    http-request set-var(txn.token) http_auth_pass if auth_basic
    acl token_present {token} -m len gt 0
    {refuse} {_quoted(data_token.BAD_FORMAT)} unless auth_single token_present

    # 5. Signature: RS256 by a key trusted at this endpoint: its kid in {KEYS_MAP}, and
    # either unbound or bound to this tenant in {BINDINGS_MAP}.
    # A token accepted at this host since the last reload (rule 8) skips every rule whose
    # outcome only depends on the token, the host and these files: the signature, aud,
    # iat, sub and the tenant. exp and nbf are checked on every request.
    # Every known host is cortex.* or loki.*, so token + host is unambiguous.
    http-request set-var(txn.verified_before) {cache_key},in_table(verified_tokens)
    acl verified_before var(txn.verified_before) -m bool
    http-request set-var(txn.header) {token},field(1,.),ub64dec {miss}
    http-request set-var(txn.key_file) {kid},map_str({d}/{KEYS_MAP}) {miss}
    acl key_known var(txn.key_file) -m found
    acl key_bound {kid},map_str({d}/{BINDINGS_MAP}) -m found
    acl key_bound_here {kid},map_str({d}/{BINDINGS_MAP}),strcmp(txn.tenant) eq 0
    {verify} if key_known !key_bound || key_known key_bound_here
    acl alg_rs256 var(txn.header),json_query('$.alg') -m str RS256
    acl signature_valid var(txn.signature) -m int 1
    {refuse} {_quoted(data_token.BAD_TOKEN)} unless verified_before || alg_rs256 signature_valid

    # 6. Claims, from the payload decoded once: exp in the future; nbf and iat, when
    # present, integers and not in the future (seconds, no leeway, like the reference);
    # aud names this instance; sub names a tenant.
    http-request set-var(txn.payload) {token},field(2,.),ub64dec
    http-request set-var(txn.now) date
    acl unexpired {payload},json_query('$.exp','int'),sub(txn.now) -m int gt 0
    acl nbf_future {payload},json_query('$.nbf','int'),sub(txn.now) -m int gt 0
    acl nbf_present {payload},json_query('$.nbf') -m found
    acl nbf_int {payload},json_query('$.nbf','int') -m found
    acl iat_future {payload},json_query('$.iat','int'),sub(txn.now) -m int gt 0
    acl iat_present {payload},json_query('$.iat') -m found
    acl iat_int {payload},json_query('$.iat','int') -m found
    acl audience_valid {payload},json_query('$.aud') -m str {audience}
    acl sub_is_tenant {sub} -m beg {prefix}
    {refuse} {_quoted(data_token.BAD_TOKEN)} if {bad_claims}

    # 7. Tenant: the token's tenant must be the endpoint's.
    http-request set-var(txn.token_tenant) {sub},regsub("^{prefix}","") {miss}
    acl tenant_matches var(txn.token_tenant),strcmp(txn.tenant) eq 0
    {wrong_tenant} unless verified_before || tenant_matches

    # 8. Accepted: remember the token at this host (only now, after every rule passed).
    http-request track-sc0 {cache_key} table verified_tokens {miss}

    # 9. Upstream: the tenant from the token, never the client's; credentials stay here.
    http-request del-header authorization
    http-request set-header x-scope-orgid %[var(txn.tenant)]
{_path_rewrite(settings)}    use_backend %[var(txn.backend)]

    # Never evaluated: names each trusted key file literally so that HAProxy loads it
    # at startup (2.6 verifies only with keys loaded then). One line per key.
{preload}{backends}"""


_RELOAD_SCRIPT: Final = r"""#!/bin/sh
# Rendered by components/rules/gateway_config.py; edit the renderer, not this file.
#
# Reloads HAProxy when the files it reads change, so that key and certificate changes
# need no pod restart. Runs beside HAProxy from the same image (POSIX sh and coreutils
# only), as the same user, in a pod with a shared process namespace.
#
# Every INTERVAL seconds it hashes the files of the configuration and certificate
# directories (following the projected volume's symlinks). When the hash has changed
# and is the same again one second later, it checks the files with `haproxy -c` and, if
# they pass, sends SIGUSR2 to the HAProxy master: a new worker loads them and the old
# one finishes what it has in flight. Files that fail the check are reported and not
# loaded (HAProxy keeps serving the previous ones) until they change again.
#
# Usage: sh @RELOAD_SCRIPT@ [INTERVAL_SECONDS]   (default @INTERVAL@)
# The haproxy binary is `haproxy` on PATH, or $HAPROXY.
set -u

config_dir='@CONFIG_DIR@'
certs_dir='@CERTS_DIR@'
config="$config_dir/@HAPROXY_CONFIG@"
interval=${1:-@INTERVAL@}
haproxy=${HAPROXY:-haproxy}

log() {
    echo "reload-on-change: $*"
}

files_hash() {
    sha256sum -- "$config_dir"/* "$certs_dir"/* 2>/dev/null | sha256sum
}

# status_field NAME PID: a field of /proc/PID/status (shell built-ins only).
status_field() {
    while read -r name value rest; do
        if [ "$name" = "$1:" ]; then
            echo "$value"
            return 0
        fi
    done 2>/dev/null <"/proc/$2/status"
    return 1
}

# master_pid: the HAProxy master of this configuration: an `haproxy` process started
# with `-W` and `-f <this haproxy.cfg>` whose parent is not HAProxy (its workers are its
# children). /proc only: the image has no procps.
master_pid() {
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        { read -r comm <"$dir/comm"; } 2>/dev/null || continue
        [ "$comm" = haproxy ] || continue
        ppid=$(status_field PPid "$pid") || continue
        parent=
        { read -r parent <"/proc/$ppid/comm"; } 2>/dev/null
        [ "$parent" = haproxy ] && continue
        arguments=" $(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) "
        case $arguments in *" -W "*) ;; *) continue ;; esac
        case $arguments in *" -f $config "*) ;; *) continue ;; esac
        echo "$pid"
        return 0
    done
    return 1
}

# handles PID NUMBER: PID has a handler for signal NUMBER. HAProxy's master re-executes
# itself after each load; a signal in that window would meet the default action (exit).
handles() {
    mask=$(status_field SigCgt "$1") || return 1
    mask=${mask#????????}
    [ $(((0x$mask >> ($2 - 1)) & 1)) -eq 1 ]
}

reload() {
    tries=0
    while [ "$tries" -lt 100 ]; do
        if pid=$(master_pid) && handles "$pid" 12; then
            kill -s USR2 "$pid" && return 0
        fi
        tries=$((tries + 1))
        sleep 0.1
    done
    log "no HAProxy master ready for SIGUSR2 found; will try again"
    return 1
}

# The files as they are now are the loaded ones; said only once they are hashed, so
# that a change made after the line appears is one the script will see.
loaded=$(files_hash)
log "watching $config_dir and $certs_dir every ${interval}s"
while :; do
    sleep "$interval"
    current=$(files_hash)
    [ "$current" = "$loaded" ] && continue
    sleep 1
    [ "$(files_hash)" = "$current" ] || continue
    if output=$("$haproxy" -c -f "$config" 2>&1); then
        reload || continue
        log "files changed: HAProxy reloaded (SIGUSR2 to master $pid)"
    else
        log "files changed but fail 'haproxy -c', HAProxy keeps the previous ones:"
        echo "$output"
    fi
    loaded=$current
done
"""


def reload_script(settings: GatewaySettings) -> str:
    """The POSIX sh script that reloads HAProxy when its files change (a sidecar)."""
    return (
        _RELOAD_SCRIPT.replace("@CONFIG_DIR@", settings.config_dir)
        .replace("@CERTS_DIR@", settings.certificates_dir)
        .replace("@INTERVAL@", str(RELOAD_POLL_SECONDS))
        .replace("@RELOAD_SCRIPT@", RELOAD_SCRIPT)
        .replace("@HAPROXY_CONFIG@", HAPROXY_CONFIG)
    )
