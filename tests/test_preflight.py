"""`make up`'s preflight: the first missing prerequisite in one line, before anything exists."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from opstrace.errors import OpstraceError
from tests.conftest import OPERATOR_DOMAIN
from tools import preflight
from tools.preflight import Machine, PrerequisiteMissing

PROJECT_DIR = Path(__file__).resolve().parent.parent
SIGN_IN = (
    "sign in with `aws configure`, `aws sso login` or AWS_PROFILE, then run make up STACK=dev again"
)


def machine(
    env: Mapping[str, str] | None = None,
    *,
    aws: subprocess.CompletedProcess[str] | None = None,
    instance_role: bool = False,
) -> tuple[Machine, list[Sequence[str]]]:
    """A machine with `env`, the AWS CLI answering `aws` (None: not installed)."""
    calls: list[Sequence[str]] = []

    def run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        assert aws is not None
        return aws

    def which(name: str) -> str | None:
        return "/usr/bin/aws" if name == "aws" and aws is not None else None

    return Machine(env or {"HOME": "/nonexistent"}, which, run, lambda: instance_role), calls


def answered(
    returncode: int, stdout: str = "", stderr: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["aws"], returncode, stdout, stderr)


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    """The shipped stacks with an operator's domain, and the dev stack as shipped."""
    for name, domain in (
        ("dev", "example.com"),
        ("example-existing", "observability.example.com"),
    ):
        text = (PROJECT_DIR / "stacks" / f"Pulumi.{name}.yaml").read_text()
        filled = text.replace(f"opstrace:domain: {domain}", f"opstrace:domain: {OPERATOR_DOMAIN}")
        assert filled != text
        (tmp_path / f"Pulumi.{name}.yaml").write_text(filled)
        (tmp_path / f"Pulumi.shipped-{name}.yaml").write_text(text)
    external = yaml.safe_load((tmp_path / "Pulumi.example-existing.yaml").read_text())
    external["config"].update(
        {
            "opstrace:dns": "none",
            "opstrace:cortexUrl": "http://cortex.example.net:80",
            "opstrace:lokiUrl": "http://loki.example.net:3100",
        }
    )
    del external["config"]["opstrace:eksClusterName"]
    (tmp_path / "Pulumi.no-aws.yaml").write_text(yaml.safe_dump(external))
    return tmp_path


def test_a_placeholder_domain_is_refused_with_a_fix_that_needs_no_pulumi_cli(
    stacks: Path,
) -> None:
    with pytest.raises(PrerequisiteMissing) as raised:
        preflight.check("shipped-dev", machine()[0], stacks)
    assert str(raised.value) == (
        "domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no one owns "
        f"it and Route53 refuses to host it: set opstrace:domain in {stacks}/Pulumi.shipped-dev"
        ".yaml to a domain you own, then run make up STACK=shipped-dev again (or try the local "
        "instance first, no AWS account needed: make up)"
    )


def test_a_stack_without_aws_region_is_refused_naming_the_setting(stacks: Path) -> None:
    path = stacks / "Pulumi.dev.yaml"
    config = yaml.safe_load(path.read_text())
    del config["config"]["aws:region"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(OpstraceError) as raised:
        preflight.check("dev", machine()[0], stacks)
    assert str(raised.value) == (
        "aws:region: required for cluster eks: set it in the stack file (`aws:region: "
        "eu-central-1`) or with `pulumi config set aws:region eu-central-1`"
    )


def test_eks_without_the_aws_cli_is_refused_saying_why_it_is_needed(stacks: Path) -> None:
    with pytest.raises(PrerequisiteMissing) as raised:
        preflight.check("dev", machine({"AWS_PROFILE": "ops"})[0], stacks)
    assert str(raised.value) == (
        "AWS CLI: not installed, and cluster eks needs it (the kubeconfig authenticates with "
        f"`aws eks get-token`): install it (https://aws.amazon.com/cli/), {SIGN_IN}"
    )


def test_credentials_the_aws_cli_refuses_are_reported_with_its_reason(stacks: Path) -> None:
    refused = answered(255, stderr='\nUnable to locate credentials. Run "aws configure".\n')
    with pytest.raises(PrerequisiteMissing) as raised:
        preflight.check("dev", machine(aws=refused)[0], stacks)
    assert str(raised.value) == (
        "AWS credentials: `aws sts get-caller-identity` failed (Unable to locate "
        f'credentials. Run "aws configure".): {SIGN_IN}'
    )


def test_valid_credentials_name_the_account_in_the_stacks_region(stacks: Path) -> None:
    fake, calls = machine(aws=answered(0, stdout="123456789012\n"))
    assert preflight.check("dev", fake, stacks) == (
        "stack dev: settings valid; AWS account 123456789012 in eu-central-1"
    )
    assert calls == [
        [
            "/usr/bin/aws",
            "sts",
            "get-caller-identity",
            "--region",
            "eu-central-1",
            "--query",
            "Account",
            "--output",
            "text",
        ]
    ]


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID and "),
        ({"AWS_PROFILE": "ops"}, "AWS_PROFILE"),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn"}, "AWS_WEB_IDENTITY"),
    ],
    ids=["keys", "profile", "web-identity"],
)
def test_without_the_cli_an_sdk_credential_source_is_enough_outside_eks(
    stacks: Path, env: dict[str, str], source: str
) -> None:
    summary = preflight.check("example-existing", machine({"HOME": "/none", **env})[0], stacks)
    assert summary.startswith("stack example-existing: settings valid; AWS credentials from ")
    assert source in summary


