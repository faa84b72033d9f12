"""A tenant's rules and Alertmanager configuration end to end: the program's dynamic
providers, in the real provider host, upload them through the rendered gateway into a
real Cortex's ruler and Alertmanager, read them back, and delete them; no tenant's token
reaches another tenant's.

provider host --HTTPS CONNECT tunnel (for DNS), the tenant's token--> gateway (HAProxy)
  --X-Scope-OrgID--> Cortex: ruler (rules), Alertmanager (configuration, alerts)

Cortex (built by `make cortex`) stands in for the instance's Mimir (AGPL, not built here)
with the same APIs; the gateway is set up as the program sets it up for `cortexUrl`
(one Cortex, its ruler configuration API at Cortex's `/api/v1/rules`). The Cortex also
loads the program's rendered overrides as its runtime configuration: strictly (an
unknown key fails it), and again after a change, without a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from components.alerting import (
    ALERTMANAGER_CONFIG_PATH,
    AlertmanagerConfigProvider,
    RulesProvider,
)
from opstrace import data_token
from opstrace.config import sizes
from opstrace.config.stack import config_of_stack
from opstrace.gateway import routes
from opstrace.gateway import upstreams as gateway_upstreams
from opstrace.policy import limits, rule_files
from tests.conftest import dev_config
from tests.e2e.backends import NEEDS_CORTEX, Cortex, cortex
from tests.e2e.conftest import Minted
from tests.e2e.harness import (
    DOMAIN,
    INSTANCE,
    NEEDS_HAPROXY,
    TENANTS,
    Gateway,
    Recorder,
    Response,
    bearer,
    connect_tunnel,
    gateway_ca,
    host,
    on_loopback,
    request,
    started_gateway,
    wait_until,
)
from tests.provider_host import ProviderHost, ProviderHostError, ResourceState
from tools.local.cortex import write_runtime_config
from tools.stack_files import PROJECT_DIR, cli_config

pytestmark = [pytest.mark.e2e, NEEDS_HAPROXY, NEEDS_CORTEX]

RULE_FILE = """\
groups:
  - name: availability
    interval: 10s
    rules:
      - alert: TargetDown
        expr: up == 0
        for: 1m
        labels: {severity: page}
        annotations: {summary: "a target is down"}
  - name: node.rules
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
"""
RECEIVERS = """\
route: {receiver: team, group_wait: 30s, group_by: [alertname]}
receivers:
  - name: team
    webhook_configs: [{url: "https://hooks.example.com/alerts"}]
