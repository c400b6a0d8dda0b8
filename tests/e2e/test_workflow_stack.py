"""Argo's workflow-controller and Kueue on the local stack (SPEC §4.3, notes §8): Workflows of container
templates run on kwok's fake nodes to the end, kwok's ``simulate-exit-code`` Stage fails a step, and Kueue's
plain-pod integration admits Workflow pods one at a time within a ClusterQueue's quota.

Every Workflow written here passes the real ``argo lint --offline`` first. Templates declare no outputs:
without an executor in the pods, a template with outputs never finishes on kwok.
"""

from __future__ import annotations

import datetime
import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.binaries import binary_path
from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.support import eventually, manifest, unique

pytestmark = pytest.mark.e2e

SIMULATE_EXIT_CODE = "arc.opendefense.cloud/simulate-exit-code"
SIMULATE_SECONDS = "arc.opendefense.cloud/simulate-seconds"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
ADMISSION_GATE = "kueue.x-k8s.io/admission"
FINISHED = ("Succeeded", "Failed", "Error")


def workflow(
    name: str,
    namespace: str,
    steps: list[tuple[str, dict[str, str]]],
    *,
    pod_labels: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Workflow running ``steps`` (name, pod annotations) one after the other, each its own container
    template; ``pod_labels`` go to ``spec.podMetadata.labels`` as ARC's controller puts the queue label."""
    templates: list[dict[str, Any]] = [
        {"name": "main", "steps": [[{"name": step, "template": step}] for step, _ in steps]}
    ]
    for step, pod_annotations in steps:
        container: dict[str, Any] = {"image": "registry.example/tools:1", "command": ["true"]}
        if requests:
            container["resources"] = {"requests": requests}
        template: dict[str, Any] = {"name": step, "container": container}
        if pod_annotations:
            template["metadata"] = {"annotations": pod_annotations}
        templates.append(template)
    spec: dict[str, Any] = {"entrypoint": "main", "templates": templates}
    if pod_labels:
        spec["podMetadata"] = {"labels": pod_labels}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def argo_lint(tmp_path: Path, *objects: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{unique('lint')}.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return subprocess.run(
        [str(binary_path("argo")), "lint", "--offline", "--no-color", "-o", "simple", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_linted(kubectl: Kubectl, tmp_path: Path, obj: dict[str, Any]) -> None:
    lint = argo_lint(tmp_path, obj)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    kubectl.run("create", "-f", "-", stdin=manifest(obj))


def get_workflow(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    wf: dict[str, Any] = kubectl.json("get", "workflows.argoproj.io", "-n", namespace, name)
    return wf


def wait_finished(kubectl: Kubectl, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
    eventually(
        lambda: get_workflow(kubectl, namespace, name).get("status", {}).get("phase") in FINISHED,
        timeout=timeout,
        what=f"Workflow {name} finished",
    )
    return get_workflow(kubectl, namespace, name)


def pods_of(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace)["items"]
    return items


def _time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- the stack --------------------------------------------------------------------------------------


def test_argo_lint_is_a_real_check(tmp_path: Path) -> None:
    """The lint every Workflow here passes fails a template that uses an undefined input parameter."""
    ok = workflow("lint-ok", "default", [("copy", {})])
    assert argo_lint(tmp_path, ok).returncode == 0
    broken = workflow("lint-broken", "default", [("copy", {})])
    broken["spec"]["templates"][1]["container"]["args"] = ["{{inputs.parameters.missing}}"]
    lint = argo_lint(tmp_path, broken)
    assert lint.returncode != 0
    assert "missing" in lint.stdout + lint.stderr


def test_demo_objects_are_installed(kubectl: Kubectl) -> None:
    """deploy/demo/: Kueue flavor and queues, and the ClusterArtifactType "oci" using queue "arc"."""
    assert kubectl.json("get", "resourceflavors.kueue.x-k8s.io", "default")["metadata"]["name"] == "default"
    cq = kubectl.json("get", "clusterqueues.kueue.x-k8s.io", "arc")
    assert cq["spec"]["resourceGroups"][0]["coveredResources"] == ["cpu", "memory"]
    lq = kubectl.json("get", "localqueues.kueue.x-k8s.io", "-n", "arc-demo", "arc")
    assert lq["spec"]["clusterQueue"] == "arc"
    oci = kubectl.json("get", "clusterartifacttypes.arc.opendefense.cloud", "oci")
    assert oci["spec"]["workflowTemplateRef"] == {"name": "arc-oci", "clusterScope": True}
    assert oci["spec"]["queueName"] == "arc"


def test_kueue_webhooks_are_registered_by_loopback_url(local_cluster: LocalCluster, kubectl: Kubectl) -> None:
    port = local_cluster.ports.kueue_webhook
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        configurations = kubectl.json("get", kind)["items"]
        webhooks = [
            w for c in configurations if c["metadata"]["name"].startswith("kueue-") for w in c["webhooks"]
        ]
        assert any(w["clientConfig"]["url"].endswith("-v1-pod") for w in webhooks), kind
        for webhook in webhooks:
            assert webhook["clientConfig"]["url"].startswith(f"https://127.0.0.1:{port}/"), webhook["name"]


# ---- Argo on kwok -----------------------------------------------------------------------------------


def test_two_step_workflow_runs_to_succeeded(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    name = unique("two-steps")
    create_linted(kubectl, tmp_path, workflow(name, namespace, [("fetch", {}), ("push", {})]))
    wf = wait_finished(kubectl, namespace, name, timeout=90)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    pod_nodes = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}
    assert set(pod_nodes) == {"fetch", "push"}
    assert all(n["phase"] == "Succeeded" for n in pod_nodes.values())
    # one after the other: the second step started when the first had finished
    assert _time(pod_nodes["push"]["startedAt"]) >= _time(pod_nodes["fetch"]["finishedAt"])
    pods = pods_of(kubectl, namespace)
    assert len(pods) == 2
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)


def test_simulated_exit_code_fails_the_step(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    """A pod annotated simulate-exit-code "3" ends Failed with exit code 3 after simulate-seconds; the
    Workflow is Failed and its failed node names the step; the step after it never runs."""
    name = unique("fails")
    steps = [("fetch", {}), ("scan", {SIMULATE_EXIT_CODE: "3", SIMULATE_SECONDS: "2"}), ("push", {})]
    create_linted(kubectl, tmp_path, workflow(name, namespace, steps))
    wf = wait_finished(kubectl, namespace, name, timeout=90)
    assert wf["status"]["phase"] == "Failed"
    pod_nodes = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}
    assert pod_nodes["fetch"]["phase"] == "Succeeded"
    assert pod_nodes["scan"]["phase"] == "Failed"
    assert "exit code 3" in pod_nodes["scan"]["message"]
    assert "push" not in pod_nodes
    failed = [
        n["displayName"]
        for n in wf["status"]["nodes"].values()
        if n["type"] == "Pod" and n["phase"] == "Failed"
    ]
    assert failed == ["scan"]

    scan_pod = next(
        p for p in pods_of(kubectl, namespace) if p["metadata"]["name"].startswith(f"{name}-scan-")
    )
    assert scan_pod["status"]["phase"] == "Failed"
    exit_codes = {
        c["name"]: c["state"]["terminated"]["exitCode"] for c in scan_pod["status"]["containerStatuses"]
    }
    assert exit_codes["main"] == 3
    # simulate-seconds: Running for (at least) 2 seconds before the exit
    running_since = _time(scan_pod["status"]["startTime"])
    finished = _time(scan_pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])
    assert (finished - running_since).total_seconds() >= 1.5


def test_exit_code_zero_succeeds(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    name = unique("zero")
    create_linted(kubectl, tmp_path, workflow(name, namespace, [("copy", {SIMULATE_EXIT_CODE: "0"})]))
    assert wait_finished(kubectl, namespace, name, timeout=60)["status"]["phase"] == "Succeeded"


# ---- Kueue ------------------------------------------------------------------------------------------


@pytest.fixture
def one_pod_queue(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A ClusterQueue whose quota (1 CPU) fits one pod of 1 CPU at a time, and a LocalQueue for it."""
    cluster_queue = unique("one-at-a-time")
    objects = [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta1",
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                "namespaceSelector": {},
                "queueingStrategy": "StrictFIFO",
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory"],
                        "flavors": [
                            {
                                "name": "default",
                                "resources": [
                                    {"name": "cpu", "nominalQuota": "1"},
                                    {"name": "memory", "nominalQuota": "1Gi"},
                                ],
                            }
                        ],
                    }
                ],
            },
        },
        {
            "apiVersion": "kueue.x-k8s.io/v1beta1",
            "kind": "LocalQueue",
            "metadata": {"name": "transfers", "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue},
        },
    ]
    for obj in objects:
        kubectl.run("create", "-f", "-", stdin=manifest(obj))
    yield "transfers"
    kubectl.run("delete", "clusterqueues.kueue.x-k8s.io", cluster_queue, "--wait=false", check=False)


def test_kueue_admits_workflow_pods_within_quota(
    kubectl: Kubectl, namespace: str, tmp_path: Path, one_pod_queue: str
) -> None:
    names = [unique(f"queued-{i}") for i in range(3)]
    for name in names:
        wf = workflow(
            name,
            namespace,
            [("copy", {SIMULATE_SECONDS: "2"})],
            pod_labels={QUEUE_LABEL: one_pod_queue},
            requests={"cpu": "1", "memory": "64Mi"},
        )
        create_linted(kubectl, tmp_path, wf)

    # Every pod is created gated (Kueue's webhook) and gets its own Workload; at most one runs at a time.
    seen_gated: set[str] = set()
    max_running = 0

    def observe() -> bool:
        nonlocal max_running
        pods = pods_of(kubectl, namespace)
        for pod in pods:
            gates = [g["name"] for g in pod["spec"].get("schedulingGates", [])]
            if ADMISSION_GATE in gates:
                seen_gated.add(pod["metadata"]["name"])
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        max_running = max(max_running, len(running))
        return all(get_phase(kubectl, namespace, n) in FINISHED for n in names)

    eventually(observe, timeout=150, interval=0.3, what="all queued Workflows finished")
    assert max_running <= 1
    for name in names:
        assert get_phase(kubectl, namespace, name) == "Succeeded", name

    pods = pods_of(kubectl, namespace)
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["labels"][QUEUE_LABEL] == one_pod_queue
        assert pod["metadata"]["labels"].get("kueue.x-k8s.io/managed") == "true"
    # the ones that had to wait were seen behind Kueue's admission gate (the first may be admitted at once)
    assert len(seen_gated) >= 2, seen_gated

    workloads = kubectl.json("get", "workloads.kueue.x-k8s.io", "-n", namespace)["items"]
    assert len(workloads) == 3
    for workload in workloads:
        conditions = {c["type"]: c["status"] for c in workload["status"]["conditions"]}
        assert conditions.get("Admitted") == "True" and conditions.get("Finished") == "True"

    # From the pods' own timestamps: no two ran at the same time (second resolution).
    intervals = sorted(
        (
            _time(p["status"]["startTime"]),
            _time(p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]),
        )
        for p in pods
    )
    for (_, finished), (started, _) in itertools.pairwise(intervals):
        assert started >= finished


def get_phase(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str(get_workflow(kubectl, namespace, name).get("status", {}).get("phase", ""))
