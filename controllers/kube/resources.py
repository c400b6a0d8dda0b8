"""The resources the controllers talk to, and how their URLs are built (no I/O here).

ARC's kinds come from `api.resources.RESOURCES`; the few core kinds (Secrets, Events, Leases) are spelled
here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from api.resources import (
    ARTIFACT_TYPE,
    ARTIFACT_WORKFLOW,
    CLUSTER_ARTIFACT_TYPE,
    ENDPOINT,
    ORDER,
    ResourceInfo,
)

__all__ = [
    "ARTIFACT_TYPES",
    "ARTIFACT_WORKFLOWS",
    "CLUSTER_ARTIFACT_TYPES",
    "ENDPOINTS",
    "EVENTS",
    "LEASES",
    "LOCAL_QUEUES",
    "ORDERS",
    "PODS",
    "SECRETS",
    "SUBJECT_ACCESS_REVIEWS",
    "TOKEN_REVIEWS",
    "WORKFLOWS",
    "WORKLOADS",
    "Resource",
]


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @classmethod
    def of(cls, info: ResourceInfo) -> Resource:
        return cls(info.group, info.version, info.plural, info.kind, info.namespaced)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


ORDERS: Final = Resource.of(ORDER)
ARTIFACT_WORKFLOWS: Final = Resource.of(ARTIFACT_WORKFLOW)
ENDPOINTS: Final = Resource.of(ENDPOINT)
ARTIFACT_TYPES: Final = Resource.of(ARTIFACT_TYPE)
CLUSTER_ARTIFACT_TYPES: Final = Resource.of(CLUSTER_ARTIFACT_TYPE)
SECRETS: Final = Resource("", "v1", "secrets", "Secret", True)
PODS: Final = Resource("", "v1", "pods", "Pod", True)
EVENTS: Final = Resource("", "v1", "events", "Event", True)
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease", True)
WORKFLOWS: Final = Resource("argoproj.io", "v1alpha1", "workflows", "Workflow", True)
LOCAL_QUEUES: Final = Resource("kueue.x-k8s.io", "v1beta1", "localqueues", "LocalQueue", True)
WORKLOADS: Final = Resource("kueue.x-k8s.io", "v1beta1", "workloads", "Workload", True)
# `--metrics-secure` (controllers/runtime/metricsauth.py): who is scraping, and may they.
TOKEN_REVIEWS: Final = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False)
SUBJECT_ACCESS_REVIEWS: Final = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False
)
