"""The ArtifactWorkflow controller over the in-memory FakeKubeClient (Manager, informers, owner mapping)."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.resources import format_rfc3339
from controllers.artifactworkflow import setup_artifact_workflow_controller
from controllers.artifactworkflow.admission import admission_message, has_pending_pods
from controllers.artifactworkflow.failurelog import pod_name, tail_message
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import (
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    EVENTS,
    LOCAL_QUEUES,
    SECRETS,
    WORKFLOWS,
    WORKLOADS,
)
from controllers.runtime import Manager
from tests.unit.controllers.test_artifactworkflow_provenance import EVIDENCE, KEY, SRC, workflow

pytestmark = pytest.mark.looptime
NS = "ns"
NAME = "o-0123456789abcdef"


class Env:
    def __init__(self, client: FakeKubeClient) -> None:
        self.client = client

    async def until(self, check: Callable[[], Any], within: float = 20) -> Any:
        async with asyncio.timeout(within):
            while True:
                value = check()
                if value:
                    return value
                await asyncio.sleep(0.05)

    def get(self, resource: Any, name: str = NAME) -> dict[str, Any] | None:
        return self.client.objects.get((resource, NS, name))

    def aw_phase(self) -> str | None:
        aw = self.get(ARTIFACT_WORKFLOWS)
        return ((aw or {}).get("status") or {}).get("phase")

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [
            o for (res, _, _), o in self.client.objects.items() if res == EVENTS and o["reason"] == reason
        ]

    async def set_workflow_status(self, status: dict[str, Any]) -> None:
        wf = await self.client.get(WORKFLOWS, NS, NAME)
        wf["status"] = status
        await self.client.replace(WORKFLOWS, NS, NAME, wf)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    client = FakeKubeClient()
    manager = Manager(client, bind_address=None)
    setup_artifact_workflow_controller(manager, concurrency=2, log_lines=10)
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {
            "metadata": {"name": "oci"},
            "spec": {
                "workflowTemplateRef": {"name": "arc-oci", "clusterScope": True},
                "ttl": {"afterSucceeded": "30s"},
            },
        },
    )
    task = asyncio.create_task(manager.run())
    try:
        yield Env(client)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def aw_body() -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "ArtifactWorkflow",
        "metadata": {"name": NAME, "labels": {"arc.opendefense.cloud/order": "o"}},
        "spec": {
            "type": "oci",
            "workflowTemplateRef": {"name": "arc-oci", "clusterScope": True},
            "parameters": [{"name": "srcRemoteURL", "value": "docker.io"}],
            "srcSecretRef": {"name": "creds"},
            "queueName": "arc",
        },
    }


async def test_workflow_created_and_status_mirrored_until_ttl(env: Env) -> None:
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    wf = await env.until(lambda: env.get(WORKFLOWS))
    assert wf["spec"]["volumes"][0] == {"name": "src-secret-vol", "secret": {"secretName": "creds"}}
    assert wf["spec"]["podMetadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "arc"
    await env.until(lambda: env.aw_phase() == "Pending")
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None and "arc.opendefense.cloud/artifact-workflow" in aw["metadata"]["finalizers"]
    assert aw["status"]["workflowName"] == NAME
    assert env.events("WorkflowCreated")

    await env.set_workflow_status({"phase": "Running", "startedAt": "2026-11-21T10:00:00Z"})
    await env.until(lambda: env.aw_phase() == "Running")
    await env.set_workflow_status(
        {"phase": "Succeeded", "startedAt": "2026-11-21T10:00:00Z", "finishedAt": "2099-01-01T00:00:00Z"}
    )
    await env.until(lambda: env.aw_phase() == "Succeeded")
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None
    ready = aw["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Succeeded")
    assert env.events("WorkflowSucceeded")


async def test_failed_step_named_and_unfinished_workflow_recreated(env: Env) -> None:
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.aw_phase() == "Pending")
    await env.client.delete(WORKFLOWS, NS, NAME)
    await env.until(lambda: env.events("WorkflowRecreated"))
    assert env.get(WORKFLOWS) is not None
    await env.set_workflow_status(
        {
            "phase": "Failed",
            "nodes": {
                "n": {"type": "Pod", "phase": "Failed", "displayName": "copy", "message": "exit code 3"}
            },
        }
    )
    await env.until(lambda: env.aw_phase() == "Failed")
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None and aw["status"]["message"].startswith('step "copy" failed: exit code 3')
    assert env.events("WorkflowFailed")
    # A finished ArtifactWorkflow whose Workflow goes away is not re-run.
    await env.client.delete(WORKFLOWS, NS, NAME)
    await asyncio.sleep(5)
    assert env.get(WORKFLOWS) is None and env.aw_phase() == "Failed"


async def test_deleting_the_artifact_workflow_deletes_its_workflow_first(env: Env) -> None:
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.get(WORKFLOWS) and env.aw_phase())
    await env.client.delete(ARTIFACT_WORKFLOWS, NS, NAME)
    await env.until(lambda: env.get(WORKFLOWS) is None)
    await env.until(lambda: env.get(ARTIFACT_WORKFLOWS) is None)


async def test_succeeded_artifact_workflow_removed_after_ttl(env: Env) -> None:
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.aw_phase() == "Pending")
    await env.set_workflow_status({"phase": "Succeeded", "finishedAt": "2020-01-01T00:00:00Z"})
    await env.until(lambda: env.get(ARTIFACT_WORKFLOWS) is None, within=60)


async def test_evidence_reaches_status_provenance_and_a_transferred_event(env: Env) -> None:
    def verified() -> float:
        value = REGISTRY.get_sample_value("arc_artifacts_transferred_total", {"signature": "verified"})
        return value or 0.0

    before = verified()
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.aw_phase() == "Pending")
    status = workflow(EVIDENCE)["status"] | {"finishedAt": "2099-01-01T00:00:00Z"}
    await env.set_workflow_status(status)
    await env.until(lambda: env.aw_phase() == "Succeeded")
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None
    provenance = aw["status"]["provenance"]
    assert provenance["destination"] == {"reference": "dst.example/mirror/team/hello:1.0", "digest": SRC}
    assert provenance["signature"] == {"verified": True, "key": KEY, "signedDigest": SRC}
    assert [p["platform"] for p in provenance["platforms"]] == ["linux/amd64", "linux/arm64/v8"]
    events = await env.until(lambda: env.events("Transferred"))
    assert events[0]["message"] == (
        f"Transferred: src.example:5000/team/hello@{SRC} → dst.example/mirror/team/hello@{SRC}, "
        f"signature verified by {KEY}"
    )
    assert events[0]["type"] == "Normal"
    assert verified() == before + 1


async def test_completions_and_duration_are_counted_once_per_finish(env: Env) -> None:
    labels = {"namespace": NS, "artifact_type": "oci", "result": "succeeded"}
    hist = {"artifact_type": "oci", "result": "succeeded"}

    def sample(name: str, which: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, which) or 0.0

    before = sample("arc_artifactworkflow_completions_total", labels)
    count_before = sample("arc_artifactworkflow_duration_seconds_count", hist)
    sum_before = sample("arc_artifactworkflow_duration_seconds_sum", hist)
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.aw_phase() == "Pending")
    finished = datetime.now(UTC)  # the type's TTL (30s) counts from here
    started = finished - timedelta(seconds=90)
    await env.set_workflow_status(
        {"phase": "Succeeded", "startedAt": format_rfc3339(started), "finishedAt": format_rfc3339(finished)}
    )
    await env.until(lambda: env.aw_phase() == "Succeeded")
    await asyncio.sleep(2)
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None
    aw["metadata"]["labels"]["touched"] = "yes"  # another event: reconciled again, not counted again
    await env.client.replace(ARTIFACT_WORKFLOWS, NS, NAME, copy.deepcopy(aw))
    await asyncio.sleep(2)
    assert sample("arc_artifactworkflow_completions_total", labels) == before + 1
    assert sample("arc_artifactworkflow_duration_seconds_count", hist) == count_before + 1
    assert sample("arc_artifactworkflow_duration_seconds_sum", hist) == sum_before + 90.0
    assert sample("arc_artifactworkflow_duration_seconds_bucket", {**hist, "le": "120.0"}) >= 1


async def test_ttl_after_failed_is_its_own_clock(env: Env) -> None:
    """A failed ArtifactWorkflow is kept for the type's ttl.afterFailed (60s), not afterSucceeded (30s):
    finished 45s ago it stays; finished 61s ago it is deleted."""
    cat = await env.client.get(CLUSTER_ARTIFACT_TYPES, None, "oci")
    cat["spec"]["ttl"] = {"afterSucceeded": "30s", "afterFailed": "60s"}
    await env.client.replace(CLUSTER_ARTIFACT_TYPES, None, "oci", cat)
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.aw_phase() == "Pending")
    finished = datetime.now(UTC) - timedelta(seconds=45)
    await env.set_workflow_status({"phase": "Failed", "finishedAt": format_rfc3339(finished)})
    await env.until(lambda: env.aw_phase() == "Failed")
    await asyncio.sleep(1)  # virtual: the real clock stays within afterFailed
    assert env.get(ARTIFACT_WORKFLOWS) is not None, "deleted after afterSucceeded's 30s"

    other = {**aw_body(), "metadata": {"name": "o-fedcba9876543210"}}
    await env.client.create(ARTIFACT_WORKFLOWS, NS, other)
    await env.until(lambda: env.get(WORKFLOWS, "o-fedcba9876543210"))
    wf = await env.client.get(WORKFLOWS, NS, "o-fedcba9876543210")
    wf["status"] = {"phase": "Error", "finishedAt": format_rfc3339(datetime.now(UTC) - timedelta(seconds=61))}
    await env.client.replace(WORKFLOWS, NS, "o-fedcba9876543210", wf)
    await env.until(lambda: env.get(ARTIFACT_WORKFLOWS, "o-fedcba9876543210") is None)
    assert env.get(ARTIFACT_WORKFLOWS) is not None


def workload(name: str, pod: str, **conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": "u"}],
        },
        "spec": {"queueName": "arc"},
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": "R", "message": m} for t, (s, m) in conditions.items()
            ]
        },
    }


async def test_waiting_for_admission_says_why(env: Env) -> None:
    """No LocalQueue: said before the Workflow exists (Event), and as the message while its pod waits; then
    the Workload's own reason (quota); admitted: the message goes."""
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.get(WORKFLOWS))
    missing = 'LocalQueue "arc" does not exist in namespace "ns"'
    events = await env.until(lambda: env.events("LocalQueueNotFound"))
    assert events[0]["type"] == "Warning" and events[0]["message"].startswith(missing)
    await env.until(
        lambda: (
            ((env.get(ARTIFACT_WORKFLOWS) or {}).get("status") or {}).get("message", "").startswith(missing)
        )
    )
    pod_node = {"type": "Pod", "phase": "Pending", "displayName": "copy", "name": f"{NAME}.copy"}
    await env.set_workflow_status({"phase": "Running", "nodes": {"n": pod_node}})
    await env.client.create(
        WORKLOADS,
        NS,
        workload("pod-x", f"{NAME}-copy-123", QuotaReserved=("False", "LocalQueue arc doesn't exist")),
    )
    other = workload("pod-y", "someone-else-1", QuotaReserved=("False", "not ours"))
    await env.client.create(WORKLOADS, NS, other)

    def message() -> str:
        return str(((env.get(ARTIFACT_WORKFLOWS) or {}).get("status") or {}).get("message") or "")

    await env.until(
        lambda: message() == "waiting for admission by Kueue: LocalQueue arc doesn't exist", within=60
    )
    assert env.aw_phase() == "Running"
    wl = await env.client.get(WORKLOADS, NS, "pod-x")
    wl["status"]["conditions"][0]["message"] = (
        "couldn't assign flavors to pod set main: insufficient quota for cpu"
    )
    await env.client.replace(WORKLOADS, NS, "pod-x", wl)
    # a Workload's change is no event here: the next poll (ADMISSION_POLL) picks it up
    await env.until(lambda: "insufficient quota for cpu" in message(), within=60)
    wl = await env.client.get(WORKLOADS, NS, "pod-x")
    wl["status"]["conditions"] = [
        {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "ok"}
    ]
    await env.client.replace(WORKLOADS, NS, "pod-x", wl)
    await env.client.create(LOCAL_QUEUES, NS, {"metadata": {"name": "arc"}, "spec": {"clusterQueue": "arc"}})
    await env.until(lambda: message() == "", within=60)


