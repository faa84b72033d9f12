"""Shared fixtures: the program run under Pulumi's mocks (see `tools.offline`)."""

from __future__ import annotations

from typing import Any, Final

import pytest

from tools.offline import ProgramRun, run_program, stack_config

pytest_plugins = ["tests.provider_host", "tests.strict_tools"]

OPERATOR_DOMAIN: Final = "observability.acme.dev"
"""What an operator puts where the shipped dev stack has its refused placeholder."""


def dev_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack as an operator fills it in (their domain), `opstrace:` settings
    replaced by `overrides`; a value of None removes the setting."""
    config = stack_config("dev")
    config["opstrace:domain"] = OPERATOR_DOMAIN
    for key, value in overrides.items():
        config[f"opstrace:{key}"] = value
        if value is None:
            del config[f"opstrace:{key}"]
    return config


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    """The dev stack, with stand-in tokens (no key generated)."""
    return run_program(dev_config(), stack="dev")


@pytest.fixture(scope="session")
def minted_dev_run() -> ProgramRun:
    """The dev stack with every token minted by the real provider, in process."""
    return run_program(dev_config(), stack="dev", tokens="minted")
