"""The upstream IAM policies the program's own policies follow, written down with their source.

Each is the publisher's document as it stands at the named commit, copied exactly (JSON
as Python literals). `tests/test_iam_upstream.py` compares ours with them action by
action, resource by resource, condition by condition; `not_needed` says, for every part
of an upstream document we leave out, why the workload never needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True)
class Upstream:
    """A published policy document and where it was read."""

    repository: str
    ref: str
    commit: str
    date: str
    path: str
    document: dict[str, Any]
    not_needed_actions: dict[str, str] = field(default_factory=dict)
    """Actions of the document we leave out -> why the workload never calls them."""
    not_needed_resources: dict[str, str] = field(default_factory=dict)
    """Resource patterns of the document we leave out (any action) -> why."""


_ALB_ONLY: Final = "Application Load Balancers only: the instance makes no Ingress, so no ALB"

LOAD_BALANCER_CONTROLLER: Final = Upstream(
    repository="kubernetes-sigs/aws-load-balancer-controller",
    ref="v3.5.0",
    commit="11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4",
    date="2026-08-03",
    path="docs/install/iam_policy.json",
    document={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
                },
            },
            {
                "Effect": "Allow",
                "Action": [
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
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "cognito-idp:DescribeUserPoolClient",
                    "acm:ListCertificates",
                    "acm:DescribeCertificate",
                    "iam:ListServerCertificates",
                    "iam:GetServerCertificate",
                    "waf-regional:GetWebACL",
                    "waf-regional:GetWebACLForResource",
                    "waf-regional:AssociateWebACL",
                    "waf-regional:DisassociateWebACL",
                    "wafv2:GetWebACL",
                    "wafv2:GetWebACLForResource",
                    "wafv2:AssociateWebACL",
                    "wafv2:DisassociateWebACL",
                    "shield:GetSubscriptionState",
                    "shield:DescribeProtection",
                    "shield:CreateProtection",
                    "shield:DeleteProtection",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "*",
            },
            {"Effect": "Allow", "Action": ["ec2:CreateSecurityGroup"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                    "Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"},
                },
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {
                    "Null": {
                        "aws:RequestTag/elbv2.k8s.aws/cluster": "true",
                        "aws:ResourceTag/elbv2.k8s.aws/cluster": "false",
                    }
                },
            },
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                ],
                "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                "Resource": "*",
                "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:DeleteRule",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [
                    "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
                    "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                    "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                ],
                "Condition": {
                    "Null": {
                        "aws:RequestTag/elbv2.k8s.aws/cluster": "true",
                        "aws:ResourceTag/elbv2.k8s.aws/cluster": "false",
                    }
                },
            },
            {
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [
                    "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
                    "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
                    "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
                    "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
                ],
            },
            {
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
                "Condition": {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}},
            },
            {
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags"],
                "Resource": [
                    "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
                    "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                    "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                ],
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ]
                    },
                    "Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"},
                },
            },
            {
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:SetWebAcl",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates",
                    "elasticloadbalancing:ModifyRule",
                    "elasticloadbalancing:SetRulePriorities",
                ],
                "Resource": "*",
            },
        ],
    },
    not_needed_actions={
        "cognito-idp:DescribeUserPoolClient": f"{_ALB_ONLY} (Cognito authentication)",
        "waf-regional:GetWebACL": f"{_ALB_ONLY} (WAF Classic)",
        "waf-regional:GetWebACLForResource": f"{_ALB_ONLY} (WAF Classic)",
        "waf-regional:AssociateWebACL": f"{_ALB_ONLY} (WAF Classic)",
        "waf-regional:DisassociateWebACL": f"{_ALB_ONLY} (WAF Classic)",
        "wafv2:GetWebACL": f"{_ALB_ONLY} (WAF)",
        "wafv2:AssociateWebACL": f"{_ALB_ONLY} (WAF)",
        "wafv2:DisassociateWebACL": f"{_ALB_ONLY} (WAF)",
        "elasticloadbalancing:SetWebAcl": f"{_ALB_ONLY} (WAF)",
        "shield:DescribeProtection": f"{_ALB_ONLY} (Shield Advanced protection annotations)",
        "shield:CreateProtection": f"{_ALB_ONLY} (Shield Advanced protection annotations)",
        "shield:DeleteProtection": f"{_ALB_ONLY} (Shield Advanced protection annotations)",
        "elasticloadbalancing:CreateRule": f"{_ALB_ONLY} (listener rules)",
        "elasticloadbalancing:DeleteRule": f"{_ALB_ONLY} (listener rules)",
        "elasticloadbalancing:ModifyRule": f"{_ALB_ONLY} (listener rules)",
        "elasticloadbalancing:SetRulePriorities": f"{_ALB_ONLY} (listener rules)",
    },
    not_needed_resources={
        "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*": _ALB_ONLY,
        "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*": _ALB_ONLY,
        "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*": (
            "listener rules: NLB listeners have none"
        ),
        "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*": _ALB_ONLY,
    },
)

CERT_MANAGER_ROUTE53: Final = Upstream(
    repository="cert-manager/website",
    ref="master",
    commit="776e5dba56510fc9de84206b806b568447077f25",
    date="2026-08-22",
    path="content/docs/configuration/acme/dns01/route53.md",
    document={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": "arn:aws:route53:::change/*",
            },
            {
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": "arn:aws:route53:::hostedzone/*",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    }
                },
            },
            {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    },
    not_needed_resources={
        "arn:aws:route53:::hostedzone/*": (
            "every zone: the ClusterIssuer names the instance zone (hostedZoneID), which "
            "holds every tenant's names; the page itself suggests limiting it so"
        ),
    },
)

EBS_CSI_DRIVER_V1: Final = Upstream(
    repository="kubernetes-sigs/aws-ebs-csi-driver",
    ref="v1.64.0",
    commit="6689789f192f8941878801f2730ea972a1196047",
    date="2026-08-17",
    path="docs/example-iam-policy.json",
    document={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeTags",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeVolumesModifications",
                    "ec2:DescribeVolumeStatus",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot", "ec2:ModifyVolume"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CopyVolumes"],
                "Resource": ["arn:aws:ec2:*:*:volume/vol-*"],
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:DetachVolume"],
                "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateVolume", "ec2:EnableFastSnapshotRestores"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"],
                "Condition": {
                    "StringEquals": {
                        "ec2:CreateAction": ["CreateVolume", "CreateSnapshot", "CopyVolumes"]
                    }
                },
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteTags"],
                "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateVolume", "ec2:CopyVolumes"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringLike": {"aws:RequestTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateVolume", "ec2:CopyVolumes"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringLike": {"aws:RequestTag/CSIVolumeName": "*"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteVolume"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringLike": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteVolume"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringLike": {"ec2:ResourceTag/CSIVolumeName": "*"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteVolume"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {
                    "StringLike": {"ec2:ResourceTag/kubernetes.io/created-for/pvc/name": "*"}
                },
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringLike": {"aws:RequestTag/CSIVolumeSnapshotName": "*"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringLike": {"aws:RequestTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteSnapshot", "ec2:LockSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringLike": {"ec2:ResourceTag/CSIVolumeSnapshotName": "*"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ec2:DeleteSnapshot", "ec2:LockSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringLike": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
        ],
    },
)
"""The example policy AWS manages as `AmazonEBSCSIDriverPolicy`, the one the program attaches
(the driver's docs/install.md said so until 2026-04, when it named the V2 policy below)."""

EBS_CSI_DRIVER_V2: Final = Upstream(
    repository="kubernetes-sigs/aws-ebs-csi-driver",
    ref="v1.64.0",
    commit="6689789f192f8941878801f2730ea972a1196047",
    date="2026-08-17",
    path="docs/AmazonEBSCSIDriverPolicyV2.json",
    document={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadOnlyDescribeOperations",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeVolumesModifications",
                    "ec2:DescribeVolumeStatus",
                ],
                "Resource": "*",
            },
            {
                "Sid": "CreateAndCopyVolumesWithManagedTag",
                "Effect": "Allow",
                "Action": ["ec2:CreateVolume", "ec2:CopyVolumes"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringEquals": {"aws:RequestTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "CopyManagedVolumes",
                "Effect": "Allow",
                "Action": ["ec2:CopyVolumes"],
                "Resource": "arn:aws:ec2:*:*:volume/vol-*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "CopyCSIMigratedVolumes",
                "Effect": "Allow",
                "Action": ["ec2:CopyVolumes"],
                "Resource": "arn:aws:ec2:*:*:volume/vol-*",
                "Condition": {
                    "StringLike": {"ec2:ResourceTag/kubernetes.io/created-for/pvc/name": "*"}
                },
            },
            {
                "Sid": "CreateSnapshotsWithManagedTag",
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringEquals": {"aws:RequestTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "CreateSnapshotsFromManagedVolumes",
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "ManageManagedVolumes",
                "Effect": "Allow",
                "Action": [
                    "ec2:ModifyVolume",
                    "ec2:AttachVolume",
                    "ec2:DetachVolume",
                    "ec2:DeleteVolume",
                ],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "ManageCSIMigratedVolumes",
                "Effect": "Allow",
                "Action": [
                    "ec2:ModifyVolume",
                    "ec2:AttachVolume",
                    "ec2:DetachVolume",
                    "ec2:DeleteVolume",
                ],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {
                    "StringLike": {"ec2:ResourceTag/kubernetes.io/created-for/pvc/name": "*"}
                },
            },
            {
                "Sid": "CreateVolumesFromAndEnableFSROnManagedSnapshots",
                "Effect": "Allow",
                "Action": ["ec2:CreateVolume", "ec2:EnableFastSnapshotRestores"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "AttachDetachVolumesToAnyInstance",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:DetachVolume"],
                "Resource": "arn:aws:ec2:*:*:instance/*",
            },
            {
                "Sid": "DeleteAndLockManagedSnapshots",
                "Effect": "Allow",
                "Action": ["ec2:DeleteSnapshot", "ec2:LockSnapshot"],
                "Resource": "arn:aws:ec2:*:*:snapshot/*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
            },
            {
                "Sid": "TagResourcesOnCreation",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"],
                "Condition": {
                    "StringEquals": {
                        "ec2:CreateAction": ["CreateVolume", "CreateSnapshot", "CopyVolumes"]
                    }
                },
            },
            {
                "Sid": "ModifyTagsOnManagedVolumes",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {
                    "StringEquals": {"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"},
                    "Null": {"aws:TagKeys": "false"},
                    "ForAllValues:StringNotEquals": {
                        "aws:TagKeys": [
                            "ebs.csi.aws.com/cluster",
                            "ebs.csi.aws.com/cluster-name",
                            "kubernetes.io/created-for/pvc/name",
                        ]
                    },
                },
            },
        ],
    },
    not_needed_actions={
        "ec2:CreateTags": (
            "on an existing volume (V2 only, for tag changes by a VolumeAttributesClass): "
            "the instance defines none; tags at creation are covered"
        ),
    },
)
"""What the driver's docs/install.md names now (`AmazonEBSCSIDriverPolicyV2`): scoped to
volumes and snapshots tagged `ebs.csi.aws.com/cluster`."""


