"""The instance's Pulumi components and the pure logic beneath them.

Exports are resolved lazily: the dynamic provider host imports `components.tokens`
for every token operation, and should not pay for importing the AWS and Kubernetes
SDKs that only the components need.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Instance": "instance",
    "InstanceArgs": "instance",
    "Tenant": "tenant",
    "TenantArgs": "tenant",
    "TrustStore": "trust_store",
    "TrustStoreArgs": "trust_store",
    "Gateway": "gateway",
    "GatewayArgs": "gateway",
    "Dns": "dns",
    "DnsArgs": "dns",
    "TenantToken": "tokens",
    "TenantTokenArgs": "tokens",
    "TokenProvider": "tokens",
    "NameLock": "name_lock",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.{_EXPORTS[name]}"), name)
