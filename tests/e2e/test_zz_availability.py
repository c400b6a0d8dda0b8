"""ARC's API server going away and coming back (runs last in the session: the module name sorts last, and
while ARC is down the whole group answers 503 and namespace deletion blocks cluster-wide)."""

from __future__ import annotations

from typing import Any

import pytest

from hack.cluster import ARC_APISERVICE, LocalCluster
from hack.kube import KubeHTTPError
from tests.e2e.conftest import Kubectl
from tests.e2e.support import GROUP, eventually, kubectl_proc, manifest, order

pytestmark = pytest.mark.e2e

ORDERS = f"orders.{GROUP}"


def _available(kubectl: Kubectl) -> dict[str, Any]:
    apiservice = kubectl.json("get", "apiservice", ARC_APISERVICE)
    conditions = {c["type"]: c for c in apiservice.get("status", {}).get("conditions", [])}
    return dict(conditions.get("Available", {}))


def test_stopping_arc_makes_the_apiservice_unavailable_and_starting_it_recovers(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("survivor", namespace)))
    others = {
        name: local_cluster.component(name).pid()
        for name in local_cluster.component_names
        if name != "arc-apiserver" and local_cluster.component(name).is_running()
    }
    arc = local_cluster.component("arc-apiserver")
    arc_pid = arc.pid()
    arc.stop()
    try:
        assert not arc.is_running()
        eventually(
            lambda: _available(kubectl).get("status") == "False",
            timeout=90,
            what=f"APIService {ARC_APISERVICE} Available=False",
        )
        condition = _available(kubectl)
        assert condition["reason"] == "FailedDiscoveryCheck", condition
        assert f"127.0.0.1:{local_cluster.ports.arc_apiserver}" in condition["message"]

        # Requests to the group are answered by the aggregator with 503 ...
        raw = kubectl_proc(kubectl, "get", "--raw", f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/orders")
        assert raw.returncode != 0
        assert "Error from server (ServiceUnavailable)" in raw.stderr, raw.stderr
        # ... and kubectl's resource lookup fails: with a warm discovery cache on the 503 itself, after a
        # refresh because aggregated discovery no longer lists the unavailable group.
        proc = kubectl_proc(kubectl, "get", ORDERS, "-n", namespace)
        assert proc.returncode != 0
        assert (
            "(ServiceUnavailable)" in proc.stderr
            or 'the server doesn\'t have a resource type "orders"' in proc.stderr
        ), proc.stderr
        with pytest.raises(KubeHTTPError) as raised:
            local_cluster.admin().get(f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/orders")
        assert raised.value.status == 503
        assert raised.value.body.strip() == "service unavailable"  # kube-aggregator's proxyError
        # The rest of the cluster is unaffected.
        assert kubectl.json("get", "configmaps", "-n", namespace)["kind"] == "List"
    finally:
        if not arc.is_running():
            local_cluster.start_arc_apiserver()

    assert arc.is_running() and arc.pid() != arc_pid
    assert _available(kubectl)["status"] == "True"
    assert _available(kubectl)["reason"] == "Passed"
    assert kubectl.json("get", ORDERS, "survivor", "-n", namespace)["metadata"]["name"] == "survivor"
    kubectl.run("create", "-f", "-", stdin=manifest(order("after", namespace)))
    assert {o["metadata"]["name"] for o in kubectl.json("get", ORDERS, "-n", namespace)["items"]} == {
        "survivor",
        "after",
    }
    # Nothing else was restarted.
    assert {name: local_cluster.component(name).pid() for name in others} == others
    for name in others:
        assert local_cluster.component(name).is_running(), name
