"""Whether a cluster enforces NetworkPolicies, told from the DaemonSets it runs.

Pure, no Pulumi and no I/O: `verdict` takes the cluster's DaemonSets (as the API server
lists them) and names the enforcer it recognizes, or says why there is none and what to
do. A NetworkPolicy that no enforcer reads is accepted by the API server and does
nothing, so `cluster: existing` checks this at preview (`components.enforcement`).

Recognized: the AWS VPC CNI with its network policy agent on (`aws-node`'s
`aws-eks-nodeagent` container started with `--enable-network-policy=true`, which the
add-on's `enableNetworkPolicy` setting sets), and the agents of Calico (and Canal),
Cilium (and GKE Dataplane V2), Antrea, kube-router (unless its firewall is off), Weave
Net (with its `weave-npc` container), Azure's Network Policy Manager and
kube-network-policies, each by the DaemonSet its own installation names. An agent counts
once at least one of its pods is ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

RISK_SETTING: Final = "networkPolicyRiskAccepted"
ACCEPT_HINT: Final = f"or accept the risk with `pulumi config set {RISK_SETTING} true`"
EXPOSURE: Final = "any pod in the cluster can read and write every tenant's data in Mimir and Loki"

AWS_VPC_CNI: Final = ("kube-system", "aws-node")
AWS_NODE_AGENT: Final = "aws-eks-nodeagent"
AWS_AGENT_ON: Final = "--enable-network-policy=true"
ENABLE_AWS_AGENT: Final = (
    "aws eks update-addon --cluster-name <cluster> --addon-name vpc-cni "
    """--configuration-values '{"enableNetworkPolicy":"true"}'"""
)


@dataclass(frozen=True)
class Agent:
    """A NetworkPolicy enforcer's per-node agent, as its own installation names it."""

    enforcer: str
    daemonsets: tuple[tuple[str, str], ...]
    """(namespace, name) of the DaemonSet, in each layout its installers use."""
    container: str | None = None
    """A container the agent's pods must run for policies to be enforced."""
    off_argument: str | None = None
    """An argument of that container (or any) that turns enforcement off."""


AGENTS: Final = (
    Agent("Calico", (("kube-system", "calico-node"), ("calico-system", "calico-node"))),
    Agent("Canal (Calico policy)", (("kube-system", "canal"),)),
    Agent("Cilium", (("kube-system", "cilium"), ("cilium", "cilium"))),
    Agent("GKE Dataplane V2 (Cilium)", (("kube-system", "anetd"),)),
    Agent("Antrea", (("kube-system", "antrea-agent"),)),
    Agent("kube-router", (("kube-system", "kube-router"),), off_argument="--run-firewall=false"),
    Agent("Weave Net", (("kube-system", "weave-net"),), container="weave-npc"),
    Agent("Azure Network Policy Manager", (("kube-system", "azure-npm"),)),
    Agent("kube-network-policies", (("kube-system", "kube-network-policies"),)),
)
KNOWN: Final = (
    "the AWS VPC CNI's network policy agent",
    *(agent.enforcer for agent in AGENTS),
)


@dataclass(frozen=True)
class Verdict:
    """What a cluster's DaemonSets say: the enforcer found, or the problem (one line)."""

    enforcer: str | None
    problem: str | None


def verdict(daemonsets: Sequence[Mapping[str, Any]]) -> Verdict:
    """The enforcer these DaemonSets run, or why none enforces NetworkPolicies."""
    by_place = {_place(d): d for d in daemonsets}
    aws_node = by_place.get(AWS_VPC_CNI)
    if (
        aws_node is not None
        and _ready(aws_node)
        and AWS_AGENT_ON in _arguments(aws_node, AWS_NODE_AGENT)
    ):
        return Verdict("the AWS VPC CNI's network policy agent", None)
    idle = []
    for agent in AGENTS:
        for place in agent.daemonsets:
            found = by_place.get(place)
            if found is None or not _enforces(agent, found):
                continue
            if _ready(found):
                return Verdict(agent.enforcer, None)
            idle.append(f"{agent.enforcer} ({place[0]}/{place[1]})")
    if idle:
        return Verdict(
            None,
            f"no pod of {', '.join(idle)} is ready, so NetworkPolicies are not enforced and "
            f"{EXPOSURE}: fix the enforcer, {ACCEPT_HINT}",
        )
    if aws_node is not None:
        return Verdict(
            None,
            "the cluster's AWS VPC CNI runs without its network policy agent, so "
            f"NetworkPolicies are not enforced and {EXPOSURE}: enable it with "
            f"`{ENABLE_AWS_AGENT}`, {ACCEPT_HINT}",
        )
    return Verdict(
        None,
        "the cluster runs no NetworkPolicy enforcer this program knows "
        f"({', '.join(KNOWN)}), so {EXPOSURE}: install or enable one, {ACCEPT_HINT}",
    )


def unreadable(reason: str) -> str:
    """The problem when the cluster's DaemonSets could not be read."""
    return (
        f"cannot tell whether the cluster enforces NetworkPolicies: {reason}: fix the "
        f"kubeconfig or the permission to list DaemonSets, {ACCEPT_HINT}"
    )


def _place(daemonset: Mapping[str, Any]) -> tuple[str, str]:
    metadata = daemonset.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _ready(daemonset: Mapping[str, Any]) -> bool:
    return int((daemonset.get("status") or {}).get("numberReady") or 0) > 0


def _containers(daemonset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or ())


def _arguments(daemonset: Mapping[str, Any], container: str | None = None) -> list[str]:
    """The command and arguments of one container (or of every container)."""
    return [
        str(word)
        for c in _containers(daemonset)
        if container is None or c.get("name") == container
        for word in (*(c.get("command") or ()), *(c.get("args") or ()))
    ]


def _enforces(agent: Agent, daemonset: Mapping[str, Any]) -> bool:
    names = {c.get("name") for c in _containers(daemonset)}
    if agent.container is not None and agent.container not in names:
        return False
    return agent.off_argument is None or agent.off_argument not in _arguments(daemonset)
