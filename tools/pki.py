"""Test certificate authorities: the local cluster's and the gateway end-to-end tests'.

EC P-256 keys and SHA-256 signatures (fast to make); every certificate is valid from five
minutes ago, so a clock a little behind does not reject it.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_CLOCK_SKEW = datetime.timedelta(minutes=5)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (what cert-manager and kube components read)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    start = datetime.datetime.now(datetime.UTC) - _CLOCK_SKEW
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
    )


@dataclass(frozen=True)
class Authority:
    """A self-signed CA that issues server and client certificates."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str, days: int) -> Authority:
        key = new_key()
        subject = name(common_name)
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        certificate = (
            _validity(builder.public_key(key.public_key()), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @classmethod
    def load(cls, certificate_file: Path, key_file: Path) -> Authority:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{key_file}: not an EC private key")
        return cls(key, x509.load_pem_x509_certificate(certificate_file.read_bytes()))

    def write(self, certificate_file: Path, key_file: Path) -> None:
        certificate_file.write_bytes(certificate_pem(self.certificate))
        write_private_key(self.key, key_file)

    def issue(
        self,
        subject: x509.Name,
        *,
        days: int,
        usages: Sequence[x509.ObjectIdentifier] = (SERVER_AUTH,),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A new key and its certificate for `subject`, with these names (if any)."""
        key = new_key()
        builder = (
            _validity(x509.CertificateBuilder().subject_name(subject), days)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        )
        alternative_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alternative_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        if alternative_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative_names), critical=False
            )
        return builder.sign(self.key, hashes.SHA256()), key


def write_private_key(key: ec.EllipticCurvePrivateKey, path: Path, *, sec1: bool = False) -> None:
    """The key as PKCS#8 PEM (or SEC1's "EC PRIVATE KEY", which kube-apiserver needs of a
    service-account key), readable by its owner only."""
    data = (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        if sec1
        else private_pem(key)
    )
    path.touch(mode=0o600)
    path.write_bytes(data)
    path.chmod(0o600)
