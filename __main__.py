"""The Pulumi program: one Opstrace-style instance per stack.

Configuration is read and validated here, once (see `opstrace.config.parse`); the
components receive typed objects and never read config themselves. A configuration
mistake ends the program with one line (`components.bail`), never a traceback, before
any resource is registered.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.bail import bail, quietly_after_the_engine_stops
from components.cluster import Cluster, ClusterArgs
from components.gateway.component import ClusterAccess
from components.instance import Instance, InstanceArgs
from opstrace.config.parse import ConfigError
from opstrace.config.schema import InstanceConfig
from opstrace.config.stack import OFFLINE_PLAN, load_config
from opstrace.state_checkpoints import checkpoint_advice

PROJECT_DIR = Path(__file__).resolve().parent
KUBERNETES_PROVIDER = "kubernetes"
"""The explicit provider's logical name: part of every Kubernetes resource's identity,
so it never changes (stacks from before it existed move to it without a replacement;
see the README)."""


def cluster_access(config: InstanceConfig, cluster: Cluster | None) -> ClusterAccess:
    """How this machine reaches the instance's cluster: the cluster the program made
    (eks), else `kubeconfig`/`kubeContext` when set (the path as written: it is expanded
    where it is used), else the ambient configuration."""
    if cluster is not None:
        return ClusterAccess(kubeconfig=cluster.kubeconfig)
    return ClusterAccess(kubeconfig_path=config.kubeconfig, context=config.kube_context)


def kubernetes_provider(config: InstanceConfig, access: ClusterAccess) -> k8s.Provider:
    """The instance's one Kubernetes provider, registered whatever the config says.

    `cluster_identifier` makes the cluster's identity the instance's, so that pointing at
    the same cluster through another kubeconfig later replaces nothing. ConfigMaps are
    updated in place (see TrustStore).
    """
    return k8s.Provider(
        KUBERNETES_PROVIDER,
        kubeconfig=access.kubeconfig or access.kubeconfig_path or None,
        context=access.context or None,
        cluster_identifier=f"opstrace-{config.instance_name}",
        enable_config_map_mutable=True,
    )


def build(config: InstanceConfig) -> Instance:
    """Register the instance (and its cluster, in eks mode) and export the stack outputs."""
    cluster = (
        Cluster(f"{config.instance_name}-cluster", ClusterArgs(platform=config.platform))
        if config.platform.makes_cluster
        else None
    )
    access = cluster_access(config, cluster)
    instance = Instance(
        config.instance_name,
        InstanceArgs(config=config, cluster=cluster, cluster_access=access),
        pulumi.ResourceOptions(providers=[kubernetes_provider(config, access)]),
    )
    pulumi.export("instance_dns_name", instance.dns_name)
    pulumi.export("tenants", instance.tenant_names)
    pulumi.export("endpoints", instance.endpoints)
    pulumi.export("key_ids", instance.key_ids)
    pulumi.export("tokens", instance.tokens)
    pulumi.export("token_expiry", instance.token_expiry)
    pulumi.export("token_scopes", config.token_scopes())
    pulumi.export("token_rate_limits", config.token_rate_limits())
    pulumi.export("dns_records", instance.dns_records)
    pulumi.export(
        "grafana_admin_passwords",
        pulumi.Output.secret(
            pulumi.Output.all(**{t: g.admin_password for t, g in instance.grafanas.items()})
        ),
    )
    if instance.name_servers is not None:
        pulumi.export("name_servers", instance.name_servers)
    pulumi.export("bucket_names", instance.bucket_names)
    pulumi.export("tenant_policy", config.tenant_policy())
    if cluster is not None:
        pulumi.export("kubeconfig", cluster.kubeconfig)
    return instance


def main(*, plan: bool = False) -> None:
    """Read the stack and register the instance; `plan`: run by the offline plan, which
    creates nothing (see `opstrace.config.stack.OFFLINE_PLAN`)."""
    quietly_after_the_engine_stops()
    try:
        config = load_config(PROJECT_DIR, plan=plan)
    except ConfigError as error:
        bail(error)
    credentials = sum(len(tenant.tokens) for tenant in config.tenants)
    if advice := checkpoint_advice(credentials, os.environ):
        pulumi.log.warn(advice)
    # A large program spends half its time in Python's collector, scanning thousands of
    # long-lived objects (imported SDKs, resources) that it never frees: keep what
    # exists now out of its way, and collect young objects rarely. At 1,000 tenants
    # this cuts the run by about 40% for 5% more memory (bench.program_bench).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    build(config)


main(plan=globals().get(OFFLINE_PLAN) is True)
