"""A real authoritative DNS server on 127.0.0.1 for the delegation tests: Knot DNS.

Debian's `knot` (.ci/run installs it) serving the operator's zone `acme-observability.dev`, which
takes dynamic updates (RFC 2136) from 127.0.0.1: a test adds a delegation as an operator
would at their DNS provider. Import the `knot` fixture into the test module.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest

from opstrace import delegation
from tools.ports import free_port

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
PARENT = "acme-observability.dev"
ZONE = f"dev.{PARENT}"
ZONE_FILE = f"""\
$ORIGIN {PARENT}.
$TTL 300
@    SOA ns1.{PARENT}. hostmaster.{PARENT}. 1 3600 600 86400 3600
@    NS  ns1.{PARENT}.
ns1  A   127.0.0.1
"""


@dataclass(frozen=True)
class Knot:
    """A running Knot DNS, authoritative for `PARENT`, that takes dynamic updates."""

    port: int

    @property
    def servers(self) -> delegation.Servers:
        return delegation.Servers("127.0.0.1", self.port)

    def delegate(self, zone: str, name_servers: list[str]) -> None:
        """Add NS records for `zone` in the parent, as an operator at a DNS provider."""
        update = dns.update.UpdateMessage(PARENT)
        for server in name_servers:
            update.add(f"{zone}.", 300, "NS", f"{server}.")
        answer = dns.query.tcp(update, "127.0.0.1", timeout=5, port=self.port)
        assert answer.rcode() == dns.rcode.NOERROR


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[Knot]:
    if not Path(KNOTD).exists():
        pytest.skip("knotd is not installed: apt-get install knot")
    port = free_port()
    (tmp_path / f"{PARENT}.zone").write_text(ZONE_FILE)
    (tmp_path / "knot.conf").write_text(
        f"""\
server:
    listen: 127.0.0.1@{port}
    rundir: {tmp_path}
database:
    storage: {tmp_path}
log:
  - target: stderr
    any: warning
acl:
  - id: operator
    address: 127.0.0.1
    action: update
zone:
  - domain: {PARENT}
    file: {tmp_path}/{PARENT}.zone
    acl: operator
    zonefile-sync: -1
"""
    )
    log = tmp_path / "knotd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [KNOTD, "--config", str(tmp_path / "knot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    server = Knot(port)
    try:
        _wait_until_it_answers(server, process, log)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_it_answers(server: Knot, process: subprocess.Popen[bytes], log: Path) -> None:
    query = dns.message.make_query(f"{PARENT}.", "SOA")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"knotd exited: {log.read_text()}")
        try:
            answer = dns.query.udp(query, "127.0.0.1", timeout=0.2, port=server.port)
        except (dns.exception.Timeout, OSError):
            continue
        if answer.rcode() == dns.rcode.NOERROR and answer.answer:
            return
    raise AssertionError("knotd did not answer within 20 s")
