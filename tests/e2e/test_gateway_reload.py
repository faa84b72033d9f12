"""Key, tenant and certificate changes reach a running gateway pod without a restart and
without a failed request: the pod's `gateway-sync` sidecar and HAProxy run for real (as
the component renders them) against the local cluster's API server, the objects change
through the API server as `pulumi up` changes them, and a bounded request loop keeps
going.

The times from the API server's acceptance of a change to its effect at the gateway are
measured and printed (docs/gateway.md quotes them).
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from opstrace import data_token, keys
from opstrace.gateway import files as gateway_files
from opstrace.gateway.settings import HAPROXY_CONFIG
from sidecar import contract, kube_client
from tests.e2e.harness import (
    HAPROXY,
    NEEDS_HAPROXY,
    TENANTS,
    Recorder,
    Signer,
    TLSConnection,
    bearer,
    host,
    peer_certificate,
    request,
    send,
    wait_until,
)
from tests.e2e.pod import CODE, CONFIG_MAPS, GatewayPod, running_pod
from tools.cluster import read_ports

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY, pytest.mark.usefixtures("cluster")]

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


def seconds_until(condition: Callable[[], bool], what: str) -> float:
    """Seconds from now until `condition` holds (polled every 50 ms)."""
    start = time.monotonic()
    wait_until(condition, what, timeout=EFFECT_SECONDS_MAX)
    return time.monotonic() - start


def haproxy_version() -> tuple[int, int]:
    assert HAPROXY is not None
    banner = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"version (\d+)\.(\d+)", banner)
    assert found is not None, banner
    return int(found[1]), int(found[2])


@pytest.fixture
def urls(upstreams: dict[str, Recorder]) -> dict[str, str]:
    return {backend: recorder.url for backend, recorder in upstreams.items()}


def bound(trusted: dict[str, str]) -> dict[str, str]:
    return dict.fromkeys(trusted, "prod")


def status_of(pod: GatewayPod, token: str) -> int:
    return request(pod.port, PROD_CORTEX, PATH, bearer(token)).status


def test_keys_and_a_certificate_change_under_load_without_a_failed_request(
    urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kept, removed, added = Signer.generate(), Signer.generate(), Signer.generate()
    key_set = keys.key_set([kept.public_pem, removed.public_pem])
    removed_token, added_token = removed.token("prod"), added.token("prod")

    with (
        running_pod(urls, key_set, bindings=bound(key_set)) as pod,
        Load(pod.port, kept.token("prod")).running() as load,
    ):
        assert pod.local is not None
        master = pod.local.supervisor.pid("haproxy")
        assert status_of(pod, removed_token) == 200
        assert status_of(pod, added_token) == 401
        load.wait_for_answers(ANSWERS_AROUND_CHANGES)  # the loop is up to speed

        with_added = {**key_set, added.kid: added.public_pem}
        pod.publish(with_added, bound(with_added))
        added_after = seconds_until(lambda: status_of(pod, added_token) == 200, "the new key")

        # A client holding a keep-alive connection with the token that is about to be
        # revoked: its next request after the reload is the old worker's last.
        holder = TLSConnection(pod.port, PROD_CORTEX)
        assert send(holder, PROD_CORTEX, PATH, bearer(removed_token)).status == 200
        del with_added[removed.kid]
        loads = pod.loads()
        pod.publish(with_added, bound(with_added))
        start = time.monotonic()
        revoked_after = seconds_until(lambda: status_of(pod, removed_token) == 401, "revocation")
        reported_after = seconds_until(lambda: pod.serves(pod.checksum), "the Lease's report")
        pod.wait_reloaded(loads, EFFECT_SECONDS_MAX)
        held: list[int] = []

        def held_refused() -> bool:
            held.append(send(holder, PROD_CORTEX, PATH, bearer(removed_token)).status)
            return held[-1] == 401

        wait_until(held_refused, "the revocation on the open connection", EFFECT_SECONDS_MAX)
        held_after = time.monotonic() - start
        holder.close()

        serial = peer_certificate(pod.port, PROD_CORTEX).serial_number
        renewed = pod.issue("prod")
        assert renewed.serial_number != serial
        certificate_after = seconds_until(
            lambda: peer_certificate(pod.port, PROD_CORTEX).serial_number == renewed.serial_number,
            "the renewed certificate",
        )
        load.wait_for_answers(ANSWERS_AROUND_CHANGES)  # requests go on after the last reload
        revoked = request(pod.port, PROD_CORTEX, PATH, bearer(removed_token))
        still_master = pod.local.supervisor.pid("haproxy")
        loaded = pod.loads()

    with capsys.disabled():
        print(
            f"\n[{loaded} loads, by the sidecar] {load.answered} valid requests "
            f"answered, {len(load.failures)} failed, {load.reconnects} told to reconnect; "
            f"after the API server took the change: key added {added_after:.2f}s, key "
            f"revoked {revoked_after:.2f}s (reported in the Lease {reported_after:.2f}s "
            f"later, open keep-alive connection {held_after:.2f}s, answers {held}), "
            f"certificate replaced {certificate_after:.2f}s"
        )
    assert load.failures == []
    assert (revoked.status, revoked.body) == (401, data_token.BAD_TOKEN)
    assert held == [200, 401]
    assert still_master == master  # reloaded, never restarted


def test_a_new_tenant_waits_for_its_certificate_alone_and_a_revocation_beside_it_does_not(
    urls: dict[str, str],
) -> None:
    kept, revoked = Signer.generate(), Signer.generate()
    key_set = keys.key_set([kept.public_pem, revoked.public_pem])
    newcomer = "newcomer"
    with running_pod(urls, key_set) as pod:
        assert status_of(pod, revoked.token("prod")) == 200
        loads = pod.loads()
        # One `up`: a tenant added (cert-manager issues its certificate later) and a key
        # revoked. The render is served at once, the new tenant's host without a
        # certificate until it is issued.
        pod.settings = dataclasses.replace(pod.settings, tenants=(*TENANTS, newcomer))
        pod.publish(keys.key_set([kept.public_pem]))
        wait_until(lambda: pod.serves(pod.checksum), "the Lease's report", EFFECT_SECONDS_MAX)
        pod.wait_reloaded(loads, EFFECT_SECONDS_MAX)
        waiting = pod.lease()
        refused = request(pod.port, PROD_CORTEX, PATH, bearer(revoked.token("prod")))
        assert status_of(pod, kept.token("prod")) == 200
        with pytest.raises(ssl.SSLError):
            peer_certificate(pod.port, host("cortex", newcomer))

        loads = pod.loads()
        pod.issue(newcomer)
        pod.wait_reloaded(loads, EFFECT_SECONDS_MAX)
        newcomers = request(
            pod.port, host("loki", newcomer), "/loki/api/v1/labels", bearer(kept.token(newcomer))
        )
        wait_until(
            lambda: "not issued" not in pod.lease().get(contract.MESSAGE_ANNOTATION, ""),
            "the Lease's report of the whole set",
            EFFECT_SECONDS_MAX,
        )
    assert (refused.status, refused.body) == (401, data_token.BAD_TOKEN)
    assert waiting[contract.STATE_ANNOTATION] == "serving"
    assert waiting[contract.MESSAGE_ANNOTATION].endswith(
        f"; the certificates of {newcomer!r} are not issued yet"
    )
    assert newcomers.status == 200


def test_files_haproxy_refuses_leave_the_last_good_ones_serving(urls: dict[str, str]) -> None:
    signer = Signer.generate()
    key_set = keys.key_set([signer.public_pem])
    with running_pod(urls, key_set) as pod:
        assert pod.local is not None
        good, current = pod.checksum, pod.local.mounts["/run/gateway"] / contract.CURRENT
        serving = os.readlink(current)
        parts = gateway_files.render_gateway_parts(pod.settings, key_set)
        config = parts.base[HAPROXY_CONFIG] + "    no-such-keyword\n"
        pod.publish_parts(dataclasses.replace(parts, base={**parts.base, HAPROXY_CONFIG: config}))
        wait_until(
            lambda: pod.lease().get(contract.STATE_ANNOTATION) == "failed",
            "the sidecar to report the refusal",
            EFFECT_SECONDS_MAX,
        )
        refused = pod.lease()
        answered = status_of(pod, signer.token("prod"))
        link = os.readlink(current)
    assert refused[contract.SERVED_ANNOTATION] == good
    message = refused[contract.MESSAGE_ANNOTATION]
    assert message.startswith("HAProxy refused the files: ")
    # 2.7 and later answer the master CLI's reload with the load's alerts; 2.6 with nothing.
    assert "no-such-keyword" in message or haproxy_version() < (2, 7)
    assert answered == 200
    assert link == serving  # what HAProxy reads on its next start is what it serves


def test_the_sidecar_reads_only_what_its_role_names(urls: dict[str, str]) -> None:
    key_set = keys.key_set([Signer.generate().public_pem])
    with running_pod(urls, key_set) as pod:
        assert pod.local is not None
        own = kube_client.Api.in_cluster(
            pod.local.mounts["/var/run/secrets/kubernetes.io/serviceaccount"],
            {
                "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(read_ports().apiserver),
            },
        )
        configmaps = f"/api/v1/namespaces/{pod.namespace}/configmaps"
        assert own.get(f"{configmaps}/{CONFIG_MAPS[0]}") is not None
        refused = []
        for method, path in [
            ("GET", f"{configmaps}/{CODE}"),
            ("GET", configmaps),
            ("GET", "/api/v1/namespaces/default/secrets"),
            ("GET", f"/api/v1/namespaces/{pod.namespace}/pods"),
            ("DELETE", f"{configmaps}/{CONFIG_MAPS[0]}"),
        ]:
            with pytest.raises(kube_client.ApiError) as raised:
                own.request(method, path)
            refused.append((method, path, raised.value.status))
    assert all(status == 403 for _, _, status in refused), refused
