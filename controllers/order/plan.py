"""The Order controller's decisions as one pure function: `plan_order(order, resolved, children) -> Plan`.

Given the Order, its resolved artifacts (`resolve.resolve_order`) and the ArtifactWorkflows that exist, the
plan says which ArtifactWorkflows to create, adopt and delete, the Order's new status and the Events to
record — no client, no cache, no clock unless none is given (`now`), so every rule of SPEC §4.1 can be tested
on plain objects (tests/unit/controllers/test_order_plan.py). The reconciler reads, plans, writes.

Per artifact (the first of identical ones; validation rejects duplicates):
- retry-failed-at and the artifact failed while running → delete its ArtifactWorkflow, entry Pending, so it
  is recreated under the same name once gone;
- its ArtifactWorkflow exists → mirror its phase (adopt it if it has no controller; wait while another owner
  controls it or while it is being deleted);
- it is gone and the artifact had finished by running → keep the result (an Order is a job, not a service);
- it cannot start → Failed with its `StartFailureReason` and SPEC's message; it starts by itself once the
  cause is fixed (the decision reads the reason, never the message);
- otherwise create it (recreated when an entry of the same hash existed).
An artifact that has not succeeded and whose Endpoint is not Ready (its probe, by the Endpoint controller)
says so in its message, after its own (`endpoint "x" is not Ready: <why>`); it is not stopped by it.
Owned ArtifactWorkflows whose hash is no longer desired are deleted (an Endpoint edit, a rotated Secret, a
removed artifact, force-at).

Scheduled artifacts (`schedule.py` decides, `schedule` below carries it): before its first scheduled time an
artifact waits; each scheduled time is part of its hash (a new ArtifactWorkflow per time), and its previous
runs are kept or deleted by `schedule.prune` (history limits, concurrency policy) instead of the rule above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from api.arc.v1alpha1.types import (
    API_VERSION,
    ArtifactWorkflow,
    Order,
    OrderArtifactWorkflowStatus,
    OrderStatus,
)
from api.meta import dump
from controllers.controllerutil import (
    ANNOTATION_ARTIFACT_INDEX,
    ANNOTATION_DST_ENDPOINT,
    ANNOTATION_ORDER_NAME,
    ANNOTATION_SRC_ENDPOINT,
    ANNOTATION_TRACE_ID,
    LABEL_ARTIFACT_TYPE,
    LABEL_ORDER,
    controller_of,
    controller_ref,
    set_condition,
)
from controllers.order import schedule as sched
from controllers.order.naming import label_value
from controllers.order.resolve import Artifact, Resolved
from controllers.order.status import FAILED, FINISHED, summarize
from controllers.runtime.events import EventType

__all__ = ["Children", "Create", "Delete", "Event", "Plan", "is_start_failure", "plan_order"]

WAIT_FOR_OTHER_OWNER = 5.0
"""Seconds between looks at an ArtifactWorkflow of our name that another owner controls."""


@dataclass(frozen=True, slots=True)
class Children:
    owned: Mapping[str, ArtifactWorkflow]
    """The ArtifactWorkflows this Order controls, by name."""
    named: Mapping[str, ArtifactWorkflow] = field(default_factory=dict)
    """Other ArtifactWorkflows in the namespace under a desired name (nobody's, or another owner's)."""

    def get(self, name: str) -> ArtifactWorkflow | None:
        return self.owned.get(name) or self.named.get(name)


@dataclass(frozen=True, slots=True)
class Create:
    name: str
    index: int
    type_name: str
    body: dict[str, Any]
    recreated: bool


@dataclass(frozen=True, slots=True)
class Delete:
    name: str
    uid: str | None
    why: str


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(slots=True)
class Plan:
    status: OrderStatus
    status_changed: bool = False
    creates: list[Create] = field(default_factory=list)
    adopts: list[ArtifactWorkflow] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    """To record once the writes (and the status write, when it changed) succeeded."""
    once_events: list[tuple[tuple[str, ...], Event]] = field(default_factory=list)
    """Events to record only the first time the process sees their key (e.g. a schedule held back)."""
    requeue_after: float = 0.0


def is_start_failure(entry: OrderArtifactWorkflowStatus | None) -> bool:
    """Whether the status entry is of an artifact that could not start (so it is retried by itself)."""
    return entry is not None and entry.phase in FAILED and entry.reason is not None


def plan_order(
    order: Order,
    resolved: Resolved,
    children: Children,
    *,
    workflow_finalizers: Sequence[str] = (),
    trace_id: str | None = None,
    now: str | None = None,
    schedule: sched.Decision | None = None,
    argo_ui_base_url: str | None = None,
) -> Plan:
    """`now`: the Ready condition's lastTransitionTime when it flips (default: the clock); `schedule`: the
    schedule decision (`schedule.evaluate`) when the Order has scheduled artifacts; `argo_ui_base_url`: the
    Argo UI, to link each artifact's Workflow (named as its ArtifactWorkflow) from the Order's status."""
    old = order.status if order.status is not None else OrderStatus()
    previous = old.artifact_workflows or {}
    plan = Plan(status=old.model_copy(deep=True))
    if resolved.force_at is not None:
        plan.events.append(
            Event("Normal", "Rerun", f"force-at {resolved.force_at}: re-running every artifact")
        )

    entries: dict[str, OrderArtifactWorkflowStatus] = {}
    desired: set[str] = set()
    for art in resolved.artifacts:
        if art.hash in entries:
            continue  # identical artifacts (rejected by validation) share one ArtifactWorkflow
        desired.add(art.name)
        entries[art.hash] = _with_endpoint_notes(
            _artifact(
                order,
                art,
                previous.get(art.hash),
                children,
                plan,
                retrying=resolved.retry_at is not None,
                workflow_finalizers=workflow_finalizers,
                trace_id=trace_id,
                argo_ui_base_url=argo_ui_base_url,
            ),
            art,
        )
    if resolved.retry_at is not None:
        plan.events.append(
            Event("Normal", "Rerun", f"retry-failed-at {resolved.retry_at}: re-running failed artifacts")
        )
    if schedule is None:
        plan.deletes.extend(
            Delete(name, aw.metadata.uid, "no longer desired by the Order")
            for name, aw in children.owned.items()
            if name not in desired and aw.metadata.deletion_timestamp is None
        )
    else:
        _schedule(resolved, children, desired, schedule, plan, now)
    _status(order, old, resolved, entries, plan, now)
    reruns = _input_reruns(order, old, resolved)
    if reruns:
        plan.events.append(
            Event(
                "Normal",
                "Rerun",
                f"Endpoint or Secret changed: re-running {len(reruns)} artifact"
                f"{'s' if len(reruns) > 1 else ''}: " + ", ".join(reruns),
            )
        )
    return plan


def _artifact(
    order: Order,
    art: Artifact,
    prev: OrderArtifactWorkflowStatus | None,
    children: Children,
    plan: Plan,
    *,
    retrying: bool,
    workflow_finalizers: Sequence[str],
    trace_id: str | None,
    argo_ui_base_url: str | None,
) -> OrderArtifactWorkflowStatus:
    entry = OrderArtifactWorkflowStatus(artifact_index=art.index, name=art.name, phase="Pending")
    aw = children.get(art.name)
    prev_finished = prev is not None and prev.phase in FINISHED
    prev_start_failure = is_start_failure(prev)

    if retrying and prev is not None and prev.phase in FAILED and not prev_start_failure:
        entry.message = "retrying"
        if aw is not None and aw.metadata.deletion_timestamp is None:
            plan.deletes.append(Delete(art.name, aw.metadata.uid, "retrying the failed artifact"))
        return entry

    if aw is not None:
        controller = controller_of(aw.metadata)
        if controller is not None and controller.uid != order.metadata.uid:
            entry.message = f"waiting for ArtifactWorkflow {art.name} of another owner to go away"
            plan.requeue_after = max(plan.requeue_after, WAIT_FOR_OTHER_OWNER)
            return entry
        if aw.metadata.deletion_timestamp is not None:
            if prev is not None and prev_finished:
                return prev.model_copy(update={"artifact_index": art.index})
            entry.message = "waiting for the previous ArtifactWorkflow to be deleted"
            return entry
        if controller is None:
            plan.adopts.append(aw)
        entry.phase = aw.status.phase if aw.status is not None and aw.status.phase else "Pending"
        entry.message = aw.status.message if aw.status is not None else None
        provenance = aw.status.provenance if aw.status is not None else None
        if provenance is not None:
            entry.digest = provenance.destination.digest if provenance.destination else None
            entry.verified_by = provenance.signature.key if provenance.signature else None
        _link_workflow(entry, order, art, argo_ui_base_url)
        return entry

    if prev is not None and prev_finished and not prev_start_failure:
        return prev.model_copy(update={"artifact_index": art.index, "name": art.name})

    if art.failure is not None:
        entry.phase = "Failed"
        entry.message = art.failure.message
        entry.reason = art.failure.reason
        return entry
    if art.awaiting_schedule:
        entry.message = "waiting for the first scheduled time"
        return entry
    recreated = prev is not None and not prev_start_failure
    body = _workflow_body(order, art, workflow_finalizers, trace_id)
    plan.creates.append(Create(art.name, art.index, art.type_name, body, recreated))
    # Linked at once, as the next reconcile (which finds the ArtifactWorkflow) links it: otherwise that
    # reconcile writes the status a second time only to add the link.
    _link_workflow(entry, order, art, argo_ui_base_url)
    return entry


def _link_workflow(
    entry: OrderArtifactWorkflowStatus, order: Order, art: Artifact, argo_ui_base_url: str | None
) -> None:
    if argo_ui_base_url:
        namespace = order.metadata.namespace or ""
        entry.workflow_url = argo_ui_workflow_url(argo_ui_base_url, namespace, art.name)


def argo_ui_workflow_url(base_url: str, namespace: str, name: str) -> str:
    """Where the Argo UI shows a Workflow (its route ``/workflows/<namespace>/<name>``)."""
    return f"{base_url.rstrip('/')}/workflows/{quote(namespace, safe='')}/{quote(name, safe='')}"


def _with_endpoint_notes(entry: OrderArtifactWorkflowStatus, art: Artifact) -> OrderArtifactWorkflowStatus:
    """An unfinished or failed artifact's message says which of its Endpoints are not Ready and why (a
    start failure keeps SPEC's message alone; a note already there is not repeated)."""
    if entry.phase == "Succeeded" or is_start_failure(entry) or not art.endpoint_notes:
        return entry
    message = entry.message or ""
    notes = [note for note in art.endpoint_notes if note not in message]
    if not notes:
        return entry
    return entry.model_copy(update={"message": "; ".join([m for m in (message, *notes) if m])})


