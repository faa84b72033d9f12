"""How the program scales with the tenant count. Prints figures; asserts nothing.

    python -m bench.program_bench [--tenants 10,100,1000] [--smoke]

For each tenant count: the offline program's wall time and resource count, and two
baselines under the same mocks: as many bare resources (our overhead over Pulumi's own
per-resource cost), and a replay of exactly what the program registered (same types,
names, parents and inputs, no program logic: the cost of the logic itself). Then how
many existing resources change when one more tenant is added (this must not grow with
the tenant count). Then the
token provider's cost per token next to `openssl genpkey` (bench.token_bench), in the
same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="10,100,1000", help="comma-separated tenant counts")
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
    token_bench.main(smoke=options.smoke)


if __name__ == "__main__":
    main()