"""
CONFIG_API = routes.RULER_CONFIG_PATH
NAMESPACE = rule_files.RULES_NAMESPACE


@dataclass(frozen=True)
class Deployment:
    cortex: Cortex
    gateway: Gateway
    logs: Recorder
    """Loki's stand-in (Loki is AGPL, not built here): it records what reaches it."""
    tokens: Mapping[str, str]
    rules: ProviderHost
    alertmanager: ProviderHost

    def ask(
        self,
        tenant: str,
        path: str,
        token_of: str | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Response:
        """A request at `tenant`'s metrics endpoint with `token_of`'s token (its own)."""
        sent = {**bearer(self.tokens[token_of or tenant]), **(headers or {})}
        return request(self.gateway.port, host("cortex", tenant), path, sent, **options)


def endpoint(tenant: str, service: str = "cortex") -> str:
    return f"https://{host(service, tenant)}"


def groups(text: str) -> list[str]:
    """The canonical groups of a rule file, as the stack file's parsing makes them."""
    return list(rule_files.rule_groups("rules", yaml.safe_load(text), "test").groups)


def program_overrides(**tenant_limits: Any) -> dict[str, dict[str, Any]]:
    """The metrics overrides the program renders for a stack giving prod `tenant_limits`."""
    stack = dev_config(tenants=[{"name": "prod", "limits": {"metrics": tenant_limits}}])
    return config_of_stack(cli_config(stack), PROJECT_DIR).overrides(limits.METRICS)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, minted: dict[str, Minted]
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("alerting")
    trusted = {m.kid: m.public_pem for m in minted.values()}
    bindings = {m.kid: tenant for tenant, m in minted.items()}
    with ExitStack() as stack:
        backend = stack.enter_context(
            cortex(
                directory / "cortex",
                runtime_overrides=program_overrides(maxGlobalSeriesPerUser=1000),
            )
        )
        logs = stack.enter_context(Recorder("logs").running())
        upstreams = gateway_upstreams.upstreams(sizes.SIZES["small"], backend.url, logs.url)
        settings = gateway_upstreams.gateway_settings(INSTANCE, DOMAIN, TENANTS, upstreams)
        gateway = stack.enter_context(
            started_gateway(
                on_loopback(settings, directory / "gateway"), trusted, bindings=bindings
            )
        )
        tunnel_port, _ = stack.enter_context(connect_tunnel(gateway.port))
        host_process = ProviderHost.start(
            environment={
                "HTTPS_PROXY": f"http://127.0.0.1:{tunnel_port}",
                "NO_PROXY": "",
                "SSL_CERT_FILE": str(gateway_ca().file),
            }
        )
        stack.callback(host_process.close)
        yield Deployment(
            backend,
            gateway,
            logs,
            {tenant: minted[tenant].token for tenant in ("system", *TENANTS)},
            host_process.serving(RulesProvider()),
            host_process.serving(AlertmanagerConfigProvider()),
        )


def upload_rules(
    deployment: Deployment, tenant: str, rule_file: str, service: str = "cortex"
) -> ResourceState:
    inputs = {
        "endpoint": endpoint(tenant, service),
        "api": CONFIG_API if service == "cortex" else routes.LOKI_RULER_CONFIG_PATH,
        "tenant": tenant,
        "token": deployment.tokens[tenant],
        "namespace": NAMESPACE,
        "groups": groups(rule_file),
    }
    checked = deployment.rules.check(inputs)
    assert checked.failures == ()
    return deployment.rules.create(checked.inputs)


def stored_groups(deployment: Deployment, state: ResourceState) -> list[str]:
    read = deployment.rules.read(state.id, state.properties)
    return list(read.properties["groups"])


# Rules -------------------------------------------------------------------------------


def test_uploaded_rules_are_read_back_from_the_tenants_ruler(deployment: Deployment) -> None:
    state = upload_rules(deployment, "prod", RULE_FILE)
    try:
        assert state.id == f"prod/{NAMESPACE}"
        assert stored_groups(deployment, state) == groups(RULE_FILE)
        listing = deployment.ask("prod", f"{CONFIG_API}/{NAMESPACE}")
        assert listing.status == 200, listing
        assert [g["name"] for g in yaml.safe_load(listing.body)[NAMESPACE]] == [
            "availability",
            "node.rules",
        ]
    finally:
        deployment.rules.delete(state.id, state.properties)


def test_the_ruler_evaluates_them_for_the_tenant_and_no_one_else(deployment: Deployment) -> None:
    state = upload_rules(deployment, "prod", RULE_FILE)
    try:

        def loaded(tenant: str) -> list[str]:
            answer = deployment.ask(tenant, "/prometheus/api/v1/rules")
            assert answer.status == 200, answer
            return sorted(g["name"] for g in json.loads(answer.body)["data"]["groups"])

        wait_until(lambda: loaded("prod") == ["availability", "node.rules"], "prod's rules")
        assert loaded("staging") == []
    finally:
        deployment.rules.delete(state.id, state.properties)


def test_another_tenants_token_can_neither_read_nor_change_the_rules(
    deployment: Deployment,
) -> None:
    state = upload_rules(deployment, "prod", RULE_FILE)
    try:
        at_prod = f"{CONFIG_API}/{NAMESPACE}"
        for method, body in (("GET", None), ("POST", b"name: x\nrules: []\n"), ("DELETE", None)):
            refused = deployment.ask("prod", at_prod, "staging", method=method, body=body)
            assert (refused.status, refused.body) == (401, data_token.BAD_TOKEN)
        # At its own endpoint, staging sees its own ruler: nothing of prod's.
        own = deployment.ask("staging", CONFIG_API)
        assert own.status in (200, 404), own
        assert NAMESPACE not in (yaml.safe_load(own.body) or {} if own.status == 200 else {})
        assert stored_groups(deployment, state) == groups(RULE_FILE)
    finally:
        deployment.rules.delete(state.id, state.properties)


def test_an_update_uploads_the_new_groups_and_deletes_the_dropped_ones(
    deployment: Deployment,
) -> None:
    state = upload_rules(deployment, "prod", RULE_FILE)
    changed = RULE_FILE.replace("up == 0", "up < 1").split("  - name: node.rules")[0]
    news = {**state.properties, "groups": groups(changed)}
    try:
        assert deployment.rules.diff(state.id, state.properties, news).changes.name == "SOME"
        outs = deployment.rules.update(state.id, state.properties, news)
        assert stored_groups(deployment, ResourceState(state.id, outs)) == groups(changed)
    finally:
        deployment.rules.delete(state.id, {**state.properties, **news})


def test_delete_leaves_the_ruler_with_no_group_of_the_stack(deployment: Deployment) -> None:
    state = upload_rules(deployment, "prod", RULE_FILE)
    deployment.rules.delete(state.id, state.properties)
    assert stored_groups(deployment, state) == []
    gone = deployment.ask("prod", f"{CONFIG_API}/{NAMESPACE}")
    assert gone.status == 404, gone


def test_log_rules_reach_lokis_ruler_as_the_tenants_and_each_change_is_sent_there(
    deployment: Deployment,
) -> None:
    """Through the tenant's logs endpoint: Loki's configuration API, the tenant from the
    host, its token gone; an update deletes the dropped group, delete the namespace."""
    logs_api = f"{routes.LOKI_RULER_CONFIG_PATH}/{NAMESPACE}"
    deployment.logs.requests.clear()
    state = upload_rules(deployment, "prod", RULE_FILE, service="loki")
    first = groups(RULE_FILE)[:1]
    news = {**state.properties, "groups": first}
    deployment.rules.update(state.id, state.properties, news)
    deployment.rules.delete(state.id, news)
    sent = [(r.method, r.path) for r in deployment.logs.requests]
    assert sent == [
        ("POST", logs_api),
        ("POST", logs_api),
        ("POST", logs_api),
        ("DELETE", f"{logs_api}/node.rules"),
        ("DELETE", logs_api),
    ]
    for recorded in deployment.logs.requests:
        assert recorded.values("X-Scope-OrgID") == ["prod"]
        assert recorded.values("Authorization") == []


# The Alertmanager ----------------------------------------------------------------------


def upload_alertmanager(deployment: Deployment, tenant: str) -> ResourceState:
    config = rule_files.alertmanager_config("c", yaml.safe_load(RECEIVERS), "test").text
    inputs = {
        "endpoint": endpoint(tenant),
        "tenant": tenant,
        "token": deployment.tokens[tenant],
        "config": config,
    }
    checked = deployment.alertmanager.check(inputs)
    assert checked.failures == ()
    return deployment.alertmanager.create(checked.inputs)


def test_an_alertmanager_configuration_is_uploaded_read_back_and_deleted(
    deployment: Deployment,
) -> None:
    state = upload_alertmanager(deployment, "prod")
    read = deployment.alertmanager.read(state.id, state.properties)
    assert read.properties["config"] == rule_files.canonical(yaml.safe_load(RECEIVERS))
    stored = deployment.ask("prod", ALERTMANAGER_CONFIG_PATH)
    assert stored.status == 200, stored
    assert yaml.safe_load(yaml.safe_load(stored.body)["alertmanager_config"]) == yaml.safe_load(
        RECEIVERS
    )
    # Another tenant's token gets nothing of it, and cannot replace or delete it.
    for method in ("GET", "POST", "DELETE"):
        refused = deployment.ask("prod", ALERTMANAGER_CONFIG_PATH, "staging", method=method)
        assert (refused.status, refused.body) == (401, data_token.BAD_TOKEN)
    deployment.alertmanager.delete(state.id, state.properties)
    assert deployment.alertmanager.read(state.id, state.properties).properties["config"] == ""


def test_a_tenant_without_a_configuration_runs_the_default_that_notifies_nobody(
    deployment: Deployment,
) -> None:
    alert = [{"labels": {"alertname": "Probe", "tenant_test": "staging"}}]
    posted = deployment.ask(
        "staging",
        f"{routes.ALERTMANAGER_PREFIX}/api/v2/alerts",
        headers={"Content-Type": "application/json"},
        method="POST",
        body=json.dumps(alert).encode(),
    )
    assert posted.status == 200, posted

    def receivers(tenant: str) -> list[list[str]]:
        answer = deployment.ask(tenant, f"{routes.ALERTMANAGER_PREFIX}/api/v2/alerts")
        assert answer.status == 200, answer
        return [[r["name"] for r in a["receivers"]] for a in json.loads(answer.body)]

    wait_until(lambda: receivers("staging") == [[rule_files.DEFAULT_RECEIVER]], "staging's alert")
    # Alerts are the tenant's own too.
    assert receivers("prod") == []


# Silences ----------------------------------------------------------------------------------

SILENCES = f"{routes.ALERTMANAGER_PREFIX}/api/v2/silences"


def silence_states(deployment: Deployment, tenant: str) -> dict[str, str]:
    """Silence ID -> state (`active`, `expired`, ...) in `tenant`'s Alertmanager."""
    answer = deployment.ask(tenant, SILENCES)
    assert answer.status == 200, answer
    return {s["id"]: s["status"]["state"] for s in json.loads(answer.body)}


def test_a_tenant_creates_lists_and_expires_its_own_silences_only(
    deployment: Deployment,
) -> None:
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "alertname", "value": "Probe", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "e2e",
        "comment": "maintenance",
    }
    created = deployment.ask(
        "staging",
        SILENCES,
        headers={"Content-Type": "application/json"},
        method="POST",
        body=json.dumps(silence).encode(),
    )
    assert created.status == 200, created
    silence_id = json.loads(created.body)["silenceID"]
    one = f"{routes.ALERTMANAGER_PREFIX}/api/v2/silence/{silence_id}"

    assert silence_states(deployment, "staging")[silence_id] == "active"
    assert silence_id not in silence_states(deployment, "prod")
    # prod's own token, at prod's endpoint, reaches prod's Alertmanager, which has no such
    # silence; at staging's endpoint it is refused before any backend.
    assert deployment.ask("prod", one, method="DELETE").status != 200
    assert (deployment.ask("staging", one, "prod", method="DELETE").status) == 401
    assert silence_states(deployment, "staging")[silence_id] == "active"

    expired = deployment.ask("staging", one, method="DELETE")
    assert expired.status == 200, expired
    assert silence_states(deployment, "staging")[silence_id] == "expired"


