"""The EKS cluster an instance runs on (`cluster: eks`): network, roles, nodes, OIDC.

pulumi-aws only (no pulumi-eks or awsx): the VPC, the cluster and its managed node
group, the OIDC provider that lets Kubernetes service accounts assume IAM roles (IRSA),
EKS add-ons at pinned versions (`opstrace.aws.eks_versions`): the VPC CNI with
NetworkPolicy enforcement on, CoreDNS, kube-proxy and the EBS CSI driver for the
backends' disks; the control plane's log group with a retention, and an access entry per
`clusterAdmins` principal. The one Kubernetes provider of the program is built from
`kubeconfig` (see `__main__.py`).

Hardened: the API server's public endpoint takes only `apiAllowedCidrs` (nodes use the
private one), Secrets are encrypted with a KMS key of the operator's, nodes require
IMDSv2 with a hop limit of 1 (a pod, one hop further, cannot read the node role's
credentials), and the CNI's network permissions are its own service account's, not the
node role's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.irsa import GrantedRole, role, service_account_role
from components.network import Network, NetworkArgs
from opstrace.aws import access_entries, eks_versions, iam
from opstrace.aws.eks_kubeconfig import eks_kubeconfig
from opstrace.config.platform import PlatformConfig

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
CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator"]


def control_plane_log_group(cluster_name: str) -> str:
    """Where EKS writes the control plane's logs ("The log group name format is
    `/aws/eks/my-cluster/cluster`": EKS user guide,
    latest/ug/observability/control-plane-logs.adoc)."""
    return f"/aws/eks/{cluster_name}/cluster"


@dataclass(frozen=True)
class ClusterArgs:
    """The validated platform settings (see `opstrace.config.platform`)."""

    platform: PlatformConfig


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with a managed node group over 2-3 zones."""

    name: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    egress_addresses: pulumi.Output[list[str]]
    """Where its nodes' and pods' outbound traffic comes from (`Network.egress_addresses`)."""
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
        platform = args.platform
        network = Network(
            f"{name}-network",
            NetworkArgs(
                cluster_name=name,
                cidr=platform.vpc_cidr,
                zones=platform.zone_names or platform.availability_zones,
                nat_per_zone=platform.size.nat_per_zone,
                region=platform.aws_region,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        cluster = self._control_plane(name, platform, network)
        admins = _cluster_admins(name, cluster.name, platform.cluster_admins, self)
        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_host = issuer.apply(lambda url: url.removeprefix("https://"))
        addon = _Addons(name, cluster.name, platform.kubernetes_version, self)
        nodes = self._nodes(name, platform, network, cluster, addon)
        # On the nodes: each runs pods that must become ready. CoreDNS and kube-proxy
        # replace the self-managed copies EKS installs with a new cluster (OVERWRITE).
        on_nodes = pulumi.ResourceOptions(parent=self, depends_on=[nodes])
        ebs_csi = addon(
            "ebs-csi",
            eks_versions.EBS_CSI,
            on_nodes,
            takes_over=False,
            service_account_role_arn=self._irsa_role(
                f"{name}-ebs-csi",
                EBS_CSI_NAMESPACE,
                EBS_CSI_SERVICE_ACCOUNT,
                iam.MANAGED_EBS_CSI_POLICY,
            ).arn,
        )
        coredns = addon("coredns", eks_versions.COREDNS, on_nodes)
        kube_proxy = addon("kube-proxy", eks_versions.KUBE_PROXY, on_nodes)
        self.name = cluster.name
        self.vpc_id = network.vpc_id
        self.egress_addresses = network.egress_addresses
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority).apply(
                lambda values: eks_kubeconfig(
                    values[0],
                    values[1],
                    values[2]["data"],
                    platform.aws_region,
                    platform.aws_profile,
                )
            )
        )
        # In-cluster resources wait for the add-ons and for the admins' access (whoever
        # runs `up` may be one of them rather than the cluster's creator).
        self.ready = [nodes, ebs_csi, coredns, kube_proxy, *admins]
        self.register_outputs(
            {
                "name": self.name,
                "vpc_id": self.vpc_id,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer_host": self.oidc_issuer_host,
            }
        )

    def _control_plane(
        self, name: str, platform: PlatformConfig, network: Network
    ) -> aws.eks.Cluster:
        """The EKS cluster: its role, Secrets key, log group, endpoint and access."""
        cluster_role = _service_role(
            f"{name}-control-plane", "eks.amazonaws.com", iam.MANAGED_CLUSTER_POLICIES, self
        )
        secrets_key = platform.secrets_key_arn or _secrets_key(name, self)
        log_group = _log_group(name, platform, self)
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
            # Always explicit: EKS's default is EXTENDED, six times the price once the
            # version leaves standard support (opstrace.aws.eks_versions).
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(
                support_type=eks_versions.UPGRADE_POLICIES[platform.upgrade_policy]
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            # After its log group, so that EKS finds it instead of making one without a
            # retention, which destroy would leave behind (terraform-aws-eks v21 `main.tf`:
            # `depends_on = [..., aws_cloudwatch_log_group.this, ...]`).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        notice = eks_versions.support_notice(
            platform.kubernetes_version, platform.upgrade_policy, eks_versions.today()
        )
        if notice:
            pulumi.log.warn(notice, resource=cluster)
        return cluster

    def _nodes(
        self,
        name: str,
        platform: PlatformConfig,
        network: Network,
        cluster: aws.eks.Cluster,
        addon: _Addons,
    ) -> aws.eks.NodeGroup:
        """The managed node group (IMDSv2, hop limit 1), after the VPC CNI add-on: nodes
        become Ready only once the CNI can give pods addresses (with its own role: the
        node role has no network permissions)."""
        vpc_cni = addon(
            "vpc-cni",
            eks_versions.VPC_CNI,
            pulumi.ResourceOptions(parent=self),
            service_account_role_arn=self._irsa_role(
                f"{name}-vpc-cni",
                VPC_CNI_NAMESPACE,
                VPC_CNI_SERVICE_ACCOUNT,
                iam.MANAGED_CNI_POLICY,
            ).arn,
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
        )
        node_role = _service_role(
            f"{name}-nodes", "ec2.amazonaws.com", iam.MANAGED_NODE_POLICIES, self
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"EKS cluster {name}: nodes with IMDSv2 only, hop limit 1",
            metadata_options=NODE_METADATA_OPTIONS,
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.NodeGroup(
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

    def _irsa_role(
        self, name: str, namespace: str, service_account: str, policy: str
    ) -> GrantedRole:
        """The role an add-on's service account assumes, with one managed policy."""
        return service_account_role(
            name,
            self.oidc_provider_arn,
            self.oidc_issuer_host,
            namespace,
            service_account,
            parent=self,
            managed_policies=(policy,),
        )


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    # Output types are dicts too: item access works on what the engine and mocks return.
    return str(identities[0]["oidcs"][0]["issuer"])


class _Addons:
    """EKS add-ons of one cluster, each at the version pinned for the cluster's
    Kubernetes version, or EKS's default for it where no version is pinned."""

    def __init__(
        self, name: str, cluster_name: pulumi.Output[str], version: str, parent: pulumi.Resource
    ) -> None:
        self._name = name
        self._cluster_name = cluster_name
        self._version = version
        self._parent = parent

    def __call__(
        self,
        suffix: str,
        addon: str,
        opts: pulumi.ResourceOptions,
        *,
        takes_over: bool = True,
        **extra: pulumi.Input[str],
    ) -> aws.eks.Addon:
        """`takes_over`: a new cluster starts with a self-managed copy, which the add-on
        replaces (OVERWRITE on create)."""
        pinned = eks_versions.pinned_addon(self._version, addon)
        version: pulumi.Input[str] = (
            pinned
            if pinned
            else aws.eks.get_addon_version_output(
                addon_name=addon,
                kubernetes_version=self._version,
                most_recent=False,
                opts=pulumi.InvokeOutputOptions(parent=self._parent),
            ).version
        )
        return aws.eks.Addon(
            f"{self._name}-{suffix}",
            cluster_name=self._cluster_name,
            addon_name=addon,
            addon_version=version,
            resolve_conflicts_on_create="OVERWRITE" if takes_over else None,
            resolve_conflicts_on_update="OVERWRITE",
            opts=opts,
            **extra,  # type: ignore[arg-type]
        )


def _log_group(
    name: str, platform: PlatformConfig, parent: pulumi.Resource
) -> aws.cloudwatch.LogGroup:
    """The control plane's log group, with its retention; kept by destroy when data is.

    A cluster made before the program made its log group has one EKS made (no retention,
    not in the state): it is imported, then updated to the retention. The engine imports a
    resource whose `import` ID is not the one in its state, then diffs it like any other
    and updates what differs; only a replacement is refused (pulumi/pkg/v3 v3.274.1,
    `resource/deploy/step_generator.go`: `isImport`, then `continueStepsFromImport`). Once
    in the state under that ID, the option changes nothing."""
    group = control_plane_log_group(name)
    found = aws.cloudwatch.get_log_groups(
        log_group_name_prefix=group, opts=pulumi.InvokeOptions(parent=parent)
    )
    exists = group in (found.log_group_names or [])
    return aws.cloudwatch.LogGroup(
        f"{name}-control-plane-logs",
        name=group,
        retention_in_days=platform.control_plane_log_retention_days,
        opts=pulumi.ResourceOptions(
            parent=parent,
            import_=group if exists else None,
            retain_on_delete=platform.keep_data_on_destroy,
        ),
    )


def _cluster_admins(
    name: str,
    cluster_name: pulumi.Output[str],
    principals: Sequence[str],
    parent: pulumi.Resource,
) -> list[pulumi.Resource]:
    """An access entry and the cluster admin policy for each principal."""
    granted: list[pulumi.Resource] = []
    for principal in principals:
        resource = f"{name}-admin-{hashlib.sha256(principal.encode()).hexdigest()[:10]}"
        entry = aws.eks.AccessEntry(
            resource,
            cluster_name=cluster_name,
            principal_arn=principal,
            type=access_entries.ENTRY_TYPE,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        granted.append(
            aws.eks.AccessPolicyAssociation(
                resource,
                cluster_name=cluster_name,
                principal_arn=principal,
                policy_arn=access_entries.admin_policy_arn(principal),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                    type=access_entries.ACCESS_SCOPE
                ),
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[entry]),
            )
        )
    return granted


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
