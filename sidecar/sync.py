"""The gateway pod's sidecar: HAProxy's files from the API server, loaded without a restart.

    python3 -m sidecar.sync --namespace system-tenant --pod <name> \\
        --pod-uid <uid> --config-maps <config>,<keys-0>,...,<keys-f> \\
        --certificates opstrace.io/gateway-certificate=<instance> \\
        --files /run/gateway --master-socket /run/haproxy/master.sock --listen 0.0.0.0:8082

Runs beside HAProxy (its own container, the standard library and `sidecar.kube_client`
only, shipped in a ConfigMap), as the same user, without a shared process namespace:
- it watches the gateway's ConfigMaps (its configuration, then the key shards, each with
  its keys' files and lines) and the tenants' certificate Secrets (one label selector,
  in the gateway's namespace): a tenant added or removed changes no pod, a revoked key
  is seen within the API server's watch latency, not the kubelet's sync period;
- it writes a file set only when it is whole: every shard the one the configuration
  names (`PARTS_KEY`), joined into the set whose checksum the configuration carries,
  and the certificate of every host the crt-list names. It writes
  it as a new generation directory and swaps `<files>/current` to it in one rename, so
  that HAProxy (started with `-C <files>/current`) never reads half of one;
- then it asks HAProxy's master, through its CLI socket (`-S`, in a volume both
  containers mount), to reload: a new worker loads the files and the old one finishes
  what it has in flight. A reload that fails leaves the old worker serving: the
  sidecar puts `current` back to the generation that loaded, and reports the error;
- it reports what it serves: on :8082 (`/healthz`, `/ready` once a whole set is
  written, `/status`), and in a Lease named after its pod (owned by the pod, so it goes
  with it), whose annotations say the checksum served. `pulumi up` waits on those
  (`components.gateway.rollout`), so "done" means "every pod serves it".
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import functools
import http.server
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from sidecar import kube_client, usage
from sidecar.contract import (
    CHECKSUM_KEY,
    CURRENT,
    LEASE_PREFIX,
    MESSAGE_ANNOTATION,
    METRICS_PATH,
    PARTS_KEY,
    SERVED_ANNOTATION,
    SERVICE_ACCOUNT_DIR,
    STATE_ANNOTATION,
    STATUS_LABELS,
    STATUS_PORT,
    TENANT_LABEL,
    config_checksum,
    joined,
)

DEBOUNCE_SECONDS: Final = 0.2
"""After a change, how long to wait for the changes that come with it (one `pulumi up`
updates a key shard and the configuration)."""
RELOAD_SECONDS: Final = 60.0
"""How long a reload may take to be reported by the master before it counts as failed."""
RETRY_SECONDS: Final = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Back-off between attempts to reach the API server, last one repeated."""
GENERATIONS_KEPT: Final = 2

_PROC_LINE: Final = re.compile(r"^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.MULTILINE)
_CRT_LIST_FILE: Final = re.compile(r"^\./certs/(?P<tenant>[a-z0-9-]+)\.pem(?:\s|$)")
"""A crt-list line as the pod's files name a tenant's certificate (config_dir "."), the
sidecar writes it at `certs/<tenant>.pem` of the generation."""


@dataclass(frozen=True)
class Options:
    """What the sidecar watches, where it writes, whom it tells."""

    namespace: str
    pod: str
    pod_uid: str
    config_maps: tuple[str, ...]
    certificates: str
    """The label selector of the tenants' certificate Secrets."""
    files: Path
    master_socket: Path
    listen: tuple[str, int]
    usage_log: tuple[str, int] | None = None
    """Where HAProxy's access log lines are taken to be counted (`sidecar.usage`), or None."""


@dataclass
class Status:
    """What this pod serves, as `/status` and its Lease say it."""

    state: str = "waiting"
    checksum: str = ""
    message: str = "no complete set of files seen yet"
    generation: int = 0
    loaded_at: str = ""
    ready: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "checksum": self.checksum,
            "message": self.message,
            "generation": self.generation,
            "loadedAt": self.loaded_at,
        }


