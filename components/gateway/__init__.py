"""The data API gateway's resources: the `Gateway` component and the rollout it waits on.

- `component`: `Gateway`, which registers the pods, their files, access and load
  balancer, all rendered by the pure `opstrace.gateway` (settings, routes, upstreams,
  haproxy.cfg and maps, the Kubernetes objects);
- `rollout`: `GatewayRollout` (a dynamic provider; its module path is in every stack's
  state), which makes `up` wait until every pod serves what was registered.

What runs in the pods (the sync sidecar) is `sidecar`. `Gateway` and `GatewayArgs` are
exported lazily, so that the provider host importing `rollout` imports no SDK it needs not.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Gateway", "GatewayArgs"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'components.gateway' has no attribute {name!r}")
    return getattr(importlib.import_module("components.gateway.component"), name)
