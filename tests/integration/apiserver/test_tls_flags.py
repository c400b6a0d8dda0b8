"""kube's TLS flags on the real ``arc-apiserver``: ``--tls-min-version`` and ``--tls-cipher-suites``, probed
with TLS clients that offer exactly one version or one suite (issue 14: no CBC by default, TLS >= 1.2).

ARC's serving certificate is ECDSA (P-256), so the TLS 1.2 suites probed are the ECDHE-ECDSA ones.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer


def _server(etcd: EtcdServer, work: Path, *args: str) -> ArcApiServer:
    server = ArcApiServer(work, etcd.client_url, etcd_prefix="/arc-tls", extra_args=args)
    server.start()
    return server


def handshake(
    server: ArcApiServer, *, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2, ciphers: str | None = None
) -> tuple[str, str] | None:
    """(protocol, cipher) the server agreed to, or None when it refused the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(server.cert_dir / "apiserver.crt")
    context.minimum_version = context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                protocol, cipher = tls.version(), tls.cipher()
                assert protocol is not None and cipher is not None
                return protocol, cipher[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


@pytest.fixture(scope="module")
def default_server(
    etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArcApiServer]:
    server = _server(etcd_server, tmp_path_factory.mktemp("tls-default"))
    yield server
    server.stop()


def test_default_offers_tls12_aead_suites_and_tls13_but_no_cbc(default_server: ArcApiServer) -> None:
    assert handshake(default_server, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256") == (
        "TLSv1.2",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    )
    assert handshake(default_server, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305") is not None
    assert handshake(default_server, version=ssl.TLSVersion.TLSv1_3) is not None
    for cbc in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"):
        assert handshake(default_server, ciphers=cbc) is None, cbc


def test_default_refuses_tls11(default_server: ArcApiServer) -> None:
    try:
        result = handshake(default_server, version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        result = None  # this OpenSSL cannot even offer TLS 1.1: refused either way
    assert result is None


def test_min_version_tls13_refuses_tls12(etcd_server: EtcdServer, tmp_path: Path) -> None:
    server = _server(etcd_server, tmp_path, "--tls-min-version=VersionTLS13")
    try:
        assert handshake(server) is None
        result = handshake(server, version=ssl.TLSVersion.TLSv1_3)
        assert result is not None and result[0] == "TLSv1.3"
    finally:
        server.stop()


def test_cipher_suites_by_iana_name_replace_the_defaults(etcd_server: EtcdServer, tmp_path: Path) -> None:
    """Naming a CBC suite enables exactly it (as kube lets an operator do), and the defaults are gone."""
    server = _server(
        etcd_server,
        tmp_path,
        "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_AES_128_GCM_SHA256",
    )
    try:
        assert handshake(server, ciphers="ECDHE-ECDSA-AES128-SHA") == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA")
        assert handshake(server, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256") is None
        assert handshake(server, version=ssl.TLSVersion.TLSv1_3) is not None
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--tls-min-version=VersionTLS14", "unknown tls version 'VersionTLS14'"),
        ("--tls-cipher-suites=TLS_FOO", "Cipher suite TLS_FOO not supported or doesn't exist"),
    ],
)
def test_bad_values_stop_the_server_with_kube_words(flag: str, message: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,u,1\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "apiserver",
            "--standalone",
            f"--token-auth-file={tokens}",
            f"--cert-dir={tmp_path}",
            flag,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr
