"""`OPSTRACE_REQUIRE_TOOLS=1` turns every skipped test into a failure.

Tests that need a real tool (haproxy, prometheus, the Pulumi engine) skip with a reason
when it is missing, which is right on a laptop and wrong in CI: a suite that skips the
gateway's end-to-end tests says nothing about the gateway. `.ci/run` sets the variable,
so CI cannot pass with a tool missing. Registered in `tests/conftest.py`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any, Final

import pytest

REQUIRE_TOOLS_ENV: Final = "OPSTRACE_REQUIRE_TOOLS"


def tools_required() -> bool:
    """Whether a missing tool must fail the run (CI) rather than skip (a laptop)."""
    return os.environ.get(REQUIRE_TOOLS_ENV, "") not in ("", "0")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and tools_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_TOOLS_ENV}=1, so a skip is a failure: {reason}"
    return report
