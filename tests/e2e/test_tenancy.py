"""Multi-tenancy with the cluster's own RBAC: impersonated users bound to Kubernetes' default roles (into
which deploy/apiserver/user-roles.yaml aggregates ARC's rules), through kube-apiserver and — to show ARC
authorizes every request itself (SubjectAccessReview) — directly with the front-proxy certificate.

alice: edit in team-a · bob: edit in team-b · victor: view in team-a · carol: admin in team-a, and a
member of the platform group (arc-platform-admin) only when she says so with --as-group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.support import (
    API_VERSION,
    GROUP,
    artifact_type,
    cluster_artifact_type,
    cluster_pair,
    direct,
    endpoint,
    kubectl_proc,
    manifest,
    order,
    unique,
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Tenancy:
    team_a: str
    team_b: str
    platform_group: str
    cluster_type: str
    """A ClusterArtifactType that exists (created by the cluster admin)."""


def _artifact_workflow(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactWorkflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "oci", "workflowTemplateRef": {"name": "arc-oci", "clusterScope": False}},
    }


BUILDERS = {
    "orders": order,
    "endpoints": endpoint,
    "artifacttypes": artifact_type,
    "artifactworkflows": _artifact_workflow,
}


def _build(resource: str, name: str, namespace: str) -> dict[str, Any]:
    if resource == "clusterartifacttypes":
        return cluster_artifact_type(name)
    return BUILDERS[resource](name, namespace)


@pytest.fixture(scope="module")
def tenancy(kubectl: Kubectl) -> Iterator[Tenancy]:
    suffix = unique("t").removeprefix("t-")
    t = Tenancy(f"team-a-{suffix}", f"team-b-{suffix}", f"platform-{suffix}", f"shared-{suffix}")
    for ns in (t.team_a, t.team_b):
        kubectl.run("create", "namespace", ns)
    kubectl.run("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", t.team_a)
    kubectl.run("create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob", "-n", t.team_b)
    kubectl.run("create", "rolebinding", "victor-view", "--clusterrole=view", "--user=victor", "-n", t.team_a)
    kubectl.run("create", "rolebinding", "carol-admin", "--clusterrole=admin", "--user=carol", "-n", t.team_a)
    kubectl.run(
        "create",
        "clusterrolebinding",
        t.platform_group,
        "--clusterrole=arc-platform-admin",
        f"--group={t.platform_group}",
    )
    # One object of every kind for reads, updates and status writes, created by the cluster admin.
    for ns in (t.team_a, t.team_b):
        for resource in BUILDERS:
            kubectl.run("create", "-f", "-", stdin=manifest(_build(resource, "existing", ns)))
    kubectl.run("create", "-f", "-", stdin=manifest(cluster_artifact_type(t.cluster_type)))
    try:
        yield t
    finally:
        kubectl.run("delete", "clusterrolebinding", t.platform_group, "--wait=false", check=False)
        kubectl.run("delete", f"clusterartifacttypes.{GROUP}", t.cluster_type, "--wait=false", check=False)
        for ns in (t.team_a, t.team_b):
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def _as(user: str, *groups: str) -> list[str]:
    return ["--as", user, *(f"--as-group={g}" for g in groups)]


def forbidden_message(user: str, verb: str, resource: str, namespace: str | None) -> str:
    """kube's wording, from kube-apiserver (RBAC before proxying) and from ARC (its own SAR) alike."""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'User "{user}" cannot {verb} resource "{resource}" in API group "{GROUP}" {where}'


# ---- the scenarios of the issue -----------------------------------------------------------------------


def test_alice_creates_and_lists_orders_in_her_namespace(kubectl: Kubectl, tenancy: Tenancy) -> None:
    name = unique("alice")
    out = kubectl.run("create", "-f", "-", *_as("alice"), stdin=manifest(order(name, tenancy.team_a)))
    assert out.strip() == f"order.{GROUP}/{name} created"
    names = kubectl.run("get", "orders", "-n", tenancy.team_a, "-o", "name", *_as("alice")).split()
    assert f"order.{GROUP}/{name}" in names
    created = kubectl.json("get", f"orders.{GROUP}", name, "-n", tenancy.team_a, "--show-managed-fields")
    assert [m["manager"] for m in created["metadata"]["managedFields"]] == ["kubectl-create"]


