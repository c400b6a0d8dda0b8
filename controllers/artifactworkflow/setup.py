"""Wiring of the ArtifactWorkflow controller: ArtifactWorkflows, their Workflows (by owner), types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.arc.v1alpha1.types import ArtifactType, ArtifactWorkflow, ClusterArtifactType, Order
from controllers.artifactworkflow.reconciler import ArtifactWorkflowReconciler
from controllers.kube.resources import (
    ARTIFACT_TYPES,
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    ORDERS,
    WORKFLOWS,
)
from controllers.runtime import Controller, Manager, Request

CONTROLLER_NAME = "artifactworkflow"


def _identity(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


def workflow_as_the_reconciler_reads_it(raw: dict[str, Any]) -> dict[str, Any]:
    """An Argo Workflow pruned to what `ArtifactWorkflowReconciler` reads of it: identity, controller
    reference, deletion, and the status `workflow.workflow_state` mirrors — phase, message, start and
    finish, and of `status.nodes` only the failed or errored Pod nodes (the failed step it names). A
    running Workflow's status (every node, its inputs, outputs and resource use) and its spec are most of
    its size and are never read from the cache."""
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    out: dict[str, Any] = {
        "apiVersion": raw.get("apiVersion"),
        "kind": raw.get("kind"),
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "deletionTimestamp")
            if key in meta
        },
    }
    kept: dict[str, Any] = {
        key: status[key] for key in ("phase", "message", "startedAt", "finishedAt") if key in status
    }
    nodes = {
        node_id: {
            key: node[key]
            for key in ("type", "phase", "finishedAt", "displayName", "name", "message")
            if key in node
        }
        for node_id, node in (status.get("nodes") or {}).items()
        if isinstance(node, dict) and node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error")
    }
    if nodes:
        kept["nodes"] = nodes
    if kept:
        out["status"] = kept
    return out


def _owner(workflow: dict[str, Any]) -> Iterable[Request]:
    meta = workflow.get("metadata") or {}
    return [
        Request(meta.get("namespace") or "", ref.get("name") or "")
        for ref in meta.get("ownerReferences") or []
        if ref.get("controller") and ref.get("kind") == "ArtifactWorkflow"
    ]


def setup_artifact_workflow_controller(manager: Manager, *, concurrency: int = 4) -> Controller:
    aws = manager.informer(ARTIFACT_WORKFLOWS, ArtifactWorkflow.model_validate)
    workflows = manager.informer(WORKFLOWS, _identity, transform=workflow_as_the_reconciler_reads_it)
    orders = manager.informer(ORDERS, Order.model_validate)
    types = manager.informer(ARTIFACT_TYPES, ArtifactType.model_validate)
    cluster_types = manager.informer(CLUSTER_ARTIFACT_TYPES, ClusterArtifactType.model_validate)
    reconciler = ArtifactWorkflowReconciler(
        manager.client,
        manager.recorder,
        artifact_workflows=aws,
        workflows=workflows,
        orders=orders,
        artifact_types=types,
        cluster_artifact_types=cluster_types,
    )
    controller = Controller(CONTROLLER_NAME, reconciler, concurrency=concurrency)
    controller.watch(aws, lambda aw: [Request(aw.metadata.namespace or "", aw.metadata.name or "")])
    controller.watch(workflows, _owner)
    manager.add_controller(controller)
    return controller
