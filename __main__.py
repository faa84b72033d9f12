"""The Pulumi program: one Opstrace-style instance per stack.

Configuration is read and validated here, once (see `components.rules.config`); the
components receive typed objects and never read config themselves.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.instance import Instance, InstanceArgs
from components.rules.config import InstanceConfig, load_config

PROJECT_DIR = Path(__file__).resolve().parent


def kubernetes_provider(config: InstanceConfig) -> k8s.Provider | None:
    """An explicit provider when the stack names a kubeconfig or context."""
    if not (config.kubeconfig or config.kube_context):
        return None
    return k8s.Provider(
        "kubernetes",
        kubeconfig=str(Path(config.kubeconfig).expanduser()) if config.kubeconfig else None,
        context=config.kube_context or None,
    )


def build(config: InstanceConfig) -> Instance:
    """Register the instance and export the stack outputs."""
    provider = kubernetes_provider(config)
    instance = Instance(
        config.instance_name,
        InstanceArgs(config=config),
        pulumi.ResourceOptions(providers=[provider] if provider else None),
    )
    pulumi.export("instance_dns_name", instance.dns_name)
    pulumi.export("tenants", instance.tenant_names)
    pulumi.export("endpoints", instance.endpoints)
    pulumi.export("key_ids", instance.key_ids)
    pulumi.export("tokens", instance.tokens)
    return instance


build(load_config(PROJECT_DIR))
