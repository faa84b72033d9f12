"""What the edge needs inside the cluster: a load balancer controller and cert-manager.

With `cluster: eks` the program installs them: the AWS Load Balancer Controller (the
gateway's NLB), cert-manager with a Let's Encrypt ClusterIssuer answering DNS-01 in the
instance zone (the tenants' certificates), and the default encrypted gp3 disk class.
With `cluster: existing` it installs nothing and checks instead, at preview, that what
the settings rely on is there: reading an object that does not exist stops the preview
naming it, so `pulumi up` never waits for a load balancer or a certificate that no
controller will make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.helm import helm_release
from components.irsa import service_account_role
from opstrace import certificates, chart_values, charts
from opstrace.aws import iam
from opstrace.config.platform import PlatformConfig

LOAD_BALANCER_CONTROLLER_INGRESS_CLASS = "alb"
"""The IngressClass the AWS Load Balancer Controller's chart makes: its mark in a cluster."""


@dataclass(frozen=True)
class ClusterAddonsArgs:
    """The platform settings and, in eks mode, the cluster's identity."""

    platform: PlatformConfig
    instance: str = ""
    """The instance name: the tag of the disks `destroy` leaves."""
    cluster_name: pulumi.Input[str] | None = None
    vpc_id: pulumi.Input[str] | None = None
    oidc_provider_arn: pulumi.Input[str] | None = None
    oidc_issuer_host: pulumi.Input[str] | None = None
    zone_id: pulumi.Input[str] | None = None
    """The instance zone cert-manager answers DNS-01 challenges in (eks mode)."""
    cluster_ready: tuple[pulumi.Resource, ...] = ()


class ClusterAddons(pulumi.ComponentResource):
    """Installed (eks) or checked (existing) cluster add-ons the edge depends on."""

    load_balancer: list[pulumi.Resource]
    """What the gateway's Service must wait for (and be deleted before)."""
    certificates: list[pulumi.Resource]
    """What tenant certificates must wait for (and be deleted before)."""

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:ClusterAddons", name, None, opts)
        platform = args.platform
        if platform.makes_cluster:
            self._install(name, args)
        else:
            self._check(name, platform)
        self.register_outputs({})

    def _install(self, name: str, args: ClusterAddonsArgs) -> None:
        platform = args.platform
        after_cluster = pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_ready))
        assert args.oidc_provider_arn is not None, "eks mode passes the cluster's identity"
        assert args.oidc_issuer_host is not None, "eks mode passes the cluster's identity"
        classes = {"gp3": certificates.encrypted_gp3_storage_class(charts.STORAGE_CLASS)}
        if platform.keep_data_on_destroy:
            classes["gp3-retained"] = certificates.encrypted_gp3_storage_class(
                charts.RETAINED_STORAGE_CLASS, args.instance, retain=True
            )
        for suffix, storage_class in classes.items():
            k8s.storage.v1.StorageClass(
                f"{name}-{suffix}",
                metadata=storage_class["metadata"],
                provisioner=storage_class["provisioner"],
                parameters=storage_class["parameters"],
                reclaim_policy=storage_class["reclaimPolicy"],
                volume_binding_mode=storage_class["volumeBindingMode"],
                allow_volume_expansion=storage_class["allowVolumeExpansion"],
                opts=after_cluster,
            )
        lbc = charts.LOAD_BALANCER_CONTROLLER
        lbc_role = service_account_role(
            f"{name}-lbc",
            args.oidc_provider_arn,
            args.oidc_issuer_host,
            lbc.namespace,
            charts.LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
            parent=self,
            policy=json.dumps(iam.load_balancer_controller()),
        )
        controller = helm_release(
            f"{name}-lbc",
            lbc,
            pulumi.Output.all(args.cluster_name, args.vpc_id, lbc_role.arn).apply(
                lambda values: chart_values.load_balancer_controller_values(
                    values[0], platform.aws_region, values[1], values[2]
                )
            ),
            after_cluster,
            platform.image_mirrors,
        )
        cm = charts.CERT_MANAGER
        cm_role = service_account_role(
            f"{name}-cert-manager",
            args.oidc_provider_arn,
            args.oidc_issuer_host,
            cm.namespace,
            charts.CERT_MANAGER_SERVICE_ACCOUNT,
            parent=self,
            policy=pulumi.Output.from_input(args.zone_id).apply(
                lambda zone: json.dumps(iam.dns01_challenges(zone or ""))
            ),
        )
        cert_manager = helm_release(
            f"{name}-cert-manager",
            cm,
            cm_role.arn.apply(chart_values.cert_manager_values),
            after_cluster,
            platform.image_mirrors,
        )
        issuer = pulumi.Output.from_input(args.zone_id).apply(
            lambda zone: certificates.acme_cluster_issuer(
                platform.certificate_issuer,
                platform.acme_server,
                platform.acme_email,
                platform.aws_region,
                zone or "",
            )
        )
        cluster_issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version=certificates.API_VERSION,
            kind="ClusterIssuer",
            metadata=issuer.apply(lambda doc: doc["metadata"]),
            spec=issuer.apply(lambda doc: doc["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cert_manager]),
        )
        self.load_balancer = [controller]
        self.certificates = [cluster_issuer]

    def _check(self, name: str, platform: PlatformConfig) -> None:
        # Reads of objects that do not change by themselves, so that a refresh finds
        # nothing to change (a CRD read shows a diff on every refresh).
        child = pulumi.ResourceOptions(parent=self)
        self.load_balancer = []
        if platform.load_balancer == "aws":
            self.load_balancer.append(
                k8s.networking.v1.IngressClass.get(
                    f"{name}-lbc-present", LOAD_BALANCER_CONTROLLER_INGRESS_CLASS, opts=child
                )
            )
        # A ClusterIssuer exists only where cert-manager's CRDs do.
        issuer = k8s.apiextensions.CustomResource.get(
            f"{name}-issuer-present",
            api_version=certificates.API_VERSION,
            kind="ClusterIssuer",
            id=platform.certificate_issuer,
            opts=child,
        )
        self.certificates = [issuer]
