"""The chart's certificates, for real. etcd: the StatefulSet's own command line (its flags, its probes'
paths) runs the pinned etcd with the certificates the chart generates, on loopback; clients need the chart's
client certificate; the server certificate is valid for the names the API server dials. The API server: the
APIService's caBundle verifies its serving certificate for the name the aggregator dials."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.binaries import binary_path
from hack.process import free_port
from tests.integration.chart.support import render

pytestmark = pytest.mark.integration

NAMESPACE = "arc-system"
MEMBER = "arc-etcd-0"


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("helm-home")
    work = tmp_path_factory.mktemp("etcd-member")
    objects = render(home, namespace=NAMESPACE)
    secrets = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "Secret"}
    statefulset = next(o for o in objects if o["kind"] == "StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    for secret in ("arc-etcd-server", "arc-etcd-client"):
        (work / secret).mkdir()
        for key, value in secrets[secret].items():
            (work / secret / key).write_bytes(base64.b64decode(value))
    client_port, peer_port, metrics_port = free_port(), free_port(), free_port()
    # The pod's flags as rendered, with what differs between a pod and this host: the pod's name, its own
    # network (0.0.0.0 → loopback ports), the mounted volumes (→ temporary directories).
    replacements = {
        "$(POD_NAME)": MEMBER,
        "https://0.0.0.0:2379": f"https://127.0.0.1:{client_port}",
        "https://0.0.0.0:2380": f"https://127.0.0.1:{peer_port}",
        "http://0.0.0.0:2381": f"http://127.0.0.1:{metrics_port}",
        "/etc/etcd/tls": str(work / "arc-etcd-server"),
        "/var/lib/etcd": str(work / "data"),
    }
    args = []
    for arg in container["args"]:
        for old, new in replacements.items():
            arg = arg.replace(old, new)
        args.append(arg)
    assert container["command"] == ["etcd"]
    # Peers are dialled by name in a pod; a single member never dials one, but etcd checks that the advertised
    # peer URL is one of --initial-cluster's, which holds (same name).
    log = (work / "etcd.log").open("wb")
    proc = subprocess.Popen([str(binary_path("etcd")), *args], stdout=log, stderr=log)
    probes = {c: container[f"{c}Probe"]["httpGet"]["path"] for c in ("liveness", "readiness", "startup")}
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (work / "etcd.log").read_text()
            try:
                ready = f"http://127.0.0.1:{metrics_port}{probes['readiness']}"
                with urllib.request.urlopen(ready, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield {
            "work": work,
            "client_port": client_port,
            "metrics_port": metrics_port,
            "probes": probes,
            "args": args,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _context(work: Path, *, client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(work / "arc-etcd-client" / "ca.crt"))
    if client_cert:
        context.load_cert_chain(work / "arc-etcd-client" / "tls.crt", work / "arc-etcd-client" / "tls.key")
    return context


def _kv(member: dict[str, Any], path: str, body: dict[str, str], *, client_cert: bool = True) -> Any:
    """etcd's JSON gateway on the client port, with the chart's client certificate (or none)."""
    context = _context(member["work"], client_cert=client_cert)
    connection = http.client.HTTPSConnection("127.0.0.1", member["client_port"], context=context, timeout=5)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return json.loads(response.read())
    finally:
        connection.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_client_with_the_charts_client_certificate_reads_and_writes(member: dict[str, Any]) -> None:
    _kv(member, "/v3/kv/put", {"key": _b64("/registry/e2e"), "value": _b64("stored")})
    got = _kv(member, "/v3/kv/range", {"key": _b64("/registry/e2e")})
    assert base64.b64decode(got["kvs"][0]["value"]) == b"stored"


def test_a_client_without_a_certificate_is_refused(member: dict[str, Any]) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, socket.timeout, AssertionError)):
        _kv(member, "/v3/kv/range", {"key": _b64("/registry/e2e")}, client_cert=False)


def _handshake(member: dict[str, Any], server_name: str) -> None:
    context = _context(member["work"], client_cert=True)
    with (
        socket.create_connection(("127.0.0.1", member["client_port"]), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        pass


def test_the_server_certificate_is_valid_for_the_names_clients_dial(member: dict[str, Any]) -> None:
    """Hostname verification as the API server (each member by name) and the CronJobs (the client Service)
    do it; the member's own advertised URLs name it the same way."""
    for i in range(5):
        _handshake(member, f"arc-etcd-{i}.arc-etcd-headless.{NAMESPACE}.svc")
    _handshake(member, f"arc-etcd.{NAMESPACE}.svc")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(member, f"arc-apiserver.{NAMESPACE}.svc")
    advertised = next(a for a in member["args"] if a.startswith("--advertise-client-urls="))
    assert advertised == f"--advertise-client-urls=https://{MEMBER}.arc-etcd-headless.{NAMESPACE}.svc:2379"


def test_the_probes_paths_answer(member: dict[str, Any]) -> None:
    for path in set(member["probes"].values()):
        with urllib.request.urlopen(f"http://127.0.0.1:{member['metrics_port']}{path}", timeout=5) as resp:
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
