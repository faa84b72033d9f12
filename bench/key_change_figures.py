"""The pure parts of one credential's change at 1,000 to 10,000 credentials.

An instance of tenants with four credentials each (three tokens and a Grafana's), stand-in
RSA-2048 keys. For each size: the time to render every key-derived ConfigMap (what each
`up` computes), then for each change (a credential added, one revoked: its key replaced,
one removed) the ConfigMaps whose data changed and their bytes beside all of them (what
the API server and every watching pod receive), and the time a gateway pod's sidecar
takes to join and check the whole set it then loads (`sidecar.sync.file_set`).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from opstrace import config_maps, keys
from opstrace.config.schema import InstanceConfig
from opstrace.config.stack import config_of_stack
from opstrace.gateway import files as gateway_files
from opstrace.gateway.files import KeyEntry
from sidecar import contract, sync
from tools.stack_files import stack_config

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
TOKENS: Final = ("agent", "reader", "ci")
"""Each tenant's tokens; its Grafana's credential is the fourth."""


def instance(credentials: int) -> InstanceConfig:
    """The shipped dev stack with tenants of four credentials, `credentials` in all."""
    tenants = [{"name": f"t{i}", "tokens": list(TOKENS)} for i in range(credentials // 4)]
    config = {
        **stack_config("dev"),
        "opstrace:domain": "observability.acme.dev",
        "opstrace:tenants": tenants,
    }
    return config_of_stack(config, PROJECT_DIR, plan=True)


def entries(config: InstanceConfig) -> list[KeyEntry]:
    """Every credential's entry with a stand-in key of its own."""
    return [
        dataclasses.replace(
            config.key_entry(tenant, token),
            pem=keys.stand_in_public_key(f"{tenant.name}/{token.name}", 2048),
        )
        for tenant in config.tenants
        for token in tenant.tokens
    ]


def documents(config: InstanceConfig, listed: list[KeyEntry]) -> dict[str, dict[str, str]]:
    return {
        name: document.data
        for name, document in config_maps.instance_config_maps(listed, config.gateway).items()
    }


def changed(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> str:
    names = [name for name in after if before.get(name) != after[name]]
    size = sum(config_maps.data_size(after[name]) for name in names)
    total = sum(config_maps.data_size(data) for data in after.values())
    return f"{len(names)} of {len(after)} ConfigMaps, {size / 1e6:.2f} of {total / 1e6:.1f} MB"


def sidecar_seconds(config: InstanceConfig, listed: list[KeyEntry]) -> float:
    """A pod's sidecar joining and checking the whole set (certificates stood in for)."""
    data = gateway_files.config_map_data(gateway_files.gateway_files(config.gateway, listed))
    pem = base64.b64encode(b"stand-in").decode()
    secrets: dict[str, Any] = {
        tenant: {
            "metadata": {"labels": {contract.TENANT_LABEL: tenant}},
            "data": {"tls.crt": pem, "tls.key": pem},
        }
        for tenant in config.gateway.tenants
    }
    started = time.perf_counter()
    sync.file_set(data, secrets, gateway_files.CONFIG_MAP_ROLES)
    return time.perf_counter() - started


def measure(credentials: int) -> None:
    config = instance(credentials)
    listed = entries(config)
    started = time.perf_counter()
    before = documents(config, listed)
    render = time.perf_counter() - started
    name = f"{listed[-1].tenant}/extra"
    added = dataclasses.replace(
        listed[-1], pem=keys.stand_in_public_key(name, 2048), name=name, holder=name
    )
    rotated = dataclasses.replace(listed[1], pem=keys.stand_in_public_key("rotated", 2048))
    print(f"  {len(listed)} credentials: every key-derived ConfigMap rendered in {render:.2f}s")
    for change, after in (
        ("add", [*listed, added]),
        ("revoke", [listed[0], rotated, *listed[2:]]),
        ("remove", listed[:1] + listed[2:]),
    ):
        rewritten = changed(before, documents(config, after))
        print(f"  {len(listed)} credentials: {change:<6} changes {rewritten}")
    print(
        f"  {len(listed)} credentials: a pod's sidecar joins and checks the set in "
        f"{sidecar_seconds(config, listed):.2f}s"
    )


def main(sizes: Sequence[int]) -> None:
    print("one credential's change, pure parts (stand-in RSA-2048 keys)")
    for size in sizes:
        measure(size)
