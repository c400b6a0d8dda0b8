"""Wiring of the ArtifactWorkflow controller: ArtifactWorkflows, their Workflows (by owner), types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.arc.v1alpha1.types import ArtifactType, ArtifactWorkflow, ClusterArtifactType, Order
from controllers.artifactworkflow.provenance import EVIDENCE_PARAMETERS
from controllers.artifactworkflow.reconciler import ArtifactWorkflowReconciler
from controllers.kube.resources import (
    ARTIFACT_TYPES,
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    ORDERS,
    WORKFLOWS,
)
from controllers.runtime import Controller, Manager, Request
from controllers.runtime.handler import enqueue_request_for_object

CONTROLLER_NAME = "artifactworkflow"


def _identity(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


#: The annotation that says how Argo named the Workflow's pods (failurelog.pod_name reads it).
_POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
#: What is kept of a failed or errored Pod node: the failed step's message and its pod's name.
_FAILED_NODE_KEYS = ("id", "type", "phase", "finishedAt", "displayName", "name", "message", "templateName")


def _pruned_pod_node(node: dict[str, Any]) -> dict[str, Any] | None:
    """What the reconciler reads of one Pod node, or None when it reads nothing of it."""
    phase = node.get("phase")
    if phase in ("Failed", "Error"):
        kept = {key: node[key] for key in _FAILED_NODE_KEYS if key in node}
        if "templateRef" in node:
            kept["templateRef"] = {"template": (node["templateRef"] or {}).get("template")}
    elif phase in (None, "", "Pending"):
        kept = {"type": "Pod", "phase": phase}
    else:
        kept = {}
    parameters = [
        {"name": p["name"], "value": p.get("value")}
        for p in (node.get("outputs") or {}).get("parameters") or []
        if isinstance(p, dict) and p.get("name") in EVIDENCE_PARAMETERS
    ]
    if parameters:
        kept |= {key: node[key] for key in ("id", "type", "phase", "finishedAt") if key in node}
        kept["outputs"] = {"parameters": parameters}
    return kept or None


def workflow_as_the_reconciler_reads_it(raw: dict[str, Any]) -> dict[str, Any]:
    """An Argo Workflow pruned to what `ArtifactWorkflowReconciler` reads of it: identity, controller
    reference, deletion, the pod-name-format annotation, and the status it mirrors — phase, message, start
    and finish, and of `status.nodes` only Pod nodes: failed or errored ones (the failed step it names and
    whose log it reads), pending ones (waiting for admission), and the evidence parameters of any
    (`status.provenance`). A running Workflow's status (every node, its inputs, other outputs and resource
    use) and its spec are most of its size and are never read from the cache."""
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    kept_meta = {
        key: meta[key]
        for key in ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "deletionTimestamp")
        if key in meta
    }
    pod_name_format = (meta.get("annotations") or {}).get(_POD_NAME_FORMAT)
    if pod_name_format is not None:
        kept_meta["annotations"] = {_POD_NAME_FORMAT: pod_name_format}
    out: dict[str, Any] = {
        "apiVersion": raw.get("apiVersion"),
        "kind": raw.get("kind"),
        "metadata": kept_meta,
    }
    kept: dict[str, Any] = {
        key: status[key] for key in ("phase", "message", "startedAt", "finishedAt") if key in status
    }
    nodes = {
        node_id: pruned
        for node_id, node in (status.get("nodes") or {}).items()
        if isinstance(node, dict)
        and node.get("type") == "Pod"
        and (pruned := _pruned_pod_node(node)) is not None
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


def setup_artifact_workflow_controller(
    manager: Manager, *, concurrency: int = 4, log_lines: int = 0
) -> Controller:
    """`log_lines`: the failed step's last log lines in a failure message (pods/log; 0: none)."""
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
        log_lines=log_lines,
    )
    controller = Controller(CONTROLLER_NAME, reconciler, concurrency=concurrency)
    controller.watch(aws, enqueue_request_for_object)
    controller.watch(workflows, _owner)
    manager.add_controller(controller)
    return controller
