"""The kubeconfig of an EKS cluster, authenticating with `aws eks get-token`.

Pure, no Pulumi. It holds no credential: the operator's AWS identity is exchanged for a
short-lived token at each use, so the document may be shown; it is still exported as a
secret, since it names the cluster's endpoint.
"""

from __future__ import annotations

from typing import Any

import yaml


def eks_kubeconfig(
    cluster_name: str, endpoint: str, certificate_authority: str, region: str, profile: str = ""
) -> str:
    """YAML text of a kubeconfig for one EKS cluster (`certificate_authority`: base64 PEM).

    The token comes from the stack's region and, when the stack names one, its AWS CLI
    profile, passed as `aws eks update-kubeconfig` passes it: `AWS_PROFILE` in the exec
    plugin's environment (aws-cli `awscli/customizations/eks/update_kubeconfig.py` @
    01e092bd1444). So the Kubernetes provider and `kubectl` authenticate as the same
    identity as the AWS provider, whatever profile the shell has."""
    plugin: dict[str, Any] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
        "interactiveMode": "Never",
    }
    if profile:
        plugin["env"] = [{"name": "AWS_PROFILE", "value": profile}]
    user: dict[str, Any] = {"exec": plugin}
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