def test_alice_is_forbidden_in_team_b(kubectl: Kubectl, tenancy: Tenancy) -> None:
    name = unique("intruder")
    proc = kubectl_proc(
        kubectl, "create", "-f", "-", *_as("alice"), stdin=manifest(order(name, tenancy.team_b))
    )
    assert proc.returncode != 0
    assert "(Forbidden)" in proc.stderr
    assert forbidden_message("alice", "create", "orders", tenancy.team_b) in proc.stderr
    listed = kubectl_proc(kubectl, "get", f"orders.{GROUP}", "-n", tenancy.team_b, *_as("alice"))
    assert forbidden_message("alice", "list", "orders", tenancy.team_b) in listed.stderr
    got = kubectl_proc(kubectl, "get", f"orders.{GROUP}", "existing", "-n", tenancy.team_b, *_as("alice"))
    assert f'orders.{GROUP} "existing" is forbidden: ' in got.stderr
    assert forbidden_message("alice", "get", "orders", tenancy.team_b) in got.stderr
    # Nothing was created.
    assert "not found" in kubectl_proc(kubectl, "get", f"orders.{GROUP}", name, "-n", tenancy.team_b).stderr


def test_alice_cannot_list_across_namespaces(kubectl: Kubectl, tenancy: Tenancy) -> None:
    proc = kubectl_proc(kubectl, "get", f"orders.{GROUP}", "-A", *_as("alice"))
    assert proc.returncode != 0
    assert forbidden_message("alice", "list", "orders", None) in proc.stderr


def test_bob_is_confined_to_team_b(kubectl: Kubectl, tenancy: Tenancy) -> None:
    name = unique("bob")
    kubectl.run("create", "-f", "-", *_as("bob"), stdin=manifest(order(name, tenancy.team_b)))
    assert kubectl.run(
        "get", f"orders.{GROUP}", name, "-n", tenancy.team_b, "-o", "name", *_as("bob")
    ).strip()
    proc = kubectl_proc(kubectl, "get", f"orders.{GROUP}", "-n", tenancy.team_a, *_as("bob"))
    assert forbidden_message("bob", "list", "orders", tenancy.team_a) in proc.stderr


def test_viewer_reads_but_cannot_write(kubectl: Kubectl, tenancy: Tenancy) -> None:
    ns = tenancy.team_a
    for resource in ("orders", "endpoints", "artifacttypes", "artifactworkflows"):
        assert "existing" in kubectl.run("get", f"{resource}.{GROUP}", "-n", ns, *_as("victor"))
    proc = kubectl_proc(kubectl, "create", "-f", "-", *_as("victor"), stdin=manifest(order(unique("v"), ns)))
    assert forbidden_message("victor", "create", "orders", ns) in proc.stderr
    proc = kubectl_proc(
        kubectl,
        "patch",
        f"orders.{GROUP}",
        "existing",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        '{"metadata":{"labels":{"viewer":"was-here"}}}',
        *_as("victor"),
    )
    assert forbidden_message("victor", "patch", "orders", ns) in proc.stderr
    proc = kubectl_proc(kubectl, "delete", f"orders.{GROUP}", "existing", "-n", ns, *_as("victor"))
    assert forbidden_message("victor", "delete", "orders", ns) in proc.stderr
    assert "viewer" not in (
        kubectl.json("get", f"orders.{GROUP}", "existing", "-n", ns)["metadata"].get("labels") or {}
    )


def test_only_platform_admins_create_cluster_artifact_types(kubectl: Kubectl, tenancy: Tenancy) -> None:
    name = unique("cat")
    doc = manifest(cluster_artifact_type(name))
    for who in (_as("alice"), _as("carol")):
        proc = kubectl_proc(kubectl, "create", "-f", "-", *who, stdin=doc)
        assert forbidden_message(who[1], "create", "clusterartifacttypes", None) in proc.stderr
    # Every authenticated user reads them (tenants pick types).
    assert tenancy.cluster_type in kubectl.run("get", "cat", *_as("alice"))
    assert tenancy.cluster_type in kubectl.run("get", "cat", tenancy.cluster_type, *_as("someone-else"))
    # arc-platform-admin creates them; so does the cluster admin.
    platform = _as("carol", tenancy.platform_group)
    created = kubectl.run("create", "-f", "-", *platform, stdin=doc)
    assert created.strip() == f"clusterartifacttype.{GROUP}/{name} created"
    kubectl.run("delete", "cat", name, *platform, "--timeout=60s", timeout=90)
    kubectl.run("create", "-f", "-", stdin=doc)
    kubectl.run("delete", "cat", name, "--timeout=60s", timeout=90)


