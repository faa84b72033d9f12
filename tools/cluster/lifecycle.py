"""A local Kubernetes cluster for the engine tests, all on 127.0.0.1.

    python -m tools.cluster up       # start it (or say that it is already up)
    python -m tools.cluster status   # each component: pid, port, health
    python -m tools.cluster down     # stop it and delete its state

It runs the binaries that `make engine` built into `.engine/bin`: etcd, kube-apiserver
with real authentication (client certificates from a CA generated at start, anonymous
requests refused, RBAC), kube-controller-manager (Deployments get ReplicaSets and pods,
namespaces are finalized, garbage collection runs), kube-scheduler, and kwok, which fakes
the nodes (`topology.kubernetes.io/zone` labelled) and makes their pods Running and Ready.

One more process, `lb-controller`, stands in for two controllers a real cluster runs:
- the cloud's load balancer controller (the AWS Load Balancer Controller on EKS): it gives
  every `type: LoadBalancer` Service the address a cloud would,
  `status.loadBalancer.ingress[0].hostname = <name>-<namespace>.lb.local`, so that
  pulumi-kubernetes' await logic completes as it does on a real cluster (nothing listens
  at that address);
- cert-manager: `up` installs minimal `Certificate` and `ClusterIssuer` CRDs (cert-manager's
  names, no schema) and a ClusterIssuer `test-issuer`; the loop issues every Certificate
  from the test CA into its `spec.secretName` Secret (`tls.crt`, `tls.key`) and marks it
  Ready, as cert-manager would after its DNS-01 challenge.

State lives in `.engine/cluster/` (certificates, etcd data, pid files, one log per
component, the ports in `state.json`); the admin kubeconfig is `.engine/kubeconfig`.
Ports are free ports picked at start. Every wait is a bounded poll that fails naming what
did not come up, with the tail of its log.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tools import pki

ROOT: Final = Path(__file__).resolve().parent.parent
ENGINE_DIR: Final = ROOT / ".engine"
BIN: Final = ENGINE_DIR / "bin"
STATE: Final = ENGINE_DIR / "cluster"
KUBECONFIG: Final = ENGINE_DIR / "kubeconfig"
PKI: Final = STATE / "pki"
LOGS: Final = STATE / "logs"
PIDS: Final = STATE / "pids"
CERTIFICATE_DAYS: Final = 30

COMPONENTS: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "lb-controller",
)
NODES: Final = (("kwok-node-0", "local-a"), ("kwok-node-1", "local-b"))
LB_DOMAIN: Final = "lb.local"
SERVICE_CIDR: Final = "10.96.0.0/16"
POD_CIDR: Final = "10.244.0.1/16"
POLL_SECONDS: Final = 0.25
START_TIMEOUT: Final = 180.0
STOP_TIMEOUT: Final = 15.0


class ClusterError(Exception):
    """The cluster could not be started, reached or stopped; the message says what."""


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (closed again for a component to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(component: str, lines: int = 25) -> str:
    path = LOGS / f"{component}.log"
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {path}:\n" + "\n".join(text)


def wait_for(
    condition: Callable[[], bool], what: str, component: str, timeout: float = START_TIMEOUT
) -> None:
    """Poll `condition` until it holds; after `timeout` seconds fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ClusterError, http.client.HTTPException):
            if condition():
                return
        if component != "etcd" and not alive(component):
            raise ClusterError(
                f"{component} exited while waiting for {what}\n{log_tail(component)}"
            )
        time.sleep(POLL_SECONDS)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{log_tail(component)}")


# --- certificates -----------------------------------------------------------------------


