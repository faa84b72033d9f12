"""Gateway pods run for real on the local cluster: their containers as local processes.

kwok fakes every pod (Running and Ready, nothing executes), so on the local cluster the
gateway would never load its files and `pulumi up` would wait on it forever. This
stand-in runs what a kubelet would for each gateway pod, from the pod as the API server
holds it: the `gateway-sync` sidecar (this checkout's Python: the code is the one in the
pod's code ConfigMap) with a real token of the pod's service account (TokenRequest,
bound to the pod), then HAProxy (`$OPSTRACE_HAPROXY`, else the pinned build, else
Debian's) once the sidecar's startup probe passes. Each container gets the pod's
command, arguments and environment (downward API fields filled in), with every path
under a volume's mount point moved under the pod's own directory; nothing else differs.

All pods share the host's network: HAProxy binds its listeners with SO_REUSEPORT (its
default), as the sidecar binds its status port, so two pods listen on :8443 at once and
the kernel spreads connections over them, as the NLB spreads them over the pods. For the
same reason two clusters on one machine would serve each other's connections without a
word: one cluster at a time runs gateway pods (`PORTS_LOCK`, held by the stand-ins'
process; `up` refuses while another cluster holds it). A pod of an earlier release
(volumes mounted from the ConfigMaps, no sidecar) is not run: nothing here would make a
kubelet's projected volumes; the runner says so once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from opstrace.gateway import settings as gateway_settings
from sidecar import kube_client
from tools.cluster.state import STATE, ClusterError
from tools.cluster.supervisor import Supervisor

SELECTOR: Final = "app.kubernetes.io/name=opstrace-gateway"
ADDRESS: Final = ("127.0.0.1", int(gateway_settings.DEFAULT_LISTEN.rpartition(":")[2]))
"""Where clients on this machine reach the gateway pods' TLS listener (they share its
network)."""
PODS: Final = "/api/v1/pods"
ROOT: Final = Path(tempfile.gettempdir())
"""Where each pod's processes keep their logs, pids and volumes (`opstrace-pod-<uid>`), not
under the checkout: HAProxy refuses a master socket path longer than 97 bytes (a unix
socket's address holds 108), and a checkout's own path may leave no room for it."""
HAPROXY_CANDIDATES: Final = (
    Path.home() / ".cache" / "opstrace-haproxy" / "3.4.7" / "haproxy",
    Path("/usr/sbin/haproxy"),
)
PORTS_LOCK: Final = Path(tempfile.gettempdir()) / "opstrace-gateway-pods.lock"
"""Held by the one local cluster of the machine that runs gateway pods; names its state."""
READY_SECONDS: Final = 600.0
"""How long the sidecar may wait for a whole file set (certificates being issued)."""
_TOKEN_SECONDS: Final = 3600


def haproxy_binary() -> str:
    given = os.environ.get("OPSTRACE_HAPROXY")
    if given:
        return given
    for candidate in HAPROXY_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("haproxy")
    if found is None:
        raise ClusterError("no haproxy to run the gateway pods: set OPSTRACE_HAPROXY")
    return found


def hold_ports() -> int | None:
    """The lock on the gateway pods' ports, as an open descriptor (held until it is
    closed or the process ends), or None while another cluster holds it."""
    descriptor = os.open(PORTS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(STATE).encode())
    return descriptor


def ports_holder() -> str | None:
    """The state folder of the other cluster that runs gateway pods on this machine."""
    descriptor = hold_ports()
    if descriptor is not None:
        os.close(descriptor)
        return None
    try:
        return PORTS_LOCK.read_text().strip() or "another local cluster"
    except OSError:
        return "another local cluster"


def runs_here(pod: Mapping[str, Any]) -> bool:
    """A pod of this release: its files come from its sidecar, which this runner runs."""
    return any(c.get("name") == "gateway-sync" for c in pod["spec"].get("initContainers", []))


class LocalPod:
    """One gateway pod's containers as processes under `ROOT/opstrace-pod-<pod uid>` (the
    supervisor knows them as its own by that path in their command lines)."""

    def __init__(
        self,
        api: kube_client.Api,
        pod: Mapping[str, Any],
        apiserver_port: int,
        haproxy: str | None = None,
    ) -> None:
        self.api = api
        self.haproxy_binary = haproxy
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.name = str(pod["metadata"]["name"])
        self.namespace = str(pod["metadata"]["namespace"])
        self.root = pod_root(self.uid)
        self.apiserver_port = apiserver_port
        self.supervisor = Supervisor(self.root)
        spec = pod["spec"]
        self.sidecar = next(
            c for c in spec.get("initContainers", []) if c["name"] == "gateway-sync"
        )
        self.haproxy = next(c for c in spec["containers"] if c["name"] == "haproxy")
        self.mounts = self._volumes(spec)

    # The pod's volumes ----------------------------------------------------------------------

    def _volumes(self, spec: Mapping[str, Any]) -> dict[str, Path]:
        """Mount path -> this pod's directory for it, the volume's content written."""
        directories: dict[str, Path] = {}
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in (self.sidecar, self.haproxy):
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                directory = self.root / "volumes" / mount["name"]
                directories[mount["mountPath"]] = directory
                if not directory.exists():
                    directory.mkdir(parents=True)
                    self._fill(volume, directory)
        return directories

    def _fill(self, volume: Mapping[str, Any], directory: Path) -> None:
        if "configMap" in volume:
            self._config_map(volume["configMap"], directory)
        elif "projected" in volume:
            for source in volume["projected"]["sources"]:
                if "serviceAccountToken" in source:
                    (directory / source["serviceAccountToken"]["path"]).write_text(self._token())
                elif "configMap" in source:
                    self._config_map(source["configMap"], directory)
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"]["items"]:
                        value = self._field(item["fieldRef"]["fieldPath"])
                        (directory / item["path"]).write_text(value)

    def _config_map(self, source: Mapping[str, Any], directory: Path) -> None:
        found = self.api.get(f"/api/v1/namespaces/{self.namespace}/configmaps/{source['name']}")
        if found is None:
            raise ClusterError(f"gateway pod {self.name}: no ConfigMap {source['name']}")
        data = found.get("data") or {}
        for item in source.get("items") or [{"key": key, "path": key} for key in data]:
            target = directory / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])

    def _token(self) -> str:
        account = self.pod["spec"].get("serviceAccountName", "default")
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": _TOKEN_SECONDS,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        answer = self.api.create(
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token", request
        )
        return str(answer["status"]["token"])

    def _field(self, path: str) -> str:
        """A downward API field the gateway's pod spec names."""
        fields = {
            "metadata.namespace": self.namespace,
            "metadata.name": self.name,
            "metadata.uid": self.uid,
        }
        if path not in fields:
            raise ClusterError(f"gateway pod {self.name}: downward API field {path} not faked")
        return fields[path]

    # The containers --------------------------------------------------------------------------

    def _moved(self, word: str) -> str:
        """`word` (`PATH`, `--flag=PATH`, `PATH,options`) with a path under a mount point
        moved to this pod's directory for it, once."""
        flag, equals, value = word.partition("=")
        if not equals:
            flag, value = "", word
        for mount_path in sorted(self.mounts, key=len, reverse=True):
            if value == mount_path or value.startswith((f"{mount_path}/", f"{mount_path},")):
                value = str(self.mounts[mount_path]) + value[len(mount_path) :]
                break
        return f"{flag}{equals}{value}"

    def _argv(self, container: Mapping[str, Any], program: str) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        values: dict[str, str] = {}
        for variable in container.get("env", []):
            if "valueFrom" in variable:
                value = self._field(variable["valueFrom"]["fieldRef"]["fieldPath"])
            else:
                value = self._moved(variable.get("value", ""))
            values[variable["name"]] = value
        env.update(values)
        env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
        env["KUBERNETES_SERVICE_PORT"] = str(self.apiserver_port)
        words = [*container.get("command", []), *container.get("args", [])]
        for name, value in values.items():
            words = [word.replace(f"$({name})", value) for word in words]
        return [program, *(self._moved(word) for word in words[1:])], env

    def start(self) -> None:
        """The sidecar now; HAProxy once the sidecar's startup probe passes (in a thread:
        a pod waiting for its certificates holds no other pod up)."""
        python, env = self._argv(self.sidecar, sys.executable)
        self.supervisor.start("gateway-sync", python, env)
        threading.Thread(target=self._start_haproxy, name=self.name, daemon=True).start()

    def _start_haproxy(self) -> None:
        probe = self.sidecar["startupProbe"]["httpGet"]
        port = next(p["containerPort"] for p in self.sidecar["ports"] if p["name"] == probe["port"])
        self.supervisor.wait_for(
            lambda: _answers(f"http://127.0.0.1:{port}{probe['path']}"),
            f"gateway pod {self.name}: the sidecar's files",
            "gateway-sync",
            timeout=READY_SECONDS,
        )
        haproxy, env = self._argv(self.haproxy, self.haproxy_binary or haproxy_binary())
        self.supervisor.start("haproxy", haproxy, env)

    def stop(self) -> None:
        stop_pod(self.uid)


