"""How the program scales with the tenant count. Prints figures; asserts nothing.

    python -m bench.program_bench [--tenants 10,100,1000] [--credentials 1000,5000,10000]
    python -m bench.program_bench --smoke

For each tenant count: the offline program's wall time and resource count, and two
baselines under the same mocks: as many bare resources (our overhead over Pulumi's own
per-resource cost), and a replay of exactly what the program registered (same types,
names, parents and inputs, no program logic: the cost of the logic itself). Then how
many existing resources change when one more tenant is added (this must not grow with
the tenant count). Then the same by credential count (tenants of four: three tokens and
their Grafana's): the plan's time and the process's peak memory, what each credential
added since the size before cost, and how many existing resources one more credential
changes. Then the token provider's cost per token next to `openssl genpkey`
(bench.token_bench), in the same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from resource import RUSAGE_SELF, getrusage
from typing import Any

import pulumi
from pulumi.runtime import rpc

from bench import token_bench
from tools.offline import ProgramRun, run_components, run_program
from tools.stack_files import stack_config

BASELINE_PROGRAM = """
import pulumi

class Bare(pulumi.CustomResource):
    def __init__(self, name):
        super().__init__("bench:index:Bare", name, {}, None)

for index in range(int(pulumi.Config("bench").require("count"))):
    Bare(f"bare-{index}")
"""


def config_for(tenants: int) -> dict[str, Any]:
    """The shipped dev stack (so that the benchmark follows what the program requires)
    with an operator's domain and `tenants` user tenants."""
    return {
        **stack_config("dev"),
        "opstrace:instanceName": "bench",
        "opstrace:domain": "observability.acme.dev",
        "opstrace:tenants": [f"t{index}" for index in range(tenants)],
    }


def config_of_credentials(credentials: int) -> dict[str, Any]:
    """As `config_for`, with tenants of three tokens and a Grafana, `credentials` in all
    (the system tenant's two besides)."""
    return {
        **config_for(0),
        "opstrace:tenants": [
            {"name": f"t{index}", "tokens": ["agent", "reader", "ci"]}
            for index in range(credentials // 4)
        ],
    }


def timed(config: dict[str, Any], **kwargs: Any) -> tuple[float, ProgramRun]:
    start = time.perf_counter()
    run = run_program(config, stack="bench", **kwargs)
    return time.perf_counter() - start, run


def changed_existing(before: ProgramRun, after: ProgramRun) -> list[str]:
    after_by_urn = after.by_urn()

    def text(inputs: dict[str, Any]) -> str:
        return json.dumps(rpc.unwrap_rpc_secret(inputs), sort_keys=True, default=str)

    return sorted(
        r.name
        for urn, r in before.by_urn().items()
        if r.custom and text(r.inputs) != text(after_by_urn[urn].inputs)
    )


def replay(run: ProgramRun) -> Callable[[], None]:
    """A program registering what `run` registered, in order, with no logic of ours."""

    def program() -> None:
        created: dict[str, pulumi.Resource] = {}
        for resource in run.resources:
            opts = pulumi.ResourceOptions(parent=created.get(resource.parent))
            inputs = dict(resource.inputs)
            if resource.type.startswith("pulumi:providers:"):
                package = resource.type.removeprefix("pulumi:providers:")
                created[resource.urn] = pulumi.ProviderResource(
                    package, resource.name, inputs, opts
                )
            elif resource.custom:
                created[resource.urn] = pulumi.CustomResource(
                    resource.type, resource.name, inputs, opts
                )
            else:
                created[resource.urn] = pulumi.ComponentResource(
                    resource.type, resource.name, None, opts
                )

    return program


def timed_replay(run: ProgramRun) -> float:
    start = time.perf_counter()
    run_components(replay(run), stack="bench")
    return time.perf_counter() - start


def by_credentials(sizes: Sequence[int]) -> None:
    """The plan by credential count, in increasing order (so that the process's peak
    memory after each plan is that plan's)."""
    print(
        f"{'credentials':>11} {'resources':>10} {'program s':>10} {'peak MiB':>9} "
        f"{'ms each':>8} {'changed':>8}"
    )
    before: tuple[int, float] | None = None
    for size in sorted(sizes):
        seconds, run = timed(config_of_credentials(size))
        peak = getrusage(RUSAGE_SELF).ru_maxrss / 1024
        one_more = config_of_credentials(size)
        one_more["opstrace:tenants"][0]["tokens"].append("extra")
        _, grown = timed(one_more)
        credentials = len(run.stack_outputs["key_ids"])
        each = f"{(seconds - before[1]) / (credentials - before[0]) * 1000:.2f}" if before else "-"
        print(
            f"{credentials:>11} {len(run.resources):>10} {seconds:>10.2f} {peak:>9.0f} "
            f"{each:>8} {len(changed_existing(run, grown)):>8}"
        )
        before = (credentials, seconds)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="10,100,1000", help="comma-separated tenant counts")
    parser.add_argument(
        "--credentials", default="1000,5000,10000", help="comma-separated credential counts"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 tenants, few tokens: that it runs, not figures"
    )
    options = parser.parse_args(argv)
    counts = [2] if options.smoke else [int(n) for n in options.tenants.split(",")]
    header = (
        f"{'tenants':>8} {'resources':>10} {'program s':>10} {'bare s':>7} {'replay s':>9} "
        f"{'/bare':>6} {'/replay':>8} {'added':>6} {'changed':>8}"
    )
    print("offline program under Pulumi mocks (stand-in tokens, no key generation)")
    print(header)
    with tempfile.TemporaryDirectory() as directory:
        baseline = Path(directory) / "baseline.py"
        baseline.write_text(BASELINE_PROGRAM)
        timed(config_for(1))  # warm up: the first run pays for importing the providers
        for count in counts:
            seconds, run = timed(config_for(count))
            bare, _ = timed({"bench:count": str(len(run.resources))}, program=baseline)
            replayed = timed_replay(run)
            _, grown = timed(config_for(count + 1))
            added = len(grown.resources) - len(run.resources)
            changed = changed_existing(run, grown)
            print(
                f"{count:>8} {len(run.resources):>10} {seconds:>10.2f} {bare:>7.2f} "
                f"{replayed:>9.2f} {seconds / bare:>6.2f} {seconds / replayed:>8.2f} "
                f"{added:>6} {len(changed):>8}"
            )
    print("changed on adding a tenant:", ", ".join(changed))
    print()
    by_credentials([8] if options.smoke else [int(n) for n in options.credentials.split(",")])
    print()
    token_bench.main(smoke=options.smoke)


if __name__ == "__main__":
    main()
