"""Who administers an EKS cluster the program makes: EKS access entries.

Pure, no Pulumi. The cluster authenticates with the EKS API only (`authenticationMode:
API`); each principal in `clusterAdmins` gets an access entry and the cluster admin
access policy, cluster-wide, as terraform-aws-eks v21.19.0 (`main.tf` @ bef29c4d9523)
gives its `access_entries`: an `aws_eks_access_entry` (type STANDARD) and an
`aws_eks_access_policy_association` with `policy_arn =
"arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"` and
`access_scope = { type = "cluster" }`. The policy: EKS user guide
`latest/ug/manage-access/k8s-access/access-policy-reference.adoc`, "AmazonEKSClusterAdminPolicy
... grant an IAM principal administrator access to a cluster".
"""

from __future__ import annotations

import re
from typing import Final

ADMIN_POLICY: Final = "AmazonEKSClusterAdminPolicy"
ENTRY_TYPE: Final = "STANDARD"
ACCESS_SCOPE: Final = "cluster"
_PRINCIPAL_RE: Final = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):iam::[0-9]{12}:(?:role|user)/[\w+=,.@/-]{1,512}$"
)
_SESSION_RE: Final = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):sts::(?P<account>[0-9]{12}):assumed-role/"
    r"(?P<role>[\w+=,.@-]+)/[^/]+$"
)


def principal_problem(arn: str) -> str | None:
    """Why `arn` cannot be given an access entry, or None. EKS takes the ARN of an IAM
    role or user; a role's session (what `aws sts get-caller-identity` prints when you
    assumed a role) is not one."""
    if _PRINCIPAL_RE.fullmatch(arn):
        return None
    session = _SESSION_RE.fullmatch(arn)
    if session:
        role = f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
        return (
            f"{arn!r} is a session of an assumed role, which EKS cannot give access to: "
            f"use the role's ARN, e.g. {role}"
        )
    return (
        f"{arn!r} is not the ARN of an IAM role or user: use arn:aws:iam::<account>:role/<name> "
        "or arn:aws:iam::<account>:user/<name>"
    )


def admin_policy_arn(principal_arn: str) -> str:
    """The cluster admin access policy, in the principal's partition."""
    match = _PRINCIPAL_RE.fullmatch(principal_arn)
    partition = match["partition"] if match else "aws"
    return f"arn:{partition}:eks::aws:cluster-access-policy/{ADMIN_POLICY}"
