"""IAM policy documents, written once and least privilege: the bucket, the zone, the role.

Pure functions returning JSON-ready dicts, no Pulumi. A test checks every document the
program registers: no statement allows `*` actions, and none allows a wildcard action
on every resource. The documents that follow an upstream one (the load balancer
controller's, cert-manager's Route53 policy) are compared with it grant by grant in
tests/test_iam_upstream.py, which says why each part left out is never needed.
"""

from __future__ import annotations

from typing import Any, Final

Document = dict[str, Any]

VERSION: Final = "2012-10-17"

MANAGED_CLUSTER_POLICIES: Final = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
MANAGED_NODE_POLICIES: Final = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
"""What the kubelet needs; not the CNI's network permissions, which every pod that
reaches the node's credentials would have too."""
MANAGED_CNI_POLICY: Final = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
"""The VPC CNI's (ENIs and addresses), for its own service account only (IRSA)."""
MANAGED_EBS_CSI_POLICY: Final = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def service_trust(service: str) -> Document:
    """A role that an AWS service (`eks.amazonaws.com`, `ec2.amazonaws.com`) assumes."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def service_account_trust(
    provider_arn: str, issuer_host: str, namespace: str, service_account: str
) -> Document:
    """A role that exactly one Kubernetes service account assumes (IRSA)."""
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:sub": subject,
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def bucket_access(bucket_arn: str) -> Document:
    """Read, write and delete objects of one bucket, and list it: what Mimir and Loki do."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ListTheBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ObjectsOfTheBucket",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/*",
            },
        ],
    }


def tls_only_bucket(bucket_arn: str) -> Document:
    """A bucket policy refusing every request that does not come over TLS."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "RefuseRequestsWithoutTLS",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def dns01_challenges(zone_id: str) -> Document:
    """cert-manager answering DNS-01 challenges in the instance zone, and only there."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": "arn:aws:route53:::change/*",
            },
            {
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    }
                },
            },
            # Looking a zone up by name has no resource to scope to.
            {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    }


_LB_READ_ACTIONS: Final = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:GetCoipPoolUsage",
    "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc",
    "ec2:DescribeIpamPools",
    "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
    # Certificates for TLS listeners and the subscription checks the controller reads.
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "iam:ListServerCertificates",
    "iam:GetServerCertificate",
    "shield:GetSubscriptionState",
    "wafv2:GetWebACLForResource",
)
_CLUSTER_TAG: Final = "elbv2.k8s.aws/cluster"
"""The tag the controller puts on everything it creates; most changes are limited to that."""
_NLB_TAGGABLE: Final = (
    "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
)


def load_balancer_controller() -> Document:
    """What the AWS Load Balancer Controller needs to run NLBs for Services.

    The controller's own policy (docs/install/iam_policy.json of the release the chart
    runs, `charts.LOAD_BALANCER_CONTROLLER_VERSION`) statement by statement, without what
    only Application Load Balancers use (listener rules, `loadbalancer/app` and
    `listener/app` resources, WAF, Shield protections, Cognito): the instance makes no
    Ingress, so the controller never makes an ALB. tests/upstream_policies.py holds the
    official document and the reason for every part left out.
    """
    tagged = {"Null": {f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}}
    tagging_on_create = {"Null": {f"aws:RequestTag/{_CLUSTER_TAG}": "false"}}
    retagging_own = {
        "Null": {
            f"aws:RequestTag/{_CLUSTER_TAG}": "true",
            f"aws:ResourceTag/{_CLUSTER_TAG}": "false",
        }
    }
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "CreateTheServiceLinkedRoleOnce",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
                },
            },
            {
                "Sid": "ReadTheNetwork",
                "Effect": "Allow",
                "Action": list(_LB_READ_ACTIONS),
                "Resource": "*",
            },
            {
                # For target-type ip the controller opens the pods' (the nodes') security
                # group to the NLB: a group it did not create and that has no cluster tag.
                "Sid": "OpenAnySecurityGroupToTheLoadBalancer",
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "*",
            },
            {
                # Authorized against the group and against its VPC: every resource.
                "Sid": "CreateSecurityGroups",
                "Effect": "Allow",
                "Action": "ec2:CreateSecurityGroup",
                "Resource": "*",
            },
            {
                "Sid": "TagSecurityGroupsAtCreation",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                    **tagging_on_create,
                },
            },
            {
                "Sid": "RetagOwnSecurityGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": retagging_own,
            },
            {
                "Sid": "ChangeOwnSecurityGroups",
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                "Resource": "*",
                "Condition": tagged,
            },
            {
                "Sid": "CreateTaggedLoadBalancers",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                "Resource": "*",
                "Condition": tagging_on_create,
            },
            {
                "Sid": "CreateAndDeleteListeners",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                ],
                "Resource": "*",
            },
            {
                "Sid": "RetagOwnLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": list(_NLB_TAGGABLE),
                "Condition": retagging_own,
            },
            {
                # A listener has no tag yet when CreateListener tags it.
                "Sid": "TagListeners",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
            },
            {
                "Sid": "ChangeOwnLoadBalancers",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:ModifyLoadBalancerAttributes",
                    "elasticloadbalancing:SetIpAddressType",
                    "elasticloadbalancing:SetSecurityGroups",
                    "elasticloadbalancing:SetSubnets",
                    "elasticloadbalancing:DeleteLoadBalancer",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:ModifyListenerAttributes",
                    "elasticloadbalancing:ModifyCapacityReservation",
                    "elasticloadbalancing:ModifyIpPools",
                ],
                "Resource": "*",
                "Condition": tagged,
            },
            {
                "Sid": "TagLoadBalancersAtCreation",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:AddTags",
                "Resource": list(_NLB_TAGGABLE),
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ]
                    },
                    **tagging_on_create,
                },
            },
            {
                "Sid": "RegisterPodsAsTargets",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
            },
            {
                "Sid": "ChangeListeners",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates",
                ],
                "Resource": "*",
            },
        ],
    }


def wildcard_problems(document: Document) -> list[str]:
    """Statements that allow every action, or a wildcard action on every resource."""
    problems = []
    for index, statement in enumerate(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        resources = _as_list(statement.get("Resource"))
        if any(action == "*" or action.endswith(":*") for action in actions):
            problems.append(f"statement {index} allows every action of a service: {actions}")
        elif "*" in resources and any("*" in action for action in actions):
            problems.append(f"statement {index} allows a wildcard action on every resource")
    return problems


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])
