"""A real Cortex on 127.0.0.1, configured as the metrics backend of an instance.

Cortex (Apache-2.0; `make cortex` builds it from Go modules, engine/build.sh cortex) serves
the remote-write and Prometheus query APIs that Mimir serves, tenants by X-Scope-OrgID: it
stands in for Mimir (AGPL, not built here) in the end-to-end tests and in the local
instance (`tools.local`). `write_files` lays out its directory and configuration file;
`command` is how to start it; it is ready when `/ready` answers 200.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from opstrace.gateway import routes
from opstrace.policy import limits, rule_files

PROMETHEUS_PREFIX: Final = "/prometheus"
"""Where this Cortex serves the Prometheus API (Cortex's default, and Mimir's)."""
READY_PATH: Final = "/ready"
"""200 once every module runs and its ingester is active in its ring."""
RUNTIME_CONFIG: Final = "runtime.yaml"
CONFIG_FILE: Final = "cortex.yaml"
LOG_FILE: Final = "cortex.log"


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
    under `PROMETHEUS_PREFIX`; the ruler's and the Alertmanager's configuration APIs are
    on, their stores buckets in `directory`, as in Mimir: the ruler alerts the
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
        "api": {"prometheus_http_prefix": PROMETHEUS_PREFIX},
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


def write_runtime_config(
    directory: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """The runtime configuration file of the Cortex in `directory` (reloaded every second)."""
    document = limits.runtime_config(overrides or {})
    (directory / RUNTIME_CONFIG).write_text(yaml.safe_dump(document), encoding="utf-8")


def write_files(
    directory: Path,
    http_port: int,
    grpc_port: int,
    *,
    target: str = "all",
    gossip: Gossip | None = None,
    http_prefix: str | None = None,
    runtime_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """`directory` made ready for a Cortex with `cortex_config` (and `http_prefix`, the
    prefix of its legacy routes, when given; `runtime_overrides`, the tenants' limits):
    its stores, the Alertmanager's fallback, the runtime and main configuration files.
    Returns the main configuration file."""
    directory.mkdir(parents=True, exist_ok=True)
    config = cortex_config(directory, http_port, grpc_port, target=target, gossip=gossip)
    if http_prefix is not None:
        config["http_prefix"] = http_prefix
    for store in ("rules", "alerts"):
        (directory / store).mkdir(exist_ok=True)
    (directory / "alertmanager-fallback.yaml").write_text(
        rule_files.DEFAULT_ALERTMANAGER_CONFIG, encoding="utf-8"
    )
    write_runtime_config(directory, runtime_overrides)
    config_file = directory / CONFIG_FILE
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    return config_file


def command(binary: str, config_file: Path) -> list[str]:
    """How to start Cortex on `config_file` (build info has no configuration key, an
    unexported field: only the flag sets it)."""
    return [binary, f"-config.file={config_file}", "-api.build-info-enabled=true"]
