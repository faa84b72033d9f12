"""The project's own program through the real engine, as an operator drives it.

One instance on the local cluster, deployed once for the module with `pulumi up`; each
test starts from that instance and leaves it as it found it, so that any one runs alone:
no-change preview and refresh, a tenant added with `pulumi config set --path`, a tenant
removed, a rotation, a refused rename, a config typo, `destroy` (after which the next
test brings the instance up again). Each test asserts what the real engine, the real API
server and the gateway pods did: the objects in the cluster, the tokens from `pulumi
stack output --show-secrets`, the state file, the answers of the gateway and what
reached the backend behind it (a recording stand-in at the stack's `cortexUrl`).

The stack is the `existing` mode with `dns: none`, a generic load balancer (the local
cluster's stand-in assigns addresses), the local cluster's stand-in issuer, external
backends and no telemetry: no AWS resource and no Helm chart, which cannot be reached
here (they are proven under mocks). The local cluster enforces no NetworkPolicy (kwok's
nodes run nothing), so the stack accepts that risk; one step shows the preview refusing
it without that, another that a recognized enforcer lets it through.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from opstrace import (
    charts,
    config_maps,
    data_token,
    enforcers,
    key_shards,
    keys,
    state_checkpoints,
)
from sidecar import contract, kube_client
from tests.e2e.harness import wait_until
from tests.engine import harness
from tests.engine.harness import Workspace, copy_project, gateway_pods, local_stack
from tests.leaks import PRIVATE_KEY_MARKER, leaked
from tools import cluster as local_cluster

pytestmark = pytest.mark.engine

PROJECT: Final = "opstrace"
STACK: Final = "engine"
INSTANCE: Final = "engine"
SYSTEM_NAMESPACE: Final = "system-tenant"
USER_TENANTS: Final = 2
"""The deployed stack's user tenants, `prod` and `staging`; a test's own tenant is next."""


@dataclass
class Instance:
    """The deployed instance's workspace, and what the steps learn along the way."""

    workspace: Workspace
    keys_dir: Path
    tokens: dict[str, dict[str, str]]
    destroyed: bool = False
    """Set by the test of `destroy`: the next test that needs the instance brings it up."""

    @property
    def stack_file(self) -> Path:
        return self.workspace.project_dir / "stacks" / f"Pulumi.{STACK}.yaml"

    def config(self) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self.stack_file.read_text())
        return dict(document["config"])

    def write_config(self, config: dict[str, Any]) -> None:
        self.stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def pulumi(self, *args: str, check: bool = True) -> Any:
        return self.workspace.run(*args, "--stack", STACK, check=check)

    def up(self) -> None:
        self.pulumi("up", "--yes", "--skip-preview")
        self.tokens = self.workspace.outputs(STACK)["tokens"]

    def state(self) -> str:
        return self.workspace.state_file(PROJECT, STACK).read_text()


def trust_store(api: kube_client.Api) -> dict[str, dict[str, Any]]:
    """Shard -> the trust store ConfigMap of its keys, as the API server holds it."""
    shards = {}
    for shard in key_shards.SHARDS:
        name = config_maps.trust_store_name(shard)
        found = api.get(f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/configmaps/{name}")
        assert found is not None, f"the trust store ConfigMap {name} is missing"
        shards[shard] = dict(found)
    return shards


def key_set(api: kube_client.Api) -> dict[str, str]:
    """The trust store as the API server holds it: the union of its shards, each checked
    as an authenticator loads a key set (but an empty one, which it would refuse alone)."""
    joined: dict[str, str] = {}
    for config_map in trust_store(api).values():
        text = config_map["data"][keys.KEYSET_ENV_NAME]
        if text != "{}":
            joined |= keys.parse_key_set_json(text)
    return joined


def decision(token: str, tenant: str, trusted: dict[str, str]) -> data_token.Decision:
    now = int(__import__("time").time())
    return data_token.authenticate(f"Bearer {token}", tenant, trusted, INSTANCE, now)


def forwarded(backend: harness.RecordingBackend, token: str, tenant: str) -> bool:
    """Whether the gateway answered `token` at `tenant`'s endpoint with the backend's 200,
    and the backend got the request as that tenant's (`X-Scope-OrgID`)."""
    before = len(backend.requests)
    status, _ = harness.at_gateway(token, tenant, INSTANCE)
    # `cortexUrl`'s layout: the query API under /prometheus, as Cortex and Mimir serve it.
    path = f"{charts.PROMETHEUS_API_PREFIX}/api/v1/labels"
    return status == 200 and backend.requests[before:] == [(tenant, path)]


def refused(token: str, tenant: str) -> tuple[int, str]:
    return harness.at_gateway(token, tenant, INSTANCE)


@pytest.fixture(scope="module")
def backend() -> Iterator[harness.RecordingBackend]:
    with harness.RecordingBackend.running() as recording:
        yield recording


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory,
    cluster: kube_client.Api,
    backend: harness.RecordingBackend,
) -> Iterator[Instance]:
    """The instance, up; every test leaves it as it found it."""
    base = tmp_path_factory.mktemp("instance")
    workspace = Workspace(base / "project", base / "home", base / "backend")
    shutil.rmtree(workspace.project_dir)
    copy_project(workspace.project_dir)
    keys_dir = base / "keys"
    deployed = Instance(workspace, keys_dir, {})
    deployed.write_config(
        local_stack(
            INSTANCE,
            ["prod", {"name": "staging", "exportKeysTo": str(keys_dir)}],
            cortex_url=backend.url,
        )
    )
    workspace.new_stack(STACK)
    try:
        deployed.up()
        yield deployed
    finally:
        # Whatever a failed test left behind must not outlive the module.
        deployed.pulumi("destroy", "--yes", "--skip-preview", check=False)


