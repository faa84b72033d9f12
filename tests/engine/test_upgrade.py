"""A stack made by an earlier release upgrades with no change: every URN, type token,
provider reference and input the program registers is the one its state records.

The state is the one `tests/engine/upgrade.py record` exported (see `upgrade.RECORDED_AT`);
it is imported into a fresh stack and previewed with this checkout's program. Moving a
component or a rule to another module must keep it so (an `alias` where a type token or
logical name changes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine import upgrade
from tests.engine.harness import ROOT, Workspace
from tools import cluster as local_cluster

pytestmark = pytest.mark.engine


def test_a_stack_of_the_earlier_release_previews_with_no_change(
    tmp_path: Path, cluster: local_cluster.Api
) -> None:
    workspace = Workspace(tmp_path / "project", tmp_path / "home", tmp_path / "backend")
    workspace.project_dir.rmdir()
    upgrade.copy_project(ROOT, workspace.project_dir)
    upgrade.write_stack(workspace.project_dir)
    workspace.new_stack(upgrade.STACK)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(upgrade.restored(upgrade.FIXTURE.read_text())))
    workspace.run("stack", "import", "--file", str(state), "--stack", upgrade.STACK)
    result = workspace.run(
        "preview", "--diff", "--expect-no-changes", "--stack", upgrade.STACK, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "replace" not in output