def _workflow_body(
    order: Order, art: Artifact, workflow_finalizers: Sequence[str], trace_id: str | None
) -> dict[str, Any]:
    order_name = order.metadata.name or ""
    annotations: dict[str, str] = {
        ANNOTATION_ARTIFACT_INDEX: str(art.index),
        ANNOTATION_SRC_ENDPOINT: art.src_name,
        ANNOTATION_DST_ENDPOINT: art.dst_name,
    }
    if label_value(order_name) != order_name:
        annotations[ANNOTATION_ORDER_NAME] = order_name
    labels = {LABEL_ORDER: label_value(order_name), LABEL_ARTIFACT_TYPE: label_value(art.type_name)}
    if art.schedule_key is not None:
        labels[sched.LABEL_SCHEDULE_KEY] = art.schedule_key
    if art.scheduled_time is not None:
        annotations[sched.ANNOTATION_SCHEDULED_TIME] = art.scheduled_time
    if trace_id:
        annotations[ANNOTATION_TRACE_ID] = trace_id
    meta: dict[str, Any] = {
        "name": art.name,
        "namespace": order.metadata.namespace,
        "labels": labels,
        "ownerReferences": [controller_ref(order, api_version=API_VERSION, kind="Order")],
        "annotations": annotations,
    }
    if workflow_finalizers:
        meta["finalizers"] = list(workflow_finalizers)
    return {"apiVersion": API_VERSION, "kind": "ArtifactWorkflow", "metadata": meta, "spec": art.spec}


