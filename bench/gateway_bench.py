"""What token authentication costs in the gateway: wrk against HAProxy on loopback.

    python -m bench.gateway_bench [--seconds 5] [--connections 32] [--threads 2]

Three scenarios against the same HAProxy binary, each run for a bounded time in
interleaved rounds (default 3 x 5 s each, median reported):
  (a) pass-through: no authentication, same logging and header rewriting;
  (b) the rendered gateway with 1 trusted key;
  (c) the rendered gateway with 1,000 trusted keys and 1,000 tenants.
The upstream is another HAProxy answering a static `http-request return`, so that it is
never the bottleneck. Prints requests/s, p50 and p99 latency, and the ratios b/a, c/b.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from components.rules import keys
from components.rules.gateway_config import HAPROXY_PROLOGUE
from components.rules.keys import stand_in_public_key
from tests.e2e.harness import (
    HAPROXY,
    Signer,
    bearer,
    free_port,
    host,
    request,
    running_gateway,
    wait_until,
)

WRK: Final = shutil.which("wrk")
PATH: Final = "/api/v1/push"
_UNIT_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, choices=range(1, 61))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 11))
    args = parser.parse_args(argv)
    if HAPROXY is None or WRK is None:
        print("error: needs haproxy and wrk (apt-get install haproxy wrk)", file=sys.stderr)
        return 2
    wrk_options = [f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s"]

    signer = Signer.generate()
    token = signer.token("t0")
    one_key = keys.key_set([signer.public_pem])
    many_keys = keys.key_set(
        [signer.public_pem, *(stand_in_public_key(f"bench-{i}") for i in range(999))]
    )
    many_tenants = tuple(f"t{i}" for i in range(1000))

    scenarios: list[tuple[str, int, dict[str, str]]] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        upstream = stack.enter_context(static_upstream(root / "upstream"))
        baseline = stack.enter_context(pass_through(root / "baseline", upstream))
        one = stack.enter_context(
            running_gateway(root / "one", one_key, upstream, upstream, ("t0",))
        )
        many = stack.enter_context(
            running_gateway(root / "many", many_keys, upstream, upstream, many_tenants)
        )
        for gateway in (one, many):
            _check_accepted(gateway.port, token)
        scenarios = [
            ("a pass-through", baseline, {}),
            ("b 1 key", one.port, bearer(token)),
            ("c 1,000 keys", many.port, bearer(token)),
        ]
        # Interleaved rounds, median per scenario: loopback figures on a shared machine
        # drift, and a drift should not land on one scenario only.
        runs: dict[str, list[Result]] = {name: [] for name, _, _ in scenarios}
        for _ in range(args.rounds):
            for name, port, headers in scenarios:
                runs[name].append(wrk(name, port, headers, wrk_options))
    results = [_median(name, measured) for name, measured in runs.items()]

    print(f"wrk {' '.join(wrk_options)} on 127.0.0.1, GET {PATH}, median of {args.rounds} rounds")
    print(f"{'run':<16}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for r in results:
        print(
            f"{r.name:<16}{r.requests_per_second:>12.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            f"{r.non_2xx:>10}"
        )
    a, b, c = results
    print(f"b/a throughput {b.requests_per_second / a.requests_per_second:.2f}")
    print(f"c/b throughput {c.requests_per_second / b.requests_per_second:.2f}")
    print(f"b/a p99 latency {b.p99_ms / a.p99_ms:.2f}, c/b p99 latency {c.p99_ms / b.p99_ms:.2f}")
    return 0 if all(r.non_2xx == 0 for r in results) else 1


def wrk(name: str, port: int, headers: dict[str, str], options: list[str]) -> Result:
    assert WRK is not None
    header_args = [f"-H{k}: {v}" for k, v in {"Host": host("cortex", "t0"), **headers}.items()]
    output = subprocess.run(
        [WRK, *options, "--latency", *header_args, f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not (rate and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return Result(
        name,
        float(rate[1]),
        float(p50[1]) * _UNIT_MS[p50[2]],
        float(p99[1]) * _UNIT_MS[p99[2]],
        int(non_2xx[1]) if non_2xx else 0,
    )


def _median(name: str, runs: list[Result]) -> Result:
    return Result(
        name,
        statistics.median(r.requests_per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.non_2xx for r in runs),
    )


def _check_accepted(port: int, token: str) -> None:
    response = request(port, host("cortex", "t0"), PATH, bearer(token))
    assert response.status == 200, response


@contextmanager
def haproxy(directory: Path, config: str, port: int) -> Iterator[int]:
    """HAProxy with `config`, logs discarded like a busy pod's would be shipped away."""
    assert HAPROXY is not None
    directory.mkdir()
    (directory / "haproxy.cfg").write_text(config, encoding="utf-8")
    process = subprocess.Popen(
        [HAPROXY, "-W", "-db", "-f", str(directory / "haproxy.cfg")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), f"haproxy on port {port}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        request(port, host("cortex", "t0"), "/")
    except OSError:
        return False
    return True


@contextmanager
def static_upstream(directory: Path) -> Iterator[str]:
    port = free_port()
    config = f"""\
global
    maxconn 4096
defaults
    mode http
    timeout client 60s
frontend upstream
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string "ok"
"""
    with haproxy(directory, config, port):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def pass_through(directory: Path, upstream: str) -> Iterator[int]:
    port = free_port()
    config = f"""{HAPROXY_PROLOGUE}
frontend data_api
    bind 127.0.0.1:{port}
    http-request set-header x-scope-orgid t0
    default_backend cortex
backend cortex
    server cortex {upstream.removeprefix("http://")}
"""
    with haproxy(directory, config, port):
        yield port


if __name__ == "__main__":
    sys.exit(main())