def test_team_admin_creates_artifact_types_but_edit_cannot(kubectl: Kubectl, tenancy: Tenancy) -> None:
    ns = tenancy.team_a
    name = unique("at")
    proc = kubectl_proc(kubectl, "create", "-f", "-", *_as("alice"), stdin=manifest(artifact_type(name, ns)))
    assert forbidden_message("alice", "create", "artifacttypes", ns) in proc.stderr
    out = kubectl.run("create", "-f", "-", *_as("carol"), stdin=manifest(artifact_type(name, ns)))
    assert out.strip() == f"artifacttype.{GROUP}/{name} created"
    assert name in kubectl.run("get", "at", "-n", ns, *_as("alice"))
    # admin in team-a is nothing in team-b.
    proc = kubectl_proc(
        kubectl, "create", "-f", "-", *_as("carol"), stdin=manifest(artifact_type(name, tenancy.team_b))
    )
    assert forbidden_message("carol", "create", "artifacttypes", tenancy.team_b) in proc.stderr


def test_arc_itself_authorizes_proxied_identities(local_cluster: LocalCluster, tenancy: Tenancy) -> None:
    """Defense in depth: a request that reaches ARC with the front-proxy certificate is still checked
    against RBAC (SubjectAccessReview) for the user named in X-Remote-User."""
    proxy = cluster_pair(local_cluster, "front-proxy-client")
    alice = {"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"}
    base = f"/apis/{GROUP}/v1alpha1/namespaces"
    ok = direct(local_cluster, "GET", f"{base}/{tenancy.team_a}/orders", cert=proxy, headers=alice)
    assert ok.status == 200, ok.body
    denied = direct(local_cluster, "GET", f"{base}/{tenancy.team_b}/orders", cert=proxy, headers=alice)
    assert denied.status == 403
    assert denied.json()["reason"] == "Forbidden"
    assert denied.message == f"orders.{GROUP} is forbidden: " + forbidden_message(
        "alice", "list", "orders", tenancy.team_b
    )
    name = unique("direct")
    created = direct(
        local_cluster,
        "POST",
        f"{base}/{tenancy.team_b}/orders",
        cert=proxy,
        headers=alice,
        body=order(name, tenancy.team_b),
    )
    assert created.status == 403
    assert (
        direct(
            local_cluster,
            "GET",
            f"{base}/{tenancy.team_b}/orders/{name}",
            cert=proxy,
            headers={"X-Remote-User": "admin", "X-Remote-Group": "system:masters"},
        ).status
        == 404
    )


# ---- kubectl auth can-i agrees with what the server does --------------------------------------------


@dataclass(frozen=True)
class Case:
    who: tuple[str, ...]
    verb: str
    resource: str
    namespace: str  # "a", "b", "all" (-A) or "" (cluster scope)
    allowed: bool
    subresource: str = ""

    def __str__(self) -> str:
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{'+'.join(self.who)}-{self.verb}-{self.resource}{sub}-{self.namespace or 'cluster'}"


