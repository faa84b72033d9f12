"""Tenants' Grafana hosts and the in-cluster listener as the pure renderer makes them:
the settings refused, the maps, the crt-list and the rules' order (the end-to-end tests,
tests/e2e/test_gateway_grafana_hosts.py, run them in HAProxy 2.6 and 3.4)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from opstrace import grafana, keys, names
from opstrace.gateway.files import render_gateway_files
from opstrace.gateway.settings import (
    CRT_LIST,
    HAPROXY_CONFIG,
    HOSTS_MAP,
    GatewayConfigError,
    GatewaySettings,
)
from opstrace.keys import stand_in_public_key
from tests.e2e.harness import NEEDS_HAPROXY
from tests.test_gateway_config import (
    KEYS,
    NOT_A_LISTEN_ADDRESS,
    NOT_AN_UPSTREAM,
    cli_args,
    cli_settings,
    haproxy_check,
    settings,
)
from tools import gateway as cli

PROD_GRAFANA = grafana.service_url("prod")
"""`http://grafana.prod-tenant.svc.cluster.local:80`, the pods' upstream."""
WITH_GRAFANA = MappingProxyType({"prod": PROD_GRAFANA})


def grafana_settings(**overrides: Any) -> GatewaySettings:
    return settings(**{"tenants": ("prod", "dev"), "grafana_urls": WITH_GRAFANA, **overrides})


def config(chosen: GatewaySettings) -> str:
    return render_gateway_files(chosen, KEYS)[HAPROXY_CONFIG]


# What is refused ----------------------------------------------------------------------