def pod_root(uid: str) -> Path:
    """Where the processes of the gateway pod `uid` keep their files."""
    return ROOT / f"opstrace-pod-{uid}"


def stop_pod(uid: str) -> None:
    """Stop the processes of the gateway pod `uid` (ours only, by pid) and delete its
    files: what the runner does when the pod goes, and what a teardown does for a pod the
    runner may not have seen go (`tools.local`)."""
    supervisor = Supervisor(pod_root(uid))
    for name in ("haproxy", "gateway-sync"):
        supervisor.stop(name)
    shutil.rmtree(pod_root(uid), ignore_errors=True)


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own loopback)
        return bool(response.status == 200)


class Runner:
    """Every gateway pod of the cluster running as `LocalPod`s, as pods come and go."""

    def __init__(self, api: kube_client.Api, apiserver_port: int) -> None:
        self.api = api
        self.apiserver_port = apiserver_port
        self.running: dict[str, LocalPod] = {}
        self.not_run: set[str] = set()

    def reconcile(self, pods: Sequence[Mapping[str, Any]]) -> list[str]:
        """Start the pods not running yet, stop those gone or going; what it did, and
        each pod that failed to start (tried again with its next change)."""
        wanted = {
            str(p["metadata"]["uid"]): p for p in pods if not p["metadata"].get("deletionTimestamp")
        }
        done = []
        for uid in sorted(set(self.running) - set(wanted)):
            pod = self.running.pop(uid)
            pod.stop()
            done.append(f"gateway pod {pod.namespace}/{pod.name} stopped")
        for uid, manifest in sorted(wanted.items()):
            name = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
            if uid in self.running or uid in self.not_run:
                continue
            if not runs_here(manifest):
                self.not_run.add(uid)
                done.append(f"gateway pod {name} not run: an earlier release's (no gateway-sync)")
                continue
            pod = LocalPod(self.api, manifest, self.apiserver_port)
            try:
                pod.start()
            except (ClusterError, kube_client.KubeApiError) as error:
                pod.stop()
                done.append(f"gateway pod {name} failed to start: {error}")
                continue
            self.running[uid] = pod
            done.append(f"gateway pod {name} started")
        return done


