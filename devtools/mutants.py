"""The hand-written mutants: security bugs mutmut cannot plant, each caught by a test.

mutmut (`make mutants`, pyproject.toml `[tool.mutmut]`) mutates the pure security rules
themselves, so its mutants follow every refactor. What it cannot reach is here, a short
list: HAProxy's rules (text the renderer writes), secrets and private keys in a
resource's outputs, the NetworkPolicies and IAM documents as a whole, the sidecar's
coherence, multi-tenancy of the backends. Plant them one at a time in a copy of the
project and check that tests catch each:

    python -m devtools.mutants            # every mutant; exit 1 if one survives
    python -m devtools.mutants --list     # what would be planted
    python -m devtools.mutants --only tenant_check_deleted

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


HAPROXY = "opstrace/gateway/haproxy.py"
SYNC = "sidecar/sync.py"
SYNC_TESTS = "tests/test_gateway_sync.py"
E2E = "tests/e2e/test_gateway_haproxy.py"
E2E_ROUTES = "tests/e2e/test_gateway_routes.py"
E2E_TLS = "tests/e2e/test_gateway_tls.py"
E2E_RELOAD = "tests/e2e/test_gateway_reload.py"
E2E_SCOPES = "tests/e2e/test_gateway_scopes.py"
E2E_RATES = "tests/e2e/test_gateway_rate_limits.py"
E2E_SOURCES = "tests/e2e/test_gateway_sources.py"
E2E_GRAFANA_HOSTS = "tests/e2e/test_gateway_grafana_hosts.py"
PROGRAM_TESTS = "tests/test_program.py"
PLATFORM_TESTS = "tests/test_platform.py"
CHART_VALUES = "opstrace/chart_values.py"
CHART_TESTS = "tests/test_chart_values.py"
IAM = "opstrace/aws/iam.py"
NETWORK_POLICIES = "opstrace/network_policies.py"
ISOLATION_TESTS = "tests/test_isolation.py"

MUTANTS: Final = (
    Mutant(
        "placeholder_domain_accepted_by_preview_and_up",
        "opstrace/config/stack.py",
        "    if not plan and (problem := placeholder_domain_problem(parsed)):\n",
        "    if plan and (problem := placeholder_domain_problem(parsed)):\n",
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "capacity_not_checked",
        "opstrace/config/stack.py",
        "    if problem := capacity_problem(parsed):\n",
        "    if problem := None:\n",
        ("tests/test_broken_stacks.py",),
    ),
    Mutant(
        "tenant_check_deleted",
        HAPROXY,
        "    {wrong_tenant} unless verified_before || tenant_matches\n",
        "",
        (E2E,),
    ),
    Mutant(
        "scope_check_deleted",
        HAPROXY,
        ' lf-string "{body}" if scope_claimed !scope_held\n',
        ' lf-string "{body}" if scope_claimed !scope_claimed\n',
        (E2E_SCOPES,),
    ),
    Mutant(
        "rate_limit_never_counted",
        HAPROXY,
        "    http-request track-sc1 {_KID} table credential_rates if rate_limited\n",
        "",
        (E2E_RATES,),
    ),
    Mutant(
        "source_check_deleted",
        HAPROXY,
        "    {source_refused} if source_listed !source_allowed !internal_listener\n",
        "",
        (E2E_SOURCES,),
    ),
    Mutant(
        "grafana_host_forwarded_without_the_allowlist",
        HAPROXY,
        "    {source_refused} if source_listed !source_allowed !internal_listener\n",
        "    {source_refused} if source_listed !source_allowed !internal_listener !grafana_host\n",
        (E2E_GRAFANA_HOSTS,),
    ),
    Mutant(
        "nested_networks_not_closed",
        "opstrace/gateway/sources.py",
        "        for prefix in range(candidate.prefixlen - 1, -1, -1):\n",
        "        for prefix in range(0):\n",
        ("tests/test_gateway_sources.py", E2E_SOURCES),
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
        "opstrace/gateway/maps.py",
        'f"{method}:{route_key(rule.service, path)} {rule.backend}\\n"',
        'f"{method}:{route_key(rule.service, path)} {rule.backend}\\n"\n'
        '        + f"DELETE:{route_key(rule.service, path)} {rule.backend}\\n"',
        (E2E_ROUTES,),
    ),
    Mutant(
        "admin_status_page_allowlisted",
        "opstrace/gateway/routes.py",
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
        "opstrace/data_token.py",
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
        '    if not checksum or config.get(PARTS_KEY, "").splitlines() != parts:\n',
        "    if not checksum:\n",
        (SYNC_TESTS,),
    ),
    Mutant(
        "unchecked_join_loaded",
        SYNC,
        "    if config_checksum(files) != checksum:\n",
        "    if not files:\n",
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
        '    "rotation",\n    "signing_key_file",\n',
        '    "signing_key_file",\n',
        ("tests/test_token_provider.py",),
    ),
    Mutant(
        "keypair_file_world_readable",
        "opstrace/keys.py",
        "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)",
        "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
        ("tests/test_keys.py",),
    ),
    Mutant(
        "trusted_keys_left_out_of_the_trust_store",
        "opstrace/config/schema.py",
        "            for position, key in enumerate(self.trusted_keys)\n",
        "            for position, key in enumerate(self.trusted_keys[:0])\n",
        (PROGRAM_TESTS,),
    ),
    Mutant(
        "reference_accepts_an_unanchored_tenant_prefix",
        "opstrace/data_token.py",
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
        "collector_gets_the_last_tenants_token",
        "components/instance.py",
        "            token=tenants[names.SYSTEM_TENANT].tokens.apply(\n",
        "            token=list(tenants.values())[-1].tokens.apply(\n",
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
        "mimir_single_tenant",
        CHART_VALUES,
        '                "multitenancy_enabled": True,\n',
        '                "multitenancy_enabled": False,\n',
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
    parser = argparse.ArgumentParser(prog="python -m devtools.mutants", description=__doc__)
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
