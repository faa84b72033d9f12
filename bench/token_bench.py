"""How long one token takes to mint: through the provider host, in process, and openssl alone.

RSA key generation dominates minting, and its time varies a lot from key to key, so
each size is run several times and shown as mean and median. `openssl genpkey` for
the same size is the floor: the gap to it is what the provider (Python's keygen,
signing) and the host (gRPC, serialization) add. Bounded counts keep a run under a
minute. Run from the project root::

    .venv/bin/python -m bench.token_bench
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import Final

from cryptography.hazmat.backends.openssl import backend

from components.tokens import TokenProvider
from tests.provider_host import ProviderHost, mint

RUNS: Final = {2048: 20, 3072: 5, 4096: 3}
"""Key size -> how many tokens (and openssl keys) to time."""


def timed_ms(action: Callable[[], object], runs: int) -> list[float]:
    """Wall-clock milliseconds of each of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def mint_in_process(bits: int) -> None:
    """Check then create, as the host would, without the host."""
    provider = TokenProvider()
    checked = provider.check({}, {"instance": "bench", "tenant": "bench", "key_bits": bits})
    if checked.failures:
        raise SystemExit(f"check refused the bench inputs: {checked.failures}")
    provider.create(checked.inputs)


def openssl_genpkey(bits: int) -> None:
    """One RSA key from the openssl CLI, discarded (stdout goes nowhere)."""
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-quiet",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            f"rsa_keygen_bits:{bits}",
        ],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def summary(times: list[float]) -> str:
    return f"{statistics.mean(times):8.1f} {statistics.median(times):8.1f}"


SMOKE_RUNS: Final = {2048: 2, 3072: 1, 4096: 1}
"""As few as show that every row still runs (CI)."""


def main(*, smoke: bool = False) -> None:
    """Print one row per key size; no assertions, figures only."""
    openssl_version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"CPUs: {os.cpu_count()}; CLI: {openssl_version}")
    # The provider's keygen runs in the OpenSSL bundled with `cryptography`, not the CLI's.
    print(f"provider (cryptography): {backend.openssl_version_text()}")
    start = time.perf_counter()
    host = ProviderHost.start()
    started_ms = (time.perf_counter() - start) * 1000
    print(f"provider host start (process, port, gRPC ready, Configure): {started_ms:.0f} ms")
    try:
        # Untimed: the host unpickles the provider on its first call only.
        mint(host, instance="bench", tenant="bench")
        header = (
            f"{'bits':>5} {'runs':>4} | {'host Check+Create':>17} | {'in-process':>17} | "
            f"{'openssl genpkey':>17} | {'host - in-proc':>14}"
        )
        pair = f"{'mean ms':>8} {'med ms':>8}"
        units = f"{'':>5} {'':>4} | {pair} | {pair} | {pair} | {'mean ms':>14}"
        print(header)
        print(units)
        print("-" * len(header))
        for bits, runs in (SMOKE_RUNS if smoke else RUNS).items():
            via_host = timed_ms(
                partial(mint, host, instance="bench", tenant="bench", key_bits=bits), runs
            )
            in_process = timed_ms(partial(mint_in_process, bits), runs)
            openssl = timed_ms(partial(openssl_genpkey, bits), runs)
            overhead = statistics.mean(via_host) - statistics.mean(in_process)
            print(
                f"{bits:>5} {runs:>4} | {summary(via_host)} | {summary(in_process)} | "
                f"{summary(openssl)} | {overhead:>14.1f}"
            )
    finally:
        host.close()
    print("RSA keygen time varies widely per key; medians over few runs are rough.")


if __name__ == "__main__":
    main()
