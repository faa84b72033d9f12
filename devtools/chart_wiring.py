"""What only a rendered chart shows: does it wire up as the program assumes?

Pure functions over the objects `helm template` renders (plain dicts) and facts from the
program's plan; each returns the problems it finds, one line each, empty when all is
well. `devtools/chart_check.py` (`make charts`) runs them on real renders; tests run them on
small hand-made renders, so that each rule is known to catch what it names.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

Object = dict[str, Any]

WORKLOAD_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet")
_SERVER_RE: Final = re.compile(r"^\s+server (\S+) ([^\s:]+):(\d+)\b", re.MULTILINE)
_CLUSTER_DOMAIN: Final = ".svc.cluster.local"


@dataclass(frozen=True)
class Upstream:
    """A backend the gateway forwards to: its HAProxy backend name and in-cluster address."""

    backend: str
    service: str
    namespace: str
    port: int


def gateway_upstreams(haproxy_cfg: str) -> list[Upstream]:
    """The in-cluster Services the gateway's HAProxy configuration forwards to."""
    found = []
    for backend, host, port in _SERVER_RE.findall(haproxy_cfg):
        if host.endswith(_CLUSTER_DOMAIN):
            service, namespace = host.removesuffix(_CLUSTER_DOMAIN).split(".", 1)
            found.append(Upstream(backend, service, namespace, int(port)))
    return found


def namespace_of(obj: Object, default: str) -> str:
    """The object's namespace, or the release's (where Helm installs it) if it names none."""
    return str(obj.get("metadata", {}).get("namespace") or default)


def named(objects: Iterable[Object], kind: str, name: str, namespace: str) -> Object | None:
    """The rendered object of that kind, name and namespace, if any."""
    for obj in objects:
        meta = obj.get("metadata", {})
        same = obj.get("kind") == kind and meta.get("name") == name
        if same and namespace_of(obj, namespace) == namespace:
            return obj
    return None


def workloads(objects: Iterable[Object]) -> list[Object]:
    return [obj for obj in objects if obj.get("kind") in WORKLOAD_KINDS]


def pod_spec(workload: Object) -> dict[str, Any]:
    return dict(workload.get("spec", {}).get("template", {}).get("spec", {}))


def _selects(selector: Mapping[str, str], workload: Object) -> bool:
    labels = workload.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _container_ports(workload: Object) -> set[int | str]:
    ports: set[int | str] = set()
    for container in pod_spec(workload).get("containers", []):
        for port in container.get("ports", []):
            ports.add(int(port["containerPort"]))
            if "name" in port:
                ports.add(str(port["name"]))
    return ports


def service_problems(objects: Sequence[Object], upstream: Upstream, namespace: str) -> list[str]:
    """The gateway's upstream must be a rendered Service with that port, whose selector
    picks a rendered workload that serves the port's target."""
    where = f"{upstream.backend}: Service {upstream.namespace}/{upstream.service}"
    service = named(objects, "Service", upstream.service, upstream.namespace)
    if service is None or namespace != upstream.namespace:
        return [f"{where} is not in the render"]
    ports = [p for p in service["spec"].get("ports", []) if int(p["port"]) == upstream.port]
    if not ports:
        served = sorted(int(p["port"]) for p in service["spec"].get("ports", []))
        return [f"{where} has no port {upstream.port} (it has {served})"]
    selector = service["spec"].get("selector") or {}
    chosen = [w for w in workloads(objects) if _selects(selector, w)]
    if not chosen:
        return [f"{where} selects no rendered workload (selector {selector})"]
    target = ports[0].get("targetPort", upstream.port)
    target = int(target) if isinstance(target, int) or str(target).isdigit() else str(target)
    if not any(target in _container_ports(w) for w in chosen):
        names = sorted(f"{w['kind']}/{w['metadata']['name']}" for w in chosen)
        return [f"{where} targets port {target!r}, which none of {names} declares"]
    return []


