"""Local processes of one state directory: start, stop, alive, pid, log tail, waits.

Each process is started detached (its own session, stdin from /dev/null), its output
appended to `<root>/logs/<name>.log` and its pid written to `<root>/pids/<name>.pid`. A
recorded pid counts as ours only while that process's command line names `root`, so
that a pid reused by someone else's process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Final

from sidecar import kube_client
from tools.cluster.state import ClusterError

POLL_SECONDS: Final = 0.25
START_TIMEOUT: Final = 180.0
STOP_TIMEOUT: Final = 15.0
EXEC_TIMEOUT: Final = 10.0


def stat_fields(pid: int) -> list[str]:
    """The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and
    parentheses): the state first (`Z` a zombie, `X` dead), then the parent's pid.
    OSError when there is no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()


class Supervisor:
    """The processes whose pid, log and command line live under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.pids = root / "pids"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> int | None:
        try:
            return int((self.pids / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> bool:
        """Is the recorded process running, and is it ours (its command names `root`)?"""
        pid = self.pid(name)
        if pid is None:
            return False
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
        try:
            state = stat_fields(pid)[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return state not in ("Z", "X") and str(self.root) in cmdline

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Start a detached process, output to its log, pid to its pid file."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            dict(env if env is not None else os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (
                    os.POSIX_SPAWN_OPEN,
                    1,
                    str(self.log(name)),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o644,
                ),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )
        (self.pids / f"{name}.pid").write_text(f"{pid}\n")
        # Until the child has exec'd, its command line is still this Python's: `alive`
        # would take it for someone else's process. Wait (briefly) for the exec.
        deadline = time.monotonic() + EXEC_TIMEOUT
        while not self.alive(name) and time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break  # it exited: the caller's wait reports it with the log
            except ChildProcessError:
                break
            time.sleep(0.01)
        return pid

    def stop(self, name: str) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; only a process that `alive` says is ours."""
        pid = self.pid(name)
        if pid is not None and self.alive(name):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + STOP_TIMEOUT
                while self.alive(name) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not self.alive(name):
                    break
            else:
                raise ClusterError(f"{name} (pid {pid}) did not stop")
        (self.pids / f"{name}.pid").unlink(missing_ok=True)

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.log(name)
        if not path.exists():
            return f"(no log at {path})"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"last lines of {path}:\n" + "\n".join(text)

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        name: str,
        timeout: float = START_TIMEOUT,
    ) -> None:
        """Poll `condition` until it holds; fail naming `what`, with `name`'s log tail,
        when `name` exits or after `timeout` seconds."""
        wait_until(
            condition,
            what,
            name,
            alive=partial(self.alive, name),
            log_tail=partial(self.log_tail, name),
            timeout=timeout,
        )


def wait_until(
    condition: Callable[[], bool],
    what: str,
    name: str,
    *,
    alive: Callable[[], bool],
    log_tail: Callable[[], str],
    timeout: float = START_TIMEOUT,
) -> None:
    """Poll `condition` until it holds; fail naming `what`, with the log tail of process
    `name`, when it exits (`alive` says no more) or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ClusterError, kube_client.KubeApiError):
            if condition():
                return
        if not alive():
            raise ClusterError(f"{name} exited while waiting for {what}\n{log_tail()}")
        time.sleep(POLL_SECONDS)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{log_tail()}")
