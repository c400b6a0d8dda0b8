"""The chart's certificates, for real. etcd: the StatefulSet's own command line (its flags, its probes'
paths) runs the pinned etcd with the certificates the chart generates, on loopback; clients need the chart's
client certificate; the server certificate is valid for the names the API server dials. The API server: the
APIService's caBundle verifies its serving certificate for the name the aggregator dials."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.chart.support import EtcdMember, render

pytestmark = pytest.mark.integration

NAMESPACE = "arc-system"
MEMBER = "arc-etcd-0"


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdMember]:
    objects = render(tmp_path_factory.mktemp("helm-home"), namespace=NAMESPACE)
    etcd = EtcdMember(objects, tmp_path_factory.mktemp("etcd-member"), namespace=NAMESPACE)
    etcd.start()
    try:
        yield etcd
    finally:
        etcd.stop()


def test_a_client_with_the_charts_client_certificate_reads_and_writes(member: EtcdMember) -> None:
    member.put("/registry/e2e", "stored")
    assert member.get("/registry/e2e") == "stored"


def test_a_client_without_a_certificate_is_refused(member: EtcdMember) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, socket.timeout, AssertionError)):
        member.kv("/v3/kv/range", {"key": "L3JlZ2lzdHJ5"}, client_cert=False)


def _handshake(member: EtcdMember, server_name: str) -> None:
    context = member.ssl_context()
    with (
        socket.create_connection(("127.0.0.1", member.client_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        pass


def test_the_server_certificate_is_valid_for_the_names_clients_dial(member: EtcdMember) -> None:
    """Hostname verification as the API server (each member by name) and the CronJobs (the client Service)
    do it; the member's own advertised URLs name it the same way."""
    for i in range(5):
        _handshake(member, f"arc-etcd-{i}.arc-etcd-headless.{NAMESPACE}.svc")
    _handshake(member, f"arc-etcd.{NAMESPACE}.svc")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(member, f"arc-apiserver.{NAMESPACE}.svc")
    advertised = next(a for a in member.container["args"] if a.startswith("--advertise-client-urls="))
    assert advertised == "--advertise-client-urls=https://$(POD_NAME).arc-etcd-headless.arc-system.svc:2379"


def test_the_probes_paths_answer(member: EtcdMember) -> None:
    for path in set(member.probes.values()):
        with urllib.request.urlopen(f"http://127.0.0.1:{member.metrics_port}{path}", timeout=5) as resp:
            assert resp.status == 200
            assert resp.read().strip() == b"ok", path


def test_the_apiservice_ca_bundle_verifies_the_api_servers_certificate_as_the_aggregator_does(
    tmp_path: Path,
) -> None:
    """kube-apiserver's aggregator dials the Service and verifies the serving certificate against the
    APIService's caBundle for the name <service>.<namespace>.svc: a TLS server with the chart's serving
    certificate passes exactly that check (and fails it for another name)."""
    objects = render(tmp_path / "helm-home", namespace=NAMESPACE)
    apiservice = next(o for o in objects if o["kind"] == "APIService")
    serving = next(
        o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "arc-apiserver-tls"
    )
    for key, value in serving["data"].items():
        (tmp_path / key).write_bytes(base64.b64decode(value))
    (tmp_path / "bundle.crt").write_bytes(base64.b64decode(apiservice["spec"]["caBundle"]))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    service = apiservice["spec"]["service"]

    def serve(count: int) -> None:
        for _ in range(count):
            conn, _ = listener.accept()
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                server_context.wrap_socket(conn, server_side=True),
            ):
                pass

    thread = threading.Thread(target=serve, args=(2,), daemon=True)
    thread.start()
    try:
        client = ssl.create_default_context(cafile=str(tmp_path / "bundle.crt"))
        name = f"{service['name']}.{service['namespace']}.svc"
        assert name == f"arc-apiserver.{NAMESPACE}.svc"
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.getpeercert() is not None
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ):
            client.wrap_socket(raw, server_hostname=f"arc-etcd.{NAMESPACE}.svc")
    finally:
        thread.join(timeout=5)
        listener.close()
