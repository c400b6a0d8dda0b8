"""Valid wire-form objects of every kind; tests copy and break them."""

from __future__ import annotations

import copy
from typing import Any

API = "arc.opendefense.cloud/v1alpha1"


def order() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "apiVersion": API,
            "kind": "Order",
            "metadata": {"name": "mirror", "namespace": "team-a"},
            "spec": {
                "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
                "artifacts": [
                    {"type": "oci", "spec": {"image": "library/alpine:3.20"}},
                    {"type": "oci", "spec": {"image": "library/nginx:1.27"}},
                ],
            },
        }
    )


def endpoint() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Endpoint",
        "metadata": {"name": "docker-hub", "namespace": "team-a"},
        "spec": {
            "type": "oci",
            "remoteURL": "docker.io",
            "secretRef": {"name": "hub-creds"},
            "usage": "PullOnly",
        },
    }


def artifact_type() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ArtifactType",
        "metadata": {"name": "oci", "namespace": "team-a"},
        "spec": {
            "rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
            "parameters": [{"name": "retries", "value": "3"}],
            "workflowTemplateRef": {"name": "oci-copy", "clusterScope": False},
            "ttl": {"afterSucceeded": "1h", "afterFailed": "24h"},
        },
    }


def cluster_artifact_type() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ClusterArtifactType",
        "metadata": {"name": "oci"},
        "spec": {"workflowTemplateRef": {"name": "oci-copy", "clusterScope": True}},
    }


def artifact_workflow() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ArtifactWorkflow",
        "metadata": {"name": "mirror-0123456789abcdef", "namespace": "team-a", "resourceVersion": "5"},
        "spec": {
            "type": "oci",
            "workflowTemplateRef": {"name": "oci-copy", "clusterScope": False},
            "parameters": [{"name": "srcType", "value": "oci"}, {"name": "dstType", "value": "oci"}],
            "srcSecretRef": {"name": "hub-creds"},
            "dstSecretRef": {"name": ""},
        },
    }
