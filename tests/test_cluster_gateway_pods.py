"""The local cluster's gateway pod runner: which pods it runs, and one cluster at a time."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sidecar import contract, kube_client
from tools.cluster import gateway_pods
from tools.cluster.state import STATE


def earlier_release_pod() -> dict[str, Any]:
    """A gateway pod as the release before the sidecar made it: volumes, no gateway-sync."""
    return {
        "metadata": {"uid": "u-1", "name": "gateway-old", "namespace": "system-tenant"},
        "spec": {"containers": [{"name": "haproxy"}, {"name": "reload"}], "volumes": []},
    }


def test_a_pod_of_an_earlier_release_is_named_once_and_not_run() -> None:
    runner = gateway_pods.Runner(kube_client.Api("https://127.0.0.1:1"), apiserver_port=1)
    assert runner.reconcile([earlier_release_pod()]) == [
        "gateway pod system-tenant/gateway-old not run: an earlier release's (no gateway-sync)"
    ]
    assert runner.reconcile([earlier_release_pod()]) == []
    assert runner.running == {}


@pytest.fixture
def lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "gateway-pods.lock"
    monkeypatch.setattr(gateway_pods, "PORTS_LOCK", path)
    return path


def test_while_one_cluster_runs_gateway_pods_another_is_told_whose_they_are(
    lock_file: Path,
) -> None:
    held = gateway_pods.hold_ports()
    assert held is not None
    try:
        assert gateway_pods.hold_ports() is None
        assert gateway_pods.ports_holder() == str(STATE)
    finally:
        os.close(held)
    assert gateway_pods.ports_holder() is None


def test_a_pods_master_socket_fits_haproxys_limit_wherever_the_checkout_is() -> None:
    # HAProxy refuses a master socket path over 97 bytes; a CI checkout's path is long.
    uid = "0123abcd-4567-89ef-0123-456789abcdef"
    run = {"name": "run", "mountPath": contract.RUN_DIR}
    pod = {
        "metadata": {"uid": uid, "name": "gateway-1", "namespace": "system-tenant"},
        "spec": {
            "initContainers": [{"name": "gateway-sync", "volumeMounts": [run]}],
            "containers": [{"name": "haproxy", "volumeMounts": [run]}],
            "volumes": [{"name": "run", "emptyDir": {}}],
        },
    }
    local = gateway_pods.LocalPod(kube_client.Api("https://127.0.0.1:1"), pod, apiserver_port=1)
    try:
        socket = local.mounts[contract.RUN_DIR] / Path(contract.MASTER_SOCKET).name
        assert not socket.is_relative_to(STATE.parent)
        assert len(str(socket).encode()) <= 97
    finally:
        shutil.rmtree(local.root)
