"""The cluster as a whole: `up`, `down`, `status`, and `running` for a test session.

`up` makes the credentials, starts the control plane (`control_plane`), registers the
nodes (`nodes`), installs the cert-manager stand-in's CRDs and issuer, and starts the
stand-ins' process (`stand_ins`). Every wait is a bounded poll that fails naming what did
not come up, with the tail of its log.
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

from components import kube_api
from tools.cluster import cert_manager, control_plane, credentials, gateway_pods, nodes
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
PROCESSES: Final = (*control_plane.COMPONENTS, STAND_INS)
SUPERVISOR: Final = Supervisor(STATE)


def healthy() -> bool:
    """Are all processes running and the API server ready with every node Ready?"""
    try:
        ports = read_ports()
        api = credentials.client(ports.apiserver)
        return (
            all(SUPERVISOR.alive(name) for name in PROCESSES)
            and control_plane.ready(ports.apiserver, "/readyz")
            and all(nodes.node_ready(api, name) for name, _ in nodes.NODES)
        )
    except (OSError, ClusterError, kube_api.KubeApiError):
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
    credentials.make_pki()
    # Held (locked) by this process until it exits; by then every component listens.
    ports = Ports(*(free_port() for _ in range(6)))
    write_ports(ports)
    for user in ("kube-controller-manager", "kube-scheduler", "kwok"):
        credentials.write_kubeconfig(
            STATE / f"{user}.kubeconfig", user, ports.apiserver, embed=False
        )
    credentials.write_kubeconfig(KUBECONFIG, "admin", ports.apiserver, embed=True)

    control_plane.start(ports, SUPERVISOR)
    api = credentials.admin_api()
    nodes.create_nodes(api)
    for name, _ in nodes.NODES:
        SUPERVISOR.wait_for(
            partial(nodes.node_ready, api, name), f"kwok to make node {name} Ready", "kwok"
        )
    SUPERVISOR.wait_for(
        lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
        "kube-controller-manager to create the default service account",
        "kube-controller-manager",
    )
    cert_manager.install(api, SUPERVISOR)
    SUPERVISOR.start(
        STAND_INS,
        [sys.executable, "-m", "tools.cluster", STAND_INS, f"--state={STATE}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if not SUPERVISOR.alive(STAND_INS):
        raise ClusterError(f"{STAND_INS} is not running\n{SUPERVISOR.log_tail(STAND_INS)}")
    log(
        f"cluster: up in {time.monotonic() - started:.1f}s: API server "
        f"https://127.0.0.1:{ports.apiserver}, {len(nodes.NODES)} kwok nodes, "
        f"kubeconfig {KUBECONFIG}"
    )
    return ports


def down(log: Callable[[str], None] = print) -> None:
    """Stop every process (ours only, by pid) and delete the state and kubeconfig."""
    for name in reversed(PROCESSES):
        SUPERVISOR.stop(name)
    if STATE.exists():
        shutil.rmtree(STATE)
    KUBECONFIG.unlink(missing_ok=True)
    log("cluster: down")


def status(log: Callable[[str], None] = print) -> bool:
    """Print each process's state; True if the cluster is healthy."""
    if not STATE.exists():
        log("cluster: not started (make cluster-up)")
        return False
    for name in PROCESSES:
        state = "running" if SUPERVISOR.alive(name) else "NOT RUNNING"
        log(f"  {name:24} pid {SUPERVISOR.pid(name)!s:8} {state}")
    ok = healthy()
    log(
        f"cluster: {'healthy' if ok else 'NOT healthy'} "
        f"(kubeconfig {KUBECONFIG}, logs {SUPERVISOR.logs})"
    )
    return ok


@contextlib.contextmanager
def running() -> Iterator[kube_api.Api]:
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
