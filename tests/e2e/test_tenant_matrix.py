"""Every cell of two tenants x every verb x every ARC resource and subresource x own namespace / other
namespace / cluster scope answers as RBAC says (issue 14).

alice has ``edit`` in her namespace, bob ``edit`` in his (Kubernetes' default role, into which
deploy/apiserver/user-roles.yaml aggregates ARC's rules). Each cell is one real request through
kube-apiserver's aggregation layer (the cluster admin impersonating the tenant, ``Impersonate-User``), a
SubjectAccessReview for the same attributes, and the expectation written down from the roles
(``by_construction``): the three must agree — 403 Forbidden exactly when denied, never a 5xx. Writes are
``dryRun=All`` so that every cell sees the same objects.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.kubeclient import Answer, KubeClient
from tests.e2e.support import (
    API_VERSION,
    GROUP,
    artifact_type,
    cluster_artifact_type,
    endpoint,
    manifest,
    order,
)

pytestmark = pytest.mark.e2e

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
RESOURCES = (
    ("orders", ""),
    ("orders", "status"),
    ("endpoints", ""),
    ("endpoints", "status"),
    ("artifacttypes", ""),
    ("artifactworkflows", ""),
    ("artifactworkflows", "status"),
    ("clusterartifacttypes", ""),
)
SCOPES = ("own", "other", "cluster")
READ = {"get", "list", "watch"}
WRITE = {"create", "update", "patch", "delete", "deletecollection"}
NAMED = {"get", "update", "patch", "delete"}


def by_construction(resource: str, subresource: str, verb: str, scope: str) -> bool:
    """What deploy/apiserver/user-roles.yaml grants a tenant with ``edit`` in the ``own`` namespace."""
    if resource == "clusterartifacttypes":
        return verb in READ  # every authenticated user reads them, in every scope
    if scope != "own":
        return False
    if verb in READ:
        return True  # arc-view: every namespaced resource and its status
    if subresource:
        return False
    if resource in ("orders", "endpoints"):
        return True
    return resource == "artifactworkflows" and verb == "delete"


@dataclass(frozen=True)
class Cell:
    tenant: str
    resource: str
    subresource: str
    verb: str
    scope: str

    def namespace(self, homes: dict[str, str]) -> str:
        if self.scope == "cluster":
            return ""
        other = next(t for t in homes if t != self.tenant)
        return homes[self.tenant if self.scope == "own" else other]

    @property
    def kube_verb(self) -> str:
        """The verb kube-apiserver authorizes for the cell's request: a subresource has no collection, so
        its list and watch are GETs of the named object and its deletecollection a DELETE of it."""
        if self.subresource and self.verb in ("list", "watch"):
            return "get"
        if self.subresource and self.verb == "deletecollection":
            return "delete"
        return self.verb

    def __str__(self) -> str:
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.tenant} {self.verb} {self.resource}{sub} @{self.scope}"


CELLS = [
    Cell(tenant, resource, sub, verb, scope)
    for tenant in ("alice", "bob")
    for resource, sub in RESOURCES
    for verb in VERBS
    for scope in SCOPES
]


class Kube(KubeClient):
    """The admin's client, and SubjectAccessReviews for the matrix's cells."""

    def allowed(self, user: str, cell: Cell, namespace: str) -> bool:
        """A SubjectAccessReview for the attributes kube-apiserver derives from the cell's request."""
        attributes = {
            "group": GROUP,
            "resource": cell.resource,
            "subresource": cell.subresource,
            "verb": cell.kube_verb,
            "namespace": namespace,
            **({"name": "existing"} if cell.kube_verb in NAMED or cell.subresource else {}),
        }
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": attributes},
        }
        answer = self.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
        assert answer.status == 201, answer.body
        return bool(answer.body["status"].get("allowed"))


@dataclass(frozen=True)
class Homes:
    namespaces: dict[str, str]
    cluster_type: str


def _build(resource: str, name: str, namespace: str) -> dict[str, Any]:
    if resource == "clusterartifacttypes":
        return cluster_artifact_type(name)
    if resource == "orders":
        return order(name, namespace)
    if resource == "endpoints":
        return endpoint(name, namespace)
    if resource == "artifacttypes":
        return artifact_type(name, namespace)
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactWorkflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "oci", "workflowTemplateRef": {"name": "arc-oci", "clusterScope": False}},
    }


