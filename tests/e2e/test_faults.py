"""kill -9 of the controller manager while Orders fan out into ArtifactWorkflows and Workflows (issue 14).

Each cycle creates Orders and adds artifacts to earlier ones (writes acknowledged by ARC through
kube-apiserver), kills the leader-elected ``arc-controller-manager`` with SIGKILL in the middle, starts a
new one (it takes the Lease once the dead one's expires), and waits until everything has converged. Then:
every acknowledged Order is stored with at least its acknowledged generation, each artifact of each Order
has exactly one live ArtifactWorkflow (Order -> ArtifactWorkflow names unique per artifact) and each of
those exactly one Workflow. ``CHAOS_CYCLES`` (2) in ``make test``, ``make chaos`` 20 (marker ``chaos``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import LocalCluster
from hack.process import free_port
from tests.e2e.conftest import Kubectl
from tests.e2e.kubeclient import KubeClient
from tests.e2e.support import API_VERSION, eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHORT_CYCLES = int(os.environ.get("CHAOS_CYCLES", "2"))
LONG_CYCLES = int(os.environ.get("CHAOS_LONG_CYCLES", "20"))
ORDERS_PER_CYCLE = 4
LABEL_ORDER = "arc.opendefense.cloud/order"
LABEL_AW = "arc.opendefense.cloud/artifact-workflow"
INDEX = "arc.opendefense.cloud/artifact-index"
GV = f"/apis/{API_VERSION}"


class Manager:
    """``python -m controllers`` (leader election on a Lease of its own), killed and restarted by the test."""

    def __init__(self, kubeconfig: Path, log: Path, lease: str) -> None:
        self.kubeconfig, self.log, self.lease = kubeconfig, log, lease
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        argv = [
            sys.executable, "-m", "controllers", "--kubeconfig", str(self.kubeconfig), "--leader-elect",
            "--leader-election-id", self.lease, "--concurrency", "4", "--artifact-workflow-controller",
            "--metrics-bind-address", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the manager is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def artifact(image: str) -> dict[str, Any]:
    return {"type": "oci", "spec": {"image": image}}


def order(name: str, namespace: str, images: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [artifact(i) for i in images],
        },
    }


class Fanout:
    """The Orders a cycle writes, what ARC acknowledged, and the state they must converge to."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube, self.ns = kube, namespace
        self.acked: dict[str, tuple[int, int]] = {}
        """order name -> (generation, number of artifacts) of the last acknowledged write."""
        self.answers: Counter[int] = Counter()

    def create(self, name: str, images: list[str]) -> None:
        answer = self.kube.request(
            "POST", f"{GV}/namespaces/{self.ns}/orders", body=order(name, self.ns, images)
        )
        self.answers[answer.status] += 1
        assert answer.status == 201, answer.body
        self.acked[name] = (answer.body["metadata"]["generation"], len(images))

    def add_artifact(self, name: str, image: str) -> None:
        patch = [{"op": "add", "path": "/spec/artifacts/-", "value": artifact(image)}]
        answer = self.kube.request(
            "PATCH", f"{GV}/namespaces/{self.ns}/orders/{name}", body=patch,
            content_type="application/json-patch+json",
        )  # fmt: skip
        self.answers[answer.status] += 1
        assert answer.status == 200, answer.body
        self.acked[name] = (answer.body["metadata"]["generation"], len(answer.body["spec"]["artifacts"]))

    def items(self, path: str) -> list[dict[str, Any]]:
        answer = self.kube.request("GET", path)
        assert answer.status == 200, answer.body
        return [i for i in answer.body["items"] if not i["metadata"].get("deletionTimestamp")]

    def problems(self) -> list[str]:
        """Empty once every Order has one live ArtifactWorkflow per artifact, each with one Workflow."""
        orders = {o["metadata"]["name"]: o for o in self.items(f"{GV}/namespaces/{self.ns}/orders")}
        aws = self.items(f"{GV}/namespaces/{self.ns}/artifactworkflows")
        workflows = self.items(f"/apis/argoproj.io/v1alpha1/namespaces/{self.ns}/workflows")
        per_artifact: Counter[tuple[str, str]] = Counter(
            (aw["metadata"]["labels"].get(LABEL_ORDER, ""), aw["metadata"]["annotations"].get(INDEX, ""))
            for aw in aws
        )
        per_aw: Counter[str] = Counter(
            (w["metadata"].get("labels") or {}).get(LABEL_AW, "") for w in workflows
        )
        problems = []
        for name, (generation, count) in sorted(self.acked.items()):
            stored = orders.get(name)
            if stored is None:
                problems.append(f"order {name}: acknowledged, not stored")
                continue
            if stored["metadata"]["generation"] < generation:
                problems.append(f"order {name}: generation {stored['metadata']['generation']} < {generation}")
            for index in range(count):
                n = per_artifact[(name, str(index))]
                if n != 1:
                    problems.append(f"order {name} artifact {index}: {n} live ArtifactWorkflows")
        for aw in aws:
            n = per_aw[aw["metadata"]["name"]]
            if n != 1:
                problems.append(f"ArtifactWorkflow {aw['metadata']['name']}: {n} Workflows")
        return problems


@pytest.fixture
def fanout(local_cluster: LocalCluster, kubectl: Kubectl, namespace: str) -> Fanout:
    kubectl.run("create", "namespace", "arc-system", check=False)
    kubectl.run("apply", "-f", str(REPO / "deploy/controllers/rbac.yaml"))
    for name, url in (("src", "src.example/mirror"), ("dst", "dst.example/library")):
        endpoint = {
            "apiVersion": API_VERSION,
            "kind": "Endpoint",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "oci", "remoteURL": url, "usage": "All"},
        }
        kubectl.run("apply", "-f", "-", stdin=json.dumps(endpoint))
    return Fanout(KubeClient(local_cluster), namespace)


@pytest.fixture
def manager(local_cluster: LocalCluster, tmp_path: Path) -> Iterator[Manager]:
    mgr = Manager(local_cluster.kubeconfig, tmp_path / "manager.log", f"arc-chaos-{uuid.uuid4().hex[:6]}")
    mgr.start()
    try:
        eventually(mgr.ready, timeout=60, what="the manager ready")
        yield mgr
    finally:
        mgr.stop()


def run_cycles(fanout: Fanout, manager: Manager, cycles: int) -> None:
    created: list[str] = []
    for cycle in range(cycles):
        for i in range(ORDERS_PER_CYCLE):
            name = f"o{cycle}-{i}"
            fanout.create(name, [f"library/{name}:a", f"library/{name}:b"])
            created.append(name)
            if i == 1:  # in the middle of the writes, with reconciles in flight
                time.sleep(0.3)
                manager.kill9()
                manager.start()
            if len(created) > 2:
                fanout.add_artifact(created[-3], f"library/{name}:extra")
        eventually(manager.ready, timeout=60, what=f"the new manager ready; log:\n{manager.tail()}")
        deadline = time.monotonic() + 120
        while problems := fanout.problems():
            if time.monotonic() > deadline:
                raise AssertionError(f"cycle {cycle}: {problems[:10]}\nmanager log:\n{manager.tail()}")
            time.sleep(1)
    print(f"controller manager: {cycles} kills, {len(created)} Orders, answers {dict(fanout.answers)}")


def test_manager_kill9_duplicates_nothing_and_loses_nothing(fanout: Fanout, manager: Manager) -> None:
    run_cycles(fanout, manager, SHORT_CYCLES)


@pytest.mark.chaos
def test_long_manager_kill9(fanout: Fanout, manager: Manager) -> None:
    run_cycles(fanout, manager, LONG_CYCLES)
