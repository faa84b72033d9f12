"""The gateway's HAProxy files as the pure renderer makes them, and the render CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from opstrace import keys
from opstrace.config import sizes
from opstrace.gateway import routes
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.gateway.files import (
    KeyEntry,
    config_checksum,
    gateway_files,
    render_gateway_files,
)
from opstrace.gateway.settings import (
    ALLOWED_NETWORKS_MAP,
    BINDINGS_MAP,
    CREDENTIALS_MAP,
    CRT_LIST,
    HAPROXY_CONFIG,
    HOSTS_MAP,
    KEYS_MAP,
    METHODS_MAP,
    NETWORKS_MAP,
    RATE_LIMITS_MAP,
    ROUTES_MAP,
    SCOPES_MAP,
    GatewayConfigError,
    GatewaySettings,
    key_file_name,
    upstream_address,
    validate_keys,
    validate_settings,
)
from opstrace.keys import stand_in_public_key
from sidecar import contract
from tests.e2e.harness import (
    HAPROXY,
    NEEDS_HAPROXY,
    certificate_files,
    gateway_ca,
    project,
)
from tools import gateway as cli

SETTINGS = GatewaySettings(
    instance="acme",
    domain="example.com",
    tenants=("prod",),
    cortex_push_url="http://distributor.mimir.svc.cluster.local:8080",
    cortex_query_url="http://query-frontend.mimir.svc.cluster.local:8080",
    cortex_ruler_url="http://ruler.mimir.svc.cluster.local:8080",
    cortex_alertmanager_url="http://alertmanager.mimir.svc.cluster.local:8080",
    loki_push_url="http://loki-distributor.loki.svc.cluster.local",
    loki_query_url="http://loki-query-frontend.loki.svc.cluster.local:3100",
    loki_ruler_url="http://loki-backend.loki.svc.cluster.local:3100",
    listen="127.0.0.1:18443",
    http_listen="127.0.0.1:18080",
    health_listen="127.0.0.1:18081",
    config_dir="/etc/gateway",
)
PEMS = [stand_in_public_key(f"key-{index}") for index in range(3)]
KEYS = keys.key_set(PEMS[:2])
FIRST_KID, SECOND_KID = sorted(KEYS)


def settings(**overrides: Any) -> GatewaySettings:
    return dataclasses.replace(SETTINGS, **overrides)


def config_lines(files: dict[str, str]) -> list[str]:
    return files[HAPROXY_CONFIG].splitlines()


# What is rendered ---------------------------------------------------------------------


def test_files_are_config_maps_script_and_one_file_per_trusted_key() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    assert set(files) == {
        HAPROXY_CONFIG,
        HOSTS_MAP,
        KEYS_MAP,
        BINDINGS_MAP,
        ROUTES_MAP,
        METHODS_MAP,
        SCOPES_MAP,
        CREDENTIALS_MAP,
        RATE_LIMITS_MAP,
        NETWORKS_MAP,
        ALLOWED_NETWORKS_MAP,
        CRT_LIST,
    } | {f"key-{kid}.pem" for kid in KEYS}


def test_routes_map_lists_each_route_with_the_methods_it_serves() -> None:
    lines = render_gateway_files(SETTINGS, KEYS)[ROUTES_MAP].splitlines()
    assert "cortex:/api/v1/push POST" in lines
    assert "cortex:/prometheus/api/v1/query GET, POST" in lines
    assert "cortex:/api/v1/label/_/values GET" in lines
    assert "loki:/loki/api/v1/label/_/values GET, POST" in lines
    assert "loki:/loki/api/v1/tail GET" in lines
    assert len(lines) == len({line.split()[0] for line in lines})


def test_methods_map_names_the_backend_of_each_route_and_method() -> None:
    lines = render_gateway_files(SETTINGS, KEYS)[METHODS_MAP].splitlines()
    assert "POST:cortex:/api/v1/push cortex_push" in lines
    assert "GET:cortex:/api/v1/push cortex_push" not in lines
    assert "GET:cortex:/prometheus/api/v1/label/_/values cortex_query" in lines
    assert "GET:loki:/loki/api/v1/tail loki_query" in lines
    assert "POST:loki:/loki/api/v1/push loki_push" in lines


def test_otlp_metrics_are_rewritten_only_for_a_backend_that_serves_them_elsewhere() -> None:
    rule = (
        "http-request set-path /api/v1/otlp/v1/metrics "
        "if { var(txn.route) -m str cortex:/otlp/v1/metrics }"
    )
    cortex = dataclasses.replace(SETTINGS, metrics_otlp_path=routes.CORTEX_OTLP_METRICS_PATH)
    mimir = dataclasses.replace(SETTINGS, metrics_otlp_path=routes.OTLP_METRICS_PATH)
    assert f"    {rule}\n" in render_gateway_files(cortex, KEYS)[HAPROXY_CONFIG]
    assert "otlp" not in render_gateway_files(mimir, KEYS)[HAPROXY_CONFIG]


def test_a_metrics_otlp_path_that_is_no_path_is_refused_naming_the_setting() -> None:
    expected = "metrics_otlp_path: 'otlp/v1/metrics' is not a path: use /SEGMENT"
    with pytest.raises(GatewayConfigError, match=f"^{re.escape(expected)}"):
        dataclasses.replace(SETTINGS, metrics_otlp_path="otlp/v1/metrics")


def test_scopes_map_names_the_scope_of_each_route_and_method() -> None:
    lines = render_gateway_files(SETTINGS, KEYS)[SCOPES_MAP].splitlines()
    assert "POST:cortex:/api/v1/push metrics:write" in lines
    assert "POST:cortex:/prometheus/api/v1/query metrics:read" in lines
    assert "GET:loki:/loki/api/v1/tail logs:read" in lines
    assert "DELETE:loki:/loki/api/v1/rules/_ rules:write" in lines
    assert "GET:cortex:/alertmanager/api/v2/silences alerts:read" in lines
    assert "DELETE:cortex:/alertmanager/api/v2/silence/_ alerts:write" in lines
    methods = render_gateway_files(SETTINGS, KEYS)[METHODS_MAP].splitlines()
    assert [line.split()[0] for line in lines] == [line.split()[0] for line in methods]


def test_label_and_rule_names_become_the_placeholder_before_the_route_lookup() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    name = "[A-Za-z0-9_-][A-Za-z0-9_.-]*"
    config_api = "/prometheus/config/v1/rules"
    assert (
        "http-request set-var(txn.path) "
        "path,regsub(/label/[A-Za-z_][A-Za-z0-9_]*/values$,/label/_/values)"
        f",regsub(^/loki/api/v1/detected_field/{name}/values$,/loki/api/v1/detected_field/_/values)"
        f",regsub(^{config_api}/{name}/{name}$,{config_api}/_/_)"
        f",regsub(^/alertmanager/api/v2/silence/{name}$,/alertmanager/api/v2/silence/_)"
        f",regsub(^{config_api}/{name}$,{config_api}/_)"
        f",regsub(^/loki/api/v1/rules/{name}/{name}$,/loki/api/v1/rules/_/_)"
        f",regsub(^/loki/api/v1/rules/{name}$,/loki/api/v1/rules/_)\n"
    ) in config


def test_key_file_holds_the_trusted_pem() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    for kid, pem in KEYS.items():
        assert files[key_file_name(kid)] == pem


def test_keys_map_maps_each_key_id_to_its_own_file_in_the_config_dir() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    assert sorted(files[KEYS_MAP].splitlines()) == [
        f"{kid} /etc/gateway/key-{kid}.pem" for kid in sorted(KEYS)
    ]


def test_hosts_map_lists_the_cortex_and_loki_host_of_every_tenant() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    assert files[HOSTS_MAP] == (
        "cortex.prod.acme.example.com prod\n"
        "cortex.system.acme.example.com system\n"
        "loki.prod.acme.example.com prod\n"
        "loki.system.acme.example.com system\n"
    )


def test_system_tenant_is_served_even_when_not_listed() -> None:
    files = render_gateway_files(settings(tenants=()), KEYS)
    assert files[HOSTS_MAP] == (
        "cortex.system.acme.example.com system\nloki.system.acme.example.com system\n"
    )


def test_each_trusted_key_adds_exactly_one_config_line() -> None:
    one = config_lines(render_gateway_files(SETTINGS, keys.key_set(PEMS[:1])))
    three = config_lines(render_gateway_files(SETTINGS, keys.key_set(PEMS)))
    assert len(three) - len(one) == 2


def test_bindings_map_lists_each_bound_key_with_its_tenant() -> None:
    files = render_gateway_files(settings(tenants=("prod", "dev")), KEYS, {SECOND_KID: "dev"})
    assert files[BINDINGS_MAP] == f"{SECOND_KID} dev\n"


def test_gateway_files_name_each_key_and_limit_it_by_its_lowest_tokens_limit() -> None:
    shared, other = PEMS[0], PEMS[1]
    entries = [
        KeyEntry(shared, "prod", "prod/ci", 50),
        KeyEntry(shared, "prod", "prod/deploy", 20),
        KeyEntry(other, None, "trustedKeys[0]"),
    ]
    files = gateway_files(settings(tenants=("prod",)), entries).whole()
    shared_kid, other_kid = keys.key_id(shared), keys.key_id(other)
    assert sorted(files[CREDENTIALS_MAP].splitlines()) == sorted(
        [f"{shared_kid} prod/ci,prod/deploy", f"{other_kid} trustedKeys[0]"]
    )
    assert files[RATE_LIMITS_MAP] == f"{shared_kid} 20\n"
    assert files[BINDINGS_MAP] == f"{shared_kid} prod\n"


def test_without_bindings_every_key_is_instance_wide() -> None:
    assert render_gateway_files(SETTINGS, KEYS)[BINDINGS_MAP] == ""


def test_a_binding_costs_one_short_line_and_no_config_line() -> None:
    tenant = "t" * 56
    unbound = render_gateway_files(settings(tenants=(tenant,)), KEYS)
    bound = render_gateway_files(settings(tenants=(tenant,)), KEYS, {FIRST_KID: tenant})
    assert bound[HAPROXY_CONFIG] == unbound[HAPROXY_CONFIG]
    assert len(bound[BINDINGS_MAP].encode()) == 40 + 1 + 56 + 1


def test_binding_a_key_that_is_not_trusted_is_refused() -> None:
    with pytest.raises(GatewayConfigError) as raised:
        render_gateway_files(SETTINGS, KEYS, {"0" * 40: "prod"})
    assert str(raised.value) == (
        f"bindings['{'0' * 40}']: is not a key of the key set: bind only trusted keys"
    )


def test_binding_a_key_to_a_tenant_that_is_not_served_is_refused() -> None:
    with pytest.raises(GatewayConfigError) as raised:
        render_gateway_files(SETTINGS, KEYS, {FIRST_KID: "dev"})
    assert str(raised.value) == (
        f"bindings['{FIRST_KID}']: 'dev' is not a tenant of this gateway: bind the key to "
        "one of prod, system"
    )


def test_crt_list_names_each_tenants_certificate_for_its_two_hosts_system_first() -> None:
    files = render_gateway_files(settings(tenants=("prod", "alpha")), KEYS)
    assert files[CRT_LIST] == "".join(
        f"/etc/gateway/certs/{t}.pem cortex.{t}.acme.example.com loki.{t}.acme.example.com\n"
        for t in ("system", "alpha", "prod")
    )


def test_data_api_listener_is_tls_with_http2_and_strict_sni() -> None:
    lines = [line.strip() for line in config_lines(render_gateway_files(SETTINGS, KEYS))]
    assert (
        "bind 127.0.0.1:18443 ssl crt-list /etc/gateway/crt-list alpn h2,http/1.1 strict-sni"
        in lines
    )
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" in lines


def test_plain_http_listener_only_refuses() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    plain = config.split("frontend plain_http\n", 1)[1].split("\n\n", 1)[0]
    assert plain.splitlines() == [
        "    bind 127.0.0.1:18080",
        "    option httpclose",
        '    http-request return status 403 content-type "text/plain; charset=utf-8" string '
        '"plain HTTP is refused: use https://"',
    ]


def test_no_plain_http_frontend_without_a_plain_http_address() -> None:
    config = render_gateway_files(settings(http_listen=None), KEYS)[HAPROXY_CONFIG]
    assert "plain_http" not in config


def test_metrics_queries_are_rewritten_to_the_configured_prefix() -> None:
    cortex = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    mimir = render_gateway_files(settings(metrics_query_prefix="/prometheus"), KEYS)[HAPROXY_CONFIG]
    rewrite = "http-request set-path /prometheus%[path] if metrics_api !ruler_config_api\n"
    assert "acl metrics_api var(txn.backend) -m str cortex_query cortex_ruler\n" in mimir
    assert rewrite not in cortex
    assert rewrite in mimir


def test_the_ruler_configuration_api_is_rewritten_for_cortex_only() -> None:
    cortex = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    mimir = render_gateway_files(settings(ruler_config_prefix="/prometheus/config/v1/rules"), KEYS)[
        HAPROXY_CONFIG
    ]
    rewrite = (
        "http-request set-path %[path,regsub(^/prometheus/config/v1/rules,/api/v1/rules)] "
        "if ruler_config_api\n"
    )
    assert "acl ruler_config_api var(txn.route) -m beg cortex:/prometheus/config/v1/rules\n" in (
        cortex
    )
    assert rewrite in cortex
    assert "set-path %[path,regsub(^/prometheus/config" not in mimir


def test_the_verified_token_cache_is_bounded_and_shared_with_no_peer() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "stick-table type binary len 32 size 40000 expire 600s\n" in config
    assert not [line for line in config.splitlines() if line.split()[:1] == ["peers"]]


def test_key_files_are_named_in_the_config_only_by_their_computed_key_id() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    for kid in KEYS:
        assert config.count(kid) == 1
        assert f'jwt_verify("RS256","/etc/gateway/key-{kid}.pem")' in config


def test_verification_key_comes_only_from_the_keys_map_lookup() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "http-request set-var(txn.kid) var(txn.header),json_query('$.kid')\n" in config
    assert (
        "set-var(txn.key_file) var(txn.kid),map_str(/etc/gateway/keys.map) unless verified_before"
    ) in config
    assert 'jwt_verify("RS256",txn.key_file) if key_known' in config


def test_audience_must_name_this_instance() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "var(txn.payload),json_query('$.aud') -m str opstrace-cluster-acme" in config


def test_upstream_servers_come_from_the_urls_with_port_80_by_default() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "server cortex_push distributor.mimir.svc.cluster.local:8080 " in config
    assert "server cortex_query query-frontend.mimir.svc.cluster.local:8080 " in config
    assert "server loki_push loki-distributor.loki.svc.cluster.local:80 " in config
    assert "server loki_query loki-query-frontend.loki.svc.cluster.local:3100 " in config


def test_upstream_address_keeps_an_explicit_port() -> None:
    assert upstream_address("http://10.0.0.7:3100/") == "10.0.0.7:3100"


def test_listeners_come_from_the_settings() -> None:
    lines = [line.strip() for line in config_lines(render_gateway_files(SETTINGS, KEYS))]
    assert "bind 127.0.0.1:18080" in lines
    assert "bind 127.0.0.1:18081" in lines
    tls = "ssl crt-list /etc/gateway/crt-list alpn h2,http/1.1 strict-sni"
    assert f"bind 127.0.0.1:18443 {tls}" in lines
    assert f"bind 0.0.0.0:9443 {tls} name internal" in lines
    without = config_lines(render_gateway_files(settings(internal_listen=None), KEYS))
    assert [line.strip() for line in without if "bind" in line and "crt-list" in line] == [
        f"bind 127.0.0.1:18443 {tls}"
    ]


def test_defaults_are_the_pods_listeners_and_directories() -> None:
    pod = gateway_upstreams.gateway_settings(
        "acme",
        "example.com",
        (),
        gateway_upstreams.upstreams(sizes.SIZES["small"]),
        grafana_tenants=("system",),
    )
    assert (pod.listen, pod.internal_listen, pod.http_listen, pod.health_listen) == (
        "0.0.0.0:8443",
        "0.0.0.0:9443",
        "0.0.0.0:8080",
        "0.0.0.0:8081",
    )
    # Relative to HAProxy's -C directory: the generation the sidecar made current.
    assert (pod.config_dir, pod.certificates_dir) == (".", "./certs")


def test_no_health_frontend_without_a_health_address() -> None:
    config = render_gateway_files(settings(health_listen=None), KEYS)[HAPROXY_CONFIG]
    assert "monitor-uri" not in config


def test_rendering_does_not_depend_on_the_order_of_keys_or_tenants() -> None:
    forward = render_gateway_files(settings(tenants=("a", "b")), KEYS)
    backward = render_gateway_files(
        settings(tenants=("b", "a")), dict(reversed(list(KEYS.items())))
    )
    assert forward == backward


def test_checksum_is_sha256_over_length_prefixed_names_and_contents_in_name_order() -> None:
    # Written out independently: a fixed value, so it is the same in every process and
    # release (a changed checksum rolls every gateway pod of every instance).
    digest = hashlib.sha256()
    for part in ("a.map", "x\n", "b.cfg", "y\n"):
        digest.update(len(part).to_bytes(8, "big") + part.encode())
    assert config_checksum({"b.cfg": "y\n", "a.map": "x\n"}) == digest.hexdigest()


def test_checksum_changes_when_a_key_is_removed() -> None:
    fewer = dict(list(KEYS.items())[:1])
    assert config_checksum(render_gateway_files(SETTINGS, KEYS)) != config_checksum(
        render_gateway_files(SETTINGS, fewer)
    )


def test_checksum_changes_when_a_key_is_bound() -> None:
    assert config_checksum(render_gateway_files(SETTINGS, KEYS)) != config_checksum(
        render_gateway_files(SETTINGS, KEYS, {FIRST_KID: "prod"})
    )


def test_checksum_changes_when_a_tenant_is_added() -> None:
    assert config_checksum(render_gateway_files(SETTINGS, KEYS)) != config_checksum(
        render_gateway_files(settings(tenants=("prod", "dev")), KEYS)
    )


def test_checksum_tells_file_boundaries_apart() -> None:
    assert config_checksum({"a": "bc"}) != config_checksum({"ab": "c"})


# What HAProxy accepts -----------------------------------------------------------------


def haproxy_check(directory: Path, trusted: dict[str, str], **overrides: Any) -> str:
    """`haproxy -c` on the files rendered into `directory` (certificates from the test
    CA); its output."""
    assert HAPROXY is not None
    local = {
        "cortex_push_url": "http://127.0.0.1:9009",
        "cortex_query_url": "http://127.0.0.1:9010",
        "cortex_ruler_url": "http://127.0.0.1:9011",
        "cortex_alertmanager_url": "http://127.0.0.1:9012",
        "loki_push_url": "http://127.0.0.1:3100",
        "loki_query_url": "http://127.0.0.1:3101",
        "loki_ruler_url": "http://127.0.0.1:3102",
    }
    chosen = settings(config_dir=str(directory), **{**local, **overrides})
    files = render_gateway_files(chosen, trusted)
    certificates = certificate_files(
        gateway_ca(), tuple(chosen.tenants), tuple(chosen.grafana_urls)
    )
    project(directory, {**files, **certificates})
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(directory / HAPROXY_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@NEEDS_HAPROXY
def test_rendered_config_passes_haproxy_check_without_warnings(tmp_path: Path) -> None:
    output = haproxy_check(tmp_path, KEYS)
    assert "WARNING" not in output


@NEEDS_HAPROXY
def test_unresolvable_upstream_name_does_not_stop_haproxy(tmp_path: Path) -> None:
    # Resolved at runtime instead: the gateway starts before the backends' Services exist.
    output = haproxy_check(tmp_path, KEYS, cortex_query_url="http://cortex.invalid:80")
    assert "could not resolve address 'cortex.invalid', disabling server" in output


@NEEDS_HAPROXY
def test_rendered_config_with_a_thousand_keys_and_tenants_passes_haproxy_check(
    tmp_path: Path,
) -> None:
    trusted = keys.key_set(stand_in_public_key(f"bulk-{index}") for index in range(1000))
    haproxy_check(tmp_path, trusted, tenants=tuple(f"t{index}" for index in range(1000)))


# What is refused ----------------------------------------------------------------------


NOT_AN_UPSTREAM = (
    "is not an upstream URL: use http://HOST[:PORT] with a DNS name or IPv4 address, no "
    "path, query, credentials or TLS (e.g. http://cortex-gateway.cortex.svc.cluster.local:80)"
)
NOT_A_LISTEN_ADDRESS = (
    "is not a listen address: use IPV4:PORT with a port from 1 to 65535 (e.g. 0.0.0.0:8080)"
)
NOT_A_CONFIG_DIR = (
    "is not usable in the configuration: use '.' (HAProxy's -C directory) or an absolute "
    "path of letters, digits, '.', '_', '-' and '/' without '..'"
)
LONG_DOMAIN = ("d" * 60 + ".") * 3 + "com"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"instance": "Acme"},
            "instance: 'Acme' is not a valid instance name: use 1 to 23 lowercase letters, "
            "digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' "
            "and outer '-' cannot appear in a DNS name)",
        ),
        (
            {"domain": "localhost"},
            "domain: 'localhost' is not a valid domain: use dot-separated labels of lowercase "
            "letters, digits and inner hyphens, at least two labels, no trailing dot",
        ),
        (
            {"tenants": ("prod", "Prod")},
            "tenants[1]: 'Prod' is not a valid tenant name: use lowercase letters, digits and "
            "inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)",
        ),
        (
            {"tenants": ("prod", "prod")},
            "tenants[1]: 'prod' is listed twice: list each tenant once",
        ),
        (
            {"tenants": ("a" * 56,), "domain": LONG_DOMAIN},
            f"tenants[0]: endpoint 'cortex.{'a' * 56}.acme.{LONG_DOMAIN}' is longer than 253 "
            "characters: use a shorter tenant or domain",
        ),
        (
            {"cortex_push_url": "https://cortex:443"},
            f"cortex_push_url: 'https://cortex:443' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_query_url": "http://cortex:80/prefix"},
            f"cortex_query_url: 'http://cortex:80/prefix' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_push_url": "http://user:pw@cortex:80"},
            f"cortex_push_url: 'http://user:pw@cortex:80' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_query_url": "http://cortex:99999"},
            f"cortex_query_url: 'http://cortex:99999' {NOT_AN_UPSTREAM}",
        ),
        (
            {"loki_push_url": "http://Loki:3100"},
            f"loki_push_url: 'http://Loki:3100' {NOT_AN_UPSTREAM}",
        ),
        (
            {"loki_query_url": "http://lo ki:3100"},
            f"loki_query_url: 'http://lo ki:3100' {NOT_AN_UPSTREAM}",
        ),
        ({"loki_query_url": ""}, f"loki_query_url: '' {NOT_AN_UPSTREAM}"),
        (
            {"metrics_query_prefix": "/prometheus/"},
            "metrics_query_prefix: '/prometheus/' is not a path prefix: use '' (Cortex's "
            "layout, /api/v1/...) or /SEGMENT[/SEGMENT...] of lowercase letters, digits, '_' "
            "and '-' without a trailing '/' (e.g. /prometheus for Grafana Mimir)",
        ),
        (
            {"metrics_query_prefix": "prometheus"},
            "metrics_query_prefix: 'prometheus' is not a path prefix: use '' (Cortex's "
            "layout, /api/v1/...) or /SEGMENT[/SEGMENT...] of lowercase letters, digits, '_' "
            "and '-' without a trailing '/' (e.g. /prometheus for Grafana Mimir)",
        ),
        ({"listen": "localhost:8080"}, f"listen: 'localhost:8080' {NOT_A_LISTEN_ADDRESS}"),
        ({"listen": "0.0.0.0:0"}, f"listen: '0.0.0.0:0' {NOT_A_LISTEN_ADDRESS}"),
        (
            {"http_listen": "0.0.0.0:80800"},
            f"http_listen: '0.0.0.0:80800' {NOT_A_LISTEN_ADDRESS}",
        ),
        (
            {"http_listen": "0.0.0.0:18443"},
            "http_listen: '0.0.0.0:18443' has the data API port: use another port",
        ),
        (
            {"health_listen": "0.0.0.0:18443"},
            "health_listen: '0.0.0.0:18443' has the data API port: use another port",
        ),
        (
            {"health_listen": "0.0.0.0:18080"},
            "health_listen: '0.0.0.0:18080' has the plain-HTTP port: use another port",
        ),
        (
            {"internal_listen": "0.0.0.0:94430"},
            f"internal_listen: '0.0.0.0:94430' {NOT_A_LISTEN_ADDRESS}",
        ),
        (
            {"internal_listen": "127.0.0.1:18443"},
            "internal_listen: '127.0.0.1:18443' has the data API port: use another port",
        ),
        (
            {"http_listen": "0.0.0.0:9443"},
            "http_listen: '0.0.0.0:9443' has the in-cluster port: use another port",
        ),
        ({"config_dir": "etc/gateway"}, f"config_dir: 'etc/gateway' {NOT_A_CONFIG_DIR}"),
        ({"config_dir": "/etc/a b"}, f"config_dir: '/etc/a b' {NOT_A_CONFIG_DIR}"),
        ({"config_dir": "/etc/../tmp"}, f"config_dir: '/etc/../tmp' {NOT_A_CONFIG_DIR}"),
    ],
)
def test_invalid_setting_is_refused_naming_the_field_and_the_rule(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        validate_settings(settings(**overrides))
    assert str(raised.value) == message


def test_empty_key_set_is_refused() -> None:
    with pytest.raises(GatewayConfigError) as raised:
        validate_keys({})
    assert str(raised.value) == "keys: is empty; a key set needs at least one public key"


def test_key_id_not_matching_its_key_is_refused() -> None:
    kid, pem = next(iter(KEYS.items()))
    wrong = "0" * 40
    with pytest.raises(GatewayConfigError) as raised:
        validate_keys({wrong: pem})
    assert str(raised.value) == f"keys['{wrong}']: key ID does not match the key (its ID is {kid})"


def test_key_id_with_path_characters_is_refused() -> None:
    pem = next(iter(KEYS.values()))
    with pytest.raises(GatewayConfigError, match=r"^keys\['\.\./x'\]: key ID does not match"):
        validate_keys({"../x": pem})


def test_private_key_in_the_key_set_is_refused() -> None:
    private = keys.private_key_pem(keys.generate_private_key(2048)).decode()
    with pytest.raises(GatewayConfigError, match=r"contains private key material"):
        validate_keys({"0" * 40: private})


def test_key_file_name_refuses_anything_but_a_key_id() -> None:
    with pytest.raises(GatewayConfigError, match=r"^'\.\./etc/passwd' is not a key ID"):
        key_file_name("../etc/passwd")


# The render CLI -----------------------------------------------------------------------


def cli_args(keyset: Path, out: Path, **overrides: str) -> list[str]:
    options = {
        "--instance": "acme",
        "--domain": "example.com",
        "--tenants": "prod,staging",
        "--keyset": str(keyset),
        "--cortex-url": "http://127.0.0.1:9009",
        "--loki-url": "http://127.0.0.1:3100",
        "--listen": "127.0.0.1:8443",
        "--out": str(out),
        **overrides,
    }
    given = {flag: value for flag, value in options.items() if value}
    return ["render", *(part for pair in given.items() for part in pair)]


def cli_settings(out: Path) -> GatewaySettings:
    """The settings `cli_args` stands for, with no listener but the TLS one."""
    return GatewaySettings(
        instance="acme",
        domain="example.com",
        tenants=("prod", "staging"),
        cortex_push_url="http://127.0.0.1:9009",
        cortex_query_url="http://127.0.0.1:9009",
        cortex_ruler_url="http://127.0.0.1:9009",
        cortex_alertmanager_url="http://127.0.0.1:9009",
        loki_push_url="http://127.0.0.1:3100",
        loki_query_url="http://127.0.0.1:3100",
        loki_ruler_url="http://127.0.0.1:3100",
        listen="127.0.0.1:8443",
        internal_listen=None,
        http_listen=None,
        health_listen=None,
        usage_log=None,
        config_dir=str(out.resolve()),
    )


@pytest.fixture
def keyset_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyset.json"
    path.write_text(keys.key_set_json(KEYS), encoding="utf-8")
    return path


def test_cli_writes_exactly_the_rendered_files(tmp_path: Path, keyset_file: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(cli_args(keyset_file, out)) == 0
    expected = render_gateway_files(cli_settings(out), KEYS)
    assert {p.name: p.read_text() for p in out.iterdir()} == expected


def test_cli_takes_an_upstream_per_backend_bindings_and_the_pods_listeners(
    tmp_path: Path, keyset_file: Path
) -> None:
    out = tmp_path / "out"
    bindings = tmp_path / "bindings.json"
    bindings.write_text(json.dumps({FIRST_KID: "prod"}), encoding="utf-8")
    options = {
        "--cortex-url": "",
        "--cortex-push-url": "http://127.0.0.1:9009",
        "--cortex-query-url": "http://127.0.0.1:9010",
        "--cortex-ruler-url": "http://127.0.0.1:9011",
        "--cortex-alertmanager-url": "http://127.0.0.1:9012",
        "--loki-query-url": "http://127.0.0.1:3101",
        "--loki-ruler-url": "http://127.0.0.1:3102",
        "--metrics-query-prefix": "/prometheus",
        "--ruler-config-prefix": "/prometheus/config/v1/rules",
        "--http-listen": "127.0.0.1:8080",
        "--health-listen": "127.0.0.1:8081",
        "--bindings": str(bindings),
    }
    assert cli.main(cli_args(keyset_file, out, **options)) == 0
    expected = render_gateway_files(
        dataclasses.replace(
            cli_settings(out),
            cortex_query_url="http://127.0.0.1:9010",
            cortex_ruler_url="http://127.0.0.1:9011",
            cortex_alertmanager_url="http://127.0.0.1:9012",
            loki_query_url="http://127.0.0.1:3101",
            loki_ruler_url="http://127.0.0.1:3102",
            metrics_query_prefix="/prometheus",
            ruler_config_prefix="/prometheus/config/v1/rules",
            http_listen="127.0.0.1:8080",
            health_listen="127.0.0.1:8081",
        ),
        KEYS,
        {FIRST_KID: "prod"},
    )
    assert {p.name: p.read_text() for p in out.iterdir()} == expected


def test_cli_takes_the_allowlists_and_a_usage_log(tmp_path: Path, keyset_file: Path) -> None:
    out = tmp_path / "out"
    args = [
        *cli_args(keyset_file, out, **{"--allowed-networks": "203.0.113.0/24, 198.51.100.0/24"}),
        "--tenant-networks=prod=203.0.113.0/26",
        "--usage-log=127.0.0.1:9083",
    ]
    assert cli.main(args) == 0
    expected = render_gateway_files(
        dataclasses.replace(
            cli_settings(out),
            instance_networks=("203.0.113.0/24", "198.51.100.0/24"),
            tenant_networks={"prod": ("203.0.113.0/26",)},
            usage_log="127.0.0.1:9083",
        ),
        KEYS,
    )
    assert {p.name: p.read_text() for p in out.iterdir()} == expected


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--allowed-networks=203.0.113.7/24",
            "--allowed-networks: '203.0.113.7/24' is not a network: write ADDRESS/PREFIX with "
            "the host bits zero",
        ),
        (
            "--tenant-networks=prod",
            "--tenant-networks: 'prod': use TENANT=NETWORK[,NETWORK...], once per tenant",
        ),
    ],
)
def test_cli_refuses_a_bad_allowlist_in_one_line_naming_the_flag(
    tmp_path: Path,
    keyset_file: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    message: str,
) -> None:
    status = cli.main([*cli_args(keyset_file, tmp_path / "out"), option])
    assert status == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_cli_refuses_a_missing_upstream(
    tmp_path: Path, keyset_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(cli_args(keyset_file, tmp_path / "out", **{"--loki-url": ""}))
    assert status == 2
    assert capsys.readouterr().err == "error: --loki-push-url: required (or --loki-url)\n"


def test_cli_refuses_bindings_that_are_not_an_object_of_names(
    tmp_path: Path, keyset_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bindings = tmp_path / "bindings.json"
    bindings.write_text('["prod"]', encoding="utf-8")
    status = cli.main(cli_args(keyset_file, tmp_path / "out", **{"--bindings": str(bindings)}))
    assert status == 2
    assert capsys.readouterr().err == (
        f"error: --bindings: {bindings} must hold one JSON object of key ID -> tenant name\n"
    )


def test_cli_always_includes_the_system_tenant(tmp_path: Path, keyset_file: Path) -> None:
    out = tmp_path / "out"
    cli.main(cli_args(keyset_file, out, **{"--tenants": "prod"}))
    assert "cortex.system.acme.example.com system" in (out / HOSTS_MAP).read_text()


def test_cli_removes_key_files_no_longer_trusted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    keyset = tmp_path / "keyset.json"
    keyset.write_text(keys.key_set_json(KEYS), encoding="utf-8")
    cli.main(cli_args(keyset, out))
    kept = dict(list(KEYS.items())[:1])
    keyset.write_text(keys.key_set_json(kept), encoding="utf-8")
    cli.main(cli_args(keyset, out))
    assert sorted(p.name for p in out.glob("key-*.pem")) == [f"key-{kid}.pem" for kid in kept]


def test_cli_refuses_an_invalid_tenant_with_status_2_and_one_line(
    tmp_path: Path, keyset_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(cli_args(keyset_file, tmp_path / "out", **{"--tenants": "prod,Dev"}))
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: tenants[1]: 'Dev' is not a valid tenant name")
    assert err.count("\n") == 1


def test_cli_refuses_a_key_set_with_a_wrong_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyset = tmp_path / "keyset.json"
    keyset.write_text(json.dumps({"0" * 40: PEMS[0]}), encoding="utf-8")
    status = cli.main(cli_args(keyset, tmp_path / "out"))
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"error: --keyset['{'0' * 40}']: key ID does not match the key")
    assert err.count("\n") == 1


def test_cli_refuses_a_missing_key_set_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(cli_args(tmp_path / "nope.json", tmp_path / "out"))
    assert status == 2
    assert (
        capsys.readouterr().err == f"error: {tmp_path / 'nope.json'}: No such file or directory\n"
    )


def test_the_access_log_goes_into_a_ring_forwarded_to_the_sidecars_usage_port() -> None:
    lines = config_lines(render_gateway_files(SETTINGS, KEYS))
    assert "ring usage" in lines
    assert f"    server sidecar 127.0.0.1:{contract.USAGE_LOG_PORT} log-proto octet-count" in lines
    frontend = lines[lines.index("frontend data_api") :]
    assert "    log ring@usage local0 info" in frontend[: frontend.index("")]


def test_without_a_usage_log_there_is_no_ring() -> None:
    lines = config_lines(render_gateway_files(settings(usage_log=None), KEYS))
    assert not [line for line in lines if line.startswith("ring ") or "ring@" in line]
