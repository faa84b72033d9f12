"""The local instance's parts that need no cluster: its shipped stack, what `make up` and
`make down` run, the printed curl lines, the no-Loki answer. The whole, from a clean clone
through the real engine: tests/engine/test_quickstart.py; the push body against a real
Cortex: tests/e2e/test_local_push.py."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from opstrace.config.stack import config_of_stack
from tools import cluster
from tools.cluster.state import ROOT
from tools.local import curl, home, no_loki, up_down
from tools.ports import free_port
from tools.stack_files import PROJECT_DIR, cli_config, stack_config

ACCESS = curl.Access(
    gateway=("127.0.0.1", 8443),
    ca_file=Path("/x/ca.crt"),
    remote_write_script=Path("/x/remote_write.py"),
    token_files={t: Path(f"/x/tokens/{t}/default") for t in ("prod", "staging", "system")},
)
ENDPOINTS = {
    t: {"cortex": f"https://cortex.{t}.local.l", "loki": f"https://loki.{t}.local.l"}
    for t in ("prod", "staging", "system")
}


def make(*args: str) -> str:
    """What `make <args>` would run (`make -n`), at the top level as typed."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_up_without_a_stack_runs_the_local_instance_and_with_one_the_aws_instance() -> None:
    assert make("up").splitlines()[-1] == ".venv/bin/python -m tools.local up"
    assert ".venv/bin/python -m tools.preflight --stack dev" in make("up", "STACK=dev")


def test_make_down_removes_the_local_instance_and_refuses_an_aws_stack() -> None:
    assert make("down").splitlines()[-1] == ".venv/bin/python -m tools.local down"
    assert "pulumi destroy --stack dev" in make("down", "STACK=dev")


def test_the_local_stack_names_the_local_cluster_and_needs_no_aws() -> None:
    config = config_of_stack(cli_config(stack_config(home.STACK)), PROJECT_DIR)
    assert PROJECT_DIR / config.kubeconfig == cluster.KUBECONFIG
    assert config.platform.certificate_issuer == cluster.TEST_ISSUER
    assert not config.needs_aws
    assert config.cortex_url.startswith("http://127.0.0.1:")
    assert config.loki_url.startswith("http://127.0.0.1:")


def checks(tenants: list[str]) -> list[tuple[str, int, str]]:
    """(comment, status, command) of every check `report` prints."""
    lines = curl.report(ACCESS, tenants, ENDPOINTS).splitlines()
    found = []
    for comment, command in itertools.pairwise(lines):
        if match := re.fullmatch(r"  # (.*): expect (\d{3})", comment):
            found.append((match[1], int(match[2]), command.strip()))
    return found


def test_each_tenant_gets_a_push_a_query_a_refusal_and_the_logs_answer() -> None:
    assert [(what, status) for what, status, _ in checks(["prod", "staging"])] == [
        ("push a sample with prod's token", 200),
        ("query it back with prod's token (its value: the push's time)", 200),
        ("prod's token at staging's endpoint: refused", 401),
        ("prod's logs endpoint: no Loki runs locally", 503),
        ("push a sample with staging's token", 200),
        ("query it back with staging's token (its value: the push's time)", 200),
        ("staging's token at prod's endpoint: refused", 401),
        ("staging's logs endpoint: no Loki runs locally", 503),
    ]


def test_the_refusal_line_sends_the_tenants_token_to_the_other_tenants_endpoint() -> None:
    command = checks(["prod", "staging"])[2][2]
    assert '--oauth2-bearer "$(cat /x/tokens/prod/default)"' in command
    assert command.endswith(f"https://cortex.staging.local.l{curl.QUERY_PATH}'")


def test_a_single_tenants_refusal_line_goes_to_the_system_tenant() -> None:
    assert checks(["prod"])[2][0] == "prod's token at system's endpoint: refused"


def test_the_push_line_pipes_a_fresh_body_into_curl_through_the_local_gateway() -> None:
    command = checks(["prod"])[0][2]
    script, push = command.split(" | ")
    assert shlex.split(script) == ["python3", "/x/remote_write.py"]
    words = shlex.split(push)
    assert words[words.index("--connect-to") + 1] == "::127.0.0.1:8443"
    assert words[words.index("--cacert") + 1] == "/x/ca.crt"
    assert words[-1] == "https://cortex.prod.local.l/api/v1/push"
    assert "--data-binary" in words
    assert "Content-Encoding: snappy" in words


def test_no_loki_answers_every_request_with_503_and_says_why() -> None:
    server = no_loki.server(free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for data in (None, b"pushed"):
            url = f"http://127.0.0.1:{server.server_port}/loki/api/v1/push"
            with pytest.raises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5)
            assert (raised.value.code, raised.value.read().decode()) == (503, no_loki.MESSAGE)
    finally:
        server.shutdown()
        server.server_close()


def test_tokens_are_written_for_the_owner_only_and_a_removed_tenants_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(home, "TOKENS", tmp_path / "tokens")
    monkeypatch.setattr(up_down, "TOKENS", tmp_path / "tokens")
    up_down.write_tokens({"prod": {"default": "t1"}, "qa": {"default": "t2"}})
    first = up_down.write_tokens({"prod": {"next": "t4", "default": "t3"}})
    assert first == {"prod": tmp_path / "tokens" / "prod" / "default"}
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "tokens").rglob("*")) == [
        Path("tokens/prod"),
        Path("tokens/prod/default"),
        Path("tokens/prod/next"),
    ]
    assert first["prod"].read_text() == "t3"
    assert stat.S_IMODE(first["prod"].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens" / "prod").stat().st_mode) == 0o700
