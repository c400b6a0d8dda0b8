"""Why an ArtifactWorkflow's pods wait: Kueue's admission, read from its Workloads (pure functions).

Kueue manages Argo's pods through its plain-pod integration (SPEC §4.3): each pod is gated
(`kueue.x-k8s.io/admission`) until its Workload is admitted, and the Workload says why it is not — its
`QuotaReserved` condition is False with a message such as `LocalQueue arc doesn't exist` or `couldn't
assign flavors to pod set main: insufficient quota for cpu …`. Argo only sees a Pending pod. So while a
step's pod is Pending, the ArtifactWorkflow controller lists the Workloads of the namespace and, for the
ones owned by the Workflow's pods (pod names start with the Workflow's name), says
`waiting for admission by Kueue: <message>` in its status — and re-checks every `ADMISSION_POLL` seconds,
because a Workload's change is not an event this controller watches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = ["ADMISSION_POLL", "admission_message", "has_pending_pods", "missing_queue_message"]

ADMISSION_POLL: Final = 30.0
"""Seconds between looks at the Workloads of an ArtifactWorkflow whose pods are pending."""


def has_pending_pods(workflow: dict[str, Any]) -> bool:
    """Whether the Workflow has not started a pod yet or one of its step pods is Pending."""
    status = workflow.get("status") or {}
    nodes = status.get("nodes") or {}
    if not nodes:
        return (status.get("phase") or "Pending") == "Pending"
    return any(n.get("type") == "Pod" and n.get("phase") in (None, "", "Pending") for n in nodes.values())


def admission_message(workloads: Iterable[dict[str, Any]], workflow_name: str) -> str | None:
    """`waiting for admission by Kueue: <why>` from the first not-admitted Workload owned by one of the
    Workflow's pods (by name), or None when none is waiting (admitted, or no Workload yet)."""
    prefix = f"{workflow_name}-"
    for workload in sorted(workloads, key=lambda w: (w.get("metadata") or {}).get("name") or ""):
        owners = (workload.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("kind") == "Pod" and str(o.get("name") or "").startswith(prefix) for o in owners):
            continue
        conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
        if (conditions.get("Admitted") or {}).get("status") == "True":
            continue
        reserved = conditions.get("QuotaReserved")
        if reserved is not None and reserved.get("status") == "False" and reserved.get("message"):
            return f"waiting for admission by Kueue: {reserved['message']}"
        if (reserved or {}).get("status") != "True":
            return "waiting for admission by Kueue"
    return None


def missing_queue_message(namespace: str, queue: str) -> str:
    return (
        f'LocalQueue "{queue}" does not exist in namespace "{namespace}": the pods of this transfer wait for'
        " admission by Kueue until it does"
    )
