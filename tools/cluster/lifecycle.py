"""The cluster as a whole: `up`, `down`, `status`, and `running` for a test session.

`up` seeds the credentials, has kwokctl start the control plane and register the nodes
(`control_plane`), waits until they serve, installs the cert-manager stand-in's CRDs and
issuer, and starts the stand-ins' process (`stand_ins`). Every wait is bounded and fails
naming what did not come up, with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Final

from sidecar import kube_client
from tools.cluster import cert_manager, control_plane, credentials, gateway_pods
from tools.cluster.state import (
    KUBECONFIG,
    ROOT,
    STATE,
    ClusterError,
    Ports,
    read_ports,
    write_ports,
)
from tools.cluster.supervisor import Supervisor
from tools.ports import free_port

STAND_INS: Final = "lb-controller"
"""The stand-ins' process (its first job gave it the name)."""
SUPERVISOR: Final = Supervisor(STATE)


def node_ready(api: kube_client.Api, name: str) -> bool:
    node = api.get(f"/api/v1/nodes/{name}")
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def api_ready(api: kube_client.Api) -> bool:
    return str(api.request("GET", "/readyz")).strip() == "ok"


def healthy() -> bool:
    """Are all processes running and the API server ready with every node Ready?"""
    try:
        api = credentials.client(read_ports().apiserver)
        return (
            all(control_plane.alive().values())
            and SUPERVISOR.alive(STAND_INS)
            and api_ready(api)
            and all(node_ready(api, name) for name in control_plane.node_names())
        )
    except (OSError, ClusterError, kube_client.KubeApiError):
        return False


def up(log: Callable[[str], None] = print) -> Ports:
    """Start the cluster, or leave a healthy one as it is; returns its ports."""
    if healthy():
        log(f"cluster: already up and healthy (kubeconfig {KUBECONFIG})")
        return read_ports()
    if STATE.exists():
        log("cluster: state found but not healthy: stopping it and starting afresh")
        down(log=lambda _: None)
    holder = gateway_pods.ports_holder()
    if holder is not None:
        raise ClusterError(
            f"another local cluster ({holder}) runs gateway pods on this machine's ports "
            "(127.0.0.1:8443 and beside): stop it first (`make cluster-down` in its checkout)"
        )
    started = time.monotonic()
    STATE.mkdir(parents=True)
    credentials.seed()
    # Held (locked) by this process until it exits; by then every component listens.
    ports = Ports(*(free_port() for _ in range(6)))
    write_ports(ports)
    control_plane.create(ports)
    credentials.write_admin_kubeconfig(ports.apiserver)
    api = credentials.admin_api()
    # kwokctl's exit code does not say whether the cluster came up: the cluster does.
    control_plane.wait_for(partial(api_ready, api), "kube-apiserver to be ready", "kube-apiserver")
    for name in control_plane.node_names():
        control_plane.wait_for(
            partial(node_ready, api, name), f"kwok to make node {name} Ready", control_plane.KWOK
        )
    control_plane.wait_for(
        lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
        "kube-controller-manager to create the default service account",
        "kube-controller-manager",
    )
    cert_manager.install(api)
    SUPERVISOR.start(
        STAND_INS,
        [sys.executable, "-m", "tools.cluster", STAND_INS, f"--state={STATE}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if not SUPERVISOR.alive(STAND_INS):
        raise ClusterError(f"{STAND_INS} is not running\n{SUPERVISOR.log_tail(STAND_INS)}")
    log(
        f"cluster: up in {time.monotonic() - started:.1f}s: API server "
        f"https://127.0.0.1:{ports.apiserver}, {len(control_plane.node_names())} kwok nodes, "
        f"kubeconfig {KUBECONFIG}"
    )
    return ports


def down(log: Callable[[str], None] = print) -> None:
    """Stop every process (ours only, by pid), then kwokctl's, and delete the state and
    kubeconfig."""
    SUPERVISOR.stop(STAND_INS)
    control_plane.delete()
    if STATE.exists():
        shutil.rmtree(STATE)
    KUBECONFIG.unlink(missing_ok=True)
    log("cluster: down")


def status(log: Callable[[str], None] = print) -> bool:
    """Print each process's state; True if the cluster is healthy."""
    if not STATE.exists():
        log("cluster: not started (make cluster-up)")
        return False
    for name, running in control_plane.alive().items():
        log(f"  {name:24} {'running' if running else 'NOT RUNNING'}")
    log(f"  {STAND_INS:24} {'running' if SUPERVISOR.alive(STAND_INS) else 'NOT RUNNING'}")
    ok = healthy()
    log(
        f"cluster: {'healthy' if ok else 'NOT healthy'} "
        f"(kubeconfig {KUBECONFIG}, logs {SUPERVISOR.logs})"
    )
    return ok


@contextlib.contextmanager
def running() -> Iterator[kube_client.Api]:
    """The cluster for a test session, as its admin's client: a healthy one as it is, else
    one started here and stopped again at the end."""
    if healthy():
        yield credentials.admin_api()
        return
    up()
    try:
        yield credentials.admin_api()
    finally:
        down()
