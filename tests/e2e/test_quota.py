"""ResourceQuota for ARC's kinds through the aggregator (issue 14): kube-apiserver's quota admission never
sees ARC's objects, so ARC admits creates against ``count/<plural>.arc.opendefense.cloud`` itself, reading
the namespace's ResourceQuota objects from kube-apiserver, and refuses as kube does."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubectl
from tests.e2e.support import eventually, kubectl_proc, manifest, order, unique

pytestmark = pytest.mark.e2e

RESOURCE = "count/orders.arc.opendefense.cloud"


def test_object_count_quota_limits_orders(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "quota", "arc", f"--hard={RESOURCE}=1", "-n", namespace)
    kubectl.run("apply", "-f", "-", stdin=manifest(order("first", namespace)))
    refusal: list[str] = []

    def second_create_refused() -> bool:
        name = unique("second")
        proc = kubectl_proc(kubectl, "create", "-f", "-", stdin=manifest(order(name, namespace)))
        if proc.returncode == 0:
            # ARC's informer has not seen the quota yet: undo and try again.
            kubectl.run("delete", "order", name, "-n", namespace, "--wait=false")
            return False
        refusal.append(proc.stderr)
        return True

    eventually(second_create_refused, timeout=60, what="the quota to be enforced")
    assert "(Forbidden)" in refusal[0], refusal
    assert (
        f"exceeded quota: arc, requested: {RESOURCE}=1, used: {RESOURCE}=1, limited: {RESOURCE}=1"
        in refusal[0]
    ), refusal
    # Deleting the Order frees the quota.
    kubectl.run("delete", "order", "first", "-n", namespace)
    kubectl.run("create", "-f", "-", stdin=manifest(order("third", namespace)))
