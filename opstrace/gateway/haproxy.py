"""haproxy.cfg: the data API gateway's rules, rendered from its settings and key set.

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
  its file, in a section of its own that ends the file (where the key shards' lines
  join, `opstrace.key_shards`); the request rules pass the path looked up in `keys.map`
  as a variable.
  A path that was not preloaded makes `jwt_verify` fail (it fails closed).

The token is decoded once per request (`field(2,.),ub64dec` into a variable, then
`json_query` per claim; `jwt_payload_query` without a path would do on 3.4 only), and a
token accepted at a host is remembered in a stick table (`verified_tokens`, no `peers`:
a reload starts it empty), so that a repeated token skips the RSA verification; every
other rule still runs on every request.

A tenant's Grafana host (`grafana.<tenant>...`, only for tenants in `grafana_urls`) is a
known host of `hosts.map` like its data API hosts, told apart by its first label: after
the host and allowlist rules (1, 1b) an `http-request allow` ends the frontend's rules
for it (no route, token, scope or rate rule: Grafana does its own login), and a
`use_backend` on the tenant's name sends it to that tenant's backend, `grafana_<tenant>`,
which sets the forwarding headers. A lookup of a backend by name, whatever the number of
tenants; a data API host never gets there, and a Grafana host never reaches a data API
backend (it has no route, and the Grafana `use_backend` comes first: HAProxy stops at a
dynamic name it cannot find, with a 503).

The in-cluster listener (`internal_listen`) is a second `bind` of the same frontend,
named so that rule 1b can skip requests that arrived on it: the same certificates and
every other rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opstrace import data_token, names, scopes
from opstrace.gateway import maps, routes, sources
from opstrace.gateway.settings import (
    ALLOWED_NETWORKS_MAP,
    BINDINGS_MAP,
    CREDENTIALS_MAP,
    CRT_LIST,
    HEALTH_PATH,
    HOSTS_MAP,
    KEYS_MAP,
    METHODS_MAP,
    NETWORKS_MAP,
    RATE_LIMITS_MAP,
    ROUTES_MAP,
    SCOPES_MAP,
    UPSTREAM_FIELDS,
    GatewaySettings,
    key_file_name,
    upstream_address,
)

NOT_FOUND_BODY: Final = "no data API endpoint at this host"
"""The 404 body for a Host that is no tenant's endpoint."""
GRAFANA_ROUTE: Final = "grafana"
"""The access log's `route` of every request to a Grafana host."""
GRAFANA_BACKEND_PREFIX: Final = "grafana_"
"""A tenant's Grafana backend is `grafana_<tenant>` (no data API backend starts so)."""
INTERNAL_BIND: Final = "internal"
"""The name of the in-cluster listener's `bind` line, which rule 1b tests (`so_name`)."""
PLAIN_HTTP_STATUS: Final = 403
PLAIN_HTTP_BODY: Final = "plain HTTP is refused: use https://"
"""The answer to every request on the plain-HTTP port: refused, never forwarded, and not
redirected (a redirect makes clients send their token in clear text once more)."""
REFUSAL_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
"""The content type of every answer the gateway gives itself."""

ALPN: Final = "h2,http/1.1"
"""HTTP/2 first, as Opstrace's ingress offered it; HTTP/1.1 for the rest."""
TRUSTED_KEYS_SECTION: Final = "trusted_keys"
"""The section, last in haproxy.cfg, of the lines that load the trusted key files."""
VERIFIED_TOKENS_SIZE: Final = 40_000
"""Entries of the verified-token cache (token, host); the least recent go first. An
instance has at most about 20,000 credentials (`opstrace.key_shards`), each used at two
hosts. Entries are allocated as they are made."""
VERIFIED_TOKENS_SECONDS: Final = 600
"""How long a token stays verified after its verification (not refreshed by use)."""
HARD_STOP_SECONDS: Final = 130
"""After a reload or a stop, the old process ends at the latest this long after: more
than `timeout server` (so no request that may still succeed is cut), and the bound on
how long a long-lived connection (a Loki tail) keeps an old configuration."""

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


