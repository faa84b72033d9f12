"""The cert-manager stand-in: its two CRDs, a ClusterIssuer, and certificates issued at once.

`install` registers minimal `Certificate` and `ClusterIssuer` CRDs (cert-manager's
group and names, no schema) and the ClusterIssuer `test-issuer` that tests name.
`issue` does for one Certificate what cert-manager does after its DNS-01 challenge:
the certificate for `spec.dnsNames`, from the cluster's CA, into the Secret
`spec.secretName` (`tls.crt`, `tls.key`), and the Certificate marked Ready.
"""

from __future__ import annotations

import base64
import contextlib
from functools import partial
from typing import Any, Final

from sidecar import kube_client
from tools.cluster import control_plane, credentials

TEST_ISSUER: Final = "test-issuer"
GROUP: Final = "cert-manager.io"
CERTIFICATES: Final = f"/apis/{GROUP}/v1/certificates"
CRDS: Final = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
FIELD_MANAGER: Final = "opstrace-test-cert-manager"


def _crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def _established(api: kube_client.Api, name: str) -> bool:
    crd = api.get(f"{CRDS}/{name}") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install(api: kube_client.Api) -> None:
    """cert-manager's two CRDs (no schema) and the ClusterIssuer the tests name."""
    for crd in (
        _crd("Certificate", "certificates", "Namespaced"),
        _crd("ClusterIssuer", "clusterissuers", "Cluster"),
    ):
        name = crd["metadata"]["name"]
        with contextlib.suppress(kube_client.Conflict):
            api.create(CRDS, crd)
        control_plane.wait_for(
            partial(_established, api, name), f"CRD {name} to be established", "kube-apiserver"
        )
    issuer = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": TEST_ISSUER},
        "spec": {"ca": {"secretName": "test-ca"}},
    }
    with contextlib.suppress(kube_client.Conflict):
        api.create(f"/apis/{GROUP}/v1/clusterissuers", issuer)


def _ready(certificate: dict[str, Any]) -> bool:
    conditions = (certificate.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _template_labels(spec: dict[str, Any]) -> dict[str, str]:
    return dict((spec.get("secretTemplate") or {}).get("labels") or {})


def _relabel(api: kube_client.Api, certificate: dict[str, Any]) -> str | None:
    """As cert-manager: an issued Secret takes a changed `secretTemplate`'s labels, not
    reissued."""
    meta, spec = certificate["metadata"], certificate.get("spec", {})
    path = f"/api/v1/namespaces/{meta['namespace']}/secrets/{spec['secretName']}"
    wanted = _template_labels(spec)
    secret = api.get(path)
    if secret is None or not wanted:
        return None
    labels = secret["metadata"].get("labels") or {}
    if all(labels.get(name) == value for name, value in wanted.items()):
        return None
    try:
        api.merge_patch(path, {"metadata": {"labels": wanted}})
    except kube_client.NotFound:
        return None  # deleted meanwhile
    return f"secret {meta['namespace']}/{spec['secretName']} labelled as its Certificate asks"


def issue(api: kube_client.Api, certificate: dict[str, Any]) -> str | None:
    """Issue a Certificate that is not Ready yet (or bring an issued one's Secret to its
    template); says what it did."""
    if _ready(certificate):
        return _relabel(api, certificate)
    meta, spec = certificate["metadata"], certificate.get("spec", {})
    namespace = meta["namespace"]
    crt, key = credentials.issue_from_test_ca(spec.get("dnsNames", []))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": spec["secretName"],
            "namespace": namespace,
            # As cert-manager: the labels the Certificate asks its Secret to carry.
            "labels": _template_labels(spec),
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(crt).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/{spec['secretName']}"
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}]}}
    try:
        api.apply(secret_path, secret, field_manager=FIELD_MANAGER, force=True)
        api.merge_patch(
            f"/apis/{GROUP}/v1/namespaces/{namespace}/certificates/{meta['name']}/status", ready
        )
    except kube_client.NotFound:
        return None  # the Certificate (or its namespace) was deleted meanwhile
    return f"certificate {namespace}/{meta['name']} issued"
