"""The data API gateway: HAProxy pods that terminate TLS and authenticate data API tokens.

One package per concept; its modules, each with one job (all but `component` pure, no
Pulumi import, a test checks):
- `settings`: what a gateway is configured with, its file names, and the rules they keep;
- `routes`: the data API routes that pass (Opstrace's allowlist);
- `upstreams`: where pushes and queries go (the instance's own Mimir and Loki, or others);
- `maps`, `haproxy`: the lookup files and haproxy.cfg;
- `files`: all of them, rendered from settings and keys in one place;
- `sync`: the sidecar that loads them (and the tenants' certificates) from the API
  server into HAProxy without a restart, and reports the set it serves;
- `manifests`: the Kubernetes objects of the pods, their access and their load balancer;
- `rollout` and `component`: the `Gateway` component that registers them and waits
  until every pod serves what it registered (the only modules importing Pulumi).

`Gateway` and `GatewayArgs` are exported lazily, so that the pure modules import no SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Gateway", "GatewayArgs"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'components.gateway' has no attribute {name!r}")
    return getattr(importlib.import_module("components.gateway.component"), name)
