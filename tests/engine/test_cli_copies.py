"""What the offline tools copy from the Pulumi CLI and pulumi-kubernetes, against the real ones.

`tools.stack_files` reads a stack file, enforces Pulumi.yaml's declarations with the CLI's
messages and hands the config to the program as the CLI does; the offline mocks name
auto-named objects as pulumi-kubernetes does (`tools.offline.autoname`). Each test runs
the real CLI on the same input and asserts the same outcome, so that the offline plan
and the fast tests cannot drift from what `pulumi up` does.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from opstrace.config.parse import ConfigError
from sidecar import kube_client
from tests.engine.harness import Workspace
from tests.test_broken_stacks import broken_stacks
from tools import cluster as local_cluster
from tools.offline import AUTONAME_SUFFIX, autoname
from tools.stack_files import cli_config, declarations, stack_config

pytestmark = pytest.mark.engine

STACK: Final = "broken"
CLI_PREFIX: Final = "error: validating stack config: "
HANDED_OVER: Final = """
    import pulumi
    from pulumi.runtime.config import CONFIG

    pulumi.export("config", dict(CONFIG.get()))
"""
"""A program that exports the config exactly as the CLI handed it over."""

BASE: Final = {
    "aws:region": "eu-central-1",
    "opstrace:instanceName": "acme",
    "opstrace:domain": "acme.dev",
}


def stack_text(**settings: Any) -> str:
    return yaml.safe_dump({"config": {**BASE, **settings}}, sort_keys=False, allow_unicode=True)


CASES: Final = {
    # Scalars as YAML 1.2 reads them: what the CLI's type checks then see.
    "yes_is_not_a_boolean": "config:\n  opstrace:telemetry: yes\n  opstrace:domain: a.dev\n"
    "  opstrace:instanceName: acme\n",
    "capitalised_true_is_a_boolean": "config:\n  opstrace:keepDataOnDestroy: True\n"
    "  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n",
    "a_quoted_number_is_an_integer": stack_text(**{"opstrace:keyBits": "+2048"}),
    "an_integral_float_is_an_integer": "config:\n  opstrace:keyBits: 4096.0\n"
    "  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n",
    "exponent_and_octal_and_hex": "config:\n  opstrace:keyBits: 2e3\n  opstrace:nodeCount: 010\n"
    "  opstrace:gatewayReplicas: 0x3\n  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n",
    "a_version_written_as_a_number_loses_its_zero": "config:\n  opstrace:kubernetesVersion: 1.30\n"
    "  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n",
    "a_clock_time_is_text": "config:\n  opstrace:instanceName: 1:30\n  opstrace:domain: a.dev\n",
    "a_date_is_a_time": "config:\n  opstrace:systemTokenRotation: 2026-12-01\n"
    "  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n",
    "null_is_empty": "config:\n  opstrace:acmeEmail: null\n  opstrace:domain: a.dev\n"
    "  opstrace:instanceName: acme\n",
    "a_key_without_namespace": "config:\n  domain: a.dev\n  instanceName: acme\n",
    # Lists and objects: JSON as Go writes it.
    "objects_in_a_list": "config:\n  opstrace:domain: a.dev\n  opstrace:instanceName: acme\n"
    "  opstrace:tenants:\n  - prod\n  - {name: ci, rotation: 2026-12-01, tokens: [a, b],\n"
    '     exportKeysTo: "/keys/<ci>&co é", n: 1.50, e: 1e3, f: false, x: null}\n',
    "a_string_declared_given_a_list": stack_text(**{"opstrace:dns": ["route53"]}),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """This project's declarations (Pulumi.yaml's `config:`) with a program that only
    exports what it was handed."""
    base = tmp_path_factory.mktemp("cli")
    workspace = Workspace(base / "project", base / "home", base / "backend")
    workspace.write_project("opstrace", HANDED_OVER, config=declarations())
    workspace.new_stack(STACK)
    return workspace


def real_cli(workspace: Workspace, text: str) -> tuple[str | None, dict[str, str] | None]:
    """(the CLI's refusal, the config it handed to the program) for a stack file."""
    (workspace.project_dir / f"Pulumi.{STACK}.yaml").write_text(text)
    result = workspace.run("up", "--yes", "--skip-preview", "--stack", STACK, check=False)
    if result.returncode != 0:
        assert result.stderr.startswith(CLI_PREFIX), result.stdout + result.stderr
        return result.stderr.removeprefix(CLI_PREFIX).strip(), None
    handed: dict[str, str] = workspace.outputs(STACK)["config"]
    return None, handed


def offline(workspace: Workspace, text: str) -> tuple[str | None, dict[str, str] | None]:
    """The same, as `tools.stack_files` does it."""
    project = workspace.project_dir
    (project / f"Pulumi.{STACK}.yaml").write_text(text)
    try:
        settings = stack_config(STACK, project, stacks_dir=project)
    except ConfigError as error:
        return str(error), None
    return None, cli_config(settings, project)


CLI_ROWS: Final = [row for row in broken_stacks("/project") if row.message.startswith("Stack ")]


def test_the_broken_stack_table_has_rows_in_the_clis_words() -> None:
    assert len(CLI_ROWS) >= 5


@pytest.mark.parametrize("row", CLI_ROWS, ids=[row.name for row in CLI_ROWS])
def test_the_cli_refuses_a_broken_row_with_the_tables_words(workspace: Workspace, row: Any) -> None:
    assert real_cli(workspace, row.text) == (row.message, None)


@pytest.mark.parametrize("text", list(CASES.values()), ids=list(CASES))
def test_offline_reading_and_handing_over_match_the_cli(workspace: Workspace, text: str) -> None:
    assert offline(workspace, text) == real_cli(workspace, text)


AUTONAMED: Final = """
    import pulumi
    import pulumi_kubernetes as k8s

    config = pulumi.Config()
    provider = k8s.Provider("cluster", kubeconfig=config.require("kubeconfig"))
    opts = pulumi.ResourceOptions(provider=provider)
    names = {}
    for logical in ("settings", "acme-gateway-config"):
        made = k8s.core.v1.ConfigMap(
            logical, metadata={"namespace": config.require("namespace")}, opts=opts
        )
        names[logical] = made.metadata.name
    pulumi.export("names", names)
"""


@pytest.fixture
def namespace(cluster: kube_client.Api) -> Iterator[str]:
    name = f"autoname-{secrets.token_hex(3)}"
    cluster.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    cluster.delete(f"/api/v1/namespaces/{name}")


def test_mocks_autoname_as_pulumi_kubernetes_does(
    tmp_path: Path, cluster: kube_client.Api, namespace: str
) -> None:
    workspace = Workspace(tmp_path / "project", tmp_path / "home", tmp_path / "backend")
    workspace.write_project("autoname", AUTONAMED)
    workspace.new_stack("test")
    workspace.run("config", "set", "kubeconfig", str(local_cluster.KUBECONFIG))
    workspace.run("config", "set", "namespace", namespace)
    workspace.run("up", "--yes", "--skip-preview")
    names = workspace.outputs("test")["names"]
    workspace.run("destroy", "--yes", "--skip-preview")
    for logical, real in names.items():
        suffix = real.removeprefix(f"{logical}-")
        mocked = autoname(logical).removeprefix(f"{logical}-")
        assert len(suffix) == len(mocked) == AUTONAME_SUFFIX, real
        assert set(suffix) | set(mocked) <= set(string.hexdigits.lower()), (real, mocked)
        assert re.fullmatch(rf"{re.escape(logical)}-[0-9a-f]{{8}}", real)
