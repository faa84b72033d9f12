"""Key and certificate changes reach a running HAProxy without a restart and without a
failed request: the rendered reload script runs for real beside it, as the pod's
sidecar does, while a bounded request loop keeps going.

The files change the way the kubelet changes a projected volume (one atomic swap); the
times from that swap to the effect are measured and printed (docs/gateway.md quotes
them).
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.gateway.reload import RELOAD_POLL_SECONDS
from components.rules import data_token, keys
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    TENANTS,
    Recorder,
    Signer,
    TLSConnection,
    bearer,
    host,
    peer_certificate,
    request,
    running_gateway,
    send,
    wait_until,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

PROD_CORTEX = host("cortex", "prod")
PATH = "/api/v1/query?query=up"
LOAD_SECONDS_MAX = 120.0
"""The request loop stops by itself after this long, whatever happens to the test."""
EFFECT_SECONDS_MAX = 60.0
"""A change must show within this long of the files changing."""
ANSWERS_AROUND_CHANGES = 50
"""Valid requests answered before the first change and after the last one."""


@dataclass
class Load:
    """Client threads sending valid requests until stopped: some on one keep-alive
    connection each (reconnecting when the server says `Connection: close`), some on a
    new connection per request. Every answer but 200, and every error, is a failure."""

    port: int
    token: str
    keep_alive: int = 2
    new_connections: int = 2
    answered: int = 0
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [
            threading.Thread(target=self._loop, args=(reuse,), daemon=True)
            for reuse in [True] * self.keep_alive + [False] * self.new_connections
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=30)

    def _loop(self, reuse: bool) -> None:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        kind = "keep-alive" if reuse else "new"
        connection = TLSConnection(self.port, PROD_CORTEX)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = send(connection, PROD_CORTEX, PATH, bearer(self.token))
                except (OSError, http.client.HTTPException) as error:
                    self._count(f"{kind} connection: {error!r}")
                    connection.close()
                    continue
                self._count(
                    None if response.status == 200 else f"{response.status} {response.body}"
                )
                if response.header("Connection") == "close":
                    with self._lock:
                        self.reconnects += 1
                if not reuse:
                    connection.close()  # the next request opens a new one
        finally:
            connection.close()

    def _count(self, failure: str | None) -> None:
        with self._lock:
            if failure is None:
                self.answered += 1
            else:
                self.failures.append(failure)

    def wait_for_answers(self, count: int) -> None:
        """Wait until `count` more valid requests have been answered."""
        target = self.answered + count
        wait_until(lambda: self.answered >= target, f"{count} answered requests", LOAD_SECONDS_MAX)


def reloads_by(script_log: Path) -> int:
    """How many reloads the reload script has made."""
    return script_log.read_text().count("HAProxy reloaded")


def signalled_masters(script_log: Path) -> list[int]:
    """The PID of the master each of the script's reloads was sent to."""
    return [
        int(pid)
        for pid in re.findall(
            r"HAProxy reloaded \(SIGUSR2 to master (\d+)\)", script_log.read_text()
        )
    ]


def seconds_until(condition: Callable[[], bool], what: str) -> float:
    """Seconds from now until `condition` holds (polled every 50 ms)."""
    start = time.monotonic()
    wait_until(condition, what, timeout=EFFECT_SECONDS_MAX)
    return time.monotonic() - start


@pytest.fixture
def urls(upstreams: dict[str, Recorder]) -> dict[str, str]:
    return {backend: recorder.url for backend, recorder in upstreams.items()}


