"""kube-controller-manager's real controllers treat ARC's resources like built-in ones: they discover them
through the aggregator and use the metadata client (PartialObjectMetadata list/watch, deletecollection,
merge patches with resourceVersion preconditions, DeleteOptions preconditions)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Kubectl
from tests.e2e.support import (
    API_VERSION,
    GROUP,
    artifact_type,
    endpoint,
    eventually,
    kubectl_proc,
    manifest,
    order,
    unique,
)

pytestmark = pytest.mark.e2e

ORDERS = f"orders.{GROUP}"


def _gone(kubectl: Kubectl, *args: str) -> bool:
    proc = kubectl_proc(kubectl, "get", *args)
    assert proc.returncode == 0 or "NotFound" in proc.stderr or "not found" in proc.stderr, proc.stderr
    return proc.returncode != 0


def _uid(kubectl: Kubectl, *args: str) -> str:
    return str(kubectl.json("get", *args)["metadata"]["uid"])


def test_deleting_a_namespace_removes_its_arc_objects(kubectl: Kubectl) -> None:
    ns = unique("team-x")
    kubectl.run("create", "namespace", ns)
    kubectl.run("create", "-f", "-", stdin=manifest(order("first", ns)))
    kubectl.run("create", "-f", "-", stdin=manifest(order("second", ns)))
    kubectl.run("create", "-f", "-", stdin=manifest(endpoint("hub", ns)))
    kubectl.run("create", "-f", "-", stdin=manifest(artifact_type("oci", ns)))
    # kubectl waits until the namespace is gone: the namespace controller found ARC's resources through
    # discovery, deleted them (deletecollection) and saw the lists come back empty.
    kubectl.run("delete", "namespace", ns, "--timeout=120s", timeout=150)
    assert _gone(kubectl, "namespace", ns)
    for resource in ("orders", "endpoints", "artifacttypes", "artifactworkflows"):
        listed = kubectl.json("get", f"{resource}.{GROUP}", "-n", ns)
        assert listed["items"] == [], resource
    # A namespace of the same name starts empty (nothing lingered in ARC's storage).
    kubectl.run("create", "namespace", ns)
    try:
        assert kubectl.json("get", ORDERS, "-n", ns)["items"] == []
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def test_namespace_deletion_waits_for_finalizers_on_arc_objects(kubectl: Kubectl) -> None:
    ns = unique("team-y")
    kubectl.run("create", "namespace", ns)
    kubectl.run("create", "-f", "-", stdin=manifest(order("held", ns, finalizers=["example.com/hold"])))
    kubectl.run("delete", "namespace", ns, "--wait=false")

    def finalizers_remaining() -> bool:
        conditions = kubectl.json("get", "namespace", ns).get("status", {}).get("conditions", [])
        return any(c["type"] == "NamespaceFinalizersRemaining" and c["status"] == "True" for c in conditions)

    eventually(finalizers_remaining, timeout=60, what="NamespaceFinalizersRemaining reported")
    held = kubectl.json("get", ORDERS, "held", "-n", ns)
    assert held["metadata"]["deletionTimestamp"]
    assert kubectl.json("get", "namespace", ns)["status"]["phase"] == "Terminating"
    # Terminating namespace: no new objects (NamespaceLifecycle admission in ARC).
    refused = kubectl_proc(kubectl, "create", "-f", "-", stdin=manifest(order("late", ns)))
    assert refused.returncode != 0
    assert "because it is being terminated" in refused.stderr, refused.stderr
    kubectl.run(
        "patch",
        ORDERS,
        "held",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    eventually(lambda: _gone(kubectl, "namespace", ns), timeout=120, what=f"namespace {ns} gone")


def test_configmap_owned_by_an_order_is_garbage_collected(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("owner", namespace)))
    owner_uid = _uid(kubectl, ORDERS, "owner", "-n", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": "Order", "name": "owner", "uid": owner_uid}
            ],
        },
        "data": {"k": "v"},
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(dependent))
    assert not _gone(kubectl, "configmap", "dependent", "-n", namespace)
    kubectl.run("delete", ORDERS, "owner", "-n", namespace, "--timeout=60s", timeout=90)
    eventually(
        lambda: _gone(kubectl, "configmap", "dependent", "-n", namespace),
        timeout=90,
        what="the ConfigMap garbage-collected",
    )


def test_order_owned_by_a_configmap_is_garbage_collected(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "configmap", "owner", "-n", namespace, "--from-literal=k=v")
    owner_uid = _uid(kubectl, "configmap", "owner", "-n", namespace)
    owned = order(
        "owned",
        namespace,
        ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
    )
    orphan_ref = order(
        "dangling",
        namespace,
        ownerReferences=[
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": "00000000-0000-0000-0000-000000000000",
            }
        ],
    )
    kubectl.run("create", "-f", "-", stdin=manifest(owned))
    kubectl.run("create", "-f", "-", stdin=manifest(orphan_ref))
    # An ownerReference whose uid matches no object: the GC deletes the dependent (owner "absent").
    eventually(
        lambda: _gone(kubectl, ORDERS, "dangling", "-n", namespace), timeout=90, what="dangling Order deleted"
    )
    assert not _gone(kubectl, ORDERS, "owned", "-n", namespace)
    kubectl.run("delete", "configmap", "owner", "-n", namespace)
    eventually(
        lambda: _gone(kubectl, ORDERS, "owned", "-n", namespace), timeout=90, what="owned Order deleted"
    )


def test_orphan_deletion_keeps_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("parent", namespace)))
    owner_uid = _uid(kubectl, ORDERS, "parent", "-n", namespace)
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": "Order", "name": "parent", "uid": owner_uid}
            ],
        },
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(child))
    kubectl.run("delete", ORDERS, "parent", "-n", namespace, "--cascade=orphan", "--timeout=60s", timeout=90)
    # The GC removed the orphan finalizer after stripping the ownerReference from the child.
    eventually(
        lambda: (
            not kubectl.json("get", "configmap", "child", "-n", namespace)["metadata"].get("ownerReferences")
        ),
        timeout=60,
        what="ownerReference removed from the child",
    )
    assert _gone(kubectl, ORDERS, "parent", "-n", namespace)
    assert not _gone(kubectl, "configmap", "child", "-n", namespace)


def test_foreground_deletion_waits_for_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("fg", namespace)))
    owner_uid = _uid(kubectl, ORDERS, "fg", "-n", namespace)
    blocker = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "blocker",
            "namespace": namespace,
            "finalizers": ["example.com/hold"],
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Order",
                    "name": "fg",
                    "uid": owner_uid,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(blocker))
    # kubectl waits for the Order to disappear, which it cannot while its dependent is held.
    proc = kubectl_proc(
        kubectl, "delete", ORDERS, "fg", "-n", namespace, "--cascade=foreground", "--timeout=5s", timeout=60
    )
    assert proc.returncode != 0
    assert "timed out waiting" in proc.stderr, proc.stderr
    owner = kubectl.json("get", ORDERS, "fg", "-n", namespace)
    assert owner["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in owner["metadata"]["finalizers"]
    # The GC deletes the dependent (it stays until its own finalizer goes) and keeps the owner.
    eventually(
        lambda: bool(
            kubectl.json("get", "configmap", "blocker", "-n", namespace)["metadata"].get("deletionTimestamp")
        ),
        timeout=60,
        what="the dependent being deleted",
    )
    assert not _gone(kubectl, ORDERS, "fg", "-n", namespace)
    kubectl.run(
        "patch",
        "configmap",
        "blocker",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    kubectl.run("wait", "--for=delete", f"{ORDERS}/fg", "-n", namespace, "--timeout=90s", timeout=120)
    assert _gone(kubectl, "configmap", "blocker", "-n", namespace)


def _used(kubectl: Kubectl, namespace: str) -> str | None:
    quota = kubectl.json("get", "resourcequota", "arc", "-n", namespace)
    used = (quota.get("status") or {}).get("used") or {}
    return used.get(f"count/orders.{GROUP}")


def test_resource_quota_counts_orders(kubectl: Kubectl, namespace: str) -> None:
    """kube-controller-manager's quota controller counts ARC objects with a metadata informer.

    Only usage is asserted. Quota *enforcement* at create time is kube-apiserver's ResourceQuota admission,
    which runs for resources kube-apiserver stores itself (built-ins, CRDs) — not for requests it proxies to
    an aggregated API server. For the same reason a create only shows up in ``status.used`` at the
    controller's next full recalculation (``--resource-quota-sync-period``, 5 min by default): the quota
    monitors replenish on updates and deletions, relying on admission for increments. Creating the quota
    (initial calculation) and deleting objects (replenishment) are therefore what we observe here.
    """
    for name in ("one", "two", "three"):
        kubectl.run("create", "-f", "-", stdin=manifest(order(name, namespace)))
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "arc", "namespace": namespace},
        "spec": {"hard": {f"count/orders.{GROUP}": "2"}},
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(quota))
    eventually(lambda: _used(kubectl, namespace) == "3", timeout=60, what="3 orders counted")
    status = kubectl.json("get", "resourcequota", "arc", "-n", namespace)["status"]
    assert status["hard"] == {f"count/orders.{GROUP}": "2"}
    kubectl.run("delete", ORDERS, "one", "two", "-n", namespace, "--timeout=60s", timeout=90)
    eventually(lambda: _used(kubectl, namespace) == "1", timeout=60, what="usage down to 1 after deletions")