def test_admission_message_reads_only_the_workflows_workloads() -> None:
    ours = workload("a", f"{NAME}-copy-1", QuotaReserved=("False", "quota"))
    theirs = workload("b", "x-copy-1", QuotaReserved=("False", "other"))
    admitted = workload("c", f"{NAME}-scan-2", QuotaReserved=("True", ""), Admitted=("True", ""))
    assert admission_message([theirs, admitted], NAME) is None
    assert admission_message([theirs, ours, admitted], NAME) == "waiting for admission by Kueue: quota"
    assert admission_message([workload("d", f"{NAME}-copy-1")], NAME) == "waiting for admission by Kueue"
    assert has_pending_pods({"status": {}}) and not has_pending_pods({"status": {"phase": "Running"}})
    running = {"status": {"phase": "Running", "nodes": {"n": {"type": "Pod", "phase": "Running"}}}}
    assert not has_pending_pods(running)


def test_pod_names_as_argo_makes_them() -> None:
    wf = {"metadata": {"name": "o-0123456789abcdef"}}
    node = {"id": "o-0123456789abcdef-1234", "name": "o-0123456789abcdef[0].copy", "templateName": "copy"}
    # workflow/util.GeneratePodName v2: fnv32a of the node name
    assert pod_name(wf, node) == "o-0123456789abcdef-copy-" + str(_go_fnv32a(node["name"]))
    assert pod_name(wf, {**node, "name": "o-0123456789abcdef"}) == "o-0123456789abcdef"
    v1 = {"metadata": {**wf["metadata"], "annotations": {"workflows.argoproj.io/pod-name-format": "v1"}}}
    assert pod_name(v1, node) == "o-0123456789abcdef-1234"


