"""The gateway's HAProxy files as the pure renderer makes them, and the render CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.rules import keys
from components.rules.gateway_config import (
    HAPROXY_CONFIG,
    HOSTS_MAP,
    KEYS_MAP,
    GatewayConfigError,
    GatewaySettings,
    config_checksum,
    key_file_name,
    render_gateway_files,
    upstream_address,
    validate_keys,
    validate_settings,
)
from components.rules.keys import stand_in_public_key
from tests.e2e.harness import HAPROXY, NEEDS_HAPROXY
from tools import gateway as cli

SETTINGS = GatewaySettings(
    instance="acme",
    domain="example.com",
    tenants=("prod",),
    cortex_url="http://cortex-gateway.cortex.svc.cluster.local:80",
    loki_url="http://loki-gateway.loki.svc.cluster.local",
    listen="127.0.0.1:18080",
    health_listen="127.0.0.1:18081",
    config_dir="/etc/gateway",
)
PEMS = [stand_in_public_key(f"key-{index}") for index in range(3)]
KEYS = keys.key_set(PEMS[:2])


def settings(**overrides: Any) -> GatewaySettings:
    return dataclasses.replace(SETTINGS, **overrides)


def config_lines(files: dict[str, str]) -> list[str]:
    return files[HAPROXY_CONFIG].splitlines()


# What is rendered ---------------------------------------------------------------------


def test_files_are_config_maps_and_one_file_per_trusted_key() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    assert set(files) == {HAPROXY_CONFIG, HOSTS_MAP, KEYS_MAP} | {f"key-{kid}.pem" for kid in KEYS}


def test_key_file_holds_the_trusted_pem() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    for kid, pem in KEYS.items():
        assert files[key_file_name(kid)] == pem


def test_keys_map_maps_each_key_id_to_its_own_file_in_the_config_dir() -> None:
    files = render_gateway_files(SETTINGS, KEYS)
    assert files[KEYS_MAP] == "".join(f"{kid} /etc/gateway/key-{kid}.pem\n" for kid in sorted(KEYS))


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


def test_key_files_are_named_in_the_config_only_by_their_computed_key_id() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    for kid in KEYS:
        assert config.count(kid) == 1
        assert f'jwt_verify("RS256","/etc/gateway/key-{kid}.pem")' in config


def test_verification_key_comes_only_from_the_keys_map_lookup() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "jwt_header_query('$.kid'),map_str(/etc/gateway/keys.map)" in config
    assert 'jwt_verify("RS256",txn.key_file)' in config


def test_audience_must_name_this_instance() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "jwt_payload_query('$.aud') -m str opstrace-cluster-acme" in config


def test_upstream_servers_come_from_the_urls_with_port_80_by_default() -> None:
    config = render_gateway_files(SETTINGS, KEYS)[HAPROXY_CONFIG]
    assert "server cortex cortex-gateway.cortex.svc.cluster.local:80 " in config
    assert "server loki loki-gateway.loki.svc.cluster.local:80 " in config


def test_upstream_address_keeps_an_explicit_port() -> None:
    assert upstream_address("http://10.0.0.7:3100/") == "10.0.0.7:3100"


def test_listeners_come_from_the_settings() -> None:
    lines = [line.strip() for line in config_lines(render_gateway_files(SETTINGS, KEYS))]
    assert "bind 127.0.0.1:18080" in lines
    assert "bind 127.0.0.1:18081" in lines


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


def test_checksum_changes_when_a_tenant_is_added() -> None:
    assert config_checksum(render_gateway_files(SETTINGS, KEYS)) != config_checksum(
        render_gateway_files(settings(tenants=("prod", "dev")), KEYS)
    )


def test_checksum_tells_file_boundaries_apart() -> None:
    assert config_checksum({"a": "bc"}) != config_checksum({"ab": "c"})


# What HAProxy accepts -----------------------------------------------------------------


def haproxy_check(directory: Path, trusted: dict[str, str], **overrides: Any) -> str:
    """`haproxy -c` on the files rendered into `directory`; its output."""
    assert HAPROXY is not None
    local = {"cortex_url": "http://127.0.0.1:9009", "loki_url": "http://127.0.0.1:3100"}
    files = render_gateway_files(
        settings(config_dir=str(directory), **{**local, **overrides}), trusted
    )
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
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
    output = haproxy_check(tmp_path, KEYS, cortex_url="http://cortex.invalid:80")
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
    "is not usable in the configuration: use an absolute path of letters, digits, '.', "
    "'_', '-' and '/' without '..'"
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
            {"cortex_url": "https://cortex:443"},
            f"cortex_url: 'https://cortex:443' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_url": "http://cortex:80/prefix"},
            f"cortex_url: 'http://cortex:80/prefix' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_url": "http://user:pw@cortex:80"},
            f"cortex_url: 'http://user:pw@cortex:80' {NOT_AN_UPSTREAM}",
        ),
        (
            {"cortex_url": "http://cortex:99999"},
            f"cortex_url: 'http://cortex:99999' {NOT_AN_UPSTREAM}",
        ),
        ({"loki_url": "http://Loki:3100"}, f"loki_url: 'http://Loki:3100' {NOT_AN_UPSTREAM}"),
        ({"loki_url": "http://lo ki:3100"}, f"loki_url: 'http://lo ki:3100' {NOT_AN_UPSTREAM}"),
        ({"listen": "localhost:8080"}, f"listen: 'localhost:8080' {NOT_A_LISTEN_ADDRESS}"),
        ({"listen": "0.0.0.0:0"}, f"listen: '0.0.0.0:0' {NOT_A_LISTEN_ADDRESS}"),
        (
            {"health_listen": "0.0.0.0:18080"},
            "health_listen: '0.0.0.0:18080' has the data API port: use another port",
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
        "--listen": "127.0.0.1:8080",
        "--out": str(out),
        **overrides,
    }
    return ["render", *(part for pair in options.items() for part in pair)]


@pytest.fixture
def keyset_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyset.json"
    path.write_text(keys.key_set_json(KEYS), encoding="utf-8")
    return path


def test_cli_writes_exactly_the_rendered_files(tmp_path: Path, keyset_file: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(cli_args(keyset_file, out)) == 0
    expected = render_gateway_files(
        GatewaySettings(
            instance="acme",
            domain="example.com",
            tenants=("prod", "staging"),
            cortex_url="http://127.0.0.1:9009",
            loki_url="http://127.0.0.1:3100",
            listen="127.0.0.1:8080",
            health_listen=None,
            config_dir=str(out.resolve()),
        ),
        KEYS,
    )
    assert {p.name: p.read_text() for p in out.iterdir()} == expected


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
