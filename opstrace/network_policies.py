"""The NetworkPolicies that make the gateway the only way to a tenant's data.

Pure, no Pulumi: `instance_policies` renders every NetworkPolicy of an instance from
where things run (`Layout`); `components.isolation` registers them. Mimir and Loki
believe whatever `X-Scope-OrgID` a request carries, so a pod that can reach them can
read and write any tenant's data: their namespaces accept only the gateway pods (on the
HTTP port the gateway forwards to) and their own pods (which talk to each other); where
the instance runs both, Mimir's Alertmanager also accepts Loki's pods (Loki's ruler sends
its tenants' alerts there, `X-Scope-OrgID` and all), on that port and nothing else. Every
tenant namespace (but its Grafana, below) and the collector's namespace accept nothing;
the gateway's namespace
accepts only the gateway's listeners, from anywhere (the NLB sends to pod IPs from its
own addresses, which no selector names).

What no policy needs to allow: the kubelet's probes. Every enforcer this program
recognizes lets a pod's own node reach it (Kubernetes documents that a pod cannot block
its node; the AWS network policy agent allows the node's IP since VPC CNI 1.15.1,
aws/aws-network-policy-agent#65; Calico and Cilium allow the local host by default).
The NLB's health checks come from its own addresses, hence the gateway's health port
among its listeners; the sync sidecar's status port is opened to the collector's
namespace alone (it scrapes the usage counters there), the kubelet's probes need
nothing. Egress is not restricted (but the Grafana pods', below): the sidecar reaches the
API server (its Service's ClusterIP, DNAT'd to the control plane's addresses, which no
selector names).

Each tenant's Grafana (`opstrace.grafana`, in its tenant's namespace, the system
tenant's too) is the one exception, both ways. It accepts the gateway's pods on its
container port (the gateway forwards `grafana.<tenant>...` to it) and nothing else; it
reaches DNS, the gateway's internal listener (where its data sources' hosts resolve,
`hostAliases`) and HTTPS on public addresses (the identity provider's token and userinfo
endpoints), nothing else: not Mimir or Loki, not another tenant, not the Kubernetes API's
ClusterIP, not the cloud's metadata address. The gateway's internal listener accepts only
those pods. The policies go into the namespaces of the tenants with a Grafana and pick
its pods by the chart's labels: a pod there that wears the labels gains a door that
still asks for a token, and loses its egress. No
namespace restricts egress otherwise, so the egress policy, selecting the Grafana pods
alone, isolates exactly them. What "public addresses" leaves open: whatever has one on
443, the cluster's public API endpoint among them (Grafana holds no credential for it:
no service account token is mounted). The Grafana pods reach the gateway and DNS through
their Services' ClusterIPs: the AWS network policy agent, which sees the packet before the
DNAT, allows a ClusterIP only for a Service whose selector the rule's pod selector matches
(`gateway_manifests.internal_service`, CoreDNS's `kube-dns`).

Every port and label named here comes from its owner: the gateway's from its settings
(through the manifests' container ports), the backends' from `charts`, Grafana's from
`opstrace.grafana` and its chart's labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opstrace import chart_values, charts, grafana
from opstrace.config.platform import PRIVATE_NETWORKS
from opstrace.config.sizes import Size
from opstrace.gateway import manifests as gateway_manifests
from opstrace.gateway.manifests import HEALTH_PORT, INTERNAL_PORT, PLAIN_PORT, TLS_PORT
from sidecar import contract

Manifest = dict[str, Any]

GATEWAY_PORTS: Final = (TLS_PORT, PLAIN_PORT, HEALTH_PORT)
"""What the gateway pods accept from anywhere: the data API (TLS), the plain-HTTP refusal
and the health endpoint the NLB checks. Not the sidecar's status port
(`contract.STATUS_PORT`): the collector scrapes it (`USAGE_SCRAPE`), the kubelet probes
it, and no other pod and no tenant reaches it."""
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace (Kubernetes 1.21 and later): a namespace
selector on it names exactly one namespace."""
TENANT_LABEL: Final = "opstrace.io/tenant"
INSTANCE_LABEL: Final = "opstrace.io/instance"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
"""What `components.tenant` labels every tenant's namespace with (the tenant, the
instance, `opstrace`); the internal listener's policy names them, beside their names."""
GRAFANA_PODS: Final = {
    "app.kubernetes.io/name": "grafana",
    "app.kubernetes.io/instance": grafana.RELEASE,
}
"""The Grafana chart's labels on its pods (its `grafana.selectorLabels`), for the release
in a tenant's namespace."""
DNS_PODS: Final = {"k8s-app": "kube-dns"}
"""CoreDNS's pods in `kube-system` (EKS's add-on and kubeadm's keep kube-dns's label)."""
DNS_NAMESPACE: Final = "kube-system"
DNS_PORT: Final = 53
HTTPS_PORT: Final = 443
NOT_PUBLIC: Final = (
    *(str(block) for block in PRIVATE_NETWORKS),
    "100.64.0.0/10",
    "169.254.0.0/16",
)
"""What the identity provider's addresses are not: RFC 1918's space (the VPC, its pods,
nodes, Services and the Kubernetes API's ClusterIP and private endpoint), the shared
address space (EKS's custom networking gives pods addresses there) and link-local (the
cloud's metadata address, 169.254.169.254)."""
EVERY_IPV4: Final = "0.0.0.0/0"
POLICY_LABELS: Final = {
    "app.kubernetes.io/part-of": "opstrace",
    "app.kubernetes.io/managed-by": "pulumi",
}

