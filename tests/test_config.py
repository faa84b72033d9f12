"""The stack configuration: every rule, with the exact error an operator sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from components.rules import config as config_module
from components.rules import keys
from components.rules.config import ConfigError, parse_config

PROJECT_DIR = Path(__file__).resolve().parent.parent


def parse(**overrides: Any) -> config_module.InstanceConfig:
    raw: dict[str, Any] = {"instanceName": "acme", "tenants": ["prod"], **overrides}
    return parse_config(raw, base_dir=PROJECT_DIR)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_minimal_config_gets_the_documented_defaults() -> None:
    config = parse()
    assert config.domain == "opstrace.io"
    assert config.token_lifetime_seconds == 10 * 365 * 86400
    assert config.key_bits == 2048
    assert config.gateway_replicas == 2
    assert config.trusted_keys == ()


def test_system_tenant_comes_first_and_is_always_present() -> None:
    assert [t.name for t in parse(tenants=["prod", "dev"]).tenants] == ["system", "prod", "dev"]


def test_user_tenants_leave_out_the_system_tenant() -> None:
    assert [t.name for t in parse(tenants=["prod"]).user_tenants] == ["prod"]


def test_a_tenant_by_name_gets_one_default_token() -> None:
    (token,) = parse().tenants[1].tokens
    assert (token.name, token.rotation, token.export_keys_to) == ("default", "", "")


def test_tenant_object_sets_tokens_and_rotation_for_each_token() -> None:
    tenant = parse(tenants=[{"name": "ci", "tokens": ["default", "deploy"], "rotation": 2026}])
    tokens = tenant.tenants[1].tokens
    assert [(t.name, t.rotation) for t in tokens] == [("default", "2026"), ("deploy", "2026")]


def test_key_paths_stay_as_written_so_state_is_the_same_on_every_checkout() -> None:
    config = parse(tenants=[{"name": "ci", "exportKeysTo": "./keys"}])
    assert config.tenants[1].tokens[0].export_keys_to == "./keys"


def test_signing_key_file_is_checked_relative_to_the_project(tmp_path: Path) -> None:
    (tmp_path / "keypair.pem").write_bytes(keys.private_key_pem(keys.generate_private_key(2048)))
    config = parse_config(
        {"instanceName": "acme", "tenants": [{"name": "ci", "signingKeyFile": "keypair.pem"}]},
        base_dir=tmp_path,
    )
    assert config.tenants[1].tokens[0].signing_key_file == "keypair.pem"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("90d", 7776000), ("1y", 31536000)],
)
def test_token_lifetime_takes_one_unit(value: str, seconds: int) -> None:
    assert parse(tokenLifetime=value).token_lifetime_seconds == seconds


def test_integer_settings_accept_the_strings_the_cli_stores() -> None:
    assert parse(keyBits="4096").key_bits == 4096


def test_trusted_key_may_be_pem_text(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = public_pem(rsa_key)
    assert parse(trustedKeys=[pem]).trusted_keys == (pem,)


def test_trusted_key_may_be_a_file_path(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    (tmp_path / "ops.pub").write_text(public_pem(rsa_key))
    config = parse_config(
        {"instanceName": "acme", "tenants": ["prod"], "trustedKeys": ["ops.pub"]},
        base_dir=tmp_path,
    )
    assert config.trusted_keys == (public_pem(rsa_key),)


def test_upstream_url_loses_a_trailing_slash() -> None:
    assert parse(cortexUrl="http://cortex:8080/").cortex_url == "http://cortex:8080"


BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    (
        {"instanceName": None},
        "instanceName: required; set it with `pulumi config set instanceName ...`",
    ),
    ({"tenants": None}, "tenants: required; set it with `pulumi config set tenants ...`"),
    (
        {"instanceName": "Acme"},
        "instanceName: 'Acme' is not a valid instance name: use 1 to 23 lowercase letters, "
        "digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and "
        "outer '-' cannot appear in a DNS name)",
    ),
    ({"instanceName": "acme_corp"}, "instanceName: 'acme_corp' is not a valid instance name"),
    ({"instanceName": "-acme"}, "instanceName: '-acme' is not a valid instance name"),
    ({"instanceName": "acme-"}, "instanceName: 'acme-' is not a valid instance name"),
    ({"instanceName": "a" * 24}, f"instanceName: {'a' * 24!r} is not a valid instance name"),
    ({"instanceName": ""}, "instanceName: '' is not a valid instance name"),
    ({"instanceName": 42}, "instanceName: expected a string, got 42"),
    ({"tenants": []}, "tenants: expected a list with at least one user tenant, got []"),
    ({"tenants": "prod"}, "tenants: expected a list with at least one user tenant, got 'prod'"),
    (
        {"tenants": ["Prod"]},
        "tenants[0]: 'Prod' is not a valid tenant name: use lowercase letters and digits only "
        "(rule ^[a-z0-9]([a-z0-9]*[a-z0-9])?$)",
    ),
    ({"tenants": ["team-a"]}, "tenants[0]: 'team-a' is not a valid tenant name"),
    ({"tenants": ["prod", "prod"]}, "tenants[1]: tenant 'prod' is listed twice"),
    (
        {"tenants": ["prod", "system"]},
        "tenants[1]: 'system' is the instance's own tenant; it always exists and cannot be "
        "configured: choose another name",
    ),
    ({"tenants": ["a" * 57]}, f"tenants[0]: {'a' * 57!r} is not a valid tenant name: at most 56"),
    ({"tenants": [7]}, "tenants[0]: expected a tenant name or an object, got 7"),
    ({"tenants": [{"tokens": ["x"]}]}, "tenants[0].name: expected a tenant name, got None"),
    (
        {"tenants": [{"name": "ci", "colour": "red"}]},
        "tenants[0].colour: unknown tenant option; use name, tokens, rotation, exportKeysTo, "
        "signingKeyFile",
    ),
    ({"tenants": [{"name": "ci", "tokens": []}]}, "tenants[0].tokens: expected a non-empty list"),
    (
        {"tenants": [{"name": "ci", "tokens": ["Deploy"]}]},
        "tenants[0].tokens[0]: 'Deploy' is not a valid token name",
    ),
    (
        {"tenants": [{"name": "ci", "tokens": ["a", "a"]}]},
        "tenants[0].tokens[1]: token 'a' is listed twice",
    ),
    (
        {"tenants": [{"name": "ci", "rotation": ["x"]}]},
        "tenants[0].rotation: expected a string, got ['x']",
    ),
    (
        {"tenants": [{"name": "ci", "exportKeysTo": "k", "signingKeyFile": "k/a.pem"}]},
        "tenants[0]: exportKeysTo and signingKeyFile exclude each other",
    ),
    (
        {"tenants": [{"name": "ci", "signingKeyFile": "/nonexistent/key.pem"}]},
        "tenants[0].signingKeyFile: /nonexistent/key.pem: cannot read keypair file: "
        "No such file or directory",
    ),
    ({"domain": "localhost"}, "domain: 'localhost' is not a valid domain"),
    ({"domain": "Example.com"}, "domain: 'Example.com' is not a valid domain"),
    ({"domain": "example.com."}, "domain: 'example.com.' is not a valid domain"),
    (
        {"domain": ".".join(["d" * 60] * 4)},
        "tenants: tenant 'system' gives a bad endpoint: 'cortex.system.acme.",
    ),
    (
        {"keyBits": 1024},
        "keyBits: 1024 is not allowed: use 2048, 3072 or 4096 (keys under 2048 bits are refused)",
    ),
    ({"keyBits": True}, "keyBits: expected an integer, got True"),
    ({"gatewayReplicas": 1}, "gatewayReplicas: 1 is too few: use at least 2"),
    (
        {"tokenLifetime": "forever"},
        "tokenLifetime: 'forever' is not a duration: use a positive number and one unit of "
        "s, m, h, d or y (e.g. 90d, 10y)",
    ),
    ({"tokenLifetime": "0d"}, "tokenLifetime: '0d' is not a duration"),
    ({"tokenLifetime": "10y\n"}, "tokenLifetime: '10y\\n' is not a duration"),
    (
        {"cortexUrl": "https://cortex/api"},
        "cortexUrl: 'https://cortex/api' is not an upstream URL: use http://HOST[:PORT] with a "
        "DNS name or IPv4 address, no path, query, credentials or TLS",
    ),
    ({"trustedKeys": "key.pem"}, "trustedKeys: expected a list of PEM texts or file paths"),
    ({"trustedKeys": [""]}, "trustedKeys[0]: expected PEM text or a file path, got ''"),
    (
        {"trustedKeys": ["/nonexistent.pub"]},
        "trustedKeys[0]: cannot read /nonexistent.pub: No such file or directory",
    ),
    ({"instanceNmae": "acme"}, "instanceNmae: unknown setting; known settings are instanceName"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS)
def test_bad_config_is_refused_with_a_message_naming_field_and_rule(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(**overrides)
    assert str(raised.value).startswith(message)


def test_trusted_private_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    private = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ConfigError, match=r"^trustedKeys\[0\]: contains private key material"):
        parse(trustedKeys=[private])


def test_trusted_non_rsa_key_is_refused() -> None:
    pem = public_pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ConfigError, match=r"^trustedKeys\[0\]: only RSA keys are accepted"):
        parse(trustedKeys=[pem])


def pulumi_yaml_config() -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    return dict(document["config"])


def test_pulumi_yaml_declares_every_setting_but_the_structured_tenants() -> None:
    assert set(pulumi_yaml_config()) == set(config_module.SETTINGS) - {"tenants"}


def test_pulumi_yaml_defaults_are_the_config_module_defaults() -> None:
    declared = {k: v["default"] for k, v in pulumi_yaml_config().items() if "default" in v}
    assert declared == dict(config_module.DEFAULTS)


def test_pulumi_yaml_declares_only_types_the_cli_accepts() -> None:
    for key, declaration in pulumi_yaml_config().items():
        assert declaration["type"] in {"string", "integer", "boolean", "array"}, key
        assert declaration["description"], key


@pytest.mark.parametrize("stack", ["dev", "example-prod"])
def test_example_stack_files_are_valid(stack: str) -> None:
    document = yaml.safe_load((PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    raw = {
        key.removeprefix("opstrace:"): value
        for key, value in document["config"].items()
        if key.startswith("opstrace:")
    }
    assert parse_config(raw, base_dir=PROJECT_DIR).user_tenants