class Incomplete(Exception):
    """Raised when the objects seen so far do not make a whole file set (yet)."""


@dataclass(frozen=True)
class FileSet:
    """One render's files, with the certificates issued so far."""

    checksum: str
    files: dict[str, str]
    pending: tuple[str, ...]
    """Tenants whose certificate is not issued yet: left out of the crt-list (their hosts
    get no certificate, strict SNI) until it is, so that nothing else waits for them."""


def file_set(
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, Any]],
    wanted: Sequence[str],
) -> FileSet:
    """The set to serve; Incomplete saying what is missing when there is none yet.

    `config_maps`: name -> data of the gateway's ConfigMaps seen; `secrets`: name -> the
    certificate Secrets seen (their labels and base64 data). A tenant's certificate on
    its way (cert-manager issues it after `up` created its Certificate) holds back only
    that tenant: a revocation in the same `up` is served at once."""
    missing = [name for name in wanted if name not in config_maps]
    if missing:
        raise Incomplete(f"ConfigMap {missing[0]} not seen yet")
    config, *shards = (config_maps[name] for name in wanted)
    checksum = config.get(CHECKSUM_KEY, "")
    parts = [shard.get(CHECKSUM_KEY, "") for shard in shards]
    if not checksum or config.get(PARTS_KEY, "").splitlines() != parts:
        raise Incomplete(
            "the gateway's ConfigMaps are from different renders (an update is on its way)"
        )
    files = joined(_files_of(config), map(_files_of, shards))
    if config_checksum(files) != checksum:
        raise Incomplete("the gateway's ConfigMaps do not join into the set they name")
    certificates: dict[str, tuple[str, str]] = {}
    for secret in secrets.values():
        tenant = secret.get("metadata", {}).get("labels", {}).get(TENANT_LABEL)
        data = secret.get("data") or {}
        if tenant and data.get("tls.crt") and data.get("tls.key"):
            certificates[tenant] = (_decoded(data["tls.crt"]), _decoded(data["tls.key"]))
    served, pending = [], []
    for line in files.get("crt-list", "").splitlines():
        match = _CRT_LIST_FILE.match(line.strip())
        if match is None:
            served.append(line)
            continue
        tenant = match["tenant"]
        if tenant not in certificates:
            pending.append(tenant)
            continue
        served.append(line)
        chain, key = certificates[tenant]
        files[f"certs/{tenant}.pem"] = chain
        files[f"certs/{tenant}.pem.key"] = key
    if pending and not any(_CRT_LIST_FILE.match(line.strip()) for line in served):
        raise Incomplete(
            f"no tenant's certificate is issued yet (waiting for {', '.join(map(repr, pending))})"
        )
    if pending:
        files["crt-list"] = "".join(f"{line}\n" for line in served)
    return FileSet(checksum, files, tuple(pending))


def _files_of(data: Mapping[str, str]) -> dict[str, str]:
    """A gateway ConfigMap's files: its data but the checksums."""
    return {k: v for k, v in data.items() if k not in (CHECKSUM_KEY, PARTS_KEY)}


def _decoded(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


def write_generation(directory: Path, number: int, files: Mapping[str, str]) -> Path:
    """Write `files` as generation `number` and make it `current`, in one rename."""
    generation = directory / f"gen-{number}"
    if generation.exists():
        shutil.rmtree(generation)
    for name, content in files.items():
        path = generation / name
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
    point_current(directory, generation.name)
    return generation


def point_current(directory: Path, generation: str) -> None:
    """Make `current` the link to `generation`, atomically (rename over the old link)."""
    link = directory / f".{CURRENT}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(generation)
    link.replace(directory / CURRENT)


def prune(directory: Path, keep: Sequence[str]) -> None:
    """Remove the generations that are neither `keep` nor among the newest."""
    generations = sorted(
        (p for p in directory.glob("gen-*") if p.is_dir()),
        key=lambda p: int(p.name.removeprefix("gen-")),
    )
    for path in generations[:-GENERATIONS_KEPT]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def master_command(socket_path: Path, command: str, timeout: float = 30.0) -> str:
    """One command to HAProxy's master CLI; its whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(socket_path))
        connection.sendall(command.encode() + b"\n")
        connection.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def reload_counts(answer: str) -> tuple[int, int]:
    """(reloads, failed reloads) from the master's `show proc` (2.6 and 3.x alike)."""
    match = _PROC_LINE.search(answer)
    if match is None:
        raise ValueError(f"no master line in `show proc`: {answer[:200]!r}")
    return int(match[1]), int(match[2])


def reload(socket_path: Path, deadline: float = RELOAD_SECONDS) -> str | None:
    """Reload HAProxy through its master; None once a new worker serves, else why not.

    The master's own count of reloads (and of failed ones) says how it went, on 2.6 as
    on 3.x (3.x also answers `Success=`): it re-executes itself to reload, so the count
    is read until it has moved."""
    before = reload_counts(master_command(socket_path, "show proc"))
    answer = master_command(socket_path, "reload", timeout=deadline)
    until = time.monotonic() + deadline
    while True:
        try:
            after = reload_counts(master_command(socket_path, "show proc"))
        except (OSError, ValueError):
            after = before  # the master is re-executing itself: ask again
        if after[0] > before[0]:
            if after[1] > before[1]:
                return "HAProxy refused the files: " + _first_alert(answer)
            return None
        if time.monotonic() > until:
            return f"HAProxy's master did not report the reload within {deadline:.0f} s"
        time.sleep(0.1)


def _first_alert(answer: str) -> str:
    for line in answer.splitlines():
        if "[ALERT]" in line:
            return line.split(":", 1)[-1].strip()
    return "see the haproxy container's log"


class Watched:
    """The objects seen so far, kept current by watches; `changed` is set on every change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config_maps: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.changed = threading.Event()

    def listed_config_map(self, name: str, objects: Sequence[Mapping[str, Any]]) -> None:
        """The listing of one ConfigMap by name: it, or nothing (it is gone)."""
        with self.lock:
            if objects:
                self.config_maps[name] = dict(objects[0].get("data") or {})
            else:
                self.config_maps.pop(name, None)
        self.changed.set()

    def listed_secrets(self, objects: Sequence[Mapping[str, Any]]) -> None:
        with self.lock:
            self.secrets = {o["metadata"]["name"]: dict(o) for o in objects}
        self.changed.set()

    def event(self, kind: str, event: kube_client.Event) -> None:
        name = event.object.get("metadata", {}).get("name", "")
        seen: dict[str, Any] = self.config_maps if kind == "configmaps" else self.secrets
        with self.lock:
            if event.type == "DELETED":
                seen.pop(name, None)
            elif kind == "configmaps":
                seen[name] = dict(event.object.get("data") or {})
            else:
                seen[name] = dict(event.object)
        self.changed.set()

    def snapshot(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
        with self.lock:
            return dict(self.config_maps), dict(self.secrets)


def keep_watching(
    api: kube_client.Api,
    path: str,
    listed: Callable[[Sequence[Mapping[str, Any]]], None],
    changed: Callable[[kube_client.Event], None],
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """List, then watch from there, forever; list again when the watch is Gone, and
    after any error, backing off."""
    attempt = 0
    while True:
        try:
            listing = api.list(path, label_selector=label_selector, field_selector=field_selector)
            listed(listing.get("items") or [])
            version = listing["metadata"]["resourceVersion"]
            attempt = 0
            while True:
                for event in api.watch(
                    path,
                    resource_version=version,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    bookmarks=True,
                ):
                    version = event.resource_version or version
                    if event.type != "BOOKMARK":
                        changed(event)
        except kube_client.Gone:
            continue  # too old to resume: list again
        except kube_client.KubeApiError as error:
            pause = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
            log(f"gateway-sync: watching {path}: {error}; again in {pause} s")
            attempt += 1
            time.sleep(pause)


class Reporter:
    """The pod's Lease: what it serves, for `pulumi up` to wait on."""

    def __init__(self, api: kube_client.Api, options: Options) -> None:
        self.api = api
        self.options = options
        self.path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{options.namespace}/leases/"
            f"{LEASE_PREFIX}{options.pod}"
        )

    def report(self, status: Status) -> None:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": f"{LEASE_PREFIX}{self.options.pod}",
                "namespace": self.options.namespace,
                "labels": dict(STATUS_LABELS),
                "annotations": {
                    SERVED_ANNOTATION: status.checksum,
                    STATE_ANNOTATION: status.state,
                    MESSAGE_ANNOTATION: status.message,
                },
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": self.options.pod,
                        "uid": self.options.pod_uid,
                    }
                ],
            },
            "spec": {
                "holderIdentity": self.options.pod,
                "renewTime": _now_micro(),
            },
        }
        self.api.apply(self.path, lease, field_manager="gateway-sync", force=True)


