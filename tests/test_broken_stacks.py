"""A table of broken stack files, each with the exact one line an operator reads.

Every row goes the way a stack file goes under the offline plan: read as the CLI reads
it (`tools.offline.stack_config`: YAML, namespaces, the CLI's checks of Pulumi.yaml's
declarations), handed over as the CLI hands config to a program (`cli_config`), then
`stack_settings` and `parse_config`. Rows the CLI refuses carry the CLI's own words.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opstrace import keys
from opstrace.config.parse import ConfigError
from opstrace.config.stack import config_of_stack
from tools.offline import ProgramFailed, ProgramRun, run_program
from tools.stack_files import PROJECT_DIR, cli_config, stack_config

BASE = {
    "aws:region": "eu-central-1",
    "opstrace:instanceName": "acme",
    "opstrace:domain": "acme.dev",
    "opstrace:tenants": ["prod"],
}
"""A valid stack; each row breaks one thing in it."""

EC_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
LONG_DOMAIN = ".".join(["d" * 63, "d" * 63, "d" * 63, "d" * 42, "dev"])
"""`cortex.ci.acme.<it>` is 253 characters, the longest a name may be."""
PRIVATE_KEY = keys.generate_private_key(2048)
PRIVATE_PEM = keys.private_key_pem(PRIVATE_KEY).decode()
RSA_PEM = keys.public_key_pem(PRIVATE_KEY)


def stack(**settings: Any) -> str:
    """The base stack file with `opstrace:` settings set (`...` removes one)."""
    config = dict(BASE)
    for name, value in settings.items():
        key = name if ":" in name else f"opstrace:{name}"
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    return yaml.safe_dump({"config": config}, sort_keys=False)


def many_tenants(count: int, tokens: int) -> list[dict[str, Any]]:
    """`count` tenants of `tokens` tokens each."""
    return [{"name": f"t{i}", "tokens": [f"k{j}" for j in range(tokens)]} for i in range(count)]


def tenants_file(tenants: list[Any]) -> tuple[tuple[str, str], ...]:
    """`tenants` in the file `tenants.yaml` (the stack names it with `tenantsFile`)."""
    return (("tenants.yaml", yaml.safe_dump(tenants)),)


def rule_file(
    name: str = "latency", groups: int = 1, rule: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An inline rule file of `groups` copies of one group holding `rule`."""
    chosen = rule if rule is not None else {"alert": "Slow", "expr": "up == 0"}
    return {"groups": [{"name": name, "rules": [chosen]}] * groups}


@dataclass(frozen=True)
class Broken:
    """A stack file and the one line it must be refused with."""

    name: str
    text: str
    message: str
    files: tuple[tuple[str, str], ...] = ()
    """Files beside the stack, in the project directory: (name, text)."""


