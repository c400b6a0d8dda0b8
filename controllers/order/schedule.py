"""Scheduled Orders: which artifact re-runs when — pure functions of (Order, its ArtifactWorkflows, now).

ARC drives the schedule itself, as kube's CronJob controller (v2) does, in the level-based reconciler:
- Every scheduled time is derived from status, never from a timer's memory: the latest time of the
  artifact's schedules in (anchor, now], where the anchor is the artifact's `lastScheduleTime` (or its
  `lastMissedTime`, or the Order's creation). A restart or a new leader reads the same status and finds the
  same time; the time is part of the artifact's hash, so its ArtifactWorkflow name is fixed and a second
  create is an AlreadyExists (adopted), never a second run. The reconcile asks to be requeued at the next
  time (`requeue_after`), so no wheel of timers has to survive anything.
- A time that is `startingDeadlineSeconds` late is not run: it is recorded as `lastMissedTime`, reported
  (Warning `MissedSchedule`, condition `Scheduled=False`) and skipped. (CronJob drops it silently.)
- `concurrencyPolicy`: Forbid holds a time back while the artifact's previous run is active (CronJob's
  `JobAlreadyActive`; it starts when that run ends, unless that is past the deadline), Replace deletes the
  active run and starts the new one, Allow lets both run.
- History: finished ArtifactWorkflows of a scheduled artifact are kept, the newest
  `successfulJobsHistoryLimit` Succeeded and `failedJobsHistoryLimit` Failed/Error (by scheduled time); the
  rest are deleted. The Order's status keeps the latest result of each artifact anyway.

An artifact's schedule state lives in `status.schedules` under its schedule key, a hash of what the artifact
*is* (type, spec, Endpoint names): re-ordering the artifacts or editing an Endpoint keeps its state. Its
scheduled ArtifactWorkflows carry the key as a label and the scheduled time as an annotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from api.arc.v1alpha1.types import (
    ArtifactWorkflow,
    ConcurrencyPolicy,
    Condition,
    Cron,
    Order,
    OrderScheduleStatus,
)
from api.cron import CronError, SchedulePlan, parse_schedules
from api.resources import format_rfc3339, parse_rfc3339
from controllers.order.naming import canonical_json
from controllers.order.resolve import effective_refs
from controllers.order.status import FAILED, FINISHED
from controllers.runtime.events import EventType

__all__ = [
    "ANNOTATION_SCHEDULED_TIME",
    "CONDITION_SCHEDULED",
    "LABEL_SCHEDULE_KEY",
    "Decision",
    "Notice",
    "Prune",
    "ScheduledArtifact",
    "effective_cron",
    "evaluate",
    "prune",
    "schedule_key",
]

LABEL_SCHEDULE_KEY: Final = "arc.opendefense.cloud/schedule-key"
ANNOTATION_SCHEDULED_TIME: Final = "arc.opendefense.cloud/scheduled-time"
CONDITION_SCHEDULED: Final = "Scheduled"
NEXT_SCHEDULE_DELTA: Final = 0.1
"""Seconds past a scheduled time at which the reconcile is requeued (CronJob's nextScheduleDelta)."""
DEFAULT_SUCCESSFUL_HISTORY: Final = 3
DEFAULT_FAILED_HISTORY: Final = 1


@dataclass(frozen=True, slots=True)
class Notice:
    """An Event to record; `once` (when set) records it only the first time this process sees that key."""

    type: EventType
    reason: str
    message: str
    once: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ScheduledArtifact:
    index: int
    key: str
    scheduled_time: str | None
    """The time the artifact's current run belongs to (part of its hash); None before its first time."""
    policy: str
    successful_limit: int
    failed_limit: int
    started: bool = False
    """Its scheduled time advanced in this reconcile (a re-run, not an input change)."""
    has_cron: bool = True
    """False for an artifact whose cron was removed: it keeps its state and history, and runs as any."""

    @property
    def awaiting(self) -> bool:
        """Scheduled, and its first scheduled time has not come: nothing runs yet (as with a CronJob)."""
        return self.has_cron and self.scheduled_time is None


@dataclass(slots=True)
class Decision:
    artifacts: dict[int, ScheduledArtifact] = field(default_factory=dict)
    """By artifact index: the scheduled artifacts."""
    schedules: dict[str, OrderScheduleStatus] = field(default_factory=dict)
    last_schedule_time: str | None = None
    last_successful_time: str | None = None
    condition: Condition | None = None
    notices: list[Notice] = field(default_factory=list)
    requeue_after: float = 0.0
    """Seconds until the next scheduled time (0: none)."""

    def by_key(self) -> dict[str, ScheduledArtifact]:
        return {a.key: a for a in self.artifacts.values()}


@dataclass(frozen=True, slots=True)
class Prune:
    name: str
    uid: str | None
    why: str


def effective_cron(order: Order, index: int) -> Cron | None:
    artifacts = order.spec.artifacts or []
    own = artifacts[index].cron if index < len(artifacts) else None
    if own is not None:
        return own
    return order.spec.defaults.cron if order.spec.defaults is not None else None


def schedule_key(order: Order, index: int, src: str, dst: str) -> str:
    """16 hex of SHA-256 over [type, spec, srcName, dstName]: what the artifact is, not where it stands."""
    artifact = (order.spec.artifacts or [])[index]
    spec = artifact.spec if artifact.spec is not None else {}
    return hashlib.sha256(canonical_json([artifact.type, spec, src, dst]).encode()).hexdigest()[:16]


def _time(value: str | None) -> datetime | None:
    return parse_rfc3339(value) if value else None


def _later(a: str | None, b: str | None) -> str | None:
    ta, tb = _time(a), _time(b)
    if ta is None:
        return b
    if tb is None:
        return a
    return a if ta >= tb else b


def _by_key(owned: Iterable[ArtifactWorkflow]) -> dict[str, list[ArtifactWorkflow]]:
    """The owned scheduled ArtifactWorkflows grouped by schedule key (one pass, not one per artifact)."""
    out: dict[str, list[ArtifactWorkflow]] = {}
    for aw in owned:
        key = (aw.metadata.labels or {}).get(LABEL_SCHEDULE_KEY)
        if key:
            out.setdefault(key, []).append(aw)
    return out


def _active(runs: Iterable[ArtifactWorkflow]) -> bool:
    return any(
        aw.metadata.deletion_timestamp is None and not (aw.status is not None and aw.status.phase in FINISHED)
        for aw in runs
    )


def _last_success(runs: Iterable[ArtifactWorkflow]) -> str | None:
    out: str | None = None
    for aw in runs:
        if aw.status is not None and aw.status.phase == "Succeeded" and aw.status.finished_at:
            out = _later(out, aw.status.finished_at)
    return out


def evaluate(order: Order, owned: Mapping[str, ArtifactWorkflow], now: datetime) -> Decision | None:
    """The schedule decision for this reconcile; None when the Order has no scheduled artifact and no
    schedule state (an unscheduled Order is planned exactly as before)."""
    old = order.status.schedules if order.status is not None and order.status.schedules else {}
    defaults_cron = order.spec.defaults.cron if order.spec.defaults is not None else None
    if not old and defaults_cron is None and not any(a.cron for a in order.spec.artifacts or []):
        return None  # the common case, without hashing anything
    decision = Decision()
    runs_by_key = _by_key(owned.values())
    created = _time(order.metadata.creation_timestamp) or now
    next_times: list[datetime] = []
    missed: list[str] = []
    for index, (src, dst) in enumerate(effective_refs(order)):
        cron = effective_cron(order, index)
        key = schedule_key(order, index, src, dst)
        prev = old.get(key)
        if cron is None and prev is None:
            continue
        state = (
            prev.model_copy(update={"artifact_index": index})
            if prev is not None
            else OrderScheduleStatus(artifact_index=index)
        )
        started = False
        if cron is not None and not cron.suspend:
            active = _active(runs_by_key.get(key, ()))
            started, nxt = _tick(order, index, key, cron, state, active, created, now, decision.notices)
            if nxt is not None:
                next_times.append(nxt)
        state.last_successful_time = _later(
            state.last_successful_time, _last_success(runs_by_key.get(key, ()))
        )
        missed_at = _time(state.last_missed_time)
        if missed_at is not None and (
            state.last_schedule_time is None or missed_at > (_time(state.last_schedule_time) or missed_at)
        ):
            missed.append(f"artifact #{index} missed {state.last_missed_time}")
        decision.schedules[key] = state
        decision.artifacts[index] = ScheduledArtifact(
            index=index,
            key=key,
            scheduled_time=state.last_schedule_time,
            policy=(cron.concurrency_policy if cron is not None else None) or ConcurrencyPolicy.ALLOW.value,
            successful_limit=_limit(cron.successful_jobs_history_limit if cron else None, True),
            failed_limit=_limit(cron.failed_jobs_history_limit if cron else None, False),
            started=started,
            has_cron=cron is not None,
        )
    if not decision.schedules:
        return None
    for state in decision.schedules.values():
        decision.last_schedule_time = _later(decision.last_schedule_time, state.last_schedule_time)
        decision.last_successful_time = _later(decision.last_successful_time, state.last_successful_time)
    nxt = min(next_times) if next_times else None
    if nxt is not None:
        decision.requeue_after = max((nxt - now).total_seconds(), 0.0) + NEXT_SCHEDULE_DELTA
    if not any(a.has_cron for a in decision.artifacts.values()):
        pass  # no schedule left (only the state of removed ones): no Scheduled condition
    elif missed:
        decision.condition = Condition(
            type=CONDITION_SCHEDULED,
            status="False",
            reason="MissedSchedule",
            message="missed the starting deadline, skipped: " + "; ".join(missed),
        )
    else:
        decision.condition = Condition(
            type=CONDITION_SCHEDULED,
            status="True",
            reason="OnSchedule",
            message="every scheduled time started on time"
            + (f"; next at {format_rfc3339(nxt)}" if nxt is not None else ""),
        )
    if decision.condition is not None:
        decision.condition.observed_generation = order.metadata.generation
    return decision


def _limit(value: int | None, successful: bool) -> int:
    if value is not None:
        return value
    return DEFAULT_SUCCESSFUL_HISTORY if successful else DEFAULT_FAILED_HISTORY


def _tick(
    order: Order,
    index: int,
    key: str,
    cron: Cron,
    state: OrderScheduleStatus,
    active: bool,
    created: datetime,
    now: datetime,
    notices: list[Notice],
) -> tuple[bool, datetime | None]:
    """Advance one artifact's state to `now`: (whether a run starts, the next time to look again)."""
    uid = order.metadata.uid or ""
    try:
        plan = parse_schedules(cron.schedules or [], cron.timezone)
    except CronError as exc:  # validation refuses these; an object stored before that rule still reconciles
        notices.append(
            Notice("Warning", "InvalidSchedule", f"artifact #{index}: {exc}", once=(uid, key, str(exc)))
        )
        return False, None
    anchor = max(
        t for t in (_time(state.last_schedule_time), _time(state.last_missed_time), created) if t is not None
    )
    due = plan.latest(anchor, now)
    if due is None:
        return False, plan.next(anchor)
    deadline = cron.starting_deadline_seconds
    due_text = format_rfc3339(due)
    if deadline is not None and due + timedelta(seconds=deadline) < now:
        state.last_missed_time = due_text
        late = int((now - due).total_seconds())
        notices.append(
            Notice(
                "Warning",
                "MissedSchedule",
                f"Missed scheduled time {due_text} of artifact #{index}: {late}s late, past"
                f" startingDeadlineSeconds {deadline}; skipped",
            )
        )
        return False, _following(plan, due, now)
    if cron.concurrency_policy == ConcurrencyPolicy.FORBID and active:
        notices.append(
            Notice(
                "Normal",
                "AlreadyActive",
                f"Not starting artifact #{index} at {due_text}: its previous run is still active and"
                " concurrencyPolicy is Forbid",
                once=(uid, key, due_text),
            )
        )
        # Held back: look again when the deadline passes (to report it), else at the following time.
        following = _following(plan, due, now)
        if deadline is not None:
            expiry = due + timedelta(seconds=deadline + 1)
            return False, min(expiry, following) if following is not None else expiry
        return False, following
    state.last_schedule_time = due_text
    return True, _following(plan, due, now)


def _following(plan: SchedulePlan, due: datetime, now: datetime) -> datetime | None:
    """The first time after `now` on the schedule counted from `due` (robfig's `@every` counts from it)."""
    latest = plan.latest(due, now)
    return plan.next(latest if latest is not None else due)


def _scheduled_at(aw: ArtifactWorkflow) -> datetime:
    value = (aw.metadata.annotations or {}).get(ANNOTATION_SCHEDULED_TIME) or aw.metadata.creation_timestamp
    return _time(value) or datetime.min.replace(tzinfo=UTC)


def prune(owned: Mapping[str, ArtifactWorkflow], desired: set[str], decision: Decision) -> list[Prune]:
    """The owned ArtifactWorkflows to delete: those no longer desired (as without a schedule), except a
    scheduled artifact's history (finished runs within its limits; active runs under Allow); and a scheduled
    artifact's finished runs beyond its limits, the current one included (its result stays in status)."""
    by_key = decision.by_key()
    out: list[Prune] = []
    history: dict[str, list[ArtifactWorkflow]] = {}
    for name, aw in owned.items():
        if aw.metadata.deletion_timestamp is not None:
            continue
        key = (aw.metadata.labels or {}).get(LABEL_SCHEDULE_KEY)
        sched = by_key.get(key) if key else None
        finished = aw.status is not None and aw.status.phase in FINISHED
        if sched is None:
            if name not in desired:
                out.append(Prune(name, aw.metadata.uid, "no longer desired by the Order"))
            continue
        if finished:
            history.setdefault(sched.key, []).append(aw)
        elif name not in desired and sched.policy != ConcurrencyPolicy.ALLOW:
            why = (
                f"replaced by the run scheduled at {sched.scheduled_time} (concurrencyPolicy {sched.policy})"
            )
            out.append(Prune(name, aw.metadata.uid, why))
    for key, runs in history.items():
        sched = by_key[key]
        runs.sort(key=_scheduled_at, reverse=True)
        succeeded = [aw for aw in runs if aw.status is not None and aw.status.phase == "Succeeded"]
        failed = [aw for aw in runs if aw.status is not None and aw.status.phase in FAILED]
        for kept, limit, what in (
            (succeeded, sched.successful_limit, "successfulJobsHistoryLimit"),
            (failed, sched.failed_limit, "failedJobsHistoryLimit"),
        ):
            for aw in kept[limit:]:
                out.append(Prune(aw.metadata.name or "", aw.metadata.uid, f"beyond {what} {limit}"))
    return out
