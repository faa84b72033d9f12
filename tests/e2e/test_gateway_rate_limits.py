"""Per-credential rate limits in a real HAProxy: a limited token gets 429 with Retry-After
beyond its requests per second, and nothing of those reaches an upstream; another token is
not slowed by it. Bounded loops on one keep-alive connection, no timing assertion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opstrace.gateway.haproxy import RATE_LIMITED_BODY
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    NEEDS_HAPROXY,
    Gateway,
    Recorder,
    Response,
    Signer,
    TLSConnection,
    bearer,
    host,
    running_gateway,
    send,
)

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY]

LIMIT = 3
"""Requests per second of the limited credential."""
ATTEMPTS = 200
"""At most this many requests in a row: far more than the limit in any second on which
they are sent back to back, on one connection."""


@pytest.fixture(scope="module")
def limited_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    trusted: dict[str, str],
    bindings: dict[str, str],
    signer: Signer,
    upstreams: dict[str, Recorder],
) -> Iterator[Gateway]:
    directory: Path = tmp_path_factory.mktemp("rate") / "config"
    urls = {backend: recorder.url for backend, recorder in upstreams.items()}
    with running_gateway(
        directory, trusted, urls, bindings=bindings, rate_limits={signer.kid: LIMIT}
    ) as running:
        yield running


def until_refused(gateway: Gateway, token: str) -> list[Response]:
    """Requests back to back on one connection until the first refusal, or `ATTEMPTS`."""
    connection = TLSConnection(gateway.port, host("cortex", "prod"))
    answers: list[Response] = []
    try:
        while len(answers) < ATTEMPTS and (not answers or answers[-1].status == 200):
            answers.append(
                send(connection, host("cortex", "prod"), "/api/v1/labels", bearer(token))
            )
    finally:
        connection.close()
    return answers


def test_a_limited_token_gets_429_with_retry_after_beyond_its_rate(
    limited_gateway: Gateway, signer: Signer, upstreams: dict[str, Recorder]
) -> None:
    before = len(upstreams["cortex_query"].requests)

    answers = until_refused(limited_gateway, signer.token("prod"))

    *accepted, refused = answers
    assert refused.status == 429, refused
    assert refused.body == f"{RATE_LIMITED_BODY}{LIMIT} requests per second"
    assert refused.header("Retry-After") == "1"
    assert len(accepted) >= LIMIT
    assert len(upstreams["cortex_query"].requests) - before == len(accepted)


def test_a_token_without_a_limit_is_not_slowed(
    limited_gateway: Gateway, minted: dict[str, Minted]
) -> None:
    answers = until_refused(limited_gateway, minted["prod"].token)

    assert [a.status for a in answers] == [200] * ATTEMPTS
