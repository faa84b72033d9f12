"""The CI switch that makes a missing tool fail the run instead of skipping tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.strict_tools import REQUIRE_TOOLS_ENV

PROJECT_DIR = Path(__file__).resolve().parent.parent

SKIPPING_TEST = """
import pytest

@pytest.mark.skipif(True, reason="haproxy is not installed")
def test_needs_haproxy():
    pass
"""


def run_pytest(test_file: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_TOOLS_ENV}
    if require is not None:
        env[REQUIRE_TOOLS_ENV] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.strict_tools", "-q", "-rA", str(test_file)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_tool_fails_the_run_when_tools_are_required(tmp_path: Path) -> None:
    test_file = tmp_path / "test_skipping.py"
    test_file.write_text(SKIPPING_TEST)
    result = run_pytest(test_file, "1")
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert f"{REQUIRE_TOOLS_ENV}=1, so a skip is a failure: haproxy is not installed" in (
        result.stdout
    )


def test_a_missing_tool_skips_when_tools_are_not_required(tmp_path: Path) -> None:
    test_file = tmp_path / "test_skipping.py"
    test_file.write_text(SKIPPING_TEST)
    result = run_pytest(test_file, None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
