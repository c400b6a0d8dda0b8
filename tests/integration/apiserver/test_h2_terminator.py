"""HTTP/2 between kube-apiserver's aggregator and ARC, through the HAProxy terminator (``hack/haproxy.py``).

The real stack's API part (``LocalCluster(h2_terminator=True).up_api_only()``: both etcds, kube-apiserver,
HAProxy with ``alpn h2,http/1.1`` on the APIService's port, ``arc-apiserver --tls-terminator-socket``):
kubectl works through the aggregator, every proxied request arrives over HTTP/2 on few connections, a watch
streams its events, and a client that sends its own ``Client-Cert`` header to HAProxy gains nothing (HAProxy
deletes it; ARC sees an anonymous request and kube's authorization refuses it). A certificate of another
issuer fails the stack's handshake; with ``verify_chain=False`` HAProxy lets it through and ARC refuses it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack import pki
from hack.cluster import LocalCluster
from hack.haproxy import CLIENT_CERT_HEADER
from hack.process import Component, free_port

GROUP = "arc.opendefense.cloud"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("haproxy is not installed (hack/apt-packages.txt: make apt)")
    stack = LocalCluster(
        tmp_path_factory.mktemp("h2"), controller_manager=False, demo=False, h2_terminator=True
    )
    try:
        stack.up_api_only()
        yield stack
    finally:
        stack.down()


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def order(name: str, namespace: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Order",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
                "artifacts": [{"type": "oci", "spec": {"image": "library/alpine", "tag": "3.20"}}],
            },
        }
    )


def test_the_aggregator_speaks_h2_to_arc_and_kubectl_works(cluster: LocalCluster) -> None:
    terminator = cluster.h2_terminator
    assert terminator.negotiated_protocol(cluster.pki_dir / "ca.crt") == "h2"
    apiservice = json.loads(kubectl(cluster, "get", "apiservice", f"v1alpha1.{GROUP}", "-o", "json"))
    assert apiservice["spec"]["service"]["port"] == cluster.ports.arc_h2_terminator
    before = terminator.stats()["arc/FRONTEND"]
    ns = f"h2-{uuid.uuid4().hex[:6]}"
    kubectl(cluster, "create", "namespace", ns)
    for i in range(5):
        kubectl(cluster, "apply", "-f", "-", stdin=order(f"o{i}", ns))
    names = kubectl(cluster, "get", "orders", "-n", ns, "-o", "name").split()
    assert names == [f"order.{GROUP}/o{i}" for i in range(5)]
    kubectl(cluster, "delete", "order", "o0", "-n", ns)
    after = terminator.stats()["arc/FRONTEND"]
    requests = int(after["req_tot"]) - int(before["req_tot"])
    over_h2 = int(after["h2_headers_rcvd"]) - int(before["h2_headers_rcvd"])
    # 5 applies (GET + create each), 1 list, 1 delete at least; all of them as HTTP/2 streams
    assert requests >= 12
    assert over_h2 == requests
    # kube-apiserver multiplexes them: a connection or two (the availability check may open one), not one each
    assert int(after["h2_total_connections"]) - int(before["h2_total_connections"]) <= 2


def test_a_watch_streams_through_h2(cluster: LocalCluster) -> None:
    ns = f"h2w-{uuid.uuid4().hex[:6]}"
    kubectl(cluster, "create", "namespace", ns)
    watch = subprocess.Popen(
        [
            "kubectl",
            f"--kubeconfig={cluster.kubeconfig}",
            "get",
            "orders",
            "-n",
            ns,
            "--watch",
            "--output-watch-events",
            "-o",
            "jsonpath={.type} {.object.metadata.name}{'\\n'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the watch is open before the writes
        kubectl(cluster, "apply", "-f", "-", stdin=order("w1", ns))
        kubectl(cluster, "apply", "-f", "-", stdin=order("w2", ns))
        kubectl(cluster, "delete", "order", "w1", "-n", ns)
        seen: list[str] = []
        deadline = time.monotonic() + 30
        assert watch.stdout is not None
        while len(seen) < 3 and time.monotonic() < deadline:
            line = watch.stdout.readline().strip()
            if line:
                seen.append(line)
        assert seen == ["ADDED w1", "ADDED w2", "DELETED w1"]
    finally:
        watch.kill()
        watch.wait(10)
    streams = int(cluster.h2_terminator.stats()["arc/FRONTEND"]["h2_headers_rcvd"])
    assert streams > 0


def test_a_clients_own_client_cert_header_is_deleted_by_the_terminator(cluster: LocalCluster) -> None:
    """Straight to HAProxy without a client certificate, with the front proxy's certificate in the header
    and its user headers: ARC must see an anonymous request (kube's RBAC refuses it), not the admin."""
    proxy_cert = (cluster.pki_dir / "front-proxy-client.crt").read_text()
    der_b64 = "".join(line for line in proxy_cert.splitlines() if "CERTIFICATE" not in line)
    context = ssl.create_default_context(cafile=str(cluster.pki_dir / "ca.crt"))
    url = f"https://127.0.0.1:{cluster.ports.arc_h2_terminator}/apis/{GROUP}/v1alpha1/orders"
    request = urllib.request.Request(
        url,
        headers={
            CLIENT_CERT_HEADER: f":{der_b64}:",
            "X-Remote-User": "admin",
            "X-Remote-Group": "system:masters",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert refused.value.code == 403
    body = json.loads(refused.value.read())
    assert "system:anonymous" in body["message"]


def _whoami(port: int, cluster: LocalCluster, cert: pki.KeyPair, headers: dict[str, str]) -> tuple[int, str]:
    """GET the Orders of all namespaces on HAProxy's ``port`` with ``cert``: (status, body)."""
    context = ssl.create_default_context(cafile=str(cluster.pki_dir / "ca.crt"))
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    url = f"https://127.0.0.1:{port}/apis/{GROUP}/v1alpha1/orders"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), context=context, timeout=10
        ) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _foreign_front_proxy(tmp_path: Path) -> pki.KeyPair:
    """A client certificate named as the front proxy, from a CA the cluster does not know."""
    return pki.issue(
        pki.create_ca(tmp_path, "other-ca", "other-ca"),
        tmp_path,
        "m",
        common_name="front-proxy-client",
        client=True,
    )


def test_a_certificate_of_another_issuer_fails_the_handshake(cluster: LocalCluster, tmp_path: Path) -> None:
    """The stack's terminator checks the chain as ARC's own TLS port does."""
    mallory = _foreign_front_proxy(tmp_path)
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        _whoami(cluster.ports.arc_h2_terminator, cluster, mallory, {"X-Remote-User": "admin"})


def test_with_verify_chain_off_arc_alone_decides(cluster: LocalCluster, tmp_path: Path) -> None:
    """``H2Terminator(verify_chain=False)`` (what a cluster whose CAs rotate would run): HAProxy lets any
    issuer through the handshake, and ARC refuses a foreign front proxy (401) while it accepts the real one
    (the request-header CA of the live ConfigMap) and maps the user headers."""
    own = dataclasses.replace(
        cluster.h2_terminator, port=free_port(), verify_chain=False, name="haproxy-arc-decides"
    )
    component = Component("arc-h2-terminator-arc-decides", cluster.work_dir)
    component.start(own.argv())
    try:
        component.wait_until(lambda: own.ready(cluster.pki_dir / "ca.crt"), timeout=30, what="serving")
        assert "ca-ignore-err all crt-ignore-err all" in own.config_file.read_text()
        mallory = _foreign_front_proxy(tmp_path)
        user = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
        status, body = _whoami(own.port, cluster, mallory, user)
        assert status == 401, body
        proxy = pki.KeyPair(
            cluster.pki_dir / "front-proxy-client.crt", cluster.pki_dir / "front-proxy-client.key"
        )
        status, body = _whoami(own.port, cluster, proxy, user)
        assert status == 200, body
        assert json.loads(body)["kind"] == "OrderList"
    finally:
        component.stop()
