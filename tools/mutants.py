"""Plant known bugs one at a time in a copy of the project and check that tests catch each.

    python -m tools.mutants            # every mutant; exit 1 if one survives
    python -m tools.mutants --list     # what would be planted
    python -m tools.mutants --only tenant_check_deleted

Each mutant replaces one exact piece of code (it must occur exactly once: a test keeps
the list in step with the code) and runs the tests that should notice, in a temporary
copy of the project (its engine, local cluster and venv those of this checkout: run
`make engine cluster-up` first), with `OPSTRACE_REQUIRE_TOOLS=1` so that a missing tool cannot
pass for a caught bug. The unmutated copy must pass the same tests first. Not part of
`.ci/run`: a full run takes a few minutes (it prints its time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
SHARED: Final = (".engine", ".venv")
"""Linked into the copy, not copied: the engine's binaries and the local cluster, whose
state names this checkout, and the environment the engine runs the program in (the
engine and gateway pod tests need both)."""
COPY_IGNORED: Final = (".git", ".pulumi-state", "__pycache__", "*_cache", *SHARED)


@dataclass(frozen=True)
class Mutant:
    """One planted bug: `old` becomes `new` in `path`; `tests` must then fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


HAPROXY = "components/gateway/haproxy.py"
MANIFESTS = "components/gateway/manifests.py"
SYNC = "components/gateway/sync.py"
SYNC_TESTS = "tests/test_gateway_sync.py"
E2E = "tests/e2e/test_gateway_haproxy.py"
E2E_ROUTES = "tests/e2e/test_gateway_routes.py"
E2E_TLS = "tests/e2e/test_gateway_tls.py"
E2E_RELOAD = "tests/e2e/test_gateway_reload.py"
CONFIG = "components/rules/config.py"
TENANT_CONFIG = "components/rules/tenant_config.py"
LOCAL_FILES = "components/rules/local_files.py"
PROGRAM_TESTS = "tests/test_program.py"
PLATFORM = "components/rules/platform.py"
PLATFORM_TESTS = "tests/test_platform.py"
CONFIG_TESTS = "tests/test_config.py"
E2E_PROBES = "tests/e2e/test_gateway_probes.py"
CHART_VALUES = "components/rules/chart_values.py"
CHART_TESTS = "tests/test_chart_values.py"
IAM = "components/rules/iam.py"
IAM_UPSTREAM_TESTS = "tests/test_iam_upstream.py"
NETWORK_POLICIES = "components/rules/network_policies.py"
ISOLATION_TESTS = "tests/test_isolation.py"

