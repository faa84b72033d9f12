"""Fixtures of the engine tests: a workspace per test (the local cluster: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import PULUMI_TOOLS, Workspace, require_tools


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty project folder, PULUMI_HOME and file backend; the CLI must be built."""
    require_tools(PULUMI_TOOLS)
    return Workspace(tmp_path / "project", tmp_path / "home", tmp_path / "backend")
