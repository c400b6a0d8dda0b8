"""A self-signed serving certificate when none is given (kube's ``MaybeDefaultWithSelfSignedCerts``).

With ``--cert-dir`` the pair is written there and reused by the next start; without it (the default, as in
kube's generic API server and metrics-server) it lives in memory only: a pod with a read-only root
filesystem and no writable volume still serves TLS. Python's ``ssl`` loads certificates only from files, so
the in-memory pair is handed over through an anonymous memory file (``memfd_create``), never the disk.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def ensure_self_signed(cert_dir: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """``apiserver.crt``/``.key`` in ``cert_dir`` for ``hosts`` (DNS names or IPs); reused if present."""
    cert_file, key_file = cert_dir / "apiserver.crt", cert_dir / "apiserver.key"
    if cert_file.exists() and key_file.exists():
        return cert_file, key_file
    cert_dir.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed(hosts)
    write_private_file(key_file, key_pem)
    cert_file.write_bytes(cert_pem)
    return cert_file, key_file


def write_private_file(path: Path, data: bytes) -> None:
    """Write a key or token readable by its owner only, created with mode 0600 (never wider, not even
    between the write and a chmod); an existing file is narrowed to 0600 before anything is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)  # an older file, created wider: narrow it while it is still empty
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def load_cert_chain_from_memory(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """``context.load_cert_chain`` from PEM bytes, through memory files that are closed right after."""
    fd = os.memfd_create("arc-apiserver-serving", os.MFD_CLOEXEC)
    try:
        os.write(fd, cert_pem + b"\n" + key_pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def self_signed(hosts: Sequence[str]) -> tuple[bytes, bytes]:
    """A PEM certificate and PKCS#8 key, self-signed, for ``hosts`` (DNS names or IPs), valid a year."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{hosts[0]}@{int(now.timestamp())}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