def _now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Loader:
    """Turns what is watched into what HAProxy serves, one whole set at a time."""

    def __init__(
        self,
        options: Options,
        watched: Watched,
        report: Callable[[Status], None],
        log: Callable[[str], None] = print,
    ) -> None:
        self.options = options
        self.watched = watched
        self.report = report
        self.log = log
        self.status = Status()
        self.loaded: tuple[str, dict[str, str]] | None = None
        self.generation = _newest_generation(options.files)

    def step(self) -> None:
        """Load what is watched now, if it is whole and new."""
        config_maps, secrets = self.watched.snapshot()
        try:
            found = file_set(config_maps, secrets, self.options.config_maps)
        except Incomplete as why:
            self._set(replace(self.status, state="waiting", message=str(why)))
            return
        checksum, files = found.checksum, found.files
        if self.loaded == (checksum, files):
            return
        previous = os.readlink(self.options.files / CURRENT) if self.loaded else None
        self.generation += 1
        write_generation(self.options.files, self.generation, files)
        problem = self._reload_if_running()
        if problem is not None:
            self.log(f"gateway-sync: generation {self.generation} not loaded: {problem}")
            if previous is not None:
                point_current(self.options.files, previous)
            self.loaded = (checksum, files)  # not tried again until something changes
            self._set(replace(self.status, state="failed", message=problem))
            return
        self.loaded = (checksum, files)
        self.log(f"gateway-sync: serving generation {self.generation} ({checksum[:12]})")
        prune(self.options.files, keep=[f"gen-{self.generation}"])
        waiting = ", ".join(repr(tenant) for tenant in found.pending)
        self._set(
            Status(
                state="serving",
                checksum=checksum,
                message=f"generation {self.generation}"
                + (f"; the certificates of {waiting} are not issued yet" if waiting else ""),
                generation=self.generation,
                loaded_at=_now_micro(),
                ready=True,
            )
        )

    def _reload_if_running(self) -> str | None:
        # Before HAProxy starts (the sidecar starts first), it reads `current` itself.
        if not self.options.master_socket.exists():
            return None
        try:
            return reload(self.options.master_socket)
        except OSError as error:
            return f"HAProxy's master socket: {error.strerror or error}"

    def _set(self, status: Status) -> None:
        changed = status != self.status
        self.status = status
        if changed:
            try:
                self.report(status)
            except kube_client.KubeApiError as error:
                self.log(f"gateway-sync: reporting: {error}")

    def run(self) -> None:
        while True:
            self.watched.changed.wait()
            time.sleep(DEBOUNCE_SECONDS)
            self.watched.changed.clear()
            self.step()


def _newest_generation(directory: Path) -> int:
    numbers = [int(p.name.removeprefix("gen-")) for p in directory.glob("gen-*")]
    return max(numbers, default=0)


