"""A Prometheus remote-write request body with one sample taken now, for `curl --data-binary`.

    python3 tools/local/remote_write.py | curl ... --data-binary @- https://cortex.<tenant>.../api/v1/push

Remote write sends a `WriteRequest` protobuf, snappy-compressed (block format): awkward to
write by hand in a shell, so the local instance's push line pipes this script's output into
curl. It writes one series, `SERIES{LABEL="curl"}`, whose value is the time of the push in
seconds, timestamped now (a body made earlier would be out of the query's lookback).

Standard library only, and no import of this project, so that any `python3` runs it by path.
Both encodings are written out here (a few lines each) rather than taken from protobuf and
python-snappy: the body is one fixed message, the snappy block holds it as literals only
(valid snappy, which every decoder reads), and the instance's runtime environment gains no
dependency for a try-out (docs/architecture.md, Decisions).
"""

from __future__ import annotations

import struct
import sys
import time

SERIES = "opstrace_try_pushed_at_seconds"
LABEL = "pushed_by"
CONTENT_HEADERS = (
    "Content-Type: application/x-protobuf",
    "Content-Encoding: snappy",
    "X-Prometheus-Remote-Write-Version: 0.1.0",
)
"""What a remote-write client sends with the body (Prometheus' remote write 1.0)."""


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_request(labels: dict[str, str], value: float, timestamp_ms: int) -> bytes:
    """`prometheus.WriteRequest` with one time series of one sample (labels sorted by name,
    as the protocol requires)."""
    series = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, text.encode()))
        for name, text in sorted(labels.items())
    )
    sample = (
        _varint(1 << 3 | 1) + struct.pack("<d", value) + _varint(2 << 3) + _varint(timestamp_ms)
    )
    return _field(1, series + _field(2, sample))


def snappy_block(data: bytes) -> bytes:
    """`data` in snappy's block format: its length, then literal elements of at most 64 KiB."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), 1 << 16):
        chunk = data[start : start + (1 << 16)]
        size = len(chunk) - 1
        if size < 60:
            out.append(size << 2)
        elif size < 1 << 8:
            out += bytes([60 << 2, size])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", size)
        out += chunk
    return bytes(out)


def body(now: float) -> bytes:
    """The request body: `SERIES{LABEL="curl"} = now`, timestamped now, both in whole
    seconds (the value reads back as a Unix time)."""
    second = int(now)
    return snappy_block(write_request({"__name__": SERIES, LABEL: "curl"}, second, second * 1000))


if __name__ == "__main__":
    sys.stdout.buffer.write(body(time.time()))
