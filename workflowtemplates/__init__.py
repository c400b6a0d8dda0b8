"""ARC's Argo ClusterWorkflowTemplates, written with hera: ``arc-oci``, ``arc-helm``, ``arc-file``.

``python -m workflowtemplates`` renders them to deploy/workflowtemplates/; docs/workflowtemplates.md
describes the parameter contract with the ArtifactWorkflow controller (see also
:mod:`workflowtemplates.common`).
"""