def tls_bind(settings: GatewaySettings, address: str | None = None) -> str:
    """The data API's `bind` line: TLS with each tenant's certificate chosen by SNI."""
    return (
        f"bind {address or settings.listen} ssl crt-list {settings.config_dir}/{CRT_LIST} "
        f"alpn {ALPN} strict-sni"
    )


def _binds(settings: GatewaySettings) -> str:
    """The public listener, and the in-cluster one (same TLS, named for rule 1b)."""
    lines = [f"    {tls_bind(settings)}"]
    if settings.internal_listen is not None:
        internal = tls_bind(settings, settings.internal_listen)
        lines.append(f"    {internal} name {INTERNAL_BIND}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A double-quoted HAProxy argument; the texts quoted here are our own constants."""
    assert all(c.isprintable() and c not in '"\\$%' for c in text), text
    return f'"{text}"'


def _path_rewrite(settings: GatewaySettings) -> str:
    """The Prometheus API (queries, the ruler's rules and alerts) reaches the metrics
    backend as `<metrics_query_prefix>/api/v1/...`, the ruler's configuration API as
    `<ruler_config_prefix>/...`, OTLP metrics as `<metrics_otlp_path>` (where Cortex and
    Mimir differ)."""
    config_api = maps.route_key("cortex", routes.RULER_CONFIG_PATH)
    otlp = maps.route_key("cortex", routes.OTLP_METRICS_PATH)
    assert [r.client_paths() for r in routes.ROUTES if r.rewrite == routes.OTLP_METRICS] == [
        (routes.OTLP_METRICS_PATH,)
    ]
    metrics = sorted({rule.backend for rule in routes.ROUTES if rule.rewrite == routes.METRICS_API})
    # Every other route of these backends is the ruler's configuration API.
    assert all(
        rule.rewrite == routes.METRICS_API
        or rule.client_paths()[0].startswith(routes.RULER_CONFIG_PATH)
        for rule in routes.ROUTES
        if rule.backend in metrics
    )
    lines = [f"    acl ruler_config_api var(txn.route) -m beg {config_api}\n"]
    if settings.metrics_otlp_path != routes.OTLP_METRICS_PATH:
        lines.append(
            f"    http-request set-path {settings.metrics_otlp_path} "
            f"if {{ var(txn.route) -m str {otlp} }}\n"
        )
    if settings.ruler_config_prefix != routes.RULER_CONFIG_PATH:
        lines.append(
            f"    http-request set-path %[path,regsub(^{routes.RULER_CONFIG_PATH},"
            f"{settings.ruler_config_prefix})] if ruler_config_api\n"
        )
    lines += [
        f"    acl metrics_api var(txn.backend) -m str {' '.join(metrics)}\n",
        "    http-request set-path %[path,regsub(^/prometheus/,/)] "
        "if metrics_api !ruler_config_api { path -m beg /prometheus/ }\n",
    ]
    if settings.metrics_query_prefix:
        lines.append(
            f"    http-request set-path {settings.metrics_query_prefix}%[path] "
            "if metrics_api !ruler_config_api\n"
        )
    return "".join(lines)


_TEXT: Final = f"content-type {_quoted(REFUSAL_CONTENT_TYPE)}"
_REFUSE: Final = f"http-request return status 401 {_TEXT} string"
_TOKEN: Final = "var(txn.token)"
_PAYLOAD: Final = "var(txn.payload)"
_MISS: Final = "unless verified_before"
"""Skips a rule whose outcome the verified-token cache already knows (rule 5)."""
_CACHE_KEY: Final = f"{_TOKEN},concat(,txn.host,),sha2(256)"
_KID: Final = "var(txn.kid)"
_SUB: Final = f"{_PAYLOAD},json_query('$.sub')"
_SERVER_OPTIONS: Final = "resolvers cluster_dns init-addr last,libc,none"


def haproxy_config(settings: GatewaySettings) -> str:
    """haproxy.cfg but its key lines: process defaults, the probe and plain-HTTP
    listeners, the data API with its rules in docs/gateway.md's order, the backends, and
    the section the key lines (`key_preloads`) end it with."""
    return f"""\
# Rendered by opstrace/gateway/haproxy.py; edit the renderer, not this file.
# Data API gateway of instance {settings.instance!r}: terminates TLS, lets only data API
# routes through, authenticates Opstrace data API tokens, sets X-Scope-OrgID and
# forwards to the metrics or logs backend.
{HAPROXY_PROLOGUE}
# Upstream service names are resolved at runtime, so that the gateway starts (and
# answers probes) before the backends' DNS names exist.
resolvers cluster_dns
    parse-resolv-conf
    hold valid 10s
{_grafana_resolvers(settings)}{_health_frontend(settings)}{_plain_http_frontend(settings)}
{usage_ring(settings)}
# Tokens accepted at a host since this process started: SHA-256 of token and host. No
# peers, so a reload (a key removed, say) starts with an empty table.
backend verified_tokens
    stick-table type binary len 32 size {VERIFIED_TOKENS_SIZE} expire {VERIFIED_TOKENS_SECONDS}s

# Requests per second of each rate-limited credential (its key ID), at this pod.
backend credential_rates
    stick-table type string len 64 size {VERIFIED_TOKENS_SIZE} expire 10s store http_req_rate(1s)

frontend data_api
{_binds(settings)}
{_access_log(settings)}    # Upstreams see origin-form requests whatever form the client used.
    http-request set-uri %[pathq] unless {{ url_beg / }}

    # Rules numbered as in docs/gateway.md; the first refusal wins.
{_tenant_and_route_rules(settings)}
{_credential_rules()}
{_signature_rules(settings)}
{_claim_and_tenant_rules(settings)}
{_scope_rules(settings)}
{_rate_rules(settings)}
    # 10. Accepted: remember the token at this host (only now, after every rule passed).
    http-request track-sc0 {_CACHE_KEY} table verified_tokens {_MISS}

    # 11. Upstream: the tenant from the token, never the client's; credentials stay here.
    http-request del-header authorization
    http-request set-header x-scope-orgid %[var(txn.tenant)]
{_path_rewrite(settings)}{_GRAFANA_SWITCH}    use_backend %[var(txn.backend)]
{_backends(settings)}{_grafana_backends(settings)}
# Never used for traffic: names each trusted key file literally so that HAProxy loads it
# at startup (2.6 verifies only with keys loaded then). One line per key, last in the
# file: the key shards' lines (`key_preloads`) join here. Defaults of its own, so that it
# takes nothing of the sections above.
defaults {TRUSTED_KEYS_SECTION}_defaults
    mode http

backend {TRUSTED_KEYS_SECTION}
"""


ACCESS_LOG_FIELDS: Final = (
    ("tenant", "%[var(txn.tenant)]"),
    ("credential", "%[var(txn.credential)]"),
    ("key", "%[var(txn.credential_key)]"),
    ("route", "%[var(txn.route)]"),
    ("scope", "%[var(txn.needed_scope)]"),
    ("status", "%ST"),
    ("bytes_in", "%U"),
    ("bytes_out", "%B"),
    ("ms", "%Ta"),
    ("client", "%ci"),
    ("method", "%HM"),
    ("version", "%HV"),
)
"""The audit fields of each access log line, `name=value`, `-` where a value is unknown
(no known host, no route, or a token of no trusted key). Never the token or the query."""


def _access_log(settings: GatewaySettings) -> str:
    """Each request's line names the tenant, the credential (its names and key ID, looked
    up in the credentials map by the token's `kid` in rule 5, so only a trusted key's ever
    shows), the route, the scope it needs, the status and the bytes each way."""
    fields = " ".join(f"{name}={value}" for name, value in ACCESS_LOG_FIELDS)
    return f"""\
    # The audit trail: one line per request (docs/gateway.md, Access log).
    log-format "{fields}"
{usage_logger(settings)}"""


USAGE_RING: Final = "usage"
USAGE_RING_BYTES: Final = 1024 * 1024
"""The ring's size: about 4,000 lines, what the sidecar may fall behind by."""


def usage_logger(settings: GatewaySettings) -> str:
    """A frontend's `log` line that writes its lines into the usage ring too."""
    if not settings.usage_log:
        return ""
    return (
        "    # Each line into the ring the sidecar counts from (sidecar/usage.py) too.\n"
        f"    log ring@{USAGE_RING} local0 info\n"
    )


def usage_ring(settings: GatewaySettings) -> str:
    """The ring section `usage_logger` writes into, forwarded to `settings.usage_log`."""
    if not settings.usage_log:
        return ""
    return f"""
# The access log lines, forwarded over TCP to the sidecar, which counts them: a copy in
# memory per request, many lines per write (octet-counted framing, RFC 6587).
ring {USAGE_RING}
    format raw
    maxlen 2048
    size {USAGE_RING_BYTES}
    timeout connect 5s
    timeout server 10s
    server sidecar {settings.usage_log} log-proto octet-count
"""


def _health_frontend(settings: GatewaySettings) -> str:
    if settings.health_listen is None:
        return ""
    return f"""
# Liveness and readiness probes; kept off the data API port so that no tenant host
# and no path of Cortex or Loki is shadowed by it.
frontend health
    bind {settings.health_listen}
    monitor-uri {HEALTH_PATH}
    http-request return status 404
"""


def _plain_http_frontend(settings: GatewaySettings) -> str:
    if settings.http_listen is None:
        return ""
    return f"""
# Plain HTTP: every request is refused with the same answer and nothing is forwarded.
# Not a redirect: that would make clients send their token in clear text once more.
frontend plain_http
    bind {settings.http_listen}
    option httpclose
    http-request return status {PLAIN_HTTP_STATUS} {_TEXT} string {_quoted(PLAIN_HTTP_BODY)}
"""


def _tenant_and_route_rules(settings: GatewaySettings) -> str:
    """Rules 1-2: which tenant the host is, whether the client's address may reach it
    (not asked on the in-cluster listener), a Grafana host forwarded at once (1c), and
    whether the route is a data API route."""
    d = settings.config_dir
    label_segment = routes.path_pattern(maps.LABEL_SEGMENT).removeprefix("^")
    label_placeholder = maps.LABEL_SEGMENT.replace(routes.LABEL_NAME, maps.LABEL_PLACEHOLDER)
    named = "".join(
        f",regsub({routes.path_pattern(path)},{maps.route_key('', path).removeprefix(':')})"
        for path in maps.named_paths()
    )
    allowed, at = f"{d}/{ALLOWED_NETWORKS_MAP}", sources.ALLOWLIST_SEPARATOR
    network = f"src,map_ip({d}/{NETWORKS_MAP})"
    source_refused = (
        f"http-request return status 403 {_TEXT} string {_quoted(sources.REFUSED_BODY)}"
    )
    no_route = f"http-request return status 404 {_TEXT} string {_quoted(routes.ROUTE_NOT_FOUND)}"
    wrong_method = (
        f"http-request return status 405 {_TEXT} string {_quoted(routes.METHOD_NOT_ALLOWED)}"
        ' hdr allow "%[var(txn.allow)]"'
    )
    return f"""\
    # 1. Tenant: the exact endpoint host (port suffix and case ignored) from {HOSTS_MAP}.
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.tenant) var(txn.host),map_str({d}/{HOSTS_MAP})
    acl known_host var(txn.tenant) -m found
    http-request return status 404 {_TEXT} string {_quoted(NOT_FOUND_BODY)} unless known_host
    # A known host is <service>.<tenant>...; a tenant's Grafana host is in {HOSTS_MAP} only
    # when the tenant has a Grafana.
    acl grafana_host var(txn.host) -m beg {names.GRAFANA_SERVICE}.

    # 1b. Source: a tenant with an allowlist in {ALLOWED_NETWORKS_MAP} takes requests from
    # those networks only: the longest listed network holding the client's address
    # ({NETWORKS_MAP}), then "<tenant>{at}<network>" (opstrace/gateway/sources.py). Not
    # on the in-cluster listener (the tenants' Grafana pods, which a NetworkPolicy picks).
    acl internal_listener so_name -m str {INTERNAL_BIND}
    acl source_listed var(txn.tenant),map_str({allowed}) -m found
    http-request set-var(txn.network) {network} if source_listed !internal_listener
    acl source_allowed var(txn.tenant),concat({at},txn.network),map_str({allowed}) -m found
    {source_refused} if source_listed !source_allowed !internal_listener

    # 1c. Grafana host: no route, token, scope or rate rule (Grafana authenticates its
    # users itself); straight to the tenant's Grafana backend, which sets its headers.
    http-request allow if grafana_host

    # 2. Route: only the data API paths of the endpoint's service ({ROUTES_MAP}, from
    # opstrace/gateway/routes.py), looked up exactly as sent (a label name, a rule
    # namespace or group name becomes "{maps.LABEL_PLACEHOLDER}"), and only with the methods
    # {METHODS_MAP} lists for them; refused before any credential is looked at.
    http-request set-var(txn.path) path,regsub({label_segment},{label_placeholder}){named}
    http-request set-var(txn.route) var(txn.host),field(1,.),concat(:,txn.path)
    http-request set-var(txn.allow) var(txn.route),map_str({d}/{ROUTES_MAP})
    http-request set-var(txn.backend) method,concat(:,txn.route),map_str({d}/{METHODS_MAP})
    {no_route} unless {{ var(txn.allow) -m found }}
    {wrong_method} unless {{ var(txn.backend) -m found }}
"""


def _credential_rules() -> str:
    """Rules 3-4: a single credential, as a bearer token or a basic auth password."""
    bearer = 'var(txn.authorization),regsub("^Bearer ","")'
    return f"""\
    # 3-4. Credentials: "Bearer <token>", or the token as HTTP basic auth password.
    http-request set-var(txn.authorization) req.fhdr(authorization)
    acl auth_present var(txn.authorization) -m len gt 0
    acl auth_bearer var(txn.authorization) -m beg "Bearer "
    acl auth_basic var(txn.authorization) -m beg "Basic "
    acl auth_single req.fhdr_cnt(authorization) eq 1
    {_REFUSE} {_quoted(data_token.MISSING)} unless auth_present
    http-request set-var(txn.token) {bearer} if auth_bearer
    http-request set-var(txn.token) http_auth_pass if auth_basic
    acl token_present {_TOKEN} -m len gt 0
    {_REFUSE} {_quoted(data_token.BAD_FORMAT)} unless auth_single token_present
"""


def _signature_rules(settings: GatewaySettings) -> str:
    """Rule 5: RS256 by a trusted key that may sign for this tenant (or a cache hit)."""
    d = settings.config_dir
    verify = f'http-request set-var(txn.signature) {_TOKEN},jwt_verify("RS256",txn.key_file)'
    return f"""\
    # 5. Signature: RS256 by a key trusted at this endpoint: its kid in {KEYS_MAP}, and
    # either unbound or bound to this tenant in {BINDINGS_MAP}.
    # A token accepted at this host since the last reload (rule 10) skips every rule whose
    # outcome only depends on the token, the host and these files: the signature, aud,
    # iat, sub and the tenant. exp and nbf are checked on every request.
    # Only data API hosts get here, cortex.* or loki.*, so token + host is unambiguous.
    http-request set-var(txn.verified_before) {_CACHE_KEY},in_table(verified_tokens)
    acl verified_before var(txn.verified_before) -m bool
    # The header on every request: its kid names the credential in the access log.
    http-request set-var(txn.header) {_TOKEN},field(1,.),ub64dec
    http-request set-var(txn.kid) var(txn.header),json_query('$.kid')
    http-request set-var(txn.credential) {_KID},map_str({d}/{CREDENTIALS_MAP})
    http-request set-var(txn.credential_key) {_KID} if {{ var(txn.credential) -m found }}
    http-request set-var(txn.key_file) {_KID},map_str({d}/{KEYS_MAP}) {_MISS}
    acl key_known var(txn.key_file) -m found
    acl key_bound {_KID},map_str({d}/{BINDINGS_MAP}) -m found
    acl key_bound_here {_KID},map_str({d}/{BINDINGS_MAP}),strcmp(txn.tenant) eq 0
    {verify} if key_known !key_bound || key_known key_bound_here
    acl alg_rs256 var(txn.header),json_query('$.alg') -m str RS256
    acl signature_valid var(txn.signature) -m int 1
    {_REFUSE} {_quoted(data_token.BAD_TOKEN)} unless verified_before || alg_rs256 signature_valid
"""


def _claim_and_tenant_rules(settings: GatewaySettings) -> str:
    """Rules 6-7: the time claims, aud and sub, then the token's tenant against the host's."""
    prefix = names.subject("")
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
                    "scope_claimed !scope_well_formed",
                )
            ),
        ]
    )
    unexpected_tenant = f"{data_token.UNEXPECTED_TENANT_PREFIX}%[var(txn.token_tenant)]"
    wrong_tenant = f'http-request return status 401 {_TEXT} lf-string "{unexpected_tenant}"'
    return f"""\
    # 6. Claims, from the payload decoded once: exp in the future; nbf and iat, when
    # present, integers and not in the future (seconds, no leeway, like the reference);
    # aud names this instance; sub names a tenant; a scope claim, when its key is in the
    # payload, is scope names separated by single spaces.
    http-request set-var(txn.payload) {_TOKEN},field(2,.),ub64dec
    http-request set-var(txn.now) date
    acl unexpired {_PAYLOAD},json_query('$.exp','int'),sub(txn.now) -m int gt 0
    acl nbf_future {_PAYLOAD},json_query('$.nbf','int'),sub(txn.now) -m int gt 0
    acl nbf_present {_PAYLOAD},json_query('$.nbf') -m found
    acl nbf_int {_PAYLOAD},json_query('$.nbf','int') -m found
    acl iat_future {_PAYLOAD},json_query('$.iat','int'),sub(txn.now) -m int gt 0
    acl iat_present {_PAYLOAD},json_query('$.iat') -m found
    acl iat_int {_PAYLOAD},json_query('$.iat','int') -m found
    acl audience_valid {_PAYLOAD},json_query('$.aud') -m str {names.audience(settings.instance)}
    acl sub_is_tenant {_SUB} -m beg {prefix}
    http-request set-var(txn.scopes) {_PAYLOAD},json_query('$.{scopes.CLAIM}')
    acl scope_claimed {_PAYLOAD} -m reg '{scopes.CLAIM_PRESENT_RE}'
    acl scope_held var(txn.scope_held) -m bool
    acl scope_well_formed var(txn.scopes) -m reg '{scopes.CLAIM_RE}'
    {_REFUSE} {_quoted(data_token.BAD_TOKEN)} if {bad_claims}

    # 7. Tenant: the token's tenant must be the endpoint's.
    http-request set-var(txn.token_tenant) {_SUB},regsub("^{prefix}","") {_MISS}
    acl tenant_matches var(txn.token_tenant),strcmp(txn.tenant) eq 0
    {wrong_tenant} unless verified_before || tenant_matches
"""