PLATFORM = "<platform>"
CASES = [
    Case(("alice",), "create", "orders", "a", True),
    Case(("alice",), "list", "orders", "a", True),
    Case(("alice",), "get", "orders", "a", True),
    Case(("alice",), "patch", "orders", "a", True),
    Case(("alice",), "delete", "orders", "a", True),
    Case(("alice",), "patch", "orders", "a", False, "status"),
    Case(("alice",), "create", "orders", "b", False),
    Case(("alice",), "list", "orders", "b", False),
    Case(("alice",), "list", "orders", "all", False),
    Case(("alice",), "create", "endpoints", "a", True),
    Case(("alice",), "create", "artifacttypes", "a", False),
    Case(("alice",), "get", "artifacttypes", "a", True),
    Case(("alice",), "create", "artifactworkflows", "a", False),
    Case(("alice",), "delete", "artifactworkflows", "a", True),
    Case(("alice",), "list", "clusterartifacttypes", "", True),
    Case(("alice",), "create", "clusterartifacttypes", "", False),
    Case(("bob",), "create", "orders", "b", True),
    Case(("bob",), "get", "orders", "a", False),
    Case(("victor",), "list", "orders", "a", True),
    Case(("victor",), "get", "endpoints", "a", True),
    Case(("victor",), "create", "orders", "a", False),
    Case(("victor",), "delete", "endpoints", "a", False),
    Case(("carol",), "create", "artifacttypes", "a", True),
    Case(("carol",), "delete", "artifacttypes", "a", True),
    Case(("carol",), "create", "artifacttypes", "b", False),
    Case(("carol",), "create", "clusterartifacttypes", "", False),
    Case(("carol", PLATFORM), "create", "clusterartifacttypes", "", True),
    Case(("carol", PLATFORM), "delete", "clusterartifacttypes", "", True),
    Case(("mallory",), "list", "orders", "a", False),
]


def _identity(case: Case, tenancy: Tenancy) -> list[str]:
    user, *groups = case.who
    return _as(user, *(tenancy.platform_group if g == PLATFORM else g for g in groups))


def _scope(case: Case, tenancy: Tenancy) -> list[str]:
    if case.namespace == "all":
        return ["-A"]
    if case.namespace in ("a", "b"):
        return ["-n", tenancy.team_a if case.namespace == "a" else tenancy.team_b]
    return []


def _attempt(kubectl: Kubectl, case: Case, tenancy: Tenancy) -> tuple[bool, str]:
    """Do what the case says as the user; (allowed, stderr). A refusal must be a 403."""
    who, scope = _identity(case, tenancy), _scope(case, tenancy)
    namespace = scope[1] if scope[:1] == ["-n"] else ""
    resource = f"{case.resource}.{GROUP}"
    if case.verb == "create":
        obj = _build(case.resource, unique("can-i"), namespace)
        proc = kubectl_proc(kubectl, "create", "-f", "-", *who, stdin=manifest(obj))
    elif case.verb == "list":
        proc = kubectl_proc(kubectl, "get", resource, *scope, *who)
    elif case.verb == "get":
        name = tenancy.cluster_type if not namespace else "existing"
        proc = kubectl_proc(kubectl, "get", resource, name, *scope, *who)
    elif case.verb == "patch":
        name = tenancy.cluster_type if not namespace else "existing"
        if case.subresource == "status":
            patch = ["--subresource=status", "-p", json.dumps({"status": {"message": "can-i"}})]
        else:
            patch = ["-p", json.dumps({"metadata": {"labels": {"can-i": "yes"}}})]
        proc = kubectl_proc(kubectl, "patch", resource, name, *scope, "--type", "merge", *patch, *who)
    elif case.verb == "delete":
        victim = _build(case.resource, unique("victim"), namespace)
        kubectl.run("create", "-f", "-", stdin=manifest(victim))
        proc = kubectl_proc(
            kubectl, "delete", resource, victim["metadata"]["name"], *scope, "--wait=false", *who
        )
    else:
        raise AssertionError(f"no attempt for verb {case.verb}")
    if proc.returncode == 0:
        return True, proc.stderr
    assert "(Forbidden)" in proc.stderr, f"{case}: failed for another reason: {proc.stderr}"
    return False, proc.stderr


@pytest.mark.parametrize("case", CASES, ids=str)
def test_can_i_agrees_with_the_server(kubectl: Kubectl, tenancy: Tenancy, case: Case) -> None:
    who, scope = _identity(case, tenancy), _scope(case, tenancy)
    sub = [f"--subresource={case.subresource}"] if case.subresource else []
    can_i = kubectl_proc(kubectl, "auth", "can-i", case.verb, f"{case.resource}.{GROUP}", *sub, *scope, *who)
    answer = can_i.stdout.strip()
    assert answer in ("yes", "no"), can_i.stderr
    allowed, stderr = _attempt(kubectl, case, tenancy)
    assert (answer == "yes") == allowed, (
        f"{case}: can-i says {answer}, the server {'allowed' if allowed else stderr}"
    )
    assert allowed == case.allowed, f"{case}: expected {'allowed' if case.allowed else 'forbidden'}"
