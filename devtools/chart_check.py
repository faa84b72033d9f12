"""The chart check: every chart the program installs, rendered with the program's values.

    make charts                                       # every chart, stack and preset
    python -m devtools.chart_check --chart loki --stack dev --sizing small --no-apply
    python -m devtools.chart_check --grafana-sample                 # one sample Grafana

For every shipped stack (`stacks/*.yaml`) and both sizing presets, the real program runs
under the offline mocks (`tools.offline`, as the plan does) and each Helm release it
registers is rendered with exactly its values: `helm template` at the pinned version,
the chart's values.schema.json enforced, for the stack's Kubernetes version. Every
rendered object is checked against that version's schema (kubernetes-validate), then
the wiring only a render shows (`devtools.chart_wiring`): the Services and ports the
gateway forwards to, the IRSA annotations against the roles' trust, multi-tenancy, the
bucket and region, the rulers' and the Alertmanager's storage and APIs, the runtime
configuration, the collector's endpoints and token, each tenant's Grafana's Service,
secrets, volume and data API hosts; and that a tenant policy change renders as a change
of the backends' runtime configuration alone (no pod restarts). A chart installed per
tenant (Grafana) is rendered once for each tenant the program gives one, and each tenant
whose settings give it one must have exactly one. `--grafana-sample` renders a sample
Grafana with every option on, without planning a stack.
Last, the rendered objects are applied to the local cluster (`make cluster-up`;
server-side, CRDs first) and removed again.

Where a chart comes from: `OPSTRACE_CHART_<NAME>` (the chart's name upper-cased, `-` as
`_`, e.g. OPSTRACE_CHART_MIMIR_DISTRIBUTED) naming a chart folder (with its `charts/`
dependencies) or a packaged `.tgz`; otherwise `helm pull` from the chart's repository,
cached in ~/.cache/opstrace-charts. Either way its Chart.yaml must name the pinned
version. Helm is the one `bash engine/build.sh helm` builds (`OPSTRACE_HELM` overrides).
Not part of CI: no chart repository is reachable there.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import Any, Final

import kubernetes_validate
import yaml
from pulumi.runtime import rpc

from components import telemetry as telemetry_component
from devtools import chart_wiring as wiring
from opstrace import alloy_config, chart_images, chart_values, charts, grafana, names
from opstrace.aws import eks_versions
from opstrace.config import sizes
from opstrace.config.parse import ConfigError
from opstrace.config.schema import InstanceConfig
from opstrace.config.stack import config_of_stack
from opstrace.grafana import GrafanaRelease, RoleGrant, SingleSignOn
from opstrace.policy import limits
from tools.cluster.state import BIN, KUBECONFIG
from tools.offline import ProgramFailed, ProgramRun, Registration, run_program
from tools.stack_files import PROJECT_DIR, cli_config, stack_config

HELM: Final = Path(os.environ.get("OPSTRACE_HELM", BIN / "helm"))
KUBECTL: Final = BIN / "kubectl"
PULLED: Final = Path(
    os.environ.get("OPSTRACE_CHART_CACHE", Path.home() / ".cache" / "opstrace-charts")
)
RELEASE_TYPE: Final = "kubernetes:helm.sh/v3:Release"
STAND_IN_DOMAIN: Final = "observability.acme.dev"
"""Rendered in place of a stack's placeholder domain (example.com), which the program refuses."""
STAND_IN_CLIENT_SECRET: Final = "stand-in-client-secret"
"""A single sign-on client secret where a stack leaves it to the operator (the example)."""
STAND_IN_API_CIDRS: Final = "203.0.113.0/24"
"""An eks stack's API networks where it sets none (a documentation network, RFC 5737)."""
FIELD_MANAGER: Final = "opstrace-chart-check"
SAMPLE_GATEWAY_ADDRESS: Final = "10.100.0.10"
"""The gateway's cluster IP in `SAMPLE_GRAFANA`."""


class CheckError(Exception):
    """A chart could not be had, rendered or applied; the message says which and why."""


@dataclass(frozen=True)
class Case:
    """One shipped stack at one sizing preset, as the program reads and plans it."""

    stack: str
    sizing: str
    config: InstanceConfig
    run: ProgramRun

    @property
    def label(self) -> str:
        return f"{self.stack}/{self.sizing}"

    @property
    def kubernetes_version(self) -> str:
        return self.config.platform.kubernetes_version

    @property
    def region(self) -> str:
        return self.config.platform.aws_region


