"""Shared fixtures: the program run under Pulumi's mocks (see `tools.offline`)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.offline import ProgramRun, run_program, stack_config

pytest_plugins = ["tests.provider_host", "tests.strict_tools"]


def dev_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack's config with `opstrace:` settings replaced."""
    config = stack_config("dev")
    config.update({f"opstrace:{key}": value for key, value in overrides.items()})
    return config


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    """The dev stack, with placeholder tokens (no key generated)."""
    return run_program(stack_config("dev"), stack="dev")


@pytest.fixture(scope="session")
def minted_dev_run() -> ProgramRun:
    """The dev stack with every token minted by the real provider, in process."""
    return run_program(stack_config("dev"), stack="dev", mint_tokens=True)