def make_pki() -> None:
    """A CA, one serving certificate for 127.0.0.1, client certificates, SA keys."""
    PKI.mkdir(parents=True, exist_ok=True)
    ca = pki.Authority.create("opstrace-test-ca", days=CERTIFICATE_DAYS)
    ca.write(PKI / "ca.crt", PKI / "ca.key")

    def write(file_name: str, issued: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
        certificate, key = issued
        (PKI / f"{file_name}.crt").write_bytes(pki.certificate_pem(certificate))
        pki.write_private_key(key, PKI / f"{file_name}.key")

    serving = ca.issue(
        pki.name("127.0.0.1"),
        days=CERTIFICATE_DAYS,
        # 127.0.0.1, and the kubernetes Service's address and names.
        ip_addresses=["127.0.0.1", str(ipaddress.ip_network(SERVICE_CIDR)[1])],
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    write("serving", serving)
    # system:masters: the admin (tests, lb-controller) and the control-plane components.
    for user in ("admin", "kube-controller-manager", "kube-scheduler", "kwok"):
        subject = pki.name(user, "system:masters")
        write(user, ca.issue(subject, days=CERTIFICATE_DAYS, usage=pki.CLIENT_AUTH))
    sa_key = pki.new_key()
    pki.write_private_key(sa_key, PKI / "sa.key")
    (PKI / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def kubeconfig(user: str, apiserver_port: int, *, embed: bool) -> dict[str, Any]:
    """A kubeconfig for `user` (its client certificate); `embed` inlines the files."""

    def ref(kind: str, path: Path) -> dict[str, str]:
        if embed:
            return {f"{kind}-data": base64.b64encode(path.read_bytes()).decode()}
        return {kind: str(path)}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "opstrace-test",
                "cluster": {
                    "server": f"https://127.0.0.1:{apiserver_port}",
                    **ref("certificate-authority", PKI / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    **ref("client-certificate", PKI / f"{user}.crt"),
                    **ref("client-key", PKI / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "opstrace-test", "context": {"cluster": "opstrace-test", "user": user}}
        ],
        "current-context": "opstrace-test",
    }


# --- the API ----------------------------------------------------------------------------


class Api:
    """A minimal client of the test cluster's API server, as a given user (client cert)."""

    def __init__(self, port: int, user: str = "admin") -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
        self.context.load_cert_chain(str(PKI / f"{user}.crt"), str(PKI / f"{user}.key"))

    @classmethod
    def from_state(cls) -> Api:
        return cls(read_ports().apiserver)

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=15)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": content_type, "Accept": "application/json"}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        """The object at `path`, or None if it does not exist (404)."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ClusterError(f"GET {path}: HTTP {status}: {data}")
        return data


def _probe(port: int, path: str) -> bool:
    """An HTTPS GET on 127.0.0.1:port verified against the test CA, as admin: 200 and ok?"""
    status, data = Api(port).request("GET", path)
    return status == 200 and str(data).strip() == "ok"


# --- processes --------------------------------------------------------------------------


def pid_of(component: str) -> int | None:
    path = PIDS / f"{component}.pid"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(component: str) -> bool:
    """Is the recorded process running, and is it ours (its command names our state dir)?"""
    pid = pid_of(component)
    if pid is None:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and str(STATE) in cmdline


def start(component: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Start a detached process (own session), output to its log, pid to its pid file."""
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{component}.log"
    pid = os.posix_spawn(
        argv[0],
        list(argv),
        dict(env if env is not None else os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    (PIDS / f"{component}.pid").write_text(f"{pid}\n")
    # Until the child has exec'd, its command line is still this Python's: `alive` would
    # take it for someone else's process. Wait (briefly) for the exec.
    deadline = time.monotonic() + 10.0
    while not alive(component) and time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break  # it exited: the caller's wait reports it with the log
        except ChildProcessError:
            break
        time.sleep(0.01)
    return pid


def stop(component: str) -> None:
    """SIGTERM, a bounded wait, then SIGKILL; only a process that `alive` says is ours."""
    pid = pid_of(component)
    if pid is not None and alive(component):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(component) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(component):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
            while alive(component) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(component):
                raise ClusterError(f"{component} (pid {pid}) did not stop")
    (PIDS / f"{component}.pid").unlink(missing_ok=True)


# --- the cluster ------------------------------------------------------------------------


def read_ports() -> Ports:
    try:
        return Ports(**json.loads((STATE / "state.json").read_text())["ports"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"no cluster state in {STATE} (run `make cluster-up`)") from error


def binary(name: str) -> str:
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise ClusterError(f"{path} is missing: run `make engine` first")
    return str(path)


def node_ready(api: Api, name: str) -> bool:
    node = api.get(f"/api/v1/nodes/{name}")
    conditions = (node or {}).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def healthy() -> bool:
    """Are all components running and the API server ready with every node Ready?"""
    try:
        ports = read_ports()
        api = Api(ports.apiserver)
        return (
            all(alive(c) for c in COMPONENTS)
            and _probe(ports.apiserver, "/readyz")
            and all(node_ready(api, name) for name, _ in NODES)
        )
    except (OSError, ClusterError, http.client.HTTPException, ssl.SSLError):
        return False


def fake_node(name: str, zone: str) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "local",
            },
        },
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    }


def up(log: Callable[[str], None] = print) -> Ports:
    """Start the cluster, or leave a healthy one as it is; returns its ports."""
    if healthy():
        log(f"cluster: already up and healthy (kubeconfig {KUBECONFIG})")
        return read_ports()
    if STATE.exists():
        log("cluster: state found but not healthy: stopping it and starting afresh")
        down(log=lambda _: None)
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        binary(name)
    started = time.monotonic()
    STATE.mkdir(parents=True)
    make_pki()
    ports = Ports(*(free_port() for _ in range(6)))
    (STATE / "state.json").write_text(json.dumps({"ports": asdict(ports)}, indent=2) + "\n")
    for user in ("kube-controller-manager", "kube-scheduler", "kwok"):
        (STATE / f"{user}.kubeconfig").write_text(
            yaml.safe_dump(kubeconfig(user, ports.apiserver, embed=False))
        )
    KUBECONFIG.write_text(yaml.safe_dump(kubeconfig("admin", ports.apiserver, embed=True)))
    KUBECONFIG.chmod(0o600)

    etcd_url = f"http://127.0.0.1:{ports.etcd}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    start(
        "etcd",
        [
            binary("etcd"),
            "--name=opstrace-test",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=opstrace-test={peer_url}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ],
    )

    def etcd_healthy() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", ports.etcd, timeout=5)
        try:
            conn.request("GET", "/health")
            health: Any = json.loads(conn.getresponse().read())
            return bool(health.get("health") == "true")
        finally:
            conn.close()

    wait_for(etcd_healthy, f"etcd to be healthy on {etcd_url}", "etcd", timeout=60)

    pki = {name: str(PKI / name) for name in ("ca.crt", "serving.crt", "serving.key")}
    serving = [
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={pki['serving.crt']}",
        f"--tls-private-key-file={pki['serving.key']}",
    ]
    start(
        "kube-apiserver",
        [
            binary("kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--secure-port={ports.apiserver}",
            "--advertise-address=127.0.0.1",
            *serving,
            f"--client-ca-file={pki['ca.crt']}",
            "--anonymous-auth=false",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The "kubernetes" Service cannot have a loopback endpoint: keep none.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={STATE / 'apiserver-certs'}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ],
    )
    wait_for(
        lambda: _probe(ports.apiserver, "/readyz"),
        f"kube-apiserver to be ready on https://127.0.0.1:{ports.apiserver}",
        "kube-apiserver",
    )

    def component_flags(user: str, port: int) -> list[str]:
        config = str(STATE / f"{user}.kubeconfig")
        return [
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            f"--secure-port={port}",
            *serving,
            "--leader-elect=false",
        ]

    start(
        "kube-controller-manager",
        [
            binary("kube-controller-manager"),
            *component_flags("kube-controller-manager", ports.controller_manager),
            f"--root-ca-file={pki['ca.crt']}",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            "--use-service-account-credentials=false",
            "--cluster-name=opstrace-test",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )
    start(
        "kube-scheduler",
        [
            binary("kube-scheduler"),
            *component_flags("kube-scheduler", ports.scheduler),
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )
    # kwok reads ~/.kwok/kwok.yaml if present: give it an empty home so that its built-in
    # stages (nodes Ready, pods Running and Ready at once) apply.
    kwok_home = STATE / "kwok-home"
    kwok_home.mkdir()
    start(
        "kwok",
        [
            binary("kwok"),
            f"--kubeconfig={STATE / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--node-port={ports.kwok}",
            f"--server-address=127.0.0.1:{ports.kwok}",
            "--node-lease-duration-seconds=40",
        ],
        env={**os.environ, "HOME": str(kwok_home)},
    )
    start(
        "lb-controller",
        [sys.executable, "-m", "tools.cluster", "lb-controller", f"--state={STATE}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    api = Api(ports.apiserver)
    wait_for(
        lambda: _probe(ports.controller_manager, "/healthz"),
        f"kube-controller-manager to be healthy on 127.0.0.1:{ports.controller_manager}",
        "kube-controller-manager",
    )
    wait_for(
        lambda: _probe(ports.scheduler, "/healthz"),
        f"kube-scheduler to be healthy on 127.0.0.1:{ports.scheduler}",
        "kube-scheduler",
    )
    for name, zone in NODES:
        status, data = api.request("POST", "/api/v1/nodes", fake_node(name, zone))
        if status not in (201, 409):
            raise ClusterError(f"creating node {name}: HTTP {status}: {data}")
    for name, _ in NODES:
        wait_for(partial(node_ready, api, name), f"kwok to make node {name} Ready", "kwok")
    wait_for(
        lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
        "kube-controller-manager to create the default service account",
        "kube-controller-manager",
    )
    install_cert_manager_stand_in(api)
    if not alive("lb-controller"):
        raise ClusterError(f"lb-controller is not running\n{log_tail('lb-controller')}")
    log(
        f"cluster: up in {time.monotonic() - started:.1f}s: API server "
        f"https://127.0.0.1:{ports.apiserver}, {len(NODES)} kwok nodes, kubeconfig {KUBECONFIG}"
    )
    return ports


def down(log: Callable[[str], None] = print) -> None:
    """Stop every component (ours only, by pid) and delete the state and kubeconfig."""
    for component in reversed(COMPONENTS):
        stop(component)
    if STATE.exists():
        shutil.rmtree(STATE)
    KUBECONFIG.unlink(missing_ok=True)
    log("cluster: down")


def status(log: Callable[[str], None] = print) -> bool:
    """Print each component's state; True if the cluster is healthy."""
    if not STATE.exists():
        log("cluster: not started (make cluster-up)")
        return False
    for component in COMPONENTS:
        state = "running" if alive(component) else "NOT RUNNING"
        log(f"  {component:24} pid {pid_of(component)!s:8} {state}")
    ok = healthy()
    log(f"cluster: {'healthy' if ok else 'NOT healthy'} (kubeconfig {KUBECONFIG}, logs {LOGS})")
    return ok


# --- the load balancer stand-in ---------------------------------------------------------


def lb_hostname(name: str, namespace: str) -> str:
    return f"{name}-{namespace}.{LB_DOMAIN}"


def assign_load_balancers(api: Api) -> list[str]:
    """Give each LoadBalancer Service without an address its hostname; returns them."""
    assigned = []
    services = api.get("/api/v1/services") or {}
    for service in services.get("items", []):
        if service.get("spec", {}).get("type") != "LoadBalancer":
            continue
        if service.get("status", {}).get("loadBalancer", {}).get("ingress"):
            continue
        meta = service["metadata"]
        hostname = lb_hostname(meta["name"], meta["namespace"])
        patch = {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}
        path = f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}/status"
        code, data = api.request("PATCH", path, patch, "application/merge-patch+json")
        if code == 200:
            assigned.append(f"{meta['namespace']}/{meta['name']} -> {hostname}")
        elif code != 404:
            print(f"lb-controller: PATCH {path}: HTTP {code}: {data}", flush=True)
    return assigned


# --- the cert-manager stand-in ---------------------------------------------------------

TEST_ISSUER: Final = "test-issuer"
CERT_MANAGER_GROUP: Final = "cert-manager.io"


def _crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{CERT_MANAGER_GROUP}"},
        "spec": {
            "group": CERT_MANAGER_GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def install_cert_manager_stand_in(api: Api) -> None:
    """cert-manager's two CRDs (no schema) and the ClusterIssuer the tests name."""
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in (
        _crd("Certificate", "certificates", "Namespaced"),
        _crd("ClusterIssuer", "clusterissuers", "Cluster"),
    ):
        status, data = api.request("POST", crds, crd)
        if status not in (201, 409):
            raise ClusterError(f"creating CRD {crd['metadata']['name']}: HTTP {status}: {data}")
        wait_for(
            partial(_crd_established, api, crd["metadata"]["name"]),
            f"CRD {crd['metadata']['name']} to be established",
            "kube-apiserver",
        )
    issuers = f"/apis/{CERT_MANAGER_GROUP}/v1/clusterissuers"
    issuer = {
        "apiVersion": f"{CERT_MANAGER_GROUP}/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": TEST_ISSUER},
        "spec": {"ca": {"secretName": "test-ca"}},
    }
    status, data = api.request("POST", issuers, issuer)
    if status not in (201, 409):
        raise ClusterError(f"creating ClusterIssuer {TEST_ISSUER}: HTTP {status}: {data}")


def _crd_established(api: Api, name: str) -> bool:
    crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def issue_certificates(api: Api) -> list[str]:
    """Issue every Certificate not yet Ready from the test CA; returns what it issued."""
    issued = []
    certificates = api.get(f"/apis/{CERT_MANAGER_GROUP}/v1/certificates") or {}
    for certificate in certificates.get("items", []):
        conditions = (certificate.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            continue
        meta, spec = certificate["metadata"], certificate.get("spec", {})
        crt, key = _test_ca_certificate(spec.get("dnsNames", []))
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": spec["secretName"], "namespace": meta["namespace"]},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(crt).decode(),
                "tls.key": base64.b64encode(key).decode(),
            },
        }
        secrets = f"/api/v1/namespaces/{meta['namespace']}/secrets"
        status, data = api.request("POST", secrets, secret)
        if status == 409:
            status, data = api.request("PUT", f"{secrets}/{spec['secretName']}", secret)
        if status not in (200, 201):
            print(f"lb-controller: secret {spec['secretName']}: HTTP {status}: {data}", flush=True)
            continue
        ready = {
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}]}
        }
        namespaced = f"/apis/{CERT_MANAGER_GROUP}/v1/namespaces/{meta['namespace']}"
        path = f"{namespaced}/certificates/{meta['name']}/status"
        status, data = api.request("PATCH", path, ready, "application/merge-patch+json")
        if status == 200:
            issued.append(f"certificate {meta['namespace']}/{meta['name']} issued")
    return issued


