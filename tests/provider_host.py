"""A client for the real dynamic provider host, started the way the Pulumi engine starts it.

The engine runs `python -u -m pulumi.dynamic` (its `pulumi-resource-pulumi-python`
shim) in the program directory, reads the port from stdout and drives the provider
over gRPC; the provider itself travels inside the properties as a dill pickle. Tests
that go through this host catch what in-process calls cannot: the pickle must load
in a fresh process that only finds `components` from its working directory, every
number comes back as a float, and errors arrive as gRPC tracebacks.

Register the session fixture in `tests/conftest.py` with
`pytest_plugins = ["tests.provider_host"]`.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import grpc
import pytest
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.tokens import TokenProvider

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
"""The Pulumi program directory: the engine starts the host there."""
PROVIDER_KEY: Final = "__provider"
STARTUP_TIMEOUT_SECONDS: Final = 120.0
"""A bound, not a speed goal: a loaded machine (other suites, a build) starts slowly."""
CALL_TIMEOUT_SECONDS: Final = 120.0
"""Generous: a 4096-bit key can take seconds on a busy machine."""


class ProviderHostError(Exception):
    """Raised when the host fails a call; the message is the host's (its traceback)."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method} failed in the provider host ({code}):\n{details}")
        self.method = method
        self.code = code
        self.details = details


class ProviderHostStartError(Exception):
    """Raised when the host does not start and print its port in time."""


class InputsRefused(Exception):
    """Raised by `mint` when Check reports failures, as the engine would stop there."""

    def __init__(self, failures: tuple[tuple[str, str], ...]) -> None:
        super().__init__("; ".join(f"{p}: {r}" for p, r in failures))
        self.failures = failures


class DiffChanges(enum.Enum):
    """Whether a Diff found changes, as the engine reads `DiffResponse.changes`."""

    NONE = "DIFF_NONE"
    SOME = "DIFF_SOME"
    UNKNOWN = "DIFF_UNKNOWN"


@dataclass(frozen=True)
class CheckResponse:
    """Checked inputs (without `__provider`) and (property, reason) failures."""

    inputs: dict[str, Any]
    failures: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DiffResponse:
    """What the engine would plan: changes, replacing properties, replace order."""

    changes: DiffChanges
    replaces: tuple[str, ...]
    delete_before_replace: bool


@dataclass(frozen=True)
class ResourceState:
    """A resource as the engine records it: its ID and output properties."""

    id: str
    properties: dict[str, Any]
    """Outputs without `__provider`."""
    serialized_provider: str = ""
    """The `__provider` the host returned with the outputs: what the state records."""


@dataclass(frozen=True)
class ReadResponse:
    """What a refresh records: ID, outputs, and inputs if the provider returned any."""

    id: str
    properties: dict[str, Any]
    inputs: dict[str, Any] | None


def _serialize(properties: Mapping[str, Any]) -> Any:
    # A private loop: asyncio.run() would unset the current one, which Pulumi's mocks
    # in other tests rely on.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(properties), {}))
    finally:
        loop.close()


def _deserialize(struct: Any, *, keep_unknowns: bool = False) -> dict[str, Any]:
    properties = rpc.deserialize_properties(struct, keep_unknowns)
    return {k: v for k, v in cast(dict[str, Any], properties).items() if k != PROVIDER_KEY}


