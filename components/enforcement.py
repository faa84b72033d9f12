"""A check at preview that an existing cluster enforces NetworkPolicies (`cluster: existing`).

The instance's isolation is its NetworkPolicies (`components.isolation`), and a cluster
without an enforcer accepts them and does nothing with them. The provider's `check`
runs on every preview and update, on the operator's machine: it reads the cluster's
DaemonSets through the kubeconfig the Kubernetes provider uses (`kubeconfig` and
`kubeContext` as the stack sets them, else `$KUBECONFIG` or `~/.kube/config`) and
refuses, in one line saying what to do, unless it recognizes an enforcer
(`opstrace.enforcers`) or the stack accepts the risk (`networkPolicyRiskAccepted`:
then nothing is read).

State compatibility: `components.enforcement.NetworkPolicyEnforcementProvider` is
recorded in state; the provider holds no state and no configuration.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from opstrace import enforcers
from opstrace import kubeconfig as kubeconfig_loader
from sidecar import kube_client

DAEMONSETS: Final = "/apis/apps/v1/daemonsets"
INPUTS: Final = ("kubeconfig", "context", "risk_accepted")
RESOURCE_ID: Final = "network-policy-enforcement"


def cluster_problem(kubeconfig: str, context: str) -> str | None:
    """Why the cluster of `kubeconfig`/`context` ("": ambient) does not enforce
    NetworkPolicies, or None when it does."""
    try:
        api = kubeconfig_loader.client(kubeconfig, context)
        daemonsets = api.list(DAEMONSETS)["items"]
    except kube_client.KubeApiError as error:
        return enforcers.unreadable(str(error))
    return enforcers.verdict(daemonsets).problem


class NetworkPolicyEnforcementProvider(ResourceProvider):
    """Refuses, at check, a cluster that enforces no NetworkPolicy unless the risk is
    accepted. Stateless and config-free: everything comes with the inputs."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {key: news.get(key) for key in INPUTS}
        if inputs["risk_accepted"]:
            return CheckResult(inputs, [])
        problem = cluster_problem(str(inputs["kubeconfig"] or ""), str(inputs["context"] or ""))
        return CheckResult(inputs, [CheckFailure("risk_accepted", problem)] if problem else [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(olds.get(key) != news.get(key) for key in INPUTS))

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(RESOURCE_ID, {key: props.get(key) for key in INPUTS})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {key: props.get(key) for key in INPUTS})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({key: news.get(key) for key in INPUTS})


class NetworkPolicyEnforcement(Resource, module="opstrace", name="NetworkPolicyEnforcement"):
    """The preview's check that the cluster enforces NetworkPolicies; see the module doc."""

    risk_accepted: pulumi.Output[bool]

    def __init__(
        self,
        name: str,
        *,
        kubeconfig: str,
        context: str,
        risk_accepted: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            NetworkPolicyEnforcementProvider(),
            name,
            {"kubeconfig": kubeconfig, "context": context, "risk_accepted": risk_accepted},
            opts,
        )
