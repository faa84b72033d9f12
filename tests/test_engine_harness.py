"""The engine harness's own helpers, with real processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.harness import wait_until
from tests.engine.harness import kill_tree
from tools.cluster.supervisor import stat_fields


def running(pid: int) -> bool:
    """Alive, not a zombie waiting for its parent."""
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def test_kill_tree_kills_descendants_in_process_groups_of_their_own(tmp_path: Path) -> None:
    """As the CLI starts its plugins: each child leads a group (setsid) of its own."""
    pids = tmp_path / "pids"
    script = f"setsid sh -c 'echo $$ >> {pids}; sleep 300' & echo $$ >> {pids}; sleep 300"
    parent = subprocess.Popen(["sh", "-c", script])
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2, "both pids")
    tree = [int(pid) for pid in pids.read_text().split()]
    assert os.getpgid(tree[0]) != os.getpgid(tree[1])
    kill_tree(parent.pid)
    parent.wait(timeout=30)
    wait_until(lambda: not any(running(pid) for pid in tree), "every process of the tree to end")
