"""The cluster's credentials: its CA, the API server's serving certificate, a client
certificate per user, the service-account signing key, and the kubeconfigs that use them.

Made fresh at every `up` (`tools.pki`: EC keys, valid 30 days). The admin and the
control-plane components are in `system:masters`; the API server refuses anonymous
requests, so every client here authenticates with one of these certificates.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components import kube_api
from tools import pki
from tools.cluster.state import KUBECONFIG, PKI

CERTIFICATE_DAYS: Final = 30
SERVICE_CIDR: Final = "10.96.0.0/16"
CLUSTER_NAME: Final = "opstrace-test"
USERS: Final = ("admin", "kube-controller-manager", "kube-scheduler", "kwok")
"""Client certificates, all in system:masters: the admin (tests, stand-ins), components."""


def make_pki() -> None:
    """A CA, one serving certificate for 127.0.0.1, client certificates, SA keys."""
    PKI.mkdir(parents=True, exist_ok=True)
    ca = pki.Authority.create(f"{CLUSTER_NAME}-ca", days=CERTIFICATE_DAYS)
    ca.write(PKI / "ca.crt", PKI / "ca.key")

    def write(file_name: str, issued: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
        certificate, key = issued
        (PKI / f"{file_name}.crt").write_bytes(pki.certificate_pem(certificate))
        pki.write_private_key(key, PKI / f"{file_name}.key")

    serving = ca.issue(
        pki.name("127.0.0.1"),
        days=CERTIFICATE_DAYS,
        # 127.0.0.1, and the kubernetes Service's address and names.
        ip_addresses=["127.0.0.1", str(ipaddress.ip_network(SERVICE_CIDR)[1])],
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    write("serving", serving)
    for user in USERS:
        subject = pki.name(user, "system:masters")
        write(user, ca.issue(subject, days=CERTIFICATE_DAYS, usage=pki.CLIENT_AUTH))
    sa_key = pki.new_key()
    pki.write_private_key(sa_key, PKI / "sa.key")
    (PKI / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def kubeconfig(user: str, port: int, *, embed: bool) -> dict[str, Any]:
    """A kubeconfig for `user` (its client certificate) of the server on 127.0.0.1:`port`;
    `embed` inlines the files."""

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


def write_kubeconfig(path: Path, user: str, port: int, *, embed: bool) -> None:
    path.write_text(yaml.safe_dump(kubeconfig(user, port, embed=embed)))
    path.chmod(0o600)


def client(port: int, user: str = "admin") -> kube_api.Api:
    """A client of the server on 127.0.0.1:`port` (any component's) as `user`."""
    return kube_api.Api.from_kubeconfig(kubeconfig(user, port, embed=False))


def admin_api() -> kube_api.Api:
    """The admin's client, from the admin kubeconfig that `up` wrote."""
    return kube_api.Api.from_kubeconfig_file(KUBECONFIG, parse=yaml.safe_load)


def issue_from_test_ca(dns_names: Sequence[str]) -> tuple[bytes, bytes]:
    """A serving certificate for `dns_names` from the cluster's CA: (PEM, key PEM)."""
    ca = pki.Authority.load(PKI / "ca.crt", PKI / "ca.key")
    subject = pki.name(dns_names[0] if dns_names else "unnamed")
    certificate, key = ca.issue(subject, days=CERTIFICATE_DAYS, dns_names=dns_names)
    return pki.certificate_pem(certificate), pki.private_pem(key)
