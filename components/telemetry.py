"""The system tenant's own telemetry: the cluster's metrics and pod logs, via Alloy.

A collector on every node ships to the system tenant's endpoints through the gateway,
authenticated with the system tenant's data API token, held in a Kubernetes Secret
(the token, never a private key). See `opstrace.alloy_config` for what it sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.helm import helm_release
from opstrace import alloy_config, chart_values, charts

TOKEN_SECRET = "opstrace-system-token"


@dataclass(frozen=True)
class TelemetryArgs:
    """Where the system tenant's endpoints are, and its token."""

    instance: str
    domain: str
    token: pulumi.Input[str]
    """The system tenant's data API token (a secret)."""
    trusted_roots: str = ""
    """PEM CAs the collector trusts instead of the system's (Let's Encrypt's staging)."""
    image_mirrors: Mapping[str, str] = field(default_factory=dict)
    """Where its images are pulled from (`opstrace.images`)."""
    cluster_ready: tuple[pulumi.Resource, ...] = ()


class Telemetry(pulumi.ComponentResource):
    """Alloy as a DaemonSet, shipping to the system tenant."""

    namespace: pulumi.Output[str]
    """The collector's namespace, once it exists."""

    def __init__(
        self, name: str, args: TelemetryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Telemetry", name, None, opts)
        chart = charts.ALLOY
        after_cluster = pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_ready))
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=chart.namespace, labels={"app.kubernetes.io/part-of": "opstrace"}
            ),
            opts=after_cluster,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TOKEN_SECRET, namespace=namespace.metadata.name
            ),
            type="Opaque",
            string_data={alloy_config.TOKEN_FILE: pulumi.Output.secret(args.token)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        values = chart_values.alloy_values(
            alloy_config.alloy_config(args.instance, args.domain, args.trusted_roots),
            TOKEN_SECRET,
            alloy_config.TOKEN_DIR,
        )
        helm_release(
            f"{name}-alloy",
            chart,
            values,
            pulumi.ResourceOptions(parent=self, depends_on=[namespace, secret]),
            args.image_mirrors,
        )
        self.namespace = namespace.metadata.apply(lambda m: m.name or "")
        self.register_outputs({"namespace": self.namespace})
