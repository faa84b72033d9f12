"""Ending the program on an operator's mistake the way the CLI ends on its own: one line.

An `OpstraceError` (a broken rule: a stack setting, a key, a capacity) is reported as
its message, as an error of the update, and the program exits with the SDK's "error
already shown" code, so that neither a traceback nor the language host's "Program
exited with non-zero exit code" follows it. That holds where the error is found: while
the configuration is read, and inside an `Output` callback, where values only an update
knows (keys read from files, the load balancer's address) are checked. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, NoReturn, ParamSpec, TypeVar

import grpc
import pulumi
from pulumi.runtime import settings

from opstrace.errors import OpstraceError

EXIT_CODE: Final = 32
"""The exit code by which a Python program tells its language host that it has shown
the operator an actionable error already (the SDK's
PYTHON_PROCESS_EXITED_AFTER_SHOWING_USER_ACTIONABLE_MESSAGE_CODE): the host bails
without a message of its own."""

_MONITOR_GONE: Final = grpc.StatusCode.UNAVAILABLE
"""How the engine's resource monitor answers once the engine has stopped the update."""

P = ParamSpec("P")
R = TypeVar("R")


def bail(error: OpstraceError) -> NoReturn:
    """Report `error` as one line and end the program.

    Logged without a resource, so synchronously: the engine has the line before the
    process exits. `SystemExit` passes through the SDK's handlers and the event loop
    (they catch `Exception` only), so the exit code reaches the language host.
    """
    pulumi.log.error(str(error))
    raise SystemExit(EXIT_CODE)


def reported(function: Callable[P, R]) -> Callable[P, R]:
    """`function` (an `Output` callback), with a broken rule reported by `bail`."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except OpstraceError as error:
            bail(error)

    return call


def quietly_after_the_engine_stops() -> None:
    """Once the engine stops an update (a provider's check failed: an unreadable
    signingKeyFile, say), it has shown why, attached to that resource, and shuts its
    resource monitor down. The SDK would then raise `RunError("Resource monitor has
    terminated, shutting down")` from every registration still in flight, which the
    exec shim reports as a second error of the stack: exit with the bail code instead,
    so that the operator reads the one line that says what to fix.

    The SDK turns every failed monitor call into an exception in
    `settings.grpc_error_to_exception` (pulumi 3.272, which requirements.txt pins);
    this wraps that function for the monitor's "unavailable" only. The engine tests
    check the whole output, so an SDK that moves it is noticed.
    """
    original = settings.grpc_error_to_exception

    def exception_for(exn: grpc.RpcError) -> Exception:
        if exn.code() == _MONITOR_GONE:
            raise SystemExit(EXIT_CODE)
        return original(exn)

    settings.grpc_error_to_exception = exception_for
