"""The stack configuration: every rule, with the exact error an operator sees."""

from __future__ import annotations

import errno
import operator
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from opstrace import scopes
from opstrace.config import parse as config_module
from opstrace.config.parse import ConfigError, parse_config, stack_settings
from opstrace.config.schema import TrustedKey
from opstrace.config.stack import (
    ENVIRONMENT_VARIABLE_LIMIT,
    config_of_stack,
    configuration_size_problem,
)
from opstrace.gateway.files import KeyEntry
from tools.stack_files import cli_config, stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent


def parse(**overrides: Any) -> config_module.InstanceConfig:
    """A valid stack's config with `overrides`; without Grafanas (and so without their
    credentials and hosts) unless they say otherwise: tests/test_grafana_config.py."""
    raw: dict[str, Any] = {
        "instanceName": "acme",
        "domain": "acme.dev",
        "tenants": ["prod"],
        "grafana": False,
        **overrides,
    }
    return parse_config(raw, base_dir=PROJECT_DIR, aws_region="eu-central-1")


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
    assert config.dns == "route53"
    assert config.token_lifetime_seconds == 10 * 365 * 86400
    assert config.key_bits == 2048
    assert config.gateway_replicas == 2
    assert config.trusted_keys == ()


def test_system_tenant_comes_first_and_is_always_present() -> None:
    assert [t.name for t in parse(tenants=["prod", "dev"]).tenants] == ["system", "prod", "dev"]


def test_user_tenants_leave_out_the_system_tenant() -> None:
    assert [t.name for t in parse(tenants=["prod"]).user_tenants] == ["prod"]


def test_tenants_listed_in_a_file_are_the_tenants_the_stack_file_would_list(
    tmp_path: Path,
) -> None:
    listed = ["prod", {"name": "ci", "tokens": ["default", "deploy"], "rotation": "2026-11"}]
    (tmp_path / "tenants.yaml").write_text(yaml.safe_dump(listed))
    raw = {"instanceName": "acme", "domain": "acme.dev", "grafana": False}
    region = "eu-central-1"
    from_file = parse_config(
        {**raw, "tenantsFile": "tenants.yaml"}, base_dir=tmp_path, aws_region=region
    )
    inline = parse_config({**raw, "tenants": listed}, base_dir=tmp_path, aws_region=region)
    assert from_file.tenants == inline.tenants


def test_a_tenant_by_name_gets_one_default_token() -> None:
    (token,) = parse().tenants[1].tokens
    assert (token.name, token.rotation, token.export_keys_to) == ("default", "", "")


def test_tenant_object_sets_tokens_and_rotation_for_each_token() -> None:
    tenant = parse(tenants=[{"name": "ci", "tokens": ["default", "deploy"], "rotation": 2026}])
    tokens = tenant.tenants[1].tokens
    assert [(t.name, t.rotation) for t in tokens] == [("default", "2026"), ("deploy", "2026")]


def test_a_token_object_lists_its_scopes_in_one_order_whatever_the_file_says() -> None:
    entry = {"name": "agent", "scopes": ["logs:write", "metrics:write"]}
    config = parse(tenants=[{"name": "ci", "tokens": ["default", entry]}])
    default, agent = config.tenants[1].tokens
    assert (default.scopes, agent.scopes) == ((), ("metrics:write", "logs:write"))


def test_a_new_gateway_pod_waits_its_load_balancers_time_unless_the_stack_says() -> None:
    assert parse().gateway_min_ready_seconds == 10
    generic = parse(
        loadBalancer="generic", cluster="existing", certificateIssuer="issuer", eksClusterName="c"
    )
    assert generic.gateway_min_ready_seconds == 120
    assert parse(gatewayMinReadySeconds=5).gateway_min_ready_seconds == 5


def test_a_token_object_may_set_a_rate_limit_and_a_token_by_name_has_none() -> None:
    entry = {"name": "agent", "rateLimit": 50}
    config = parse(tenants=[{"name": "ci", "tokens": ["default", entry]}])
    assert [t.rate_limit for t in config.tenants[1].tokens] == [0, 50]


def test_the_gateway_knows_each_token_by_its_tenant_name_and_rate_limit() -> None:
    entry = {"name": "agent", "rateLimit": 50}
    config = parse(tenants=[{"name": "ci", "tokens": [entry]}])
    tenant = config.tenants[1]
    assert config.key_entry(tenant, tenant.tokens[0]) == KeyEntry(
        "", "ci", "ci/agent", 50, holder="ci/agent"
    )


