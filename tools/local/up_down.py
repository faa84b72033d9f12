"""`make up` and `make down` of the local instance (`python -m tools.local up|down`).

`up` builds what it needs (each builder reuses its cache outside the checkout), starts the
local cluster and the backends unless they run, runs the real `pulumi up` of the shipped
stack `local` with the CLI `make engine` built, in an environment of its own (home and file
backend under `.engine/local/`), writes each tenant's tokens to files and prints the
endpoints with curl lines that work (`curl`). `down` destroys the stack, stops every
process (ours only, by pid) and deletes `.engine/local/` and the cluster's state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from opstrace import names
from opstrace.config.stack import config_of_stack
from tools import cluster, engine_cli
from tools.cluster import gateway_pods
from tools.cluster.state import BIN, PKI, ROOT, ClusterError
from tools.local import curl, processes
from tools.local.home import (
    BACKEND,
    HOME,
    LOCAL_DIR,
    PASSPHRASE,
    REMOTE_WRITE_SCRIPT,
    STACK,
    TOKENS,
    token_file,
)
from tools.stack_files import PROJECT, PROJECT_DIR, cli_config, shown_path, stack_config, stack_file

Log = Callable[[str], None]
BUILDERS: Final = {
    # The engine's parts and Cortex, linked into .engine/bin.
    "engine": ("engine/build.sh", "kube", "pulumi", "provider", "kwok", "cortex"),
    "haproxy": ("tools/haproxy/build.sh",),
}
"""The cached builders (`make engine cortex`, `make haproxy`): seconds when warm; cold, the
engine takes about 30 minutes on 2 cores and Cortex a few more."""
CORTEX_BINARY: Final = BIN / "cortex"
CACHES: Final = (
    ".venv",
    "__pycache__ folders",
    ".engine/bin (links into ~/.cache/opstrace-engine)",
    "~/.cache/opstrace-haproxy",
)
"""What `down` leaves: the build caches, which the next `make up` reuses."""


def build(log: Log) -> dict[str, str]:
    """Run each builder; name -> the last line it printed (a binary's path, or the engine's
    summary). ClusterError with its output when one fails."""
    built: dict[str, str] = {}
    if not engine_cli.PULUMI.exists():
        log(
            "local: building the engine from Go modules (make engine: about 30 minutes the "
            "first time on 2 cores, seconds afterwards and in any other clone on this machine)"
        )
    for name, (script, *parts) in BUILDERS.items():
        result = subprocess.run(
            ["bash", str(ROOT / script), *parts], stdout=subprocess.PIPE, text=True, check=False
        )
        lines = result.stdout.strip().splitlines() or [""]
        if result.returncode != 0:
            raise ClusterError(f"{name}: {script} failed\n{result.stdout}")
        built[name] = lines[-1]
    built["cortex"] = str(CORTEX_BINARY)
    log(f"local: built ({built['engine']}; HAProxy {built['haproxy']}, Cortex {built['cortex']})")
    return built


def pulumi(*args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """`pulumi <args>` of the local instance, in the project folder; its output captured,
    or shown as it comes (`capture=False`)."""
    return subprocess.run(
        [str(engine_cli.PULUMI), *args, "--non-interactive"],
        cwd=PROJECT_DIR,
        env=engine_cli.environment(HOME, BACKEND, PASSPHRASE),
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        check=False,
    )


def checked(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        command = " ".join(str(arg) for arg in result.args[1:-1])
        raise ClusterError(f"`pulumi {command}` failed\n{result.stdout or ''}".rstrip())
    return result.stdout or ""


def stack_exists() -> bool:
    """Whether the file backend holds the local stack (layout: project-scoped)."""
    return (BACKEND / ".pulumi" / "stacks" / PROJECT / f"{STACK}.json").exists()


def write_tokens(tokens: Mapping[str, Mapping[str, str]]) -> dict[str, Path]:
    """Every credential's token in its file (mode 0600, in a folder only the owner reads),
    the files of tenants or tokens gone removed; tenant -> the file of its first token."""
    shutil.rmtree(TOKENS, ignore_errors=True)
    TOKENS.mkdir(mode=0o700, parents=True)
    first: dict[str, Path] = {}
    for tenant, by_name in tokens.items():
        for name, token in sorted(by_name.items()):
            path = token_file(tenant, name)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(token)
            first.setdefault(tenant, path)
    return first


def up(log: Log = print) -> None:
    """Build, start and deploy the local instance (or update it), then print how to use it."""
    started = time.monotonic()
    where = shown_path(stack_file(STACK))
    config = config_of_stack(cli_config(stack_config(STACK)), PROJECT_DIR)
    built = build(log)
    # The gateway pods' HAProxy (the stand-ins' process inherits it): the pinned build,
    # unless the caller names another.
    os.environ.setdefault("OPSTRACE_HAPROXY", built["haproxy"])
    if not cluster.healthy() and BACKEND.exists():
        log(
            "local: the local cluster is not running, and the instance's objects went with "
            "it: its old state is removed, the instance made anew"
        )
        shutil.rmtree(BACKEND)
    cluster.up(log)
    processes.start(config.cortex_url, config.loki_url, built["cortex"], str(where), log)
    for folder in (HOME, BACKEND):
        folder.mkdir(parents=True, exist_ok=True)
    checked(pulumi(*engine_cli.KUBERNETES_PLUGIN_INSTALL))
    checked(pulumi("stack", "select", "--create", "--secrets-provider", "passphrase", STACK))
    log(f"local: pulumi up --stack {STACK} ({where})")
    checked(pulumi("up", "--yes", "--skip-preview", "--stack", STACK, capture=False))
    outputs: dict[str, Any] = json.loads(
        checked(pulumi("stack", "output", "--json", "--show-secrets", "--stack", STACK))
    )
    access = curl.Access(
        gateway=gateway_pods.ADDRESS,
        ca_file=PKI / "ca.crt",
        remote_write_script=REMOTE_WRITE_SCRIPT,
        token_files=write_tokens(outputs["tokens"]),
    )
    tenants = [t for t in outputs["tenants"] if t != names.SYSTEM_TENANT]
    host, port = gateway_pods.ADDRESS
    log(
        f"\nThe local instance {config.instance_name!r} is up ({time.monotonic() - started:.0f}s): "
        "the real program through the real Pulumi engine, on a local Kubernetes control "
        f"plane with simulated (kwok) nodes; its gateway pods run as HAProxy processes on "
        f"{host}:{port}, a real Cortex stands in for Mimir at {config.cortex_url}, and no "
        f"Loki runs. Tokens: {TOKENS}/<tenant>/<name>. Paste a line (each prints the "
        "response, then its status):\n"
    )
    log(curl.report(access, tenants, outputs["endpoints"]))
    log(
        f"\nAdd a tenant to {where} and `make up` again: a tenant change takes seconds. "
        "`make down` removes everything."
    )


def down(log: Log = print) -> None:
    """Destroy the local stack, stop every process of the local instance and its cluster,
    delete their files; say what stays (the build caches)."""
    if stack_exists() and cluster.healthy():
        pods = cluster.admin_api().list(gateway_pods.PODS, label_selector=gateway_pods.SELECTOR)
        log(f"local: pulumi destroy --stack {STACK}")
        result = pulumi("destroy", "--yes", "--skip-preview", "--stack", STACK, capture=False)
        if result.returncode != 0:
            log("local: the destroy failed (above); stopping the cluster removes its objects")
        # The runner stops a pod's processes when it sees the pod go; do it here too, at once,
        # for any it has not yet seen go before the cluster stops.
        for pod in pods.get("items", []):
            gateway_pods.stop_pod(str(pod["metadata"]["uid"]))
    elif stack_exists():
        log("local: the local cluster is not running: nothing to destroy, its objects went with it")
    processes.stop()
    cluster.down(log)
    shutil.rmtree(LOCAL_DIR, ignore_errors=True)
    log(f"local: down; kept for the next make up: {', '.join(CACHES)}")
