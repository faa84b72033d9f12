"""Isolation: the NetworkPolicies that leave the gateway as the only door to tenant data.

The policies come from `opstrace.network_policies`; this module registers them,
each in its namespace once that namespace exists (its namespace is the Output of
whatever makes it: a tenant's Namespace, a Helm release), and, in an existing cluster,
the preview's check that something enforces them (`components.enforcement`). In eks
mode the program's own VPC CNI add-on enforces them (`components.cluster`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.enforcement import NetworkPolicyEnforcement
from opstrace import network_policies
from opstrace.network_policies import Layout


@dataclass(frozen=True)
class EnforcementCheck:
    """The existing cluster to check, as the Kubernetes provider reaches it."""

    kubeconfig: str
    """As written in the stack ("": the ambient kubeconfig)."""
    context: str
    risk_accepted: bool
    """`networkPolicyRiskAccepted`: go on without an enforcer (nothing is read)."""


@dataclass(frozen=True)
class IsolationArgs:
    """Where the instance's pods run, and what makes each namespace."""

    layout: Layout
    namespaces: Mapping[str, pulumi.Input[str]]
    """Namespace name -> an Output resolving to it once the namespace exists."""
    enforcement: EnforcementCheck | None = None
    """existing mode: check the cluster at preview; None: the program enforces (eks)."""


class Isolation(pulumi.ComponentResource):
    """The instance's NetworkPolicies, and (existing mode) the check of their enforcement."""

    def __init__(
        self, name: str, args: IsolationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:Isolation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        check = args.enforcement
        enforced: list[pulumi.Resource] = []
        if check is not None:
            enforced.append(
                NetworkPolicyEnforcement(
                    f"{name}-enforcement",
                    kubeconfig=check.kubeconfig,
                    context=check.context,
                    risk_accepted=check.risk_accepted,
                    opts=child,
                )
            )
        for policy in network_policies.instance_policies(args.layout):
            metadata = policy["metadata"]
            namespace = metadata["namespace"]
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{namespace}-{metadata['name'].removeprefix('opstrace-')}",
                metadata={**metadata, "namespace": args.namespaces[namespace]},
                spec=policy["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=enforced),
            )
        self.register_outputs({})
