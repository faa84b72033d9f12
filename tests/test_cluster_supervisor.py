"""The local cluster's process supervisor, with real processes in a temporary folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tools.cluster.state import ClusterError
from tools.cluster.supervisor import Supervisor

SLEEPER = "import sys, time; print('started', flush=True); time.sleep(600)"


def sleeper(root: Path) -> list[str]:
    """A process that runs until stopped; its command line names `root`, marking it ours."""
    return [sys.executable, "-c", SLEEPER, str(root)]


def test_started_process_is_alive_logs_and_stops(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    pid = supervisor.start("sleeper", sleeper(tmp_path))
    assert supervisor.pid("sleeper") == pid
    assert supervisor.alive("sleeper")
    supervisor.wait_for(
        lambda: "started" in supervisor.log("sleeper").read_text(), "its output", "sleeper"
    )
    supervisor.stop("sleeper")
    assert not supervisor.alive("sleeper")
    assert supervisor.pid("sleeper") is None


def test_a_recorded_pid_of_someone_elses_process_is_not_ours(tmp_path: Path) -> None:
    """A pid reused by another process (here: this test's) is never taken for ours."""
    supervisor = Supervisor(tmp_path)
    supervisor.pids.mkdir(parents=True)
    (supervisor.pids / "etcd.pid").write_text(f"{os.getpid()}\n")
    assert not supervisor.alive("etcd")
    supervisor.stop("etcd")  # signals nothing: this test goes on
    assert supervisor.pid("etcd") is None


def test_waiting_on_a_process_that_exited_fails_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    script = f"import sys; print('bad flag --x'); sys.exit(2)  # {tmp_path}"
    supervisor.start("broken", [sys.executable, "-c", script])
    with pytest.raises(ClusterError) as raised:
        supervisor.wait_for(lambda: False, "broken to listen", "broken", timeout=60)
    assert str(raised.value) == (
        f"broken exited while waiting for broken to listen\n"
        f"last lines of {tmp_path}/logs/broken.log:\nbad flag --x"
    )
