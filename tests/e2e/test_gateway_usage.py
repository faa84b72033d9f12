"""The usage counters from a real HAProxy's access log lines: each request the gateway
answers is counted by tenant, credential and status in the sidecar's counters
(`sidecar.usage`, what `/metrics` serves), with the bytes each way; refusals included,
under the credential they were made with or `-` where none is known."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import usage
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    Signer,
    bearer,
    gateway_settings,
    host,
    request,
    started_gateway,
    wait_until,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

REQUESTS = "opstrace_gateway_requests_total"


@pytest.fixture(scope="module")
def counters() -> usage.Usage:
    return usage.Usage()


@pytest.fixture(scope="module")
def counted_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    bindings: dict[str, str],
    credentials: dict[str, str],
    upstreams: dict[str, Recorder],
    counters: usage.Usage,
) -> Iterator[Gateway]:
    receiver = usage.listen(("127.0.0.1", 0))
    threading.Thread(target=usage.receive, args=(receiver, counters), daemon=True).start()
    directory: Path = tmp_path_factory.mktemp("usage") / "config"
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    settings = dataclasses.replace(
        gateway_settings(directory, urls), usage_log=f"127.0.0.1:{receiver.getsockname()[1]}"
    )
    with started_gateway(settings, trusted, bindings=bindings, credentials=credentials) as running:
        yield running
    receiver.close()


def series(counters: usage.Usage) -> dict[str, int]:
    """`name{labels}` -> value of every series `/metrics` would serve now."""
    return {
        key: int(value)
        for key, value in re.findall(r"^(\w+\{[^}]*\}) (\d+)$", counters.exposition(), re.M)
    }


def requests_counted(counters: usage.Usage) -> int:
    return sum(v for k, v in series(counters).items() if k.startswith(REQUESTS + "{"))


def test_each_answer_is_counted_by_tenant_credential_and_status(
    counted_gateway: Gateway, counters: usage.Usage, minted: dict[str, Minted], signer: Signer
) -> None:
    before = requests_counted(counters)
    prod = host("cortex", "prod")
    request(counted_gateway.port, prod, "/api/v1/labels", bearer(minted["prod"].token))
    request(counted_gateway.port, prod, "/api/v1/labels", bearer(minted["prod"].token))
    request(counted_gateway.port, prod, "/api/v1/labels")  # no token: 401
    request(
        counted_gateway.port,
        prod,
        "/api/v1/push",
        bearer(signer.token("prod", scope="metrics:read")),
        method="POST",
        body=b"x" * 100,
    )  # 403: lacks metrics:write

    wait_until(lambda: requests_counted(counters) == before + 4, "four requests counted")

    counted = series(counters)
    assert counted[f'{REQUESTS}{{tenant="prod",credential="prod/default",code="200"}}'] == 2
    assert counted[f'{REQUESTS}{{tenant="prod",credential="-",code="401"}}'] == 1
    assert counted[f'{REQUESTS}{{tenant="prod",credential="trustedKeys[0]",code="403"}}'] == 1
    received = 'opstrace_gateway_received_bytes_total{tenant="prod",credential="trustedKeys[0]"}'
    assert counted[received] > 100
    sent = 'opstrace_gateway_sent_bytes_total{tenant="prod",credential="prod/default"}'
    assert counted[sent] > 0


def test_a_line_of_no_known_host_is_counted_under_no_tenant(
    counted_gateway: Gateway, counters: usage.Usage
) -> None:
    key = f'{REQUESTS}{{tenant="-",credential="-",code="404"}}'
    before = series(counters).get(key, 0)

    nobody = host("cortex", "nobody")
    request(counted_gateway.port, nobody, "/api/v1/labels", sni=host("cortex", "prod"))

    wait_until(lambda: series(counters).get(key, 0) == before + 1, "the 404 counted")
