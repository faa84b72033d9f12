"""`pulumi up` is done when the gateway serves what it rendered: the `GatewayRollout` resource.

Every gateway pod's sidecar reports, in a Lease named after its pod, the checksum of the
files it serves (`sidecar.sync`). A `GatewayRollout` is created or updated
with the checksum of the files the program just rendered, and its provider (on the
operator's machine, through the same cluster access as the Kubernetes provider) waits
until every gateway pod reports it: so when `up` says done, a removed key is refused by
every pod and a new tenant is served by every pod. It fails, naming each pod that is
behind and what its sidecar says, when that takes longer than `timeout_seconds`.

State compatibility: the module path and the class names (`GatewayRolloutProvider`,
`GatewayRollout`) are recorded in every stack's state.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from opstrace import kubeconfig
from sidecar import contract, kube_client

DEFAULT_TIMEOUT_SECONDS: Final = 300
POLL_SECONDS: Final = 0.5


class GatewayNotServing(Exception):
    """Raised when the gateway pods do not all serve the rendered files in time."""


@dataclass(frozen=True)
class GatewayRolloutArgs:
    """Which pods must serve which files, and how to reach their cluster."""

    namespace: pulumi.Input[str]
    selector: Mapping[str, str]
    """The gateway pods' labels."""
    checksum: pulumi.Input[str]
    """What the pods must serve: the rendered files' checksum."""
    kubeconfig: pulumi.Input[str] = ""
    """A kubeconfig document (the eks cluster's), or "" for `kubeconfig_path`."""
    kubeconfig_path: str = ""
    """A kubeconfig file as written in config ("" with no document: $KUBECONFIG or
    ~/.kube/config, as kubectl)."""
    context: str = ""
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


def cluster_api(inputs: Mapping[str, Any]) -> kube_client.Api:
    """A client of the pods' cluster, from the resource's inputs: the eks cluster's
    kubeconfig document, else the stack's kubeconfig file and context as kubectl reads
    them (`opstrace.kubeconfig`)."""
    return kubeconfig.client(
        str(inputs.get("kubeconfig_path") or ""),
        str(inputs.get("context") or ""),
        document=str(inputs.get("kubeconfig") or ""),
    )


def behind(
    pods: Sequence[Mapping[str, Any]], leases: Sequence[Mapping[str, Any]], checksum: str
) -> list[str]:
    """A line for each live pod that does not serve `checksum` yet (none: all do)."""
    reported = {lease["metadata"]["name"]: lease["metadata"] for lease in leases}
    lines = []
    for pod in pods:
        metadata = pod["metadata"]
        if metadata.get("deletionTimestamp"):
            continue  # going away: its requests drain, it serves nothing new
        name = metadata["name"]
        lease = reported.get(f"{contract.LEASE_PREFIX}{name}")
        annotations = (lease or {}).get("annotations") or {}
        if annotations.get(contract.SERVED_ANNOTATION) == checksum:
            continue
        if lease is None:
            lines.append(f"{name}: its sidecar has not reported yet")
        else:
            state = annotations.get(contract.STATE_ANNOTATION, "unknown")
            message = annotations.get(contract.MESSAGE_ANNOTATION, "")
            lines.append(f"{name}: {state} ({message})")
    return lines


def wait_until_served(api: kube_client.Api, inputs: Mapping[str, Any]) -> list[str]:
    """The names of the pods serving `checksum`, once every live pod does."""
    namespace, checksum = inputs["namespace"], inputs["checksum"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(inputs["selector"].items()))
    timeout = float(inputs["timeout_seconds"])
    deadline = time.monotonic() + timeout
    while True:
        pods = api.list(f"/api/v1/namespaces/{namespace}/pods", label_selector=selector)["items"]
        leases = api.list(
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
            label_selector=contract.STATUS_SELECTOR,
        )["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        lagging = behind(pods, leases, checksum) if live else ["no gateway pod is running"]
        if not lagging:
            return sorted(p["metadata"]["name"] for p in live)
        if time.monotonic() >= deadline:
            _fail(
                f"the gateway pods in {namespace} do not serve the new files after "
                f"{timeout:.0f} s: {'; '.join(lagging)}: see `kubectl -n {namespace} logs "
                "<pod> -c gateway-sync`"
            )
        time.sleep(POLL_SECONDS)


def _fail(message: str) -> None:
    # The provider host reports an exception with traceback.format_exc(): without frames
    # (tracebacklimit 0) that is this one line. The update ends here, and the host with it.
    sys.tracebacklimit = 0
    raise GatewayNotServing(message)


_OUTPUTS: Final = ("pods",)


class GatewayRolloutProvider(ResourceProvider):
    """Waits for the pods; holds no state and no configuration (it is pickled into state)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        pods = wait_until_served(cluster_api(props), props)
        return CreateResult(f"{props['namespace']}/gateway-rollout", {**props, "pods": pods})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in news if k not in _OUTPUTS and olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "pods": wait_until_served(cluster_api(news), news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # What was served is what the state says; a refresh asks the cluster nothing.
        return ReadResult(id_, dict(props))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


_PROVIDER: Final = GatewayRolloutProvider()


class GatewayRollout(Resource, module="opstrace", name="GatewayRollout"):
    """Done when every gateway pod serves `checksum`."""

    pods: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: GatewayRolloutArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])
        props: dict[str, Any] = {
            "namespace": args.namespace,
            "selector": dict(args.selector),
            "checksum": args.checksum,
            "kubeconfig": args.kubeconfig,
            "kubeconfig_path": args.kubeconfig_path,
            "context": args.context,
            "timeout_seconds": args.timeout_seconds,
            "pods": None,
        }
        super().__init__(_PROVIDER, name, props, pulumi.ResourceOptions.merge(opts, secret))
