"""The ArtifactWorkflow controller: one Argo Workflow per ArtifactWorkflow, status mirrored (SPEC §4.2)."""

from controllers.artifactworkflow.reconciler import FINALIZER
from controllers.artifactworkflow.setup import setup_artifact_workflow_controller

__all__ = ["FINALIZER", "setup_artifact_workflow_controller"]
