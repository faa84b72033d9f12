"""A lock that makes the instance name immutable for the life of a stack.

Opstrace instance names cannot change: the name is in every DNS name and in every
token's audience. Without this lock, editing `instanceName` would make Pulumi plan to
replace the whole instance. The lock's `check` sees the old and the new name and fails
the preview with a clear message instead.

State compatibility: `components.name_lock.NameLockProvider` and the logical name
`instance-name-lock` are recorded in state; keep both stable.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

LOGICAL_NAME: Final = "instance-name-lock"
"""Deliberately not derived from the instance name, so that a renamed instance still
finds the lock that remembers the old name."""


def rename_problem(old: Any, new: Any) -> str | None:
    """Why changing the locked name from `old` to `new` is refused, or None."""
    if old is None or old == new:
        return None
    return (
        f"instanceName: this stack's instance is {old!r}; it cannot become {new!r}. "
        "An instance name is permanent (it is part of every endpoint and every token). "
        "Set instanceName back, or create the new instance in a new stack."
    )


class NameLockProvider(ResourceProvider):
    """Accepts the first name and refuses any other later. Stateless and config-free."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        problem = rename_problem(olds.get("name"), news.get("name"))
        return CheckResult(news, [CheckFailure("name", problem)] if problem else [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("name") != news.get("name")
        return DiffResult(changes=changed, replaces=["name"] if changed else [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(props["name"]), {"name": props["name"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, dict(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({"name": news["name"]})


class NameLock(Resource, module="opstrace", name="NameLock"):
    """Remembers the instance name in state; see the module docstring."""

    name: pulumi.Output[str]

    def __init__(self, instance_name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NameLockProvider(), LOGICAL_NAME, {"name": instance_name}, opts)
