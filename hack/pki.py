"""Certificates and keys for the local control plane, generated with ``cryptography``.

Two CAs, as in a kubeadm cluster: the cluster CA (serving certs, client certs of users and components)
and the front-proxy CA that signs only the aggregator's proxy client certificate, which extension API
servers such as ARC's trust for the ``X-Remote-*`` headers.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.certs import (
    write_private_file as write_private_file,  # one writer of private files (re-exported)
)

_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files on disk."""

    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert_file.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key_file.read_bytes()


_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _kept_or_made(pair: KeyPair, make: Callable[[], tuple[_PrivateKey, bytes]]) -> KeyPair:
    """``pair`` as it is when both files exist (a restarted cluster keeps its PKI); otherwise the key and
    the public PEM (certificate or public key) that ``make`` returns, written there, the key owner-only."""
    if pair.cert_file.exists() and pair.key_file.exists():
        return pair
    pair.key_file.parent.mkdir(parents=True, exist_ok=True)
    key, public_pem = make()
    write_private_file(
        pair.key_file,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    pair.cert_file.write_bytes(public_pem)
    return pair


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    validity: datetime.timedelta,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """What every certificate here has: a random serial, validity from five minutes ago (clock skew),
    BasicConstraints and KeyUsage (a CA signs certificates and CRLs; a leaf signs and enciphers keys)."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=not ca,
                key_cert_sign=ca,
                crl_sign=ca,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def create_ca(directory: Path, name: str, common_name: str) -> KeyPair:
    """A self-signed CA ``<name>.crt``/``<name>.key`` in ``directory`` (reused if present)."""

    def make() -> tuple[_PrivateKey, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(common_name)
        cert = (
            _certificate(subject, subject, key, 10 * _VALIDITY, ca=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert.public_bytes(serialization.Encoding.PEM)

    return _kept_or_made(KeyPair(directory / f"{name}.crt", directory / f"{name}.key"), make)


def issue(
    ca: KeyPair,
    directory: Path,
    name: str,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> KeyPair:
    """A certificate signed by ``ca`` for a server (SANs) and/or a client (CN = user, O = groups)."""

    def make() -> tuple[_PrivateKey, bytes]:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            _certificate(_name(common_name, organizations), ca_cert.subject, key, _VALIDITY, ca=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    return _kept_or_made(KeyPair(directory / f"{name}.crt", directory / f"{name}.key"), make)


def create_service_account_keys(directory: Path) -> KeyPair:
    """The RSA key pair kube-apiserver signs and verifies service-account tokens with (sa.pub/sa.key)."""

    def make() -> tuple[_PrivateKey, bytes]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return key, public

    return _kept_or_made(KeyPair(directory / "sa.pub", directory / "sa.key"), make)
