"""What token authentication costs in the gateway: wrk over HTTPS against HAProxy on loopback.

    python -m bench.gateway_bench [--seconds 5] [--connections 32] [--threads 2] [--rounds 3]
    python -m bench.gateway_bench --smoke   # 1 round of 1 s, 200 fresh tokens: that it runs

Seven scenarios against the same HAProxy binary, all over TLS with keep-alive (wrk keeps
its connections open; SNI is the tenant host), each run for a bounded time in
interleaved rounds (default 3 x 5 s each, median reported):
  (a) pass-through: TLS and the same logging (standard output and the usage ring) and
      header rewriting, no authentication;
  (b) the rendered gateway with 1 trusted key, the same token on every request (after the
      first, answered from the verified-token cache);
  (c) the rendered gateway with 1,000 keys bound to 1,000 tenants, the same token;
  (d) as (b), a different token on every request (twice as many tokens as the cache
      holds, in a cycle: every request is a cache miss and an RSA verification);
  (e) as (c), a different token on every request;
  (f) the rendered gateway with 10,000 keys bound to 2,500 tenants (four credentials
      each, issue 28's size), the same token;
  (g) as (f), a different token on every request.
Then, for the gateways of 1, 1,000 and 10,000 keys: the memory of their worker (resident
set), how long each took from rendering its files to serving, and how long a reload of
the full 10,000-key set takes (a signal to the master until the new worker alone serves).
The upstream is another HAProxy answering a static `http-request return`, so that it is
never the bottleneck. Every HAProxy formats its log lines and discards them (a log sink
costs both sides alike, and a pod's sink is not this machine's disk); the gateways also
forward them from their ring for the usage counters, as in a pod, to a socket that reads
and discards them (HAProxy's cost; the sidecar's is measured apart: the microseconds
its counters take per line); so does the pass-through, whose logging is the gateway's.
Prints requests/s, p50 and p99 latency, the gateway's CPU time per request (user +
system of its worker, from /proc), the ratios, then memory, start and reload times.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from opstrace import data_token, keys
from opstrace.gateway.haproxy import (
    HAPROXY_PROLOGUE,
    VERIFIED_TOKENS_SIZE,
    tls_bind,
    usage_logger,
    usage_ring,
)
from opstrace.gateway.settings import GatewaySettings
from opstrace.keys import stand_in_public_key
from sidecar import usage
from tests.e2e.harness import (
    HAPROXY,
    INSTANCE,
    Gateway,
    Signer,
    bearer,
    gateway_settings,
    host,
    one_upstream,
    plain_request,
    request,
    started_gateway,
    wait_until,
)
from tools.ports import free_port

WRK: Final = shutil.which("wrk")
PATH: Final = "/api/v1/push"
TENANT: Final = "t0"
MISS_TOKENS: Final = 2 * VERIFIED_TOKENS_SIZE
"""Tokens cycled through by the cache-miss scenarios: each comes back only after the
cache has had to forget it."""
HUGE_KEYS: Final = 10_000
"""The largest key set measured: issue 28's instance of 10,000 credentials."""
KEYS_PER_TENANT: Final = 4
"""Its credentials per tenant (an agent's, a reader's, a Grafana's and one more)."""
SMOKE_TOKENS: Final = 200
"""Fresh tokens of a smoke run: too few to defeat the cache, enough to exercise the path."""
_UNIT_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_CLOCK_TICKS: Final = 100  # USER_HZ on Linux

WRK_SCRIPT: Final = """\
-- Connect to 127.0.0.1 whatever the URL's host: the host stays the SNI and Host header.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup("127.0.0.1", service)
end

local tokens = {}
for line in io.lines("@TOKENS@") do tokens[#tokens + 1] = line end
local counter = 0
local next_offset = 0

function setup(thread)
   thread:set("offset", next_offset)
   next_offset = next_offset + math.floor(#tokens / 4)
end

function init(args)
   counter = offset
end

function request()
   counter = counter + 1
   local headers = {["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1]}
   return wrk.format("POST", nil, headers, "")
end
"""


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    non_2xx: int


