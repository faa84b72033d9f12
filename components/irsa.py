"""IAM roles: for AWS services, and for Kubernetes service accounts (IRSA, one role per
service account)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from opstrace.aws import iam


@dataclass(frozen=True)
class GrantedRole:
    """An IAM role and its ARN as the role's users must take it."""

    role: aws.iam.Role
    arn: pulumi.Output[str]
    """The role's ARN, depending on its policies as well as the role: whoever is given
    it is created after the permissions exist and deleted before they go (the load
    balancer controller, say, still needs them to delete its load balancer)."""


def service_account_role(
    name: str,
    provider_arn: pulumi.Input[str],
    issuer_host: pulumi.Input[str],
    namespace: str,
    service_account: str,
    *,
    parent: pulumi.Resource,
    policy: pulumi.Input[str] | None = None,
    managed_policies: tuple[str, ...] = (),
) -> GrantedRole:
    """An IAM role that exactly one Kubernetes service account assumes, with an inline
    policy (JSON text) and/or AWS managed policies."""
    trust = pulumi.Output.all(provider_arn, issuer_host).apply(
        lambda values: json.dumps(
            iam.service_account_trust(values[0], values[1], namespace, service_account)
        )
    )
    return role(name, trust, parent=parent, policy=policy, managed_policies=managed_policies)


def role(
    name: str,
    trust: pulumi.Input[str],
    *,
    parent: pulumi.Resource,
    policy: pulumi.Input[str] | None = None,
    managed_policies: tuple[str, ...] = (),
) -> GrantedRole:
    """A role with its trust policy (JSON text), an inline policy and managed policies."""
    role = aws.iam.Role(name, assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=parent))
    grants: list[pulumi.CustomResource] = []
    if policy is not None:
        grants.append(
            aws.iam.RolePolicy(
                name, role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=parent)
            )
        )
    for index, arn in enumerate(managed_policies):
        grants.append(
            aws.iam.RolePolicyAttachment(
                f"{name}-{index}",
                role=role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    granted = pulumi.Output.all(role.arn, *(grant.id for grant in grants)).apply(
        lambda values: str(values[0])
    )
    return GrantedRole(role, granted)


def existing_cluster_oidc(
    cluster_name: str, parent: pulumi.Resource
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """(OIDC provider ARN, issuer host) of an existing EKS cluster, looked up by name.

    The provider must exist already (every EKS cluster that uses IRSA has one)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    cluster = aws.eks.get_cluster_output(name=cluster_name, opts=invoke)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    host = cluster.identities.apply(
        lambda ids: (ids[0].oidcs[0].issuer or "").removeprefix("https://")
    )
    arn = pulumi.Output.all(account, host).apply(
        lambda values: f"arn:aws:iam::{values[0]}:oidc-provider/{values[1]}"
    )
    return arn, host
