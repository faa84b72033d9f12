"""The Helm charts the instance installs: exact versions, where each was seen, namespaces,
release names, service accounts and ports. Their values are `chart_values`.

Pure, no Pulumi. Versions are exact
(never ranges), and each is a release seen in the chart's own sources: `Source` says
where (repository, tag or commit, date), and a test holds every pin to its source.
`make charts` (devtools/chart_check.py) pulls each pinned chart and renders it with these values.
Bump a version here, in one place, after reading the chart's upgrade notes, and record
where you read it.

Grafana Mimir is the metrics backend: maintained by Grafana with Cortex's APIs
(`/api/v1/push`, the Prometheus query API under `/prometheus/api/v1`), tenants from
`X-Scope-OrgID`, and a chart that ships capacity-planned sizes. Cortex's chart depends
on third-party memcached images, and its project is smaller. Mimir runs in its classic
architecture (distributors push to ingesters over gRPC, no Kafka; see
`chart_values.mimir_values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opstrace import names


@dataclass(frozen=True)
class Source:
    """Where a pinned chart version was seen in the chart's own sources."""

    repository: str
    """The GitHub repository (owner/name) holding the chart's source or release."""
    ref: str
    """The release tag, or the commit where the chart's version was bumped."""
    commit: str
    date: str
    """The commit's date (UTC day)."""
    chart_file: str
    """The chart's `Chart.yaml` (or release index) in that repository."""
    version: str
    """The version written there (the release tool's, for cert-manager: its tag)."""


@dataclass(frozen=True)
class Chart:
    """A pinned chart and where its release lives."""

    name: str
    version: str
    repository: str
    namespace: str
    """Where its one release is installed; `PER_TENANT` for a chart installed once in
    every tenant's namespace (`names.tenant_namespace`), see `per_tenant`."""
    release: str
    source: Source

    @property
    def per_tenant(self) -> bool:
        """Installed once in each tenant's namespace, not once for the instance: its
        releases are found by chart name and namespace, never by `namespace`."""
        return self.namespace == PER_TENANT


PER_TENANT: Final = names.tenant_namespace("<tenant>")
"""The `namespace` of a chart installed in every tenant's namespace: not a valid
namespace name (Kubernetes refuses it), so that a release given it by mistake fails
instead of landing in a namespace of its own."""


