"""A stack's configuration, read and checked whole: what the program starts from.

Pure but for the one read of the CLI's config (`load_config`). First that the CLI can
hand the configuration to the program at all (`configuration_size_problem`); parsing
(`parse`) checks every setting; then what only the rendered documents show: that the
keys of every credential fit the ConfigMaps that hold them (`config_maps.capacity_problem`,
with stand-in keys of the configured sizes). So a stack that fails any way fails before
anything is registered, with one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from opstrace import config_maps, keys, names
from opstrace.config import grafana_config, tenant_config
from opstrace.config.parse import parse_config, stack_settings
from opstrace.config.read import ConfigError
from opstrace.config.schema import InstanceConfig

CONFIGURATION_VARIABLE: Final = "PULUMI_CONFIG"
ENVIRONMENT_VARIABLE_LIMIT: Final = 32 * 4096
"""Linux's MAX_ARG_STRLEN (32 pages): the longest `name=value` one variable may be."""
OFFLINE_PLAN: Final = "OPSTRACE_OFFLINE_PLAN"
"""The global by which the offline plan (`tools.offline.run_program(plan=True)`) tells the
program, run with `runpy`, that nothing will be created: a placeholder domain is then not
refused (the plan warns of it instead). The CLI's language host never sets it."""
PLACEHOLDER_DOMAIN_FIX: Final = (
    "set your own domain with `pulumi config set domain observability.yourcompany.com`, "
    "or set dns to none"
)
"""The fix a preview or an update prints: there the CLI is at hand."""


def load_config(base_dir: Path, *, plan: bool = False) -> InstanceConfig:
    """Read and check the current stack's settings (the program's only config read)."""
    from pulumi.runtime import config as runtime_config

    return config_of_stack(
        {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}, base_dir, plan=plan
    )


def config_of_stack(
    config: Mapping[str, Any], base_dir: Path, *, plan: bool = False
) -> InstanceConfig:
    """The instance configuration of a stack's whole config (as the CLI hands it over).

    A placeholder domain or a missing single sign-on secret is refused unless the caller
    only plans (`plan`): then the caller says so itself (`placeholder_domain_problem`,
    `client_secret_problem`), with the fix that works where it runs."""
    if problem := configuration_size_problem(config):
        raise ConfigError(problem)
    region = config.get("aws:region", "")
    profile = config.get("aws:profile", "")
    parsed = parse_config(
        stack_settings(config),
        base_dir=base_dir,
        aws_region=region if isinstance(region, str) else "",
        aws_profile=profile if isinstance(profile, str) else "",
    )
    if problem := capacity_problem(parsed):
        raise ConfigError(f"tenants: {problem}")
    if not plan and (problem := placeholder_domain_problem(parsed)):
        raise ConfigError(f"{problem}: {PLACEHOLDER_DOMAIN_FIX}")
    if not plan and (problem := client_secret_problem(parsed)):
        raise ConfigError(problem)
    return parsed


def configuration_size_problem(config: Mapping[str, Any]) -> str | None:
    """Why the CLI cannot start the program with this configuration, or None.

    The CLI hands a Python program the stack's whole configuration as JSON in one
    environment variable (`PULUMI_CONFIG`; pulumi/pulumi#8680), and Linux refuses to
    start a process with any one variable longer than `ENVIRONMENT_VARIABLE_LIMIT`: the
    update stops with "argument list too long" before the program runs, so only the
    tools that read the stack file themselves (the offline plan, `make up`'s checks)
    can say why."""
    # As Go's json.Marshal writes it (the language host's): UTF-8, and <, > and & escaped.
    text = json.dumps(dict(config), separators=(",", ":"), ensure_ascii=False)
    for character in "<>&":
        text = text.replace(character, f"\\u{ord(character):04x}")
    size = len(f"{CONFIGURATION_VARIABLE}={text}".encode())
    if size < ENVIRONMENT_VARIABLE_LIMIT:
        return None
    return (
        f"the stack's configuration is about {size // 1024} KiB as the CLI hands it to the "
        f"program, in one environment variable that Linux caps at "
        f'{ENVIRONMENT_VARIABLE_LIMIT // 1024} KiB (`pulumi up` would stop with "argument '
        f'list too long"): move the tenants into a YAML file and name it with '
        f'{tenant_config.FILE_KEY} (docs/operations.md, "Large instances")'
    )


def client_secret_problem(config: InstanceConfig) -> str | None:
    """Why the Grafanas' single sign-on cannot work yet (its client secret, a stack secret,
    is not set), or None. Valid to plan, so that an example can show single sign-on without
    a secret of its own; refused where something would be created."""
    if config.grafana_sso is None or config.grafana_client_secret:
        return None
    return (
        f"{grafana_config.CLIENT_SECRET_KEY}: required with {grafana_config.SSO_KEY}; set it "
        f"as a secret: `pulumi config set --secret opstrace:{grafana_config.CLIENT_SECRET_KEY} "
        "<the client secret>`"
    )


def placeholder_domain_problem(config: InstanceConfig) -> str | None:
    """`domain: <why>` when the instance zone would be under a reserved placeholder domain
    (example.com, .test...) that Route53 cannot host, else None. Valid to plan; refused
    where something would be created."""
    if config.dns != "route53":
        return None
    problem = names.reserved_domain_problem(config.domain)
    return f"domain: {problem}" if problem else None


def capacity_problem(config: InstanceConfig) -> str | None:
    """Why the instance's keys do not fit its ConfigMaps, or None."""
    # A signing key file's size is known only once it is read: count the largest.
    credentials = [
        (
            config.key_entry(tenant, token),
            max(keys.ALLOWED_KEY_BITS) if token.signing_key_file else config.key_bits,
        )
        for tenant in config.tenants
        for token in tenant.tokens
    ]
    trusted = config.trusted_key_entries()
    problem = config_maps.capacity_problem(credentials, trusted, config.gateway)
    grafanas = sum(tenant.grafana.enabled for tenant in config.tenants)
    if problem and grafanas:
        return (
            f"{problem} ({grafanas} tenants have a Grafana, which takes a credential and a "
            "gateway backend: a tenant's `grafana: false` frees both)"
        )
    return problem
