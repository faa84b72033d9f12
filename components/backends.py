"""The instance's own data plane: Grafana Mimir (metrics) and Loki (logs) on S3.

Both multi-tenant (the tenant is `X-Scope-OrgID`, set only by the gateway), each on its
own bucket with an IAM role that reaches only that bucket. A backend whose URL is in
the settings (`cortexUrl`, `lokiUrl`) is external: nothing is installed for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import pulumi

from components.helm import helm_release
from components.storage import DataBucket, DataBucketArgs
from opstrace import chart_values, charts
from opstrace.config.platform import PlatformConfig


@dataclass(frozen=True)
class BackendsArgs:
    """Which backends the instance runs, and what IRSA they use."""

    platform: PlatformConfig
    metrics: bool
    """Run Mimir (no external `cortexUrl`)."""
    logs: bool
    """Run Loki (no external `lokiUrl`)."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_host: pulumi.Input[str]
    cluster_ready: tuple[pulumi.Resource, ...] = ()
    policies: Mapping[str, chart_values.TenantPolicy] = field(default_factory=dict)
    """`metrics`/`logs` -> what that backend is told of its tenants (limits, retention,
    where alerts go)."""


class Backends(pulumi.ComponentResource):
    """Mimir and Loki Helm releases with their buckets."""

    bucket_names: dict[str, pulumi.Output[str]]
    """`metrics`/`logs` -> bucket name, for the stack outputs."""
    namespaces: dict[str, pulumi.Output[str]]
    """Each backend's namespace -> itself, once its release (which makes it) exists."""

    def __init__(
        self, name: str, args: BackendsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Backends", name, None, opts)
        platform = args.platform
        storage_class = charts.STORAGE_CLASS if platform.makes_cluster else ""
        after_cluster = pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_ready))
        self.bucket_names = {}
        self.namespaces = {}
        wanted = [
            (
                "metrics",
                charts.MIMIR,
                charts.MIMIR_SERVICE_ACCOUNT,
                chart_values.mimir_values,
                args.metrics,
            ),
            ("logs", charts.LOKI, charts.LOKI_SERVICE_ACCOUNT, chart_values.loki_values, args.logs),
        ]
        for purpose, chart, service_account, values, enabled in wanted:
            if not enabled:
                continue
            retention = (
                platform.metrics_retention_days
                if purpose == "metrics"
                else platform.logs_retention_days
            )
            bucket = DataBucket(
                f"{name}-{purpose}",
                DataBucketArgs(
                    purpose=purpose,
                    keep_data_on_destroy=platform.keep_data_on_destroy,
                    oidc_provider_arn=args.oidc_provider_arn,
                    oidc_issuer_host=args.oidc_issuer_host,
                    namespace=chart.namespace,
                    service_account=service_account,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            policy = args.policies.get(purpose, chart_values.TenantPolicy())
            release_values = pulumi.Output.all(bucket.bucket_name, bucket.role_arn).apply(
                partial(_values, values, platform, retention, storage_class, policy)
            )
            release = helm_release(
                f"{name}-{purpose}", chart, release_values, after_cluster, platform.image_mirrors
            )
            self.bucket_names[purpose] = bucket.bucket_name
            self.namespaces[chart.namespace] = release.namespace.apply(lambda ns: ns or "")
        self.register_outputs({"bucket_names": self.bucket_names})


def _values(
    build: chart_values.ValuesBuilder,
    platform: PlatformConfig,
    retention_days: int,
    storage_class: str,
    policy: chart_values.TenantPolicy,
    bucket_and_role: list[str],
) -> chart_values.Values:
    bucket, role_arn = bucket_and_role
    return build(
        platform.size, bucket, platform.aws_region, role_arn, retention_days, storage_class, policy
    )
