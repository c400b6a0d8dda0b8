"""Scheduled Orders' decisions (controllers/order/schedule.py) as pure functions of (Order, owned, now).

Virtual time is an explicit `now`: each test walks a clock forward and feeds back the status the previous
decision wrote, as the reconciler does — so "a restart neither misses nor doubles a time" is "the same
status and the same now give the same decision".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.arc.v1alpha1.types import ArtifactWorkflow, Order, OrderStatus
from api.resources import format_rfc3339
from controllers.order import schedule as sched
from controllers.order.plan import Children, plan_order
from controllers.order.resolve import ArtifactSchedule, Inputs, resolve_order

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
UID = "order-uid"


def order(cron: dict[str, Any] | None = None, *, artifacts: int = 1, **status: Any) -> Order:
    arts: list[dict[str, Any]] = [{"type": "oci", "spec": {"image": f"i{i}"}} for i in range(artifacts)]
    defaults: dict[str, Any] = {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}}
    if cron is not None:
        defaults["cron"] = cron
    return Order.model_validate(
        {
            "metadata": {
                "name": "o",
                "namespace": "ns",
                "uid": UID,
                "generation": 1,
                "creationTimestamp": format_rfc3339(T0),
            },
            "spec": {"defaults": defaults, "artifacts": arts},
            "status": status or None,
        }
    )


def with_status(o: Order, decision: sched.Decision | None) -> Order:
    """The Order as the next reconcile reads it: the schedule state the decision wrote."""
    assert decision is not None
    out = o.model_copy(deep=True)
    out.status = out.status or OrderStatus()
    out.status.schedules = decision.schedules
    out.status.last_schedule_time = decision.last_schedule_time
    return out


def aw(
    name: str, key: str, phase: str | None, scheduled: datetime, finished: datetime | None = None
) -> ArtifactWorkflow:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if finished:
        status["finishedAt"] = format_rfc3339(finished)
    return ArtifactWorkflow.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}",
                "labels": {sched.LABEL_SCHEDULE_KEY: key},
                "annotations": {sched.ANNOTATION_SCHEDULED_TIME: format_rfc3339(scheduled)},
                "ownerReferences": [
                    {"apiVersion": "v", "kind": "Order", "name": "o", "uid": UID, "controller": True}
                ],
            },
            "status": status or None,
        }
    )


def only(decision: sched.Decision | None) -> sched.ScheduledArtifact:
    assert decision is not None
    (art,) = decision.artifacts.values()
    return art


def test_an_unscheduled_order_has_no_decision() -> None:
    assert sched.evaluate(order(), {}, T0 + timedelta(days=1)) is None


def test_nothing_runs_before_the_first_time_and_the_requeue_aims_at_it() -> None:
    o = order({"schedules": ["*/10 * * * *"]})
    d = sched.evaluate(o, {}, T0 + timedelta(minutes=3))
    art = only(d)
    assert art.awaiting and art.scheduled_time is None and not art.started
    assert d is not None and abs(d.requeue_after - (7 * 60 + sched.NEXT_SCHEDULE_DELTA)) < 1e-6
    assert d.condition is not None and d.condition.status == "True"
    assert d.condition.message.endswith("next at 2026-12-04T10:10:00Z")


def test_each_time_starts_once_and_a_replayed_reconcile_starts_nothing_new() -> None:
    o = order({"schedules": ["*/10 * * * *"]})
    now = T0 + timedelta(minutes=10, seconds=1)
    first = sched.evaluate(o, {}, now)
    assert only(first).started and only(first).scheduled_time == "2026-12-04T10:10:00Z"
    # a restart or a new leader reads the status that reconcile wrote: the same time, not started again
    again = sched.evaluate(with_status(o, first), {}, now + timedelta(seconds=30))
    assert not only(again).started and only(again).scheduled_time == "2026-12-04T10:10:00Z"
    # a reconcile that read a status older than its own write (a lagging cache) computes the same time,
    # hence the same ArtifactWorkflow name: the create is an AlreadyExists, not a second run
    stale = sched.evaluate(o, {}, now + timedelta(seconds=30))
    assert only(stale).scheduled_time == only(first).scheduled_time
    later = sched.evaluate(with_status(o, first), {}, T0 + timedelta(minutes=20, seconds=1))
    assert only(later).started and only(later).scheduled_time == "2026-12-04T10:20:00Z"
    assert later is not None and later.last_schedule_time == "2026-12-04T10:20:00Z"


def test_downtime_without_a_deadline_runs_the_latest_missed_time_once() -> None:
    o = order({"schedules": ["*/10 * * * *"]})
    d = sched.evaluate(o, {}, T0 + timedelta(hours=5, minutes=3))
    assert only(d).started and only(d).scheduled_time == "2026-12-04T15:00:00Z"


def test_a_missed_deadline_is_reported_and_skipped_not_run_late() -> None:
    o = order({"schedules": ["*/10 * * * *"], "startingDeadlineSeconds": 60})
    d = sched.evaluate(o, {}, T0 + timedelta(minutes=12))
    art = only(d)
    assert not art.started and art.scheduled_time is None
    assert d is not None and d.schedules[art.key].last_missed_time == "2026-12-04T10:10:00Z"
    assert [(n.type, n.reason) for n in d.notices] == [("Warning", "MissedSchedule")]
    assert "120s late, past startingDeadlineSeconds 60" in d.notices[0].message
    assert d.condition is not None and (d.condition.status, d.condition.reason) == ("False", "MissedSchedule")
    # the same status later: the miss is not reported twice, the next time starts, the condition recovers
    replay = sched.evaluate(with_status(o, d), {}, T0 + timedelta(minutes=13))
    assert replay is not None and replay.notices == [] and not only(replay).started
    on_time = sched.evaluate(with_status(o, d), {}, T0 + timedelta(minutes=20, seconds=30))
    assert only(on_time).started and on_time is not None and on_time.condition is not None
    assert on_time.condition.status == "True"


def test_forbid_holds_a_time_back_while_the_previous_run_is_active() -> None:
    o = order({"schedules": ["*/10 * * * *"], "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 120})
    first = sched.evaluate(o, {}, T0 + timedelta(minutes=10))
    key = only(first).key
    o = with_status(o, first)
    running = {"r1": aw("r1", key, "Running", T0 + timedelta(minutes=10))}
    held = sched.evaluate(o, running, T0 + timedelta(minutes=20, seconds=5))
    assert not only(held).started and only(held).scheduled_time == "2026-12-04T10:10:00Z"
    assert held is not None and [(n.reason, n.once) for n in held.notices] == [
        ("AlreadyActive", (UID, key, "2026-12-04T10:20:00Z"))
    ]
    # it looks again when the deadline of the held time passes (20:00 + 120 s + 1 s)
    assert abs(held.requeue_after - (116 + sched.NEXT_SCHEDULE_DELTA)) < 1e-6
    # the run ends within the deadline: the held time starts then (CronJob's Forbid)
    done = {"r1": aw("r1", key, "Succeeded", T0 + timedelta(minutes=10), T0 + timedelta(minutes=21))}
    late_ok = sched.evaluate(o, done, T0 + timedelta(minutes=21))
    assert only(late_ok).started and only(late_ok).scheduled_time == "2026-12-04T10:20:00Z"
    assert late_ok is not None and late_ok.last_successful_time == "2026-12-04T10:21:00Z"
    # ... or past it: skipped and reported
    too_late = sched.evaluate(o, done, T0 + timedelta(minutes=23))
    assert not only(too_late).started
    assert too_late is not None and [n.reason for n in too_late.notices] == ["MissedSchedule"]


def test_allow_starts_beside_an_active_run() -> None:
    o = order({"schedules": ["*/10 * * * *"]})
    first = sched.evaluate(o, {}, T0 + timedelta(minutes=10))
    running = {"r1": aw("r1", only(first).key, "Running", T0 + timedelta(minutes=10))}
    d = sched.evaluate(with_status(o, first), running, T0 + timedelta(minutes=20))
    assert only(d).started
    assert d is not None and sched.prune(running, set(), d) == []  # the older run goes on


def test_replace_deletes_the_active_run() -> None:
    o = order({"schedules": ["*/10 * * * *"], "concurrencyPolicy": "Replace"})
    first = sched.evaluate(o, {}, T0 + timedelta(minutes=10))
    running = {"r1": aw("r1", only(first).key, "Running", T0 + timedelta(minutes=10))}
    d = sched.evaluate(with_status(o, first), running, T0 + timedelta(minutes=20))
    assert only(d).started
    assert d is not None
    (gone,) = sched.prune(running, {"r2"}, d)
    assert gone.name == "r1" and "Replace" in gone.why


def test_suspend_stops_new_times() -> None:
    o = order({"schedules": ["*/10 * * * *"], "suspend": True})
    d = sched.evaluate(o, {}, T0 + timedelta(hours=1))
    assert not only(d).started and only(d).awaiting and d is not None and d.requeue_after == 0


def test_history_limits_keep_the_newest_finished_runs() -> None:
    o = order({"schedules": ["*/10 * * * *"], "successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1})
    d = sched.evaluate(o, {}, T0 + timedelta(minutes=50))
    key = only(d).key
    runs = {
        f"s{i}": aw(f"s{i}", key, "Succeeded", T0 + timedelta(minutes=10 * i), T0 + timedelta(minutes=10 * i))
        for i in range(1, 5)
    }
    runs |= {f"f{i}": aw(f"f{i}", key, "Failed", T0 + timedelta(minutes=10 * i + 5)) for i in range(1, 3)}
    runs["other"] = aw("other", "someone-else", "Succeeded", T0)
    assert d is not None
    pruned = sorted((p.name, p.why) for p in sched.prune(runs, {"s4"}, d))
    assert pruned == [
        ("f1", "beyond failedJobsHistoryLimit 1"),
        ("other", "no longer desired by the Order"),
        ("s1", "beyond successfulJobsHistoryLimit 2"),
        ("s2", "beyond successfulJobsHistoryLimit 2"),
    ]
    # limit 0: even the current finished run goes (its result stays in the Order's status)
    zero = sched.evaluate(order({"schedules": ["@hourly"], "successfulJobsHistoryLimit": 0}), {}, T0)
    assert zero is not None
    key0 = only(zero).key
    current = {"c": aw("c", key0, "Succeeded", T0, T0)}
    assert [p.name for p in sched.prune(current, {"c"}, zero)] == ["c"]


def test_the_key_follows_the_artifact_not_its_index() -> None:
    o = order({"schedules": ["@hourly"]}, artifacts=2)
    d = sched.evaluate(o, {}, T0 + timedelta(minutes=61))
    assert d is not None
    keys = {a.index: a.key for a in d.artifacts.values()}
    swapped = with_status(o, d)
    assert swapped.spec.artifacts is not None
    swapped.spec.artifacts.reverse()
    d2 = sched.evaluate(swapped, {}, T0 + timedelta(minutes=62))
    assert d2 is not None
    assert {a.index: a.key for a in d2.artifacts.values()} == {0: keys[1], 1: keys[0]}
    assert all(not a.started and a.scheduled_time == "2026-12-04T11:00:00Z" for a in d2.artifacts.values())


def test_every_counts_from_the_last_time() -> None:
    o = order({"schedules": ["@every 5s"]})
    d = sched.evaluate(o, {}, T0 + timedelta(seconds=12))
    assert only(d).scheduled_time == "2026-12-04T10:00:10Z"
    d2 = sched.evaluate(with_status(o, d), {}, T0 + timedelta(seconds=14.9))
    assert not only(d2).started and d2 is not None
    assert abs(d2.requeue_after - (0.1 + sched.NEXT_SCHEDULE_DELTA)) < 1e-6


def test_plan_waits_then_creates_a_labelled_workflow_per_time() -> None:
    """The decision through resolve and plan: no ArtifactWorkflow before the first time; then one named by
    the time, labelled with the key; an earlier run becomes history, not a delete."""
    from api.arc.v1alpha1.types import ClusterArtifactType, Endpoint

    endpoints = {
        n: Endpoint.model_validate(
            {"metadata": {"name": n, "generation": 1}, "spec": {"type": "oci", "remoteURL": n}}
        )
        for n in ("src", "dst")
    }
    ctype = ClusterArtifactType.model_validate(
        {"metadata": {"name": "oci"}, "spec": {"workflowTemplateRef": {"name": "t", "clusterScope": True}}}
    )
    inputs = Inputs(endpoints, {}, {"oci": ctype})
    o = order({"schedules": ["*/10 * * * *"]})

    def run(o: Order, owned: dict[str, ArtifactWorkflow], now: datetime) -> Any:
        d = sched.evaluate(o, owned, now)
        assert d is not None
        schedules = {
            i: ArtifactSchedule(a.key, a.scheduled_time, a.awaiting, a.started)
            for i, a in d.artifacts.items()
        }
        resolved = resolve_order(o, inputs, schedules)
        return d, plan_order(o, resolved, Children(owned), now=format_rfc3339(now), schedule=d)

    d, plan = run(o, {}, T0 + timedelta(minutes=1))
    assert plan.creates == [] and plan.status.artifact_workflows is not None
    (entry,) = plan.status.artifact_workflows.values()
    assert entry.message == "waiting for the first scheduled time"
    d, plan = run(o, {}, T0 + timedelta(minutes=10))
    (create,) = plan.creates
    assert create.body["metadata"]["labels"][sched.LABEL_SCHEDULE_KEY] == only(d).key
    assert create.body["metadata"]["annotations"][sched.ANNOTATION_SCHEDULED_TIME] == "2026-12-04T10:10:00Z"
    assert plan.status.last_schedule_time == "2026-12-04T10:10:00Z"
    assert [e.reason for e in plan.events] == ["Rerun"]
    o2 = o.model_copy(deep=True)
    o2.status = plan.status
    finished = aw(
        create.name, only(d).key, "Succeeded", T0 + timedelta(minutes=10), T0 + timedelta(minutes=11)
    )
    d, plan = run(o2, {create.name: finished}, T0 + timedelta(minutes=20))
    (second,) = plan.creates
    assert second.name != create.name and plan.deletes == []  # the first run is history now
    assert plan.status.last_successful_time == "2026-12-04T10:11:00Z"


def test_an_artifact_cron_overrides_the_default_and_others_stay_unscheduled() -> None:
    o = order(None, artifacts=3)
    assert o.spec.artifacts is not None and o.spec.defaults is not None
    from api.arc.v1alpha1.types import Cron

    o.spec.artifacts[1].cron = Cron(schedules=["@every 60s"])
    d = sched.evaluate(o, {}, T0 + timedelta(seconds=61))
    assert d is not None and set(d.artifacts) == {1}  # only artifact #1 is scheduled
    assert d.artifacts[1].scheduled_time == "2026-12-04T10:01:00Z"
    o.spec.defaults.cron = Cron(schedules=["@every 3600s"])
    d = sched.evaluate(o, {}, T0 + timedelta(seconds=61))
    assert d is not None and set(d.artifacts) == {0, 1, 2}
    assert [d.artifacts[i].started for i in range(3)] == [False, True, False]


def test_removing_the_cron_keeps_the_last_time_and_runs_nothing_new() -> None:
    o = order({"schedules": ["@hourly"]})
    d = sched.evaluate(o, {}, T0 + timedelta(minutes=61))
    o = with_status(o, d)
    assert o.spec.defaults is not None
    o.spec.defaults.cron = None
    removed = sched.evaluate(o, {}, T0 + timedelta(hours=5))
    assert removed is not None and removed.condition is None and removed.requeue_after == 0
    after = only(removed)
    assert (after.has_cron, after.awaiting, after.started) == (False, False, False)
    assert after.scheduled_time == "2026-12-04T11:00:00Z"  # the hash, hence the ArtifactWorkflow, stays
