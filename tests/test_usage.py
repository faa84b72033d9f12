"""The sidecar's usage counters (`sidecar.usage`): what it counts from an access log line
and how `/metrics` shows it; a real HAProxy's lines in tests/e2e/test_gateway_usage.py."""

from __future__ import annotations

import io

from opstrace.gateway.haproxy import ACCESS_LOG_FIELDS
from sidecar import usage


def line(**values: str) -> str:
    """An access log line as the gateway writes it, every field `-` unless given."""
    return " ".join(f"{name}={values.get(name, '-')}" for name, _ in ACCESS_LOG_FIELDS)


ACCEPTED = line(
    tenant="prod", credential="prod/agent", status="200", bytes_in="1200", bytes_out="40"
)


def test_the_counted_fields_are_fields_of_the_access_log() -> None:
    logged = {name for name, _ in ACCESS_LOG_FIELDS}
    assert {*usage.LABELS, "status", "bytes_in", "bytes_out"} <= logged


def test_a_line_counts_one_request_under_its_status_and_its_bytes_each_way() -> None:
    counters = usage.Usage()

    assert counters.count(ACCEPTED)
    assert counters.count(ACCEPTED)

    text = counters.exposition()
    labels = 'tenant="prod",credential="prod/agent"'
    assert f'opstrace_gateway_requests_total{{{labels},code="200"}} 2' in text.splitlines()
    assert f"opstrace_gateway_received_bytes_total{{{labels}}} 2400" in text.splitlines()
    assert f"opstrace_gateway_sent_bytes_total{{{labels}}} 80" in text.splitlines()


def test_each_metric_is_declared_a_counter_once() -> None:
    text = usage.Usage().exposition()
    for name, _ in usage.METRICS:
        assert text.splitlines().count(f"# TYPE {name} counter") == 1


def test_a_line_of_another_listener_or_cut_short_counts_nothing() -> None:
    counters = usage.Usage()
    httplog = (
        "127.0.0.1:4242 [07/Dec/2026:03:00:00.000] plain_http plain_http/<NOSRV> 0/-1 403 "
        '"GET / HTTP/1.1"'
    )

    assert not counters.count(httplog)
    assert not counters.count(ACCEPTED[: ACCEPTED.index("bytes_in")])
    assert not counters.count(ACCEPTED.replace("bytes_in=1200", "bytes_in=-"))
    assert "{" not in counters.exposition()


def test_a_label_value_is_escaped_as_the_text_format_requires() -> None:
    counters = usage.Usage()
    counters.count(
        line(tenant="prod", credential='a"b\\c', status="401", bytes_in="1", bytes_out="1")
    )

    assert 'credential="a\\"b\\\\c"' in counters.exposition()


def test_an_octet_counted_stream_gives_each_line_whole() -> None:
    stream = io.BytesIO(b"5 hello3 abc12 tenant=a b=c")

    assert list(usage.frames(stream)) == [b"hello", b"abc", b"tenant=a b=c"]


def test_a_stream_cut_mid_line_or_out_of_frame_ends_without_a_partial_line() -> None:
    assert list(usage.frames(io.BytesIO(b"5 hello9 cut"))) == [b"hello"]
    assert list(usage.frames(io.BytesIO(b"5 hello\n4 abcd"))) == [b"hello"]
    assert list(usage.frames(io.BytesIO(b"1234567 x"))) == []
    assert list(usage.frames(io.BytesIO(b" 5 hello"))) == []