def test_keys_and_a_certificate_change_under_load_without_a_failed_request(
    tmp_path: Path, urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kept, removed, added = Signer.generate(), Signer.generate(), Signer.generate()
    key_set = keys.key_set([kept.public_pem, removed.public_pem])

    def bound(trusted: dict[str, str]) -> dict[str, str]:
        return dict.fromkeys(trusted, "prod")

    removed_token, added_token = removed.token("prod"), added.token("prod")

    def status(token: str) -> int:
        return request(gateway.port, PROD_CORTEX, PATH, bearer(token)).status

    with (
        running_gateway(tmp_path / "config", key_set, urls, bindings=bound(key_set)) as gateway,
        gateway.reloading_on_change() as script_log,  # the pod's default interval
        Load(gateway.port, kept.token("prod")).running() as load,
    ):
        assert status(removed_token) == 200
        assert status(added_token) == 401
        load.wait_for_answers(ANSWERS_AROUND_CHANGES)  # the loop is up to speed

        with_added = {**key_set, added.kid: added.public_pem}
        gateway.render(with_added, bound(with_added))
        added_after = seconds_until(lambda: status(added_token) == 200, "the new key to work")

        # A client holding a keep-alive connection with the token that is about to be
        # revoked: its next request after the reload is the old worker's last.
        holder = TLSConnection(gateway.port, PROD_CORTEX)
        assert send(holder, PROD_CORTEX, PATH, bearer(removed_token)).status == 200
        del with_added[removed.kid]
        loads = gateway.loads()
        gateway.render(with_added, bound(with_added))
        start = time.monotonic()
        revoked_after = seconds_until(lambda: status(removed_token) == 401, "the revocation")
        # The old worker has stopped listening: the holder's next request is its last.
        gateway.wait_reloaded(loads)
        held: list[int] = []

        def held_refused() -> bool:
            held.append(send(holder, PROD_CORTEX, PATH, bearer(removed_token)).status)
            return held[-1] == 401

        wait_until(held_refused, "the revocation on the open connection", EFFECT_SECONDS_MAX)
        held_after = time.monotonic() - start
        holder.close()

        serial = peer_certificate(gateway.port, PROD_CORTEX).serial_number
        renewed = gateway.replace_certificate("prod")
        assert renewed.serial_number != serial
        certificate_after = seconds_until(
            lambda: (
                peer_certificate(gateway.port, PROD_CORTEX).serial_number == renewed.serial_number
            ),
            "the renewed certificate",
        )
        load.wait_for_answers(ANSWERS_AROUND_CHANGES)  # requests go on after the last reload
        revoked = request(gateway.port, PROD_CORTEX, PATH, bearer(removed_token))
        wait_until(lambda: reloads_by(script_log) == 3, "the script's third reload")

    reloads = reloads_by(script_log)
    with capsys.disabled():
        print(
            f"\n[{gateway.log_text().count('Loading success.')} loads, {reloads} by the script,"
            f" poll every {RELOAD_POLL_SECONDS}s] {load.answered} valid requests answered, "
            f"{len(load.failures)} failed, {load.reconnects} told to reconnect; after the "
            f"files changed: key added {added_after:.2f}s, key revoked {revoked_after:.2f}s "
            f"(open keep-alive connection {held_after:.2f}s, answers {held}), certificate "
            f"replaced {certificate_after:.2f}s"
        )
    assert load.failures == []
    assert (revoked.status, revoked.body) == (401, data_token.BAD_TOKEN)
    assert held == [200, 401]


def test_a_new_tenant_is_served_once_its_certificate_exists_and_not_before(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    signer = Signer.generate()
    key_set = keys.key_set([signer.public_pem])
    newcomer = "newcomer"
    with (
        running_gateway(tmp_path / "config", key_set, urls) as gateway,
        gateway.reloading_on_change(1) as script_log,
    ):
        loads = gateway.loads()
        # The rendered files name the new tenant's certificate before cert-manager has
        # issued it: `haproxy -c` fails, nothing is reloaded, everyone else is served.
        gateway.settings = dataclasses.replace(gateway.settings, tenants=(*TENANTS, newcomer))
        gateway.render(key_set)
        wait_until(
            lambda: "fail 'haproxy -c'" in script_log.read_text(),
            "the script to refuse the files",
            EFFECT_SECONDS_MAX,
        )
        assert gateway.loads() == loads
        assert request(gateway.port, PROD_CORTEX, PATH, bearer(signer.token("prod"))).status == 200
        with pytest.raises(ssl.SSLError):
            peer_certificate(gateway.port, host("cortex", newcomer))

        gateway.replace_certificate(newcomer)
        gateway.wait_reloaded(loads, EFFECT_SECONDS_MAX)
        newcomers = request(
            gateway.port,
            host("loki", newcomer),
            "/loki/api/v1/labels",
            bearer(signer.token(newcomer)),
        )
    assert newcomers.status == 200


def test_the_script_signals_only_the_master_of_its_own_configuration(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    first, second = Signer.generate(), Signer.generate()
    key_set = keys.key_set([first.public_pem])
    with (
        running_gateway(tmp_path / "other", key_set, urls) as other,
        running_gateway(tmp_path / "config", key_set, urls) as gateway,
        gateway.reloading_on_change(1) as script_log,
    ):
        assert gateway.process is not None
        other_loads, loads = other.loads(), gateway.loads()
        gateway.render(keys.key_set([first.public_pem, second.public_pem]))
        wait_until(lambda: reloads_by(script_log) == 1, "the script's reload", EFFECT_SECONDS_MAX)
        gateway.wait_reloaded(loads, EFFECT_SECONDS_MAX)
        token = bearer(second.token("prod"))
        served = request(gateway.port, PROD_CORTEX, PATH, token).status
        elsewhere = request(other.port, PROD_CORTEX, PATH, token).status
    # The script names the one master it signalled: the other configuration's master was
    # a candidate (an `haproxy -W` master started first) and must not be chosen.
    assert signalled_masters(script_log) == [gateway.process.pid]
    assert other.loads() == other_loads
    assert (served, elsewhere) == (200, 401)