def _test_ca_certificate(dns_names: Sequence[str]) -> tuple[bytes, bytes]:
    """A certificate for `dns_names` signed by the test cluster's CA: (PEM, key PEM)."""
    ca = pki.Authority.load(PKI / "ca.crt", PKI / "ca.key")
    subject = pki.name(dns_names[0] if dns_names else "unnamed")
    certificate, key = ca.issue(subject, days=CERTIFICATE_DAYS, dns_names=dns_names)
    return pki.certificate_pem(certificate), pki.private_pem(key)


def run_lb_controller() -> None:
    """Forever: poll Services and Certificates, address and issue them (stopped by `down`)."""
    print(
        "lb-controller: assigning <name>-<namespace>.lb.local to LoadBalancer Services, "
        "issuing Certificates from the test CA",
        flush=True,
    )
    api: Api | None = None
    while True:
        try:
            api = api or Api.from_state()
            for line in [*assign_load_balancers(api), *issue_certificates(api)]:
                print(f"lb-controller: {line}", flush=True)
        except (OSError, ClusterError, http.client.HTTPException) as error:
            print(f"lb-controller: {error}", flush=True)
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.cluster", description="The local test cluster."
    )
    parser.add_argument("command", choices=["up", "down", "status", "lb-controller"])
    parser.add_argument("--state", help=argparse.SUPPRESS)  # marks lb-controller as ours
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return 0 if status() else 1
        else:
            run_lb_controller()
    except ClusterError as error:
        print(f"cluster: error: {error}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def running() -> Iterator[tuple[Ports, bool]]:
    """The cluster for a test session: (ports, started here); stops it if started here."""
    if healthy():
        yield read_ports(), False
        return
    ports = up()
    try:
        yield ports, True
    finally:
        down()


if __name__ == "__main__":
    sys.exit(main())