def test_token_scopes_name_every_scope_for_a_token_without_scopes() -> None:
    entry = {"name": "grafana", "scopes": ["metrics:read"]}
    config = parse(tenants=[{"name": "ci", "tokens": ["default", entry]}])
    assert config.token_scopes()["ci"] == {
        "default": list(scopes.SCOPES),
        "grafana": ["metrics:read"],
    }


@pytest.mark.parametrize("written", ["keys", "./keys", "keys/", "./keys/"])
def test_one_key_directory_written_any_way_is_one_value(written: str) -> None:
    # A different spelling in state would replace (revoke) the tenant's tokens.
    config = parse(tenants=[{"name": "ci", "exportKeysTo": written}])
    assert config.tenants[1].tokens[0].export_keys_to == "keys"


def test_key_paths_keep_the_home_directory_unexpanded() -> None:
    config = parse(tenants=[{"name": "ci", "signingKeyFile": "~/keys//ops.pem"}])
    assert config.tenants[1].tokens[0].signing_key_file == "~/keys/ops.pem"


def test_signing_key_file_is_not_needed_on_disk_to_read_the_config() -> None:
    # Only minting a token reads it (the token provider's check): another operator's
    # machine without the file can still preview and update the stack.
    config = parse(tenants=[{"name": "ci", "signingKeyFile": "keys/absent.pem"}])
    assert config.tenants[1].tokens[0].signing_key_file == "keys/absent.pem"


def test_export_directory_may_be_created_later(tmp_path: Path) -> None:
    raw = {
        "instanceName": "acme",
        "domain": "acme.dev",
        "tenants": [{"name": "ci", "exportKeysTo": "new/keys"}],
    }
    config = parse_config(raw, base_dir=tmp_path, aws_region="eu-central-1")
    assert config.tenants[1].tokens[0].export_keys_to == "new/keys"


def test_tenant_names_may_have_inner_hyphens_like_opstraces_own_examples() -> None:
    config = parse(tenants=["team-revenue", "team-fraud"])
    assert [t.name for t in config.user_tenants] == ["team-revenue", "team-fraud"]


def test_dns_none_accepts_a_reserved_domain_because_no_zone_is_made() -> None:
    config = parse(dns="none", domain="example.com", certificateIssuer="letsencrypt")
    assert config.domain == "example.com"


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
    assert parse(trustedKeys=[pem]).trusted_keys == (TrustedKey(pem, None),)


