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

import pulumi

from components.rules.errors import OpstraceError

EXIT_CODE: Final = 32
"""The exit code by which a Python program tells its language host that it has shown
the operator an actionable error already (the SDK's
PYTHON_PROCESS_EXITED_AFTER_SHOWING_USER_ACTIONABLE_MESSAGE_CODE): the host bails
without a message of its own."""

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