def broken_stacks(project: str) -> list[Broken]:
    """Every row; `project` is the project directory that paths in messages show."""
    ec_pem, private_pem = EC_PEM, PRIVATE_PEM
    return [
        Broken(
            "yaml_syntax_error",
            "config:\n  opstrace:instanceName: acme\n  opstrace:tenants: [prod\n",
            "stacks/Pulumi.broken.yaml:4:1: not valid YAML: expected ',' or ']', but got '<stream "
            "end>'",
        ),
        Broken(
            "no_config_mapping",
            "opstrace:instanceName: acme\n",
            "stacks/Pulumi.broken.yaml: expected a mapping with a `config:` mapping of settings",
        ),
        Broken(
            "config_not_a_mapping",
            "config: [a, b]\n",
            "stacks/Pulumi.broken.yaml: expected a mapping with a `config:` mapping of settings",
        ),
        Broken(
            "misspelt_key_without_namespace",
            stack(keybits=...) + "  keybits: 4096\n",
            "unknown setting 'opstrace:keybits'; did you mean 'opstrace:keyBits'?",
        ),
        Broken(
            "only_one_key_without_namespace",
            "config:\n  instanceName: acme\n",
            "Stack 'broken' is missing configuration value 'domain'",
        ),
        Broken(
            "misspelt_setting_letters",
            stack(instanceNmae="acme"),
            "unknown setting 'opstrace:instanceNmae'; did you mean 'opstrace:instanceName'?",
        ),
        Broken(
            "unknown_setting",
            stack(colour="red"),
            "unknown setting 'opstrace:colour': not one of this project's settings (see `config:` "
            "in Pulumi.yaml)",
        ),
        Broken(
            "missing_instance_name",
            stack(instanceName=...),
            "Stack 'broken' is missing configuration value 'instanceName'",
        ),
        Broken(
            "missing_domain",
            stack(domain=...),
            "Stack 'broken' is missing configuration value 'domain'",
        ),
        Broken(
            "missing_tenants",
            stack(tenants=...),
            "opstrace:tenants: required; set it in the stack file (`opstrace:tenants: [prod]`) "
            "or with `pulumi config set --path 'opstrace:tenants[0]' prod`",
        ),
        Broken(
            "tenants_as_a_string",
            stack(tenants="prod, staging"),
            "tenants: got the single value 'prod, staging', but tenants is a list: set each entry "
            "with `pulumi config set --path 'opstrace:tenants[0]' prod` (then [1], [2], ...) or "
            "write a YAML list in the stack file",
        ),
        Broken(
            "tenants_empty",
            stack(tenants=[]),
            "tenants: expected a list with at least one user tenant, got []: add one in the stack "
            "file (`opstrace:tenants: [prod]`) or with `pulumi config set --path "
            "'opstrace:tenants[0]' prod`",
        ),
        Broken(
            "tenants_broken_json",
            stack(tenants="[prod"),
            "tenants: '[prod' is not valid JSON (Expecting value at character 1): write a YAML "
            "list in the stack file",
        ),
        Broken(
            "tenant_uppercase",
            stack(tenants=["Prod"]),
            "tenants[0]: 'Prod' is not a valid tenant name: use lowercase letters, digits and "
            "inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)",
        ),
        Broken(
            "tenant_outer_hyphen",
            stack(tenants=["team-"]),
            "tenants[0]: 'team-' is not a valid tenant name: use lowercase letters, digits and "
            "inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$)",
        ),
        Broken(
            "tenant_listed_twice",
            stack(tenants=["prod", "prod"]),
            "tenants[1]: tenant 'prod' is listed twice",
        ),
        Broken(
            "tenant_system",
            stack(tenants=["prod", "system"]),
            "tenants[1]: 'system' is the instance's own tenant; it always exists and cannot be "
            "configured: choose another name",
        ),
        Broken(
            "tenant_too_long",
            stack(tenants=["a" * 57]),
            "tenants[0]: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a "
            "valid tenant name: at most 56 characters, so that its namespace "
            "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-tenant' is a valid "
            "Kubernetes name (63 characters)",
        ),
        Broken(
            "tenant_a_number",
            stack(tenants=[7]),
            "tenants[0]: expected a tenant name or an object, got 7",
        ),
        Broken(
            "tenant_object_without_name",
            stack(tenants=[{"tokens": ["x"]}]),
            "tenants[0].name: expected a tenant name, got None",
        ),
        Broken(
            "tenant_unknown_option",
            stack(tenants=[{"name": "ci", "colour": "red"}]),
            "tenants[0].colour: unknown tenant option; use name, tokens, rotation, exportKeysTo, "
            "signingKeyFile, limits, metricsRetention, logsRetention, rules, logRules, "
            "alertmanagerConfig, dataApiAllowedCidrs, grafana",
        ),
        Broken(
            "tenant_tokens_empty",
            stack(tenants=[{"name": "ci", "tokens": []}]),
            "tenants[0].tokens: expected a non-empty list of token names or {name, scopes} "
            "objects, got []",
        ),
        Broken(
            "token_scope_unknown",
            stack(tenants=[{"name": "ci", "tokens": [{"name": "agent", "scopes": ["push"]}]}]),
            "tenants[0].tokens[0].scopes: unknown scope 'push': expected a non-empty list of "
            "distinct scopes of metrics:read, metrics:write, logs:read, logs:write, rules:read, "
            "rules:write, alerts:read, alerts:write (leave scopes out for a token that may do "
            "everything)",
        ),
        Broken(
            "token_scopes_empty",
            stack(tenants=[{"name": "ci", "tokens": [{"name": "agent", "scopes": []}]}]),
            "tenants[0].tokens[0].scopes: expected a non-empty list of distinct scopes of "
            "metrics:read, metrics:write, logs:read, logs:write, rules:read, rules:write, "
            "alerts:read, alerts:write (leave scopes out for a token that may do everything), "
            "got []",
        ),
        Broken(
            "token_scope_twice",
            stack(
                tenants=[
                    {"name": "ci", "tokens": [{"name": "a", "scopes": ["logs:read", "logs:read"]}]}
                ]
            ),
            "tenants[0].tokens[0].scopes: scope 'logs:read' is listed twice: expected a non-empty "
            "list of distinct scopes of metrics:read, metrics:write, logs:read, logs:write, "
            "rules:read, rules:write, alerts:read, alerts:write (leave scopes out for a token "
            "that may do everything)",
        ),
        Broken(
            "token_option_unknown",
            stack(tenants=[{"name": "ci", "tokens": [{"name": "a", "scope": ["logs:read"]}]}]),
            "tenants[0].tokens[0].scope: unknown token option; use name, scopes, rateLimit",
        ),
        Broken(
            "gateway_min_ready_too_long",
            stack(gatewayMinReadySeconds=601),
            "gatewayMinReadySeconds: 601 is not from 1 to 600 seconds (or 0, the load "
            "balancer's default)",
        ),
        Broken(
            "token_rate_limit_zero",
            stack(tenants=[{"name": "ci", "tokens": [{"name": "a", "rateLimit": 0}]}]),
            "tenants[0].tokens[0].rateLimit: expected requests per second, a whole number from "
            "1 to 100000, got 0",
        ),
        Broken(
            "token_rate_limit_text",
            stack(tenants=[{"name": "ci", "tokens": [{"name": "a", "rateLimit": "50/s"}]}]),
            "tenants[0].tokens[0].rateLimit: expected requests per second, a whole number from "
            "1 to 100000, got '50/s'",
        ),
        Broken(
            "data_api_network_with_host_bits",
            stack(dataApiAllowedCidrs="203.0.113.7/24"),
            "dataApiAllowedCidrs: '203.0.113.7/24' is not a network: write ADDRESS/PREFIX with "
            "the host bits zero, e.g. 203.0.113.0/24",
        ),
        Broken(
            "data_api_private_network_on_nlb",
            stack(dataApiAllowedCidrs="10.1.0.0/16"),
            "dataApiAllowedCidrs: '10.1.0.0/16' is a private network, which never reaches the "
            "internet-facing NLB (clients in the VPC come from its NAT gateways' addresses, "
            "which the system tenant takes already): list public networks",
        ),
        Broken(
            "tenant_networks_outside_the_instances",
            stack(
                dataApiAllowedCidrs="203.0.113.0/24",
                tenants=[{"name": "ci", "dataApiAllowedCidrs": ["198.51.100.0/24"]}],
            ),
            "tenants[0].dataApiAllowedCidrs (tenant 'ci'): none of 198.51.100.0/24 lies within "
            "the instance's dataApiAllowedCidrs (203.0.113.0/24): no address could reach the "
            "tenant; list networks within those",
        ),
        Broken(
            "tenant_networks_empty",
            stack(tenants=[{"name": "ci", "dataApiAllowedCidrs": []}]),
            "tenants[0].dataApiAllowedCidrs (tenant 'ci'): empty: list at least one network, or "
            "leave it out for every address",
        ),
        Broken(
            "grafana_token_name_taken",
            stack(tenants=[{"name": "ci", "tokens": ["default", "grafana"]}]),
            "tenants[0].tokens[1]: 'grafana' names the tenant's Grafana credential (read-only, "
            "made by the program): choose another name, or set grafana: false",
        ),
        Broken(
            "grafana_not_a_boolean_or_object",
            stack(tenants=[{"name": "ci", "grafana": "yes"}]),
            "tenants[0].grafana (tenant 'ci'): expected true, false or {roles, dashboards, "
            "storageGi}, got 'yes'",
        ),
        Broken(
            "grafana_option_while_the_instance_has_none",
            stack(grafana=False, tenants=[{"name": "ci", "grafana": {"storageGi": 5}}]),
            "tenants[0].grafana (tenant 'ci'): is set, but the instance's grafana is false: no "
            "tenant has a Grafana; remove the option or set opstrace:grafana to true",
        ),
        Broken(
            "grafana_unknown_role",
            stack(tenants=[{"name": "ci", "grafana": {"roles": {"Owner": {"groups": ["a"]}}}}]),
            "tenants[0].grafana.roles.Owner (tenant 'ci'): unknown role; use Viewer, Editor, Admin",
        ),
        Broken(
            "grafana_role_for_nobody",
            stack(tenants=[{"name": "ci", "grafana": {"roles": {"Admin": {"groups": []}}}}]),
            "tenants[0].grafana.roles.Admin (tenant 'ci'): grants the role to nobody: list "
            "groups or emailDomains",
        ),
        Broken(
            "grafana_role_email_domain_with_at",
            stack(
                tenants=[
                    {"name": "ci", "grafana": {"roles": {"Viewer": {"emailDomains": ["@a.com"]}}}}
                ]
            ),
            "tenants[0].grafana.roles.Viewer.emailDomains[0] (tenant 'ci'): '@a.com' is not a "
            "valid domain: use dot-separated labels of lowercase letters, digits and inner "
            "hyphens, at least two labels, no trailing dot",
        ),
        Broken(
            "grafana_role_group_with_a_quote",
            stack(tenants=[{"name": "ci", "grafana": {"roles": {"Editor": {"groups": ["o'n"]}}}}]),
            "tenants[0].grafana.roles.Editor.groups[0] (tenant 'ci'): \"o'n\" holds a quote or a "
            "backslash, which Grafana's role mapping cannot match: rename the group",
        ),
        Broken(
            "grafana_storage_zero",
            stack(tenants=[{"name": "ci", "grafana": {"storageGi": 0}}]),
            "tenants[0].grafana.storageGi (tenant 'ci'): expected GiB, a whole number from 1 to "
            "1000, got 0",
        ),
        Broken(
            "grafana_sso_without_secret",
            stack(
                grafanaSso={
                    "name": "Okta",
                    "authUrl": "https://idp.acme.dev/authorize",
                    "tokenUrl": "https://idp.acme.dev/token",
                    "apiUrl": "https://idp.acme.dev/userinfo",
                    "clientId": "opstrace",
                }
            ),
            "grafanaClientSecret: required with grafanaSso; set it as a secret: `pulumi config "
            "set --secret opstrace:grafanaClientSecret <the client secret>`",
        ),
        Broken(
            "grafana_sso_plain_http",
            stack(
                grafanaSso={
                    "name": "Okta",
                    "authUrl": "http://idp.acme.dev/authorize",
                    "tokenUrl": "https://idp.acme.dev/token",
                    "apiUrl": "https://idp.acme.dev/userinfo",
                    "clientId": "opstrace",
                },
                grafanaClientSecret="s3cret",
            ),
            "grafanaSso.authUrl: 'http://idp.acme.dev/authorize' is not an https:// URL with a "
            "host and no credentials",
        ),
        Broken(
            "grafana_sso_missing_endpoint",
            stack(grafanaSso={"name": "Okta", "clientId": "opstrace"}),
            "grafanaSso.authUrl: required, a non-empty string; copy the endpoints from your "
            "provider's /.well-known/openid-configuration",
        ),
        Broken(
            # One letter longer than its data API hosts: only the Grafana host is too long.
            "grafana_host_too_long",
            stack(domain=LONG_DOMAIN, tenants=["ci"]),
            f"tenants[0]: tenant 'ci' gives a bad endpoint: 'grafana.ci.acme.{LONG_DOMAIN}' is "
            "longer than 253 characters (its Grafana's host; `grafana: false` leaves it out): use "
            "a shorter tenant, instance or domain name",
        ),
        Broken(
            "token_object_without_name",
            stack(tenants=[{"name": "ci", "tokens": [{"scopes": ["logs:read"]}]}]),
            "tenants[0].tokens[0].name: None is not a valid token name: use 1 to 63 lowercase "
            "letters and digits (rule ^[a-z0-9]+$)",
        ),
        Broken(
            "tenant_token_uppercase",
            stack(tenants=[{"name": "ci", "tokens": ["Deploy"]}]),
            "tenants[0].tokens[0]: 'Deploy' is not a valid token name: use 1 to 63 lowercase "
            "letters and digits (rule ^[a-z0-9]+$)",
        ),
        Broken(
            "tenant_token_hyphen",
            stack(tenants=[{"name": "ci", "tokens": ["ci-deploy"]}]),
            "tenants[0].tokens[0]: 'ci-deploy' is not a valid token name: use 1 to 63 lowercase "
            "letters and digits (rule ^[a-z0-9]+$)",
        ),
        Broken(
            "tenant_token_twice",
            stack(tenants=[{"name": "ci", "tokens": ["a", "a"]}]),
            "tenants[0].tokens[1]: token 'a' is listed twice",
        ),
        Broken(
            "tenant_rotation_a_list",
            stack(tenants=[{"name": "ci", "rotation": ["x"]}]),
            "tenants[0].rotation: expected a string, got ['x']",
        ),
        Broken(
            "export_and_signing_key",
            stack(tenants=[{"name": "ci", "exportKeysTo": "k", "signingKeyFile": "k/a.pem"}]),
            "tenants[0]: exportKeysTo and signingKeyFile exclude each other: a signing key file is "
            "already a keypair file",
        ),
        Broken(
            "export_under_a_file",
            stack(tenants=[{"name": "ci", "exportKeysTo": "a-file/keys"}]),
            f"tenants[0].exportKeysTo: 'a-file/keys' ({project}/a-file/keys): {project}/a-file "
            "is a file, not a directory: choose a directory you can write to, or fix its "
            "permissions",
        ),
        Broken(
            "export_where_nothing_can_be_created",
            # Root passes every permission check: the directory is tried, not inferred.
            stack(tenants=[{"name": "ci", "exportKeysTo": "/proc/opstrace-keys"}]),
            "tenants[0].exportKeysTo: '/proc/opstrace-keys' (/proc/opstrace-keys) cannot be "
            "created in /proc: refused (no such file or directory): choose a directory you can "
            "write to, or fix its permissions",
        ),
        Broken(
            "export_not_a_path",
            stack(tenants=[{"name": "ci", "exportKeysTo": 5}]),
            "tenants[0].exportKeysTo: expected a path, got 5",
        ),
        Broken(
            "instance_uppercase",
            stack(instanceName="Acme"),
            "instanceName: 'Acme' is not a valid instance name: use 1 to 23 lowercase letters, "
            "digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and "
            "outer '-' cannot appear in a DNS name)",
        ),
        Broken(
            "instance_underscore",
            stack(instanceName="acme_corp"),
            "instanceName: 'acme_corp' is not a valid instance name: use 1 to 23 lowercase "
            "letters, digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's "
            "'_' and outer '-' cannot appear in a DNS name)",
        ),
        Broken(
            "instance_leading_hyphen",
            stack(instanceName="-acme"),
            "instanceName: '-acme' is not a valid instance name: use 1 to 23 lowercase letters, "
            "digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and "
            "outer '-' cannot appear in a DNS name)",
        ),
        Broken(
            "instance_too_long",
            stack(instanceName="a" * 24),
            "instanceName: 'aaaaaaaaaaaaaaaaaaaaaaaa' is not a valid instance name: use 1 to 23 "
            "lowercase letters, digits and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; "
            "Opstrace's '_' and outer '-' cannot appear in a DNS name)",
        ),
        Broken(
            "instance_empty",
            stack(instanceName=""),
            "instanceName: '' is not a valid instance name: use 1 to 23 lowercase letters, digits "
            "and inner hyphens (rule ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$; Opstrace's '_' and outer '-' "
            "cannot appear in a DNS name)",
        ),
        Broken(
            "domain_one_label",
            stack(domain="localhost"),
            "domain: 'localhost' is not a valid domain: use dot-separated labels of lowercase "
            "letters, digits and inner hyphens, at least two labels, no trailing dot",
        ),
        Broken(
            "domain_uppercase",
            stack(domain="Example.com"),
            "domain: 'Example.com' is not a valid domain: use dot-separated labels of lowercase "
            "letters, digits and inner hyphens, at least two labels, no trailing dot",
        ),
        Broken(
            "domain_trailing_dot",
            stack(domain="acme.dev."),
            "domain: 'acme.dev.' is not a valid domain: use dot-separated labels of lowercase "
            "letters, digits and inner hyphens, at least two labels, no trailing dot",
        ),
        Broken(
            "domain_reserved",
            stack(domain="example.com"),
            "domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no one "
            "owns it and Route53 refuses to host it: set your own domain with `pulumi config set "
            "domain observability.yourcompany.com`, or set dns to none",
        ),
        Broken(
            "domain_reserved_tld",
            stack(domain="observability.test"),
            "domain: 'observability.test' is a placeholder: it is reserved (RFC 2606/6761), so no "
            "one owns it and Route53 refuses to host it: set your own domain with `pulumi config "
            "set domain observability.yourcompany.com`, or set dns to none",
        ),
        Broken(
            "endpoint_too_long",
            stack(domain=".".join(["d" * 60] * 4)),
            "tenants[0]: tenant 'prod' gives a bad endpoint: "
            f"'cortex.prod.acme.{'.'.join(['d' * 60] * 4)}' "
            "is longer than 253 characters: use a shorter tenant, instance or domain name",
        ),
        Broken(
            "dns_unknown_mode",
            stack(dns="cloudflare"),
            "dns: 'cloudflare' is not allowed: use one of route53, none",
        ),
        Broken(
            "dns_none_with_parent_zone",
            stack(dns="none", parentZoneId="Z123"),
            "parentZoneId: is set, but dns is 'none': with DNS managed elsewhere there is no zone "
            "to delegate; remove parentZoneId or set dns to route53",
        ),
        Broken(
            "key_bits_small",
            stack(keyBits=1024),
            "keyBits: 1024 is not allowed: use 2048, 3072 or 4096 (keys under 2048 bits are "
            "refused)",
        ),
        Broken(
            "key_bits_boolean",
            stack(keyBits=True),
            "Stack 'broken' with configuration key 'keyBits' must be of type 'integer'",
        ),
        Broken(
            "key_bits_text",
            stack(keyBits="big"),
            "Stack 'broken' with configuration key 'keyBits' must be of type 'integer'",
        ),
        Broken(
            "gateway_replicas_one",
            stack(gatewayReplicas=1),
            "gatewayReplicas: 1 is too few: use at least 2 so that one pod can restart while "
            "another serves",
        ),
        Broken(
            "gateway_image_without_version",
            stack(gatewayImage="haproxy"),
            "gatewayImage: 'haproxy' does not pin a version: write <repository>:<version> "
            "(e.g. haproxy:3.4.7), optionally followed by @sha256:<digest>",
        ),
        Broken(
            "gateway_image_latest",
            stack(gatewayImage="haproxy:latest"),
            "gatewayImage: 'haproxy:latest' does not pin a version: write <repository>:<version> "
            "(e.g. haproxy:3.4.7), optionally followed by @sha256:<digest>",
        ),
        Broken(
            "gateway_image_short_digest",
            stack(gatewayImage="haproxy:3.4.7@sha256:abc"),
            "gatewayImage: 'haproxy:3.4.7@sha256:abc' is not an image reference: write "
            "<repository>:<version>, optionally followed by @sha256:<64 hex digits>",
        ),
        Broken(
            "token_lifetime_word",
            stack(tokenLifetime="forever"),
            "tokenLifetime: 'forever' is not a duration: use a positive number and one unit of s, "
            "m, h, d or y (e.g. 90d, 10y)",
        ),
        Broken(
            "token_lifetime_zero",
            stack(tokenLifetime="0d"),
            "tokenLifetime: '0d' is not a duration: use a positive number and one unit of s, m, h, "
            "d or y (e.g. 90d, 10y)",
        ),
        Broken(
            "token_lifetime_two_units",
            stack(tokenLifetime="1y6m"),
            "tokenLifetime: '1y6m' is not a duration: use a positive number and one unit of s, m, "
            "h, d or y (e.g. 90d, 10y)",
        ),
        Broken(
            "cortex_url_https_with_path",
            stack(cortexUrl="https://cortex/api"),
            "cortexUrl: 'https://cortex/api' is not an upstream URL: use http://HOST[:PORT] with a "
            "DNS name or IPv4 address, no path, query, credentials or TLS (e.g. "
            "http://cortex-gateway.cortex.svc.cluster.local:80)",
        ),
        Broken(
            "loki_url_with_path",
            stack(lokiUrl="http://loki:3100/loki"),
            "lokiUrl: 'http://loki:3100/loki' is not an upstream URL: use http://HOST[:PORT] with "
            "a DNS name or IPv4 address, no path, query, credentials or TLS (e.g. "
            "http://cortex-gateway.cortex.svc.cluster.local:80)",
        ),
        Broken(
            "trusted_keys_a_string",
            stack(trustedKeys="key.pem"),
            "trustedKeys: expected a list of PEM texts or file paths, got 'key.pem'",
        ),
        Broken(
            "trusted_key_empty",
            stack(trustedKeys=[""]),
            "trustedKeys[0]: expected PEM text or a file path, got ''",
        ),
        Broken(
            "trusted_key_a_number",
            stack(trustedKeys=[42]),
            "trustedKeys[0]: expected PEM text or a file path, got 42",
        ),
        Broken(
            "trusted_key_bound_to_an_unknown_tenant",
            stack(trustedKeys=[{"key": RSA_PEM, "tenant": "qa"}]),
            "trustedKeys[0].tenant: 'qa' is not a tenant of this instance: use one of prod, system",
        ),
        Broken(
            "trusted_key_unknown_option",
            stack(trustedKeys=[{"key": "ops.pub", "colour": "red"}]),
            "trustedKeys[0].colour: unknown option; use key, tenant",
        ),
        Broken(
            "cluster_unknown_mode",
            stack(cluster="gke"),
            "cluster: 'gke' is not allowed: use one of eks, existing",
        ),
        Broken(
            "kubernetes_version_unsupported",
            stack(kubernetesVersion="1.29"),
            "kubernetesVersion: '1.29' is not an EKS version this program knows: use one of "
            "1.32, 1.33, 1.34, 1.35, 1.36",
        ),
        Broken(
            "kubernetes_version_past_extended_support",
            stack(kubernetesVersion="1.31"),
            "kubernetesVersion: '1.31' left EKS extended support on 2026-11-26, after which EKS "
            "creates no cluster on it: use one of 1.32, 1.33, 1.34, 1.35, 1.36, one minor "
            "version up at a time",
        ),
        Broken(
            "kubernetes_version_in_extended_support_with_standard_policy",
            stack(kubernetesVersion="1.34"),
            "kubernetesVersion: '1.34' is in EKS extended support since 2026-12-02 ($0.60 an "
            "hour instead of $0.10), which upgradePolicy standard does not pay for: use a newer "
            "version, one minor version up at a time, or set upgradePolicy to extended",
        ),
        Broken(
            "upgrade_policy_unknown",
            stack(upgradePolicy="EXTENDED"),
            "upgradePolicy: 'EXTENDED' is not allowed: use one of standard, extended",
        ),
        Broken(
            "availability_zone_not_a_zone_name",
            stack(availabilityZones="eu-central-1a,eu-central-1-ham-1a"),
            "availabilityZones: 'eu-central-1-ham-1a' is not an availability zone's name: write "
            "2 or 3, or 2 or 3 names of the region's zones, e.g. eu-central-1a,eu-central-1b",
        ),
        Broken(
            "availability_zone_of_another_region",
            stack(availabilityZones="us-east-1a,us-east-1b"),
            "availabilityZones: 'us-east-1a' is not in eu-central-1 (aws:region): name zones of "
            "the cluster's region",
        ),
        Broken(
            "availability_zone_named_twice",
            stack(availabilityZones="eu-central-1a, eu-central-1a"),
            "availabilityZones: 'eu-central-1a, eu-central-1a' names a zone twice: name each once",
        ),
        Broken(
            "availability_zone_named_alone",
            stack(availabilityZones="eu-central-1a"),
            "availabilityZones: 1 is not allowed: use 2 or 3",
        ),
        Broken(
            "cluster_admin_a_role_session",
            stack(clusterAdmins="arn:aws:sts::123456789012:assumed-role/Admin/jane"),
            "clusterAdmins: 'arn:aws:sts::123456789012:assumed-role/Admin/jane' is a session of "
            "an assumed role, which EKS cannot give access to: use the role's ARN, e.g. "
            "arn:aws:iam::123456789012:role/Admin",
        ),
        Broken(
            "cluster_admin_not_an_arn",
            stack(clusterAdmins="arn:aws:iam::123456789012:role/ci, jane"),
            "clusterAdmins: 'jane' is not the ARN of an IAM role or user: use "
            "arn:aws:iam::<account>:role/<name> or arn:aws:iam::<account>:user/<name>",
        ),
        Broken(
            "cluster_admins_for_an_existing_cluster",
            stack(
                cluster="existing",
                certificateIssuer="letsencrypt",
                eksClusterName="platform",
                clusterAdmins="arn:aws:iam::123456789012:role/ci",
            ),
            "clusterAdmins: is set, but cluster is 'existing': the program does not manage that "
            "cluster's access; remove it and grant access where the cluster is managed",
        ),
        Broken(
            "control_plane_log_retention_not_a_cloudwatch_period",
            stack(controlPlaneLogRetention="45d"),
            "controlPlaneLogRetention: 45d is not a period CloudWatch Logs keeps logs for: use one "
            "of 1d, 3d, 5d, 7d, 14d, 30d, 60d, 90d, 120d, 150d, 180d, 365d, 400d, 545d, 731d, "
            "1096d, 1827d, 2192d, 2557d, 2922d, 3288d",
        ),
        Broken(
            "image_mirrors_not_a_map",
            stack(imageMirrors="docker.io"),
            "imageMirrors: expected a map of image sources to mirrors, got 'docker.io': write "
            "e.g. {docker.io: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub}",
        ),
        Broken(
            "image_mirror_a_url",
            stack(imageMirrors={"docker.io": "https://mirror.example.org"}),
            "imageMirrors.docker.io: mirror 'https://mirror.example.org' is not a registry with "
            "an optional path: write e.g. docker.io: "
            "123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub",
        ),
        Broken(
            "acme_staging_with_an_issuer_of_ones_own",
            stack(dns="none", certificateIssuer="letsencrypt", acmeStaging=True),
            "acmeStaging: is for the program's own Let's Encrypt issuer (cluster eks, dns "
            "route53); with certificateIssuer the issuer is yours: remove acmeStaging",
        ),
        Broken(
            "sizing_unknown",
            stack(sizing="huge"),
            "sizing: 'huge' is not allowed: use one of small, production",
        ),
        Broken(
            "node_instance_type_malformed",
            stack(nodeInstanceType="large"),
            "nodeInstanceType: 'large' is not an EC2 instance type: use FAMILY.SIZE, e.g. "
            "m7i.xlarge",
        ),
        Broken(
            "node_count_one",
            stack(nodeCount=1),
            "nodeCount: 1 is not allowed: use 2 to 100 nodes (0 takes the sizing's 3)",
        ),
        Broken(
            "availability_zones_four",
            stack(availabilityZones=4),
            "availabilityZones: 4 is not allowed: use 2 or 3",
        ),
        Broken(
            "production_over_two_zones",
            stack(sizing="production", availabilityZones=2),
            "availabilityZones: 2 is too few for sizing 'production', which replicates metrics "
            "over 3 zones: use 3",
        ),
        Broken(
            "vpc_cidr_public",
            stack(vpcCidr="8.8.0.0/16"),
            "vpcCidr: '8.8.0.0/16' is not usable: use a private IPv4 network from /16 to /20 "
            "(e.g. 10.40.0.0/16)",
        ),
        Broken(
            "vpc_cidr_too_small",
            stack(vpcCidr="10.0.0.0/24"),
            "vpcCidr: '10.0.0.0/24' is not usable: use a private IPv4 network from /16 to /20 "
            "(e.g. 10.40.0.0/16)",
        ),
        Broken(
            "generic_load_balancer_with_eks",
            stack(loadBalancer="generic"),
            "loadBalancer: 'generic' is for existing clusters; with cluster eks the program "
            "installs the AWS Load Balancer Controller: use aws",
        ),
        Broken(
            "existing_cluster_without_issuer",
            stack(cluster="existing"),
            "certificateIssuer: required with cluster existing: name the cert-manager "
            "ClusterIssuer that issues the tenant certificates (DNS-01 for "
            "<tenant>.<instance>.<domain> names)",
        ),
        Broken(
            "existing_cluster_own_backends_without_eks_name",
            stack(cluster="existing", certificateIssuer="letsencrypt"),
            "eksClusterName: required with cluster existing when the instance runs its own "
            "Mimir or Loki (cortexUrl or lokiUrl unset): name the EKS cluster, whose OIDC "
            "provider lets them reach their S3 buckets; or set both URLs to external backends",
        ),
        Broken(
            "acme_email_malformed",
            stack(acmeEmail="ops"),
            "acmeEmail: 'ops' is not an email address",
        ),
        Broken(
            "metrics_retention_in_hours",
            stack(metricsRetention="720h"),
            "metricsRetention: '720h' is not a retention: use a number of days from 1d to "
            "3650d (e.g. 30d)",
        ),
        Broken(
            "keep_data_not_a_boolean",
            stack(keepDataOnDestroy="maybe"),
            "Stack 'broken' with configuration key 'keepDataOnDestroy' must be of type 'boolean'",
        ),
        Broken(
            "api_networks_left_open_in_production",
            stack(sizing="production"),
            "apiAllowedCidrs: required with sizing 'production': list the networks that may "
            "reach the cluster's API endpoint, comma-separated, e.g. 203.0.113.7/32 (`curl -s "
            "https://checkip.amazonaws.com` prints yours; 0.0.0.0/0 opens it to every address)",
        ),
        Broken(
            "api_network_with_host_bits",
            stack(apiAllowedCidrs="198.51.100.0/24, 203.0.113.7/24"),
            "apiAllowedCidrs: '203.0.113.7/24' is not an IPv4 network: write ADDRESS/PREFIX with "
            "the host bits zero, e.g. 203.0.113.7/32 (`curl -s https://checkip.amazonaws.com` "
            "prints yours)",
        ),
        Broken(
            "api_network_private",
            stack(apiAllowedCidrs="203.0.113.7/32,10.0.0.0/8"),
            "apiAllowedCidrs: '10.0.0.0/8' is a private network, which never reaches the public "
            "endpoint (the VPC uses the private one): list public networks",
        ),
        Broken(
            "api_networks_for_an_existing_cluster",
            stack(
                cluster="existing",
                certificateIssuer="letsencrypt",
                eksClusterName="platform",
                apiAllowedCidrs="203.0.113.7/32",
            ),
            "apiAllowedCidrs: is set, but cluster is 'existing': the program does not manage that "
            "cluster's API endpoint; remove it and limit the endpoint where the cluster is managed",
        ),
        Broken(
            "secrets_key_not_an_arn",
            stack(secretsKeyArn="alias/eks-secrets"),
            "secretsKeyArn: 'alias/eks-secrets' is not a KMS key ARN: use "
            "arn:aws:kms:<region>:<account>:key/<key id> (or :alias/<name>)",
        ),
        Broken(
            "secrets_key_in_another_region",
            stack(secretsKeyArn="arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd"),
            "secretsKeyArn: the key is in us-east-1, the cluster in eu-central-1 (aws:region): EKS "
            "needs a key in the cluster's region",
        ),
        Broken(
            "network_policy_risk_accepted_for_eks",
            stack(networkPolicyRiskAccepted=True),
            "networkPolicyRiskAccepted: is for cluster existing; with cluster eks the program "
            "turns NetworkPolicy enforcement on itself (the vpc-cni add-on): remove it",
        ),
        Broken(
            "network_policy_risk_accepted_not_a_boolean",
            stack(networkPolicyRiskAccepted="accepted"),
            "Stack 'broken' with configuration key 'networkPolicyRiskAccepted' must be of type "
            "'boolean'",
        ),
        Broken(
            "aws_region_missing",
            stack(**{"aws:region": ...}),
            "aws:region: required for cluster eks: set it in the stack file (`aws:region: "
            "eu-central-1`) or with `pulumi config set aws:region eu-central-1`",
        ),
        Broken(
            "trusted_key_missing_file",
            stack(trustedKeys=["missing.pub"]),
            f"trustedKeys[0]: cannot read {project}/missing.pub: No such file or directory",
        ),
        Broken(
            "trusted_key_private",
            stack(trustedKeys=[private_pem]),
            "trustedKeys[0]: contains private key material; only public keys (-----BEGIN PUBLIC "
            "KEY-----) may be trusted",
        ),
        Broken(
            "trusted_key_ec",
            stack(trustedKeys=[ec_pem]),
            "trustedKeys[0]: only RSA keys are accepted, got ECPublicKey",
        ),
        Broken(
            "kubeconfig_a_list",
            stack(kubeconfig=["a"]),
            "Stack 'broken' with configuration key 'kubeconfig' must be of type 'string'",
        ),
        Broken(
            "limits_unknown_limit",
            stack(limits={"metrics": {"maxSeries": 1000}}),
            "limits.metrics.maxSeries: unknown limit: the metrics limits are ingestionRate, "
            "ingestionBurstSize, maxGlobalSeriesPerUser, maxLabelNamesPerSeries, "
            "maxQueryLookback, maxFetchedSeriesPerQuery, maxFetchedChunksPerQuery",
        ),
        Broken(
            "limits_unknown_group",
            stack(limits={"traces": {"maxSpans": 1}}),
            "limits.traces: unknown limit group: use metrics or logs",
        ),
        Broken(
            "limits_a_list",
            stack(limits=["metrics"]),
            "limits: expected a mapping of metrics and logs limits, got ['metrics']",
        ),
        Broken(
            "tenant_limit_unknown",
            stack(tenants=[{"name": "prod", "limits": {"metrics": {"maxGlobalSeries": 5}}}]),
            "tenants[0].limits.metrics.maxGlobalSeries (tenant 'prod'): unknown limit; did you "
            "mean maxGlobalSeriesPerUser? The metrics limits are ingestionRate, "
            "ingestionBurstSize, maxGlobalSeriesPerUser, maxLabelNamesPerSeries, "
            "maxQueryLookback, maxFetchedSeriesPerQuery, maxFetchedChunksPerQuery",
        ),
        Broken(
            "tenant_limit_negative",
            stack(tenants=[{"name": "prod", "limits": {"metrics": {"ingestionRate": -5}}}]),
            "tenants[0].limits.metrics.ingestionRate (tenant 'prod'): -5 is negative: use a "
            "number of samples per second above zero (e.g. 25000)",
        ),
        Broken(
            "tenant_limit_zero",
            stack(tenants=[{"name": "prod", "limits": {"logs": {"maxGlobalStreamsPerUser": 0}}}]),
            "tenants[0].limits.logs.maxGlobalStreamsPerUser (tenant 'prod'): 0 is no limit: use "
            "a number of streams above zero (e.g. 10000), or leave the limit out for the "
            "backend's default",
        ),
        Broken(
            "tenant_limit_not_whole",
            stack(
                tenants=[{"name": "prod", "limits": {"metrics": {"maxGlobalSeriesPerUser": 1.5}}}]
            ),
            "tenants[0].limits.metrics.maxGlobalSeriesPerUser (tenant 'prod'): 1.5 is not a "
            "whole number of series (e.g. 500000)",
        ),
        Broken(
            "tenant_limit_number_with_a_unit",
            stack(tenants=[{"name": "prod", "limits": {"logs": {"ingestionRateMb": "4MB"}}}]),
            "tenants[0].limits.logs.ingestionRateMb (tenant 'prod'): '4MB' is not a number of "
            "MB per second: write the number alone (e.g. 8)",
        ),
        Broken(
            "tenant_limit_duration_in_words",
            stack(
                tenants=[{"name": "prod", "limits": {"metrics": {"maxQueryLookback": "90 days"}}}]
            ),
            "tenants[0].limits.metrics.maxQueryLookback (tenant 'prod'): '90 days' is not in "
            "hours or days: write a whole number and its unit (e.g. 90d)",
        ),
        Broken(
            "tenant_limit_size_without_a_unit",
            stack(tenants=[{"name": "prod", "limits": {"logs": {"maxLineSize": 262144}}}]),
            "tenants[0].limits.logs.maxLineSize (tenant 'prod'): 262144 is not in bytes (B, KB, "
            "MB, KiB or MiB): write a whole number and its unit (e.g. 256KB)",
        ),
        Broken(
            "tenant_retention_in_hours",
            stack(tenants=[{"name": "prod", "metricsRetention": "2160h"}]),
            "tenants[0].metricsRetention (tenant 'prod'): '2160h' is not a retention: use a "
            "number of days from 1d to 3650d (e.g. 30d)",
        ),
        Broken(
            "tenant_rules_missing_file",
            stack(tenants=[{"name": "prod", "rules": "rules/prod.yaml"}]),
            f"tenants[0].rules (tenant 'prod'): cannot read {project}/rules/prod.yaml: No such "
            "file or directory",
        ),
        Broken(
            "tenant_log_rules_missing_file",
            stack(tenants=[{"name": "prod", "logRules": "rules/prod-logs.yaml"}]),
            f"tenants[0].logRules (tenant 'prod'): cannot read {project}/rules/prod-logs.yaml: "
            "No such file or directory",
        ),
        Broken(
            "tenant_rules_not_a_rule_file",
            stack(tenants=[{"name": "prod", "rules": {"rules": []}}]),
            "tenants[0].rules (tenant 'prod'): inline: expected a rule file: a mapping with only "
            "`groups:`, a list of groups",
        ),
        Broken(
            "tenant_rules_group_name_with_a_slash",
            stack(tenants=[{"name": "prod", "rules": rule_file(name="a/b")}]),
            "tenants[0].rules (tenant 'prod'): inline: groups[0].name: 'a/b' is not a group "
            "name: use letters, digits, '_', '-' and '.', not starting with '.' (the ruler's API "
            "has it in its paths)",
        ),
        Broken(
            "tenant_rules_group_twice",
            stack(tenants=[{"name": "prod", "rules": rule_file(groups=2)}]),
            "tenants[0].rules (tenant 'prod'): inline: groups[1].name: group 'latency' is "
            "listed twice",
        ),
        Broken(
            "tenant_rules_rule_without_expr",
            stack(tenants=[{"name": "prod", "rules": rule_file(rule={"alert": "Down"})}]),
            "tenants[0].rules (tenant 'prod'): inline: groups[0].rules[0].expr: expected the "
            "rule's PromQL expression as text",
        ),
        Broken(
            "tenant_rules_label_not_text",
            stack(
                tenants=[
                    {
                        "name": "prod",
                        "rules": rule_file(
                            rule={"alert": "Down", "expr": "up == 0", "labels": {"page": True}}
                        ),
                    }
                ]
            ),
            "tenants[0].rules (tenant 'prod'): inline: groups[0].rules[0].labels.page: expected "
            "text, got True: quote it",
        ),
        Broken(
            "tenant_rules_not_yaml",
            stack(tenants=[{"name": "prod", "rules": "groups:\n  - name: [a\n"}]),
            "tenants[0].rules (tenant 'prod'): inline:3: not valid YAML: expected ',' or ']', "
            "but got '<stream end>'",
        ),
        Broken(
            "tenant_alertmanager_route_to_no_receiver",
            stack(
                tenants=[
                    {
                        "name": "prod",
                        "alertmanagerConfig": {
                            "route": {"receiver": "pager"},
                            "receivers": [{"name": "slack"}],
                        },
                    }
                ]
            ),
            "tenants[0].alertmanagerConfig (tenant 'prod'): inline: route.receiver: 'pager' is "
            "not one of the receivers (slack)",
        ),
        Broken(
            "tenant_alertmanager_without_receivers",
            stack(tenants=[{"name": "prod", "alertmanagerConfig": {"route": {"receiver": "x"}}}]),
            "tenants[0].alertmanagerConfig (tenant 'prod'): inline: receivers: expected a "
            "non-empty list of receivers",
        ),
        Broken(
            # 21 tokens each: the fullest of the sixteen key shards overflows.
            "too_many_credentials",
            stack(grafana=False, tenants=..., tenantsFile="tenants.yaml"),
            "tenants: 21001 credentials and 0 trusted keys are too many: the gateway keys-1 "
            "ConfigMap would take 1068796 bytes, more than Kubernetes allows (1048576) with 1337 "
            "keys; about 1311 keys of this size fit in each of the 16 shards (20976 in all, as "
            "credentials spread): remove tenants or tokens, or split the tenants over two "
            "instances",
            tenants_file(many_tenants(1000, tokens=21)),
        ),
        Broken(
            # A Grafana per tenant is one more credential each.
            "too_many_credentials_with_grafanas",
            stack(tenants=..., tenantsFile="tenants.yaml"),
            "tenants: 20802 credentials and 0 trusted keys are too many: the gateway keys-1 "
            "ConfigMap would take 1054366 bytes, more than Kubernetes allows (1048576) with 1318 "
            "keys; about 1310 keys of this size fit in each of the 16 shards (20960 in all, as "
            "credentials spread): remove tenants or tokens, or split the tenants over two "
            "instances (1301 tenants have a Grafana, which takes a credential and a gateway "
            "backend: a tenant's `grafana: false` frees both)",
            tenants_file(many_tenants(1300, tokens=15)),
        ),
        Broken(
            # Each tenant's routes are lines of the one gateway configuration.
            "too_many_tenants",
            stack(grafana=False, tenants=[f"t{i}" for i in range(8000)]),
            "tenants: the gateway config ConfigMap would take 1093152 bytes, more than "
            "Kubernetes allows (1048576): remove tenants, or split them over two instances",
        ),
        Broken(
            # The CLI hands a Python program its configuration in one environment variable.
            "configuration_too_large",
            stack(tenants=many_tenants(2200, tokens=4)),
            "the stack's configuration is about 133 KiB as the CLI hands it to the program, in "
            "one environment variable that Linux caps at 128 KiB (`pulumi up` would stop with "
            '"argument list too long"): move the tenants into a YAML file and name it with '
            'tenantsFile (docs/operations.md, "Large instances")',
        ),
        Broken(
            "tenants_file_and_tenants",
            stack(tenantsFile="tenants.yaml"),
            "tenantsFile: is set, and so is tenants: list the tenants in one place (the file, "
            "once the stack's configuration would pass 128 KiB)",
            tenants_file(["prod"]),
        ),
        Broken(
            "tenants_file_missing",
            stack(tenants=..., tenantsFile="missing.yaml"),
            f"tenantsFile: cannot read {project}/missing.yaml: No such file or directory",
        ),
        Broken(
            "tenants_file_not_yaml",
            stack(tenants=..., tenantsFile="tenants.yaml"),
            "tenantsFile: tenants.yaml:2: not valid YAML: found character '\\t' that cannot "
            "start any token",
            (("tenants.yaml", "- prod\n\t- dev\n"),),
        ),
        Broken(
            "tenants_file_not_a_list",
            stack(tenants=..., tenantsFile="tenants.yaml"),
            "tenantsFile: tenants.yaml holds dict: expected a YAML list with at least one user "
            "tenant, as `tenants` takes (e.g. `- prod`)",
            (("tenants.yaml", "prod: {}\n"),),
        ),
        Broken(
            # An entry is refused as in the stack file, counted in the file.
            "tenants_file_bad_entry",
            stack(tenants=..., tenantsFile="tenants.yaml"),
            "tenants[1]: tenant 'prod' is listed twice",
            tenants_file(["prod", "prod"]),
        ),
    ]


