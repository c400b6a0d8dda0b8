"""The informer transforms keep what the reconcilers read and nothing else (controller-runtime's cache
`TransformFunc`), and one informer is never shared under two transforms."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from api.arc.v1alpha1.types import ArtifactWorkflow
from controllers.artifactworkflow.admission import has_pending_pods
from controllers.artifactworkflow.failurelog import pod_name
from controllers.artifactworkflow.provenance import provenance_from_workflow
from controllers.artifactworkflow.setup import workflow_as_the_reconciler_reads_it
from controllers.artifactworkflow.workflow import failed_node, workflow_state
from controllers.controllerutil import controller_of
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import ARTIFACT_WORKFLOWS
from controllers.order.schedule import ANNOTATION_SCHEDULED_TIME, LABEL_SCHEDULE_KEY
from controllers.order.setup import artifact_workflow_as_the_order_controller_reads_it
from controllers.runtime import Manager
from controllers.runtime.informer import strip_managed_fields

OWNER = {
    "apiVersion": "arc.opendefense.cloud/v1alpha1",
    "kind": "Order",
    "name": "o",
    "uid": "u-o",
    "controller": True,
    "blockOwnerDeletion": True,
}


def artifact_workflow(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "ArtifactWorkflow",
        "metadata": {
            "name": "o-abc",
            "namespace": "ns",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 1,
            "ownerReferences": [OWNER],
            "deletionTimestamp": "2027-01-15T08:00:00Z",
            "labels": {"arc.opendefense.cloud/order": "o"},
            "annotations": {"arc.opendefense.cloud/artifact-index": "0"},
            "managedFields": [{"manager": "m"}],
        },
        "spec": {
            "type": "oci",
            "workflowTemplateRef": {"name": "t", "clusterScope": True},
            "parameters": [{"name": "srcType", "value": "oci"}] * 10,
        },
        "status": status,
    }


def test_the_order_controllers_view_of_an_artifact_workflow_keeps_what_it_reads() -> None:
    raw = artifact_workflow(phase="Failed", message="boom", conditions=[{"type": "Ready", "status": "False"}])
    full = ArtifactWorkflow.model_validate(strip_managed_fields(copy.deepcopy(raw)))
    pruned = ArtifactWorkflow.model_validate(artifact_workflow_as_the_order_controller_reads_it(raw))
    for field in ("name", "namespace", "uid", "resource_version", "generation", "deletion_timestamp"):
        assert getattr(pruned.metadata, field) == getattr(full.metadata, field), field
    assert pruned.metadata.owner_references == full.metadata.owner_references
    assert controller_of(pruned.metadata) == controller_of(full.metadata)
    assert pruned.status is not None and full.status is not None
    assert (pruned.status.phase, pruned.status.message) == (full.status.phase, full.status.message)
    assert pruned.spec.parameters is None and pruned.metadata.annotations is None
    assert pruned.status.conditions is None


def test_an_artifact_workflow_without_status_stays_without() -> None:
    pruned = artifact_workflow_as_the_order_controller_reads_it(artifact_workflow())
    assert "status" not in pruned
    assert ArtifactWorkflow.model_validate(pruned).status is None


def workflow(phase: str | None, nodes: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "message": "child 'x' failed",
        "startedAt": "2026-11-21T10:00:00Z",
        "finishedAt": "2026-11-21T10:01:00Z",
        "nodes": nodes,
        "storedTemplates": {"t": {"container": {"image": "x" * 1000}}},
        "resourcesDuration": {"cpu": 3},
    }
    if phase is not None:
        status["phase"] = phase
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "o-abc",
            "namespace": "ns",
            "uid": "w-1",
            "resourceVersion": "7",
            "ownerReferences": [{**OWNER, "kind": "ArtifactWorkflow", "uid": "u-1"}],
            "labels": {"workflows.argoproj.io/phase": "Failed"},
        },
        "spec": {"arguments": {"parameters": [{"name": "p", "value": "v"}] * 20}},
        "status": status,
    }


NODES = {
    "a": {"type": "Pod", "phase": "Succeeded", "displayName": "pull", "outputs": {"x": 1}},
    "b": {
        "type": "Pod",
        "phase": "Failed",
        "displayName": "copy",
        "message": "Error (exit code 3)",
        "finishedAt": "2026-11-21T10:00:50Z",
        "inputs": {"parameters": []},
    },
    "c": {"type": "Steps", "phase": "Failed", "displayName": "main"},
    "d": {"type": "Pod", "phase": "Error", "name": "wf.d", "finishedAt": "2026-11-21T10:00:40Z"},
}


@pytest.mark.parametrize("phase", [None, "Pending", "Running", "Succeeded", "Failed", "Error", "Weird"])
def test_a_pruned_workflow_has_the_same_state(phase: str | None) -> None:
    raw = workflow(phase, NODES)
    pruned = workflow_as_the_reconciler_reads_it(copy.deepcopy(raw))
    assert workflow_state(pruned) == workflow_state(raw)
    assert pruned["metadata"]["ownerReferences"] == raw["metadata"]["ownerReferences"]
    assert "spec" not in pruned and "storedTemplates" not in pruned["status"]
    assert set(pruned["status"]["nodes"]) == {"b", "d"}


def test_a_pruned_workflow_gives_the_merged_readers_the_same_answers() -> None:
    """Evidence (status.provenance), pending pods (Kueue's waiting reason) and the failed pod's name (its
    log) read the same from the pruned cache as from the full object."""
    evidence = [
        {"name": "sourceRef", "value": "src.example/a:1"},
        {"name": "sourceDigest", "value": "sha256:" + "a" * 64},
        {"name": "destinationRef", "value": "dst.example/a:1"},
        {"name": "destinationDigest", "value": "sha256:" + "a" * 64},
        {"name": "signatureKey", "value": "ClusterArtifactType/oci sha256:" + "b" * 64},
        {"name": "tools", "value": "skopeo 1.18"},
        {"name": "unrelated", "value": "x" * 1000},
    ]
    nodes = {
        **NODES,
        "e": {"type": "Pod", "phase": "Succeeded", "id": "e", "finishedAt": "2026-11-21T10:00:30Z",
              "outputs": {"parameters": evidence}},
        "f": {"type": "Pod", "phase": "Pending", "displayName": "scan", "inputs": {"parameters": []}},
        "g": {"type": "Pod", "phase": "Failed", "id": "g", "name": "o-abc[0].copy", "templateName": "copy",
              "message": "boom", "finishedAt": "2026-11-21T10:00:45Z"},
    }  # fmt: skip
    raw = workflow("Running", nodes)
    raw["metadata"]["annotations"] = {"workflows.argoproj.io/pod-name-format": "v1", "other": "y" * 100}
    pruned = workflow_as_the_reconciler_reads_it(copy.deepcopy(raw))
    assert provenance_from_workflow(pruned) == provenance_from_workflow(raw) is not None
    assert has_pending_pods(pruned) and has_pending_pods(raw)
    assert failed_node(pruned["status"]) == failed_node(raw["status"])
    for node_id in ("b", "d", "g"):
        assert pod_name(pruned, pruned["status"]["nodes"][node_id]) == pod_name(
            raw, raw["status"]["nodes"][node_id]
        )
    assert pruned["metadata"]["annotations"] == {"workflows.argoproj.io/pod-name-format": "v1"}
    assert "unrelated" not in str(pruned) and "inputs" not in str(pruned)
    raw["status"]["nodes"]["f"]["phase"] = "Running"
    assert not has_pending_pods(workflow_as_the_reconciler_reads_it(copy.deepcopy(raw)))


def test_the_order_controllers_view_keeps_the_schedule_and_the_evidence_it_shows() -> None:
    digest, key = "sha256:" + "c" * 64, "ClusterArtifactType/oci sha256:" + "d" * 64
    raw = artifact_workflow(
        phase="Succeeded",
        finishedAt="2026-11-21T10:01:00Z",
        provenance={
            "source": {"reference": "src.example/a:1", "digest": digest},
            "destination": {"reference": "dst.example/a:1", "digest": digest},
            "signature": {"verified": True, "key": key, "signedDigest": digest},
            "tools": [{"name": "skopeo", "version": "1.18"}],
        },
    )
    raw["metadata"]["creationTimestamp"] = "2026-11-21T10:00:00Z"
    raw["metadata"]["labels"][LABEL_SCHEDULE_KEY] = "k1"
    raw["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME] = "2026-11-21T10:00:00Z"
    full = ArtifactWorkflow.model_validate(strip_managed_fields(copy.deepcopy(raw)))
    pruned = ArtifactWorkflow.model_validate(artifact_workflow_as_the_order_controller_reads_it(raw))
    assert pruned.metadata.labels == {LABEL_SCHEDULE_KEY: "k1"}
    assert pruned.metadata.annotations == {ANNOTATION_SCHEDULED_TIME: "2026-11-21T10:00:00Z"}
    assert pruned.metadata.creation_timestamp == full.metadata.creation_timestamp
    assert pruned.status is not None and full.status is not None
    assert pruned.status.finished_at == full.status.finished_at
    p, f = pruned.status.provenance, full.status.provenance
    assert p is not None and f is not None and p.destination and f.destination and p.signature and f.signature
    assert (p.destination.digest, p.signature.key) == (f.destination.digest, f.signature.key)
    assert p.tools is None and p.source is None


async def test_one_informer_is_not_shared_under_two_transforms() -> None:
    manager = Manager(FakeKubeClient(), bind_address=None)
    first = manager.informer(
        ARTIFACT_WORKFLOWS,
        ArtifactWorkflow.model_validate,
        transform=artifact_workflow_as_the_order_controller_reads_it,
    )
    assert (
        manager.informer(
            ARTIFACT_WORKFLOWS,
            ArtifactWorkflow.model_validate,
            transform=artifact_workflow_as_the_order_controller_reads_it,
        )
        is first
    )
    with pytest.raises(ValueError, match="another transform"):
        manager.informer(ARTIFACT_WORKFLOWS, ArtifactWorkflow.model_validate)


def test_cached_strings_are_interned_and_values_unchanged() -> None:
    from controllers.kube.codec import loads
    from controllers.runtime.informer import intern_strings

    raw = b'{"metadata": {"namespace": "bench", "name": "o-1"}, "spec": {"n": 1.50, "xs": ["oci", 2, null]}}'
    a, b = intern_strings(loads(raw)), intern_strings(loads(raw.replace(b"o-1", b"o-2")))
    assert a == loads(raw)
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["spec"]["xs"][0] is b["spec"]["xs"][0]
    assert repr(a["spec"]["n"]) == "1.50"  # numbers keep their text

    def long() -> str:
        return "".join(["x"] * 65)  # built at run time: two distinct objects

    assert intern_strings({"k": long()})["k"] is not intern_strings({"k": long()})["k"]
