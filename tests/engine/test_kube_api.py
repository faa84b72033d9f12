"""The Kubernetes client against the local cluster's real API server.

Every request goes through the API server's authentication (client certificates, service
account tokens) and RBAC; each test works in a namespace of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from opstrace import kubeconfig as kubeconfigs
from sidecar import kube_client
from sidecar.kube_client import Api
from tools.cluster import credentials
from tools.cluster.state import PKI

pytestmark = pytest.mark.engine

CONFIG_MAPS: Final = "/api/v1/namespaces/{namespace}/configmaps"
WHO_AM_I: Final = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def username(api: Api) -> str:
    """Who the API server takes the client for."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return str(api.create(WHO_AM_I, review)["status"]["userInfo"]["username"])


@pytest.fixture
def namespace(cluster: Api) -> Iterator[str]:
    name = f"kube-api-{secrets.token_hex(3)}"
    cluster.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    cluster.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def config_maps(namespace: str) -> str:
    return CONFIG_MAPS.format(namespace=namespace)


def test_created_object_is_read_back_and_a_missing_one_is_none(
    cluster: Api, config_maps: str
) -> None:
    created = cluster.create(config_maps, config_map("settings", greeting="hello"))
    assert cluster.get(f"{config_maps}/settings") == created
    assert created["data"] == {"greeting": "hello"}
    assert cluster.get(f"{config_maps}/missing") is None


def test_creating_an_existing_object_is_a_conflict_in_the_servers_words(
    cluster: Api, config_maps: str
) -> None:
    cluster.create(config_maps, config_map("settings"))
    with pytest.raises(kube_client.Conflict) as raised:
        cluster.create(config_maps, config_map("settings"))
    assert str(raised.value) == (
        f'POST {config_maps}: 409 Conflict: configmaps "settings" already exists'
    )


def test_list_follows_every_page_and_keeps_the_selector(
    cluster: Api, config_maps: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        body = config_map(f"cm-{index}")
        body["metadata"]["labels"] = {"app": "gateway" if index != 2 else "other"}
        cluster.create(config_maps, body)
    monkeypatch.setattr(kube_client, "LIST_PAGE", 2)  # 4 matches: two full pages, then none
    listing = cluster.list(config_maps, label_selector="app=gateway")
    names = [item["metadata"]["name"] for item in listing["items"]]
    assert names == ["cm-0", "cm-1", "cm-3", "cm-4"]
    assert listing["metadata"]["resourceVersion"]
    assert "continue" not in listing["metadata"]


def test_merge_patch_changes_only_what_it_names(cluster: Api, config_maps: str) -> None:
    cluster.create(config_maps, config_map("settings", a="1", b="2"))
    patched = cluster.merge_patch(f"{config_maps}/settings", {"data": {"b": None, "c": "3"}})
    assert patched["data"] == {"a": "1", "c": "3"}


def test_apply_creates_then_updates_and_refuses_another_managers_field(
    cluster: Api, config_maps: str
) -> None:
    path = f"{config_maps}/applied"
    first = cluster.apply(path, config_map("applied", a="1"), field_manager="first")
    assert first["data"] == {"a": "1"}
    assert cluster.apply(path, config_map("applied", a="2"), field_manager="first")["data"] == {
        "a": "2"
    }
    with pytest.raises(kube_client.Conflict) as raised:
        cluster.apply(path, config_map("applied", a="3"), field_manager="second")
    assert str(raised.value).startswith(f"PATCH {path}: 409 Conflict: Apply failed with 1 conflict")
    taken = cluster.apply(path, config_map("applied", a="3"), field_manager="second", force=True)
    assert taken["data"] == {"a": "3"}


def test_delete_says_whether_there_was_an_object(cluster: Api, config_maps: str) -> None:
    cluster.create(config_maps, config_map("settings"))
    assert cluster.delete(f"{config_maps}/settings") is True
    assert cluster.get(f"{config_maps}/settings") is None
    assert cluster.delete(f"{config_maps}/settings") is False


def test_watch_sees_updates_made_by_another_client(
    cluster: Api, config_maps: str, namespace: str
) -> None:
    """One update before the watch opens (replayed from the resourceVersion) and one made
    while the watch is open, each by a second client; the watch waits for the events."""
    other = kubeconfigs.from_document(
        credentials.kubeconfig("kube-scheduler", port(cluster), embed=True)
    )
    created = cluster.create(config_maps, config_map("settings", step="0"))
    other.merge_patch(f"{config_maps}/settings", {"data": {"step": "1"}})
    seen = []
    events = cluster.watch(
        config_maps,
        resource_version=created["metadata"]["resourceVersion"],
        field_selector="metadata.name=settings",
        timeout_seconds=60,
    )
    for event in events:
        seen.append((event.type, event.object["data"]["step"]))
        if len(seen) == 1:
            other.merge_patch(f"{config_maps}/settings", {"data": {"step": "2"}})
        else:
            break
    assert seen == [("MODIFIED", "1"), ("MODIFIED", "2")]


def test_forbidden_request_is_one_line_naming_the_user(
    cluster: Api, namespace: str, tmp_path: Path
) -> None:
    pod = service_account_folder(cluster, namespace, "reader", tmp_path)
    api = Api.in_cluster(pod, environ=service_environment(cluster))
    with pytest.raises(kube_client.ApiError) as raised:
        api.get(f"/api/v1/namespaces/{namespace}/secrets/anything")
    assert raised.value.status == 403
    assert str(raised.value) == (
        f"GET /api/v1/namespaces/{namespace}/secrets/anything: 403 Forbidden: secrets "
        f'"anything" is forbidden: User "system:serviceaccount:{namespace}:reader" cannot get '
        f'resource "secrets" in API group "" in the namespace "{namespace}"'
    )


# --- in a pod, and with an exec plugin ------------------------------------------------------


def port(api: Api) -> int:
    return int(urllib.parse.urlsplit(api.server).port or 443)


def service_environment(api: Api) -> dict[str, str]:
    """What the kubelet sets in a pod of this cluster."""
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port(api))}