def _scope_rules(settings: GatewaySettings) -> str:
    """Rule 8: a token with a scope claim holds the scope the route needs."""
    acl_names = {scope: scope.replace(":", "_") for scope in scopes.SCOPES}
    acls = "".join(
        f"    acl needs_{name} var(txn.needed_scope) -m str {scope}\n"
        f"    acl holds_{name} var(txn.scopes) -m reg '(^| ){scope}( |$)'\n"
        for scope, name in acl_names.items()
    )
    held = "".join(
        f"    http-request set-var(txn.scope_held) bool(1) if needs_{n} holds_{n}\n"
        for n in acl_names.values()
    )
    body = f"{scopes.MISSING_SCOPE_PREFIX}%[var(txn.needed_scope)]"
    scope_map = f"{settings.config_dir}/{SCOPES_MAP}"
    return f"""\
    # 8. Scope: a token with a scope claim must hold the one scope the method and route
    # need ({SCOPES_MAP}); a token without one holds every scope. Checked on every request.
    http-request set-var(txn.needed_scope) method,concat(:,txn.route),map_str({scope_map})
{acls}    # One cheap string match per scope; a regex only for the scope the route needs.
{held}    http-request return status 403 {_TEXT} lf-string "{body}" if scope_claimed !scope_held
"""


