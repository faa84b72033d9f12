"""Run the real Pulumi program under Pulumi's mocks: no CLI, no cloud, no credentials.

`run_program` executes `__main__.py` exactly as `pulumi up` would (inside a root
stack, config from a stack file), but against a recording mock monitor that answers
with realistic outputs. It returns every registered resource with its inputs (secrets
kept marked) and the stack outputs. The offline plan, the whole-program tests and the
benchmark all use it.
"""

from __future__ import annotations

import hashlib
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from components.rules.keys import key_id
from components.tokens import TokenProvider

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
PROJECT: Final = "opstrace"
TOKEN_TYPE: Final = "pulumi-python:dynamic/opstrace:TenantToken"
NAME_LOCK_TYPE: Final = "pulumi-python:dynamic/opstrace:NameLock"
PLACEHOLDER_TOKEN: Final = "<minted by the token provider at deploy time>"


@dataclass(frozen=True)
class Registration:
    """One resource as the program registered it."""

    type: str
    name: str
    parent: str
    """The parent's URN ("" for the stack's direct children)."""
    urn: str
    custom: bool
    inputs: dict[str, Any]
    """Inputs as sent to the engine; secrets are `rpc.wrap_rpc_secret` wrapped."""
    state: dict[str, Any]
    """What the mocks answered: inputs plus outputs such as generated names."""
    additional_secret_outputs: tuple[str, ...]


@dataclass
class ProgramRun:
    """What one run of the program registered."""

    resources: list[Registration] = field(default_factory=list)
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    """Stack outputs; secrets are `rpc.wrap_rpc_secret` wrapped."""

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}


class OfflineMocks(pulumi_mocks.Mocks):
    """Realistic outputs for the resource types the program uses.

    Tokens are minted by the real `TokenProvider` when `mint_tokens` is set (slow:
    one RSA key each). Otherwise each token gets a distinct, valid-looking RSA public
    key derived from its name, no private key exists at all, and the token itself is
    a placeholder: enough for a plan, and fast for large tenant counts.
    """

    def __init__(self, *, mint_tokens: bool = False) -> None:
        self.mint_tokens = mint_tokens
        self._provider = TokenProvider()

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == TOKEN_TYPE:
            return self._token(args.name, inputs)
        if args.typ == NAME_LOCK_TYPE:
            return str(inputs["name"]), inputs
        if args.typ == "aws:route53/zone:Zone":
            zone_id = "Z" + _digest(args.name)[:20].upper()
            servers = [f"ns-{i}.awsdns-{i}.org" for i in range(4)]
            return zone_id, {**inputs, "zoneId": zone_id, "nameServers": servers}
        if args.typ == "aws:route53/record:Record":
            return f"{inputs.get('name')}_{inputs.get('type')}", {
                **inputs,
                "fqdn": inputs.get("name"),
            }
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args.name, args.typ, inputs)
        return f"{args.name}-id", inputs

    def call(
        self, args: pulumi_mocks.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def _token(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        checked = self._provider.check({}, {k: v for k, v in inputs.items() if v is not None})
        if checked.failures:
            raise ValueError("; ".join(f"{f.property}: {f.reason}" for f in checked.failures))
        if self.mint_tokens:
            created = self._provider.create(checked.inputs)
            return created.id, dict(created.outs or {})
        pem = stand_in_public_key(name)
        return f"{name}-id", {
            **checked.inputs,
            "token": PLACEHOLDER_TOKEN,
            "key_id": key_id(pem),
            "public_key_pem": pem,
            "issued_at": 0,
            "expires_at": int(checked.inputs["lifetime_seconds"]),
        }

    def _kubernetes(
        self, name: str, typ: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        metadata = dict(inputs.get("metadata") or {})
        metadata.setdefault("name", f"{name}-{_digest(name)[:8]}")
        state = {**inputs, "metadata": metadata}
        if typ == "kubernetes:core/v1:Service":
            hostname = f"{metadata['name']}-{_digest(name)[:16]}.elb.us-east-1.amazonaws.com"
            state["status"] = {"loadBalancer": {"ingress": [{"hostname": hostname}]}}
        namespace = metadata.get("namespace")
        return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"]), state


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    parent="" if _is_stack(request.parent) else request.parent,
                    urn=response.urn,
                    custom=bool(request.custom),
                    inputs=_deserialize_keep_secrets(request.object),
                    state=_deserialize_keep_secrets(response.object),
                    additional_secret_outputs=tuple(request.additionalSecretOutputs),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        if _is_stack(request.urn):
            self.run.stack_outputs = _deserialize_keep_secrets(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def _is_stack(urn: str) -> bool:
    return bool(urn) and urn.split("::")[2].split("$")[-1] == "pulumi:pulumi:Stack"


def _deserialize_keep_secrets(struct: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The `config:` block of `stacks/Pulumi.<stack>.yaml`."""
    path = project_dir / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        available = sorted(p.name.split(".")[1] for p in path.parent.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path}; stacks here: {', '.join(available)}")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(document.get("config") or {})


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "offline",
    mint_tokens: bool = False,
    program: Path = PROJECT_DIR / "__main__.py",
) -> ProgramRun:
    """Run `program` with `config` (fully qualified keys, e.g. `opstrace:tenants`)."""
    return run_components(
        lambda: runpy.run_path(str(program), run_name="__main__"),
        config=config,
        stack=stack,
        mint_tokens=mint_tokens,
    )


def run_components(
    program: Callable[[], object],
    *,
    config: Mapping[str, Any] | None = None,
    stack: str = "offline",
    mint_tokens: bool = False,
) -> ProgramRun:
    """Run `program` in a fresh root stack; return once every registration settled."""
    run = ProgramRun()
    mocks = OfflineMocks(mint_tokens=mint_tokens)
    pulumi_mocks.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=_RecordingMonitor(mocks, run)
    )
    ROOT.set(None)  # set_mocks made a finished stack; run the program in a fresh one
    set_all_config({key: _config_value(value) for key, value in (config or {}).items()})

    def body() -> None:
        program()

    _sync_await(run_in_stack(body))
    return run


def _config_value(value: Any) -> str:
    """Config values travel as strings; structured ones as JSON, like the CLI sends them."""
    return value if isinstance(value, str) else json.dumps(value)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stand_in_public_key(seed: str) -> str:
    """A distinct 2048-bit RSA public key for `seed` that no private key belongs to."""
    stream = b"".join(hashlib.sha256(f"{seed}/{block}".encode()).digest() for block in range(8))
    modulus = int.from_bytes(stream, "big") | (1 << 2047) | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
