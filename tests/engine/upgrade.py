"""A stack as an earlier release of the program left it, for the upgrade test.

    python -m tests.engine.upgrade record NAME  # deploy with this checkout, save the state

`record` deploys `stack_config()` with this checkout's program on the local cluster
(`make cluster-up`), exports the state to `fixtures/state-before-NAME.json` and destroys
the stack again. Run it on the commit before a change that moves code the state names
(modules, components), then add the fixture to `RELEASES` with that change:
`test_upgrade.py` imports each recorded state into a fresh stack and previews it with the
new program, which must replace nothing. The state
holds public keys and passphrase-encrypted tokens of throwaway credentials, never a
private key (the token provider keeps none).

Paths of the machine that recorded it are written as `@KUBECONFIG@`; `restored` puts
this machine's back.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tests.engine.harness import Workspace, copy_project, local_stack
from tools import cluster as local_cluster

FIXTURES: Final = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class Release:
    """An earlier release's recorded state."""

    fixture: Path
    recorded_at: str
    added_since: frozenset[str]
    """Types that release did not have: the upgrade creates resources of theirs."""


RELEASES: Final = {
    "gateway-package": Release(
        FIXTURES / "state-before-gateway-package.json",
        "001ebc1 + issue 14 (main before components/gateway/ became a package)",
        frozenset(
            {
                "opstrace:index:Isolation",
                "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                "pulumi-python:dynamic/opstrace:NetworkPolicyEnforcement",
            }
        ),
    ),
    "house-move": Release(
        FIXTURES / "state-before-house-move.json",
        "82e8eca (main before the pure rules moved to opstrace/ and the pod's code to sidecar/)",
        frozenset(),
    ),
}
PROJECT: Final = "opstrace"
STACK: Final = "upgrade"
KUBECONFIG_PLACEHOLDER: Final = "@KUBECONFIG@"


def stack_config() -> dict[str, Any]:
    """A stack with every kind of resource the engine can run here: bound and shared
    keys, two credentials of one tenant, the gateway, the trust store, the name lock."""
    # A public key's PEM as text (`*.pem` files are kept out of the repository, for
    # exported private keys' sake).
    trusted = Path(__file__).resolve().parent / "fixtures" / "trusted-public-key.txt"
    return {
        **local_stack("upgrade", ["prod", {"name": "staging", "tokens": ["default", "ci"]}]),
        "opstrace:trustedKeys": [{"key": trusted.read_text(), "tenant": "prod"}],
    }


def write_stack(project_dir: Path) -> None:
    stacks = project_dir / "stacks"
    stacks.mkdir(exist_ok=True)
    document = {"config": stack_config()}
    (stacks / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def restored(exported: str) -> dict[str, Any]:
    """The recorded state with this machine's local-cluster paths."""
    text = exported.replace(KUBECONFIG_PLACEHOLDER, json.dumps(str(local_cluster.KUBECONFIG))[1:-1])
    state: dict[str, Any] = json.loads(text)
    return state


def record(checkout: Path, fixture: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="upgrade-record-") as scratch:
        base = Path(scratch)
        workspace = Workspace(base / "project", base / "home", base / "backend")
        shutil.rmtree(workspace.project_dir)
        copy_project(workspace.project_dir, checkout)
        write_stack(workspace.project_dir)
        workspace.new_stack(STACK)
        workspace.run("up", "--yes", "--skip-preview", "--stack", STACK)
        exported = workspace.run("stack", "export", "--stack", STACK).stdout
        workspace.run("destroy", "--yes", "--skip-preview", "--stack", STACK)
    path = json.dumps(str(local_cluster.KUBECONFIG))[1:-1]
    fixture.parent.mkdir(exist_ok=True)
    fixture.write_text(exported.replace(path, KUBECONFIG_PLACEHOLDER))
    print(f"recorded {fixture} ({fixture.stat().st_size} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "record":
        sys.exit(__doc__)
    record(
        Path(__file__).resolve().parent.parent.parent, FIXTURES / f"state-before-{sys.argv[2]}.json"
    )