DENY_INGRESS: Final = "opstrace-deny-ingress"
WITHIN_NAMESPACE: Final = "opstrace-within-namespace"
FROM_GATEWAY: Final = "opstrace-from-gateway"
GATEWAY_LISTENERS: Final = "opstrace-gateway-listeners"
WEBHOOKS: Final = "opstrace-webhooks"
ALERTS_FROM_RULER: Final = "opstrace-alerts-from-ruler"
USAGE_SCRAPE: Final = "opstrace-usage-scrape"
INTERNAL_LISTENER: Final = "opstrace-internal-listener"
GRAFANA_FROM_GATEWAY: Final = "opstrace-grafana-from-gateway"
GRAFANA_EGRESS: Final = "opstrace-grafana-egress"


@dataclass(frozen=True)
class Webhook:
    """An admission webhook server: the API server calls it from the control plane's
    addresses, which no selector names."""

    pods: Mapping[str, str]
    port: int


@dataclass(frozen=True)
class Alerts:
    """A backend's Alertmanager, which another backend's ruler sends alerts to."""

    pods: Mapping[str, str]
    from_namespace: str
    """The ruler's namespace (its pods are picked by the chart's mode: any of them)."""


@dataclass(frozen=True)
class Backend:
    """A backend's namespace: where its pods run and the port the gateway sends to."""

    namespace: str
    port: int
    webhook: Webhook | None = None
    """An admission webhook served in the namespace (Mimir's rollout operator)."""
    alerts: Alerts | None = None
    """Its Alertmanager, when another backend's ruler sends to it (Loki's, to Mimir's)."""


@dataclass(frozen=True)
class Layout:
    """Where an instance's pods run: what its NetworkPolicies are rendered from."""

    instance: str
    gateway_namespace: str
    tenant_namespaces: tuple[str, ...]
    """Every tenant's namespace but the gateway's (the system tenant's)."""
    backends: tuple[Backend, ...]
    """The instance's own Mimir and Loki (none for external backends)."""
    telemetry_namespace: str | None
    """The collector's namespace, or None without telemetry."""
    grafana_namespaces: tuple[str, ...] = ()
    """The namespaces of the tenants with a Grafana (the system tenant's among them when
    it has one); (): no Grafana, no door for one."""

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace a policy goes into, the gateway's first."""
        return (
            self.gateway_namespace,
            *self.tenant_namespaces,
            *(backend.namespace for backend in self.backends),
            *((self.telemetry_namespace,) if self.telemetry_namespace else ()),
        )


def own_backends(size: Size, *, metrics: bool, logs: bool) -> tuple[Backend, ...]:
    """The backends the instance installs (`metrics`: Mimir, `logs`: Loki)."""
    rollout_operator = Webhook(
        charts.MIMIR_ROLLOUT_OPERATOR_LABELS, charts.MIMIR_ROLLOUT_OPERATOR_WEBHOOK_PORT
    )
    mimir = Backend(
        charts.MIMIR.namespace,
        charts.MIMIR_HTTP_PORT,
        rollout_operator if chart_values.runs_rollout_operator(size) else None,
        alerts=Alerts(charts.MIMIR_ALERTMANAGER_LABELS, charts.LOKI.namespace) if logs else None,
    )
    loki = Backend(charts.LOKI.namespace, charts.LOKI_HTTP_PORT)
    return (*((mimir,) if metrics else ()), *((loki,) if logs else ()))