MUTANTS: Final = (
    Mutant(
        "token_inputs_depend_on_tenant_position",
        TENANT_CONFIG,
        "        specs.append(spec)\n",
        "        specs.append(TenantSpec(spec.name, tuple(TokenSpec(t.name, t.rotation + "
        "str(index), t.export_keys_to, t.signing_key_file) for t in spec.tokens)))\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "trusted_keys_type_error_hides_the_value",
        CONFIG,
        'f"trustedKeys: expected a list of PEM texts or file paths, got {raw!r}"',
        'f"trustedKeys: expected a list of PEM texts or file paths"',
        ("tests/test_config.py",),
    ),
    Mutant(
        "endpoint_error_loses_the_rule",
        CONFIG,
        '"use a shorter tenant, instance or domain name"',
        '"try again"',
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "loki_url_errors_labelled_cortex_url",
        CONFIG,
        '    loki_url = _upstream(values, "lokiUrl")\n',
        '    loki_url = _upstream({**values, "cortexUrl": values["lokiUrl"]}, "cortexUrl")\n',
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "unknown_settings_ignored",
        CONFIG,
        "            raise ConfigError(_unknown_setting_message(name))\n",
        "            continue\n",
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "paths_not_normalized",
        LOCAL_FILES,
        "    return posixpath.normpath(value)\n",
        "    return value\n",
        ("tests/test_config.py",),
    ),
    Mutant(
        "system_tenant_missing",
        TENANT_CONFIG,
        "    specs = [system]\n",
        "    specs = []\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "capacity_not_checked",
        "components/rules/stack.py",
        "    if problem := capacity_problem(parsed):\n",
        "    if problem := None:\n",
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "refusal_content_type_changed",
        HAPROXY,
        '_TEXT: Final = f"content-type {_quoted(REFUSAL_CONTENT_TYPE)}"',
        """_TEXT: Final = 'content-type "text/html"'""",
        (E2E,),
    ),
    Mutant(
        "tenant_check_deleted",
        HAPROXY,
        "    {wrong_tenant} unless verified_before || tenant_matches\n",
        "",
        (E2E,),
    ),
    Mutant(
        "authorization_forwarded",
        HAPROXY,
        "    http-request del-header authorization\n",
        "",
        (E2E,),
    ),
    Mutant(
        "client_scope_header_kept",
        HAPROXY,
        "    http-request set-header x-scope-orgid %[var(txn.tenant)]\n",
        "    http-request add-header x-scope-orgid %[var(txn.tenant)]\n",
        (E2E,),
    ),
    Mutant(
        "expiry_not_enforced_by_the_gateway",
        HAPROXY,
        '            "!unexpired",\n',
        "",
        (E2E,),
    ),
    Mutant(
        "audience_not_enforced_by_the_gateway",
        HAPROXY,
        '                    "!audience_valid",\n',
        "",
        (E2E,),
    ),
    Mutant(
        "unknown_paths_reach_the_backend",
        HAPROXY,
        "    {no_route} unless {{ var(txn.allow) -m found }}\n",
        "",
        (E2E_ROUTES,),
    ),
    Mutant(
        "any_method_reaches_the_backend",
        "components/gateway/maps.py",
        'f"{method}:{route_key(rule.service, path)} {rule.backend}\\n"',
        'f"{method}:{route_key(rule.service, path)} {rule.backend}\\n"\n'
        '        + f"DELETE:{route_key(rule.service, path)} {rule.backend}\\n"',
        (E2E_ROUTES,),
    ),
    Mutant(
        "admin_status_page_allowlisted",
        "components/gateway/routes.py",
        '        "/api/v1/status/buildinfo",\n',
        '        "/api/v1/status/buildinfo",\n        "/api/v1/status/config",\n',
        (E2E_ROUTES,),
    ),
    Mutant(
        "key_binding_ignored_by_the_gateway",
        HAPROXY,
        "    {verify} if key_known !key_bound || key_known key_bound_here\n",
        "    {verify} if key_known\n",
        (E2E,),
    ),
    Mutant(
        "key_binding_ignored_by_the_reference",
        "components/rules/data_token.py",
        "        if bindings.get(kid, endpoint_tenant) != endpoint_tenant:\n",
        "        if False:\n",
        ("tests/test_data_token.py",),
    ),
    Mutant(
        "plain_http_forwarded",
        HAPROXY,
        "    http-request return status {PLAIN_HTTP_STATUS} {_TEXT} string "
        "{_quoted(PLAIN_HTTP_BODY)}\n",
        "    default_backend cortex_push\n",
        (E2E_TLS,),
    ),
    Mutant(
        "plain_http_redirected",
        HAPROXY,
        "    http-request return status {PLAIN_HTTP_STATUS} {_TEXT} string "
        "{_quoted(PLAIN_HTTP_BODY)}\n",
        "    http-request redirect scheme https\n",
        (E2E_TLS,),
    ),
    Mutant(
        "certificate_for_any_name",
        HAPROXY,
        'f"alpn {ALPN} strict-sni"',
        'f"alpn {ALPN}"',
        (E2E_TLS,),
    ),
    Mutant(
        "cbc_ciphers_allowed",
        HAPROXY,
        "    ssl-default-bind-ciphers {_TLS_CIPHERS}\n",
        "    ssl-default-bind-ciphers DEFAULT\n",
        (E2E_TLS,),
    ),
    Mutant(
        "token_cached_before_verification",
        HAPROXY,
        "    http-request set-var(txn.verified_before) {_CACHE_KEY},in_table(verified_tokens)\n",
        "    http-request set-var(txn.verified_before) {_CACHE_KEY},in_table(verified_tokens)\n"
        "    http-request track-sc0 {_CACHE_KEY} table verified_tokens\n",
        (E2E,),
    ),
    Mutant(
        "cache_key_without_the_host",
        HAPROXY,
        '_CACHE_KEY: Final = f"{_TOKEN},concat(,txn.host,),sha2(256)"',
        '_CACHE_KEY: Final = f"{_TOKEN},sha2(256)"',
        (E2E,),
    ),
    Mutant(
        "cached_token_skips_expiry",
        HAPROXY,
        '            "!unexpired",\n',
        '            "!verified_before !unexpired",\n',
        (E2E,),
    ),
    Mutant(
        "refused_files_left_current",
        SYNC,
        "                point_current(self.options.files, previous)\n",
        "                pass\n",
        (E2E_RELOAD,),
    ),
    Mutant(
        "half_a_render_loaded",
        SYNC,
        '    if len(checksums) != 1 or "" in checksums:\n',
        '    if "" in checksums:\n',
        (SYNC_TESTS,),
    ),
    Mutant(
        "private_key_in_an_output",
        "components/tokens.py",
        '        expires_at=claims["exp"],\n',
        '        expires_at=claims["exp"],\n'
        "        private_key=keys.private_key_pem(private_key).decode(),\n",
        (PROGRAM_TESTS, "tests/test_token_provider_host.py"),
    ),
    Mutant(
        "token_not_secret",
        "components/tokens.py",
        'additional_secret_outputs=["token"]',
        "additional_secret_outputs=[]",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "rotation_does_not_replace",
        "components/tokens.py",
        '    "rotation",\n    "signing_key_file",\n)',
        '    "signing_key_file",\n)',
        ("tests/test_token_provider.py",),
    ),
    Mutant(
        "expiry_never_reported",
        "components/tenant.py",
        "        report(notice.message, resource=credential)\n",
        "        pass\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "key_id_without_strip",
        "components/rules/keys.py",
        'hashlib.sha1(public_key_pem.strip().encode("utf-8"), usedforsecurity=False)',
        'hashlib.sha1(public_key_pem.encode("utf-8"), usedforsecurity=False)',
        ("tests/test_keys.py",),
    ),
    Mutant(
        "keypair_file_world_readable",
        "components/rules/keys.py",
        "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)",
        "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
        ("tests/test_keys.py",),
    ),
    Mutant(
        "trusted_keys_left_out_of_the_trust_store",
        "components/instance.py",
        "            *(BoundKey(key.pem, key.tenant) for key in config.trusted_keys),\n",
        "",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "reference_accepts_an_unanchored_tenant_prefix",
        "components/rules/data_token.py",
        'not sub.startswith("tenant-")',
        'not "tenant-" in sub',
        ("tests/test_data_token.py",),
    ),
    Mutant(
        "instance_rename_allowed",
        "components/name_lock.py",
        "    if old is None or old == new:\n",
        "    if True:\n",
        ("tests/test_name_lock.py",),
    ),
    Mutant(
        "config_maps_replaced_not_updated",
        "__main__.py",
        "        enable_config_map_mutable=True,\n",
        "",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "metrics_queries_sent_to_the_distributor",
        "components/gateway/upstreams.py",
        "        cortex_query_url=to.cortex_query,\n",
        "        cortex_query_url=to.cortex_push,\n",
        ("tests/e2e/test_gateway_cortex.py",),
    ),
    Mutant(
        "gateway_settings_lose_the_metrics_query_prefix",
        "components/gateway/upstreams.py",
        "        metrics_query_prefix=to.metrics_query_prefix,\n",
        "",
        ("tests/e2e/test_gateway_cortex.py",),
    ),
    Mutant(
        "gateway_refuses_a_token_in_its_nbf_second",
        HAPROXY,
        "    acl nbf_future {_PAYLOAD},json_query('$.nbf','int'),sub(txn.now) -m int gt 0\n",
        "    acl nbf_future {_PAYLOAD},json_query('$.nbf','int'),sub(txn.now) -m int ge 0\n",
        (E2E,),
    ),
    Mutant(
        "vpc_cidr_private_by_pythons_is_private",
        PLATFORM,
        "any(network.subnet_of(b) for b in PRIVATE_NETWORKS)",
        "network.is_private",
        (CONFIG_TESTS,),
    ),
    Mutant(
        "node_count_of_100_refused",
        PLATFORM,
        "    if not 2 <= node_count <= 100:\n",
        "    if not 2 <= node_count < 100:\n",
        (CONFIG_TESTS,),
    ),
    Mutant(
        "retention_of_3650_days_refused",
        PLATFORM,
        "    if not match or not 1 <= int(match.group(1)) <= RETENTION_DAYS_MAX:\n",
        "    if not match or not 1 <= int(match.group(1)) < RETENTION_DAYS_MAX:\n",
        (CONFIG_TESTS,),
    ),
    Mutant(
        "system_tenant_endpoints_unchecked",
        CONFIG,
        "    if problem := _endpoint_problem(names.SYSTEM_TENANT, instance, domain):\n",
        "    if problem := None:\n",
        (CONFIG_TESTS,),
    ),
    Mutant(
        "token_lifetime_of_100_years_refused",
        CONFIG,
        '    if seconds > TOKEN_LIFETIME_YEARS_MAX * _UNIT_SECONDS["y"]:\n',
        '    if seconds >= TOKEN_LIFETIME_YEARS_MAX * _UNIT_SECONDS["y"]:\n',
        (CONFIG_TESTS,),
    ),
    Mutant(
        "gateway_image_with_a_trailing_newline",
        "components/gateway/settings.py",
        "    match = _IMAGE_RE.fullmatch(image)\n",
        "    match = _IMAGE_RE.match(image)\n",
        (CONFIG_TESTS,),
    ),
    Mutant(
        "collector_gets_the_last_tenants_token",
        "components/instance.py",
        "                    token=tenants[names.SYSTEM_TENANT].tokens.apply(\n",
        "                    token=tenants[spec.name].tokens.apply(\n",
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "delegation_as_short_lived_as_a_record",
        "components/dns.py",
        "                ttl=DELEGATION_TTL,\n",
        "                ttl=RECORD_TTL,\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "cname_record_cached_for_an_hour",
        "components/dns.py",
        "                        ttl=RECORD_TTL,\n",
        "                        ttl=DELEGATION_TTL,\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "alias_record_with_a_ttl",
        "components/dns.py",
        '                    type="A",\n',
        '                    type="A",\n                    ttl=RECORD_TTL,\n',
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "nat_gateway_before_the_internet_gateway",
        "components/network.py",
        "                        opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),\n",
        "                        opts=child,\n",
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "every_zone_through_the_first_nat_gateway",
        "components/network.py",
        'aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)',
        'aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[0].id)',
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "sidecar_status_port_opened",
        NETWORK_POLICIES,
        "GATEWAY_PORTS: Final = (TLS_PORT, PLAIN_PORT, HEALTH_PORT)",
        "GATEWAY_PORTS: Final = (TLS_PORT, PLAIN_PORT, HEALTH_PORT, 8082)",
        (ISOLATION_TESTS,),
    ),
    Mutant(
        "backends_open_to_every_namespace",
        NETWORK_POLICIES,
        '"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: layout.gateway_namespace}},',
        '"namespaceSelector": {},',
        (ISOLATION_TESTS,),
    ),
    Mutant(
        "tenant_namespaces_left_open",
        NETWORK_POLICIES,
        "policies += [_deny_ingress(namespace) for namespace in layout.tenant_namespaces]",
        "policies += []",
        (ISOLATION_TESTS,),
    ),
    Mutant(
        "nodes_before_their_routes",
        "components/cluster.py",
        "depends_on=[*network.routing, vpc_cni]",
        "depends_on=[vpc_cni]",
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "role_users_before_its_policies",
        "components/irsa.py",
        "    granted = pulumi.Output.all(role.arn, *(grant.id for grant in grants)).apply(\n",
        "    granted = pulumi.Output.all(role.arn).apply(\n",
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "probes_on_the_plain_http_port",
        MANIFESTS,
        '    haproxy_probe = {"httpGet": {"path": HEALTH_PATH, "port": "health"}}\n',
        '    haproxy_probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}\n',
        (E2E_PROBES,),
    ),
    Mutant(
        "nlb_health_check_on_the_tls_port",
        MANIFESTS,
        '    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(HEALTH_PORT),\n',
        '    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(TLS_PORT),\n',
        (E2E_PROBES,),
    ),
    Mutant(
        "mimir_ingesters_refuse_pushes",
        CHART_VALUES,
        '    "ingester": {"push_grpc_method_enabled": True},\n',
        '    "ingester": {"push_grpc_method_enabled": False},\n',
        (CHART_TESTS,),
    ),
    Mutant(
        "mimir_single_tenant",
        CHART_VALUES,
        '                "multitenancy_enabled": True,\n',
        '                "multitenancy_enabled": False,\n',
        (CHART_TESTS,),
    ),
    Mutant(
        "mimir_ring_ignores_zones",
        CHART_VALUES,
        '"zone_awareness_enabled": metrics.zone_aware,',
        '"zone_awareness_enabled": False,',
        (CHART_TESTS,),
    ),
    Mutant(
        "mimir_disks_outlive_destroy",
        CHART_VALUES,
        '        "whenDeleted": "Delete",\n',
        '        "whenDeleted": "Retain",\n',
        (CHART_TESTS,),
    ),
    Mutant(
        "loki_single_tenant",
        CHART_VALUES,
        '            "auth_enabled": True,\n',
        '            "auth_enabled": False,\n',
        (CHART_TESTS,),
    ),
    Mutant(
        "loki_retention_not_enforced",
        CHART_VALUES,
        '"compactor": {"retention_enabled": True, "delete_request_store": "s3"},',
        '"compactor": {"retention_enabled": False, "delete_request_store": "s3"},',
        (CHART_TESTS,),
    ),
    Mutant(
        "tls_only_policy_spares_the_objects",
        IAM,
        '                "Resource": [bucket_arn, f"{bucket_arn}/*"],\n',
        '                "Resource": [bucket_arn],\n',
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "backend_role_reaches_every_bucket",
        IAM,
        '                "Resource": f"{bucket_arn}/*",\n',
        '                "Resource": "arn:aws:s3:::*/*",\n',
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "irsa_trust_without_audience",
        IAM,
        '                        f"{issuer_host}:aud": "sts.amazonaws.com",\n',
        "",
        (PLATFORM_TESTS,),
    ),
    Mutant(
        "controller_opens_only_tagged_security_groups",
        IAM,
        '"Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],\n'
        '                "Resource": "*",\n',
        '"Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],\n'
        '                "Resource": "*",\n'
        '                "Condition": tagged,\n',
        (IAM_UPSTREAM_TESTS,),
    ),
    Mutant(
        "controller_tags_only_tagged_listeners",
        IAM,
        '                "Resource": "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",\n',
        '                "Resource": "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",\n'
        '                "Condition": tagged,\n',
        (IAM_UPSTREAM_TESTS,),
    ),
    Mutant(
        "plan_zones_from_another_region",
        "tools/offline.py",
        '        "names": [f"{region}{zone}" for zone in "abc"],\n',
        '        "names": [f"eu-central-1{zone}" for zone in "abc"],\n',
        ("tests/test_plan.py",),
    ),
)


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    caught_by: str | None
    """The failing test that noticed the bug; None if every test passed."""
    seconds: float