NAMESPACES: Final = ("system-tenant", "prod-tenant", "staging-tenant")


@pytest.fixture
def instance(deployed: Instance, cluster: kube_client.Api) -> Instance:
    """The module's instance, up (brought up again if a test destroyed it)."""
    if deployed.destroyed:
        wait_until_gone(cluster, [f"/api/v1/namespaces/{n}" for n in NAMESPACES])
        deployed.up()
        deployed.destroyed = False
    return deployed


def test_up_creates_the_trust_store_in_the_cluster(
    instance: Instance, cluster: kube_client.Api
) -> None:
    assert sorted(key_set(cluster)) == sorted(instance.workspace.outputs(STACK)["key_ids"])
    assert len(key_set(cluster)) == 3


def test_when_up_is_done_both_gateway_pods_run(
    instance: Instance, cluster: kube_client.Api
) -> None:
    (deployment,) = cluster.list(f"/apis/apps/v1/namespaces/{SYSTEM_NAMESPACE}/deployments")[
        "items"
    ]
    assert deployment["status"].get("readyReplicas") == 2
    assert len(gateway_pods(cluster)) == 2


def test_the_gateway_forwards_each_token_at_its_own_tenant_and_refuses_it_elsewhere(
    instance: Instance, backend: harness.RecordingBackend
) -> None:
    for tenant, by_name in instance.tokens.items():
        token = by_name["default"]
        assert forwarded(backend, token, tenant), tenant
        # Its key is bound to its tenant: at another tenant's endpoint it is no trusted key.
        for other in sorted(set(instance.tokens) - {tenant}):
            assert refused(token, other) == (401, data_token.BAD_TOKEN), (tenant, other)


def test_the_gateway_pods_count_each_tenants_requests_by_credential_and_status(
    instance: Instance, backend: harness.RecordingBackend
) -> None:
    """The usage counters as the pods run them: HAProxy's ring to its pod's sidecar,
    served at the sidecar's status port (the local pods share this machine's network, so
    each scrape reaches one pod: the series must show up across scrapes)."""
    expected = set()
    for tenant, by_name in instance.tokens.items():
        assert forwarded(backend, by_name["default"], tenant), tenant
        expected.add(f'tenant="{tenant}",credential="{tenant}/default",code="200"')
    seen: set[str] = set()

    def all_counted() -> bool:
        url = f"http://127.0.0.1:{contract.STATUS_PORT}{contract.METRICS_PATH}"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(url, timeout=5) as answer:
            text = answer.read().decode()
        seen.update(
            line.split("{", 1)[1].rsplit("}", 1)[0]
            for line in text.splitlines()
            if line.startswith("opstrace_gateway_requests_total{")
        )
        return expected <= seen

    wait_until(all_counted, "every tenant's request in some pod's usage counters")


