"""The Argo Workflow of an ArtifactWorkflow, and its status read back (pure functions, no I/O).

Shape (SPEC §4.2): ``workflowTemplateRef`` and the parameters of the ArtifactWorkflow; the volumes
``src-secret-vol``/``dst-secret-vol`` (the Secret, or an emptyDir when there is none — credentials reach pods
only as mounted files, never as parameters); the service account; the Kueue queue label on
``spec.podMetadata.labels``; ARC's labels, Argo's template label and the title/description annotations the
Argo UI shows; a controller ownerReference to the ArtifactWorkflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from api.arc.v1alpha1.types import ArtifactWorkflow, Order
from controllers.controllerutil import (
    ANNOTATION_ARTIFACT_INDEX,
    ANNOTATION_DST_ENDPOINT,
    ANNOTATION_ORDER_NAME,
    ANNOTATION_SRC_ENDPOINT,
    ANNOTATION_TRACE_ID,
    LABEL_ARTIFACT_TYPE,
    LABEL_ARTIFACT_WORKFLOW,
    LABEL_ORDER,
    controller_ref,
)

LABEL_WORKFLOW_TEMPLATE: Final = "workflows.argoproj.io/workflow-template"
LABEL_CLUSTER_WORKFLOW_TEMPLATE: Final = "workflows.argoproj.io/cluster-workflow-template"
ANNOTATION_TITLE: Final = "workflows.argoproj.io/title"
ANNOTATION_DESCRIPTION: Final = "workflows.argoproj.io/description"
QUEUE_LABEL: Final = "kueue.x-k8s.io/queue-name"
SRC_SECRET_VOLUME: Final = "src-secret-vol"
DST_SECRET_VOLUME: Final = "dst-secret-vol"

FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})


@dataclass(frozen=True)
class Origin:
    """Where an ArtifactWorkflow comes from, for the Argo UI's title and description."""

    order_name: str
    artifact_index: int | None
    src_endpoint: str
    dst_endpoint: str


def origin(aw: ArtifactWorkflow, order: Order | None) -> Origin:
    """The owning Order's name, the artifact's index and its effective Endpoint names.

    The Order's status is the current truth once it lists the ArtifactWorkflow (an artifact keeps its
    ArtifactWorkflow when the list is re-ordered, and its index moves); until then — the Order controller
    writes its status after creating its ArtifactWorkflows — the annotations it put on the ArtifactWorkflow
    at creation say the same, so a new ArtifactWorkflow's Workflow need not wait for the Order's status.
    """
    meta = aw.metadata
    annotations = meta.annotations or {}
    order_name = annotations.get(ANNOTATION_ORDER_NAME) or (meta.labels or {}).get(LABEL_ORDER, "")
    index = _int(annotations.get(ANNOTATION_ARTIFACT_INDEX))
    src = annotations.get(ANNOTATION_SRC_ENDPOINT, "")
    dst = annotations.get(ANNOTATION_DST_ENDPOINT, "")
    if order is not None:
        order_name = order.metadata.name or order_name
        listed = next(
            (
                entry.artifact_index
                for entry in ((order.status.artifact_workflows or {}).values() if order.status else ())
                if entry.name == meta.name
            ),
            None,
        )
        artifacts = order.spec.artifacts or []
        if listed is not None and 0 <= listed < len(artifacts):
            artifact, defaults = artifacts[listed], order.spec.defaults
            index = listed
            src = (artifact.src_ref.name if artifact.src_ref else "") or (
                defaults.src_ref.name if defaults and defaults.src_ref else ""
            )
            dst = (artifact.dst_ref.name if artifact.dst_ref else "") or (
                defaults.dst_ref.name if defaults and defaults.dst_ref else ""
            )
    return Origin(order_name, index, src, dst)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parameters(aw: ArtifactWorkflow) -> dict[str, str]:
    return {p.name: p.value for p in aw.spec.parameters or [] if p.name}


def _secret_volume(name: str, secret: str) -> dict[str, Any]:
    if secret:
        return {"name": name, "secret": {"secretName": secret}}
    return {"name": name, "emptyDir": {}}


