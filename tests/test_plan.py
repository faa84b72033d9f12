"""The offline plan: `python -m tools.plan`, as an operator or a pipeline runs it."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from opstrace import scopes
from tests.conftest import OPERATOR_DOMAIN
from tools import plan
from tools.offline import ProgramFailed, ProgramRun, run_program
from tools.stack_files import stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEV_STACK = (PROJECT_DIR / "stacks" / "Pulumi.dev.yaml").read_text()
PROD_STACK = (PROJECT_DIR / "stacks" / "Pulumi.example-prod.yaml").read_text()


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stacks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack as an operator fills it in (their domain), and broken variants."""
    directory = tmp_path_factory.mktemp("stacks")
    filled_in = DEV_STACK.replace(
        "opstrace:domain: example.com", f"opstrace:domain: {OPERATOR_DOMAIN}"
    )
    assert filled_in != DEV_STACK
    (directory / "Pulumi.dev.yaml").write_text(filled_in)
    (directory / "Pulumi.typo.yaml").write_text(filled_in + "  opstrace:keybits: 4096\n")
    prod = PROD_STACK.replace("observability.example.com", OPERATOR_DOMAIN)
    assert prod != PROD_STACK
    (directory / "Pulumi.prod.yaml").write_text(prod)
    return directory