RATE_LIMITED_BODY: Final = "rate limit of this token exceeded: "
"""The 429 body's start: followed by `<n> requests per second`."""


def _rate_rules(settings: GatewaySettings) -> str:
    """Rule 9: a rate-limited credential's requests per second at this pod."""
    limits = f"{settings.config_dir}/{RATE_LIMITS_MAP}"
    body = f"{RATE_LIMITED_BODY}%[var(txn.rate_limit)] requests per second"
    refuse = f'http-request return status 429 {_TEXT} hdr retry-after 1 lf-string "{body}"'
    return f"""\
    # 9. Rate: a credential with a limit in {RATE_LIMITS_MAP} (requests per second, at this
    # pod) gets 429 beyond it, with Retry-After; counted only once every rule above passed.
    http-request set-var(txn.rate_limit) {_KID},map_str_int({limits})
    acl rate_limited var(txn.rate_limit) -m found
    http-request track-sc1 {_KID} table credential_rates if rate_limited
    http-request set-var(txn.rate) sc_http_req_rate(1) if rate_limited
    acl over_rate var(txn.rate),sub(txn.rate_limit) -m int gt 0
    {refuse} if rate_limited over_rate
"""


def key_preloads(settings: GatewaySettings, trusted: Mapping[str, str]) -> str:
    """haproxy.cfg's lines for these keys, which end the file (in key ID order)."""
    d = settings.config_dir
    return "".join(
        f'    acl trusted_key_file str(),jwt_verify("RS256","{d}/{key_file_name(kid)}") -m int 1\n'
        for kid in trusted
    )


