"""A check at preview that an existing cluster enforces NetworkPolicies (`cluster: existing`).

The instance's isolation is its NetworkPolicies (`components.isolation`), and a cluster
without an enforcer accepts them and does nothing with them. The provider's `check`
runs on every preview and update, on the operator's machine: it reads the cluster's
DaemonSets through the kubeconfig the Kubernetes provider uses (`kubeconfig` and
`kubeContext` as the stack sets them, else `$KUBECONFIG` or `~/.kube/config`) and
refuses, in one line saying what to do, unless it recognizes an enforcer
(`components.rules.enforcers`) or the stack accepts the risk (`networkPolicyRiskAccepted`:
then nothing is read).

State compatibility: `components.enforcement.NetworkPolicyEnforcementProvider` is
recorded in state; the provider holds no state and no configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import pulumi
import yaml
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

from components import kube_api
from components.rules import enforcers

DAEMONSETS: Final = "/apis/apps/v1/daemonsets"
INPUTS: Final = ("kubeconfig", "context", "risk_accepted")
RESOURCE_ID: Final = "network-policy-enforcement"


def cluster_problem(kubeconfig: str, context: str) -> str | None:
    """Why the cluster of `kubeconfig`/`context` ("": ambient) does not enforce
    NetworkPolicies, or None when it does."""
    try:
        api = client(kubeconfig, context)
        daemonsets = api.list(DAEMONSETS)["items"]
    except kube_api.KubeApiError as error:
        return enforcers.unreadable(str(error))
    return enforcers.verdict(daemonsets).problem


def client(kubeconfig: str, context: str) -> kube_api.Api:
    """A client as the Kubernetes provider connects: the path as written (`~` expanded),
    else each file of `$KUBECONFIG` (the first to name an entry wins, as kubectl merges
    them), else `~/.kube/config`; the context given, else the current one."""
    if kubeconfig:
        paths = [Path(kubeconfig).expanduser()]
    else:
        listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        paths = [Path(p).expanduser() for p in listed] or [Path("~/.kube/config").expanduser()]
    documents = [_read(path) for path in paths]
    return kube_api.Api.from_kubeconfig(
        _merged(documents), context=context or None, directory=paths[0].parent
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise kube_api.KubeconfigError(
            f"kubeconfig {path}: cannot read: {error.strerror}"
        ) from None
    except yaml.YAMLError as error:
        raise kube_api.KubeconfigError(f"kubeconfig {path}: not YAML: {error}") from None
    if not isinstance(document, dict):
        raise kube_api.KubeconfigError(f"kubeconfig {path}: expected a mapping")
    return document


def _merged(documents: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in documents:
        for key, value in document.items():
            if isinstance(value, list):
                known = {entry.get("name") for entry in merged.setdefault(key, [])}
                merged[key].extend(e for e in value if e.get("name") not in known)
            elif value and key not in merged:
                merged[key] = value
    return merged


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