@dataclass(frozen=True)
class Release:
    """A Helm release as the program registers it."""

    chart: charts.Chart
    name: str
    namespace: str
    values: dict[str, Any]

    @property
    def key(self) -> str:
        """How a case's renders are told apart: the chart's name, and for a chart
        installed per tenant, the tenant's namespace too."""
        if self.chart.per_tenant:
            return f"{self.chart.name} in {self.namespace}"
        return self.chart.name


@dataclass
class Render:
    """One release of one case, rendered."""

    case: Case
    release: Release
    objects: list[dict[str, Any]] = field(default_factory=list)
    custom: int = 0
    """Objects of kinds no Kubernetes schema describes (checked by the API server at apply)."""


def env_name(chart: charts.Chart) -> str:
    return "OPSTRACE_CHART_" + chart.name.upper().replace("-", "_")


def helm(*args: str) -> str:
    if not HELM.exists():
        raise CheckError(f"no helm at {HELM}: build it with `bash engine/build.sh helm`")
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckError(f"helm {' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout


def chart_source(chart: charts.Chart) -> Path:
    """The chart's folder or archive: the local copy named in the environment, or a pull."""
    given = os.environ.get(env_name(chart))
    if given:
        path = Path(given)
        if not path.exists():
            raise CheckError(f"{env_name(chart)}={given}: no such chart folder or archive")
    else:
        path = PULLED / f"{chart.name}-{chart.version}.tgz"
        if not path.exists():
            PULLED.mkdir(parents=True, exist_ok=True)
            try:
                helm(
                    "pull",
                    chart.name,
                    "--repo",
                    chart.repository,
                    "--version",
                    chart.version,
                    "--destination",
                    str(PULLED),
                )
            except CheckError as error:
                raise CheckError(
                    f"{chart.name} {chart.version}: not pulled from {chart.repository} ({error}); "
                    f"give a local copy with {env_name(chart)}=<chart folder or .tgz>"
                ) from None
    metadata = yaml.safe_load(helm("show", "chart", str(path)))
    if (metadata.get("name"), str(metadata.get("version"))) != (chart.name, chart.version):
        raise CheckError(
            f"{path}: is {metadata.get('name')} {metadata.get('version')}, not the pinned "
            f"{chart.name} {chart.version}"
        )
    return path


def cases(stacks: Sequence[str], sizings: Sequence[str]) -> Iterator[Case]:
    """Every stack at every preset, planned by the real program under the mocks."""
    for stack in stacks:
        for sizing in sizings:
            config = stack_config(stack)
            config["opstrace:sizing"] = sizing
            if names.reserved_domain_problem(str(config.get("opstrace:domain", ""))):
                config["opstrace:domain"] = STAND_IN_DOMAIN
            if config.get("opstrace:cluster", "eks") == "eks":
                # Production sizing requires them; the dev stack leaves them unset.
                config.setdefault("opstrace:apiAllowedCidrs", STAND_IN_API_CIDRS)
            if config.get("opstrace:grafanaSso"):
                # The production example leaves its client secret to the operator.
                config.setdefault("opstrace:grafanaClientSecret", STAND_IN_CLIENT_SECRET)
            run = run_program(config, stack=stack, tokens="stand-in")
            yield Case(stack, sizing, config_of_stack(cli_config(config), PROJECT_DIR), run)


def plain(value: Any) -> Any:
    """`value` as the engine hands it to a provider: secrets unwrapped, whole numbers int."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def releases(case: Case) -> list[Release]:
    """The case's Helm releases: chart, release name, namespace and values as registered."""
    by_name = {c.name: c for c in charts.ALL_CHARTS}
    found = []
    for r in case.run.resources:
        if r.type == RELEASE_TYPE:
            chart = by_name[r.inputs["chart"]]
            if r.inputs["version"] != chart.version:
                raise CheckError(f"{r.urn}: version {r.inputs['version']}, pinned {chart.version}")
            namespace = r.inputs["namespace"]
            if chart.per_tenant and namespace not in tenant_namespaces(case.config):
                raise CheckError(f"{r.urn}: {chart.name} in {namespace}, not a tenant's namespace")
            values = plain(r.inputs["values"])
            if not isinstance(values, dict):
                raise CheckError(f"{r.urn}: its values are not known in the plan ({values!r})")
            found.append(Release(chart, r.inputs["name"], namespace, values))
    return found


def tenant_namespaces(config: InstanceConfig) -> set[str]:
    return {names.tenant_namespace(t.name) for t in config.tenants}


def with_images(chart: charts.Chart, values: dict[str, Any], mirrors: dict[str, str]) -> Any:
    """`values` with the chart's images set, as `components.helm.helm_release` sets them."""
    return reduce(chart_values.merged, chart_images.image_values(chart.name, mirrors), values)


def grafana_coverage_problems(case: Case) -> list[str]:
    """Every tenant whose stack settings give it a Grafana has one release of the grafana
    chart in its namespace, and no other namespace has one."""
    wanted = {names.tenant_namespace(t.name) for t in case.config.tenants if t.grafana.enabled}
    found = [r.namespace for r in releases(case) if r.chart == charts.GRAFANA]
    problems = [
        f"grafana: the plan has no Grafana release in {namespace}, whose tenant has one"
        for namespace in sorted(wanted - set(found))
    ]
    problems += [
        f"grafana: the plan has a Grafana release in {namespace}, whose tenant has none"
        for namespace in sorted(set(found) - wanted)
    ]
    problems += [
        f"grafana: the plan has {found.count(namespace)} Grafana releases in {namespace}"
        for namespace in sorted(set(found))
        if found.count(namespace) > 1
    ]
    return problems


SAMPLE_GRAFANA: Final = GrafanaRelease(
    tenant="prod",
    root_url="https://grafana.prod.dev-acme.observability.acme.dev",
    datasources=grafana.datasources("prod", "dev-acme", "observability.acme.dev"),
    sso=SingleSignOn(
        "Acme SSO",
        "https://sso.acme.dev/oauth2/authorize",
        "https://sso.acme.dev/oauth2/token",
        "https://sso.acme.dev/oauth2/userinfo",
        "grafana-prod",
    ),
    roles=(RoleGrant("Admin", groups=("ops",)), RoleGrant("Viewer", email_domains=("acme.dev",))),
    storage_class=charts.STORAGE_CLASS,
    storage_gib=grafana.DEFAULT_STORAGE_GIB,
    gateway_address=SAMPLE_GATEWAY_ADDRESS,
    data_api_hosts=names.endpoint_hosts("prod", "dev-acme", "observability.acme.dev"),
    dashboard_files=("overview.json",),
    secret_version="sample",  # noqa: S106 (a version label, not a secret)
)
"""A Grafana with every option on (single sign-on, roles, dashboards, the gateway's
address): `--grafana-sample` renders it without planning a stack."""


def grafana_wiring(release: Release, instance: str, domain: str, sso: bool) -> wiring.GrafanaWiring:
    """What the render of a Grafana release must show: `opstrace.grafana`'s names, the
    tenant's data API hosts (its namespace's tenant's), resolving to the gateway address
    its values give (none: through DNS)."""
    aliases = release.values.get("hostAliases") or [{}]
    tenant = release.namespace.removesuffix(names.TENANT_NAMESPACE_SUFFIX)
    secret_env = {
        "GF_SECURITY_ADMIN_USER": grafana.ADMIN_USER_KEY,
        "GF_SECURITY_ADMIN_PASSWORD": grafana.ADMIN_PASSWORD_KEY,
        grafana.TOKEN_ENV: grafana.TOKEN_KEY,
    }
    if sso:
        secret_env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"] = grafana.CLIENT_SECRET_KEY
    return wiring.GrafanaWiring(
        service=grafana.RELEASE,
        service_port=grafana.SERVICE_PORT,
        container_port=grafana.CONTAINER_PORT,
        secret=grafana.SECRET,
        secret_env=secret_env,
        data_api_hosts=names.endpoint_hosts(tenant, instance, domain),
        gateway_address=str(aliases[0].get("ip", "")),
    )


def render(case: Case, release: Release, source: Path) -> Render:
    """`helm template` of the release (its values schema enforced), each object checked
    against the case's Kubernetes version."""
    objects, custom = rendered_objects(release, source, case.kubernetes_version)
    return Render(case, release, objects, custom)


def rendered_objects(
    release: Release, source: Path, kubernetes_version: str
) -> tuple[list[dict[str, Any]], int]:
    """The release's objects as `helm template` renders them for that Kubernetes version,
    each valid for it, and how many of them no Kubernetes schema describes."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(release.values, file)
        file.flush()
        text = helm(
            "template",
            release.name,
            str(source),
            "--namespace",
            release.namespace,
            "--kube-version",
            f"v{kubernetes_version}.0",
            "--include-crds",
            "--skip-tests",
            "--values",
            file.name,
        )
    objects = [o for o in yaml.safe_load_all(text) if o]
    custom = 0
    problems = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, f"{kubernetes_version}.0", strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom += 1
        except kubernetes_validate.ValidationError as error:
            problems.append(
                f"{where}: not valid for Kubernetes {kubernetes_version}: {error.message}"
            )
    if problems:
        raise CheckError("\n".join(problems))
    return objects, custom


@dataclass(frozen=True)
class Backend:
    """What the policy-change check knows of a backend's chart."""

    group: str
    """Its limit group (`opstrace.policy.limits`)."""
    runtime_config_at: tuple[str, ...]
    """Where its values hold the runtime configuration (`opstrace.chart_values`)."""
    config_key: str
    """The main configuration's key in its ConfigMap (its pods carry its checksum)."""


BACKENDS: Final = {
    charts.MIMIR.name: Backend(limits.METRICS, ("runtimeConfig",), "mimir.yaml"),
    charts.LOKI.name: Backend(limits.LOGS, ("loki", "runtimeConfig"), "config.yaml"),
}


def with_changed_policy(case: Case, release: Release) -> Release:
    """The release as the program registers it once every tenant keeps its data a day
    longer than the instance: its tenant policy changed, nothing else."""
    backend = BACKENDS[release.chart.name]
    days = {
        limits.METRICS: case.config.platform.metrics_retention_days + 1,
        limits.LOGS: case.config.platform.logs_retention_days + 1,
    }
    changed = replace(
        case.config, tenants=tuple(replace(t, retention_days=days) for t in case.config.tenants)
    )
    values = copy.deepcopy(release.values)
    *parents, last = backend.runtime_config_at
    holder = values
    for key in parents:
        holder = holder[key]
    holder[last] = limits.runtime_config(changed.overrides(backend.group))
    return replace(release, values=values)


def policy_change_problems(case: Case, rendered: Render, source: Path) -> list[str]:
    """What a tenant policy change changes in the backend's render besides its runtime
    configuration (`chart_wiring.restart_problems`)."""
    backend = BACKENDS[rendered.release.chart.name]
    after = render(case, with_changed_policy(case, rendered.release), source)
    return wiring.restart_problems(
        rendered.release.chart.name,
        rendered.objects,
        after.objects,
        rendered.release.namespace,
        backend.config_key,
    )


def _registrations(run: ProgramRun, typ: str) -> list[Registration]:
    return [r for r in run.resources if r.type == typ]


def wiring_problems(case: Case, rendered: dict[str, Render]) -> tuple[list[str], list[str]]:
    """Every wiring rule for the case's renders (keyed by `Release.key`): (problems,
    what was not checked: its chart left out with `--chart`, or not known in the plan)."""
    run = case.run
    unrendered = {r.namespace for r in releases(case) if r.key not in rendered}
    problems: list[str] = []
    unchecked: list[str] = []
    roles = {
        r.state["arn"]: wiring.trust_subject(json.loads(r.inputs["assumeRolePolicy"]))
        for r in _registrations(run, "aws:iam/role:Role")
    }
    trusted = {arn: subject for arn, subject in roles.items() if subject}
    buckets = {
        r.inputs["tags"]["opstrace.io/data"]: str(r.state["bucket"])
        for r in _registrations(run, "aws:s3/bucket:Bucket")
    }
    config = next(
        plain(r.inputs["data"])["haproxy.cfg"]
        for r in _registrations(run, "kubernetes:core/v1:ConfigMap")
        if "haproxy.cfg" in (plain(r.inputs.get("data")) or {})
    )
    for upstream in wiring.gateway_upstreams(config):
        owner = next(
            (r for r in rendered.values() if r.release.namespace == upstream.namespace), None
        )
        if owner is not None:
            problems += wiring.service_problems(owner.objects, upstream, owner.release.namespace)
        elif upstream.namespace in unrendered:
            unchecked.append(f"{upstream.backend}: {upstream.service}.{upstream.namespace}")
        else:
            problems.append(
                f"{upstream.backend}: nothing of ours renders namespace {upstream.namespace}"
            )
    for r in rendered.values():
        account = r.release.values.get("serviceAccount")
        if account and charts.IRSA_ANNOTATION in (account.get("annotations") or {}):
            problems += wiring.service_account_problems(
                r.objects,
                account["name"],
                r.release.namespace,
                account["annotations"][charts.IRSA_ANNOTATION],
                trusted,
                charts.IRSA_ANNOTATION,
            )
    settings = case.config.platform
    size = settings.size
    if any(r.release.chart == charts.GRAFANA for r in rendered.values()):
        problems += grafana_coverage_problems(case)
    for r in rendered.values():
        name = r.release.chart.name
        expected = chart_images.expected_images(name, settings.image_mirrors)
        problems += wiring.image_problems(name, r.objects, expected)
        if r.release.chart == charts.GRAFANA:
            want = grafana_wiring(
                r.release,
                case.config.instance_name,
                case.config.domain,
                case.config.grafana_sso is not None,
            )
            problems += wiring.grafana_problems(r.objects, r.release.namespace, want)
            if not want.gateway_address:
                # The mocks know no cluster IP: the plan gives the pod no host aliases.
                unchecked.append(f"{r.release.key}: its data API hosts' aliases (no gateway IP)")
    if charts.MIMIR.name in rendered:
        mimir = wiring.config_document(
            rendered[charts.MIMIR.name].objects, BACKENDS[charts.MIMIR.name].config_key
        )
        problems += wiring.mimir_problems(
            mimir,
            buckets["metrics"],
            case.region,
            f"{settings.metrics_retention_days}d",
            size.metrics.replication_factor,
        )
        kafka = [o for o in rendered[charts.MIMIR.name].objects if "kafka" in o["metadata"]["name"]]
        problems += [f"mimir: renders {o['kind']}/{o['metadata']['name']}" for o in kafka]
    if charts.LOKI.name in rendered:
        loki = wiring.config_document(
            rendered[charts.LOKI.name].objects, BACKENDS[charts.LOKI.name].config_key
        )
        problems += wiring.loki_problems(
            loki,
            buckets["logs"],
            case.region,
            f"{settings.logs_retention_days * 24}h",
            size.logs.replication_factor,
            case.config.backend_policies()[limits.LOGS].alertmanager_url,
        )
    if charts.ALLOY.name in rendered:
        endpoints = alloy_config.push_urls(case.config.instance_name, case.config.domain)
        problems += wiring.collector_problems(
            rendered[charts.ALLOY.name].objects,
            endpoints,
            f"{alloy_config.TOKEN_DIR}/{alloy_config.TOKEN_FILE}",
            telemetry_component.TOKEN_SECRET,
            alloy_config.TOKEN_DIR,
        )
        secret = [
            r
            for r in _registrations(run, "kubernetes:core/v1:Secret")
            if plain(r.inputs["metadata"]).get("name") == telemetry_component.TOKEN_SECRET
        ]
        if not secret or list(plain(secret[0].inputs["stringData"])) != [alloy_config.TOKEN_FILE]:
            problems.append(
                f"alloy: the plan has no Secret {telemetry_component.TOKEN_SECRET} "
                f"holding {alloy_config.TOKEN_FILE}"
            )
    if charts.LOAD_BALANCER_CONTROLLER.name in rendered:
        values = rendered[charts.LOAD_BALANCER_CONTROLLER.name].release.values
        if values["region"] != case.region:
            problems.append(
                f"load balancer controller: region {values['region']}, not {case.region}"
            )
        problems += wiring.container_args_problems(
            rendered[charts.LOAD_BALANCER_CONTROLLER.name].objects,
            "Deployment",
            rendered[charts.LOAD_BALANCER_CONTROLLER.name].release.name,
            [
                f"--cluster-name={values['clusterName']}",
                f"--aws-region={values['region']}",
                f"--aws-vpc-id={values['vpcId']}",
            ],
        )
    return problems, unchecked


def sizing_fit(case: Case, rendered: dict[str, Render]) -> tuple[str, list[str]]:
    """What the case's rendered charts request of its nodes (eks: the preset's, known),
    as a line of figures, and a problem if it is more than `sizes.FIT` of them."""
    settings = case.config.platform
    shape = sizes.NODE_SHAPES.get(settings.node_instance_type)
    everything = all(c.name in rendered for c in charts.INSTANCE_CHARTS)
    if not settings.makes_cluster or shape is None or not everything:
        return "", []
    nodes = settings.node_count
    total = wiring.Requests(0.0, 0.0)
    for r in rendered.values():
        total += wiring.requested(r.objects, nodes)
    cpus, memory = nodes * shape[0], nodes * shape[1] * 2.0**30
    line = (
        f"requests {total.cpu:.1f} CPUs and {total.memory / 2**30:.1f} GiB of {nodes} x "
        f"{settings.node_instance_type} ({cpus} CPUs, {memory / 2**30:.0f} GiB): "
        f"{total.cpu / cpus:.0%} and {total.memory / memory:.0%}"
    )
    over = max(total.cpu / cpus, total.memory / memory) > sizes.FIT
    return line, [f"sizing: the charts request more than {sizes.FIT:.0%} of the nodes"] * over


# --- the local cluster -------------------------------------------------------------------


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CheckError(f"kubectl {' '.join(args[:3])}: {result.stderr.strip()}")
    return result.stdout


def _documents(objects: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def _server_side_apply(objects: Sequence[dict[str, Any]], *flags: str) -> None:
    if objects:
        kubectl(
            "apply",
            "--server-side",
            f"--field-manager={FIELD_MANAGER}",
            *flags,
            "-f",
            "-",
            stdin=_documents(objects),
        )


def _namespaced_kinds() -> set[str]:
    listing = kubectl("api-resources", "--namespaced=true", "--no-headers")
    return {line.split()[-1] for line in listing.splitlines() if line.strip()}


def _crd_name(obj: dict[str, Any]) -> str:
    return f"customresourcedefinition.apiextensions.k8s.io/{obj['metadata']['name']}"


def apply(renders: Sequence[Render]) -> str:
    """Apply a case's renders to the local cluster as Helm would install them, release
    by release in the program's order, CRDs first (each in its release's namespace
    unless it names its own); then delete everything applied, so that the next case
    (and the engine tests) find the cluster as it was. A CRD the cluster already has
    (the cert-manager stand-in's) is applied as a server-side dry run only."""
    existing_crds = set(kubectl("get", "crd", "-o", "name").split())
    new_crds: list[dict[str, Any]] = []
    new_namespaces: list[str] = []
    applied: list[dict[str, Any]] = []
    try:
        for r in renders:
            crds = [o for o in r.objects if o["kind"] == "CustomResourceDefinition"]
            _server_side_apply(
                [o for o in crds if _crd_name(o) in existing_crds],
                "--dry-run=server",
                "--force-conflicts",
            )
            fresh = [o for o in crds if _crd_name(o) not in existing_crds]
            _server_side_apply(fresh)
            new_crds += fresh
            if fresh:
                names_ = [f"crd/{o['metadata']['name']}" for o in fresh]
                kubectl("wait", "--for=condition=Established", "--timeout=60s", *names_)
            namespace = r.release.namespace
            if namespace not in new_namespaces and not kubectl(
                "get", "namespace", namespace, "--ignore-not-found", "-o", "name"
            ):
                kubectl("create", "namespace", namespace)
                new_namespaces.append(namespace)
            namespaced = _namespaced_kinds()
            rest = []
            for obj in r.objects:
                if obj["kind"] == "CustomResourceDefinition":
                    continue
                if obj["kind"] in namespaced:
                    obj = {**obj, "metadata": {"namespace": namespace, **obj["metadata"]}}
                rest.append(obj)
            _server_side_apply(rest)
            applied += rest
        return f"applied {sum(len(r.objects) for r in renders)} objects"
    finally:
        if applied:
            kubectl(
                "delete",
                "--ignore-not-found",
                "--wait=true",
                "-f",
                "-",
                stdin=_documents(applied[::-1]),
            )
        if new_namespaces:
            kubectl("delete", "namespace", "--wait=true", "--timeout=120s", *new_namespaces)
        if new_crds:
            kubectl("delete", "--wait=true", *(f"crd/{o['metadata']['name']}" for o in new_crds))


def render_grafana_sample(source: Path, kubernetes_version: str) -> tuple[int, list[str]]:
    """`SAMPLE_GRAFANA` rendered from `source` and checked as a case's Grafana is: the
    number of objects, and the problems."""
    values = with_images(charts.GRAFANA, chart_values.grafana_values(SAMPLE_GRAFANA), {})
    release = Release(
        charts.GRAFANA,
        charts.GRAFANA.release,
        names.tenant_namespace(SAMPLE_GRAFANA.tenant),
        values,
    )
    objects, _ = rendered_objects(release, source, kubernetes_version)
    want = grafana_wiring(release, "dev-acme", "observability.acme.dev", sso=True)
    expected = chart_images.expected_images(charts.GRAFANA.name, {})
    problems = wiring.grafana_problems(objects, release.namespace, want)
    problems += wiring.image_problems(charts.GRAFANA.name, objects, expected)
    return len(objects), problems


def grafana_sample() -> int:
    try:
        source = chart_source(charts.GRAFANA)
        count, problems = render_grafana_sample(source, eks_versions.DEFAULT_VERSION)
    except CheckError as error:
        print(f"charts: error: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"  grafana sample PROBLEM {problem}")
    verdict = "FAILED" if problems else "passed"
    print(f"charts: grafana {charts.GRAFANA.version} sample, {count} objects: {verdict}")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.chart_check", description=__doc__.splitlines()[0]
    )
    stacks = sorted(p.name.split(".")[1] for p in (PROJECT_DIR / "stacks").glob("Pulumi.*.yaml"))
    parser.add_argument(
        "--stack", action="append", choices=stacks, help="only this stack (repeatable)"
    )
    parser.add_argument(
        "--sizing", action="append", choices=sorted(sizes.SIZES), help="only this preset"
    )
    parser.add_argument(
        "--chart",
        action="append",
        choices=[c.name for c in charts.ALL_CHARTS],
        help="only this chart (repeatable)",
    )
    parser.add_argument("--no-apply", action="store_true", help="render and check, apply nothing")
    parser.add_argument(
        "--grafana-sample",
        action="store_true",
        help="only render and check one sample tenant Grafana (no stack planned, nothing applied)",
    )
    options = parser.parse_args(argv)
    start = time.monotonic()
    if options.grafana_sample:
        return grafana_sample()
    wanted = [c for c in charts.ALL_CHARTS if not options.chart or c.name in options.chart]
    try:
        print(f"charts: {helm('version', '--short').strip()} ({HELM})", flush=True)
        sources = {}
        for chart in wanted:
            sources[chart.name] = chart_source(chart)
            print(f"charts: {chart.name} {chart.version} from {sources[chart.name]}", flush=True)
        if not options.no_apply and not KUBECONFIG.exists():
            raise CheckError(
                f"no local cluster ({KUBECONFIG} is missing): make cluster-up, or pass --no-apply"
            )
        totals = {"cases": 0, "renders": 0, "objects": 0}
        failed = False
        for case in cases(options.stack or stacks, options.sizing or sorted(sizes.SIZES)):
            t0 = time.monotonic()
            rendered: dict[str, Render] = {}
            for release in releases(case):
                if release.chart.name in sources:
                    rendered[release.key] = render(case, release, sources[release.chart.name])
            for r in rendered.values():
                print(
                    f"  {case.label:<28} {r.release.key:<30} {len(r.objects):4} objects "
                    f"({r.custom} custom), valid for Kubernetes {case.kubernetes_version}",
                    flush=True,
                )
            problems, unchecked = wiring_problems(case, rendered)
            fit, fit_problems = sizing_fit(case, rendered)
            if fit:
                print(f"  {case.label:<28} {fit}", flush=True)
            problems += fit_problems
            for r in rendered.values():
                if r.release.chart.name in BACKENDS:
                    problems += policy_change_problems(case, r, sources[r.release.chart.name])
            if unchecked:
                why = "chart left out, or not known in the plan"
                print(f"  {case.label:<28} not checked ({why}): {', '.join(unchecked)}")
            for problem in problems:
                print(f"  {case.label:<28} PROBLEM {problem}", flush=True)
            failed = failed or bool(problems)
            outcome = (
                "" if options.no_apply else f", {apply(list(rendered.values()))} and removed them"
            )
            print(
                f"  {case.label:<28} wiring {'ok' if not problems else 'FAILED'}{outcome} "
                f"({time.monotonic() - t0:.0f} s)",
                flush=True,
            )
            totals["cases"] += 1
            totals["renders"] += len(rendered)
            totals["objects"] += sum(len(r.objects) for r in rendered.values())
    except (CheckError, ConfigError, ProgramFailed) as error:
        print(f"charts: error: {error}", file=sys.stderr)
        return 1
    verdict = "FAILED" if failed else "passed"
    counts = f"{totals['cases']} cases, {totals['renders']} renders, {totals['objects']} objects"
    print(f"charts: {counts}: {verdict} in {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