# Limits ------------------------------------------------------------------------------------


def cortex_overrides(deployment: Deployment) -> dict[str, Any]:
    status, body = deployment.cortex.get("/runtime_config", org_id=None)
    assert status == 200, body
    return dict((yaml.safe_load(body) or {}).get("overrides") or {})


def test_cortex_loads_the_rendered_overrides_and_reloads_a_change_without_a_restart(
    deployment: Deployment,
) -> None:
    assert cortex_overrides(deployment)["prod"]["max_global_series_per_user"] == 1000
    directory = deployment.cortex.log.parent
    write_runtime_config(directory, program_overrides(maxGlobalSeriesPerUser=2000, ingestionRate=5))
    wait_until(
        lambda: (
            cortex_overrides(deployment).get("prod", {}).get("max_global_series_per_user") == 2000
        ),
        "Cortex to reload its runtime configuration",
    )
    prod = cortex_overrides(deployment)["prod"]
    assert prod["ingestion_rate"] == 5
    assert "staging" not in cortex_overrides(deployment)


def test_no_route_of_the_rules_apis_reaches_an_admin_page_of_cortex(
    deployment: Deployment,
) -> None:
    for path in ("/ruler/rule_groups", "/multitenant_alertmanager/configs", "/runtime_config"):
        refused = deployment.ask("prod", path)
        assert (refused.status, refused.body) == (404, routes.ROUTE_NOT_FOUND)


def test_a_delete_at_an_endpoint_that_is_gone_says_so_at_once(deployment: Deployment) -> None:
    # As after the tenant's removal: the gateway has no certificate for its host any more.
    state = upload_rules(deployment, "prod", RULE_FILE)
    gone = {**state.properties, "endpoint": endpoint("removed"), "tenant": "removed"}
    try:
        with pytest.raises(ProviderHostError) as raised:
            deployment.rules.delete(state.id, gone)
        assert (
            "tenant 'removed': DELETE https://cortex.removed.acme.example.com"
            f"{CONFIG_API}/{NAMESPACE}: TLS refused: "
        ) in raised.value.details
        assert "the tenant's endpoint is gone (the tenant was removed in this update)" in (
            raised.value.details
        )
    finally:
        deployment.rules.delete(state.id, state.properties)