def state_objects(instance: Instance) -> list[dict[str, Any]]:
    """Every Kubernetes object the state says the program made (its manifest's identity)."""
    exported = json.loads(instance.pulumi("stack", "export").stdout)
    objects = []
    for resource in exported["deployment"]["resources"]:
        if not resource["type"].startswith("kubernetes:") or not resource.get("custom"):
            continue
        if resource["type"].startswith("kubernetes:helm") or resource.get("external"):
            continue
        if resource["type"] == "pulumi:providers:kubernetes":
            continue
        outputs = resource["outputs"]
        objects.append(
            {
                "apiVersion": outputs["apiVersion"],
                "kind": outputs["kind"],
                "metadata": {
                    key: outputs["metadata"][key]
                    for key in ("name", "namespace", "uid")
                    if key in outputs["metadata"]
                },
            }
        )
    return objects


def test_every_kubernetes_object_the_state_records_is_in_the_cluster(
    instance: Instance, cluster: kube_client.Api
) -> None:
    recorded = state_objects(instance)
    assert len(recorded) >= 20
    missing = []
    for manifest in recorded:
        found = cluster.get(harness.object_path(manifest))
        if found is None or found["metadata"]["uid"] != manifest["metadata"]["uid"]:
            missing.append((manifest["kind"], manifest["metadata"]["name"]))
    assert missing == []


def test_every_tenant_certificate_is_issued_for_its_endpoints(
    instance: Instance, cluster: kube_client.Api
) -> None:
    certificates = cluster.get(
        f"/apis/cert-manager.io/v1/namespaces/{SYSTEM_NAMESPACE}/certificates"
    )["items"]
    assert sorted(sorted(c["spec"]["dnsNames"]) for c in certificates) == [
        [f"cortex.{tenant}.engine.example.com", f"loki.{tenant}.engine.example.com"]
        for tenant in ("prod", "staging", "system")
    ]