class ProviderHost:
    """One running `python -m pulumi.dynamic` process serving `TokenProvider` (or, see
    `serving`, another of the project's providers).

    Properties given to the methods are plain inputs or outputs; the serialized
    provider is added to each request and removed from each response, as the
    SDK and engine do.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], channel: Any, logs: tempfile.TemporaryDirectory[str]
    ) -> None:
        self._process = process
        self._channel = channel
        self._logs = logs
        self._stub = provider_pb2_grpc.ResourceProviderStub(channel)
        self.serialized_provider: str = serialize_provider(TokenProvider())
        """The provider exactly as the SDK records it in `__provider` (base64 dill)."""

    @classmethod
    def start(
        cls,
        timeout: float = STARTUP_TIMEOUT_SECONDS,
        environment: Mapping[str, str] | None = None,
    ) -> ProviderHost:
        """Start a host in the project root with no PYTHONPATH and configure it;
        `environment` adds to (or replaces in) the test's environment, as an operator's
        shell would (a proxy, the CAs to trust)."""
        logs = tempfile.TemporaryDirectory(prefix="provider-host-")
        stdout_path = Path(logs.name) / "stdout"
        stderr_path = Path(logs.name) / "stderr"
        # Files, not pipes: the host must never block on a full pipe nobody reads.
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-u", "-m", "pulumi.dynamic"],
                cwd=PROJECT_ROOT,
                env={**_host_environment(), **(environment or {})},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            port = _wait_for_port(process, stdout_path, stderr_path, timeout)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            try:
                grpc.channel_ready_future(channel).result(timeout=timeout)
            except grpc.FutureTimeoutError:
                channel.close()
                raise ProviderHostStartError(
                    f"provider host did not accept connections on port {port} within "
                    f"{timeout}s; stderr:\n{_read_text(stderr_path)}"
                ) from None
        except BaseException:
            _stop(process)
            logs.cleanup()
            raise
        host = cls(process, channel, logs)
        try:
            # The engine configures every provider before its first Check.
            host._call("Configure", provider_pb2.ConfigureRequest(args=_serialize({})))
        except BaseException:
            host.close()
            raise
        return host

    def serving(self, provider: ResourceProvider) -> ProviderHost:
        """The same host process, with requests carrying `provider` instead."""
        view = copy.copy(self)
        view.serialized_provider = serialize_provider(provider)
        return view

    def check(
        self, news: Mapping[str, Any], olds: Mapping[str, Any] | None = None
    ) -> CheckResponse:
        """Check(olds, news): defaults filled in, failures as (property, reason).

        `olds` are the previous checked inputs; none for a new resource.
        """
        response = self._call(
            "Check",
            provider_pb2.CheckRequest(
                olds=_serialize(self._with_provider(olds) if olds else {}),
                news=_serialize(self._with_provider(news)),
            ),
        )
        return CheckResponse(
            inputs=_deserialize(response.inputs, keep_unknowns=True),
            failures=tuple((f.property, f.reason) for f in response.failures),
        )

    def diff(self, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResponse:
        """Diff(id, olds=state outputs, news=checked inputs)."""
        response = self._call(
            "Diff",
            provider_pb2.DiffRequest(
                id=id_,
                olds=_serialize(self._with_provider(olds)),
                news=_serialize(self._with_provider(news)),
            ),
        )
        return DiffResponse(
            changes=DiffChanges(provider_pb2.DiffResponse.DiffChanges.Name(response.changes)),
            replaces=tuple(response.replaces),
            delete_before_replace=bool(response.deleteBeforeReplace),
        )

    def create(self, properties: Mapping[str, Any]) -> ResourceState:
        """Create(checked inputs): the new resource's ID and outputs."""
        response = self._call(
            "Create",
            provider_pb2.CreateRequest(properties=_serialize(self._with_provider(properties))),
        )
        raw = cast(dict[str, Any], rpc.deserialize_properties(response.properties))
        return ResourceState(
            id=str(response.id),
            properties=_deserialize(response.properties),
            serialized_provider=str(raw.get(PROVIDER_KEY, "")),
        )

    def read(
        self, id_: str, properties: Mapping[str, Any], inputs: Mapping[str, Any] | None = None
    ) -> ReadResponse:
        """Read(id, properties=state outputs, inputs), as a refresh sends it."""
        response = self._call(
            "Read",
            provider_pb2.ReadRequest(
                id=id_,
                properties=_serialize(self._with_provider(properties)),
                inputs=_serialize(self._with_provider(inputs) if inputs else {}),
            ),
        )
        return ReadResponse(
            id=str(response.id),
            properties=_deserialize(response.properties),
            inputs=_deserialize(response.inputs) if response.HasField("inputs") else None,
        )

    def update(self, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        """Update(id, olds=state outputs, news=checked inputs): the new outputs."""
        response = self._call(
            "Update",
            provider_pb2.UpdateRequest(
                id=id_,
                olds=_serialize(self._with_provider(olds)),
                news=_serialize(self._with_provider(news)),
            ),
        )
        return _deserialize(response.properties)

    def delete(self, id_: str, properties: Mapping[str, Any]) -> None:
        """Delete(id, properties=state outputs)."""
        self._call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=id_, properties=_serialize(self._with_provider(properties))
            ),
        )

    def stderr_text(self) -> str:
        """Everything the host wrote to stderr so far."""
        return _read_text(Path(self._logs.name) / "stderr")

    def close(self) -> None:
        """Kill the host and wait for it, then drop its logs."""
        self._channel.close()
        _stop(self._process)
        self._logs.cleanup()

    def _with_provider(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        return {**properties, PROVIDER_KEY: self.serialized_provider}

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            details = str(error.details() or "")
            if self._process.poll() is not None:
                details += f"\n(host exited with {self._process.returncode}; stderr:\n"
                details += self.stderr_text() + ")"
            raise ProviderHostError(method, error.code().name, details) from None


def mint_resource(host: ProviderHost, **inputs: Any) -> ResourceState:
    """Check then Create, as the engine does for a new resource."""
    checked = host.check(inputs)
    if checked.failures:
        raise InputsRefused(checked.failures)
    return host.create(checked.inputs)


def mint(host: ProviderHost, **inputs: Any) -> dict[str, Any]:
    """The outputs of a new resource made from `inputs` (Check, then Create)."""
    return mint_resource(host, **inputs).properties


@pytest.fixture(scope="session")
def provider_host() -> Iterator[ProviderHost]:
    """One real provider host for the whole test session."""
    host = ProviderHost.start()
    try:
        yield host
    finally:
        host.close()


def _host_environment() -> dict[str, str]:
    # Only the working directory may make `components` importable, as under the engine.
    tests_dir = str(PROJECT_ROOT / "tests")
    return {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONPATH" and not name.startswith("PYTEST_") and tests_dir not in value
    }


def _wait_for_port(
    process: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first_line, newline, _ = stdout_path.read_bytes().partition(b"\n")
        if newline:
            try:
                return int(first_line)
            except ValueError:
                raise ProviderHostStartError(
                    f"provider host printed {first_line!r} instead of a port; stderr:\n"
                    f"{_read_text(stderr_path)}"
                ) from None
        if process.poll() is not None:
            raise ProviderHostStartError(
                f"provider host exited with {process.returncode} before printing its port; "
                f"stderr:\n{_read_text(stderr_path)}"
            )
        time.sleep(0.02)
    raise ProviderHostStartError(
        f"provider host printed no port within {timeout}s; stderr:\n{_read_text(stderr_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")