@pytest.fixture(scope="module")
def homes(kubectl: Kubectl) -> Iterator[Homes]:
    suffix = uuid.uuid4().hex[:6]
    namespaces = {"alice": f"matrix-a-{suffix}", "bob": f"matrix-b-{suffix}"}
    cluster_type = f"existing-{suffix}"
    for tenant, ns in namespaces.items():
        kubectl.run("create", "namespace", ns)
        kubectl.run(
            "create", "rolebinding", f"{tenant}-edit", "--clusterrole=edit", f"--user={tenant}", "-n", ns
        )
        for resource, _ in RESOURCES:
            if resource != "clusterartifacttypes":
                kubectl.run("apply", "-f", "-", stdin=manifest(_build(resource, "existing", ns)))
    kubectl.run("create", "-f", "-", stdin=manifest(cluster_artifact_type(cluster_type)))
    try:
        yield Homes(namespaces, cluster_type)
    finally:
        kubectl.run("delete", f"clusterartifacttypes.{GROUP}", cluster_type, "--wait=false", check=False)
        for ns in namespaces.values():
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def cell_request(kube: Kube, cell: Cell, homes: Homes) -> Answer:
    """The request kubectl would send for the cell, impersonating the tenant (writes as dry runs)."""
    namespace = cell.namespace(homes.namespaces)
    prefix = f"/apis/{API_VERSION}" + (f"/namespaces/{namespace}" if namespace else "")
    collection = f"{prefix}/{cell.resource}"
    name = homes.cluster_type if cell.resource == "clusterartifacttypes" else "existing"
    item = f"{collection}/{name}" + (f"/{cell.subresource}" if cell.subresource else "")
    home = "" if cell.resource == "clusterartifacttypes" else homes.namespaces[cell.tenant]
    dry = "?" + urlencode({"dryRun": "All"})
    user = cell.tenant
    if cell.verb == "get":
        return kube.request("GET", item, user=user)
    if cell.verb == "list":
        return kube.request("GET", collection if not cell.subresource else item, user=user)
    if cell.verb == "watch":
        target = collection if not cell.subresource else item
        query = urlencode({"watch": "true", "timeoutSeconds": "1"})
        return kube.request("GET", f"{target}?{query}", user=user, stream=True)
    if cell.verb == "create":
        body = _build(cell.resource, f"new-{uuid.uuid4().hex[:6]}", namespace or home)
        return kube.request(
            "POST", (collection if not cell.subresource else item) + dry, body=body, user=user
        )
    if cell.verb in ("update", "patch"):
        # The current object, read as the admin from where it lives (the tenant's home or cluster scope).
        home_prefix = f"/apis/{API_VERSION}" + (f"/namespaces/{home}" if home else "")
        current = kube.request("GET", f"{home_prefix}/{cell.resource}/{name}")
        assert current.status == 200, current.body
        if cell.verb == "update":
            return kube.request("PUT", item + dry, body=current.body, user=user)
        patch = {"metadata": {"labels": {"matrix": "was-here"}}}
        return kube.request(
            "PATCH", item + dry, body=patch, content_type="application/merge-patch+json", user=user
        )
    if cell.verb == "delete":
        return kube.request("DELETE", item + dry, user=user)
    return kube.request("DELETE", (collection if not cell.subresource else item) + dry, user=user)


def rbac_attributes_namespace(cell: Cell, homes: Homes) -> str:
    return cell.namespace(homes.namespaces)


def test_every_cell_answers_as_rbac_says(local_cluster: LocalCluster, homes: Homes) -> None:
    kube = Kube(local_cluster)

    def run(cell: Cell) -> tuple[Cell, bool, bool, Answer]:
        namespace = rbac_attributes_namespace(cell, homes)
        expected = by_construction(cell.resource, cell.subresource, cell.kube_verb, cell.scope)
        return cell, kube.allowed(cell.tenant, cell, namespace), expected, cell_request(kube, cell, homes)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, CELLS))

    wrong: list[str] = []
    outcome: Counter[str] = Counter()
    for cell, sar, expected, answer in results:
        outcome[f"{'allowed' if expected else 'denied'} {answer.status}"] += 1
        if sar != expected:
            wrong.append(f"{cell}: SubjectAccessReview says {sar}, the roles say {expected}")
        if answer.status >= 500:
            wrong.append(f"{cell}: {answer.status} {str(answer.body)[:200]}")
        elif expected and answer.status == 403:
            wrong.append(f"{cell}: allowed but 403 {str(answer.body)[:200]}")
        elif not expected and answer.status != 403:
            wrong.append(f"{cell}: denied but {answer.status} {str(answer.body)[:200]}")
        elif answer.status == 403:
            body = answer.body if isinstance(answer.body, dict) else {}
            if body.get("kind") != "Status" or body.get("reason") != "Forbidden":
                wrong.append(f"{cell}: 403 without a Forbidden Status: {str(answer.body)[:200]}")
    print(f"tenant matrix: {len(CELLS)} cells, {dict(sorted(outcome.items()))}")
    assert len(CELLS) == 2 * len(VERBS) * len(RESOURCES) * len(SCOPES) == 384
    assert not wrong, f"{len(wrong)} of {len(CELLS)} cells wrong:\n" + "\n".join(wrong)
