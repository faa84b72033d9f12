"""How long a tenant change takes, through the real engine on the local cluster.

    python -m bench.tenant_change_bench [--tenants 10,100] [--tokens 1]
    python -m bench.tenant_change_bench --smoke   # 2 tenants: that it runs
    python -m bench.tenant_change_bench --pure [--credentials 1000,5000,10000]

`--pure` measures the pure parts of a change at sizes the engine run does not reach on
this machine (`bench.key_change_figures`): what one credential's change rewrites, and
what each gateway pod's sidecar does to load it.

Needs `make engine`; uses the cluster of `make cluster-up` (or starts one for the run).
For each tenant count, one instance of tenants with `--tokens` credentials each (the
engine tests' stack: `existing` mode, the local
cluster's stand-in issuer, the gateway's pods run as local processes on 127.0.0.1:8443)
with a backend that answers 200 behind the gateway, then three changes, each a
`pulumi up` after editing the tenants as an operator of a large instance would: in the
stack's `tenantsFile`, `up` with `PULUMI_SKIP_CHECKPOINTS=true` (docs/operations.md,
"Large instances"; 10,000 credentials are `--tenants 2502 --tokens 4`):
  add     a tenant added: then the time to the first 200 for its new token;
  revoke  a tenant's key rotated: then the time to the first 401 for its old token;
  remove  that tenant removed again: then the time to the first refusal of its token.
All the while a client sends valid requests for a tenant no change touches, one after
the other, and counts every answer that is not a 200 (the goal: none). Prints each
`up`'s wall time and what it changed (its summary), each time after `up` returned (the
goal: at most 10 s; `up` waits for every gateway pod, so it is ~0), the failed valid
requests, and whether a gateway pod was replaced (the goal: none). Asserts nothing; a
failed `pulumi` command stops the run.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from bench import key_change_figures
from opstrace.config.tenant_config import FILE_KEY
from opstrace.state_checkpoints import SKIP_CHECKPOINTS
from sidecar import kube_client
from tests.engine.harness import Workspace, at_gateway, copy_project, gateway_pods, local_stack
from tools import cluster as local_cluster
from tools.ports import free_port

INSTANCE: Final = "bench"
STACK: Final = "bench"
STEADY: Final = "steady"
"""The tenant whose valid requests run through every change."""
DEADLINE: Final = 120.0
"""How long after `up` a change may take to show before it counts as never."""
TENANTS_FILE: Final = "tenants.yaml"
"""The tenants, beside the stack file (`tenantsFile`): at 2,500 tenants the stack's
configuration would be more than the CLI can hand the program."""
COMMAND_TIMEOUT: Final = 4 * 3600.0
"""A `pulumi` command at 10,000 credentials takes tens of minutes on 2 cores."""


class Ok(http.server.BaseHTTPRequestHandler):
    """The backend behind the gateway: 200 to anything it forwards."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def backend() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def status(token: str, tenant: str) -> int | str:
    """The gateway's answer, or the TLS refusal (a removed tenant has no certificate)."""
    try:
        return at_gateway(token, tenant, INSTANCE)[0]
    except (ssl.SSLError, ConnectionError) as error:
        return type(error).__name__


@dataclass
class SteadyClient:
    """Valid requests one after the other, in a thread, counting every wrong answer."""

    token: str
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            answer = status(self.token, STEADY)
            self.sent += 1
            if answer != 200:
                self.failed.append(str(answer))


@dataclass
class Stack:
    workspace: Workspace
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def stack_file(self) -> Path:
        return self.workspace.project_dir / "stacks" / f"Pulumi.{STACK}.yaml"

    @property
    def tenants_file(self) -> Path:
        return self.workspace.project_dir / TENANTS_FILE

    def tenants(self) -> list[Any]:
        listed: list[Any] = yaml.safe_load(self.tenants_file.read_text())
        return listed

    def write(self, config: dict[str, Any]) -> None:
        self.stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def set_tenants(self, tenants: list[Any]) -> None:
        self.tenants_file.write_text(yaml.safe_dump(tenants, sort_keys=False))

    def up(self) -> tuple[float, str]:
        """`pulumi up`'s wall time, and what it changed (its summary, unchanged left out)."""
        started = time.monotonic()
        result = self.workspace.run(
            "up", "--yes", "--skip-preview", "--stack", STACK, timeout=COMMAND_TIMEOUT
        )
        elapsed = time.monotonic() - started
        self.tokens = self.workspace.outputs(STACK)["tokens"]
        return elapsed, changed(result.stdout)