def stale_mutants(root: Path = PROJECT_DIR) -> list[str]:
    """Mutants whose code no longer occurs exactly once: the list must follow the code."""
    return [
        f"{m.name}: {m.path} holds its code {(root / m.path).read_text().count(m.old)} times"
        for m in MUTANTS
        if (root / m.path).read_text().count(m.old) != 1
    ]


def run_tests(copy: Path, tests: Sequence[str]) -> str | None:
    """None if `tests` pass in `copy`, else the first test that failed."""
    env = {**os.environ, "OPSTRACE_REQUIRE_TOOLS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *tests], cwd=copy, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return failed[0] if failed else result.stdout.strip().splitlines()[-1]


def make_copy(directory: Path, root: Path = PROJECT_DIR) -> Path:
    """The project copied into `directory`, its shared parts linked to `root`'s."""
    copy = directory / "project"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    for name in SHARED:
        if (root / name).exists():
            (copy / name).symlink_to(root / name, target_is_directory=True)
    return copy


def plant(copy: Path, mutant: Mutant) -> Outcome:
    """Apply one mutant in `copy`, run its tests, and restore the file."""
    path = copy / mutant.path
    original = path.read_text()
    path.write_text(original.replace(mutant.old, mutant.new, 1))
    start = time.perf_counter()
    try:
        caught_by = run_tests(copy, mutant.tests)
    finally:
        path.write_text(original)
    return Outcome(mutant, caught_by, time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutants", description=__doc__)
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", action="append", default=[], help="run only this mutant")
    options = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not options.only or m.name in options.only]
    if options.list:
        for mutant in chosen:
            print(f"{mutant.name:<48} {mutant.path}  ->  {' '.join(mutant.tests)}")
        return 0
    if stale := stale_mutants():
        print("error: stale mutants:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutants-") as directory:
        copy = make_copy(Path(directory))
        all_tests = sorted({test for mutant in chosen for test in mutant.tests})
        if failed := run_tests(copy, all_tests):
            print(f"error: the unmutated copy fails its tests: {failed}", file=sys.stderr)
            return 2
        outcomes = []
        for mutant in chosen:
            outcome = plant(copy, mutant)
            outcomes.append(outcome)
            verdict = "caught" if outcome.caught_by else "MISSED"
            print(f"{verdict:<7} {mutant.name:<48} {outcome.seconds:5.1f} s", flush=True)
            if outcome.caught_by:
                print(f"        by {outcome.caught_by[:150]}", flush=True)
    missed = [o.mutant.name for o in outcomes if not o.caught_by]
    total = time.perf_counter() - start
    print(f"\n{len(outcomes) - len(missed)} of {len(outcomes)} caught in {total:.0f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