def _go_fnv32a(text: str) -> int:
    """hash/fnv New32a, spelled out independently of the code under test (known vector below)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) % 2**32
    return value


def test_fnv_vector() -> None:
    assert _go_fnv32a("a") == 0xE40C292C  # FNV-1a 32 test vector


async def test_a_failed_step_ends_with_its_masked_log_lines(env: Env) -> None:
    password = "hunter2-Secret-Pa55"
    auth = base64.b64encode(f"robot:{password}".encode()).decode()
    config = base64.b64encode(json.dumps({"auths": {"docker.io": {"auth": auth}}}).encode()).decode()
    await env.client.create(
        SECRETS, NS, {"metadata": {"name": "creds"}, "data": {".dockerconfigjson": config}}
    )
    await env.client.create(ARTIFACT_WORKFLOWS, NS, aw_body())
    await env.until(lambda: env.get(WORKFLOWS))
    node = {
        "id": "n1",
        "name": f"{NAME}[0].copy",
        "templateName": "copy",
        "type": "Pod",
        "phase": "Failed",
        "displayName": "copy",
        "message": "Error (exit code 1)",
    }
    pod = f"{NAME}-copy-{_go_fnv32a(node['name'])}"
    log = "".join(f"line {i}\n" for i in range(30)) + (
        f"skopeo copy --src-creds robot:{password} docker://x\n"
        f"Authorization: Bearer abc.def.ghi\n"
        f"FATA[0001] reading manifest: unauthorized ({auth})\n"
    )
    env.client.pod_logs[(NS, pod, "main")] = log
    await env.set_workflow_status({"phase": "Failed", "nodes": {"n": node}})
    await env.until(lambda: env.aw_phase() == "Failed")
    message = (env.get(ARTIFACT_WORKFLOWS) or {})["status"]["message"]
    head, _, tail = message.partition("; last log lines:\n")
    assert head == 'step "copy" failed: Error (exit code 1)'
    lines = tail.splitlines()
    assert len(lines) == 10 and lines[0] == "line 23"
    assert lines[-3:] == [
        "skopeo copy --src-creds ****** docker://x",
        "Authorization: Bearer ******",
        "FATA[0001] reading manifest: unauthorized (******)",
    ]
    assert password not in json.dumps(env.get(ARTIFACT_WORKFLOWS)) and auth not in message
    # read once: the next reconciles keep it (no second pods/log call)
    calls = [c for c in env.client.calls if c[0] == "get/log"]
    aw = env.get(ARTIFACT_WORKFLOWS)
    assert aw is not None
    aw["metadata"]["labels"]["touched"] = "yes"
    await env.client.replace(ARTIFACT_WORKFLOWS, NS, NAME, copy.deepcopy(aw))
    await asyncio.sleep(2)
    assert [c for c in env.client.calls if c[0] == "get/log"] == calls == [("get/log", "pods", NS, pod)]
    assert (env.get(ARTIFACT_WORKFLOWS) or {})["status"]["message"] == message


async def test_without_a_log_the_step_name_must_do(env: Env) -> None:
    await env.client.create(
        ARTIFACT_WORKFLOWS, NS, {**aw_body(), "spec": {**aw_body()["spec"], "srcSecretRef": {"name": ""}}}
    )
    await env.until(lambda: env.get(WORKFLOWS))
    node = {
        "name": f"{NAME}[0].scan",
        "templateName": "scan",
        "type": "Pod",
        "phase": "Error",
        "displayName": "scan",
    }
    await env.set_workflow_status({"phase": "Error", "nodes": {"n": node}})
    await env.until(lambda: env.aw_phase() == "Error")
    assert (env.get(ARTIFACT_WORKFLOWS) or {})["status"]["message"] == 'step "scan" failed'


def test_tail_message_bounds() -> None:
    log = "a\n" * 5 + ("x" * 1000) + "\n"
    assert tail_message("m", log, (), lines=0) == "m"
    assert tail_message("m", "", ()) == "m"
    out = tail_message("m", log, (), lines=2)
    assert out == "m; last log lines:\na\n" + "x" * 240
