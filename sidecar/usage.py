"""The gateway's usage counters: requests, refusals and bytes per tenant and credential,
counted from HAProxy's access log and served as Prometheus metrics.

HAProxy writes each access log line (`opstrace.gateway.haproxy.ACCESS_LOG_FIELDS`, the
audit trail) into an in-memory ring as well as to its standard output, and forwards the
ring over TCP to this sidecar on `127.0.0.1` in the pod's own network (`format raw`,
octet-counted framing, RFC 6587 3.4.1: `<length> <line>`, no separator). The sidecar
counts the lines and serves the totals at `/metrics` on its status port, where the
instance's collector scrapes them into the `system` tenant.

Why so: counting here rather than in HAProxy's stick tables counts every request HAProxy
logs (refusals before any credential is known included) and survives HAProxy's reloads
(a reload starts its tables empty); the ring keeps the data path's cost to a copy in
memory (a datagram per request cost the gateway about 11 us of CPU each, a third of a
pass-through request), and its forwarder writes many lines per system call. The counters
start at zero when the sidecar starts, as a Prometheus counter may. Lines are lost only
if the sidecar falls behind by the ring's size, or while it restarts (HAProxy's ring
drops the oldest).

Standard library only: the pod ships this file.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO, Final

LABELS: Final = ("tenant", "credential")
"""What each series is per, from the line's fields of those names (`-`: unknown)."""
METRICS: Final = (
    (
        "opstrace_gateway_requests_total",
        "Requests to the data API by tenant, credential and status code (4xx: refused).",
    ),
    (
        "opstrace_gateway_received_bytes_total",
        "Bytes received from clients (requests with headers and bodies).",
    ),
    ("opstrace_gateway_sent_bytes_total", "Bytes sent to clients (responses)."),
)
_MAX_LENGTH_DIGITS: Final = 6
"""A frame's length has at most this many digits (HAProxy's lines are far shorter)."""


def fields(line: str) -> dict[str, str] | None:
    """The `name=value` fields of an access log line; None for any other line (another
    listener's, or a line cut short)."""
    found = dict(part.partition("=")[::2] for part in line.strip().split(" ") if "=" in part)
    needed = (*LABELS, "status", "bytes_in", "bytes_out")
    if not all(found.get(name) for name in needed):
        return None
    if not all(found[name].isdigit() for name in needed[len(LABELS) :]):
        return None
    return found


class Usage:
    """Counters per (tenant, credential[, code]), safe to add to from one thread while
    another renders them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, ...]] = Counter()
        """(tenant, credential, code) -> requests."""
        self._received: Counter[tuple[str, ...]] = Counter()
        """(tenant, credential) -> bytes."""
        self._sent: Counter[tuple[str, ...]] = Counter()

    def count(self, line: str) -> bool:
        """Count one access log line; False if it is none."""
        found = fields(line)
        if found is None:
            return False
        who = (found["tenant"], found["credential"])
        with self._lock:
            self._requests[(*who, found["status"])] += 1
            self._received[who] += int(found["bytes_in"])
            self._sent[who] += int(found["bytes_out"])
        return True

    def exposition(self) -> str:
        """Every counter in Prometheus' text format, sorted."""
        with self._lock:
            series: list[Mapping[tuple[str, ...], int]] = [
                dict(self._requests),
                dict(self._received),
                dict(self._sent),
            ]
        lines: list[str] = []
        for (name, description), counts in zip(METRICS, series, strict=True):
            lines += [f"# HELP {name} {description}", f"# TYPE {name} counter"]
            names = (*LABELS, "code")
            lines += [
                f"{name}{{{_labels(zip(names, key, strict=False))}}} {value}"
                for key, value in sorted(counts.items())
            ]
        return "\n".join(lines) + "\n"


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escaped(value)}"' for name, value in pairs)


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def frames(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of an octet-counted stream, until it ends or breaks the framing."""
    while True:
        length = b""
        while (byte := stream.read(1)) != b" ":
            if not byte.isdigit() or len(length) == _MAX_LENGTH_DIGITS:
                return  # the end of the stream, or not a frame: HAProxy reconnects
            length += byte
        if not length:
            return
        line = stream.read(int(length))
        if len(line) < int(length):
            return
        yield line


def listen(address: tuple[str, int]) -> socket.socket:
    """The socket HAProxy's ring connects to, listening now (so that no line waits)."""
    # Port reuse: the local cluster runs several pods' sidecars in one network.
    return socket.create_server(address, reuse_port=True)


def receive(listener: socket.socket, counters: Usage) -> None:
    """Count every line of every connection (a reload's new worker opens its own), for as
    long as the process runs."""
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_count, args=(connection, counters), daemon=True).start()


def _count(connection: socket.socket, counters: Usage) -> None:
    with connection, connection.makefile("rb") as stream:
        for line in frames(stream):
            counters.count(line.decode("utf-8", errors="replace"))