def test_trusted_key_may_be_a_file_path(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    (tmp_path / "ops.pub").write_text(public_pem(rsa_key))
    raw = {"instanceName": "acme", "domain": "acme.dev", "tenants": ["prod"]}
    config = parse_config(
        {**raw, "trustedKeys": ["ops.pub"]}, base_dir=tmp_path, aws_region="eu-central-1"
    )
    assert config.trusted_keys == (TrustedKey(public_pem(rsa_key), None),)


def test_upstream_url_loses_a_trailing_slash() -> None:
    assert parse(cortexUrl="http://cortex:8080/").cortex_url == "http://cortex:8080"


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


SHIPPED_STACKS = ["dev", "example-prod", "example-existing"]


def shipped_config(stack: str) -> dict[str, Any]:
    """A shipped stack file's config as the CLI hands it to the program."""
    return cli_config(stack_config(stack))


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stack_is_refused_until_its_placeholder_domain_is_changed(stack: str) -> None:
    with pytest.raises(ConfigError, match=r"^domain: '[a-z.]*example\.com' is a placeholder"):
        config_of_stack(shipped_config(stack), PROJECT_DIR)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stack_is_valid_once_the_operator_sets_what_it_says_to_set(stack: str) -> None:
    config = {**shipped_config(stack), "opstrace:domain": "observability.acme.dev"}
    if "opstrace:grafanaSso" in config:  # and its client secret, as its comment says
        config["opstrace:grafanaClientSecret"] = "s3cret"
    assert config_of_stack(config, PROJECT_DIR).user_tenants


def test_the_production_example_asks_for_its_single_sign_on_client_secret() -> None:
    config = {**shipped_config("example-prod"), "opstrace:domain": "observability.acme.dev"}
    with pytest.raises(ConfigError, match=r"^grafanaClientSecret: required with grafanaSso"):
        config_of_stack(config, PROJECT_DIR)


def test_stack_settings_leave_other_namespaces_to_their_owners() -> None:
    settings = stack_settings(
        {"aws:region": "eu-central-1", "kubernetes:context": "x", "opstrace:dns": "none"}
    )
    assert settings == {"dns": "none"}


def test_stack_settings_decode_lists_the_cli_sends_as_json() -> None:
    settings = stack_settings({"opstrace:tenants": '["prod", {"name": "ci"}]'})
    assert settings == {"tenants": ["prod", {"name": "ci"}]}


@pytest.mark.parametrize(
    ("written", "meant"),
    [("keybits", "keyBits"), ("instanceNmae", "instanceName"), ("tenant", "tenants")],
)
def test_closest_setting_forgives_case_and_small_typos(written: str, meant: str) -> None:
    assert config_module.closest_setting(written) == meant


PROGRAM_GUARDS: list[tuple[dict[str, Any], str]] = [
    # Values the CLI's own type checks stop first under `pulumi up`; the program still
    # refuses them when it is handed them another way (`--skip-config-validation`,
    # the mocks, a caller of parse_config).
    (
        {"instanceName": None},
        "opstrace:instanceName: required; set it in the stack file (`opstrace:instanceName: "
        "acme`) or with `pulumi config set instanceName acme`",
    ),
    (
        {"domain": None},
        "opstrace:domain: required; set it in the stack file (`opstrace:domain: "
        "observability.example.org`) or with `pulumi config set domain "
        "observability.example.org`",
    ),
    ({"instanceName": 42}, "instanceName: expected a string, got 42"),
    ({"keyBits": True}, "keyBits: expected an integer, got True"),
    ({"keyBits": "big"}, "keyBits: expected an integer, got 'big'"),
    ({"gatewayReplicas": 2.5}, "gatewayReplicas: expected an integer, got 2.5"),
    ({"kubeconfig": ["a"]}, "kubeconfig: expected a path, got ['a']"),
    (
        {"trustedKeys": "key.pem"},
        "trustedKeys: expected a list of PEM texts or file paths, got 'key.pem'",
    ),
    ({"trustedKeys": [42]}, "trustedKeys[0]: expected PEM text or a file path, got 42"),
    ({"dns": 1}, "dns: expected a string, got 1"),
]


@pytest.mark.parametrize(("overrides", "message"), PROGRAM_GUARDS)
def test_program_refuses_values_of_the_wrong_type_naming_the_value(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(**overrides)
    assert str(raised.value) == message


def test_a_key_written_without_namespace_is_the_projects_as_the_cli_reads_it() -> None:
    # The real CLI stores `keyBits: 4096` in a stack file as opstrace:keyBits
    # (tests/engine/test_smoke.py::test_stack_file_key_without_namespace).
    assert stack_settings({"keyBits": "4096", "aws:region": "x"}) == {"keyBits": "4096"}


# Bounds: every limit at the limit and one past it -------------------------------------

EXISTING = {"cluster": "existing", "certificateIssuer": "letsencrypt", "eksClusterName": "p"}
"""An existing cluster: where eksClusterName names the cluster the backends' roles trust."""
LONGEST_DOMAIN = ".".join(["d" * 63, "d" * 63, "d" * 63, "d" * 42])
"""234 characters: `cortex.system.acme.<it>`, the longest endpoint host, is exactly 253."""


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        pytest.param({"nodeCount": 2}, "platform.node_count", 2, id="nodeCount-2"),
        pytest.param({"nodeCount": 100}, "platform.node_count", 100, id="nodeCount-100"),
        pytest.param({"nodeCount": 0}, "platform.node_count", 3, id="nodeCount-0-is-the-sizing"),
        pytest.param({"availabilityZones": 2}, "platform.availability_zones", 2, id="zones-2"),
        pytest.param({"availabilityZones": 3}, "platform.availability_zones", 3, id="zones-3"),
        *(
            pytest.param({"vpcCidr": cidr}, "platform.vpc_cidr", cidr, id=f"vpcCidr-{cidr}")
            for cidr in (
                "10.40.0.0/16",  # the largest VPC AWS allows
                "10.40.0.0/20",  # the smallest allowed (every pod takes a VPC address)
                "10.0.0.0/16",  # RFC 1918's first block, its first and last /16
                "10.255.0.0/16",
                "172.16.0.0/16",  # its second block
                "172.31.240.0/20",
                "192.168.0.0/16",  # its third block
                "192.168.240.0/20",
            )
        ),
        *(
            pytest.param({key: f"{days}d"}, field, days, id=f"{key}-{days}d")
            for key, field in (
                ("metricsRetention", "platform.metrics_retention_days"),
                ("logsRetention", "platform.logs_retention_days"),
            )
            for days in (1, 3650)
        ),
        *(
            pytest.param({"keyBits": b}, "key_bits", b, id=f"keyBits-{b}")
            for b in (2048, 3072, 4096)
        ),
        pytest.param({"gatewayReplicas": 2}, "gateway_replicas", 2, id="gatewayReplicas-2"),
        pytest.param({"tokenLifetime": "1s"}, "token_lifetime_seconds", 1, id="lifetime-1s"),
        pytest.param(
            {"tokenLifetime": "100y"}, "token_lifetime_seconds", 3153600000, id="lifetime-100y"
        ),
        pytest.param(
            {"tokenLifetime": "36500d"}, "token_lifetime_seconds", 3153600000, id="lifetime-36500d"
        ),
        pytest.param({"instanceName": "a"}, "instance_name", "a", id="instanceName-1"),
        pytest.param({"instanceName": "a" * 23}, "instance_name", "a" * 23, id="instanceName-23"),
        pytest.param(
            {"domain": LONGEST_DOMAIN}, "domain", LONGEST_DOMAIN, id="domain-endpoint-253"
        ),
        pytest.param({"certificateIssuer": "a"}, "platform.certificate_issuer", "a", id="issuer-1"),
        pytest.param(
            {"certificateIssuer": "le.example-2"},
            "platform.certificate_issuer",
            "le.example-2",
            id="issuer-dotted",
        ),
        pytest.param(
            {"certificateIssuer": "a" * 253},
            "platform.certificate_issuer",
            "a" * 253,
            id="issuer-253",
        ),
        pytest.param({"acmeEmail": "a@b.co"}, "platform.acme_email", "a@b.co", id="email-short"),
        pytest.param(
            {"acmeEmail": "Ops@Example.COM"},
            "platform.acme_email",
            "Ops@Example.COM",
            id="email-any-case",
        ),
        *(
            pytest.param(
                {"nodeInstanceType": kind}, "platform.node_instance_type", kind, id=f"type-{kind}"
            )
            for kind in ("m7i.large", "m7i-flex.large", "u-6tb1.112xlarge", "m7i.metal-24xl")
        ),
        *(
            pytest.param(
                {**EXISTING, "eksClusterName": name},
                "platform.eks_cluster_name",
                name,
                id=f"eksClusterName-{name[:12]}",
            )
            for name in ("p", "9lives", "Platform_eu-1", "a" * 100)
        ),
        *(
            pytest.param({**EXISTING, "kubeContext": context}, "kube_context", context, id=context)
            for context in ("arn:aws:eks:eu-west-1:123456789012:cluster/platform", "ops@platform")
        ),
        *(
            pytest.param({"cortexUrl": url}, "cortex_url", url, id=f"cortexUrl-{url}")
            for url in (
                "http://cortex:1",
                "http://cortex:65535",
                "http://10.0.0.7",
                f"http://{'c' * 63}.cortex.svc:80",
            )
        ),
    ],
)
def test_a_value_at_a_limit_is_accepted(overrides: dict[str, Any], field: str, value: Any) -> None:
    assert operator.attrgetter(field)(parse(**overrides)) == value


