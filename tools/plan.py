"""Offline plan: what `pulumi up` would register for a stack, without the CLI or a cloud.

    python -m tools.plan --stack dev          # resource tree, endpoints, stack outputs
    python -m tools.plan --stack dev --json   # one JSON object per resource, then the outputs

Runs the real program under Pulumi's mocks as a preview would (see `tools.offline`): no
token is minted and no key is generated. Secrets print as `[secret]`, and values only
`pulumi up` can know (tokens, key IDs, the load balancer's address) as `[known after
up]`, never as invented values. A configuration mistake prints one line and exits 2.
What only creating would refuse (a placeholder domain such as the shipped dev stack's
example.com) is a warning on stderr, and the plan goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from pulumi.output import Unknown
from pulumi.runtime import rpc

from opstrace.config.stack import (
    client_secret_problem,
    config_of_stack,
    placeholder_domain_problem,
)
from opstrace.errors import OpstraceError
from tools.offline import UNKNOWN, ProgramRun, Registration, run_program
from tools.stack_files import PROJECT_DIR, cli_config, shown_path, stack_config, stack_file

SECRET: Final = "[secret]"
UNKNOWN_UNTIL_UP: Final = "[known after up]"
EXIT_CONFIG_ERROR: Final = 2


def redact(value: Any) -> Any:
    """`value` as a plan shows it: secrets `[secret]`, unknowns `[known after up]`,
    integral numbers as integers (the engine sends every number as a float)."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN):
        return UNKNOWN_UNTIL_UP
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def in_plan_order(run: ProgramRun) -> list[tuple[int, Registration]]:
    """Every resource with its depth, parents first, siblings by (type, name): the same
    order whatever order the program's registrations happened to complete in (they race),
    so that two plans of one stack are byte-identical and a diff shows only changes."""
    children: dict[str, list[Registration]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)
    ordered: list[tuple[int, Registration]] = []

    def walk(parent: str, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            ordered.append((depth, resource))
            walk(resource.urn, depth + 1)

    walk("", 0)
    return ordered


def print_tree(run: ProgramRun, out: TextIO) -> None:
    """The resource tree, children indented under their parent, then the stack outputs."""
    for depth, resource in in_plan_order(run):
        print(f"{'  ' * depth}{resource.type}  {resource.name}", file=out)
    outputs = redact(run.stack_outputs)
    print(f"\n{len(run.resources)} resources", file=out)
    print(f"instance: {outputs.get('instance_dns_name')}", file=out)
    endpoints = outputs.get("endpoints", {})
    for tenant in outputs.get("tenants", []):
        for service, url in sorted(endpoints[tenant].items()):
            print(f"  {tenant:<20} {service:<7} {url}", file=out)
    policy = outputs.get("tenant_policy", {})
    if policy:
        print(
            "\ntenant policy (the backends' runtime overrides; rule groups; Alertmanager; "
            "the networks its endpoints take requests from):",
            file=out,
        )
        for tenant, chosen in sorted(policy.items()):
            for group in ("metrics", "logs"):
                settings = " ".join(f"{k}={v}" for k, v in sorted(chosen[group].items()))
                print(f"  {tenant:<20} {group:<7} {settings or 'defaults'}", file=out)
            rules, log_rules = (", ".join(chosen[k]) or "none" for k in ("rules", "logRules"))
            print(
                f"  {tenant:<20} rules   {rules}; log rules {log_rules}; "
                f"alertmanager {chosen['alertmanager']}",
                file=out,
            )
            networks = " ".join(chosen.get("networks", [])) or "every address"
            print(f"  {tenant:<20} from    {networks}", file=out)
    token_scopes = outputs.get("token_scopes", {})
    if token_scopes:
        print(
            "\ntokens and their scopes (a change of a token's scopes replaces the token: "
            "a new key and token, the old one revoked):",
            file=out,
        )
        limits = outputs.get("token_rate_limits", {})
        for tenant, tokens in sorted(token_scopes.items()):
            for token, held in sorted(tokens.items()):
                limit = limits.get(tenant, {}).get(token)
                rate = f" (at most {limit} requests/s at each gateway pod)" if limit else ""
                print(f"  {tenant:<20} {token:<20} {' '.join(held)}{rate}", file=out)
    print("\nstack outputs:", file=out)
    for name, value in sorted(outputs.items()):
        print(f"  {name}: {json.dumps(value, sort_keys=True)}", file=out)


def print_json(run: ProgramRun, out: TextIO) -> None:
    """One JSON object per resource (type, name, parent name, inputs) in plan order, then
    one for the stack outputs (type `pulumi:pulumi:Stack`), secrets and unknowns marked."""
    names = {r.urn: r.name for r in run.resources}
    for _, resource in in_plan_order(run):
        record = {
            "type": resource.type,
            "name": resource.name,
            "parent": names.get(resource.parent, ""),
            "inputs": redact(resource.inputs),
        }
        print(json.dumps(record, sort_keys=True), file=out)
    stack = {"type": "pulumi:pulumi:Stack", "outputs": redact(run.stack_outputs)}
    print(json.dumps(stack, sort_keys=True), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--stack", required=True, help="stack name: reads stacks/Pulumi.<stack>.yaml"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per resource")
    parser.add_argument(
        "--stacks-dir", type=Path, help="where the stack files are (default: the project's stacks/)"
    )
    options = parser.parse_args(argv)
    try:
        config = stack_config(options.stack, stacks_dir=options.stacks_dir)
        checked = config_of_stack(cli_config(config), PROJECT_DIR, plan=True)
        if problem := placeholder_domain_problem(checked):
            where = shown_path(stack_file(options.stack, stacks_dir=options.stacks_dir))
            print(
                f"warning: {problem}: preview and up refuse it; set opstrace:domain in "
                f"{where} to a domain you own",
                file=sys.stderr,
            )
        if problem := client_secret_problem(checked):
            print(f"warning: {problem} (preview and up refuse it)", file=sys.stderr)
        run = run_program(config, stack=options.stack, tokens="unknown", plan=True)
    except OpstraceError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        (print_json if options.json else print_tree)(run, sys.stdout)
        sys.stdout.flush()
        # What a preview warns about (the delegation's records, the version's support, a
        # token's expiry), as the CLI shows it, apart from the plan itself.
        for level, text in run.messages:
            if level == "warning":
                print(f"warning: {text}", file=sys.stderr)
    except BrokenPipeError:
        # The reader left (`--json | head`): stop quietly, as command-line tools do,
        # without a teardown that would try to flush into the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