def build_workflow(aw: ArtifactWorkflow, source: Origin, *, trace_id: str | None = None) -> dict[str, Any]:
    """The Workflow to create for ``aw`` (same name and namespace)."""
    spec, meta = aw.spec, aw.metadata
    ref = spec.workflow_template_ref
    template_name = ref.name if ref is not None else ""
    cluster_scope = bool(ref.cluster_scope) if ref is not None else False
    params = parameters(aw)
    labels = {
        LABEL_ORDER: (meta.labels or {}).get(LABEL_ORDER, ""),
        LABEL_ARTIFACT_WORKFLOW: meta.name or "",
        LABEL_ARTIFACT_TYPE: (meta.labels or {}).get(LABEL_ARTIFACT_TYPE, spec.type or ""),
        (LABEL_CLUSTER_WORKFLOW_TEMPLATE if cluster_scope else LABEL_WORKFLOW_TEMPLATE): template_name,
    }
    index = "?" if source.artifact_index is None else str(source.artifact_index)
    annotations = {
        ANNOTATION_TITLE: f"{source.order_name}: {spec.type} #{index}",
        ANNOTATION_DESCRIPTION: (
            f"{source.src_endpoint} ({params.get('srcRemoteURL', '')}) → "
            f"{source.dst_endpoint} ({params.get('dstRemoteURL', '')})"
        ),
    }
    if trace_id:
        annotations[ANNOTATION_TRACE_ID] = trace_id
    workflow_spec: dict[str, Any] = {
        "workflowTemplateRef": {"name": template_name, **({"clusterScope": True} if cluster_scope else {})},
        "arguments": {"parameters": [{"name": p.name, "value": p.value} for p in spec.parameters or []]},
        "volumes": [
            _secret_volume(SRC_SECRET_VOLUME, spec.src_secret_ref.name if spec.src_secret_ref else ""),
            _secret_volume(DST_SECRET_VOLUME, spec.dst_secret_ref.name if spec.dst_secret_ref else ""),
        ],
    }
    if spec.service_account_name:
        workflow_spec["serviceAccountName"] = spec.service_account_name
    if spec.queue_name:
        workflow_spec["podMetadata"] = {"labels": {QUEUE_LABEL: spec.queue_name}}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [controller_ref(aw, api_version=aw.api_version, kind=aw.kind)],
        },
        "spec": workflow_spec,
    }


@dataclass(frozen=True)
class WorkflowState:
    """What ARC mirrors of a Workflow's status."""

    phase: str
    message: str
    started_at: str | None
    finished_at: str | None


def failed_node(status: dict[str, Any]) -> dict[str, Any] | None:
    """The first step (pod node) that failed or errored, by finish time."""
    failed = [
        node
        for node in (status.get("nodes") or {}).values()
        if node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error")
    ]
    if not failed:
        return None
    first: dict[str, Any] = min(failed, key=lambda n: (n.get("finishedAt") or "", n.get("displayName") or ""))
    return first


def _failed_step(status: dict[str, Any]) -> tuple[str, str] | None:
    """The first failed step's (display name, message)."""
    first = failed_node(status)
    if first is None:
        return None
    return str(first.get("displayName") or first.get("name") or ""), str(first.get("message") or "")


def workflow_state(workflow: dict[str, Any]) -> WorkflowState:
    """Argo phase ``""``/Pending → Pending, Running, Succeeded, Failed, Error; the failed step named."""
    status = workflow.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase not in ("Pending", "Running", "Succeeded", "Failed", "Error"):
        phase = "Pending"
    message = str(status.get("message") or "")
    if phase in ("Failed", "Error"):
        step = _failed_step(status)
        if step is not None:
            name, detail = step
            message = f'step "{name}" failed: {detail}' if detail else f'step "{name}" failed'
            if status.get("message") and status["message"] not in message:
                message = f"{message} ({status['message']})"
    return WorkflowState(phase, message, status.get("startedAt"), status.get("finishedAt"))