def test_api_networks_are_kept_in_one_order_without_repeats() -> None:
    written = "203.0.113.7/32, 198.51.100.0/24,203.0.113.7"
    assert parse(apiAllowedCidrs=written).platform.api_allowed_cidrs == (
        "198.51.100.0/24",
        "203.0.113.7/32",
    )


def test_every_address_may_reach_the_api_when_written_out_for_production() -> None:
    config = parse(sizing="production", apiAllowedCidrs="0.0.0.0/0")
    assert config.platform.api_allowed_cidrs == ("0.0.0.0/0",)


def test_a_small_cluster_without_api_networks_keeps_eks_default_of_every_address() -> None:
    assert parse().platform.api_allowed_cidrs == ("0.0.0.0/0",)


def test_an_existing_cluster_has_no_api_networks_and_checks_its_enforcer() -> None:
    platform = parse(**EXISTING).platform
    assert (platform.api_allowed_cidrs, platform.network_policy_risk_accepted) == ((), False)
    assert parse(**EXISTING, networkPolicyRiskAccepted="true").platform.network_policy_risk_accepted


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-central-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-central-1:123456789012:alias/eks/secrets",
    ],
)
def test_a_kms_key_or_alias_of_the_clusters_region_encrypts_the_secrets(arn: str) -> None:
    assert parse(secretsKeyArn=arn).platform.secrets_key_arn == arn