_GRAFANA_SWITCH: Final = f"""\
    # A Grafana host to its tenant's Grafana (1c); first, so that it never falls through.
    use_backend {GRAFANA_BACKEND_PREFIX}%[var(txn.tenant)] if grafana_host
"""


_SERVER_SIDE_TIMEOUTS: Final = "".join(
    f"{line}\n"
    for line in HAPROXY_PROLOGUE.splitlines()
    if line.split()[:2] in (["timeout", "connect"], ["timeout", "server"], ["timeout", "tunnel"])
)
"""The prologue's timeouts that concern a backend, for the Grafana backends' defaults."""


def _grafana_resolvers(settings: GatewaySettings) -> str:
    """The Grafanas' Services, resolved once a minute rather than every 10 s: a ClusterIP
    lives as long as its Service, and a thousand tenants' Grafanas would otherwise ask
    the cluster's DNS a hundred times a second from each gateway pod."""
    if not settings.grafana_urls:
        return ""
    return """resolvers grafana_dns
    parse-resolv-conf
    hold valid 60s
"""


def _grafana_backends(settings: GatewaySettings) -> str:
    """One backend per tenant with a Grafana, reached only from that tenant's Grafana host
    (1c); what they do alike is said once, in a defaults section of their own (a few dozen
    bytes per tenant). The client's Authorization and cookies pass untouched (Grafana's
    own login); its X-Scope-OrgID and the forwarding headers it sent do not (the client's
    address is what Grafana's login throttling and logs see: `option forwardfor`)."""
    if not settings.grafana_urls:
        return ""
    backends = "".join(
        f"""
backend {GRAFANA_BACKEND_PREFIX}{tenant}
    server grafana {upstream_address(url)}
"""
        for tenant, url in sorted(settings.grafana_urls.items())
    )
    return f"""
# The tenants' Grafanas (grafana.<tenant>...), one backend each; only the frontend's
# Grafana switch (1c) uses them. Last: every proxy below takes these defaults.
defaults grafana
    mode http
{_SERVER_SIDE_TIMEOUTS}    default-server {_SERVER_OPTIONS.replace("cluster_dns", "grafana_dns")}
    http-request set-var(txn.route) str({GRAFANA_ROUTE})
    http-request del-header x-scope-orgid
    http-request del-header x-real-ip
    http-request del-header x-forwarded-for
    http-request set-header x-forwarded-proto https
{backends}"""


def _backends(settings: GatewaySettings) -> str:
    return "".join(
        f"""
backend {backend}
    server {backend} {upstream_address(getattr(settings, f"{backend}_url"))} {_SERVER_OPTIONS}
"""
        for backend in (url.removesuffix("_url") for url in UPSTREAM_FIELDS)
    )