@pytest.fixture(scope="module")
def tree(stacks_dir: Path) -> str:
    result = run_plan("--stack", "dev", "--stacks-dir", str(stacks_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def records(stacks_dir: Path) -> list[dict[str, object]]:
    result = run_plan("--stack", "dev", "--stacks-dir", str(stacks_dir), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_plan_prints_children_indented_under_their_parent(tree: str) -> None:
    lines = tree.splitlines()
    tenant = lines.index("  opstrace:index:Tenant  dev-acme-tenant-prod")
    assert lines[0] == "opstrace:index:Cluster  dev-acme-cluster"
    assert "opstrace:index:Instance  dev-acme" in lines
    assert lines[tenant + 1 : tenant + 9] == [
        "    kubernetes:cert-manager.io/v1:Certificate  dev-acme-tenant-prod-certificate",
        "    kubernetes:core/v1:Namespace  dev-acme-tenant-prod-namespace",
        "    opstrace:index:Grafana  dev-acme-tenant-prod-grafana",
        "      kubernetes:core/v1:Secret  dev-acme-tenant-prod-grafana-secret",
        "      kubernetes:helm.sh/v3:Release  dev-acme-tenant-prod-grafana-release",
        "      pulumi-python:dynamic/opstrace:GeneratedPassword  "
        "dev-acme-tenant-prod-grafana-admin-password",
        "    pulumi-python:dynamic/opstrace:TenantToken  dev-acme-tenant-prod-token-default",
        "    pulumi-python:dynamic/opstrace:TenantToken  dev-acme-tenant-prod-token-grafana",
    ]


def test_plan_prints_every_tenant_endpoint(tree: str) -> None:
    assert (
        f"  system               cortex  https://cortex.system.dev-acme.{OPERATOR_DOMAIN}" in tree
    )
    assert f"  staging              loki    https://loki.staging.dev-acme.{OPERATOR_DOMAIN}" in tree


@pytest.fixture(scope="module")
def prod_tree(stacks_dir: Path) -> str:
    result = run_plan("--stack", "prod", "--stacks-dir", str(stacks_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_plan_prints_each_tenants_limits_retention_rules_and_alertmanager(prod_tree: str) -> None:
    policy = prod_tree.split("\ntenant policy ")[1].split("\n\n")[0].splitlines()[1:]
    prod = [line for line in policy if line.startswith("  prod ")]
    assert prod == [
        "  prod                 metrics compactor_blocks_retention_period=395d "
        "ingestion_rate=100000 max_global_series_per_user=1500000",
        "  prod                 logs    ingestion_rate_mb=8 retention_period=2160h",
        "  prod                 rules   availability, job.rules; log rules log.errors; "
        "alertmanager stacks/alertmanager/prod.yaml",
        "  prod                 from    every address",
    ]
    assert "  staging              rules   none; log rules none; alertmanager default" in policy


def test_plan_says_defaults_for_a_tenant_that_sets_no_policy(tree: str) -> None:
    policy = tree.split("\ntenant policy")[1].split("\ntokens and their scopes")[0]
    assert [line for line in policy.splitlines() if line.startswith("  staging  ")] == [
        "  staging              metrics defaults",
        "  staging              logs    defaults",
        "  staging              rules   none; log rules none; alertmanager default",
        "  staging              from    every address",
    ]


def test_plan_prints_the_networks_a_tenants_endpoints_take_requests_from(
    stacks_dir: Path,
) -> None:
    stack = stacks_dir / "Pulumi.dev.yaml"
    text = stack.read_text(encoding="utf-8").replace(
        "config:\n", "config:\n  opstrace:dataApiAllowedCidrs: 203.0.113.0/24\n", 1
    )
    (stacks_dir / "Pulumi.listed.yaml").write_text(text, encoding="utf-8")

    result = run_plan("--stack", "listed", "--stacks-dir", str(stacks_dir))

    assert result.returncode == 0, result.stderr
    assert "  staging              from    203.0.113.0/24" in result.stdout.splitlines()


def test_plan_lists_the_stack_outputs_with_secrets_and_unknowns_marked(tree: str) -> None:
    outputs = tree.split("\nstack outputs:\n")[1].splitlines()
    assert '  tokens: "[secret]"' in outputs
    assert '  key_ids: "[known after up]"' in outputs
    assert '  token_expiry: "[known after up]"' in outputs
    assert f'  instance_dns_name: "dev-acme.{OPERATOR_DOMAIN}"' in outputs


def test_plan_json_prints_one_object_per_resource_then_the_stack_outputs(
    records: list[dict[str, object]],
) -> None:
    *resources, stack = records
    assert all(set(r) == {"type", "name", "parent", "inputs"} for r in resources)
    assert stack["type"] == "pulumi:pulumi:Stack"
    assert stack["outputs"]["tokens"] == "[secret]"  # type: ignore[index]


def test_plan_json_token_record_has_its_inputs_and_no_provider(
    records: list[dict[str, object]],
) -> None:
    token = next(r for r in records if r["name"] == "dev-acme-tenant-prod-token-default")
    assert token["parent"] == "dev-acme-tenant-prod"
    assert token["inputs"] == {
        "instance": "dev-acme",
        "tenant": "prod",
        "token_name": "default",
        "key_bits": 2048,
        "lifetime_seconds": 31536000,
        "rotation": "",
        "private_key_dir": "",
        "signing_key_file": "",
        "scope": "",
    }


def test_plan_lists_each_token_with_its_scopes(prod_tree: str) -> None:
    section = prod_tree.split("\ntokens and their scopes")[1].split("\nstack outputs:")[0]
    assert "a change of a token's scopes replaces the token" in section
    lines = section.splitlines()
    assert f"  {'payments':<20} {'default':<20} {' '.join(scopes.SCOPES)}" in lines
    assert (
        f"  {'payments':<20} {'agent':<20} metrics:write logs:write "
        "(at most 200 requests/s at each gateway pod)"
    ) in lines


@pytest.mark.parametrize("output", [(), ("--json",)], ids=["tree", "json"])
def test_plan_is_byte_identical_across_two_runs(stacks_dir: Path, output: tuple[str, ...]) -> None:
    # The production stack: 3 zones, four tenants, hundreds of registrations that
    # complete in a different order on every run.
    first, second = (
        run_plan("--stack", "prod", "--stacks-dir", str(stacks_dir), *output) for _ in range(2)
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_plan_order_does_not_depend_on_the_order_registrations_completed(
    dev_run: ProgramRun,
) -> None:
    shuffled = ProgramRun(
        resources=list(reversed(dev_run.resources)), stack_outputs=dev_run.stack_outputs
    )
    as_registered, reversed_order = io.StringIO(), io.StringIO()
    plan.print_json(dev_run, as_registered)
    plan.print_json(shuffled, reversed_order)
    assert as_registered.getvalue() == reversed_order.getvalue()


def test_plan_json_lists_parents_before_their_children(
    records: list[dict[str, object]],
) -> None:
    seen: set[object] = {""}
    for record in records[:-1]:
        assert record["parent"] in seen, record["name"]
        seen.add(record["name"])


def test_plan_json_ends_quietly_when_the_reader_leaves(stacks_dir: Path) -> None:
    command = (
        f"{sys.executable} -m tools.plan --stack dev --stacks-dir {stacks_dir} --json | head -n 1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == 1


def test_plan_of_the_shipped_dev_stack_warns_of_its_placeholder_domain_and_goes_on() -> None:
    result = run_plan("--stack", "dev")
    assert result.returncode == 0
    assert result.stderr == (
        "warning: domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no "
        "one owns it and Route53 refuses to host it: preview and up refuse it; set "
        "opstrace:domain in stacks/Pulumi.dev.yaml to a domain you own\n"
        # And what a preview would warn of (the plan shows a preview's warnings).
        "warning: dns: this account has no Route53 zone of example.com to delegate "
        "dev-acme.example.com from: add NS records for dev-acme.example.com at your DNS "
        "provider; `up` makes the zone, names the records here, and waits up to 20 minutes for "
        "them before it requests any certificate\n"
    )
    assert "instance: dev-acme.example.com" in result.stdout.splitlines()


def test_the_program_refuses_a_placeholder_domain_unless_it_runs_for_the_plan() -> None:
    config = stack_config("dev")
    with pytest.raises(ProgramFailed) as raised:
        run_program(config, stack="dev", tokens="unknown")
    assert str(raised.value) == (
        "domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no one owns "
        "it and Route53 refuses to host it: set your own domain with `pulumi config set domain "
        "observability.yourcompany.com`, or set dns to none"
    )
    planned = run_program(config, stack="dev", tokens="unknown", plan=True)
    assert "aws:route53/zone:Zone" in {r.type for r in planned.resources}


def test_plan_refuses_an_unknown_setting_with_the_closest_name_and_exit_2(stacks_dir: Path) -> None:
    result = run_plan("--stack", "typo", "--stacks-dir", str(stacks_dir))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: unknown setting 'opstrace:keybits'; did you mean 'opstrace:keyBits'?\n"
    )


def test_plan_refuses_a_missing_stack_file_naming_the_stacks_there() -> None:
    result = run_plan("--stack", "does-not-exist")
    assert result.returncode == 2
    assert result.stderr == (
        "error: no stack file stacks/Pulumi.does-not-exist.yaml; stacks here: dev, "
        "example-existing, example-prod, local\n"
    )


def test_redact_replaces_secrets_at_any_depth() -> None:
    value = {"a": [rpc.wrap_rpc_secret("token")], "b": {"c": rpc.wrap_rpc_secret({"x": 1})}}
    assert plan.redact(value) == {"a": ["[secret]"], "b": {"c": "[secret]"}}


def test_redact_shows_integral_numbers_as_integers() -> None:
    assert plan.redact({"key_bits": 2048.0, "ratio": 0.5}) == {"key_bits": 2048, "ratio": 0.5}


AWS_REGION_RE = r"\b(?:af|ap|ca|eu|il|me|mx|sa|us)-(?:[a-z]+-)+[0-9]"
"""Anything that names an AWS region (a zone, an endpoint, an ARN part)."""


@pytest.mark.parametrize(
    ("stack", "region", "letters"),
    # The mocks' us-east-1c is use1-az3, a zone EKS refuses: skipped.
    [("example-prod", "us-east-1", "abd"), ("dev", "eu-central-1", "abc")],
)
def test_the_plan_names_only_the_region_of_its_stack(
    stacks_dir: Path, stack: str, region: str, letters: str
) -> None:
    text = (PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    domain = re.search(r"opstrace:domain: (\S+)", text)
    assert domain is not None
    (stacks_dir / f"Pulumi.{stack}-filled.yaml").write_text(
        text.replace(domain.group(0), f"opstrace:domain: {OPERATOR_DOMAIN}")
    )
    result = run_plan("--stack", f"{stack}-filled", "--stacks-dir", str(stacks_dir), "--json")
    assert result.returncode == 0, result.stderr
    named = set(re.findall(AWS_REGION_RE, result.stdout))
    assert named == {region}
    zones = {
        record["inputs"]["availabilityZone"]
        for record in map(json.loads, result.stdout.splitlines())
        if record["type"] == "aws:ec2/subnet:Subnet"
    }
    assert zones == {f"{region}{zone}" for zone in letters}


def test_the_plan_says_what_a_preview_warns_about_the_delegation(stacks_dir: Path) -> None:
    result = run_plan("--stack", "dev", "--stacks-dir", str(stacks_dir))
    assert result.returncode == 0, result.stderr
    zone = f"dev-acme.{OPERATOR_DOMAIN}"
    assert result.stderr.splitlines() == [
        f"warning: dns: this account has no Route53 zone of {OPERATOR_DOMAIN} to delegate "
        f"{zone} from: add NS records for {zone} at your DNS provider; `up` makes the zone, "
        "names the records here, and waits up to 20 minutes for them before it requests any "
        "certificate"
    ]


def test_plan_of_the_production_example_warns_of_the_client_secret_it_lacks_and_goes_on() -> None:
    result = run_plan("--stack", "example-prod")
    assert result.returncode == 0
    assert (
        "warning: grafanaClientSecret: required with grafanaSso; set it as a secret: `pulumi "
        "config set --secret opstrace:grafanaClientSecret <the client secret>` (preview and up "
        "refuse it)"
    ) in result.stderr.splitlines()
