"""Helpers shared by the e2e modules: polling with deadlines, kubectl with exit codes, manifests, and
direct HTTPS requests to ARC's own port (bypassing kube-apiserver) with a chosen client certificate."""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack import pki
from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl

GROUP = "arc.opendefense.cloud"
API_VERSION = f"{GROUP}/v1alpha1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def eventually(check: Callable[[], bool], *, timeout: float = 60, interval: float = 0.5, what: str) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(interval)


def kubectl_proc(
    kubectl: Kubectl,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """kubectl with its exit code, stdout and stderr (``Kubectl.run`` hides one of them)."""
    return subprocess.run(
        ["kubectl", *args],
        env={**kubectl.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


@contextmanager
def kubectl_stream(kubectl: Kubectl, *args: str) -> Iterator[Callable[[Callable[[str], bool], float], str]]:
    """A long-running kubectl (``get -w``, ``wait``): yields ``expect(predicate, timeout) -> line`` that
    returns the first output line matching ``predicate``; the process is killed on exit."""
    proc = subprocess.Popen(
        ["kubectl", *args],
        env=kubectl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []

    def expect(predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"kubectl {' '.join(args)}: no matching line in {timeout}s; saw {seen}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"kubectl {' '.join(args)} ended without a matching line; saw {seen}")
            seen.append(line)
            if predicate(line):
                return line

    try:
        yield expect
    finally:
        proc.kill()
        proc.wait(timeout=10)
        reader.join(timeout=10)


def order(name: str, namespace: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {
            "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
            "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
        },
    }


def endpoint(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "oci", "remoteURL": "registry.example/mirror", "usage": "All"},
    }


def artifact_type(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactType",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"workflowTemplateRef": {"name": "arc-oci", "clusterScope": False}},
    }


def cluster_artifact_type(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterArtifactType",
        "metadata": {"name": name},
        "spec": {"workflowTemplateRef": {"name": "arc-oci", "clusterScope": True}},
    }


def manifest(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


# ---- direct requests to ARC's port -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message(self) -> str:
        try:
            return str(self.json().get("message", ""))
        except ValueError:
            return self.body.decode(errors="replace")


class TLSRejected(Exception):
    """The TLS handshake (or the connection right after it) was refused by the server."""


def direct(
    cluster: LocalCluster,
    method: str,
    path: str,
    *,
    cert: pki.KeyPair | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout: float = 10,
) -> Reply:
    """One HTTPS request to ARC's own port on 127.0.0.1, trusting the cluster CA, optionally presenting a
    client certificate. Raises ``TLSRejected`` when the server refuses the connection."""
    context = ssl.create_default_context(cafile=str(cluster.pki_dir / "ca.crt"))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", cluster.ports.arc_apiserver, context=context, timeout=timeout
    )
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=all_headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read())
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as err:
        raise TLSRejected(repr(err)) from err
    finally:
        conn.close()


def cluster_pair(cluster: LocalCluster, name: str) -> pki.KeyPair:
    return pki.KeyPair(cluster.pki_dir / f"{name}.crt", cluster.pki_dir / f"{name}.key")


def extra_certs_dir(cluster: LocalCluster) -> Path:
    path = cluster.work_dir / "e2e-certs"
    path.mkdir(exist_ok=True)
    return path
