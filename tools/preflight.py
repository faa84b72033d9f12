"""What `make up` checks before `pulumi up` changes anything: the first missing prerequisite.

    python -m tools.preflight --stack dev

1. The stack's settings, read as the program reads them: the same one-line error a
   preview would end with (a placeholder domain, no `aws:region`, a typo...).
2. AWS credentials, when the stack makes AWS resources (the cluster, the zone or the
   backends' buckets): with the AWS CLI installed, `aws sts get-caller-identity` must
   succeed (cluster eks needs the CLI anyway: its kubeconfig authenticates with `aws eks
   get-token`); without it, one of the sources the AWS SDKs read must be there.

Prints `preflight: ...` and exits 0 when everything is there; otherwise prints one line
naming the first missing prerequisite and the fix, and exits 2. It creates nothing: the
stack is not even selected.
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

from components.rules.errors import OpstraceError
from components.rules.schema import InstanceConfig
from components.rules.stack import config_of_stack
from tools.stack_files import PROJECT_DIR, cli_config, stack_config

EXIT_MISSING: Final = 2
STS_TIMEOUT_SECONDS: Final = 30
IMDS_TOKEN_URL: Final = "http://169.254.169.254/latest/api/token"
"""EC2's instance metadata service: an instance role is a credential source too."""
SIGN_IN: Final = "sign in with `aws configure`, `aws sso login` or AWS_PROFILE"

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
    config = config_of_stack(cli_config(stack_config(stack, stacks_dir=stacks_dir)), PROJECT_DIR)
    if not config.needs_aws:
        return f"stack {stack}: settings valid; no AWS resources, so no AWS credentials needed"
    return f"stack {stack}: settings valid; {aws_identity(config, machine)}"


def aws_identity(config: InstanceConfig, machine: Machine) -> str:
    """Which AWS credentials `pulumi up` will use, as far as can be known before it runs."""
    region = config.platform.aws_region
    aws = machine.which("aws")
    if aws is None:
        if config.platform.makes_cluster:
            raise PrerequisiteMissing(
                "AWS CLI: not installed, and cluster eks needs it (the kubeconfig "
                "authenticates with `aws eks get-token`): install it "
                f"(https://aws.amazon.com/cli/), {SIGN_IN}, then run make up again"
            )
        return f"AWS credentials from {_credential_source(machine)}"
    identity = ["sts", "get-caller-identity", "--region", region]
    result = machine.run([aws, *identity, "--query", "Account", "--output", "text"])
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1].strip()
        raise PrerequisiteMissing(
            f"AWS credentials: `aws sts get-caller-identity` failed ({reason}): {SIGN_IN}, "
            "then run make up again"
        )
    return f"AWS account {result.stdout.strip()} in {region}"


def _credential_source(machine: Machine) -> str:
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
        f"or ~/.aws/config, no instance role): {SIGN_IN}, then run make up again"
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
    try:
        summary = check(options.stack, Machine.this_one(), options.stacks_dir)
    except OpstraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MISSING
    print(f"preflight: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
