"""Offline plan: what `pulumi up` would register for a stack, without the CLI or a cloud.

    python -m tools.plan --stack dev          # resource tree and endpoints
    python -m tools.plan --stack dev --json   # one JSON object per resource

Runs the real program under Pulumi's mocks (see `tools.offline`). No token is minted
and no key is generated: token resources show their inputs, and secrets print as
`[secret]`. Exit status 2 with a one-line message when the configuration is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pulumi.runtime import rpc

from components.rules.config import ConfigError
from tools.offline import ProgramRun, Registration, run_program, stack_config

SECRET: str = "[secret]"


def redact(value: Any) -> Any:
    """`value` with every secret replaced by `[secret]`, recursively."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def print_tree(run: ProgramRun, out: TextIO) -> None:
    """The resource tree, children indented under their parent, then the endpoints."""
    children: dict[str, list[Registration]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)

    def walk(parent: str, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            print(f"{'  ' * depth}{resource.type}  {resource.name}", file=out)
            walk(resource.urn, depth + 1)

    walk("", 0)
    outputs = redact(run.stack_outputs)
    print(f"\n{len(run.resources)} resources", file=out)
    print(f"instance: {outputs.get('instance_dns_name')}", file=out)
    endpoints = outputs.get("endpoints", {})
    for tenant in outputs.get("tenants", []):
        for service, url in sorted(endpoints[tenant].items()):
            print(f"  {tenant:<20} {service:<7} {url}", file=out)


def print_json(run: ProgramRun, out: TextIO) -> None:
    """One JSON object per resource: type, name, parent name, inputs (secrets redacted)."""
    names = {r.urn: r.name for r in run.resources}
    for resource in run.resources:
        record = {
            "type": resource.type,
            "name": resource.name,
            "parent": names.get(resource.parent, ""),
            "inputs": redact(resource.inputs),
        }
        print(json.dumps(record, sort_keys=True), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--stack", required=True, help="stack name: reads stacks/Pulumi.<stack>.yaml"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per resource")
    options = parser.parse_args(argv)
    try:
        run = run_program(stack_config(options.stack), stack=options.stack)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    (print_json if options.json else print_tree)(run, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