def serve_status(
    loader: Loader, listen: tuple[str, int], counters: usage.Usage | None = None
) -> http.server.ThreadingHTTPServer:
    """`/healthz` (the process answers), `/ready` (a whole set is written), `/status`,
    and `/metrics` (the usage counters)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = loader.status
            if self.path == METRICS_PATH and counters is not None:
                body = counters.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/healthz":
                self._answer(200, {"ok": True})
            elif self.path == "/ready":
                self._answer(200 if status.ready else 503, status.document())
            elif self.path == "/status":
                self._answer(200, status.document())
            else:
                self._answer(404, {"error": "not found"})

        def _answer(self, code: int, document: Mapping[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds: not worth a line each

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        # The local cluster runs several pods' sidecars on one host, as HAProxy's own
        # listeners (SO_REUSEPORT by default).
        allow_reuse_port = True
        daemon_threads = True

    server = Server(listen, Handler)
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


def parse(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python3 -m sidecar.sync")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pod", required=True)
    parser.add_argument("--pod-uid", required=True)
    parser.add_argument(
        "--config-maps",
        required=True,
        help="comma-separated names: the configuration's, then each key shard's in order",
    )
    parser.add_argument("--certificates", required=True, help="label selector of the Secrets")
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--master-socket", type=Path, required=True)
    parser.add_argument("--listen", default=f"0.0.0.0:{STATUS_PORT}")
    parser.add_argument(
        "--usage-log",
        default="",
        help="ADDRESS:PORT (TCP) where HAProxy forwards its access log lines to be counted",
    )
    parser.add_argument(
        "--service-account",
        type=Path,
        default=SERVICE_ACCOUNT_DIR,
        help="the pod's service account files (token, ca.crt, namespace)",
    )
    args = parser.parse_args(argv)
    options = Options(
        namespace=args.namespace,
        pod=args.pod,
        pod_uid=args.pod_uid,
        config_maps=tuple(name for name in args.config_maps.split(",") if name),
        certificates=args.certificates,
        files=args.files,
        master_socket=args.master_socket,
        listen=_address(args.listen),
        usage_log=_address(args.usage_log) if args.usage_log else None,
    )
    return options, args


def _address(text: str) -> tuple[str, int]:
    """`HOST:PORT` as a socket address."""
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    options, args = parse(argv)
    api = kube_client.Api.in_cluster(args.service_account)
    options.files.mkdir(parents=True, exist_ok=True)
    watched = Watched()
    loader = Loader(options, watched, Reporter(api, options).report)
    namespace = f"/api/v1/namespaces/{options.namespace}"
    # One watch per ConfigMap: the Role names them (get/list/watch by name only).
    watches: list[tuple[str, Callable[..., None], Callable[..., None], dict[str, str]]] = [
        (
            f"{namespace}/configmaps",
            functools.partial(watched.listed_config_map, name),
            functools.partial(watched.event, "configmaps"),
            {"field_selector": f"metadata.name={name}"},
        )
        for name in options.config_maps
    ]
    watches.append(
        (
            f"{namespace}/secrets",
            watched.listed_secrets,
            functools.partial(watched.event, "secrets"),
            {"label_selector": options.certificates},
        )
    )
    for path, listed, changed, selector in watches:
        threading.Thread(
            target=_or_exit(keep_watching),
            args=(api, path, listed, changed),
            kwargs=selector,
            daemon=True,
        ).start()
    counters = None
    if options.usage_log:
        counters = usage.Usage()
        receiver = usage.listen(options.usage_log)
        threading.Thread(
            target=_or_exit(usage.receive), args=(receiver, counters), daemon=True
        ).start()
    serve_status(loader, options.listen, counters)
    print(f"gateway-sync: watching {', '.join(options.config_maps)} and {options.certificates}")
    sys.stdout.flush()
    loader.run()
    return 0


def _or_exit(function: Callable[..., None]) -> Callable[..., None]:
    """`function` for a thread: a bug in it ends the process (the kubelet restarts the
    container), instead of a watch that silently stopped."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            function(*args, **kwargs)
        except BaseException as error:
            print(f"gateway-sync: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            os._exit(1)

    return run


if __name__ == "__main__":
    sys.exit(main())
