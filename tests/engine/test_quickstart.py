"""README's quick start as a newcomer runs it: `make up` in a clean clone, the curl lines it
prints pasted into a shell, a tenant added and `make up` again, then `make down`.

The clone is `git clone` of this checkout (so only committed files count) and runs on this
machine's build caches (engine, HAProxy, Cortex: warm once CI or `make engine` built them)
and on this checkout's virtualenv, linked in (the same requirements.txt: only pip's
minute is saved). Its `make up` starts its own local cluster, whose gateway pods take the
machine's gateway ports: so this test runs first in a session (tests/conftest.py orders
it), before the engine tests' cluster starts, and needs no other cluster running.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Final

import pytest

from tests.engine.harness import CLUSTER_TOOLS, PULUMI_TOOLS, ROOT, VENV, require_tools
from tests.strict_tools import tools_required
from tools.cluster import gateway_pods
from tools.local import curl, remote_write

pytestmark = pytest.mark.quickstart

MAKE_TIMEOUT: Final = 1800.0
"""A cold engine build alone takes about 30 minutes; warm, `make up` takes a few."""
CHECK_TIMEOUT: Final = 60.0
CHECK: Final = re.compile(rf"  # (.*){re.escape(curl.EXPECT_MARK)}(\d{{3}})")
DROPPED: Final = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "KUBECONFIG", "VIRTUAL_ENV")
DROPPED_PREFIXES: Final = ("PULUMI_", "AWS_", "OPSTRACE_HAPROXY", "OPSTRACE_CORTEX")
"""A newcomer's shell: no make above it, no cloud or Pulumi settings, and none of the
binaries CI names (`make up` builds or finds them)."""


def newcomer_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED and not key.startswith(DROPPED_PREFIXES)
    }


def as_typed(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`argv` run in `cwd` from a newcomer's shell, its output captured."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return as_typed(["make", "--no-print-directory", *args], clone, MAKE_TIMEOUT)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(result.args)}` exited {result.returncode}\n--- stdout\n"
            f"{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result.stdout


def printed_checks(output: str) -> list[tuple[str, int, str]]:
    """(what, expected status, command) of every check `make up` printed."""
    lines = output.splitlines()
    return [
        (match[1], int(match[2]), command.strip())
        for comment, command in itertools.pairwise(lines)
        if (match := CHECK.fullmatch(comment))
    ]


def pasted(command: str, cwd: Path) -> tuple[int, str]:
    """(status, body) of a printed line run by bash, as if pasted, in another folder."""
    result = as_typed(["bash", "-c", command], cwd, CHECK_TIMEOUT)
    *body, status = result.stdout.rstrip("\n").split("\n") or [""]
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    return int(status), "\n".join(body)


def assert_checks_work(output: str, tenants: set[str], elsewhere: Path) -> None:
    checks = printed_checks(output)
    assert {what.split("'")[0].split()[-1] for what, _, _ in checks} >= tenants, output
    for what, expected, command in checks:
        status, body = pasted(command, elsewhere)
        assert status == expected, f"{what}: got {status}, expected {expected}\n{body}"
        if what.startswith("query it back"):
            assert remote_write.SERIES in body, body


def processes_naming(*paths: Path) -> list[str]:
    """Command lines of running processes that name one of `paths`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if any(str(path) in cmdline for path in paths):
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_make_up_in_a_clean_clone_serves_its_curl_lines_and_make_down_leaves_nothing(
    tmp_path: Path,
) -> None:
    require_tools((*PULUMI_TOOLS, *CLUSTER_TOOLS))
    if holder := gateway_pods.ports_holder():
        message = f"another local cluster ({holder}) runs gateway pods: stop it first"
        pytest.fail(message) if tools_required() else pytest.skip(message)
    clone, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(VENV)
    os.utime(clone / "requirements.txt", (0, 0))  # older than the venv's stamp: reused
    pod_roots: set[Path] = set()
    try:
        assert_checks_work(succeeded(make(clone, "up")), {"prod", "staging"}, elsewhere)

        stack = clone / "stacks" / "Pulumi.local.yaml"
        stack.write_text(stack.read_text().replace("    - staging\n", "    - staging\n    - qa\n"))
        started = time.monotonic()
        again = succeeded(make(clone, "up"))
        print(f"quick start: a tenant added, make up again in {time.monotonic() - started:.1f}s")
        assert_checks_work(again, {"prod", "staging", "qa"}, elsewhere)
        pod_roots = set(gateway_pods.ROOT.glob("opstrace-pod-*"))
    finally:
        down = make(clone, "down")
    succeeded(down)

    assert processes_naming(clone, *pod_roots) == []
    assert not any(root.exists() for root in pod_roots)
    left = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    # The newcomer's edit, and the caches: the virtualenv, the engine's binary links and
    # Python's bytecode.
    kept = [entry for entry in left if not entry.endswith("/__pycache__/")]
    assert sorted(kept) == [" M stacks/Pulumi.local.yaml", "!! .engine/", "!! .venv"]
    assert [p.name for p in (clone / ".engine").iterdir()] == ["bin"]
