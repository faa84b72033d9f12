"""The offline plan: `python -m tools.plan`, as an operator or a pipeline runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from tools import plan

PROJECT_DIR = Path(__file__).resolve().parent.parent


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
def tree() -> str:
    result = run_plan("--stack", "dev")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_plan_prints_children_indented_under_their_parent(tree: str) -> None:
    lines = tree.splitlines()
    tenant = lines.index("  opstrace:index:Tenant  dev-acme-tenant-prod")
    assert lines[0] == "opstrace:index:Instance  dev-acme"
    assert lines[tenant + 1] == "    kubernetes:core/v1:Namespace  dev-acme-tenant-prod-namespace"


def test_plan_prints_every_tenant_endpoint(tree: str) -> None:
    assert "  system               cortex  https://cortex.system.dev-acme.example.com" in tree
    assert "  staging              loki    https://loki.staging.dev-acme.example.com" in tree


def test_plan_json_prints_one_object_per_resource() -> None:
    result = run_plan("--stack", "dev", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(r) == {"type", "name", "parent", "inputs"} for r in records)
    token = next(r for r in records if r["name"] == "dev-acme-tenant-prod-token-default")
    assert token["parent"] == "dev-acme-tenant-prod"
    assert token["inputs"]["tenant"] == "prod"
    assert "__provider" not in token["inputs"]


def test_plan_refuses_invalid_config_with_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_plan("--stack", "does-not-exist")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no stack file ")
    assert "stacks here: dev, example-prod" in result.stderr


def test_redact_replaces_secrets_at_any_depth() -> None:
    value = {"a": [rpc.wrap_rpc_secret("token")], "b": {"c": rpc.wrap_rpc_secret({"x": 1})}}
    assert plan.redact(value) == {"a": ["[secret]"], "b": {"c": "[secret]"}}
