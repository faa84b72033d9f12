"""A stack made by an earlier release upgrades with no replacement: every URN, type
token and provider reference the program registered is still registered, and what
changed is updated in place (what the new release adds is created beside it).

Each state is one `tests/engine/upgrade.py record` exported (see `upgrade.RELEASES`).
The test puts the cluster back as that release left it (each object the state records,
applied as its provider applied it), imports the state into a fresh stack, previews with
this checkout's program, then runs the upgrade for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from sidecar import kube_client
from tests.engine import upgrade
from tests.engine.harness import Workspace, copy_project, object_path

pytestmark = pytest.mark.engine

REPLACING: Final = {"delete", "replace", "create-replacement", "delete-replaced"}
"""What must never happen to a resource the earlier release made. New resources (a new
release's additions) are created; a renamed one would show as a create and a delete."""
RETIRED: Final = {
    f"kubernetes:core/v1:ConfigMap::{upgrade.STACK}-{name}"
    for name in ("trust-store-keys", "trust-store-jwks", "gateway-keys")
}
"""The one exception: the single key ConfigMaps that sixteen shards each replaced
(`opstrace.key_shards`), deleted once the shards are in place and the gateway's pods
read them (docs/operations.md, upgrading)."""


def retired(urn: str) -> bool:
    return any(urn.endswith(f"${suffix}") for suffix in RETIRED)


def urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def restore_objects(api: kube_client.Api, state: dict[str, Any]) -> None:
    """Apply every object the state's Kubernetes resources made, as their provider did
    (its inputs, its field manager), namespaces first."""
    resources = [
        r
        for r in state["deployment"]["resources"]
        if r["type"].startswith("kubernetes:") and r.get("custom") and not r.get("external")
    ]
    resources.sort(key=lambda r: r["type"] != "kubernetes:core/v1:Namespace")
    for resource in resources:
        outputs = resource["outputs"]
        manifest = outputs["__inputs"]
        api.apply(
            object_path(manifest), manifest, field_manager=outputs["__fieldManager"], force=True
        )


@pytest.fixture(params=sorted(upgrade.RELEASES))
def release(request: pytest.FixtureRequest) -> upgrade.Release:
    return upgrade.RELEASES[request.param]


@pytest.fixture
def imported(
    tmp_path: Path, cluster: kube_client.Api, release: upgrade.Release
) -> Iterator[Workspace]:
    """The earlier release's stack, its objects in the cluster, this checkout's program."""
    workspace = Workspace(tmp_path / "project", tmp_path / "home", tmp_path / "backend")
    workspace.project_dir.rmdir()
    copy_project(workspace.project_dir)
    upgrade.write_stack(workspace.project_dir)
    workspace.new_stack(upgrade.STACK)
    state = upgrade.restored(release.fixture.read_text())
    restore_objects(cluster, state)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    workspace.run("stack", "import", "--file", str(state_file), "--stack", upgrade.STACK)
    try:
        yield workspace
    finally:
        workspace.run("destroy", "--yes", "--skip-preview", "--stack", upgrade.STACK)


def test_a_stack_of_an_earlier_release_upgrades_with_no_replacement(
    imported: Workspace, release: upgrade.Release
) -> None:
    preview = imported.run("preview", "--json", "--stack", upgrade.STACK)
    steps = json.loads(preview.stdout)["steps"]
    replaced = [(step["op"], step["urn"]) for step in steps if step["op"] in REPLACING]
    assert [(op, urn) for op, urn in replaced if op != "delete" or not retired(urn)] == []
    created = {urn_type(step["urn"]) for step in steps if step["op"] == "create"}
    assert created >= release.added_since
    imported.run("up", "--yes", "--skip-preview", "--stack", upgrade.STACK)
    after = imported.run("preview", "--expect-no-changes", "--stack", upgrade.STACK, check=False)
    assert after.returncode == 0, after.stdout + after.stderr
