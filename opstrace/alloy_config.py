"""What the system tenant receives about the instance itself, as Grafana Alloy config.

Every node's Alloy scrapes that node's kubelet and cAdvisor metrics and tails the logs
of that node's pods through the API server, and ships both to the system tenant's own
endpoints, authenticated with the system tenant's data API token (a file from a
Kubernetes Secret: the token, never a key). It goes through the public endpoints and
the gateway like any tenant's data, so the gateway's checks apply to it too.
"""

from __future__ import annotations

import re
from typing import Final

from opstrace import names
from opstrace.gateway import manifests as gateway_manifests
from sidecar import contract

TOKEN_DIR: Final = "/var/run/secrets/opstrace"
TOKEN_FILE: Final = "token"
SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"


def push_urls(instance: str, domain: str) -> tuple[str, str]:
    """Where the collector sends metrics and logs: the system tenant's push endpoints."""
    cortex = names.endpoint_host("cortex", names.SYSTEM_TENANT, instance, domain)
    loki = names.endpoint_host("loki", names.SYSTEM_TENANT, instance, domain)
    return f"https://{cortex}/api/v1/push", f"https://{loki}/loki/api/v1/push"


def alloy_config(instance: str, domain: str, trusted_roots: str = "") -> str:
    """The Alloy configuration every collector pod runs (River syntax). `trusted_roots`
    (PEM): the only CAs its pushes trust, for endpoints whose certificates come from a CA
    no system trusts (Let's Encrypt's staging CA); "": the system's."""
    metrics_url, logs_url = push_urls(instance, domain)
    token = f"{TOKEN_DIR}/{TOKEN_FILE}"
    # A pod discovery target per container port, init containers' (the sidecar is a
    # native sidecar) included (Prometheus' discovery/kubernetes/pod.go, which Alloy
    # runs: `__meta_kubernetes_pod_container_init`): the sidecar's status port of this
    # instance's gateway pods, in the system tenant's namespace.
    gateway = {
        "__meta_kubernetes_namespace": names.tenant_namespace(names.SYSTEM_TENANT),
        **{
            f"__meta_kubernetes_pod_label_{re.sub('[^a-zA-Z0-9_]', '_', key)}": value
            for key, value in sorted(gateway_manifests.labels(instance).items())
        },
        "__meta_kubernetes_pod_container_port_number": str(contract.STATUS_PORT),
    }
    gateway_keys = ", ".join(f'"{key}"' for key in gateway)
    # Names and label values: letters, digits and '-', nothing a regular expression reads.
    assert all(re.fullmatch("[a-z0-9-]+", value) for value in gateway.values()), gateway
    gateway_values = ";".join(gateway.values())
    # A raw string (backticks): the PEM as it is, newlines included.
    tls = f"\n    tls_config {{\n      ca_pem = `{trusted_roots}`\n    }}" if trusted_roots else ""
    return f"""\
// Rendered by opstrace/alloy_config.py: this node's metrics and pod logs to the
// system tenant of instance {instance!r}.
discovery.kubernetes "nodes" {{
  role = "node"
  selectors {{
    role  = "node"
    field = "metadata.name=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "kubelet" {{
  targets = discovery.kubernetes.nodes.targets
  rule {{
    target_label = "job"
    replacement  = "kubelet"
  }}
}}

discovery.relabel "cadvisor" {{
  targets = discovery.kubernetes.nodes.targets
  rule {{
    target_label = "job"
    replacement  = "cadvisor"
  }}
  rule {{
    target_label = "__metrics_path__"
    replacement  = "/metrics/cadvisor"
  }}
}}

prometheus.scrape "node" {{
  targets = array.concat(
    discovery.relabel.kubelet.output,
    discovery.relabel.cadvisor.output,
  )
  scheme            = "https"
  bearer_token_file = "{SERVICE_ACCOUNT_DIR}/token"
  tls_config {{
    ca_file              = "{SERVICE_ACCOUNT_DIR}/ca.crt"
    insecure_skip_verify = true // kubelets serve self-signed certificates on EKS
  }}
  forward_to = [prometheus.remote_write.system.receiver]
}}

// The gateway pods' usage counters (requests, refusals, bytes per tenant and
// credential), from each one's sidecar on this node.
discovery.relabel "gateway_usage" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = [{gateway_keys}]
    regex         = "{gateway_values}"
    action        = "keep"
  }}
  rule {{
    target_label = "job"
    replacement  = "gateway-usage"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
}}

prometheus.scrape "gateway_usage" {{
  targets      = discovery.relabel.gateway_usage.output
  metrics_path = "{contract.METRICS_PATH}"
  forward_to   = [prometheus.remote_write.system.receiver]
}}

prometheus.remote_write "system" {{
  endpoint {{
    url               = "{metrics_url}"
    bearer_token_file = "{token}"{tls}
  }}
}}

discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }}
}}

loki.source.kubernetes "pods" {{
  targets    = discovery.relabel.pods.output
  forward_to = [loki.write.system.receiver]
}}

loki.write "system" {{
  endpoint {{
    url               = "{logs_url}"
    bearer_token_file = "{token}"{tls}
  }}
}}
"""