def changed(up_output: str) -> str:
    """The counts of `up`'s summary ("Resources: + 3 created, ~ 4 updated, ...") but the
    unchanged: what one change touched."""
    summary = up_output.split("\nResources:\n", 1)[-1].split("\n\n", 1)[0]
    counts = [line.strip() for line in summary.splitlines() if "unchanged" not in line]
    return ", ".join(count for count in counts if count)


def seconds_until(condition: Callable[[], bool]) -> float:
    """Seconds until `condition` holds (polled: this measures, it does not test), or inf."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")


@dataclass(frozen=True)
class Change:
    name: str
    up_seconds: float
    changed: str
    effective_after_up: float


def measure(count: int, tokens: int, api: kube_client.Api, base: Path, backend_url: str) -> None:
    workspace = Workspace(base / "project", base / "home", base / "backend")
    workspace.env[SKIP_CHECKPOINTS] = "true"
    shutil.rmtree(workspace.project_dir)
    copy_project(workspace.project_dir)
    stack = Stack(workspace)
    names = [f"k{index}" for index in range(1, tokens)]
    others = [{"name": f"tenant{i}", "tokens": ["default", *names]} for i in range(count - 1)]
    config = local_stack(INSTANCE, [], cortex_url=backend_url, loki_url=backend_url)
    del config["opstrace:tenants"]
    stack.write({**config, f"opstrace:{FILE_KEY}": TENANTS_FILE})
    stack.set_tenants([STEADY, *others])
    workspace.new_stack(STACK)
    try:
        first, _ = stack.up()
        credentials = sum(len(by_name) for by_name in stack.tokens.values())
        print(f"  {count} tenants, {credentials} credentials: first up {first:.1f}s")
        client = SteadyClient(stack.tokens[STEADY]["default"])
        thread = threading.Thread(target=client.run, daemon=True)
        pods = gateway_pods(api)
        thread.start()
        changes = run_changes(stack)
        client.stop.set()
        thread.join()
        for change in changes:
            print(
                f"  {count} tenants: {change.name:<7} up {change.up_seconds:5.1f}s "
                f"({change.changed}), "
                f"effective {change.effective_after_up:.2f}s after up returned"
            )
        answers = f" ({', '.join(sorted(set(client.failed)))})" if client.failed else ""
        print(
            f"  {count} tenants: {client.sent} valid requests during the changes, "
            f"{len(client.failed)} failed{answers}; "
            f"gateway pods replaced: {len(pods - gateway_pods(api))} of {len(pods)}"
        )
    finally:
        workspace.run(
            "destroy",
            "--yes",
            "--skip-preview",
            "--stack",
            STACK,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )


def run_changes(stack: Stack) -> list[Change]:
    tenants = stack.tenants()
    stack.set_tenants([*tenants, "added"])
    up, touched = stack.up()
    token = stack.tokens["added"]["default"]
    added = Change("add", up, touched, seconds_until(lambda: status(token, "added") == 200))

    old = stack.tokens["added"]["default"]
    stack.set_tenants([*tenants, {"name": "added", "rotation": "bench-1"}])
    up, touched = stack.up()
    revoked = Change("revoke", up, touched, seconds_until(lambda: status(old, "added") == 401))

    old = stack.tokens["added"]["default"]
    stack.set_tenants(tenants)
    up, touched = stack.up()
    removed = Change("remove", up, touched, seconds_until(lambda: status(old, "added") != 200))
    return [added, revoked, removed]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="10,100", help="comma-separated tenant counts")
    parser.add_argument("--tokens", type=int, default=1, help="credentials per user tenant")
    parser.add_argument("--smoke", action="store_true", help="2 tenants: that it runs")
    parser.add_argument("--pure", action="store_true", help="the pure parts, at --credentials")
    parser.add_argument("--credentials", default="1000,5000,10000", help="for --pure")
    args = parser.parse_args(argv)
    if args.pure or args.smoke:
        sizes = [40] if args.smoke else [int(size) for size in args.credentials.split(",")]
        key_change_figures.main(sizes)
        if args.pure:
            return
    counts = [2] if args.smoke else [int(count) for count in args.tenants.split(",")]
    print("tenant changes through the real engine on the local cluster")
    with local_cluster.running() as api, backend() as backend_url:
        for count in counts:
            with tempfile.TemporaryDirectory(prefix="tenant-change-bench-") as scratch:
                measure(count, args.tokens, api, Path(scratch), backend_url)


if __name__ == "__main__":
    main()
