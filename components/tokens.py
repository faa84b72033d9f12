"""The dynamic provider that mints each tenant's data API token on the operator's machine.

One `TenantToken` is one credential: a fresh RSA keypair whose private key signs one
token and is then discarded (or written to a 0600 file when the operator asks), and
whose public key goes into the instance's trust store. Removing the resource removes
the key from the trust store, which revokes exactly that token.

State compatibility: the module path `components.tokens` and the class names
`TokenProvider` and `TenantToken` are recorded in every stack's state (the provider
is pickled by reference). Never rename or move them without an alias.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
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
from pulumi.output import Unknown

from opstrace import keys, names, scopes
from opstrace.data_token import TEN_YEARS_SECONDS, sign_token, token_claims
from opstrace.names import DEFAULT_TOKEN_NAME

_UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the engine marks a value not known during preview (pulumi.runtime.rpc.UNKNOWN).

The provider host turns it into a `pulumi.output.Unknown` before calling check and
diff; the raw string is still accepted for in-process callers."""

_REPLACING_INPUTS: Final = (
    "instance",
    "tenant",
    "token_name",
    "key_bits",
    "lifetime_seconds",
    "rotation",
    "signing_key_file",
    "scope",
)
"""Inputs baked into the token or its key: changing one needs a new token (a change of
scopes too: the old token, with its old scopes, is revoked with its key)."""

_PATH_INPUTS: Final = ("private_key_dir", "signing_key_file")

_OUTPUTS: Final = ("token", "key_id", "public_key_pem", "issued_at", "expires_at")


@dataclass(frozen=True)
class TenantTokenArgs:
    """What a tenant's token is made from; every field is part of the resource's inputs."""

    instance: str
    """The instance name; the token's `aud` is `opstrace-cluster-<instance>`."""
    tenant: str
    """The tenant name; the token's `sub` is `tenant-<tenant>`."""
    token_name: str = DEFAULT_TOKEN_NAME
    """Which of the tenant's credentials this is (`default`, `ci`, ...)."""
    key_bits: int = 2048
    """RSA key size: 2048, 3072 or 4096."""
    lifetime_seconds: int = TEN_YEARS_SECONDS
    """Seconds from issue to `exp` (Opstrace: 10 years)."""
    rotation: str = ""
    """Any new value replaces the token and its key: the operator's rotation marker."""
    private_key_dir: str = ""
    """If set, the private key is also written there (mode 0600) instead of discarded."""
    signing_key_file: str = ""
    """If set, sign with this existing keypair file instead of generating a key."""
    scope: str = ""
    """The token's `scope` claim (`scopes.claim_value`); empty: no claim, every scope.
    Stacks made before scopes existed have no such input: it counts as empty."""


_DEFAULTS: Final = asdict(TenantTokenArgs(instance="", tenant=""))
"""Every input with its default; check fills in what a caller left out."""


def local_path(path: str) -> Path:
    """A path on the operator's machine: `~` expanded, relative to the project directory.

    The provider host runs in the project directory, as the program does.
    """
    return Path(path).expanduser()


def export_file_name(inputs: Mapping[str, Any], kid: str) -> str:
    """The exported keypair's file name: unique per credential and key, never reused."""
    return f"{inputs['instance']}-{inputs['tenant']}-{inputs['token_name']}-{kid[:16]}.pem"