LONG_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 41 + ".io"])
"""cortex.prod.acme.<this> has 253 characters, the most a name may have: the Grafana
host, one longer, has too many."""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"grafana_urls": {"nobody": PROD_GRAFANA}},
            "grafana_urls: 'nobody' is not a tenant served",
        ),
        (
            {"grafana_urls": {"prod": "https://grafana.prod-tenant.svc:443"}},
            f"grafana_urls['prod']: 'https://grafana.prod-tenant.svc:443' {NOT_AN_UPSTREAM}",
        ),
        (
            {"grafana_urls": {"prod": f"{PROD_GRAFANA}/grafana"}},
            f"grafana_urls['prod']: '{PROD_GRAFANA}/grafana' {NOT_AN_UPSTREAM}",
        ),
        (
            {"grafana_urls": {"prod": "http://grafana\n.svc:80"}},
            f"grafana_urls['prod']: 'http://grafana\\n.svc:80' {NOT_AN_UPSTREAM}",
        ),
        (
            {"domain": LONG_DOMAIN},
            f"grafana_urls['prod']: Grafana host 'grafana.prod.acme.{LONG_DOMAIN}' is "
            "longer than 253 characters: use a shorter tenant or domain",
        ),
        (
            {"internal_listen": "localhost:9443"},
            f"internal_listen: 'localhost:9443' {NOT_A_LISTEN_ADDRESS}",
        ),
        (
            {"internal_listen": "0.0.0.0:18081"},
            "health_listen: '127.0.0.1:18081' has the in-cluster port: use another port",
        ),
    ],
)
def test_a_bad_grafana_url_or_internal_listener_is_refused_naming_the_field(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        grafana_settings(**overrides)
    assert str(raised.value) == message


def test_the_data_api_hosts_of_the_long_domain_alone_are_valid() -> None:
    assert grafana_settings(domain=LONG_DOMAIN, grafana_urls={}).domain == LONG_DOMAIN


def test_the_system_tenant_may_have_a_grafana_without_being_listed() -> None:
    chosen = grafana_settings(grafana_urls={names.SYSTEM_TENANT: PROD_GRAFANA})
    assert names.SYSTEM_TENANT not in chosen.tenants


def test_no_grafana_and_an_internal_listener_by_default() -> None:
    chosen = settings()
    assert (dict(chosen.grafana_urls), chosen.internal_listen) == ({}, "0.0.0.0:9443")


# What is rendered ---------------------------------------------------------------------


def test_hosts_map_has_the_grafana_host_of_each_tenant_with_a_grafana_only() -> None:
    lines = render_gateway_files(grafana_settings(), KEYS)[HOSTS_MAP].splitlines()
    grafana_lines = [line for line in lines if line.startswith("grafana.")]
    assert grafana_lines == ["grafana.prod.acme.example.com prod"]
    assert "cortex.dev.acme.example.com dev" in lines
    assert len(lines) == 3 * len(names.ENDPOINT_SERVICES) + 1  # dev, prod, system


def test_crt_list_serves_a_tenants_certificate_for_its_grafana_host_too() -> None:
    lines = render_gateway_files(grafana_settings(), KEYS)[CRT_LIST].splitlines()
    assert (
        "/etc/gateway/certs/prod.pem cortex.prod.acme.example.com loki.prod.acme.example.com "
        "grafana.prod.acme.example.com"
    ) in lines
    assert (
        "/etc/gateway/certs/dev.pem cortex.dev.acme.example.com loki.dev.acme.example.com"
    ) in lines


def test_the_grafanas_services_are_resolved_once_a_minute_and_only_with_a_grafana() -> None:
    assert "resolvers grafana_dns\n    parse-resolv-conf\n    hold valid 60s\n" in config(
        grafana_settings(grafana_urls={"prod": PROD_GRAFANA})
    )
    assert "grafana_dns" not in config(grafana_settings(grafana_urls={}))


def test_each_tenants_grafana_has_its_own_backend_after_the_grafana_defaults() -> None:
    chosen = grafana_settings(grafana_urls={"prod": PROD_GRAFANA, "dev": "http://10.0.0.7:3000"})
    grafana = config(chosen).split("\ndefaults grafana\n", 1)[1]
    sections = grafana.split("\n# Never used for traffic", 1)[0].split("\n\n")
    assert [line.strip() for line in sections[0].splitlines()] == [
        "mode http",
        "timeout connect 5s",
        "timeout server 120s",
        "timeout tunnel 1h",
        "default-server resolvers grafana_dns init-addr last,libc,none",
        "http-request set-var(txn.route) str(grafana)",
        "http-request del-header x-scope-orgid",
        "http-request del-header x-real-ip",
        "http-request del-header x-forwarded-for",
        "http-request set-header x-forwarded-proto https",
    ]
    # The defaults come last: the data API's backends and the frontend take none of it.
    assert [
        [line.strip() for line in section.strip().splitlines()] for section in sections[1:]
    ] == [
        ["backend grafana_dev", "server grafana 10.0.0.7:3000"],
        ["backend grafana_prod", "server grafana grafana.prod-tenant.svc.cluster.local:80"],
    ]


def test_no_grafana_backend_without_a_grafana() -> None:
    text = config(settings())
    assert "\nbackend grafana_" not in text
    assert "\ndefaults grafana" not in text


def frontend_lines(text: str) -> list[str]:
    frontend = text.split("\nfrontend data_api\n", 1)[1].split("\nbackend ", 1)[0]
    return [line.strip() for line in frontend.splitlines() if line.strip()]


def test_a_grafana_host_skips_every_rule_after_the_allowlist() -> None:
    lines = frontend_lines(config(grafana_settings()))
    allow = lines.index("http-request allow if grafana_host")
    refused = next(i for i, line in enumerate(lines) if "client address not allowed" in line)
    assert refused < allow
    after = lines[allow + 1 :]
    for later in ("routes.map", "authorization", "jwt_verify", "x-scope-orgid", "track-sc"):
        assert any(later in line for line in after), later
        assert not any(later in line for line in lines[:allow]), later


def test_a_grafana_host_is_switched_before_the_data_api_backends() -> None:
    switching = [
        line for line in frontend_lines(config(grafana_settings())) if "use_backend" in line
    ]
    assert switching == [
        "use_backend grafana_%[var(txn.tenant)] if grafana_host",
        "use_backend %[var(txn.backend)]",
    ]


def test_the_allowlist_alone_is_skipped_on_the_internal_listener() -> None:
    lines = frontend_lines(config(grafana_settings()))
    assert "acl internal_listener so_name -m str internal" in lines
    uses = [line for line in lines if "internal_listener" in line and not line.startswith("acl")]
    assert [line.split(" if ", 1)[1] for line in uses] == [
        "source_listed !internal_listener",
        "source_listed !source_allowed !internal_listener",
    ]
    assert uses[0].startswith("http-request set-var(txn.network) src,map_ip(")
    assert uses[1].startswith("http-request return status 403 ")


# HAProxy's own check ----------------------------------------------------------------------


@NEEDS_HAPROXY
def test_a_config_with_grafana_hosts_passes_haproxy_check_without_warnings(
    tmp_path: Path,
) -> None:
    output = haproxy_check(
        tmp_path,
        KEYS,
        tenants=("prod", "dev"),
        grafana_urls={"prod": "http://127.0.0.1:3000", "dev": "http://127.0.0.1:3001"},
        internal_listen="127.0.0.1:19443",
    )
    assert "WARNING" not in output


@NEEDS_HAPROXY
def test_a_thousand_tenants_with_a_grafana_each_pass_haproxy_check(tmp_path: Path) -> None:
    tenants = tuple(f"t{index}" for index in range(1000))
    trusted = keys.key_set(stand_in_public_key(f"bulk-{index}") for index in range(1000))
    start = time.perf_counter()
    haproxy_check(
        tmp_path,
        trusted,
        tenants=tenants,
        grafana_urls={
            tenant: f"http://127.0.0.{1 + index % 200}:3000" for index, tenant in enumerate(tenants)
        },
    )
    assert time.perf_counter() - start < 120


# The render CLI -----------------------------------------------------------------------


@pytest.fixture
def keyset_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyset.json"
    path.write_text(keys.key_set_json(KEYS), encoding="utf-8")
    return path


def test_cli_takes_grafanas_and_an_internal_listener(tmp_path: Path, keyset_file: Path) -> None:
    out = tmp_path / "out"
    args = [
        *cli_args(keyset_file, out),
        "--grafana=prod=http://127.0.0.1:3000",
        "--grafana",
        "system=http://127.0.0.1:3001",
        "--internal-listen=127.0.0.1:9443",
    ]
    assert cli.main(args) == 0
    expected = render_gateway_files(
        dataclasses.replace(
            cli_settings(out),
            grafana_urls={"prod": "http://127.0.0.1:3000", "system": "http://127.0.0.1:3001"},
            internal_listen="127.0.0.1:9443",
        ),
        KEYS,
    )
    assert {p.name: p.read_text() for p in out.iterdir()} == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grafana=prod"], "--grafana: 'prod': use TENANT=URL, once per tenant"),
        (
            ["--grafana=prod=http://127.0.0.1:3000", "--grafana=prod=http://127.0.0.1:3001"],
            "--grafana: 'prod=http://127.0.0.1:3001': use TENANT=URL, once per tenant",
        ),
        (["--grafana=nobody=http://127.0.0.1:3000"], "--grafana: 'nobody' is not a tenant served"),
        (
            ["--grafana=prod=https://127.0.0.1:3000"],
            f"--grafana prod: 'https://127.0.0.1:3000' {NOT_AN_UPSTREAM}",
        ),
        (
            ["--internal-listen=127.0.0.1:8443"],
            "--internal-listen: '127.0.0.1:8443' has the data API port: use another port",
        ),
        (["--internal-listen=9443"], f"--internal-listen: '9443' {NOT_A_LISTEN_ADDRESS}"),
    ],
)
def test_cli_refuses_a_bad_grafana_or_internal_listener_in_one_line_naming_the_flag(
    tmp_path: Path,
    keyset_file: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    status = cli.main([*cli_args(keyset_file, tmp_path / "out"), *options])
    assert status == 2
    error = capsys.readouterr().err
    assert error == f"error: {message}\n"
    assert re.fullmatch(r"error: [^\n]*\n", error)