def instance_policies(layout: Layout) -> list[Manifest]:
    """Every NetworkPolicy of the instance, namespace by namespace (see the module doc)."""
    gateway_pods = gateway_manifests.labels(layout.instance)
    policies = [
        _deny_ingress(layout.gateway_namespace),
        _policy(
            GATEWAY_LISTENERS,
            layout.gateway_namespace,
            gateway_pods,
            [{"ports": _tcp(GATEWAY_PORTS)}],
        ),
    ]
    if layout.telemetry_namespace:
        collector = {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: layout.telemetry_namespace}}
        }
        policies.append(
            _policy(
                USAGE_SCRAPE,
                layout.gateway_namespace,
                gateway_pods,
                [{"from": [collector], "ports": _tcp((contract.STATUS_PORT,))}],
            )
        )
    policies += [_deny_ingress(namespace) for namespace in layout.tenant_namespaces]
    from_gateway = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: layout.gateway_namespace}},
        "podSelector": {"matchLabels": gateway_pods},
    }
    policies += _grafana_policies(layout, from_gateway)
    for backend in layout.backends:
        namespace = backend.namespace
        policies += [
            _deny_ingress(namespace),
            _policy(WITHIN_NAMESPACE, namespace, {}, [{"from": [{"podSelector": {}}]}]),
            _policy(
                FROM_GATEWAY,
                namespace,
                {},
                [{"from": [from_gateway], "ports": _tcp((backend.port,))}],
            ),
        ]
        if (webhook := backend.webhook) is not None:
            policies.append(
                _policy(WEBHOOKS, namespace, webhook.pods, [{"ports": _tcp((webhook.port,))}])
            )
        if (alerts := backend.alerts) is not None:
            ruler = {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: alerts.from_namespace}}
            }
            policies.append(
                _policy(
                    ALERTS_FROM_RULER,
                    namespace,
                    alerts.pods,
                    [{"from": [ruler], "ports": _tcp((backend.port,))}],
                )
            )
    if layout.telemetry_namespace:
        policies.append(_deny_ingress(layout.telemetry_namespace))
    return policies


def _grafana_policies(layout: Layout, from_gateway: Manifest) -> list[Manifest]:
    """The tenants' Grafana pods and the gateway's internal listener (see the module doc).

    The listener's peers are named by namespace name (a label the API server sets and
    nobody else can) as well as by the tenant labels: a namespace someone labels as a
    tenant's gains nothing."""
    if not layout.grafana_namespaces:
        return []
    tenants_grafana = {
        "namespaceSelector": {
            "matchLabels": {PART_OF_LABEL: "opstrace", INSTANCE_LABEL: layout.instance},
            "matchExpressions": [
                {"key": TENANT_LABEL, "operator": "Exists"},
                {
                    "key": NAMESPACE_NAME_LABEL,
                    "operator": "In",
                    "values": sorted(layout.grafana_namespaces),
                },
            ],
        },
        "podSelector": {"matchLabels": dict(GRAFANA_PODS)},
    }
    policies = [
        _policy(
            INTERNAL_LISTENER,
            layout.gateway_namespace,
            gateway_manifests.labels(layout.instance),
            [{"from": [tenants_grafana], "ports": _tcp((INTERNAL_PORT,))}],
        )
    ]
    dns = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: DNS_NAMESPACE}},
        "podSelector": {"matchLabels": dict(DNS_PODS)},
    }
    public = {"ipBlock": {"cidr": EVERY_IPV4, "except": list(NOT_PUBLIC)}}
    egress: list[Manifest] = [
        {
            "to": [dns],
            "ports": [
                {"protocol": "UDP", "port": DNS_PORT},
                {"protocol": "TCP", "port": DNS_PORT},
            ],
        },
        {"to": [from_gateway], "ports": _tcp((INTERNAL_PORT,))},
        {"to": [public], "ports": _tcp((HTTPS_PORT,))},
    ]
    for namespace in layout.grafana_namespaces:
        policies += [
            _policy(
                GRAFANA_FROM_GATEWAY,
                namespace,
                GRAFANA_PODS,
                [{"from": [from_gateway], "ports": _tcp((grafana.CONTAINER_PORT,))}],
            ),
            _policy(GRAFANA_EGRESS, namespace, GRAFANA_PODS, egress=egress),
        ]
    return policies


def _deny_ingress(namespace: str) -> Manifest:
    """No pod of the namespace accepts anything that another policy does not allow."""
    return _policy(DENY_INGRESS, namespace, {}, [])


def _policy(
    name: str,
    namespace: str,
    pods: Mapping[str, str],
    ingress: Sequence[Manifest] = (),
    *,
    egress: Sequence[Manifest] | None = None,
) -> Manifest:
    """An ingress policy (`ingress`: what it allows, (): nothing), or with `egress` an
    egress policy (only what `egress` allows)."""
    spec: Manifest = {
        "podSelector": {"matchLabels": dict(pods)} if pods else {},
        "policyTypes": ["Ingress"] if egress is None else ["Egress"],
    }
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = [dict(rule) for rule in egress]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(POLICY_LABELS)},
        "spec": spec,
    }


def _tcp(ports: Sequence[int]) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]
