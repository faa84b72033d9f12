"""The EKS cluster an instance runs on (`cluster: eks`): network, roles, nodes, OIDC.

pulumi-aws only (no pulumi-eks or awsx): the VPC, the cluster and its managed node
group, the OIDC provider that lets Kubernetes service accounts assume IAM roles (IRSA),
the VPC CNI add-on with NetworkPolicy enforcement on, and the EBS CSI add-on for the
backends' disks. The one Kubernetes provider of the program is built from `kubeconfig`
(see `__main__.py`).

Hardened: the API server's public endpoint takes only `apiAllowedCidrs` (nodes use the
private one), Secrets are encrypted with a KMS key of the operator's, nodes require
IMDSv2 with a hop limit of 1 (a pod, one hop further, cannot read the node role's
credentials), and the CNI's network permissions are its own service account's, not the
node role's.
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
VPC_CNI_NAMESPACE = "kube-system"
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
"""The add-on's network policy agent enforces NetworkPolicies (components/isolation.py);
EKS runs the policy controller in the control plane."""
NODE_METADATA_OPTIONS = aws.ec2.LaunchTemplateMetadataOptionsArgs(
    http_endpoint="enabled",
    http_tokens="required",
    http_put_response_hop_limit=1,
)
"""IMDSv2 only, and its answers do not survive the hop into a pod's network namespace:
pods cannot take the node role's credentials (every AWS permission of a pod is IRSA)."""


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
        secrets_key = platform.secrets_key_arn or _secrets_key(name, self)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name,
            version=platform.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[*network.private_subnet_ids, *network.public_subnet_ids],
                endpoint_public_access=True,
                public_access_cidrs=list(platform.api_allowed_cidrs),
                endpoint_private_access=True,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key),
                resources=["secrets"],
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=child,
        )
        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_host = issuer.apply(lambda url: url.removeprefix("https://"))
        cni_role = service_account_role(
            f"{name}-vpc-cni",
            self.oidc_provider_arn,
            self.oidc_issuer_host,
            VPC_CNI_NAMESPACE,
            VPC_CNI_SERVICE_ACCOUNT,
            parent=self,
            managed_policies=(iam.MANAGED_CNI_POLICY,),
        )
        # Before the nodes, which become Ready only once the CNI can give pods addresses
        # (with its own role: the node role has no network permissions).
        vpc_cni = aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=cluster.name,
            addon_name="vpc-cni",
            service_account_role_arn=cni_role.arn,
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=child,
        )
        node_role = _service_role(
            f"{name}-nodes", "ec2.amazonaws.com", iam.MANAGED_NODE_POLICIES, self
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"EKS cluster {name}: nodes with IMDSv2 only, hop limit 1",
            metadata_options=NODE_METADATA_OPTIONS,
            update_default_version=True,
            opts=child,
        )
        nodes = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=[platform.node_instance_type],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=platform.node_count,
                min_size=platform.node_count,
                max_size=platform.node_count * 2,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # After the routes (nodes join through NAT) and so before them on delete: what
            # runs on the nodes (the load balancer controller) is gone before the network.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*network.routing, vpc_cni]),
        )
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


def _secrets_key(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A KMS key for the cluster's Secrets, rotated yearly by KMS. Its policy is KMS's
    default (the account's IAM policies decide), so that no key is left unmanageable."""
    key = aws.kms.Key(
        f"{name}-secrets",
        description=f"EKS cluster {name}: envelope encryption of Kubernetes Secrets",
        enable_key_rotation=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return key.arn


def _service_role(
    name: str, service: str, managed_policies: tuple[str, ...], parent: pulumi.Resource
) -> GrantedRole:
    trust = json.dumps(iam.service_trust(service))
    return role(name, trust, parent=parent, managed_policies=managed_policies)
