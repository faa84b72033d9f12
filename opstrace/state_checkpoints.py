"""When a stack is too large for the engine's default state checkpoints.

Pure, no Pulumi. With a file or object-store backend (`make up`'s default: a file
backend), `pulumi up` writes the stack's whole state after every step it takes, so an
`up` costs the square of the stack's size: at 400 credentials (872 resources, 12 MB of
state) the first `up` takes 243 s, of which 72% is writing state; with the engine's
`PULUMI_SKIP_CHECKPOINTS=true` it takes 50 s, and 1,000 credentials take 106 s where the
default did not end within 900 s (docs/operations.md, "Large instances"). Pulumi Cloud
journals each step instead and needs no setting. The program cannot ask the CLI which
backend it writes to: it reads the environment the CLI hands its language host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SKIP_CHECKPOINTS: Final = "PULUMI_SKIP_CHECKPOINTS"
"""The engine's setting: keep state in memory during an `up`, write it once at its end.

pulumi v3.274 pkg/backend/snapshot.go: `defaultServiceLoop` calls `saveSnapshot` (the
whole deployment, serialized and checksummed) for every mutation; with this setting
`unsafeServiceLoop` saves once, when the manager closes, which diy/backend.go does after
the engine returns, whether the update succeeded, failed or was cancelled."""
BACKEND_URL: Final = "PULUMI_BACKEND_URL"
LARGE_STACK_CREDENTIALS: Final = 250
"""From here on the default checkpoints take most of an `up` (measured at 400: 80%)."""
JOURNALING_BACKENDS: Final = ("https://", "http://")
"""Pulumi Cloud (or a self-hosted service) writes each step's change, not the state."""


def checkpoint_advice(credentials: int, environ: Mapping[str, str]) -> str | None:
    """The advice to skip checkpoints, when a stack this large writes whole-state
    checkpoints to a file or object-store backend (one the environment names); else None."""
    backend = environ.get(BACKEND_URL, "")
    if (
        credentials < LARGE_STACK_CREDENTIALS
        or not backend
        or backend.startswith(JOURNALING_BACKENDS)
        or environ.get(SKIP_CHECKPOINTS, "").lower() in ("true", "1")
    ):
        return None
    return (
        f"{credentials} credentials: with the backend {backend.split('://')[0]}://, each "
        "`pulumi up` rewrites the whole state after every step, which takes most of its "
        f"time at this size; set {SKIP_CHECKPOINTS}=true to write it once, at the end "
        '(docs/operations.md, "Large instances": what that trades)'
    )