def service_account_problems(
    objects: Sequence[Object],
    name: str,
    namespace: str,
    role_arn: str,
    trust_subjects: Mapping[str, str],
    annotation: str,
) -> list[str]:
    """The chart's service account must carry the role ARN, that role must trust exactly
    this namespace:name, and a rendered workload must run as it.

    `trust_subjects`: role ARN -> the service account subject its trust policy names."""
    where = f"ServiceAccount {namespace}/{name}"
    account = named(objects, "ServiceAccount", name, namespace)
    if account is None:
        return [f"{where} is not in the render"]
    problems = []
    annotated = (account["metadata"].get("annotations") or {}).get(annotation)
    if annotated != role_arn:
        problems.append(f"{where}: {annotation} is {annotated!r}, not the role {role_arn!r}")
    subject = f"system:serviceaccount:{namespace}:{name}"
    trusted = trust_subjects.get(str(annotated))
    if trusted != subject:
        problems.append(f"{where}: its role trusts {trusted!r}, not {subject!r}")
    users = [w for w in workloads(objects) if pod_spec(w).get("serviceAccountName") == name]
    if not users:
        problems.append(f"{where}: no rendered workload runs as it")
    return problems


def trust_subject(trust_policy: Mapping[str, Any]) -> str | None:
    """The one `system:serviceaccount:...` subject an IRSA trust policy admits, if any."""
    subjects = [
        value
        for statement in trust_policy.get("Statement", [])
        for key, value in statement.get("Condition", {}).get("StringEquals", {}).items()
        if key.endswith(":sub")
    ]
    return str(subjects[0]) if len(subjects) == 1 else None


def config_document(objects: Iterable[Object], key: str) -> Any:
    """The YAML document under data[`key`] of the one rendered ConfigMap that has it."""
    found = [o for o in objects if o.get("kind") == "ConfigMap" and key in (o.get("data") or {})]
    if len(found) != 1:
        return None
    return yaml.safe_load(found[0]["data"][key])


def _at(document: Any, path: str, default: Any = None) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return default
        document = document[part]
    return document


def _mismatches(backend: str, facts: Mapping[str, tuple[Any, Any]]) -> list[str]:
    """One line per fact whose value (first) is not the one expected (second)."""
    return [
        f"{backend}: {what} is {got!r}, expected {want!r}"
        for what, (got, want) in facts.items()
        if got != want
    ]


def mimir_problems(
    config: Any, bucket: str, region: str, retention: str, replication: int
) -> list[str]:
    """Mimir's rendered configuration, read as Mimir reads it (absent keys take Mimir's
    defaults: multi-tenancy on, the ingesters' gRPC push method on)."""
    if not isinstance(config, dict):
        return ["mimir: no ConfigMap with mimir.yaml in the render"]
    facts = {
        "multitenancy_enabled (tenants from X-Scope-OrgID)": (
            _at(config, "multitenancy_enabled", True),
            True,
        ),
        "ingest_storage.enabled (writes through Kafka)": (
            _at(config, "ingest_storage.enabled", False),
            False,
        ),
        "ingester.push_grpc_method_enabled (ingesters accept distributors' pushes)": (
            _at(config, "ingester.push_grpc_method_enabled", True),
            True,
        ),
        "common.storage.backend": (_at(config, "common.storage.backend"), "s3"),
        "common.storage.s3.bucket_name": (_at(config, "common.storage.s3.bucket_name"), bucket),
        "common.storage.s3.region": (_at(config, "common.storage.s3.region"), region),
        "common.storage.s3.endpoint": (
            _at(config, "common.storage.s3.endpoint"),
            f"s3.{region}.amazonaws.com",
        ),
        "limits.compactor_blocks_retention_period": (
            _at(config, "limits.compactor_blocks_retention_period"),
            retention,
        ),
        "ingester.ring.replication_factor": (
            _at(config, "ingester.ring.replication_factor"),
            replication,
        ),
        "ruler_storage.storage_prefix (rule groups in the bucket)": (
            _at(config, "ruler_storage.storage_prefix"),
            "ruler",
        ),
        "alertmanager_storage.storage_prefix (Alertmanager state in the bucket)": (
            _at(config, "alertmanager_storage.storage_prefix"),
            "alertmanager",
        ),
        "alertmanager.fallback_config_file set (every tenant's default configuration)": (
            bool(_at(config, "alertmanager.fallback_config_file")),
            True,
        ),
        **_runtime_config(config),
    }
    return _mismatches("mimir", facts)