def test_dns_records_name_the_address_the_load_balancer_reported(
    instance: Instance, cluster: kube_client.Api
) -> None:
    """The gateway's address comes from its Service's status, as the provider's await saw
    it (the local stand-in's here; on EKS the NLB's, whose shape the mocks imitate)."""
    services = cluster.list(f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/services")["items"]
    (service,) = [s for s in services if s["spec"]["type"] == "LoadBalancer"]
    address = service["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert address == local_cluster.lb_hostname(service["metadata"]["name"], SYSTEM_NAMESPACE)
    records = instance.workspace.outputs(STACK)["dns_records"]
    assert sorted((r["type"], r["value"]) for r in records) == [("CNAME", address)] * 6


def test_a_second_preview_and_a_refresh_find_no_changes(instance: Instance) -> None:
    instance.pulumi("preview", "--expect-no-changes")
    instance.pulumi("refresh", "--yes", "--expect-no-changes", "--skip-preview")


def test_the_state_holds_no_private_key_and_each_token_only_encrypted(instance: Instance) -> None:
    state = instance.state()
    (exported,) = [keys.load_private_key_file(path) for path in instance.keys_dir.iterdir()]
    assert PRIVATE_KEY_MARKER not in state
    assert leaked(state, exported) == []
    tokens = [token for by_name in instance.tokens.values() for token in by_name.values()]
    assert [token for token in tokens if token in state] == []
    assert [token.split(".")[2] for token in tokens if token.split(".")[2] in state] == []


def preview_steps(instance: Instance) -> dict[str, set[str]]:
    """`pulumi preview --json`: operation -> names of the resources it applies to.

    Unchanged resources and the reads of the add-on checks (every preview reads them
    again, changing nothing) are left out."""
    result = instance.pulumi("preview", "--json")
    steps: dict[str, set[str]] = {}
    for step in json.loads(result.stdout).get("steps", []):
        if step["op"] not in ("same", "read"):
            steps.setdefault(step["op"], set()).add(step["urn"].rsplit("::", 1)[-1])
    return steps


@contextlib.contextmanager
def with_tenant(instance: Instance, name: str) -> Iterator[None]:
    """`name` appended to the stack's tenants (as an operator does, with `config set
    --path`), and removed again afterwards with an `up`, whatever the test found."""
    instance.pulumi("config", "set", "--path", f"opstrace:tenants[{USER_TENANTS}]", name)
    try:
        yield
    finally:
        instance.pulumi("config", "rm", "--path", f"opstrace:tenants[{USER_TENANTS}]")
        instance.up()


def test_adding_a_tenant_previews_its_resources_and_the_key_derived_updates(
    instance: Instance,
) -> None:
    instance.pulumi("config", "set", "--path", f"opstrace:tenants[{USER_TENANTS}]", "qa")
    try:
        steps = preview_steps(instance)
    finally:
        instance.pulumi("config", "rm", "--path", f"opstrace:tenants[{USER_TENANTS}]")
    tenant = f"{INSTANCE}-tenant-qa"
    shard = key_shards.shard_of("qa/default")
    assert steps == {
        "create": {
            tenant,
            f"{tenant}-namespace",
            f"{tenant}-token-default",
            f"{tenant}-certificate",
            f"{INSTANCE}-isolation-qa-tenant-deny-ingress",
        },
        # The new credential's shard only, beside the configuration (its routes).
        "update": {
            f"{INSTANCE}-trust-store-keys-{shard}",
            f"{INSTANCE}-trust-store-jwks-{shard}",
            f"{INSTANCE}-gateway-config",
            f"{INSTANCE}-gateway-keys-{shard}",
            f"{INSTANCE}-gateway-rollout",
        },
    }


def test_a_new_tenant_is_served_when_up_returns_and_changes_no_other_token_or_pod(
    instance: Instance, cluster: kube_client.Api, backend: harness.RecordingBackend
) -> None:
    before = instance.tokens
    trust_store_uids = {s: c["metadata"]["uid"] for s, c in trust_store(cluster).items()}
    pods = gateway_pods(cluster)
    with with_tenant(instance, "qa"):
        instance.up()
        assert {t: v for t, v in instance.tokens.items() if t != "qa"} == before
        # Served by every gateway pod once `up` returns, and no pod rolled for it.
        assert forwarded(backend, instance.tokens["qa"]["default"], "qa")
        for tenant, by_name in before.items():
            assert forwarded(backend, by_name["default"], tenant), tenant
        assert gateway_pods(cluster) == pods
        # Updated in place, never replaced: there was no moment without a trust store.
        assert {s: c["metadata"]["uid"] for s, c in trust_store(cluster).items()} == (
            trust_store_uids
        )


def test_removing_a_tenant_revokes_its_token(instance: Instance, cluster: kube_client.Api) -> None:
    with with_tenant(instance, "qa"):
        instance.up()
        qa_token = instance.tokens["qa"]["default"]
        pods = gateway_pods(cluster)
    # Gone from the gateway the moment `up` returns (it waited for every pod): no pod
    # offers a certificate for the host any more (strict SNI).
    with pytest.raises(ssl.SSLError):
        refused(qa_token, "qa")
    assert decision(qa_token, "qa", key_set(cluster)) == data_token.Decision(
        401, data_token.BAD_TOKEN
    )
    assert gateway_pods(cluster) == pods
    namespace = cluster.get("/api/v1/namespaces/qa-tenant")
    assert namespace is None or namespace["status"]["phase"] == "Terminating"


def test_rotation_replaces_the_token_and_its_key(
    instance: Instance, cluster: kube_client.Api, backend: harness.RecordingBackend
) -> None:
    old = instance.tokens["prod"]["default"]
    config = instance.config()
    rotated = [{"name": "prod", "rotation": secrets.token_hex(4)}, *config["opstrace:tenants"][1:]]
    instance.write_config({**config, "opstrace:tenants": rotated})
    instance.up()
    new = instance.tokens["prod"]["default"]
    assert new != old
    assert decision(old, "prod", key_set(cluster)) == data_token.Decision(401, data_token.BAD_TOKEN)
    # And so the gateway decides, as soon as `up` has returned.
    assert forwarded(backend, new, "prod")
    assert refused(old, "prod") == (401, data_token.BAD_TOKEN)


def test_renaming_the_instance_is_refused_at_preview_and_changes_nothing(
    instance: Instance,
) -> None:
    state = instance.state()
    config = instance.config()
    instance.write_config({**config, "opstrace:instanceName": "renamed"})
    result = instance.pulumi("preview", check=False)
    instance.write_config(config)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "instanceName: this stack's instance is 'engine'; it cannot become 'renamed'" in output
    assert "Traceback" not in output
    assert instance.state() == state


def diagnostics(output: str) -> str:
    """The CLI's "Diagnostics:" summary of a command's output: every error and warning."""
    return output.split("\nDiagnostics:\n", 1)[1].split("\nResources:\n", 1)[0].strip("\n")


def test_a_config_typo_fails_with_one_line_and_no_traceback(instance: Instance) -> None:
    instance.pulumi("config", "set", "opstrace:keybits", "4096")
    result = instance.pulumi("preview", check=False)
    instance.pulumi("config", "rm", "opstrace:keybits")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    message = "unknown setting 'opstrace:keybits'; did you mean 'opstrace:keyBits'?"
    # The one line, on the stack: no "Program exited with non-zero exit code" after it
    # (the program bails with the SDK's code), no plugin warning before it.
    assert diagnostics(output) == f"  pulumi:pulumi:Stack (opstrace-{STACK}):\n    error: {message}"
    assert "warning" not in output
    assert "Traceback" not in output


def test_the_preview_refuses_a_placeholder_domain_in_one_line(instance: Instance) -> None:
    # The offline plan only warns of it (tests/test_plan.py); here something would be made.
    config = instance.config()
    instance.write_config({**config, "opstrace:dns": "route53", "aws:region": "eu-central-1"})
    result = instance.pulumi("preview", check=False)
    instance.write_config(config)
    assert result.returncode != 0
    message = (
        "domain: 'example.com' is a placeholder: it is reserved (RFC 2606/6761), so no one owns "
        "it and Route53 refuses to host it: set your own domain with `pulumi config set domain "
        "observability.yourcompany.com`, or set dns to none"
    )
    output = result.stdout + result.stderr
    assert diagnostics(output) == f"  pulumi:pulumi:Stack (opstrace-{STACK}):\n    error: {message}"


@contextlib.contextmanager
def tenants_in_a_file(instance: Instance, extra: list[Any]) -> Iterator[None]:
    """The stack's tenants, and `extra` ones, moved to `tenants.yaml` (`tenantsFile`)."""
    config = instance.config()
    tenants = config.pop("opstrace:tenants")
    tenants_file = instance.workspace.project_dir / "tenants.yaml"
    tenants_file.write_text(yaml.safe_dump([*tenants, *extra]))
    instance.write_config({**config, "opstrace:tenantsFile": tenants_file.name})
    try:
        yield
    finally:
        instance.write_config({**config, "opstrace:tenants": tenants})
        tenants_file.unlink()


def test_the_tenants_moved_to_a_file_are_the_same_tenants(instance: Instance) -> None:
    with tenants_in_a_file(instance, []):
        instance.pulumi("preview", "--expect-no-changes")


def test_a_large_stack_on_a_file_backend_is_advised_to_skip_checkpoints(
    instance: Instance,
) -> None:
    """The program sees the backend and the setting in the environment the CLI gives it."""
    tokens = [f"k{index}" for index in range(state_checkpoints.LARGE_STACK_CREDENTIALS)]
    with tenants_in_a_file(instance, [{"name": "large", "tokens": tokens}]):
        result = instance.pulumi("preview")
        instance.workspace.env[state_checkpoints.SKIP_CHECKPOINTS] = "true"
        try:
            skipping = instance.pulumi("preview")
        finally:
            del instance.workspace.env[state_checkpoints.SKIP_CHECKPOINTS]
    credentials = 1 + USER_TENANTS + state_checkpoints.LARGE_STACK_CREDENTIALS
    advice = f"warning: {credentials} credentials: with the backend file://, each `pulumi up`"
    assert advice in diagnostics(result.stdout)
    assert "credentials: with the backend" not in skipping.stdout


def test_a_missing_signing_key_file_fails_the_preview_with_its_one_line(
    instance: Instance,
) -> None:
    config = instance.config()
    missing = instance.keys_dir / "missing.pem"
    tenant = {"name": "legacy", "signingKeyFile": str(missing)}
    instance.write_config({**config, "opstrace:tenants": [*config["opstrace:tenants"], tenant]})
    result = instance.pulumi("preview", check=False)
    instance.write_config(config)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    token = f"{STACK}-tenant-legacy-token-default"
    # Only the provider's refusal: not the SDK's "Resource monitor has terminated"
    # from the registrations the engine cut short (components.bail).
    assert diagnostics(output) == (
        f"  pulumi-python:dynamic/opstrace:TenantToken ({token}):\n"
        f"    error: pulumi-python:dynamic/opstrace:TenantToken resource '{token}': property "
        f"signing_key_file value {{{missing}}} has a problem: {missing}: cannot read keypair "
        "file: No such file or directory: a new token needs this keypair file; put it there, "
        "or remove signingKeyFile to mint with a new key"
    )
    assert "Traceback" not in output


def test_the_network_policies_close_every_namespace_and_open_the_gateways_listeners(
    instance: Instance, cluster: kube_client.Api
) -> None:
    policies = cluster.list("/apis/networking.k8s.io/v1/networkpolicies")["items"]
    placed = sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies)
    assert placed == [
        ("prod-tenant", "opstrace-deny-ingress"),
        ("staging-tenant", "opstrace-deny-ingress"),
        (SYSTEM_NAMESPACE, "opstrace-deny-ingress"),
        (SYSTEM_NAMESPACE, "opstrace-gateway-listeners"),
    ]


ENFORCEMENT: Final = f"{INSTANCE}-isolation-enforcement"
ENFORCEMENT_TYPE: Final = "pulumi-python:dynamic/opstrace:NetworkPolicyEnforcement"


def preview_without_the_risk_accepted(instance: Instance) -> Any:
    config = instance.config()
    instance.write_config({**config, "opstrace:networkPolicyRiskAccepted": False})
    try:
        return instance.pulumi("preview", check=False)
    finally:
        instance.write_config(config)


def test_without_an_enforcer_the_preview_is_refused_in_one_line_naming_the_fix(
    instance: Instance,
) -> None:
    state = instance.state()
    result = preview_without_the_risk_accepted(instance)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert diagnostics(output) == (
        f"  {ENFORCEMENT_TYPE} ({ENFORCEMENT}):\n"
        f"    error: {ENFORCEMENT_TYPE} resource '{ENFORCEMENT}': property risk_accepted value "
        f"{{false}} has a problem: {enforcers.verdict([]).problem}"
    )
    assert instance.state() == state


@pytest.fixture
def calico(cluster: kube_client.Api) -> Iterator[None]:
    """A DaemonSet where Calico's operator puts its agent, its pods ready on every node."""
    namespace = "calico-system"
    cluster.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    labels = {"k8s-app": "calico-node"}
    collection = f"/apis/apps/v1/namespaces/{namespace}/daemonsets"
    created = cluster.create(
        collection,
        {
            "metadata": {"name": "calico-node"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "calico-node", "image": "stand-in:1"}]},
                },
            },
        },
    )
    try:
        version = created["metadata"]["resourceVersion"]
        for event in cluster.watch(
            collection, resource_version=version, field_selector="metadata.name=calico-node"
        ):
            if int(event.object.get("status", {}).get("numberReady") or 0) > 0:
                break
        else:
            pytest.fail("no calico-node pod became ready before the watch ended")
        yield
    finally:
        cluster.delete(f"/api/v1/namespaces/{namespace}")


