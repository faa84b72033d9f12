"""What `make up STACK=<name>` checks before `pulumi up` changes anything: the first missing
prerequisite (`make up` alone is the local instance, `tools.local`, which needs none of it).

    python -m tools.preflight --stack dev

1. The stack's settings, read as the program reads them: the same one-line error a
   preview would end with (no `aws:region`, a typo...); a placeholder domain with the fix
   that works before a Pulumi CLI exists (the stack file, or the local instance).
2. AWS credentials, when the stack makes AWS resources (the cluster, the zone or the
   backends' buckets): with the AWS CLI installed, `aws sts get-caller-identity` must
   succeed (cluster eks needs the CLI anyway: its kubeconfig authenticates with `aws eks
   get-token`); without it, one of the sources the AWS SDKs read must be there.

Prints `preflight: ...` and exits 0 when everything is there; otherwise prints one line
naming the first missing prerequisite and the fix, and exits 2. It creates nothing: the
stack is not even selected.

It also says what `up` will wait for (`delegation_notice`): when the instance zone cannot
be delegated from a Route53 zone of this account, the NS records the operator must add at
their DNS provider (`up` requests no certificate before they are visible).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from opstrace import delegation
from opstrace.config.schema import InstanceConfig
from opstrace.config.stack import (
    client_secret_problem,
    config_of_stack,
    placeholder_domain_problem,
)
from opstrace.errors import OpstraceError
from opstrace.names import instance_dns_name
from tools.stack_files import PROJECT_DIR, cli_config, shown_path, stack_config, stack_file

EXIT_MISSING: Final = 2
STS_TIMEOUT_SECONDS: Final = 30
IMDS_TOKEN_URL: Final = "http://169.254.169.254/latest/api/token"
"""EC2's instance metadata service: an instance role is a credential source too."""
SIGN_IN: Final = "sign in with `aws configure`, `aws sso login` or AWS_PROFILE"


def again(stack: str) -> str:
    """How to retry: `make up` alone is the local instance, so the stack is named."""
    return f"then run make up STACK={stack} again"


ENV_SOURCES: Final = (
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("AWS_PROFILE",),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI",),
)
"""Environment variables that name credentials, in the AWS SDKs' order (all of a row)."""


class PrerequisiteMissing(OpstraceError):
    """Raised when something `pulumi up` needs is not there; the message says what and how."""


@dataclass(frozen=True)
class Machine:
    """What the checks read of the operator's machine (tests pass their own)."""

    env: Mapping[str, str]
    which: Callable[[str], str | None]
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]]
    instance_role: Callable[[], bool]

    @classmethod
    def this_one(cls) -> Machine:
        return cls(os.environ, shutil.which, _run, _instance_metadata_answers)


def check(stack: str, machine: Machine, stacks_dir: Path | None = None) -> str:
    """A one-line summary of what was found; PrerequisiteMissing (or the config's own
    error) for the first prerequisite that is missing."""
    config = config_of_stack(
        cli_config(stack_config(stack, stacks_dir=stacks_dir)), PROJECT_DIR, plan=True
    )
    if problem := placeholder_domain_problem(config):
        where = shown_path(stack_file(stack, stacks_dir=stacks_dir))
        raise PrerequisiteMissing(
            f"{problem}: set opstrace:domain in {where} to a domain you own, "
            f"{again(stack)} (or try the local instance first, no AWS account "
            "needed: make up)"
        )
    if problem := client_secret_problem(config):
        raise PrerequisiteMissing(f"{problem}, {again(stack)}")
    if not config.needs_aws:
        return f"stack {stack}: settings valid; no AWS resources, so no AWS credentials needed"
    return f"stack {stack}: settings valid; {aws_identity(config, machine, stack)}"


def aws_identity(config: InstanceConfig, machine: Machine, stack: str) -> str:
    """Which AWS credentials `pulumi up` will use, as far as can be known before it runs."""
    region = config.platform.aws_region
    aws = machine.which("aws")
    if aws is None:
        if config.platform.makes_cluster:
            raise PrerequisiteMissing(
                "AWS CLI: not installed, and cluster eks needs it (the kubeconfig "
                "authenticates with `aws eks get-token`): install it "
                f"(https://aws.amazon.com/cli/), {SIGN_IN}, {again(stack)}"
            )
        return f"AWS credentials from {_credential_source(machine, stack)}"
    identity = ["sts", "get-caller-identity", "--region", region]
    result = machine.run([aws, *identity, "--query", "Account", "--output", "text"])
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1].strip()
        raise PrerequisiteMissing(
            f"AWS credentials: `aws sts get-caller-identity` failed ({reason}): {SIGN_IN}, "
            f"{again(stack)}"
        )
    return f"AWS account {result.stdout.strip()} in {region}"