def _runtime_config(config: Any) -> dict[str, tuple[Any, Any]]:
    return {
        "runtime_config.file set (tenants' limits reloaded without a restart)": (
            bool(_at(config, "runtime_config.file")),
            True,
        )
    }


def loki_problems(
    config: Any, bucket: str, region: str, retention: str, replication: int, alertmanager: str
) -> list[str]:
    """Loki's rendered configuration: multi-tenant, on the bucket in the region, the
    compactor deleting what is older than the retention, its ruler's API on (the
    gateway's rules routes) sending alerts to `alertmanager`."""
    if not isinstance(config, dict):
        return ["loki: no ConfigMap with config.yaml in the render"]
    s3 = _at(config, "common.storage.s3", {})
    facts = {
        "auth_enabled (tenants from X-Scope-OrgID)": (_at(config, "auth_enabled", True), True),
        "common.storage.s3.bucketnames": (s3.get("bucketnames"), bucket),
        "common.storage.s3.region": (s3.get("region"), region),
        "common.replication_factor": (_at(config, "common.replication_factor"), replication),
        "limits_config.retention_period": (
            _at(config, "limits_config.retention_period"),
            retention,
        ),
        "limits_config.allow_structured_metadata (OTLP logs' attributes)": (
            _at(config, "limits_config.allow_structured_metadata", True),
            True,
        ),
        "compactor.retention_enabled (the compactor deletes old data)": (
            _at(config, "compactor.retention_enabled", False),
            True,
        ),
        "ruler.storage.s3.bucketnames": (
            _at(config, "ruler.storage.s3.bucketnames", bucket),
            bucket,
        ),
        "ruler.enable_api (the tenants' rules API)": (
            _at(config, "ruler.enable_api", False),
            True,
        ),
        "ruler.alertmanager_url": (_at(config, "ruler.alertmanager_url"), alertmanager),
        **_runtime_config(config),
    }
    return _mismatches("loki", facts)


def _identity(obj: Object, namespace: str) -> tuple[str, str, str]:
    return (str(obj.get("kind")), namespace_of(obj, namespace), str(obj["metadata"]["name"]))


def restart_problems(
    backend: str,
    before: Sequence[Object],
    after: Sequence[Object],
    namespace: str,
    config_key: str,
) -> list[str]:
    """A tenant policy change must render as a change of ConfigMaps that the backend
    reloads (its runtime configuration), not of its main configuration (`config_key`,
    whose checksum the pods carry) nor of any other object (a changed pod template
    restarts its pods): one line per object that differs, or appears or goes."""
    old = {_identity(o, namespace): o for o in before}
    new = {_identity(o, namespace): o for o in after}
    problems = []
    for key in sorted(old.keys() | new.keys()):
        kind, _, name = key
        if old.get(key) == new.get(key):
            continue
        if key not in old or key not in new:
            change = "appears" if key in new else "goes"
            problems.append(f"{backend}: a tenant policy change: {kind}/{name} {change}")
        elif kind != "ConfigMap" or config_key in (new[key].get("data") or {}):
            problems.append(
                f"{backend}: a tenant policy change changes {kind}/{name}, not only the "
                "runtime configuration (its pods restart)"
            )
    return problems


def collector_problems(
    objects: Sequence[Object],
    endpoints: Sequence[str],
    token_file: str,
    token_secret: str,
    token_dir: str,
) -> list[str]:
    """Alloy's rendered config ships to `endpoints` with the token file, and its pods
    mount the token Secret read-only where that file is read."""
    problems = []
    config = next(
        (
            str(data["config.alloy"])
            for o in objects
            if o.get("kind") == "ConfigMap" and "config.alloy" in (data := o.get("data") or {})
        ),
        None,
    )
    if config is None:
        return ["alloy: no ConfigMap with config.alloy in the render"]
    problems += [f"alloy: config does not send to {url}" for url in endpoints if url not in config]
    if config.count(f'bearer_token_file = "{token_file}"') != len(endpoints):
        problems.append(f"alloy: not every endpoint reads its token from {token_file}")
    daemons = [w for w in workloads(objects) if w["kind"] == "DaemonSet"]
    if not daemons:
        return [*problems, "alloy: no DaemonSet in the render"]
    spec = pod_spec(daemons[0])
    volumes = {
        v["name"]
        for v in spec.get("volumes", [])
        if v.get("secret", {}).get("secretName") == token_secret
    }
    mounted = [
        m
        for c in spec.get("containers", [])
        for m in c.get("volumeMounts", [])
        if m.get("name") in volumes and m.get("mountPath") == token_dir
    ]
    if not mounted or not all(m.get("readOnly") for m in mounted):
        problems.append(f"alloy: Secret {token_secret} is not mounted read-only at {token_dir}")
    return problems