def test_a_recognized_enforcer_lets_the_preview_through_without_the_risk_accepted(
    instance: Instance, calico: None
) -> None:
    result = preview_without_the_risk_accepted(instance)
    assert result.returncode == 0, result.stdout + result.stderr


def test_destroy_leaves_an_empty_stack_and_nothing_of_ours_in_the_cluster(
    instance: Instance, cluster: kube_client.Api
) -> None:
    instance.pulumi("destroy", "--yes", "--skip-preview")
    try:
        exported = json.loads(instance.pulumi("stack", "export").stdout)
        assert exported["deployment"].get("resources") in (None, [])
        for namespace in ("system-tenant", "prod-tenant", "staging-tenant"):
            found = cluster.get(f"/api/v1/namespaces/{namespace}")
            assert found is None or found["status"]["phase"] == "Terminating", namespace
        for shard in key_shards.SHARDS:
            name = config_maps.trust_store_name(shard)
            assert cluster.get(f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/configmaps/{name}") is None
    finally:
        # As the module found it, for whichever test runs next.
        wait_until_gone(
            cluster,
            [f"/api/v1/namespaces/{n}" for n in ("system-tenant", "prod-tenant", "staging-tenant")],
        )
        instance.up()


def wait_until_gone(cluster: kube_client.Api, paths: list[str]) -> None:
    """Until each object is deleted (a namespace finishes terminating), watching for it."""
    for path in paths:
        collection, _, name = path.rpartition("/")
        found = cluster.get(path)
        if found is None:
            continue
        version = found["metadata"]["resourceVersion"]
        for event in cluster.watch(
            collection, resource_version=version, field_selector=f"metadata.name={name}"
        ):
            if event.type == "DELETED":
                break
        else:
            pytest.fail(f"{path} was not deleted before the watch ended")
