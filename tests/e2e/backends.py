"""Real metrics servers for the end-to-end tests: Prometheus and Cortex on 127.0.0.1.

Each runs from a configuration file the test renders, logs to a file beside its data,
and is ready when its own readiness endpoint says so (a bounded poll); it is stopped and
waited for on exit. Cortex is the binary `make cortex` builds (tools/cortex/build.sh),
named by $OPSTRACE_CORTEX, else `cortex` on PATH.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from components.gateway import routes
from components.rules import alerting, limits
from tests.e2e.harness import (
    CLIENT_TIMEOUT_SECONDS,
    PROMETHEUS,
    find_tool,
    wait_until,
)
from tools.ports import free_port

CORTEX_ENV: Final = "OPSTRACE_CORTEX"
"""Names the cortex binary to test (the last line `make cortex` prints)."""
CORTEX: Final = find_tool(CORTEX_ENV, "cortex")
NEEDS_CORTEX: Final = pytest.mark.skipif(
    CORTEX is None,
    reason=f"cortex is not built (`make cortex` prints its path: set {CORTEX_ENV} to it)",
)
STOP_SECONDS: Final = 30.0
CORTEX_PROMETHEUS_PREFIX: Final = "/prometheus"
"""Where the tests' Cortex serves the Prometheus API (Cortex's default, and Mimir's)."""


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
class Gossip:
    """The memberlist of one Cortex process: its port, and the peer it joins (if any)."""

    port: int
    join: int | None = None


def cortex_config(
    directory: Path,
    http_port: int,
    grpc_port: int,
    *,
    target: str = "all",
    gossip: Gossip | None = None,
) -> dict[str, Any]:
    """Cortex running `target`, multi-tenant, blocks in `directory`.

    Every address is 127.0.0.1 (no interface lookup). The rings live in memory, except
    the ingester ring with `gossip`: then it is shared with the other processes by
    memberlist on 127.0.0.1. The Alertmanager's cluster port is off. The Prometheus API is
    under `CORTEX_PROMETHEUS_PREFIX`; the ruler's and the Alertmanager's configuration
    APIs are on, their stores buckets in `directory`, as in Mimir: the ruler alerts the
    Alertmanager, which runs the program's default for a tenant without a configuration;
    the tenants' limits come from a runtime configuration file reloaded every second.
    """
    ring = {"kvstore": {"store": "inmemory"}}
    local = {"instance_addr": "127.0.0.1", **ring}
    ingesters = ring if gossip is None else {"kvstore": {"store": "memberlist"}}
    config: dict[str, Any] = {
        "target": target,
        "auth_enabled": True,
        "server": {
            "http_listen_address": "127.0.0.1",
            "http_listen_port": http_port,
            "grpc_listen_address": "127.0.0.1",
            "grpc_listen_port": grpc_port,
        },
        "api": {"prometheus_http_prefix": CORTEX_PROMETHEUS_PREFIX},
        "distributor": {"shard_by_all_labels": True, "ring": local},
        "ingester": {
            "lifecycler": {
                "address": "127.0.0.1",
                "min_ready_duration": "0s",
                "final_sleep": "0s",
                "num_tokens": 16,
                "ring": {**ingesters, "replication_factor": 1},
            }
        },
        "blocks_storage": {
            "backend": "filesystem",
            "filesystem": {"dir": str(directory / "blocks")},
            "tsdb": {"dir": str(directory / "tsdb")},
            "bucket_store": {"sync_dir": str(directory / "tsdb-sync")},
        },
        "compactor": {"data_dir": str(directory / "compactor"), "sharding_ring": local},
        "store_gateway": {"sharding_ring": local},
        "frontend_worker": {"match_max_concurrent": True},
        "querier": {"active_query_tracker_dir": str(directory / "active-query-tracker")},
        "ruler": {
            "enable_api": True,
            "rule_path": str(directory / "ruler"),
            "ring": local,
            # Rules uploaded through the API are loaded within a second, not a minute.
            "poll_interval": "1s",
            "alertmanager_url": f"http://127.0.0.1:{http_port}{routes.ALERTMANAGER_PREFIX}",
        },
        # Bucket stores, writable through the APIs as the program's S3 is (`local` is not).
        "ruler_storage": {"backend": "filesystem", "filesystem": {"dir": str(directory / "rules")}},
        "alertmanager": {
            "data_dir": str(directory / "alertmanager"),
            "external_url": f"http://127.0.0.1{routes.ALERTMANAGER_PREFIX}",
            "cluster": {"listen_address": ""},
            "sharding_ring": local,
            "enable_api": True,
            # Every tenant's configuration until it uploads its own, as the program's.
            "fallback_config_file": str(directory / "alertmanager-fallback.yaml"),
            "poll_interval": "1s",
        },
        "alertmanager_storage": {
            "backend": "filesystem",
            "filesystem": {"dir": str(directory / "alerts")},
        },
        # The tenants' overrides as the program renders them for Mimir (`runtime_overrides`).
        "runtime_config": {"file": str(directory / RUNTIME_CONFIG), "period": "1s"},
    }
    if target != "all":
        # Only `all` finds its own store-gateway by itself.
        config["querier"]["store_gateway_addresses"] = f"127.0.0.1:{grpc_port}"
    if gossip is not None:
        config["memberlist"] = {
            "bind_addr": ["127.0.0.1"],
            "bind_port": gossip.port,
            "advertise_addr": "127.0.0.1",
            "advertise_port": gossip.port,
            "join_members": [] if gossip.join is None else [f"127.0.0.1:{gossip.join}"],
        }
    return config


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


RUNTIME_CONFIG: Final = "runtime.yaml"


def write_runtime_config(
    directory: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """The runtime configuration file of the Cortex in `directory` (reloaded every second)."""
    document = limits.runtime_config(overrides or {})
    (directory / RUNTIME_CONFIG).write_text(yaml.safe_dump(document), encoding="utf-8")


@contextmanager
def cortex(
    directory: Path,
    *,
    target: str = "all",
    gossip: Gossip | None = None,
    http_prefix: str | None = None,
    runtime_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Cortex]:
    """A Cortex with `cortex_config` (and `http_prefix`, the prefix of its legacy routes,
    when given; `runtime_overrides`, the tenants' limits), ready: its `/ready` answers 200
    (every module running, and an ingester it runs active in its ring)."""
    assert CORTEX is not None
    directory.mkdir(parents=True)
    port = free_port()
    config = cortex_config(directory, port, free_port(), target=target, gossip=gossip)
    if http_prefix is not None:
        config["http_prefix"] = http_prefix
    for store in ("rules", "alerts"):
        (directory / store).mkdir()
    (directory / "alertmanager-fallback.yaml").write_text(
        alerting.DEFAULT_ALERTMANAGER_CONFIG, encoding="utf-8"
    )
    write_runtime_config(directory, runtime_overrides)
    config_file = directory / "cortex.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    log = directory / "cortex.log"
    # Build info has no configuration key (an unexported field): only the flag sets it.
    command = [CORTEX, f"-config.file={config_file}", "-api.build-info-enabled=true"]
    with _process(command, log, lambda: _answers_200(port, "/ready"), f"cortex on port {port}"):
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