def container_args_problems(
    objects: Sequence[Object], kind: str, name: str, args: Sequence[str]
) -> list[str]:
    """The named workload's containers are started with every one of `args`."""
    workload = next(
        (w for w in workloads(objects) if w["kind"] == kind and w["metadata"]["name"] == name),
        None,
    )
    if workload is None:
        return [f"{kind} {name} is not in the render"]
    given = {a for c in pod_spec(workload).get("containers", []) for a in c.get("args", [])}
    return [f"{kind} {name} is not started with {arg}" for arg in args if arg not in given]


# What the pods ask of the nodes --------------------------------------------------------

_QUANTITY_RE: Final = re.compile(r"^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS: Final = {
    None: 1.0,
    "m": 0.001,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: Any) -> float:
    """A Kubernetes resource quantity (`100m`, `3.5`, `512Mi`) as a number."""
    match = _QUANTITY_RE.fullmatch(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a resource quantity")
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True)
class Requests:
    """CPUs and bytes of memory the pods request, all replicas counted."""

    cpu: float
    memory: float

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu + other.cpu, self.memory + other.memory)


def requested(objects: Iterable[Object], nodes: int) -> Requests:
    """What the rendered workloads request: each container's requests (and init
    containers' where larger, as the scheduler counts them), times the replicas (a
    DaemonSet's pods: one on each of `nodes`)."""
    total = Requests(0.0, 0.0)
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = obj["spec"]
        count = nodes if obj["kind"] == "DaemonSet" else int(spec.get("replicas", 1))
        pod = spec["template"]["spec"]

        def sums(containers: Iterable[Object]) -> Requests:
            found = Requests(0.0, 0.0)
            for container in containers:
                asked = (container.get("resources") or {}).get("requests") or {}
                found += Requests(quantity(asked.get("cpu", 0)), quantity(asked.get("memory", 0)))
            return found

        main = sums(pod.get("containers", []))
        init = [sums([c]) for c in pod.get("initContainers", [])]
        per_pod = Requests(
            max([main.cpu, *(i.cpu for i in init)]), max([main.memory, *(i.memory for i in init)])
        )
        total += Requests(per_pod.cpu * count, per_pod.memory * count)
    return total


def image_problems(chart: str, objects: Iterable[Object], expected: set[str]) -> list[str]:
    """Every image a render runs must be one the program set (mirrored as configured):
    none left to a chart's default, none pulled from a registry the operator did not
    choose."""
    problems = []
    for obj in objects:
        spec = obj.get("spec") or {}
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template", {}
        )
        pod = (template or {}).get("spec") or {}
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            if container["image"] not in expected:
                where = f"{obj['kind']}/{obj['metadata']['name']}"
                problems.append(
                    f"{chart}: {where} runs {container['image']}, not an image the program set"
                )
    return problems


# A tenant's Grafana ---------------------------------------------------------------------


@dataclass(frozen=True)
class GrafanaWiring:
    """What a tenant's Grafana render must show (`opstrace.grafana`'s names)."""

    service: str
    service_port: int
    container_port: int
    secret: str
    secret_env: Mapping[str, str]
    """Environment variable -> the key of `secret` it must be read from."""
    data_api_hosts: Sequence[str]
    gateway_address: str
    """Where those hosts must resolve in the pod (`hostAliases`); "": through DNS."""
    data_dir: str = "/var/lib/grafana"


_ANONYMOUS_SECTION: Final = "auth.anonymous"


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    return parser


