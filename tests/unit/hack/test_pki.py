from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hack import pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_chains_to_its_ca_with_sans(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path, "ca", "test-ca")
    pair = pki.issue(
        ca,
        tmp_path,
        "srv",
        common_name="srv",
        dns_names=["a.example"],
        ip_addresses=["127.0.0.1"],
        server=True,
    )
    cert, ca_cert = _load(pair.cert_file), _load(ca.cert_file)
    cert.verify_directly_issued_by(ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["a.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (pair.key_file.stat().st_mode & 0o777) == 0o600


def test_client_certificate_carries_user_and_groups(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path, "ca", "test-ca")
    pair = pki.issue(ca, tmp_path, "alice", common_name="alice", organizations=["team-a", "dev"], client=True)
    subject = _load(pair.cert_file).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["team-a", "dev"]


def test_certificates_are_reused_not_regenerated(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path, "ca", "test-ca")
    first = pki.issue(ca, tmp_path, "c", common_name="c", client=True).cert_pem
    assert pki.create_ca(tmp_path, "ca", "test-ca").cert_pem == ca.cert_pem
    assert pki.issue(ca, tmp_path, "c", common_name="c", client=True).cert_pem == first


def test_other_ca_does_not_verify(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path / "one", "ca", "same-name")
    other = pki.create_ca(tmp_path / "two", "ca", "same-name")
    pair = pki.issue(ca, tmp_path / "one", "c", common_name="c", client=True)
    with pytest.raises(InvalidSignature):
        _load(pair.cert_file).verify_directly_issued_by(_load(other.cert_file))
