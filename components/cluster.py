"""The EKS cluster an instance runs on (`cluster: eks`): network, roles, nodes, OIDC.

pulumi-aws only (no pulumi-eks or awsx): the VPC, the cluster and its managed node
group, the OIDC provider that lets Kubernetes service accounts assume IAM roles (IRSA),
and the EBS CSI add-on for the backends' disks. The one Kubernetes provider of the
program is built from `kubeconfig` (see `__main__.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.irsa import GrantedRole, role, service_account_role
from components.network import Network, NetworkArgs
from components.rules import iam
from components.rules.kubeconfig import eks_kubeconfig
from components.rules.platform import PlatformConfig

EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"


@dataclass(frozen=True)
class ClusterArgs:
    """The validated platform settings (see `components.rules.platform`)."""

    platform: PlatformConfig


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with a managed node group over 2-3 zones."""

    name: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """A secret; authenticates with `aws eks get-token`."""
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_host: pulumi.Output[str]
    """The issuer URL without `https://`, as IAM conditions name it."""
    ready: list[pulumi.Resource]
    """What in-cluster resources must wait for: the nodes and the disk driver."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform = args.platform
        network = Network(
            f"{name}-network",
            NetworkArgs(
                cluster_name=name,
                cidr=platform.vpc_cidr,
                zones=platform.availability_zones,
                nat_per_zone=platform.size.nat_per_zone,
                region=platform.aws_region,
            ),
            child,
        )
        cluster_role = _service_role(
            f"{name}-control-plane", "eks.amazonaws.com", iam.MANAGED_CLUSTER_POLICIES, self
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name,
            version=platform.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[*network.private_subnet_ids, *network.public_subnet_ids],
                endpoint_public_access=True,
                endpoint_private_access=True,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=child,
        )
        node_role = _service_role(
            f"{name}-nodes", "ec2.amazonaws.com", iam.MANAGED_NODE_POLICIES, self
        )
        nodes = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=[platform.node_instance_type],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=platform.node_count,
                min_size=platform.node_count,
                max_size=platform.node_count * 2,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # After the routes (nodes join through NAT) and so before them on delete: what
            # runs on the nodes (the load balancer controller) is gone before the network.
            opts=pulumi.ResourceOptions(parent=self, depends_on=network.routing),
        )
        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_host = issuer.apply(lambda url: url.removeprefix("https://"))
        ebs_role = service_account_role(
            f"{name}-ebs-csi",
            self.oidc_provider_arn,
            self.oidc_issuer_host,
            EBS_CSI_NAMESPACE,
            EBS_CSI_SERVICE_ACCOUNT,
            parent=self,
            managed_policies=(iam.MANAGED_EBS_CSI_POLICY,),
        )
        ebs_csi = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[nodes]),
        )
        self.name = cluster.name
        self.vpc_id = network.vpc_id
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority).apply(
                lambda values: eks_kubeconfig(
                    values[0], values[1], values[2]["data"], platform.aws_region
                )
            )
        )
        self.ready = [nodes, ebs_csi]
        self.register_outputs(
            {
                "name": self.name,
                "vpc_id": self.vpc_id,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer_host": self.oidc_issuer_host,
            }
        )


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    # Output types are dicts too: item access works on what the engine and mocks return.
    return str(identities[0]["oidcs"][0]["issuer"])


def _service_role(
    name: str, service: str, managed_policies: tuple[str, ...], parent: pulumi.Resource
) -> GrantedRole:
    trust = json.dumps(iam.service_trust(service))
    return role(name, trust, parent=parent, managed_policies=managed_policies)
