"""Run the real Pulumi program under Pulumi's mocks: no CLI, no cloud, no credentials.

`run_program` executes `__main__.py` exactly as `pulumi up` would (inside a root
stack, config from a stack file handed over as the CLI hands it), but against a
recording mock monitor that answers with realistic outputs. It returns every registered
resource with its inputs (secrets kept marked) and the stack outputs. The offline
plan, the whole-program tests and the benchmark all use it.

Tokens come in three kinds (`Tokens`): `unknown` is what a preview sees (the plan: a
value only `pulumi up` can know is unknown, never invented); `stand-in` gives every
token a deterministic public key no private key belongs to (fast, for tests of
everything derived from keys); `minted` runs the real token provider in process.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import runpy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT, SETTINGS
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from components import bail
from components.tokens import TokenProvider
from opstrace.config.stack import OFFLINE_PLAN
from opstrace.errors import OpstraceError
from opstrace.keys import key_id, stand_in_public_key
from tools.stack_files import PROJECT, PROJECT_DIR, cli_config

TOKEN_TYPE: Final = "pulumi-python:dynamic/opstrace:TenantToken"
NAME_LOCK_TYPE: Final = "pulumi-python:dynamic/opstrace:NameLock"
PASSWORD_TYPE: Final = "pulumi-python:dynamic/opstrace:GeneratedPassword"
STAND_IN_PASSWORD: Final = "stand-in-password"
"""What a generated password is under the mocks, unless a preview (unknown)."""
PLACEHOLDER_TOKEN: Final = "<minted by the token provider at deploy time>"
TOKEN_OUTPUTS: Final = ("token", "key_id", "public_key_pem")

Tokens = Literal["unknown", "stand-in", "minted"]
UNKNOWN: Final = rpc.UNKNOWN
"""How a value only the engine can know travels (as in a preview)."""


@dataclass(frozen=True)
class Registration:
    """One resource as the program registered it."""

    type: str
    name: str
    parent: str
    """The parent's URN ("" for the stack's direct children)."""
    urn: str
    id: str
    """What the provider answered as ID ("" for components)."""
    custom: bool
    inputs: dict[str, Any]
    """Inputs as sent to the engine; secrets are `rpc.wrap_rpc_secret` wrapped."""
    state: dict[str, Any]
    """What the mocks answered: inputs plus outputs such as generated names."""
    additional_secret_outputs: tuple[str, ...]
    provider: str
    """The explicit provider reference (`urn::id`), "" for a default provider."""
    dependencies: tuple[str, ...]
    """URNs it depends on: created after them, deleted before them (its explicit
    `depends_on` and, as the SDK sends them, the resources its inputs came from)."""
    property_dependencies: dict[str, tuple[str, ...]]
    """Input name -> URNs of the resources its value came from; the engine orders by
    these too."""
    retain_on_delete: bool
    import_id: str = ""
    """The `import` option: the ID of an existing resource the engine imports."""


@dataclass
class ProgramRun:
    """What one run of the program registered."""

    resources: list[Registration] = field(default_factory=list)
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    """Stack outputs; secrets are `rpc.wrap_rpc_secret` wrapped."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) of every message the program logged, as the CLI would show them."""
    check_failures: list[str] = field(default_factory=list)
    """What the engine would report of each resource whose provider's check failed."""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(token, arguments) of every data source the program read, in order."""

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}


ACCOUNT: Final = "123456789012"
"""A placeholder AWS account (the one AWS's own documentation uses in its examples)."""
DEFAULT_REGION: Final = "eu-central-1"
"""The region the mocks answer for when the stack sets no `aws:region`."""


def oidc_issuer(region: str) -> str:
    """The OIDC issuer URL an EKS cluster in `region` would have."""
    return f"https://oidc.eks.{region}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


Outputs = Callable[[str, dict[str, Any], str], dict[str, Any]]

AWS_OUTPUTS: Final[dict[str, Outputs]] = {
    "aws:eks/cluster:Cluster": lambda name, inputs, region: {
        "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{inputs.get('name', name)}",
        "endpoint": f"https://{_digest(name)[:32].upper()}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
        "identities": [{"oidcs": [{"issuer": oidc_issuer(region)}]}],
    },
    "aws:iam/role:Role": lambda name, inputs, region: {
        "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "name": name,
    },
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda name, inputs, region: {
        "arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc_issuer(region).removeprefix('https://')}",
    },
    "aws:ec2/launchTemplate:LaunchTemplate": lambda name, inputs, region: {
        "arn": f"arn:aws:ec2:{region}:{ACCOUNT}:launch-template/lt-{_digest(name)[:17]}",
        "latestVersion": 1,
    },
    "aws:kms/key:Key": lambda name, inputs, region: {
        "arn": f"arn:aws:kms:{region}:{ACCOUNT}:key/{_uuid(name)}",
        "keyId": _uuid(name),
    },
    "aws:ec2/eip:Eip": lambda name, inputs, region: {
        # An address from TEST-NET-2 (RFC 5737), one per name.
        "publicIp": f"198.51.100.{int(_digest(name)[:4], 16) % 254 + 1}",
    },
    "aws:s3/bucket:Bucket": lambda name, inputs, region: {
        "bucket": f"{inputs.get('bucketPrefix', name)}{_digest(name)[:12]}",
        "arn": f"arn:aws:s3:::{inputs.get('bucketPrefix', name)}{_digest(name)[:12]}",
    },
}
"""Outputs a real AWS resource in a region would have (all unknown in a preview)."""

Call = Callable[[dict[str, Any], str], dict[str, Any]]


def zone_id(region: str, letter: str) -> str:
    """The zone ID the mocks' account has behind `<region><letter>`: the letters in
    order, so that its us-east-1c is use1-az3, a zone EKS refuses."""
    country, *directions, digit = region.split("-")
    short = country + "".join(_DIRECTIONS.get(d, d[:1]) for d in directions) + digit
    return f"{short}-az{'abcdef'.index(letter) + 1}"


_DIRECTIONS: Final = {"southeast": "se", "northeast": "ne", "southwest": "sw", "northwest": "nw"}
"""How zone IDs abbreviate a region's directions (use1, euc1, apse2); one letter otherwise."""


def _availability_zones(args: dict[str, Any], region: str) -> dict[str, Any]:
    """EC2's answer: the region's zones (four here, six in us-east-1), less the excluded
    zone IDs (the filters are the program's own and keep every zone of this account)."""
    letters = "abcdef" if region == "us-east-1" else "abcd"
    excluded = set(args.get("excludeZoneIds") or ())
    zones = [(f"{region}{x}", zone_id(region, x)) for x in letters]
    kept = [(name, zid) for name, zid in zones if zid not in excluded]
    return {"names": [n for n, _ in kept], "zoneIds": [z for _, z in kept]}


HOSTED_ZONES: Final[dict[str, str]] = {}
"""The public Route53 zones of the mocks' account, name -> zone ID: none (a test adds one)."""


def _hosted_zone(args: dict[str, Any], region: str) -> dict[str, Any]:
    """Route53's answer for a public zone by name; LookupError (the data source's failure)
    when the account has none."""
    name = str(args.get("name", "")).rstrip(".")
    if args.get("privateZone") or name not in HOSTED_ZONES:
        raise LookupError("no matching Route 53 Hosted Zone found")
    return {"name": name, "zoneId": HOSTED_ZONES[name], "privateZone": False}


AWS_CALLS: Final[dict[str, Call]] = {
    "aws:route53/getZone:getZone": _hosted_zone,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:cloudwatch/getLogGroups:getLogGroups": lambda args, region: {"logGroupNames": []},
    "aws:eks/getAddonVersion:getAddonVersion": lambda args, region: {
        "addonName": args.get("addonName"),
        "kubernetesVersion": args.get("kubernetesVersion"),
        "version": f"<EKS default for {args.get('kubernetesVersion')}>",
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args, region: {"accountId": ACCOUNT},
    "aws:eks/getCluster:getCluster": lambda args, region: {
        "name": args.get("name"),
        "identities": [{"oidcs": [{"issuer": oidc_issuer(region)}]}],
    },
    "aws:lb/getLoadBalancer:getLoadBalancer": lambda args, region: {
        "name": args.get("name"),
        "zoneId": "Z215JYRZR1TBD5",
    },
}
"""Answers of the data sources the program reads, for a region."""


class ProgramFailed(OpstraceError):
    """Raised when the program ended as it does under the CLI after showing an error (a
    broken rule, or a provider's check failure): the message is what the CLI shows."""


class OfflineMocks(pulumi_mocks.Mocks):
    """Realistic outputs for the resource types the program uses (see `Tokens`)."""

    def __init__(
        self,
        tokens: Tokens = "stand-in",
        run: ProgramRun | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.run = ProgramRun() if run is None else run
        self.tokens = tokens
        self.region = region
        """The stack's `aws:region`: every zone, ARN and endpoint the mocks answer is in it."""
        self._provider = TokenProvider()

    @property
    def preview(self) -> bool:
        """Whether values only the engine can know are unknown, as in `pulumi preview`."""
        return self.tokens == "unknown"

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == TOKEN_TYPE:
            return self._token(args.name, inputs)
        if args.typ == NAME_LOCK_TYPE:
            return str(inputs["name"]), inputs
        if args.typ == PASSWORD_TYPE:
            password = UNKNOWN if self.preview else STAND_IN_PASSWORD
            return f"{args.name}-id", {**inputs, "password": password}
        if args.typ == "aws:route53/zone:Zone":
            zone_id = "Z" + _digest(args.name)[:20].upper()
            servers = [f"ns-{i}.awsdns-{i}.org" for i in range(4)]
            if self.preview:
                zone_id, servers = UNKNOWN, UNKNOWN  # type: ignore[assignment]
            return zone_id, {**inputs, "zoneId": zone_id, "nameServers": servers}
        if args.typ == "aws:route53/record:Record":
            return f"{inputs.get('name')}_{inputs.get('type')}", {
                **inputs,
                "fqdn": inputs.get("name"),
            }
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args.name, args.typ, inputs)
        if args.typ in AWS_OUTPUTS:
            outputs = AWS_OUTPUTS[args.typ](args.name, inputs, self.region)
            if self.preview:
                outputs = dict.fromkeys(outputs, UNKNOWN)
            return f"{args.name}-id", {**inputs, **outputs}
        return f"{args.name}-id", inputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.run.calls.append((args.token, dict(args.args)))
        answer = AWS_CALLS.get(args.token)
        try:
            return (answer(dict(args.args), self.region) if answer else {}), []
        except LookupError as failure:
            return {}, [("", str(failure))]

    def _token(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        checked = self._provider.check({}, {k: v for k, v in inputs.items() if v is not None})
        if checked.failures:
            # As the engine: each failure reported in its words, the update then ends
            # (run_components); what depends on the token sees unknowns meanwhile.
            self.run.check_failures.extend(
                f"{TOKEN_TYPE} resource '{name}': property {f.property} value "
                f"{{{inputs.get(f.property)}}} has a problem: {f.reason}"
                for f in checked.failures
            )
            outputs = dict.fromkeys((*TOKEN_OUTPUTS, "issued_at", "expires_at"), UNKNOWN)
            return f"{name}-id", {**checked.inputs, **outputs}
        if self.tokens == "minted":
            created = self._provider.create(checked.inputs)
            return created.id, dict(created.outs or {})
        if self.tokens == "unknown":
            outputs = dict.fromkeys((*TOKEN_OUTPUTS, "issued_at", "expires_at"), UNKNOWN)
            return f"{name}-id", {**checked.inputs, **outputs}
        # A new key whenever an input baked into the token changes, as minting would.
        baked = {k: v for k, v in checked.inputs.items() if k != "private_key_dir"}
        pem = stand_in_public_key(f"{name}/{json.dumps(baked, sort_keys=True, default=str)}")
        issued_at = int(time.time())
        return f"{name}-id", {
            **checked.inputs,
            "token": PLACEHOLDER_TOKEN,
            "key_id": key_id(pem),
            "public_key_pem": pem,
            "issued_at": issued_at,
            "expires_at": issued_at + int(checked.inputs["lifetime_seconds"]),
        }

    def _kubernetes(
        self, name: str, typ: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        given = inputs.get("metadata")
        metadata = dict(given) if isinstance(given, dict) else {}
        metadata.setdefault("name", autoname(name))
        state = {**inputs, "metadata": metadata}
        if typ == "kubernetes:core/v1:Service":
            hostname = f"{metadata['name']}-{_digest(name)[:16]}.elb.{self.region}.amazonaws.com"
            state["status"] = {"loadBalancer": {"ingress": [{"hostname": hostname}]}}
            if self.preview:
                state["status"] = state["spec"] = UNKNOWN
            else:
                state["spec"] = {**inputs.get("spec", {}), "clusterIP": cluster_ip(name)}
        namespace = metadata.get("namespace")
        return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"]), state


_LOOPS: Final[set[asyncio.AbstractEventLoop]] = set()
_LOOPS_LOCK: Final = threading.Lock()


def _keep_loop() -> None:
    """Remember this thread's event loop, to close it at exit. Pulumi's mock monitor makes
    one in each worker thread and never closes it; left to the collector at exit, such a
    loop can outlive its own self-pipe and print an `Exception ignored` traceback on stderr
    (about one plan in six under Python 3.11)."""
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:  # the call needed none (a component's registration)
        return
    with _LOOPS_LOCK:
        _LOOPS.add(loop)


@atexit.register
def _close_loops() -> None:
    with _LOOPS_LOCK:
        for loop in _LOOPS:
            if not loop.is_running() and not loop.is_closed():
                loop.close()


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, keeping what the program registers and says in `run`."""

    def __init__(self, mocks: pulumi_mocks.Mocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self.run = run

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().Invoke(request)  # type: ignore[no-untyped-call]
        _keep_loop()
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        _keep_loop()
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        _keep_loop()
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    parent="" if _is_stack(request.parent) else request.parent,
                    urn=response.urn,
                    id=response.id,
                    custom=bool(request.custom),
                    inputs=_deserialize_keep_secrets(request.object),
                    state=_deserialize_keep_secrets(response.object),
                    additional_secret_outputs=tuple(request.additionalSecretOutputs),
                    provider=request.provider,
                    dependencies=tuple(request.dependencies),
                    property_dependencies={
                        key: tuple(value.urns)
                        for key, value in request.propertyDependencies.items()
                    },
                    retain_on_delete=bool(request.retainOnDelete),
                    import_id=request.importId,
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


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "offline",
    tokens: Tokens = "stand-in",
    program: Path = PROJECT_DIR / "__main__.py",
    record: ProgramRun | None = None,
    plan: bool = False,
) -> ProgramRun:
    """Run `program` with `config` (fully qualified keys, e.g. `opstrace:tenants`).

    Registrations go to `record` when given, so that a test can see what a failing
    run registered before it failed. `plan`: told that it runs for the offline plan, the
    program accepts what only creating would refuse (`rules.stack.OFFLINE_PLAN`)."""
    return run_components(
        lambda: runpy.run_path(
            str(program), init_globals={OFFLINE_PLAN: plan}, run_name="__main__"
        ),
        config=config,
        stack=stack,
        tokens=tokens,
        record=record,
    )


def run_components(
    program: Callable[[], object],
    *,
    config: Mapping[str, Any] | None = None,
    stack: str = "offline",
    tokens: Tokens = "stand-in",
    record: ProgramRun | None = None,
) -> ProgramRun:
    """Run `program` in a fresh root stack; return once every registration settled.

    ProgramFailed when the program ends as it ends under the CLI after an error: it
    bailed (`components.bail`), or a provider's check failed."""
    run = ProgramRun() if record is None else record
    mocks = OfflineMocks(tokens, run, str((config or {}).get("aws:region") or DEFAULT_REGION))
    pulumi_mocks.set_mocks(
        mocks,
        project=PROJECT,
        stack=stack,
        preview=mocks.preview,
        logger=_recording_logger(run),
        monitor=_RecordingMonitor(mocks, run),
    )
    ROOT.set(None)  # set_mocks made a finished stack; run the program in a fresh one

    set_all_config(cli_config(config or {}))

    def body() -> None:
        program()

    try:
        _sync_await(run_in_stack(body))
    except SystemExit as exit_:
        if exit_.code != bail.EXIT_CODE:
            raise
        raise ProgramFailed(_errors(run)) from None
    finally:
        _cancel_leftovers()
    if run.check_failures:
        raise ProgramFailed("\n".join(run.check_failures))
    return run


def _errors(run: ProgramRun) -> str:
    return "\n".join(text for level, text in run.messages if level == "error")


def _recording_logger(run: ProgramRun) -> logging.Logger:
    """A logger that keeps what the program says in `run.messages`, and shows nothing."""

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run.messages.append((record.levelname.lower(), record.getMessage()))

    logger = logging.getLogger(f"{__name__}.program.{id(run)}")
    logger.handlers = [Recorder()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _cancel_leftovers() -> None:
    """Cancel what a failed run left running, so that the next run does not inherit it
    (Pulumi keeps the output tasks of a run in a process-wide list)."""
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    _keep_loop()
    loop = asyncio.get_event_loop()
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


AUTONAME_SUFFIX: Final = 8


def autoname(name: str) -> str:
    """The name pulumi-kubernetes gives an object without `metadata.name`: the logical
    name, a dash and 8 random hex digits (here a digest of the name, so runs repeat)."""
    return f"{name}-{_digest(name)[:AUTONAME_SUFFIX]}"


def cluster_ip(name: str) -> str:
    """The address the API server would give a Service (10.100.0.0/16, EKS's default
    range): here a digest of its name, so runs repeat."""
    digest = bytes.fromhex(_digest(name)[:4])
    return f"10.100.{digest[0]}.{digest[1]}"


def _uuid(text: str) -> str:
    digest = _digest(text)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
