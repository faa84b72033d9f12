"""A local Kubernetes cluster for the engine tests, all on 127.0.0.1.

    python -m tools.cluster up       # start it (or say that it is already up)
    python -m tools.cluster status   # each process: pid, health
    python -m tools.cluster down     # stop it and delete its state

kwokctl starts the binaries that `make engine` built into `.engine/bin`: etcd,
kube-apiserver with real authentication (client certificates from a CA generated at
start, anonymous requests refused, RBAC), kube-controller-manager, kube-scheduler, and
kwok, which fakes the nodes (`topology.kubernetes.io/zone` labelled) and makes their pods
Running and Ready.
One more process, `lb-controller`, runs stand-ins for two controllers a real cluster runs:
the cloud's load balancer controller (every `type: LoadBalancer` Service gets
`<name>-<namespace>.lb.local` as its address, so that pulumi-kubernetes' await completes)
and cert-manager (its CRDs, a ClusterIssuer `test-issuer`, every Certificate issued from
the test CA into its Secret and marked Ready); and for the kubelet where it matters: the
gateway's pods run for real, as local processes (`gateway_pods`). Clients use
`sidecar.kube_client`.

One module per job:
- `state`: where the files are (`.engine/cluster/`, the admin kubeconfig
  `.engine/kubeconfig`), the ports (`tools.ports`: free, and reserved at start);
- `control_plane`: kwokctl's configuration (each component's flags, the nodes' template)
  and its commands; what kwokctl leaves to its caller (ports, health, the CA);
- `supervisor`: our own local processes: start, stop, alive, pid, logs, bounded waits;
- `credentials`: the CA and certificates kwokctl is given, kubeconfigs, clients;
- `load_balancer`, `cert_manager`: the two stand-ins; `gateway_pods`: the gateway pods'
  containers as local processes; `stand_ins`: their process, a watching controller each;
- `lifecycle`: up, down, status, and `running` for a test session; `__main__`: the CLI.
"""

from __future__ import annotations

from tools.cluster.cert_manager import TEST_ISSUER
from tools.cluster.credentials import admin_api
from tools.cluster.lifecycle import down, healthy, running, status, up
from tools.cluster.load_balancer import lb_hostname
from tools.cluster.state import KUBECONFIG, ClusterError, Ports, read_ports

__all__ = [
    "KUBECONFIG",
    "TEST_ISSUER",
    "ClusterError",
    "Ports",
    "admin_api",
    "down",
    "healthy",
    "lb_hostname",
    "read_ports",
    "running",
    "status",
    "up",
]
