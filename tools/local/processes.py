"""The local instance's backends, supervised processes on 127.0.0.1: a real Cortex at the
stack's `cortexUrl` and, at its `lokiUrl`, the answer that no Loki runs (`no_loki`).

Each is started once and left running while it is alive (a second `make up` finds them);
`stop` ends them by pid (`tools.cluster.supervisor`), as `make down` does.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from tools.cluster.state import ROOT, ClusterError
from tools.local import cortex, no_loki
from tools.local.home import CORTEX, CORTEX_DIR, LOCAL_DIR, NO_LOKI, PROCESSES, SUPERVISOR
from tools.ports import free_port


def loopback_port(setting: str, url: str) -> int:
    """The port of `url`, which must be `http://127.0.0.1:<port>` (where the local
    instance runs that backend); ClusterError naming the setting otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
        raise ClusterError(
            f"{setting}: {url!r} is not http://127.0.0.1:<port>, where the local instance "
            "runs that backend: set it so"
        )
    return parts.port


def _taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _start(
    name: str,
    port: int,
    setting: str,
    argv: Callable[[], list[str]],
    ready: Callable[[], bool],
) -> str:
    """Start `name` on `port` unless it runs already; what was done."""
    if SUPERVISOR.alive(name):
        return f"{name} already running on 127.0.0.1:{port}"
    if _taken(port):
        raise ClusterError(
            f"{setting}: 127.0.0.1:{port} is taken by another process: stop it, or choose "
            "another port there"
        )
    SUPERVISOR.start(name, argv(), env={**os.environ, "PYTHONPATH": str(ROOT)})
    SUPERVISOR.wait_for(ready, f"{name} to answer on 127.0.0.1:{port}", name)
    return f"{name} started on 127.0.0.1:{port} (log {SUPERVISOR.log(name)})"


def start(
    cortex_url: str, loki_url: str, cortex_binary: str, where: str, log: Callable[[str], None]
) -> None:
    """Cortex at `cortex_url`, the no-Loki answer at `loki_url` (both on 127.0.0.1), each
    started unless it runs already; `where` names the stack file in messages."""
    cortex_port = loopback_port(f"cortexUrl in {where}", cortex_url)
    loki_port = loopback_port(f"lokiUrl in {where}", loki_url)

    def cortex_argv() -> list[str]:
        return cortex.command(
            cortex_binary, cortex.write_files(CORTEX_DIR, cortex_port, free_port())
        )

    def no_loki_argv() -> list[str]:
        # --state names the process as this checkout's (what the supervisor checks).
        module = ["-m", "tools.local", NO_LOKI, f"--port={loki_port}", f"--state={LOCAL_DIR}"]
        return [sys.executable, *module]

    def cortex_ready() -> bool:
        return _status(cortex_port, cortex.READY_PATH) == 200

    def no_loki_ready() -> bool:
        return _status(loki_port, "/") == no_loki.STATUS

    log("local: " + _start(CORTEX, cortex_port, f"cortexUrl in {where}", cortex_argv, cortex_ready))
    log("local: " + _start(NO_LOKI, loki_port, f"lokiUrl in {where}", no_loki_argv, no_loki_ready))


def stop() -> None:
    """Stop both (ours only, by pid)."""
    for name in reversed(PROCESSES):
        SUPERVISOR.stop(name)