def _schedule(
    resolved: Resolved,
    children: Children,
    desired: set[str],
    decision: sched.Decision,
    plan: Plan,
    now: str | None,
) -> None:
    """A scheduled Order's deletes (history and concurrency policy), schedule status, Events and requeue."""
    plan.deletes.extend(Delete(p.name, p.uid, p.why) for p in sched.prune(children.owned, desired, decision))
    status = plan.status
    status.schedules = decision.schedules
    status.last_schedule_time = decision.last_schedule_time
    status.last_successful_time = decision.last_successful_time
    conditions = [c for c in status.conditions or [] if c.type != sched.CONDITION_SCHEDULED]
    if decision.condition is not None:
        conditions = set_condition(status.conditions, decision.condition, now=now)
    status.conditions = conditions or None
    for notice in decision.notices:
        event = Event(notice.type, notice.reason, notice.message)
        if notice.once is None:
            plan.events.append(event)
        else:
            plan.once_events.append((notice.once, event))
    for art in resolved.artifacts:
        if art.index in resolved.scheduled_reruns:
            message = f"scheduled time {art.scheduled_time}: running artifact #{art.index} as {art.name}"
            plan.events.append(Event("Normal", "Rerun", message))
    if decision.requeue_after > 0:
        plan.requeue_after = (
            min(plan.requeue_after, decision.requeue_after) if plan.requeue_after else decision.requeue_after
        )