def test_a_token_name_of_63_characters_is_accepted() -> None:
    tenant = parse(tenants=[{"name": "ci", "tokens": ["a" * 63]}]).tenants[1]
    assert [token.name for token in tenant.tokens] == ["a" * 63]


VPC_RULE = "is not usable: use a private IPv4 network from /16 to /20 (e.g. 10.40.0.0/16)"
RETENTION_RULE = "is not a retention: use a number of days from 1d to 3650d (e.g. 30d)"
KEY_BITS_RULE = "is not allowed: use 2048, 3072 or 4096 (keys under 2048 bits are refused)"
LIFETIME_TOO_LONG = "is too long: use at most 100y (Opstrace used 10y)"
EKS_RULE = (
    "is not an EKS cluster name: use 1 to 100 letters, digits, hyphens and underscores, "
    "starting with a letter or digit"
)
NOT_AN_UPSTREAM = (
    "is not an upstream URL: use http://HOST[:PORT] with a DNS name or IPv4 address, no "
    "path, query, credentials or TLS (e.g. http://cortex-gateway.cortex.svc.cluster.local:80)"
)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"nodeCount": 101},
            "nodeCount: 101 is not allowed: use 2 to 100 nodes (0 takes the sizing's 3)",
            id="nodeCount-101",
        ),
        pytest.param(
            {"availabilityZones": 1},
            "availabilityZones: 1 is not allowed: use 2 or 3",
            id="zones-1",
        ),
        *(
            pytest.param({"vpcCidr": cidr}, f"vpcCidr: {cidr!r} {VPC_RULE}", id=f"vpcCidr-{cidr}")
            for cidr in (
                "10.40.0.0/15",  # larger than AWS allows
                "10.40.0.0/21",  # smaller than allowed
                "9.255.0.0/16",  # just outside each RFC 1918 block
                "11.0.0.0/16",
                "172.15.0.0/16",
                "172.32.0.0/16",
                "192.167.0.0/16",
                "192.169.0.0/16",
                "100.64.0.0/16",  # shared (carrier-grade NAT) space, not private
                # Blocks Python calls private but no VPC can use:
                "127.0.0.0/16",  # loopback
                "169.254.0.0/16",  # link-local (the instance metadata service)
                "0.0.0.0/16",  # "this network"
                "240.0.0.0/16",  # reserved
                "10.40.0.1/16",  # host bits set: not a network
            )
        ),
        *(
            pytest.param({key: value}, f"{key}: {value!r} {RETENTION_RULE}", id=f"{key}-{value}")
            for key in ("metricsRetention", "logsRetention")
            for value in ("0d", "3651d")
        ),
        *(
            pytest.param({"keyBits": b}, f"keyBits: {b} {KEY_BITS_RULE}", id=f"keyBits-{b}")
            for b in (2047, 2049, 3071, 3073, 4095, 4097)
        ),
        pytest.param(
            {"gatewayReplicas": 0},
            "gatewayReplicas: 0 is too few: use at least 2 so that one pod can restart while "
            "another serves",
            id="gatewayReplicas-0",
        ),
        pytest.param(
            {"tokenLifetime": "0s"},
            "tokenLifetime: '0s' is not a duration: use a positive number and one unit of s, "
            "m, h, d or y (e.g. 90d, 10y)",
            id="lifetime-0s",
        ),
        *(
            pytest.param(
                {"tokenLifetime": value},
                f"tokenLifetime: {value!r} {LIFETIME_TOO_LONG}",
                id=f"lifetime-{value}",
            )
            for value in ("101y", "36501d", "3153600001s", "10000y")
        ),
        pytest.param(
            {"tenants": [{"name": "ci", "tokens": ["a" * 64]}]},
            f"tenants[0].tokens[0]: {'a' * 64!r} is not a valid token name: use 1 to 63 "
            "lowercase letters and digits (rule ^[a-z0-9]+$)",
            id="token-name-64",
        ),
        pytest.param(
            {"domain": LONGEST_DOMAIN + "d"},
            f"domain: the 'system' tenant (always there) gives a bad endpoint: "
            f"'cortex.system.acme.{LONGEST_DOMAIN}d' is longer than 253 characters: use a "
            "shorter instance or domain name",
            id="domain-system-endpoint-254",
        ),
        pytest.param(
            {"domain": LONGEST_DOMAIN, "tenants": ["tenant7"]},
            f"tenants[0]: tenant 'tenant7' gives a bad endpoint: "
            f"'cortex.tenant7.acme.{LONGEST_DOMAIN}' is longer than 253 characters: use a "
            "shorter tenant, instance or domain name",
            id="domain-user-endpoint-254",
        ),
        *(
            pytest.param(
                {"certificateIssuer": name},
                f"certificateIssuer: {name!r} is not a Kubernetes object name",
                id=f"issuer-{name[:12]}",
            )
            for name in ("a" * 254, "le..prod", "le.-prod", "-le", "le-", "le.", "Le")
        ),
        *(
            pytest.param(
                {"acmeEmail": email},
                f"acmeEmail: {email!r} is not an email address",
                id=f"email-{email}",
            )
            for email in ("a@b.c", "a@b", "@b.co", "a b@c.co", "a@b.co\n")
        ),
        *(
            pytest.param(
                {"nodeInstanceType": kind},
                f"nodeInstanceType: {kind!r} is not an EC2 instance type: use FAMILY.SIZE, "
                "e.g. m7i.xlarge",
                id=f"type-{kind}",
            )
            for kind in ("m7i.", ".large", "m7i..large", "M7i.large", "m7i.large-", "-m7i.large")
        ),
        *(
            pytest.param(
                {**EXISTING, "eksClusterName": name},
                f"eksClusterName: {name!r} {EKS_RULE}",
                id=f"eksClusterName-{name[:12]}",
            )
            for name in ("a" * 101, "_platform", "-platform", "plat form", "platform.eu")
        ),
        *(
            pytest.param({"cortexUrl": url}, f"cortexUrl: {url!r} {NOT_AN_UPSTREAM}", id=url)
            for url in (
                "http://cortex:0",
                "http://cortex:65536",
                "http://cortex:80\n",
                "http://cor\ttex:80",
                f"http://{'c' * 64}.cortex.svc:80",
            )
        ),
        pytest.param(
            {"gatewayImage": "haproxy:3.4.7\n"},
            "gatewayImage: 'haproxy:3.4.7\\n' is not an image reference: write "
            "<repository>:<version>, optionally followed by @sha256:<64 hex digits>",
            id="gatewayImage-newline",
        ),
    ],
)
def test_a_value_one_past_a_limit_is_refused_naming_the_rule(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(**overrides)
    assert str(raised.value) == message


def a_config_of_size(size: int) -> dict[str, str]:
    """A configuration whose `PULUMI_CONFIG=<JSON>` is `size` bytes."""
    framing = len('PULUMI_CONFIG={"opstrace:tenants":""}')
    return {"opstrace:tenants": "t" * (size - framing)}


def test_a_configuration_the_cli_can_hand_over_passes() -> None:
    assert configuration_size_problem(a_config_of_size(ENVIRONMENT_VARIABLE_LIMIT - 1)) is None


def test_a_configuration_one_byte_longer_is_refused_naming_the_fix() -> None:
    problem = configuration_size_problem(a_config_of_size(ENVIRONMENT_VARIABLE_LIMIT))
    assert problem is not None
    assert "tenantsFile" in problem


def test_the_size_counts_what_go_escapes_as_six_bytes() -> None:
    config = a_config_of_size(ENVIRONMENT_VARIABLE_LIMIT - 5)
    assert configuration_size_problem(config) is None
    config["opstrace:tenants"] = "<" + config["opstrace:tenants"][1:]
    assert configuration_size_problem(config) is not None


def test_linux_refuses_a_process_the_variable_one_byte_past_the_limit() -> None:
    """The limit itself, against this machine's kernel (MAX_ARG_STRLEN)."""
    value = "x" * (ENVIRONMENT_VARIABLE_LIMIT - len("PULUMI_CONFIG=") - 1)
    assert subprocess.run(["true"], env={"PULUMI_CONFIG": value}, check=False).returncode == 0
    with pytest.raises(OSError, match="Argument list too long") as raised:
        subprocess.run(["true"], env={"PULUMI_CONFIG": value + "x"}, check=False)
    assert raised.value.errno == errno.E2BIG
