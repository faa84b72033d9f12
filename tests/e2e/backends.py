"""Real metrics servers for the end-to-end tests: Prometheus and Cortex on 127.0.0.1.

Each runs from a configuration file the test renders, logs to a file beside its data,
and is ready when its own readiness endpoint says so (a bounded poll); it is stopped and
waited for on exit. Cortex is the binary `make cortex` builds (engine/build.sh cortex),
named by $OPSTRACE_CORTEX, else `cortex` on PATH or in .engine/bin.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.harness import (
    CLIENT_TIMEOUT_SECONDS,
    PROMETHEUS,
    find_tool,
    wait_until,
)
from tools.cluster import state as cluster_state
from tools.local import cortex as local_cortex
from tools.local.cortex import Gossip
from tools.ports import free_port

CORTEX_ENV: Final = "OPSTRACE_CORTEX"
"""Names the cortex binary to test; else the one `make cortex` links into .engine/bin."""
CORTEX: Final = find_tool(CORTEX_ENV, "cortex", str(cluster_state.BIN))
NEEDS_CORTEX: Final = pytest.mark.skipif(
    CORTEX is None, reason=f"cortex is not built (`make cortex`, or set {CORTEX_ENV})"
)
STOP_SECONDS: Final = 30.0
CORTEX_PROMETHEUS_PREFIX: Final = local_cortex.PROMETHEUS_PREFIX


@contextmanager
def _process(
    command: list[str], log: Path, ready: Callable[[], bool], what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running with its output in `log`, once `ready()`; stopped on exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )

    def up() -> bool:
        if process.poll() is not None:
            text = log.read_text(errors="replace")
            raise AssertionError(f"{what} exited ({process.returncode}):\n{text}")
        return ready()

    try:
        wait_until(up, what)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a plain-HTTP GET of `path` on 127.0.0.1:`port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def _answers_200(port: int, path: str) -> bool:
    try:
        return get(port, path)[0] == 200
    except OSError:
        return False


# Prometheus -----------------------------------------------------------------------------


@contextmanager
def prometheus(directory: Path, port: int, config: dict[str, Any], *flags: str) -> Iterator[None]:
    """A Prometheus on 127.0.0.1:`port` with `config`, ready when entered."""
    assert PROMETHEUS is not None
    directory.mkdir()
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [
        PROMETHEUS,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
    ]
    log = directory / "prometheus.log"
    with _process(
        command, log, lambda: _answers_200(port, "/-/ready"), f"prometheus on port {port}"
    ):
        yield


def query(port: int, promql: str) -> list[dict[str, Any]]:
    """The result of an instant query of the Prometheus on `port`."""
    status, body = get(port, "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body
    return list(json.loads(body)["data"]["result"])


# Cortex ---------------------------------------------------------------------------------


ALL_BUT_THE_DISTRIBUTOR: Final = (
    "query-frontend,querier,ingester,purger,store-gateway,ruler,compactor,alertmanager"
)
"""`-target=all` without the distributor: a Cortex that serves queries but takes no push."""


@dataclass(frozen=True)
class Cortex:
    """A running Cortex: its HTTP API on 127.0.0.1:`port`."""

    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, org_id: str | None) -> tuple[int, str]:
        """(status, body) of GET `path` straight at Cortex, as tenant `org_id` (or none)."""
        return get(self.port, path, {} if org_id is None else {"X-Scope-OrgID": org_id})


@contextmanager
def cortex(
    directory: Path,
    *,
    target: str = "all",
    gossip: Gossip | None = None,
    http_prefix: str | None = None,
    runtime_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Cortex]:
    """A Cortex with `local_cortex.write_files` (`http_prefix`, the prefix of its legacy
    routes, when given; `runtime_overrides`, the tenants' limits), ready: its `/ready`
    answers 200 (every module running, and an ingester it runs active in its ring)."""
    assert CORTEX is not None
    directory.mkdir(parents=True)
    port = free_port()
    config_file = local_cortex.write_files(
        directory,
        port,
        free_port(),
        target=target,
        gossip=gossip,
        http_prefix=http_prefix,
        runtime_overrides=runtime_overrides,
    )
    log = directory / local_cortex.LOG_FILE
    command = local_cortex.command(CORTEX, config_file)
    ready = partial(_answers_200, port, local_cortex.READY_PATH)
    with _process(command, log, ready, f"cortex on port {port}"):
        yield Cortex(port, log)


@contextmanager
def split_cortex(directory: Path) -> Iterator[tuple[Cortex, Cortex]]:
    """(distributor, the rest): Cortex split as Mimir's chart splits Mimir, one process that
    takes pushes and serves no query, one that serves queries and takes no push; the
    distributor finds the other's ingester by gossip."""
    gossip = free_port()
    with ExitStack() as stack:
        rest = stack.enter_context(
            cortex(directory / "rest", target=ALL_BUT_THE_DISTRIBUTOR, gossip=Gossip(gossip))
        )
        distributor = stack.enter_context(
            cortex(
                directory / "distributor", target="distributor", gossip=Gossip(free_port(), gossip)
            )
        )
        yield distributor, rest
