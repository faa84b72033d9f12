"""The gateway pod's contract: what the operator's side and the pod's sidecar both name.

Labels, annotations, ConfigMap keys, paths and ports that the Kubernetes objects rendered
on the operator's machine (`opstrace.gateway.manifests`, `opstrace.certificates`), the
rollout `pulumi up` waits on (`components.gateway.rollout`) and the sidecar in the pod
(`sidecar.sync`) must agree on. Defined here once; both sides import them. Standard
library only: the pod ships this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

CHECKSUM_KEY: Final = "files.sha256"
"""In every gateway ConfigMap: the checksum of the whole file set they were rendered with
(not a file for HAProxy)."""
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