class TokenProvider(ResourceProvider):
    """Mints `TenantToken`s. Holds no state and no configuration: it is pickled into state."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**_DEFAULTS, **{k: v for k, v in news.items() if v is not None}}
        problems = _input_problems(inputs)
        # Key files matter only when a token is minted: another operator's machine
        # without the signing key file can still preview and update everything else.
        if not problems and (not olds or _replacing_changes(olds, inputs)):
            problems = _key_file_problems(inputs)
        return CheckResult(inputs, [CheckFailure(p, r) for p, r in problems])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changes(olds, news)
        replaces = _replacing_changes(olds, news)
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _mint(props)
        return CreateResult(f"{props['tenant']}.{props['token_name']}.{outs['key_id']}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing outside the state describes a token: what was minted is what exists.
        return ReadResult(id_, dict(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only inputs that do not touch the token reach here (see diff): keep the token.
        return UpdateResult({**news, **{k: olds[k] for k in _OUTPUTS}})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # The trust store drops the public key; with it the token is revoked. An exported
        # keypair file is the operator's, and is left where it is.
        return None


def _mint(inputs: dict[str, Any]) -> dict[str, Any]:
    signing_file = inputs["signing_key_file"]
    if signing_file:
        private_key = keys.load_private_key_file(local_path(signing_file))
    else:
        private_key = keys.generate_private_key(int(inputs["key_bits"]))
    public_pem = keys.public_key_pem(private_key)
    kid = keys.key_id(public_pem)
    if inputs["private_key_dir"] and not signing_file:
        path = local_path(inputs["private_key_dir"]) / export_file_name(inputs, kid)
        keys.write_keypair_file(path, private_key)
    issued_at = int(time.time())
    claims = token_claims(
        inputs["instance"],
        inputs["tenant"],
        issued_at,
        int(inputs["lifetime_seconds"]),
        inputs.get("scope", ""),
    )
    # The private key goes out of scope here: nothing below may carry it.
    outs = {k: v for k, v in inputs.items() if k != "__provider"}
    outs.update(
        token=sign_token(private_key, kid, claims),
        key_id=kid,
        public_key_pem=public_pem,
        issued_at=issued_at,
        expires_at=claims["exp"],
    )
    return outs


def _changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """Inputs whose value changed; `keys`, `./keys` and `keys/` are one path, and an input
    the state does not have yet (added in a later release) has its default there."""

    def comparable(field: str, inputs: Mapping[str, Any]) -> Any:
        value = inputs.get(field, _DEFAULTS[field])
        if field in _PATH_INPUTS and isinstance(value, str) and value:
            return posixpath.normpath(value)
        return value

    return [k for k in _DEFAULTS if comparable(k, olds) != comparable(k, news)]


def _replacing_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """Changed inputs that need a new token (and so a new key)."""
    changed = _changes(olds, news)
    replaces = [k for k in changed if k in _REPLACING_INPUTS]
    # The key is gone after create: exporting it to a new place needs a new key.
    if "private_key_dir" in changed and news.get("private_key_dir"):
        replaces.append("private_key_dir")
    return replaces


def _key_file_problems(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Why the key files a mint needs are not usable, with the fix; unknowns pass."""
    problems: list[tuple[str, str]] = []
    signing_file, key_dir = inputs.get("signing_key_file"), inputs.get("private_key_dir")
    if isinstance(signing_file, str) and signing_file:
        try:
            keys.load_private_key_file(local_path(signing_file))
        except keys.KeyMaterialError as error:
            problems.append(
                (
                    "signing_key_file",
                    f"{error}: a new token needs this keypair file; put it there, or remove "
                    "signingKeyFile to mint with a new key",
                )
            )
    if (
        isinstance(key_dir, str)
        and key_dir
        and (problem := keys.export_directory_problem(key_dir, local_path(key_dir)))
    ):
        problems.append(("private_key_dir", f"exportKeysTo: {problem}"))
    return problems


def _input_problems(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for each bad input; unknown values (preview) pass."""
    problems: list[tuple[str, str]] = []

    def known(field: str) -> bool:
        value = inputs.get(field)
        return not isinstance(value, Unknown) and value != _UNKNOWN

    for field in (
        "instance",
        "tenant",
        "token_name",
        "rotation",
        "private_key_dir",
        "signing_key_file",
        "scope",
    ):
        if known(field) and not isinstance(inputs.get(field), str):
            problems.append((field, f"{field} must be a string, got {inputs.get(field)!r}"))
    for field in ("key_bits", "lifetime_seconds"):
        value = inputs.get(field)
        if known(field) and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            # is_integer, not int(): inf and nan must be a failure, not a crash.
            or (isinstance(value, float) and not value.is_integer())
        ):
            problems.append((field, f"{field} must be an integer, got {value!r}"))
    if problems:
        return problems
    if known("instance") and (problem := names.instance_name_problem(inputs["instance"])):
        problems.append(("instance", problem))
    if known("tenant") and (problem := names.tenant_name_problem(inputs["tenant"])):
        problems.append(("tenant", problem))
    if known("token_name") and (problem := names.token_name_problem(inputs["token_name"])):
        problems.append(("token_name", problem))
    if known("scope") and inputs["scope"] and not scopes.claim_is_canonical(inputs["scope"]):
        problems.append(("scope", f"scope: {inputs['scope']!r} is not {scopes.CLAIM_RULE}"))
    # int(): numbers arrive from the engine as floats (1024.0).
    if known("key_bits") and (problem := keys.key_bits_problem(int(inputs["key_bits"]))):
        problems.append(("key_bits", f"key_bits: {problem}"))
    if known("lifetime_seconds") and int(inputs["lifetime_seconds"]) <= 0:
        problems.append(("lifetime_seconds", "lifetime_seconds must be positive"))
    if inputs.get("signing_key_file") and inputs.get("private_key_dir"):
        problems.append(("private_key_dir", keys.EXPORT_EXCLUDES_SIGNING_FILE))
    return problems


_PROVIDER: Final = TokenProvider()


class TenantToken(Resource, module="opstrace", name="TenantToken"):
    """One data API credential of one tenant; `token` is always a Pulumi secret."""

    token: pulumi.Output[str]
    key_id: pulumi.Output[str]
    public_key_pem: pulumi.Output[str]
    expires_at: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        args: TenantTokenArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["token"])
        props: dict[str, Any] = {**asdict(args), **{k: None for k in _OUTPUTS}}
        super().__init__(_PROVIDER, name, props, pulumi.ResourceOptions.merge(opts, secret))