def delegation_notice(
    config: InstanceConfig, machine: Machine, servers: delegation.Servers | None = None
) -> str | None:
    """What the operator must add at their DNS provider before `up` can issue certificates,
    or None: the program delegates the instance zone itself (`parentZoneId`, or a zone of
    the domain in this account), or it is delegated already, or the AWS CLI is missing
    (the credentials check says so)."""
    aws = machine.which("aws")
    if config.dns != "route53" or config.parent_zone_id or aws is None:
        return None
    for candidate in delegation.parent_candidates(config.domain):
        if _public_zone_id(machine, aws, candidate):
            return None
    zone = instance_dns_name(config.instance_name, config.domain)
    wait = f"`up` waits up to {delegation.WAIT_SECONDS // 60} minutes for them"
    zone_id = _public_zone_id(machine, aws, zone)
    if not zone_id:
        return (
            f"dns: this account has no Route53 zone of {config.domain}: once `up` has made "
            f"{zone}, add its NS records at your DNS provider ({wait}, naming them, before "
            "it requests any certificate)"
        )
    listed = machine.run(
        [aws, "route53", "get-hosted-zone", "--id", zone_id, "--query",
         "DelegationSet.NameServers", "--output", "text"]
    )  # fmt: skip
    name_servers = listed.stdout.split() if listed.returncode == 0 else []
    check = delegation.check(zone, name_servers, servers or delegation.Servers.from_environment())
    if check.done or not name_servers:
        return None
    return (
        f"dns: add these NS records at your DNS provider (this account has no Route53 zone of "
        f"{config.domain}): {delegation.records_to_add(zone, name_servers)}; {wait} before it "
        "requests any certificate"
    )


def _public_zone_id(machine: Machine, aws: str, name: str) -> str:
    """The ID of this account's public Route53 zone named `name`, or ""."""
    query = f"HostedZones[?Name=='{name}.' && !Config.PrivateZone].Id | [0]"
    result = machine.run(
        [aws, "route53", "list-hosted-zones-by-name", "--dns-name", name, "--max-items", "1",
         "--query", query, "--output", "text"]
    )  # fmt: skip
    found = result.stdout.strip() if result.returncode == 0 else ""
    return "" if found in ("", "None") else found.removeprefix("/hostedzone/")


def _credential_source(machine: Machine, stack: str) -> str:
    env = machine.env
    for names in ENV_SOURCES:
        if all(env.get(name) for name in names):
            return " and ".join(names)
    home = Path(env.get("HOME", "~")).expanduser()
    for variable, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials"),
        ("AWS_CONFIG_FILE", home / ".aws" / "config"),
    ):
        path = Path(env.get(variable) or default)
        if path.is_file():
            return str(path)
    if machine.instance_role():
        return "the EC2 instance's role"
    raise PrerequisiteMissing(
        "AWS credentials: none found (no AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials "
        f"or ~/.aws/config, no instance role): {SIGN_IN}, {again(stack)}"
    )


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=STS_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            list(command), 1, "", f"no answer within {STS_TIMEOUT_SECONDS} s"
        )


def _instance_metadata_answers() -> bool:
    # A fixed http:// URL: EC2's own service, answered only on an instance.
    request = urllib.request.Request(
        IMDS_TOKEN_URL, method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1):  # noqa: S310
            return True
    except (urllib.error.URLError, OSError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.preflight", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stack", required=True, help="reads stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--stacks-dir", type=Path, help="default: the project's stacks/")
    options = parser.parse_args(argv)
    machine = Machine.this_one()
    try:
        summary = check(options.stack, machine, options.stacks_dir)
    except OpstraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MISSING
    print(f"preflight: {summary}")
    config = config_of_stack(
        cli_config(stack_config(options.stack, stacks_dir=options.stacks_dir)), PROJECT_DIR
    )
    if notice := delegation_notice(config, machine):
        print(f"preflight: {notice}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
