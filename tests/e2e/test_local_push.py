"""The local instance's push body (tools/local/remote_write.py) is a remote write that a
real Cortex accepts and serves back: what the printed push line sends through the gateway
(tests/engine/test_quickstart.py runs the line itself)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.backends import CORTEX_PROMETHEUS_PREFIX, NEEDS_CORTEX, Cortex, cortex
from tests.e2e.harness import wait_until
from tools.local import remote_write

pytestmark = [pytest.mark.e2e, NEEDS_CORTEX]


def push(target: Cortex, body: bytes, tenant: str) -> tuple[int, str]:
    headers = dict(header.split(": ", 1) for header in remote_write.CONTENT_HEADERS)
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
    try:
        connection.request(
            "POST", "/api/v1/push", body=body, headers={**headers, "X-Scope-OrgID": tenant}
        )
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def series(target: Cortex, tenant: str, promql: str) -> list[dict[str, object]]:
    path = f"{CORTEX_PROMETHEUS_PREFIX}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    status, text = target.get(path, tenant)
    assert status == 200, text
    return list(json.loads(text)["data"]["result"])


def served(target: Cortex, tenant: str, promql: str) -> list[dict[str, object]]:
    """The instant query's result once it has one: a Cortex that has just started answered
    the first instant queries after a push with none (its series and range APIs had it)."""
    wait_until(lambda: bool(series(target, tenant, promql)), f"{promql} to be served")
    return series(target, tenant, promql)


def test_the_push_body_is_accepted_and_its_sample_queried_back(tmp_path: Path) -> None:
    now = time.time()
    with cortex(tmp_path / "cortex") as target:
        assert push(target, remote_write.body(now), "prod") == (200, "")
        (found,) = served(target, "prod", remote_write.SERIES)
    assert found["metric"] == {"__name__": remote_write.SERIES, remote_write.LABEL: "curl"}
    # Whole seconds: the value reads back as the Unix time of the push.
    assert float(found["value"][1]) == int(now)  # type: ignore[index]


def test_a_body_longer_than_a_one_byte_literal_length_is_valid_snappy(tmp_path: Path) -> None:
    # Snappy gives a literal's length in one byte up to 256 bytes, in two beyond.
    labels = {"__name__": "long_labels", "a": "x" * 200, "b": "y" * 200}
    now = int(time.time())
    body = remote_write.snappy_block(remote_write.write_request(labels, 7.0, now * 1000))
    with cortex(tmp_path / "cortex") as target:
        assert push(target, body, "prod") == (200, "")
        (found,) = served(target, "prod", "long_labels")
    assert found["metric"] == labels
