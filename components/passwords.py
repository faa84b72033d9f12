"""The dynamic provider that generates a password on the operator's machine and keeps it
in the stack's state, as a secret: a tenant's Grafana admin password.

Kept in state (not derived or regenerated per run) so that every `up` gives Grafana the
same password and `pulumi stack output --show-secrets` shows the one in use. It never
changes: Grafana takes its admin's password only when it first starts on an empty disk,
so a new one here would no longer be Grafana's.

State compatibility: the module path `components.passwords` and the class names
`PasswordProvider` and `GeneratedPassword` are recorded in every stack's state (the
provider is pickled by reference). Never rename or move them without an alias.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Final

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

PASSWORD_BYTES: Final = 24
"""Random bytes per password: 192 bits, 32 URL-safe characters."""


class PasswordProvider(ResourceProvider):
    """Creates a random password, then keeps it: no input can change it."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        return CreateResult(uuid.uuid4().hex, {**props, "password": password})

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing outside the state holds it: a refresh keeps what is there.
        return ReadResult(id_, props)


class GeneratedPassword(Resource, module="opstrace", name="GeneratedPassword"):
    """A random password, a secret in the stack's state."""

    password: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["password"])
        super().__init__(
            PasswordProvider(), name, {"password": None}, pulumi.ResourceOptions.merge(opts, secret)
        )
