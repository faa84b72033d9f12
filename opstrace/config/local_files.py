"""Paths the stack file names on the operator's machine: written, resolved and read.

Pure, no Pulumi. Relative paths are the project directory's, where the program and the
token provider run.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from opstrace.config.read import ConfigError


def path_setting(value: Any, field: str) -> str:
    """A local path as written, normalized: `keys`, `./keys` and `keys/` are one value."""
    if not isinstance(value, str):
        raise ConfigError(f"{field}: expected a path, got {value!r}")
    if not value:
        return ""
    if "\n" in value or "\x00" in value:
        raise ConfigError(f"{field}: {value!r} is not a usable path")
    return posixpath.normpath(value)


def read_text(field: str, path: Path) -> str:
    """The UTF-8 text of a file the setting `field` names."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{field}: cannot read {path}: {reason}") from None


def resolve(path: str, base_dir: Path) -> Path:
    """A configured path on this machine: `~` expanded, relative to `base_dir`."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else base_dir / expanded