GRAFANA_CHARTS: Final = "https://grafana.github.io/helm-charts"
GRAFANA_COMMUNITY_CHARTS: Final = "https://grafana-community.github.io/helm-charts"
"""Where the open-source Loki and Grafana charts moved in 2026-03."""
MIMIR: Final = Chart(
    "mimir-distributed",
    "6.0.4",
    GRAFANA_CHARTS,
    "opstrace-metrics",
    "mimir",
    # The newest release whose sources could be had whole, so that `make charts` renders
    # exactly these templates: grafana/mimir merged its mimir-distributed-release-6.0 branch
    # into main (2025-12-01, PR #13723), and the fork Eifoen/mimir holds that history. The
    # release commit "Prepare mimir-distributed 6.0.4 release (#13702)", appVersion 3.0.1,
    # rollout-operator 0.37.1; grafana/helm-charts' index.yaml (gh-pages @ 970fce783fe0)
    # lists 6.0.4 with digest 5dadbd86786febd66dc476da9ffc92cb14e2370a004f375ac5ec376663713871.
    # 6.1.0 and 6.2.0 exist, but no copy of their sources was reachable.
    Source(
        "Eifoen/mimir",
        "8979e969fe918de64d0df7718e19f10f1af90a46",
        "8979e969fe918de64d0df7718e19f10f1af90a46",
        "2025-11-28",
        "operations/helm/charts/mimir-distributed/Chart.yaml",
        "6.0.4",
    ),
)
LOKI: Final = Chart(
    # The open-source chart moved to the community repository in 2026-03.
    "loki",
    "17.1.7",
    GRAFANA_COMMUNITY_CHARTS,
    "opstrace-logs",
    "loki",
    Source(
        "grafana-community/helm-charts",
        "loki-17.1.7",
        "abd906bdd2022dabecd868dce3b5205a5a19263e",
        "2026-06-05",
        "charts/loki/Chart.yaml",
        "17.1.7",
    ),
)
ALLOY: Final = Chart(
    "alloy",
    "1.11.1",
    GRAFANA_CHARTS,
    "opstrace-telemetry",
    "alloy",
    # 1.12.0 was bumped and reverted: 1.11.1 is the newest release.
    Source(
        "grafana/alloy",
        "helm-chart/1.11.1",
        "233907cff225ce253f812bdfc14138dac1fa0cd2",
        "2026-08-06",
        "operations/helm/charts/alloy/Chart.yaml",
        "1.11.1",
    ),
)
LOAD_BALANCER_CONTROLLER: Final = Chart(
    "aws-load-balancer-controller",
    "3.5.0",
    "https://aws.github.io/eks-charts",
    "kube-system",
    "aws-load-balancer-controller",
    # eks-charts tags no chart releases: the commit that bumped the chart to 3.5.0.
    Source(
        "aws/eks-charts",
        "5239609242f3430be50fb0b714a24d3ef2b47983",
        "5239609242f3430be50fb0b714a24d3ef2b47983",
        "2026-08-03",
        "stable/aws-load-balancer-controller/Chart.yaml",
        "3.5.0",
    ),
)
LOAD_BALANCER_CONTROLLER_VERSION: Final = "v3.5.0"
"""The controller the chart runs (its appVersion): the release whose IAM policy we follow."""
CERT_MANAGER: Final = Chart(
    "cert-manager",
    "v1.21.1",
    "https://charts.jetstack.io",
    "cert-manager",
    "cert-manager",
    # Chart.yaml says v0.0.0 in the source: the release tool sets the tag's version.
    Source(
        "cert-manager/cert-manager",
        "v1.21.1",
        "24e33194fb39488eff2bbf10c6dc640f407cad44",
        "2026-07-29",
        "deploy/charts/cert-manager/Chart.yaml",
        "v1.21.1",
    ),
)
GRAFANA: Final = Chart(
    # A tenant's own Grafana (`opstrace.grafana`), one release in each tenant's namespace,
    # from the community repository that also publishes Loki's chart. The tag
    # grafana-12.11.1 ("[grafana] Omit replicas on StatefulSet when autoscaling is
    # enabled (#746)"), appVersion 13.2.0, the newest grafana-* tag in
    # grafana-community/helm-charts as read there (history to 2026-08-20).
    "grafana",
    "12.11.1",
    GRAFANA_COMMUNITY_CHARTS,
    PER_TENANT,
    "grafana",
    Source(
        "grafana-community/helm-charts",
        "grafana-12.11.1",
        "864f7794683680e5100a38670e103c4fa6e37e29",
        "2026-08-19",
        "charts/grafana/Chart.yaml",
        "12.11.1",
    ),
)
ALL_CHARTS: Final = (MIMIR, LOKI, ALLOY, LOAD_BALANCER_CONTROLLER, CERT_MANAGER, GRAFANA)
INSTANCE_CHARTS: Final = tuple(c for c in ALL_CHARTS if not c.per_tenant)
"""The charts installed once for the instance, each in its own namespace."""
TENANT_CHARTS: Final = tuple(c for c in ALL_CHARTS if c.per_tenant)
"""The charts installed in every tenant's namespace that has them (a tenant with
`grafana: false` has no Grafana)."""

IRSA_ANNOTATION: Final = "eks.amazonaws.com/role-arn"
MIMIR_SERVICE_ACCOUNT: Final = "mimir"
LOKI_SERVICE_ACCOUNT: Final = "loki"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT: Final = "aws-load-balancer-controller"
CERT_MANAGER_SERVICE_ACCOUNT: Final = "cert-manager"
STORAGE_CLASS: Final = "gp3"
"""The encrypted gp3 class the program makes default in eks mode."""
RETAINED_STORAGE_CLASS: Final = "gp3-retained"
"""The same class with volumes that outlive their claims: the tenants' Grafanas' disks in
eks mode with `keepDataOnDestroy`, so that `destroy` leaves them."""

MIMIR_HTTP_PORT: Final = 8080
MIMIR_ROLLOUT_OPERATOR_WEBHOOK_PORT: Final = 8443
"""Where Mimir's rollout operator serves its admission webhooks (its `https` container
port, `-server-tls.enabled`, as mimir-distributed 6.x renders it). The chart registers
them with `failurePolicy: Fail` for StatefulSet changes and pod evictions in Mimir's
namespace, so the API server must reach this port, or those changes are refused."""
MIMIR_ROLLOUT_OPERATOR_LABELS: Final = {
    "app.kubernetes.io/name": "rollout-operator",
    "app.kubernetes.io/instance": MIMIR.release,
}
"""The rollout operator's pods, as its subchart's helpers label them (its name, the
release's)."""
MIMIR_ALERTMANAGER_LABELS: Final = {
    "app.kubernetes.io/name": "mimir",
    "app.kubernetes.io/instance": MIMIR.release,
    "app.kubernetes.io/component": "alertmanager",
}
"""Mimir's Alertmanager pods, as mimir-distributed's helpers label them (its selector
labels: the chart's name, the release's, the component's)."""
LOKI_HTTP_PORT: Final = 3100
PROMETHEUS_API_PREFIX: Final = "/prometheus"
"""Where Mimir and Cortex serve the Prometheus query API; push stays at `/api/v1/push`."""
