"""The kubeconfig of an EKS cluster, authenticating with `aws eks get-token`.

Pure, no Pulumi. It holds no credential: the operator's AWS identity is exchanged for a
short-lived token at each use, so the document may be shown; it is still exported as a
secret, since it names the cluster's endpoint.
"""

from __future__ import annotations

from typing import Any

import yaml


def eks_kubeconfig(
    cluster_name: str, endpoint: str, certificate_authority: str, region: str
) -> str:
    """YAML text of a kubeconfig for one EKS cluster (`certificate_authority`: base64 PEM)."""
    user: dict[str, Any] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
            "interactiveMode": "Never",
        }
    }
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": endpoint,
                    "certificate-authority-data": certificate_authority,
                },
            }
        ],
        "users": [{"name": cluster_name, "user": user}],
        "contexts": [
            {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
        ],
        "current-context": cluster_name,
    }
    return str(yaml.safe_dump(document, sort_keys=False))