@dataclass(frozen=True)
class Scenario:
    name: str
    port: int
    worker_pids: tuple[int, ...]
    tokens_file: Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, choices=range(1, 61))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 11))
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s, few fresh tokens")
    args = parser.parse_args(argv)
    fresh_count = MISS_TOKENS
    if args.smoke:
        args.seconds, args.rounds, fresh_count = 1, 1, SMOKE_TOKENS
    if HAPROXY is None or WRK is None:
        print("error: needs haproxy and wrk (apt-get install haproxy wrk)", file=sys.stderr)
        return 2
    wrk_options = [f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s"]

    signer = Signer.generate()
    one_key = keys.key_set([signer.public_pem])
    stand_ins = [stand_in_public_key(f"bench-{i}") for i in range(999)]
    many_keys = keys.key_set([signer.public_pem, *stand_ins])
    many_tenants = tuple(f"t{i}" for i in range(1000))
    many_bindings = {
        signer.kid: TENANT,
        **{keys.key_id(pem): f"t{i + 1}" for i, pem in enumerate(stand_ins)},
    }
    huge_stand_ins = [stand_in_public_key(f"bench-{i}") for i in range(HUGE_KEYS - 1)]
    huge_keys = keys.key_set([signer.public_pem, *huge_stand_ins])
    huge_tenants = tuple(f"t{i}" for i in range(HUGE_KEYS // KEYS_PER_TENANT))
    huge_bindings = {
        signer.kid: TENANT,
        **{
            keys.key_id(pem): huge_tenants[(i + 1) // KEYS_PER_TENANT]
            for i, pem in enumerate(huge_stand_ins)
        },
    }
    started = time.monotonic()
    fresh_tokens = sign_many(signer, fresh_count)
    print(f"signed {len(fresh_tokens)} tokens in {time.monotonic() - started:.0f} s")

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        repeated_file = root / "repeated.tokens"
        repeated_file.write_text(signer.token(TENANT) + "\n", encoding="ascii")
        fresh_file = root / "fresh.tokens"
        fresh_file.write_text("".join(f"{t}\n" for t in fresh_tokens), encoding="ascii")

        upstream = one_upstream(stack.enter_context(static_upstream(root / "upstream")))
        usage_log = stack.enter_context(discarding_sink())
        gateways = {
            key_count: timed(
                stack,
                counted_gateway(
                    root / f"keys-{len(trusted)}", trusted, upstream, tenants, bound, usage_log
                ),
            )
            for key_count, (trusted, tenants, bound) in {
                1: (one_key, (TENANT,), {}),
                1_000: (many_keys, many_tenants, many_bindings),
                HUGE_KEYS: (huge_keys, huge_tenants, huge_bindings),
            }.items()
        }
        one, many, huge = (gateways[count][0] for count in (1, 1_000, HUGE_KEYS))
        baseline = stack.enter_context(pass_through(root / "baseline", one.settings, upstream))
        for port in (one.port, many.port, huge.port):
            _check_accepted(port, signer.token(TENANT))
        scenarios = [
            Scenario("a pass-through", baseline[0], baseline[1], repeated_file),
            Scenario("b 1 key, same token", one.port, workers(one.process), repeated_file),
            Scenario("c 1,000 keys, same token", many.port, workers(many.process), repeated_file),
            Scenario("d 1 key, new tokens", one.port, workers(one.process), fresh_file),
            Scenario("e 1,000 keys, new tokens", many.port, workers(many.process), fresh_file),
            Scenario("f 10,000 keys, same token", huge.port, workers(huge.process), repeated_file),
            Scenario("g 10,000 keys, new tokens", huge.port, workers(huge.process), fresh_file),
        ]
        # Interleaved rounds, median per scenario: loopback figures on a shared machine
        # drift, and a drift should not land on one scenario only.
        runs: dict[str, list[Result]] = {scenario.name: [] for scenario in scenarios}
        for _ in range(args.rounds):
            for scenario in scenarios:
                runs[scenario.name].append(wrk(root, scenario, wrk_options))
        memory = {count: resident_mib(workers(g.process)) for count, (g, _) in gateways.items()}
        reload_seconds = timed_reload(
            root / "reload", huge.settings, huge_keys, huge_bindings, upstream, usage_log
        )
    results = {name: _median(name, measured) for name, measured in runs.items()}

    print(
        f"wrk {' '.join(wrk_options)} over HTTPS (TLS 1.3, keep-alive) to 127.0.0.1, "
        f"POST {PATH}, median of {args.rounds} rounds; HAProxy {_version()}"
    )
    print(f"{'run':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'non-2xx':>9}")
    for r in results.values():
        print(
            f"{r.name:<28}{r.requests_per_second:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.cpu_us_per_request:>12.1f}{r.non_2xx:>9}"
        )
    a, b, c, d, e, f, g = results.values()
    for label, x, y in (
        ("b/a same token vs pass-through (target >= 0.80)", b, a),
        ("c/b 1,000 keys vs 1 key, same token (target >= 0.95)", c, b),
        ("f/b 10,000 keys vs 1 key, same token", f, b),
        ("d/a new tokens vs pass-through", d, a),
        ("e/d 1,000 keys vs 1 key, new tokens", e, d),
        ("g/d 10,000 keys vs 1 key, new tokens", g, d),
        ("b/d same token vs new tokens (the cache)", b, d),
    ):
        throughput = x.requests_per_second / y.requests_per_second
        cpu = y.cpu_us_per_request / x.cpu_us_per_request
        print(f"{label:<56} throughput {throughput:.2f}  CPU per request {cpu:.2f}")
    for count, (_, started_in) in gateways.items():
        print(
            f"{count:>6,} keys: worker resident {memory[count]:.0f} MiB, "
            f"files rendered and served in {started_in:.1f} s"
        )
    print(f"reload of the {HUGE_KEYS:,}-key set: {reload_seconds:.1f} s to the new worker alone")
    print(f"sidecar: {counting_us_per_line():.1f} us of one core to count a line")
    return 0 if all(r.non_2xx == 0 for r in results.values()) else 1


@contextmanager
def discarding_sink() -> Iterator[str]:
    """Where the gateways forward their lines: read in large chunks and dropped."""
    listener = usage.listen(("127.0.0.1", 0))

    def drain() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=_discard, args=(connection,), daemon=True).start()

    threading.Thread(target=drain, daemon=True).start()
    with listener:
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def _discard(connection: socket.socket) -> None:
    with connection:
        while connection.recv(1 << 20):
            pass


@contextmanager
def counted_gateway(
    directory: Path,
    trusted: dict[str, str],
    upstream: dict[str, str],
    tenants: tuple[str, ...],
    bindings: dict[str, str],
    usage_log: str,
) -> Iterator[Gateway]:
    """The rendered gateway, forwarding its lines to `usage_log` as a pod's does."""
    settings = dataclasses.replace(
        gateway_settings(directory, upstream, tenants), usage_log=usage_log
    )
    with started_gateway(settings, trusted, bindings=bindings, quiet=True) as running:
        yield running


def timed(stack: ExitStack, started: AbstractContextManager[Gateway]) -> tuple[Gateway, float]:
    """A gateway entered on `stack`, and how long it took from rendering its files to
    serving."""
    began = time.monotonic()
    gateway = stack.enter_context(started)
    return gateway, time.monotonic() - began


def resident_mib(pids: Sequence[int]) -> float:
    """The resident memory (VmRSS) of processes, MiB."""
    total_kib = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        total_kib += int(line.split()[1])
    return total_kib / 1024


def timed_reload(
    directory: Path,
    settings: GatewaySettings,
    trusted: dict[str, str],
    bindings: dict[str, str],
    upstream: dict[str, str],
    usage_log: str,
) -> float:
    """How long a soft reload of a gateway with this key set takes, from the signal until
    the new worker alone serves (a gateway of its own that keeps its log, which the
    reload is read from; not one that wrk measured)."""
    chosen = dataclasses.replace(
        gateway_settings(directory, upstream, tuple(settings.tenants)), usage_log=usage_log
    )
    with started_gateway(chosen, trusted, bindings=bindings) as gateway:
        began = time.monotonic()
        gateway.reload()
        return time.monotonic() - began


def counting_us_per_line(lines: int = 100_000) -> float:
    """What the sidecar spends per access log line (`usage.Usage.count`)."""
    counters = usage.Usage()
    line = (
        "tenant=t0 credential=t0/agent key=0123456789abcdef0123456789abcdef01234567 "
        "route=cortex:/api/v1/push scope=metrics:write status=200 bytes_in=18231 "
        "bytes_out=0 ms=1 client=10.0.3.7 method=POST version=HTTP/2.0"
    )
    started = time.process_time()
    for _ in range(lines):
        counters.count(line)
    return (time.process_time() - started) / lines * 1e6


def sign_many(signer: Signer, count: int) -> list[str]:
    """`count` distinct valid tokens of TENANT (iat differs), signed on every core."""
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    now = int(time.time())
    chunks = [range(start, min(start + 1000, count)) for start in range(0, count, 1000)]
    with ProcessPoolExecutor() as pool:
        signed = pool.map(_sign_range, [(pem, signer.kid, now, chunk) for chunk in chunks])
        return [token for batch in signed for token in batch]


def _sign_range(job: tuple[bytes, str, int, range]) -> list[str]:
    pem, kid, now, indexes = job
    private_key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return [
        data_token.sign_token(
            private_key, kid, data_token.token_claims(INSTANCE, TENANT, now - index, 86400)
        )
        for index in indexes
    ]


def workers(process: subprocess.Popen[bytes] | None) -> tuple[int, ...]:
    """The worker processes (children) of a master-worker HAProxy."""
    assert process is not None
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == process.pid:  # the parent's pid
            children.append(int(stat.parent.name))
    assert children, f"haproxy {process.pid} has no worker"
    return tuple(children)


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def wrk(root: Path, scenario: Scenario, options: list[str]) -> Result:
    assert WRK is not None
    script = root / f"{scenario.tokens_file.stem}.lua"
    script.write_text(WRK_SCRIPT.replace("@TOKENS@", str(scenario.tokens_file)), encoding="ascii")
    url = f"https://{host('cortex', TENANT)}:{scenario.port}{PATH}"
    cpu_before = cpu_seconds(scenario.worker_pids)
    output = subprocess.run(
        [WRK, *options, "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    cpu = cpu_seconds(scenario.worker_pids) - cpu_before
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not (rate and total and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return Result(
        scenario.name,
        float(rate[1]),
        float(p50[1]) * _UNIT_MS[p50[2]],
        float(p99[1]) * _UNIT_MS[p99[2]],
        cpu / int(total[1]) * 1e6,
        int(non_2xx[1]) if non_2xx else 0,
    )


def _median(name: str, runs: list[Result]) -> Result:
    return Result(
        name,
        statistics.median(r.requests_per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        statistics.median(r.cpu_us_per_request for r in runs),
        sum(r.non_2xx for r in runs),
    )


def _check_accepted(port: int, token: str) -> None:
    response = request(port, host("cortex", TENANT), PATH, bearer(token), method="POST", body=b"")
    assert response.status == 200, response


def _version() -> str:
    assert HAPROXY is not None
    first = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, check=True).stdout
    return first.split()[2]


@contextmanager
def haproxy(directory: Path, config: str, ready: int) -> Iterator[subprocess.Popen[bytes]]:
    """HAProxy with `config`, logs discarded like a busy pod's would be shipped away;
    ready once `ready` (a plain-HTTP port) answers."""
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
        wait_until(lambda: _answers(ready), f"haproxy on port {ready}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        plain_request(port, host("cortex", TENANT), "/")
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
def pass_through(
    directory: Path, gateway: GatewaySettings, upstreams: dict[str, str]
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """The baseline: the gateway's TLS listener (its crt-list and certificates) and its
    log targets (standard output, the usage ring), no auth."""
    port, probe = free_port(), free_port()
    tls = tls_bind(dataclasses.replace(gateway, listen=f"127.0.0.1:{port}"))
    config = f"""{HAPROXY_PROLOGUE}{usage_ring(gateway)}
frontend probe
    bind 127.0.0.1:{probe}
    http-request return status 200

frontend data_api
    {tls}
{usage_logger(gateway)}    http-request set-header x-scope-orgid {TENANT}
    default_backend cortex
backend cortex
    server cortex {upstreams["cortex_push"].removeprefix("http://")}
"""
    with haproxy(directory, config, probe) as process:
        yield port, workers(process)


if __name__ == "__main__":
    sys.exit(main())