def test_a_shared_credentials_file_is_a_source(stacks: Path, tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    summary = preflight.check("example-existing", machine({"HOME": str(tmp_path)})[0], stacks)
    assert summary.endswith(f"AWS credentials from {tmp_path}/.aws/credentials")


def test_an_instance_role_is_a_source(stacks: Path) -> None:
    summary = preflight.check("example-existing", machine(instance_role=True)[0], stacks)
    assert summary.endswith("AWS credentials from the EC2 instance's role")


def test_no_credential_source_at_all_is_refused(stacks: Path) -> None:
    with pytest.raises(PrerequisiteMissing) as raised:
        preflight.check("example-existing", machine()[0], stacks)
    assert str(raised.value) == (
        "AWS credentials: none found (no AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials or "
        "~/.aws/config, no instance role): sign in with `aws configure`, `aws sso login` or "
        "AWS_PROFILE, then run make up STACK=example-existing again"
    )


def test_a_stack_without_aws_resources_needs_no_credentials(stacks: Path) -> None:
    assert preflight.check("no-aws", machine()[0], stacks) == (
        "stack no-aws: settings valid; no AWS resources, so no AWS credentials needed"
    )


def test_make_up_stops_at_the_placeholder_domain_before_anything_is_created(
    tmp_path: Path,
) -> None:
    # The shipped dev stack, as a newcomer runs it first: one line, no stack, no build.
    backend = tmp_path / "state"
    # At the top level, as typed (under `make test`, make's MAKELEVEL would name it make[2]).
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env = {**outer, "PULUMI_BACKEND_URL": f"file://{backend}"}
    result = subprocess.run(
        ["make", "--no-print-directory", "up", "STACK=dev", f"PYTHON={sys.executable}"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    error, *rest = result.stderr.splitlines()
    assert error == (
        "error: domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no "
        "one owns it and Route53 refuses to host it: set opstrace:domain in "
        "stacks/Pulumi.dev.yaml to a domain you own, then run make up STACK=dev again (or try "
        "the local instance first, no AWS account needed: make up)"
    )
    assert all(line.startswith("make: ***") for line in rest), result.stderr
    assert not backend.exists()


def test_single_sign_on_without_its_client_secret_is_refused_before_anything_is_created(
    stacks: Path,
) -> None:
    path = stacks / "Pulumi.dev.yaml"
    config = yaml.safe_load(path.read_text())
    config["config"]["opstrace:grafanaSso"] = {
        "name": "Okta",
        "authUrl": "https://idp.acme.dev/authorize",
        "tokenUrl": "https://idp.acme.dev/token",
        "apiUrl": "https://idp.acme.dev/userinfo",
        "clientId": "opstrace",
    }
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(PrerequisiteMissing) as raised:
        preflight.check("dev", machine()[0], stacks)
    assert str(raised.value) == (
        "grafanaClientSecret: required with grafanaSso; set it as a secret: `pulumi config set "
        "--secret opstrace:grafanaClientSecret <the client secret>`, then run make up "
        "STACK=dev again"
    )