ROWS = broken_stacks("{project}")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with this project's Pulumi.yaml and a file in the way."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "a-file").write_text("")
    return tmp_path


def refusal(project: Path, text: str, files: tuple[tuple[str, str], ...] = ()) -> str:
    (project / "stacks" / "Pulumi.broken.yaml").write_text(text)
    for name, file_text in files:
        (project / name).write_text(file_text)
    with pytest.raises(ConfigError) as raised:
        config_of_stack(cli_config(stack_config("broken", project), project), project)
    return str(raised.value)


def key_file_stacks(project: Path) -> list[Broken]:
    """Mistakes that only the token provider's check sees (a keypair file is read only
    when a token must be minted): refused by the preview, in the engine's words."""
    (project / "public.pem").write_text(RSA_PEM)
    token = "pulumi-python:dynamic/opstrace:TenantToken resource 'acme-tenant-ci-token-default'"
    fix = "a new token needs this keypair file; put it there, or remove signingKeyFile to mint "
    return [
        Broken(
            "signing_key_file_missing",
            stack(tenants=[{"name": "ci", "signingKeyFile": f"{project}/missing.pem"}]),
            f"{token}: property signing_key_file value {{{project}/missing.pem}} has a problem: "
            f"{project}/missing.pem: cannot read keypair file: No such file or directory: "
            f"{fix}with a new key",
        ),
        Broken(
            "signing_key_file_a_public_key",
            stack(tenants=[{"name": "ci", "signingKeyFile": f"{project}/public.pem"}]),
            f"{token}: property signing_key_file value {{{project}/public.pem}} has a problem: "
            f"{project}/public.pem: not an unencrypted PEM private key (expected a keypair file "
            f"as written by ta-create-keypair): {fix}with a new key",
        ),
    ]


def test_the_table_has_at_least_forty_distinct_mistakes() -> None:
    assert len(ROWS) >= 40
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[row.name for row in ROWS])
def test_broken_stack_is_refused_with_exactly_one_line(project: Path, index: int) -> None:
    row = broken_stacks(str(project))[index]
    message = refusal(project, row.text, row.files)
    assert message == row.message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["signing_key_file_missing", "signing_key_file_a_public_key"])
def test_key_file_mistake_ends_the_preview_with_exactly_one_line(project: Path, name: str) -> None:
    (row,) = [row for row in key_file_stacks(project) if row.name == name]
    (project / "stacks" / "Pulumi.broken.yaml").write_text(row.text)
    record = ProgramRun()
    with pytest.raises(ProgramFailed) as raised:
        run_program(stack_config("broken", project), tokens="unknown", record=record)
    assert str(raised.value) == row.message
    assert "\n" not in row.message
