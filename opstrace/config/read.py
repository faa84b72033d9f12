"""Reading one setting's value, as YAML or the CLI hands it over, or refusing it.

Pure. The CLI hands every value to the program as text (`"4096"`, `"true"`), YAML as
typed values: each reader takes both. Every refusal is a `ConfigError` naming the
setting and showing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opstrace.errors import OpstraceError


class ConfigError(OpstraceError):
    """Raised when the stack configuration breaks a rule; the message names the field."""


def string(values: Mapping[str, Any], key: str) -> str:
    value = values[key]
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def choice(values: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = string(values, key)
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not allowed: use one of {', '.join(allowed)}")
    return value


def integer(values: Mapping[str, Any], key: str) -> int:
    value = values[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return value


def boolean(values: Mapping[str, Any], key: str) -> bool:
    value = values[key]
    if isinstance(value, bool):
        return value
    if str(value) in ("true", "false"):
        return str(value) == "true"
    raise ConfigError(f"{key}: expected true or false, got {value!r}")
