"""cert-manager objects: the tenants' certificates, the instance's issuer, the disk class.

Pure manifest builders, no Pulumi. Each tenant has its own certificate, valid for
exactly its two endpoint names: adding a tenant adds one certificate and touches no
other, and cert-manager renews each by itself (the gateway reloads on the new files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from opstrace import names
from sidecar import contract

Manifest = dict[str, Any]

STAGING_ROOTS: Final = "".join(
    line
    for line in (Path(__file__).parent / "letsencrypt_staging_roots.crt")
    .read_text(encoding="ascii")
    .splitlines(keepends=True)
    if not line.startswith("#")
)
"""The PEM roots of Let's Encrypt's staging CA (`acmeStaging`), which the system tenant's
collector trusts when the endpoints' certificates come from it (see the file for where
each was read)."""
API_VERSION: Final = "cert-manager.io/v1"
WAIT_FOR_READY: Final = {"pulumi.com/waitFor": "condition=Ready"}
"""`pulumi up` waits until the certificate is issued, and fails naming it if it is not:
the gateway's files name a certificate only once it exists."""


def certificate_secret(tenant: str) -> str:
    """The Secret (`tls.crt`, `tls.key`) holding a tenant's endpoint certificate."""
    return f"{tenant}-endpoints-tls"


def tenant_certificate(
    tenant: str, instance: str, domain: str, namespace: str, issuer: str, grafana: bool = False
) -> Manifest:
    """The certificate of one tenant's hosts (its Grafana's too, if it has one), from the
    instance's ClusterIssuer."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Certificate",
        "metadata": {
            "name": certificate_secret(tenant),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "opstrace", "opstrace.io/tenant": tenant},
            "annotations": dict(WAIT_FOR_READY),
        },
        "spec": {
            "secretName": certificate_secret(tenant),
            "dnsNames": list(names.tenant_hosts(tenant, instance, domain, grafana)),
            "issuerRef": {"kind": "ClusterIssuer", "name": issuer, "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            # What the gateway pods' sidecar watches its certificates by.
            "secretTemplate": {
                "labels": {contract.CERTIFICATE_LABEL: instance, contract.TENANT_LABEL: tenant}
            },
        },
    }


def acme_cluster_issuer(name: str, server: str, email: str, region: str, zone_id: str) -> Manifest:
    """An ACME issuer answering DNS-01 in the instance zone (cert-manager's IRSA role)."""
    acme: dict[str, Any] = {
        "server": server,
        "privateKeySecretRef": {"name": f"{name}-account-key"},
        "solvers": [{"dns01": {"route53": {"region": region, "hostedZoneID": zone_id}}}],
    }
    if email:
        acme["email"] = email
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterIssuer",
        "metadata": {"name": name, "annotations": dict(WAIT_FOR_READY)},
        "spec": {"acme": acme},
    }


def encrypted_gp3_storage_class(name: str, instance: str = "", retain: bool = False) -> Manifest:
    """A disk class: gp3, encrypted, made where the pod is scheduled; the default one, or
    with `retain` the one whose volumes outlive their claims (and so `destroy`), each
    tagged with the instance and its claim's namespace so that it can be found again."""
    parameters = {"type": "gp3", "encrypted": "true"}
    if retain:
        # The EBS CSI driver tags each volume from `tagSpecification_<n>` parameters, and
        # fills in `{{ .PVCNamespace }}` from the claim (kubernetes-sigs/aws-ebs-csi-driver,
        # docs/tagging.md; the claim's metadata reaches it with `--extra-create-metadata`,
        # which the EKS add-on turns on).
        parameters |= {
            "tagSpecification_1": f"opstrace.io/instance={instance}",
            "tagSpecification_2": "opstrace.io/namespace={{ .PVCNamespace }}",
        }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "annotations": {
                "storageclass.kubernetes.io/is-default-class": "false" if retain else "true"
            },
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": parameters,
        "reclaimPolicy": "Retain" if retain else "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
