"""The toolchain end to end: the real CLI, language host, providers and API server.

A throwaway program (not the project's) creates a Namespace, a ConfigMap, a Deployment
of 2 replicas and a LoadBalancer Service through an explicit Kubernetes provider, plus
one dynamic resource; then up, preview and refresh without changes, the outputs with
secrets, destroy. The last test pins an engine behaviour that the mocks do not have;
what the offline tools copy from the CLI is checked in test_cli_copies.py.
"""

from __future__ import annotations

import importlib.metadata
import re
import secrets
from typing import Any, Final

import pytest

from sidecar import kube_client
from tests.engine.harness import Workspace
from tools import cluster as local_cluster

pytestmark = pytest.mark.engine

SMOKE_PROGRAM: Final = """
    import pulumi
    import pulumi_kubernetes as k8s

    from smoke_provider import Echo

    config = pulumi.Config()
    provider = k8s.Provider("cluster", kubeconfig=config.require("kubeconfig"))
    opts = pulumi.ResourceOptions(provider=provider)
    namespace = k8s.core.v1.Namespace(
        "ns", metadata={"name": config.require("namespace")}, opts=opts
    )
    ns = namespace.metadata.name
    config_map = k8s.core.v1.ConfigMap(
        "settings",
        metadata={"name": "settings", "namespace": ns},
        data={"greeting": "hello"},
        opts=opts,
    )
    labels = {"app": "web"}
    deployment = k8s.apps.v1.Deployment(
        "web",
        metadata={"name": "web", "namespace": ns},
        spec={
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
        opts=opts,
    )
    service = k8s.core.v1.Service(
        "web",
        metadata={"name": "web", "namespace": ns},
        spec={"type": "LoadBalancer", "selector": labels, "ports": [{"port": 80}]},
        opts=opts,
    )
    echo = Echo("echo", "hi")
    pulumi.export("config_map", config_map.metadata.name)
    pulumi.export("ready_replicas", deployment.status.ready_replicas)
    pulumi.export("hostname", service.status.load_balancer.ingress[0].hostname)
    pulumi.export("echo", echo.length)
    pulumi.export("secret", pulumi.Output.secret("s3cret"))
"""

SMOKE_PROVIDER: Final = """
    import uuid
    from typing import Any

    import pulumi
    from pulumi.dynamic import CreateResult, ReadResult, Resource, ResourceProvider


    class EchoProvider(ResourceProvider):
        def create(self, props: dict[str, Any]) -> CreateResult:
            outs = {"value": props["value"], "length": len(props["value"])}
            return CreateResult(id_=uuid.uuid4().hex, outs=outs)

        def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
            return ReadResult(id_=id_, outs=props)


    class Echo(Resource):
        length: pulumi.Output[int]

        def __init__(self, name: str, value: str) -> None:
            super().__init__(EchoProvider(), name, {"value": value, "length": None})
"""


def configmap(api: kube_client.Api, namespace: str) -> Any:
    return api.get(f"/api/v1/namespaces/{namespace}/configmaps/settings")


def test_up_preview_refresh_outputs_destroy(workspace: Workspace, cluster: kube_client.Api) -> None:
    namespace = f"smoke-{secrets.token_hex(3)}"
    workspace.write_project("smoke", SMOKE_PROGRAM, files={"smoke_provider.py": SMOKE_PROVIDER})
    workspace.new_stack("test")
    workspace.run("config", "set", "kubeconfig", str(local_cluster.KUBECONFIG))
    workspace.run("config", "set", "namespace", namespace)

    up = workspace.run("up", "--yes", "--skip-preview")
    assert configmap(cluster, namespace)["data"] == {"greeting": "hello"}, up.stdout
    deployment = cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert deployment["status"]["readyReplicas"] == 2
    pods = cluster.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)

    outputs = workspace.outputs("test")
    assert outputs == {
        "config_map": "settings",
        "ready_replicas": 2,
        "hostname": local_cluster.lb_hostname("web", namespace),
        "echo": 2,
        "secret": "s3cret",
    }
    hidden = workspace.run("stack", "output", "secret").stdout.strip()
    assert hidden == "[secret]"
    state = workspace.state_file("smoke", "test").read_text()
    assert "s3cret" not in state  # encrypted with the passphrase

    workspace.run("preview", "--expect-no-changes")
    workspace.run("refresh", "--yes", "--expect-no-changes", "--skip-preview")

    workspace.run("destroy", "--yes", "--skip-preview")
    assert configmap(cluster, namespace) is None
    assert cluster.get(f"/api/v1/namespaces/{namespace}") is None  # finalized and gone
    workspace.run("stack", "rm", "test", "--yes")


NO_RESOURCES: Final = """
    import pulumi

    config = pulumi.Config()
    pulumi.export("greeting", config.get("greeting"))
    pulumi.export("count", config.get_int("count"))
"""


def test_installed_aws_package_without_aws_plugin(workspace: Workspace) -> None:
    """The venv has pulumi_aws, so the language host reports the aws plugin as required,
    but no aws plugin exists and downloads are off: the engine notes that it is not
    installed and goes on; a program that registers no AWS resource runs (an AWS
    resource would fail then, for want of its provider)."""
    assert importlib.metadata.version("pulumi_aws")
    workspace.write_project("noaws", NO_RESOURCES)
    workspace.new_stack("test")
    result = workspace.run("up", "--yes", "--skip-preview", "-v=7", "--logtostderr")
    assert re.search(r"package aws-[0-9.]+ \(\) is required by language host", result.stderr)
    assert re.search(r"plugin aws [0-9.]+ not installed", result.stderr)
    assert workspace.outputs("test") == {}  # the program ran; exports of None are dropped
