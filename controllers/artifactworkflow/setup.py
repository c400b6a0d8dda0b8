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


def _owner(workflow: dict[str, Any]) -> Iterable[Request]:
    meta = workflow.get("metadata") or {}
    return [
        Request(meta.get("namespace") or "", ref.get("name") or "")
        for ref in meta.get("ownerReferences") or []
        if ref.get("controller") and ref.get("kind") == "ArtifactWorkflow"
    ]


def setup_artifact_workflow_controller(
    manager: Manager, *, concurrency: int = 4, log_lines: int = 0
) -> Controller:
    """`log_lines`: the failed step's last log lines in a failure message (pods/log; 0: none)."""
    aws = manager.informer(ARTIFACT_WORKFLOWS, ArtifactWorkflow.model_validate)
    workflows = manager.informer(WORKFLOWS, _identity)
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
        log_lines=log_lines,
    )
    controller = Controller(CONTROLLER_NAME, reconciler, concurrency=concurrency)
    controller.watch(aws, lambda aw: [Request(aw.metadata.namespace or "", aw.metadata.name or "")])
    controller.watch(workflows, _owner)
    manager.add_controller(controller)
    return controller
