"""Defaulting for arc.opendefense.cloud/v1alpha1 (deterministic and idempotent; mutates in place).

- Endpoint: `spec.usage` → `All`.
- Order: every artifact's `spec` → `{}` when absent or null; every `cron` (spec.defaults.cron and an
  artifact's): `concurrencyPolicy` → `Allow`, `suspend` → `false`, `successfulJobsHistoryLimit` → 3,
  `failedJobsHistoryLimit` → 1 (CronJob's defaults; `timezone` stays unset and means UTC).
- ArtifactType / ClusterArtifactType / ArtifactWorkflow: `workflowTemplateRef.clusterScope` → `false`.

The API server runs `set_defaults` on every object it decodes from a request, before validation.
"""

from __future__ import annotations

from pydantic import BaseModel

from api.arc.v1alpha1.types import (
    USAGE_ALL,
    ArtifactType,
    ArtifactTypeSpec,
    ArtifactWorkflow,
    ClusterArtifactType,
    ConcurrencyPolicy,
    Cron,
    Endpoint,
    Order,
    WorkflowTemplateRef,
)

__all__ = [
    "set_defaults",
    "set_defaults_artifact_type",
    "set_defaults_artifact_workflow",
    "set_defaults_cluster_artifact_type",
    "set_defaults_endpoint",
    "set_defaults_order",
]


def set_defaults_endpoint(obj: Endpoint) -> None:
    if obj.spec.usage is None:
        obj.spec.usage = USAGE_ALL


DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1


def _default_cron(cron: Cron | None) -> None:
    if cron is None:
        return
    if cron.concurrency_policy is None:
        cron.concurrency_policy = ConcurrencyPolicy.ALLOW.value
    if cron.suspend is None:
        cron.suspend = False
    if cron.successful_jobs_history_limit is None:
        cron.successful_jobs_history_limit = DEFAULT_SUCCESSFUL_HISTORY
    if cron.failed_jobs_history_limit is None:
        cron.failed_jobs_history_limit = DEFAULT_FAILED_HISTORY


def set_defaults_order(obj: Order) -> None:
    if obj.spec.defaults is not None:
        _default_cron(obj.spec.defaults.cron)
    for artifact in obj.spec.artifacts or ():
        if artifact.spec is None:
            artifact.spec = {}
        _default_cron(artifact.cron)


def _default_template_ref(ref: WorkflowTemplateRef | None) -> None:
    if ref is not None and ref.cluster_scope is None:
        ref.cluster_scope = False


def _default_type_spec(spec: ArtifactTypeSpec) -> None:
    _default_template_ref(spec.workflow_template_ref)


def set_defaults_artifact_type(obj: ArtifactType) -> None:
    _default_type_spec(obj.spec)


def set_defaults_cluster_artifact_type(obj: ClusterArtifactType) -> None:
    _default_type_spec(obj.spec)


def set_defaults_artifact_workflow(obj: ArtifactWorkflow) -> None:
    _default_template_ref(obj.spec.workflow_template_ref)


def set_defaults(obj: BaseModel) -> None:
    """Default any ARC object (no-op for other types)."""
    if isinstance(obj, Order):
        set_defaults_order(obj)
    elif isinstance(obj, Endpoint):
        set_defaults_endpoint(obj)
    elif isinstance(obj, ArtifactType):
        set_defaults_artifact_type(obj)
    elif isinstance(obj, ClusterArtifactType):
        set_defaults_cluster_artifact_type(obj)
    elif isinstance(obj, ArtifactWorkflow):
        set_defaults_artifact_workflow(obj)
