"""The local control plane is made of the real upstream programs, and they work together."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from hack.binaries import pinned_versions
from hack.cluster import FAKE_NODES, LocalCluster
from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e


def eventually(check: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not {what} within {timeout}s")


def test_control_plane_is_healthy(local_cluster: LocalCluster, kubectl: Kubectl) -> None:
    client = local_cluster.admin()
    assert client.request("GET", "/readyz") == "ok"
    assert client.request("GET", "/livez") == "ok"
    assert client.get("/version")["gitVersion"] == pinned_versions()["kube-apiserver"]
    assert f"Server Version: {pinned_versions()['kube-apiserver']}" in kubectl.run("version")
    for name in local_cluster.component_names:
        assert local_cluster.component(name).is_running(), name


def test_aggregation_layer_is_configured(kubectl: Kubectl) -> None:
    """kube-apiserver publishes the front-proxy CA and header names for extension API servers."""
    cm = kubectl.json("get", "configmap", "-n", "kube-system", "extension-apiserver-authentication")
    assert "BEGIN CERTIFICATE" in cm["data"]["requestheader-client-ca-file"]
    assert cm["data"]["requestheader-allowed-names"] == '["front-proxy-client"]'
    assert cm["data"]["requestheader-username-headers"] == '["X-Remote-User"]'
    assert "BEGIN CERTIFICATE" in cm["data"]["client-ca-file"]


def test_kwok_nodes_are_ready(kubectl: Kubectl) -> None:
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]}
    assert set(FAKE_NODES) <= set(nodes)
    for name in FAKE_NODES:
        conditions = {c["type"]: c["status"] for c in nodes[name]["status"]["conditions"]}
        assert conditions["Ready"] == "True"
    table = kubectl.run("get", "nodes")
    for name in FAKE_NODES:
        assert any(line.split()[:2] == [name, "Ready"] for line in table.splitlines())


def test_pod_is_scheduled_and_running(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("run", "web", "-n", namespace, "--image=registry.example/web:1", "--restart=Never")
    kubectl.run("wait", "-n", namespace, "--for=condition=Ready", "pod/web", "--timeout=60s", timeout=90)
    pod = kubectl.json("get", "pod", "-n", namespace, "web")
    assert pod["spec"]["nodeName"] in FAKE_NODES
    assert pod["status"]["phase"] == "Running"


def test_pods_log_reaches_the_fake_nodes_kubelet(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    """kube-apiserver → kwok's kubelet API (TLS, the nodes' InternalIP 127.0.0.1) → the pod logs file."""
    overrides = '{"spec":{"containers":[{"name":"main","image":"registry.example/tool:1"}]}}'
    kubectl.run("run", "tool", "-n", namespace, "--image=registry.example/tool:1", "--restart=Never",
                f"--overrides={overrides}")  # fmt: skip
    kubectl.run("wait", "-n", namespace, "--for=condition=Ready", "pod/tool", "--timeout=60s", timeout=90)
    marker = f"copied {uuid.uuid4().hex}"
    with local_cluster.pod_logs_file.open("a") as log:
        log.write("2026-12-05T05:00:00.000000000Z stdout F starting\n")
        log.write(f"2026-12-05T05:00:01.000000000Z stderr F {marker}\n")
    assert kubectl.run("logs", "-n", namespace, "tool", "-c", "main", "--tail=1") == f"{marker}\n"
    node = kubectl.json(
        "get", "node", kubectl.json("get", "pod", "-n", namespace, "tool")["spec"]["nodeName"]
    )
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]


def test_job_completes(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "job", "once", "-n", namespace, "--image=registry.example/tool:1", "--", "true")
    kubectl.run("wait", "-n", namespace, "--for=condition=Complete", "job/once", "--timeout=90s", timeout=120)
    job = kubectl.json("get", "job", "-n", namespace, "once")
    assert job["status"]["succeeded"] == 1


def test_deleting_a_namespace_removes_its_pods(kubectl: Kubectl) -> None:
    ns = f"doomed-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    kubectl.run("run", "victim", "-n", ns, "--image=registry.example/web:1", "--restart=Never")
    kubectl.run("wait", "-n", ns, "--for=condition=Ready", "pod/victim", "--timeout=60s", timeout=90)
    assert kubectl.json("get", "pods", "-n", ns)["items"]
    kubectl.run("delete", "namespace", ns, "--timeout=120s", timeout=150)
    assert "NotFound" in kubectl.run("get", "namespace", ns, check=False)
    assert kubectl.json("get", "pods", "-n", ns)["items"] == []


def test_garbage_collector_deletes_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "configmap", "owner", "-n", namespace, "--from-literal=k=v")
    owner_uid = kubectl.json("get", "configmap", "-n", namespace, "owner")["metadata"]["uid"]
    dependent = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  namespace: {namespace}
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: owner
    uid: {owner_uid}
data: {{k: v}}
"""
    kubectl.run("apply", "-f", "-", stdin=dependent)
    kubectl.run("delete", "configmap", "-n", namespace, "owner")

    def dependent_gone() -> bool:
        return "NotFound" in kubectl.run("get", "configmap", "-n", namespace, "dependent", check=False)

    eventually(dependent_gone, timeout=60, what="garbage-collected")