def _status(
    order: Order,
    old: OrderStatus,
    resolved: Resolved,
    entries: dict[str, OrderArtifactWorkflowStatus],
    plan: Plan,
    now: str | None,
) -> None:
    """The new status (entries, progress, phase, Ready, message, observedGeneration, handled annotation
    times), whether it changed, and the Events of that change."""
    status = plan.status
    if resolved.force_at is not None:
        status.last_force_at = resolved.force_at
    if resolved.retry_at is not None:
        status.last_retry_at = resolved.retry_at
    summary = summarize(entries, order.metadata.generation)
    status.artifact_workflows = entries
    status.progress = summary.progress
    status.phase = summary.phase
    status.message = summary.ready.message
    status.observed_generation = order.metadata.generation
    status.conditions = set_condition(status.conditions, summary.ready, now=now)
    plan.status_changed = dump(status) != dump(old)
    if not plan.status_changed:
        return
    previous = old.artifact_workflows or {}
    for h, entry in entries.items():
        before = previous.get(h)
        if entry.phase in FAILED and (
            before is None or before.phase != entry.phase or before.message != entry.message
        ):
            plan.events.append(
                Event(
                    "Warning",
                    "ArtifactFailed",
                    f"artifact #{entry.artifact_index} ({entry.name}) failed: {entry.message or entry.phase}",
                )
            )
    if summary.phase == "Succeeded" and old.phase != "Succeeded":
        plan.events.append(Event("Normal", "Succeeded", summary.ready.message))


def _input_reruns(order: Order, old: OrderStatus, resolved: Resolved) -> list[str]:
    """The artifacts re-run because an Endpoint's spec or a Secret's data changed (for the `Rerun` event).

    With the Order's spec unchanged since the last status (observedGeneration == generation) and no
    force-at, an artifact's hash moves only when the generation of one of its Endpoints or the data of
    one of their Secrets changed. An artifact that could not start before (missing Endpoint, rule
    violation, ...) and now can is a first start, not a re-run; one that cannot start now is reported
    by `ArtifactFailed` instead.
    """
    if resolved.force_at is not None or old.observed_generation != order.metadata.generation:
        return []
    before = {e.artifact_index: (h, e) for h, e in (old.artifact_workflows or {}).items()}
    desired = {a.hash for a in resolved.artifacts}
    out = []
    for art in resolved.artifacts:
        if art.index in resolved.scheduled_reruns:
            continue  # its scheduled time came: reported as a scheduled run
        prior = before.get(art.index)
        if prior is None or prior[0] == art.hash or prior[0] in desired or art.failure is not None:
            continue
        if is_start_failure(prior[1]):
            continue
        out.append(f"#{art.index} ({art.name} replaces {prior[1].name})")
    return out
