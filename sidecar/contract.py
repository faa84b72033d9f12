"""The gateway pod's contract: what the operator's side and the pod's sidecar both name.

Labels, annotations, ConfigMap keys, paths and ports that the Kubernetes objects rendered
on the operator's machine (`opstrace.gateway.manifests`, `opstrace.certificates`), the
rollout `pulumi up` waits on (`components.gateway.rollout`) and the sidecar in the pod
(`sidecar.sync`) must agree on, and how the gateway's ConfigMaps join into one file set
and whose checksum says so. Defined here once; both sides import them. Standard library
only: the pod ships this file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

CHECKSUM_KEY: Final = "files.sha256"
"""In every gateway ConfigMap (not a file for HAProxy): in the configuration's, the
checksum of the whole file set rendered (what a pod serves); in each key shard's, the
checksum of its own part."""
PARTS_KEY: Final = "parts.sha256"
"""In the configuration's ConfigMap: the checksum of each key shard's part, one per line,
in the order the sidecar is given the shards; a pod joins shards that match it only, so
it never serves a set made of two renders."""
CERTIFICATE_LABEL: Final = "opstrace.io/gateway-certificate"
"""On each tenant's certificate Secret (cert-manager's secretTemplate): its value, the
instance; the sidecar watches Secrets by it."""
TENANT_LABEL: Final = "opstrace.io/tenant"
"""On each tenant's certificate Secret: whose certificate it is."""

LEASE_PREFIX: Final = "opstrace-gateway-"
"""Each pod's status Lease is named this, then the pod's name."""
STATUS_COMPONENT: Final = "data-api-gateway-status"
"""The `app.kubernetes.io/component` label of every status Lease: what `up` lists."""
STATUS_LABELS: Final = {"app.kubernetes.io/component": STATUS_COMPONENT}
STATUS_SELECTOR: Final = ",".join(f"{key}={value}" for key, value in STATUS_LABELS.items())
SERVED_ANNOTATION: Final = "opstrace.io/served-checksum"
STATE_ANNOTATION: Final = "opstrace.io/sync-state"
"""`serving`, `waiting` (the set is not whole yet) or `failed` (HAProxy refused it)."""
MESSAGE_ANNOTATION: Final = "opstrace.io/sync-message"

STATUS_PORT: Final = 8082
"""Where the sidecar answers its probes, `/status` and `/metrics` (the usage counters)."""
METRICS_PATH: Final = "/metrics"
USAGE_LOG_PORT: Final = 8083
"""Where, on 127.0.0.1 in the pod, the sidecar takes HAProxy's access log lines (TCP)."""
FILES_DIR: Final = "/run/gateway"
"""The in-memory volume the sidecar writes the generations of files into."""
CURRENT: Final = "current"
"""The link, in the files directory, to the generation HAProxy reads (`-C`)."""
RUN_DIR: Final = "/run/haproxy"
MASTER_SOCKET: Final = f"{RUN_DIR}/master.sock"
"""HAProxy's master CLI, in a volume both containers mount: the sidecar reloads through it."""
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod's service account token, CA and namespace are mounted."""


def config_checksum(files: Mapping[str, str]) -> str:
    """SHA-256 over file names and contents, in name order."""
    digest = hashlib.sha256()
    for file_name, content in sorted(files.items()):
        for part in (file_name, content):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


def joined(base: Mapping[str, str], parts: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The file set of a configuration and its key shards' parts: a file named in several
    is their texts joined, the configuration's first, then each part in the order given
    (the shards' order). Every file so joined is a map HAProxy looks up by exact key, or
    haproxy.cfg, whose last section takes each shard's key lines: order within them is
    not meaning."""
    files = dict(base)
    for part in parts:
        for name, text in part.items():
            files[name] = files.get(name, "") + text
    return files
