"""Shared fixtures: the program run under Pulumi's mocks, and the local cluster.

The tests' one Mocks class is `tools.offline.OfflineMocks`: the offline plan (a product
feature) needs it, and a class here would be a second copy of it. What it and
`tools.stack_files` copy from the CLI and pulumi-kubernetes (how a stack file is read,
Pulumi.yaml's checks in the CLI's words, how config reaches the program, autonaming) is
checked against the real CLI by tests/engine/test_cli_copies.py, and the load balancer's
address as the program takes it by tests/engine/test_instance.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Final

import pytest

from opstrace.aws import eks_versions
from sidecar import kube_client
from tests.engine.harness import CLUSTER_TOOLS, require_tools
from tools import cluster as local_cluster
from tools.offline import ProgramRun, run_program
from tools.stack_files import stack_config

pytest_plugins = ["tests.provider_host", "tests.strict_tools"]

OPERATOR_DOMAIN: Final = "observability.acme.dev"
"""What an operator puts where the shipped dev stack has its refused placeholder."""


def dev_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack as an operator fills it in (their domain), `opstrace:` settings
    replaced by `overrides`; a value of None removes the setting."""
    config = stack_config("dev")
    config["opstrace:domain"] = OPERATOR_DOMAIN
    for key, value in overrides.items():
        config[f"opstrace:{key}"] = value
        if value is None:
            del config[f"opstrace:{key}"]
    return config


@pytest.fixture(scope="session", autouse=True)
def eks_calendar_day() -> Iterator[None]:
    """EKS's version calendar read as on the day it was recorded, in this process and the
    programs it starts: versions leave support as time passes, the tests' stacks do not."""
    before = os.environ.get(eks_versions.DAY_VARIABLE)
    os.environ[eks_versions.DAY_VARIABLE] = eks_versions.RECORDED.isoformat()
    yield
    if before is None:
        del os.environ[eks_versions.DAY_VARIABLE]
    else:
        os.environ[eks_versions.DAY_VARIABLE] = before


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    """The dev stack, with stand-in tokens (no key generated)."""
    return run_program(dev_config(), stack="dev")


@pytest.fixture(scope="session")
def minted_dev_run() -> ProgramRun:
    """The dev stack with every token minted by the real provider, in process."""
    return run_program(dev_config(), stack="dev", tokens="minted")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The quick start first (tests/engine/test_quickstart.py): its clone runs a local
    cluster of its own, and one cluster at a time may run gateway pods on this machine, so
    it must be done before the session's `cluster` starts (and stays up to the end)."""
    items.sort(key=lambda item: item.get_closest_marker("quickstart") is None)


@pytest.fixture(scope="session")
def cluster() -> Iterator[kube_client.Api]:
    """The local cluster: a healthy one from `make cluster-up`, else one started (and
    stopped) for this session. Yields an admin client of its API server."""
    require_tools(CLUSTER_TOOLS)
    try:
        with local_cluster.running() as api:
            yield api
    except local_cluster.ClusterError as error:
        pytest.fail(f"the local cluster did not come up: {error}")
