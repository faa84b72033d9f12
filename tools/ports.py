"""Free TCP ports on 127.0.0.1 that no other process is handed meanwhile.

A port the kernel handed out (`bind` to port 0) and that was closed again can be handed
to another process (an outgoing connection, another suite's server) before the caller
binds it. Two suites on one machine then share a port: a test talks to the other
suite's HAProxy, or a cluster component fails to bind. These ports come from just below
the range the kernel picks from by itself, and each is locked (`flock` on a file per
port) by the one process it was given to, until that process exits.

The end-to-end tests, the benchmarks and the local cluster (`tools.cluster`) take their
ports here.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path
from typing import Final

PORTS_DIR: Final = Path(tempfile.gettempdir()) / "opstrace-test-ports"
"""One lock file per port: a process holds the lock of each port it was given."""
PORT_RANGE_SIZE: Final = 8192
_held_ports: list[int] = []
"""File descriptors of the port locks this process holds; released when it exits."""


def ports_below_the_ephemeral_range() -> range:
    """Ports the kernel never picks by itself (`bind` to port 0 and `connect` choose from
    `ip_local_port_range`): just below that range."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return range(max(1024, first - PORT_RANGE_SIZE), first)


def free_port() -> int:
    """A port on 127.0.0.1 for the caller to bind, reserved until this process exits.

    A process that starts a server on it keeps the port by listening on it; the lock
    covers the moment between the choice and the bind. The lock is not inherited by
    child processes (Python opens files non-inheritable)."""
    PORTS_DIR.mkdir(parents=True, exist_ok=True)
    ports = ports_below_the_ephemeral_range()
    start = random.randrange(len(ports))  # noqa: S311 (a spread, not a secret)
    for offset in range(len(ports)):
        port = ports[(start + offset) % len(ports)]
        descriptor = os.open(PORTS_DIR / str(port), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            os.close(descriptor)  # another process's, or in use: try the next one
            continue
        _held_ports.append(descriptor)
        return port
    raise RuntimeError(f"no free port in {ports} (locks in {PORTS_DIR})")
