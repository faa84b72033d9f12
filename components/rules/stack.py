"""A stack's configuration, read and checked whole: what the program starts from.

Pure but for the one read of the CLI's config (`load_config`). Parsing (`config`) checks
every setting; then what only the rendered documents show: that the keys of every
credential fit the ConfigMaps that hold them (`config_maps.capacity_problem`, with
stand-in keys of the configured sizes). So a stack that fails either way fails before
anything is registered, with one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.rules import config_maps, keys
from components.rules.config import parse_config, stack_settings
from components.rules.schema import InstanceConfig
from components.rules.settings import ConfigError


def load_config(base_dir: Path) -> InstanceConfig:
    """Read and check the current stack's settings (the program's only config read)."""
    from pulumi.runtime import config as runtime_config

    return config_of_stack(
        {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}, base_dir
    )


def config_of_stack(config: Mapping[str, Any], base_dir: Path) -> InstanceConfig:
    """The instance configuration of a stack's whole config (as the CLI hands it over)."""
    region = config.get("aws:region", "")
    parsed = parse_config(
        stack_settings(config),
        base_dir=base_dir,
        aws_region=region if isinstance(region, str) else "",
    )
    if problem := capacity_problem(parsed):
        raise ConfigError(f"tenants: {problem}")
    return parsed


def capacity_problem(config: InstanceConfig) -> str | None:
    """Why the instance's keys do not fit its ConfigMaps, or None."""
    # A signing key file's size is known only once it is read: count the largest.
    credentials = [
        (tenant.name, max(keys.ALLOWED_KEY_BITS) if token.signing_key_file else config.key_bits)
        for tenant in config.tenants
        for token in tenant.tokens
    ]
    trusted = [(key.pem, key.tenant) for key in config.trusted_keys]
    return config_maps.capacity_problem(credentials, trusted, config.gateway)
