"""Where the local cluster keeps its files, and the ports it was given.

Everything lives under `.engine/` of the checkout: the binaries `make engine` built in
`bin/`, the cluster's state in `cluster/` (kwokctl's work directory `kwok/` with the
certificates, etcd's data, pid files and a log per component; our processes' pid files and
logs; the ports in `state.json`) and the admin kubeconfig.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent.parent
ENGINE_DIR: Final = (ROOT / ".engine").resolve()
"""Resolved: a copy whose `.engine` links to a checkout's (devtools.mutants) is that cluster."""
BIN: Final = ENGINE_DIR / "bin"
STATE: Final = ENGINE_DIR / "cluster"
KUBECONFIG: Final = ENGINE_DIR / "kubeconfig"
"""The admin's kubeconfig (client certificate embedded): what tests and operators use."""
CLUSTER_NAME: Final = "opstrace-test"
KWOK_WORKDIR: Final = STATE / "kwok"
"""kwokctl's KWOK_WORKDIR: the cluster is `clusters/<name>/` in it (pki, etcd, logs, pids)."""
CLUSTER_DIR: Final = KWOK_WORKDIR / "clusters" / CLUSTER_NAME
PKI: Final = CLUSTER_DIR / "pki"
PORTS_FILE: Final = STATE / "state.json"


class ClusterError(Exception):
    """Raised when the cluster could not be started, reached or stopped; says what."""


@dataclass(frozen=True)
class Ports:
    """The ports of one cluster on 127.0.0.1, chosen at `up`."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def write_ports(ports: Ports) -> None:
    PORTS_FILE.write_text(json.dumps({"ports": asdict(ports)}, indent=2) + "\n")


def read_ports() -> Ports:
    try:
        return Ports(**json.loads(PORTS_FILE.read_text())["ports"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"no cluster state in {STATE} (run `make cluster-up`)") from error


def binary(name: str) -> str:
    """The path of a binary `make engine` built; ClusterError if it is missing."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise ClusterError(f"{path} is missing: run `make engine` first")
    return str(path)
