"""The cluster's credentials: its CA, the one certificate kwokctl's components share, and
client certificates for the tests' other users.

`seed` writes them where kwokctl looks before it makes its own (`tools.pki`: EC keys,
valid 30 days): the CA, so that the cert-manager stand-in issues the tenants' certificates
from it, and the admin's certificate, which kwokctl uses as the API server's serving
certificate, as every component's client certificate (in `system:masters`) and as the
service-account signing key. The API server refuses anonymous requests, so every client
here authenticates with one of these certificates.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from opstrace import kubeconfig as kubeconfigs
from sidecar import kube_client
from tools import pki
from tools.cluster.control_plane import KUBERNETES_SERVICE_ADDRESS
from tools.cluster.state import CLUSTER_NAME, KUBECONFIG, PKI

CERTIFICATE_DAYS: Final = 30
MASTERS: Final = "system:masters"
SERVING_NAMES: Final = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def seed() -> None:
    """The CA and the admin's certificate, where kwokctl finds them (it makes its own,
    RSA, only where none is)."""
    PKI.mkdir(parents=True, exist_ok=True)
    ca = pki.Authority.create(f"{CLUSTER_NAME}-ca", days=CERTIFICATE_DAYS)
    ca.write(PKI / "ca.crt", PKI / "ca.key")
    certificate, key = ca.issue(
        pki.name("kwok-admin", MASTERS),
        days=CERTIFICATE_DAYS,
        usages=(pki.SERVER_AUTH, pki.CLIENT_AUTH),
        dns_names=SERVING_NAMES,
        ip_addresses=("127.0.0.1", KUBERNETES_SERVICE_ADDRESS),
    )
    (PKI / "admin.crt").write_bytes(pki.certificate_pem(certificate))
    # SEC1: kube-apiserver also reads it as --service-account-key-file, and refuses a
    # PKCS#8 EC key there.
    pki.write_private_key(key, PKI / "admin.key", sec1=True)


def kubeconfig(user: str, port: int, *, embed: bool) -> dict[str, Any]:
    """A kubeconfig for `user` (the admin's certificate, or a client certificate issued
    now for another user, in `system:masters`) of the server on 127.0.0.1:`port`;
    `embed` inlines the files."""
    if user != "admin" and not (PKI / f"{user}.crt").exists():
        ca = pki.Authority.load(PKI / "ca.crt", PKI / "ca.key")
        certificate, key = ca.issue(
            pki.name(user, MASTERS), days=CERTIFICATE_DAYS, usages=(pki.CLIENT_AUTH,)
        )
        (PKI / f"{user}.crt").write_bytes(pki.certificate_pem(certificate))
        pki.write_private_key(key, PKI / f"{user}.key")

    def ref(kind: str, path: Path) -> dict[str, str]:
        if embed:
            return {f"{kind}-data": base64.b64encode(path.read_bytes()).decode()}
        return {kind: str(path)}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    **ref("certificate-authority", PKI / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    **ref("client-certificate", PKI / f"{user}.crt"),
                    **ref("client-key", PKI / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
    }


def write_admin_kubeconfig(port: int) -> None:
    """The admin's kubeconfig, certificates embedded: what tests and operators use."""
    KUBECONFIG.touch(mode=0o600)
    KUBECONFIG.write_text(yaml.safe_dump(kubeconfig("admin", port, embed=True)))
    KUBECONFIG.chmod(0o600)


def client(port: int, user: str = "admin") -> kube_client.Api:
    """A client of the server on 127.0.0.1:`port` as `user`."""
    return kubeconfigs.from_document(kubeconfig(user, port, embed=False))


def admin_api() -> kube_client.Api:
    """The admin's client, from the admin kubeconfig that `up` wrote."""
    return kubeconfigs.client(str(KUBECONFIG))


def issue_from_test_ca(dns_names: Sequence[str]) -> tuple[bytes, bytes]:
    """A serving certificate for `dns_names` from the cluster's CA: (PEM, key PEM)."""
    ca = pki.Authority.load(PKI / "ca.crt", PKI / "ca.key")
    subject = pki.name(dns_names[0] if dns_names else "unnamed")
    certificate, key = ca.issue(subject, days=CERTIFICATE_DAYS, dns_names=dns_names)
    return pki.certificate_pem(certificate), pki.private_pem(key)