def _secret_refs(container: Object) -> dict[str, tuple[str, str]]:
    refs = {}
    for variable in container.get("env", []):
        ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            refs[str(variable["name"])] = (str(ref.get("name")), str(ref.get("key")))
    return refs


def grafana_problems(objects: Sequence[Object], namespace: str, want: GrafanaWiring) -> list[str]:
    """A tenant's Grafana: its Service on `service_port` reaching the container's
    `container_port`; its secrets (the admin's, the data token, the SSO client secret)
    read from `secret` by the expected keys, none written in the render; its data API
    hosts aliased to the gateway; its state on a claimed volume; no anonymous access; no
    Kubernetes API token, Role or NetworkPolicy of the chart's own."""
    where = f"grafana {namespace}"
    problems = []
    service = named(objects, "Service", want.service, namespace)
    deployment = named(objects, "Deployment", want.service, namespace)
    if service is None or deployment is None:
        return [f"{where}: no Service and Deployment {want.service} in the render"]
    upstream = Upstream("grafana", want.service, namespace, want.service_port)
    problems += service_problems(objects, upstream, namespace)
    # A Service port without a targetPort targets the same number (Kubernetes' default).
    target = str(
        next(
            (
                p.get("targetPort", p["port"])
                for p in service["spec"].get("ports", [])
                if int(p["port"]) == want.service_port
            ),
            "",
        )
    )
    container = next(
        (c for c in pod_spec(deployment).get("containers", []) if c.get("name") == "grafana"),
        None,
    )
    if container is None:
        return [*problems, f"{where}: Deployment {want.service} has no grafana container"]
    numbers = {
        str(p.get("name", p["containerPort"])): int(p["containerPort"])
        for p in container.get("ports", [])
    }
    reached = numbers.get(target, int(target) if target.isdigit() else None)
    if reached != want.container_port:
        problems.append(
            f"{where}: Service {want.service} port {want.service_port} reaches container "
            f"port {reached}, not {want.container_port}"
        )
    refs = _secret_refs(container)
    for variable, key in want.secret_env.items():
        if refs.get(variable) != (want.secret, key):
            problems.append(
                f"{where}: {variable} is read from {refs.get(variable)!r}, not Secret "
                f"{want.secret} key {key}"
            )
    problems += [
        f"{where}: {variable} is written in the render, not read from a Secret"
        for variable in want.secret_env
        for given in container.get("env", [])
        if given.get("name") == variable and "value" in given
    ]
    problems += [
        f"{where}: renders Secret/{o['metadata']['name']} (its secrets are the program's)"
        for o in objects
        if o.get("kind") == "Secret"
    ]
    spec = pod_spec(deployment)
    if want.gateway_address:
        aliased = {
            host
            for alias in spec.get("hostAliases", [])
            if alias.get("ip") == want.gateway_address
            for host in alias.get("hostnames", [])
        }
        problems += [
            f"{where}: {host} does not resolve to the gateway {want.gateway_address}"
            for host in want.data_api_hosts
            if host not in aliased
        ]
    claims = {
        str(v["name"]): v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    mounted = [
        claims[m["name"]]
        for m in container.get("volumeMounts", [])
        if m.get("mountPath", "").rstrip("/") == want.data_dir and m.get("name") in claims
    ]
    if not mounted or named(objects, "PersistentVolumeClaim", mounted[0], namespace) is None:
        problems.append(f"{where}: {want.data_dir} is not on a PersistentVolumeClaim it renders")
    ini = next(
        (
            str(o["data"]["grafana.ini"])
            for o in objects
            if o.get("kind") == "ConfigMap" and "grafana.ini" in (o.get("data") or {})
        ),
        None,
    )
    if ini is None:
        problems.append(f"{where}: no ConfigMap with grafana.ini in the render")
    elif _ini(ini).get(_ANONYMOUS_SECTION, "enabled", fallback="false").lower() != "false":
        problems.append(f"{where}: [{_ANONYMOUS_SECTION}] enabled: anonymous users get in")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: its pods get a Kubernetes API token")
    problems += [
        f"{where}: renders {o['kind']}/{o['metadata']['name']} (the program makes its own)"
        for o in objects
        if o.get("kind")
        in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "NetworkPolicy", "Pod")
    ]
    return problems
