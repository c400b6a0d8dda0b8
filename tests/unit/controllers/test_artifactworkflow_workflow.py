"""The Workflow built for an ArtifactWorkflow, and the status read back from a Workflow."""

from __future__ import annotations

from typing import Any

import pytest

from api.arc.v1alpha1.types import ArtifactWorkflow, Order, OrderStatus
from controllers.artifactworkflow.workflow import (
    Origin,
    build_workflow,
    origin,
    workflow_state,
)


def artifact_workflow(**spec: Any) -> ArtifactWorkflow:
    return ArtifactWorkflow.model_validate(
        {
            "metadata": {
                "name": "o1-0123456789abcdef",
                "namespace": "team-a",
                "uid": "aw-uid",
                "labels": {"arc.opendefense.cloud/order": "o1", "arc.opendefense.cloud/artifact-type": "oci"},
                "ownerReferences": [
                    {
                        "apiVersion": "arc.opendefense.cloud/v1alpha1",
                        "kind": "Order",
                        "name": "o1",
                        "uid": "o-uid",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "type": "oci",
                "workflowTemplateRef": {"name": "arc-oci", "clusterScope": True},
                "parameters": [
                    {"name": "srcRemoteURL", "value": "docker.io"},
                    {"name": "dstRemoteURL", "value": "registry.internal"},
                    {"name": "srcSecret", "value": "true"},
                    {"name": "specImage", "value": "library/alpine:3.20"},
                ],
                **spec,
            },
        }
    )


def test_workflow_shape() -> None:
    aw = artifact_workflow(srcSecretRef={"name": "hub-creds"}, queueName="arc", serviceAccountName="mover")
    wf = build_workflow(aw, Origin("o1", 0, "docker-hub", "internal"), trace_id="ab" * 16)
    assert wf["apiVersion"] == "argoproj.io/v1alpha1" and wf["kind"] == "Workflow"
    meta, spec = wf["metadata"], wf["spec"]
    assert (meta["name"], meta["namespace"]) == ("o1-0123456789abcdef", "team-a")
    assert meta["labels"] == {
        "arc.opendefense.cloud/order": "o1",
        "arc.opendefense.cloud/artifact-workflow": "o1-0123456789abcdef",
        "arc.opendefense.cloud/artifact-type": "oci",
        "workflows.argoproj.io/cluster-workflow-template": "arc-oci",
    }
    assert meta["annotations"]["workflows.argoproj.io/title"] == "o1: oci #0"
    assert meta["annotations"]["workflows.argoproj.io/description"] == (
        "docker-hub (docker.io) → internal (registry.internal)"
    )
    assert meta["annotations"]["arc.opendefense.cloud/trace-id"] == "ab" * 16
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "arc.opendefense.cloud/v1alpha1",
            "kind": "ArtifactWorkflow",
            "name": "o1-0123456789abcdef",
            "uid": "aw-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert spec["workflowTemplateRef"] == {"name": "arc-oci", "clusterScope": True}
    assert spec["arguments"]["parameters"][0] == {"name": "srcRemoteURL", "value": "docker.io"}
    assert spec["volumes"] == [
        {"name": "src-secret-vol", "secret": {"secretName": "hub-creds"}},
        {"name": "dst-secret-vol", "emptyDir": {}},
    ]
    assert spec["serviceAccountName"] == "mover"
    assert spec["podMetadata"] == {"labels": {"kueue.x-k8s.io/queue-name": "arc"}}


def test_namespaced_template_and_no_queue() -> None:
    aw = artifact_workflow(workflowTemplateRef={"name": "my-oci", "clusterScope": False})
    wf = build_workflow(aw, Origin("o1", None, "", ""))
    assert wf["spec"]["workflowTemplateRef"] == {"name": "my-oci"}
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "my-oci"
    assert "podMetadata" not in wf["spec"] and "serviceAccountName" not in wf["spec"]
    assert wf["metadata"]["annotations"]["workflows.argoproj.io/title"] == "o1: oci #?"


def test_no_secret_value_reaches_the_workflow() -> None:
    aw = artifact_workflow(srcSecretRef={"name": "hub-creds"}, dstSecretRef={"name": "int-creds"})
    wf = build_workflow(aw, Origin("o1", 1, "a", "b"))
    names = {p["name"] for p in wf["spec"]["arguments"]["parameters"]}
    assert names == {"srcRemoteURL", "dstRemoteURL", "srcSecret", "specImage"}
    assert "hub-creds" not in str(wf["spec"]["arguments"])


def test_origin_reads_index_and_endpoints_from_the_order() -> None:
    order = Order.model_validate(
        {
            "metadata": {"name": "o1", "namespace": "team-a"},
            "spec": {
                "defaults": {"srcRef": {"name": "hub"}, "dstRef": {"name": "internal"}},
                "artifacts": [
                    {"type": "oci", "spec": {}},
                    {"type": "oci", "dstRef": {"name": "other"}, "spec": {}},
                ],
            },
            "status": {
                "artifactWorkflows": {"0123456789abcdef": {"artifactIndex": 1, "name": "o1-0123456789abcdef"}}
            },
        }
    )
    assert origin(artifact_workflow(), order) == Origin("o1", 1, "hub", "other")
    assert origin(artifact_workflow(), None) == Origin("o1", None, "", "")


def test_origin_reads_the_order_controllers_annotations_until_the_order_status_lists_it() -> None:
    """A new ArtifactWorkflow's Workflow is created at once: the Order controller annotated it at creation."""
    aw = artifact_workflow()
    aw.metadata.annotations = {
        "arc.opendefense.cloud/artifact-index": "2",
        "arc.opendefense.cloud/src-endpoint": "hub",
        "arc.opendefense.cloud/dst-endpoint": "internal",
    }
    order = Order.model_validate(
        {
            "metadata": {"name": "o1", "namespace": "team-a"},
            "spec": {
                "defaults": {"srcRef": {"name": "hub"}, "dstRef": {"name": "internal"}},
                "artifacts": [{"type": "oci", "spec": {"a": 1}}, {"type": "oci", "spec": {}}],
            },
        }
    )
    assert origin(aw, None) == Origin("o1", 2, "hub", "internal")
    assert origin(aw, order) == Origin("o1", 2, "hub", "internal")  # no status yet
    assert build_workflow(aw, origin(aw, order))["metadata"]["annotations"][
        "workflows.argoproj.io/title"
    ] == ("o1: oci #2")
    # re-ordered since: the Order's status has the current index
    order.status = OrderStatus.model_validate(
        {"artifactWorkflows": {"0123456789abcdef": {"artifactIndex": 0, "name": "o1-0123456789abcdef"}}}
    )
    assert origin(aw, order) == Origin("o1", 0, "hub", "internal")
    aw.metadata.annotations["arc.opendefense.cloud/artifact-index"] = "not a number"
    assert origin(aw, None).artifact_index is None


@pytest.mark.parametrize(
    ("argo_phase", "phase"),
    [
        (None, "Pending"),
        ("", "Pending"),
        ("Pending", "Pending"),
        ("Running", "Running"),
        ("Succeeded", "Succeeded"),
        ("Failed", "Failed"),
        ("Error", "Error"),
    ],
)
def test_phase_mapping(argo_phase: str | None, phase: str) -> None:
    status = {} if argo_phase is None else {"phase": argo_phase}
    assert workflow_state({"status": status}).phase == phase


def test_failed_workflow_names_the_failed_step() -> None:
    wf = {
        "status": {
            "phase": "Failed",
            "message": "child 'x' failed",
            "startedAt": "2026-11-21T10:00:00Z",
            "finishedAt": "2026-11-21T10:01:00Z",
            "nodes": {
                "a": {"type": "Pod", "phase": "Succeeded", "displayName": "pull"},
                "b": {
                    "type": "Pod",
                    "phase": "Failed",
                    "displayName": "copy",
                    "message": "Error (exit code 3)",
                    "finishedAt": "2026-11-21T10:00:50Z",
                },
                "c": {"type": "Steps", "phase": "Failed", "displayName": "main"},
            },
        }
    }
    state = workflow_state(wf)
    assert state.phase == "Failed"
    assert state.message.startswith('step "copy" failed: Error (exit code 3)')
    assert (state.started_at, state.finished_at) == ("2026-11-21T10:00:00Z", "2026-11-21T10:01:00Z")
