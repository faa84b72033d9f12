"""Fixtures of the engine tests: a workspace per test, the local cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components import kube_api
from tests.engine.harness import CLUSTER_TOOLS, PULUMI_TOOLS, Workspace, require_tools
from tools import cluster as local_cluster


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty project folder, PULUMI_HOME and file backend; the CLI must be built."""
    require_tools(PULUMI_TOOLS)
    return Workspace(tmp_path / "project", tmp_path / "home", tmp_path / "backend")


@pytest.fixture(scope="session")
def cluster() -> Iterator[kube_api.Api]:
    """The local cluster: a healthy one from `make cluster-up`, else one started (and
    stopped) for this session. Yields an admin client of its API server."""
    require_tools(CLUSTER_TOOLS)
    try:
        with local_cluster.running() as api:
            yield api
    except local_cluster.ClusterError as error:
        pytest.fail(f"the local cluster did not come up: {error}")