Conditions = frozenset[tuple[str, str, tuple[str, ...]]]
"""A statement's conditions as (operator, key, values) triples."""


@dataclass(frozen=True)
class Grant:
    """One action on one resource pattern, under a statement's conditions."""

    action: str
    resource: str
    conditions: Conditions

    def __str__(self) -> str:
        shown = sorted(f"{op} {key} {list(values)}" for op, key, values in self.conditions)
        return f"{self.action} on {self.resource}" + (f" if {'; '.join(shown)}" if shown else "")


def grants(document: dict[str, Any]) -> list[Grant]:
    """Every (action, resource, conditions) an Allow statement of `document` grants."""
    found = []
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        conditions = _conditions(statement.get("Condition", {}))
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                found.append(Grant(action, resource, conditions))
    return found


def covers(ours: Grant, theirs: Grant) -> bool:
    """Whether `ours` allows every request `theirs` allows: the same action, a resource
    pattern matching theirs, and no condition theirs does not also impose."""
    return (
        ours.action == theirs.action
        and _pattern_covers(ours.resource, theirs.resource)
        and ours.conditions <= theirs.conditions
    )


def uncovered(ours: dict[str, Any], upstream: Upstream) -> list[str]:
    """The upstream grants no grant of `ours` covers, except those `upstream` says are
    not needed; then every not-needed entry that excuses nothing (a stale reason)."""
    mine = grants(ours)
    missing = [g for g in grants(upstream.document) if not any(covers(m, g) for m in mine)]
    excused = {
        g
        for g in missing
        if g.action in upstream.not_needed_actions or g.resource in upstream.not_needed_resources
    }
    stale = [
        f"not needed but covered or absent: {key}"
        for key in (*upstream.not_needed_actions, *upstream.not_needed_resources)
        if not any(key in (g.action, g.resource) for g in excused)
    ]
    return [str(g) for g in missing if g not in excused] + stale


def _pattern_covers(pattern: str, resource: str) -> bool:
    """Whether the IAM resource pattern `pattern` matches every ARN `resource` matches."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, resource) is not None


def _conditions(block: dict[str, dict[str, Any]]) -> Conditions:
    # StringLike without a wildcard is StringEquals; one value is a list of one.
    triples = set()
    for operator, tests in block.items():
        for key, value in tests.items():
            values = tuple(sorted(_as_list(value)))
            plain = operator == "StringLike" and not any(set(v) & {"*", "?"} for v in values)
            triples.add(("StringEquals" if plain else operator, key, values))
    return frozenset(triples)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