def service_account_token(api: Api, namespace: str, name: str) -> str:
    """A token of the service account `name` (made if missing), as the kubelet requests it."""
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    if api.get(f"{accounts}/{name}") is None:
        api.create(accounts, {"metadata": {"name": name}})
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    return str(api.create(f"{accounts}/{name}/token", request)["status"]["token"])


def project_token(folder: Path, token: str) -> None:
    """Write the token as the kubelet does: a new `..data` folder swapped in atomically."""
    version = folder / f"..{secrets.token_hex(4)}"
    version.mkdir()
    (version / "token").write_text(token)
    (folder / "..data.tmp").symlink_to(version.name)
    os.replace(folder / "..data.tmp", folder / "..data")
    if not (folder / "token").is_symlink():
        (folder / "token").symlink_to("..data/token")


def service_account_folder(api: Api, namespace: str, name: str, folder: Path) -> Path:
    """/var/run/secrets/kubernetes.io/serviceaccount as a pod of `name` would have it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes((PKI / "ca.crt").read_bytes())
    (folder / "namespace").write_text(namespace)
    project_token(folder, service_account_token(api, namespace, name))
    return folder


def test_in_cluster_client_is_its_service_account_and_follows_a_rotated_token(
    cluster: Api, namespace: str, tmp_path: Path
) -> None:
    folder = service_account_folder(cluster, namespace, "first", tmp_path / "sa")
    api = Api.in_cluster(folder, environ=service_environment(cluster))
    assert api.namespace == namespace
    assert username(api) == f"system:serviceaccount:{namespace}:first"
    project_token(folder, service_account_token(cluster, namespace, "second"))
    assert username(api) == f"system:serviceaccount:{namespace}:second"


PLUGIN: Final = """\
    import json, pathlib, sys
    answer = {{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}}
    answer["status"] = {status}
    print(json.dumps(answer))
"""


def exec_kubeconfig(api: Api, folder: Path, status: str) -> dict[str, Any]:
    script = folder / "plugin.py"
    script.write_text(textwrap.dedent(PLUGIN.format(status=status)))
    document = credentials.kubeconfig("admin", port(api), embed=True)
    document["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }
    return document


def test_exec_plugin_client_certificate_authenticates(cluster: Api, tmp_path: Path) -> None:
    credentials.kubeconfig("exec-user", port(cluster), embed=False)  # issues its certificate
    pem = {name: (PKI / f"exec-user.{name}").read_text() for name in ("crt", "key")}
    status = json.dumps({"clientCertificateData": pem["crt"], "clientKeyData": pem["key"]})
    api = kubeconfigs.from_document(exec_kubeconfig(cluster, tmp_path, status))
    assert username(api) == "exec-user"


def test_exec_plugin_token_authenticates(cluster: Api, namespace: str, tmp_path: Path) -> None:
    token = service_account_token(cluster, namespace, "deployer")
    api = kubeconfigs.from_document(
        exec_kubeconfig(cluster, tmp_path, json.dumps({"token": token}))
    )
    assert username(api) == f"system:serviceaccount:{namespace}:deployer"


class Stale:
    """A credential source whose first credential the API server refuses."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.refreshed = 0

    def current(self) -> kube_client.Credential:
        return kube_client.Credential(token=self.token if self.refreshed else "refused")

    def refresh(self) -> kube_client.Credential:
        self.refreshed += 1
        return self.current()


def test_refused_credential_is_fetched_again_once(cluster: Api, namespace: str) -> None:
    source = Stale(service_account_token(cluster, namespace, "rotated"))
    api = Api(
        cluster.server, certificate_authority=(PKI / "ca.crt").read_bytes(), credentials=source
    )
    assert username(api) == f"system:serviceaccount:{namespace}:rotated"
    assert source.refreshed == 1
