"""An existing cluster must enforce NetworkPolicies, or the stack must accept the risk.

The rules that tell an enforcer from a cluster's DaemonSets (`opstrace.enforcers`)
as a table, then the provider's check against a stand-in API server, in process and
through the real provider host. Against a real API server: tests/engine/test_instance.py.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import enforcement
from components.enforcement import NetworkPolicyEnforcementProvider
from opstrace import enforcers
from tests.provider_host import DiffChanges, ProviderHost

ACCEPT = "or accept the risk with `pulumi config set networkPolicyRiskAccepted true`"
EXPOSED = "any pod in the cluster can read and write every tenant's data in Mimir and Loki"
NONE_FOUND = (
    "the cluster runs no NetworkPolicy enforcer this program knows (the AWS VPC CNI's "
    "network policy agent, Calico, Canal (Calico policy), Cilium, GKE Dataplane V2 (Cilium), "
    "Antrea, kube-router, Weave Net, Azure Network Policy Manager, kube-network-policies), so "
    f"{EXPOSED}: install or enable one, {ACCEPT}"
)
AWS_WITHOUT_AGENT = (
    "the cluster's AWS VPC CNI runs without its network policy agent, so NetworkPolicies are "
    f"not enforced and {EXPOSED}: enable it with `aws eks update-addon --cluster-name "
    "<cluster> --addon-name vpc-cni --configuration-values "
    """'{"enableNetworkPolicy":"true"}'`, """
    f"{ACCEPT}"
)


def daemonset(
    namespace: str, name: str, containers: Sequence[dict[str, Any]] = (), ready: int = 3
) -> dict[str, Any]:
    """A DaemonSet as the API server lists it: its place, containers and ready pods."""
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"template": {"spec": {"containers": list(containers) or [{"name": name}]}}},
        "status": {"desiredNumberScheduled": 3, "numberReady": ready},
    }


def aws_node(agent_args: Sequence[str] | None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "aws-node"}]
    if agent_args is not None:
        containers.append({"name": "aws-eks-nodeagent", "args": list(agent_args)})
    return daemonset("kube-system", "aws-node", containers)


KUBE_PROXY = daemonset("kube-system", "kube-proxy")

VERDICTS: list[tuple[str, list[dict[str, Any]], str | None, str | None]] = [
    (
        "aws_vpc_cni_with_its_agent_on",
        [KUBE_PROXY, aws_node(["--enable-ipv6=false", "--enable-network-policy=true"])],
        "the AWS VPC CNI's network policy agent",
        None,
    ),
    (
        "aws_vpc_cni_with_its_agent_off",
        [KUBE_PROXY, aws_node(["--enable-network-policy=false"])],
        None,
        AWS_WITHOUT_AGENT,
    ),
    ("aws_vpc_cni_without_its_agent", [aws_node(None)], None, AWS_WITHOUT_AGENT),
    (
        "calico_beside_the_aws_vpc_cni",
        [aws_node(None), daemonset("calico-system", "calico-node")],
        "Calico",
        None,
    ),
    ("calico_installed_by_manifest", [daemonset("kube-system", "calico-node")], "Calico", None),
    ("cilium", [daemonset("kube-system", "cilium")], "Cilium", None),
    ("antrea", [daemonset("kube-system", "antrea-agent")], "Antrea", None),
    (
        "weave_net_with_its_policy_controller",
        [daemonset("kube-system", "weave-net", [{"name": "weave"}, {"name": "weave-npc"}])],
        "Weave Net",
        None,
    ),
    (
        "weave_net_without_its_policy_controller",
        [daemonset("kube-system", "weave-net", [{"name": "weave"}])],
        None,
        NONE_FOUND,
    ),
    (
        "kube_router_with_its_firewall_off",
        [
            daemonset(
                "kube-system",
                "kube-router",
                [{"name": "kube-router", "args": ["--run-router=true", "--run-firewall=false"]}],
            )
        ],
        None,
        NONE_FOUND,
    ),
    (
        "an_enforcer_with_no_ready_pod",
        [daemonset("calico-system", "calico-node", ready=0)],
        None,
        f"no pod of Calico (calico-system/calico-node) is ready, so NetworkPolicies are not "
        f"enforced and {EXPOSED}: fix the enforcer, {ACCEPT}",
    ),
    (
        "a_lookalike_in_another_namespace",
        [daemonset("default", "calico-node")],
        None,
        NONE_FOUND,
    ),
    ("nothing_but_kube_proxy", [KUBE_PROXY], None, NONE_FOUND),
    ("no_daemonset_at_all", [], None, NONE_FOUND),
]


@pytest.mark.parametrize(
    ("daemonsets", "enforcer", "problem"),
    [row[1:] for row in VERDICTS],
    ids=[row[0] for row in VERDICTS],
)
def test_the_enforcer_is_told_from_the_clusters_daemonsets(
    daemonsets: list[dict[str, Any]], enforcer: str | None, problem: str | None
) -> None:
    assert enforcers.verdict(daemonsets) == enforcers.Verdict(enforcer, problem)


# The check against a stand-in API server -----------------------------------------


class StandInApi(http.server.ThreadingHTTPServer):
    """Answers the DaemonSet list as an API server would, with `daemonsets` or `status`."""

    daemonsets: list[dict[str, Any]]
    status: int = 200
    asked: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StandInApi

    def do_GET(self) -> None:
        self.server.asked += 1
        body: dict[str, Any]
        if self.server.status != 200 or not self.path.startswith(enforcement.DAEMONSETS):
            status = self.server.status if self.server.status != 200 else 404
            body = {"kind": "Status", "message": "daemonsets.apps is forbidden"}
        else:
            status, body = 200, {"items": self.server.daemonsets, "metadata": {}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[StandInApi]:
    server = StandInApi(("127.0.0.1", 0), _Handler)
    server.daemonsets = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig_for(server: str, context: str = "local") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }


@pytest.fixture
def kubeconfig(tmp_path: Path, api: StandInApi) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_for(f"http://127.0.0.1:{api.server_port}")))
    return path


def check(kubeconfig: str, risk_accepted: bool = False) -> list[tuple[str, str]]:
    news = {"kubeconfig": kubeconfig, "context": "", "risk_accepted": risk_accepted}
    failures = NetworkPolicyEnforcementProvider().check({}, news).failures
    return [(f.property, f.reason) for f in failures]


def test_a_cluster_with_an_enforcer_passes_the_check(api: StandInApi, kubeconfig: Path) -> None:
    api.daemonsets = [daemonset("kube-system", "cilium")]
    assert check(str(kubeconfig)) == []


def test_a_cluster_without_an_enforcer_fails_the_check_saying_what_to_do(
    api: StandInApi, kubeconfig: Path
) -> None:
    api.daemonsets = [KUBE_PROXY]
    assert check(str(kubeconfig)) == [("risk_accepted", NONE_FOUND)]


def test_an_accepted_risk_passes_without_reading_the_cluster(
    api: StandInApi, kubeconfig: Path
) -> None:
    assert check(str(kubeconfig), risk_accepted=True) == []
    assert api.asked == 0


def test_a_cluster_that_cannot_be_read_fails_the_check_with_the_reason(
    api: StandInApi, kubeconfig: Path
) -> None:
    api.status = 403
    assert check(str(kubeconfig)) == [
        (
            "risk_accepted",
            "cannot tell whether the cluster enforces NetworkPolicies: GET "
            "/apis/apps/v1/daemonsets: 403 Forbidden: daemonsets.apps is forbidden: "
            f"fix the kubeconfig or the permission to list DaemonSets, {ACCEPT}",
        )
    ]


def test_a_missing_kubeconfig_fails_the_check_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert check(str(missing)) == [
        (
            "risk_accepted",
            f"cannot tell whether the cluster enforces NetworkPolicies: kubeconfig {missing}: "
            "cannot read: No such file or directory: fix the kubeconfig or the permission to "
            f"list DaemonSets, {ACCEPT}",
        )
    ]


def test_a_changed_input_is_an_update_and_never_a_replacement() -> None:
    provider = NetworkPolicyEnforcementProvider()
    olds = {"kubeconfig": "", "context": "a", "risk_accepted": True}
    diff = provider.diff(enforcement.RESOURCE_ID, olds, {**olds, "context": "b"})
    assert (diff.changes, diff.replaces) == (True, None)
    assert provider.diff(enforcement.RESOURCE_ID, olds, dict(olds)).changes is False


@pytest.fixture
def enforcement_host(provider_host: ProviderHost) -> ProviderHost:
    return provider_host.serving(NetworkPolicyEnforcementProvider())


@pytest.mark.provider_host
def test_the_provider_host_refuses_a_cluster_without_an_enforcer_at_check(
    enforcement_host: ProviderHost, api: StandInApi, kubeconfig: Path
) -> None:
    news = {"kubeconfig": str(kubeconfig), "context": "", "risk_accepted": False}
    assert enforcement_host.check(news).failures == (("risk_accepted", NONE_FOUND),)
    api.daemonsets = [daemonset("calico-system", "calico-node")]
    checked = enforcement_host.check(news)
    assert checked.failures == ()
    created = enforcement_host.create(checked.inputs)
    assert created.properties == news
    diff = enforcement_host.diff(created.id, created.properties, news)
    assert diff.changes is DiffChanges.NONE