def run(api: kube_client.Api, apiserver_port: int, say: Callable[[str], None]) -> None:
    """Forever: the gateway pods of the cluster as listed and as they change, running."""
    lock = hold_ports()  # held until the process ends
    while lock is None:
        say(f"gateway pods not run while {ports_holder()} runs its own on this machine's ports")
        time.sleep(5.0)
        lock = hold_ports()
    runner = Runner(api, apiserver_port)
    while True:
        try:
            listing = api.list(PODS, label_selector=SELECTOR)
            pods = {p["metadata"]["uid"]: p for p in listing.get("items", [])}
            _act(runner, pods, say)
            version = listing["metadata"]["resourceVersion"]
            while True:
                for event in api.watch(
                    PODS, resource_version=version, label_selector=SELECTOR, bookmarks=True
                ):
                    version = event.resource_version or version
                    uid = event.object.get("metadata", {}).get("uid")
                    if event.type == "DELETED":
                        pods.pop(uid, None)
                    elif event.type in ("ADDED", "MODIFIED"):
                        pods[uid] = event.object
                    else:
                        continue
                    _act(runner, pods, say)
        except kube_client.Gone:
            continue
        except kube_client.KubeApiError as error:
            say(str(error))
            time.sleep(1.0)


def _act(runner: Runner, pods: Mapping[str, Mapping[str, Any]], say: Callable[[str], None]) -> None:
    try:
        for line in runner.reconcile(list(pods.values())):
            say(line)
    except (ClusterError, kube_client.ApiError) as error:  # this pod only: the others still run
        say(str(error))
