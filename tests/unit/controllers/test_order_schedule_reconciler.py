"""A scheduled Order through the real Manager over the in-memory FakeKubeClient, on looptime's virtual clock:
the reconciler requeues itself at each scheduled time, creates one ArtifactWorkflow per time, keeps the
history limits, and a second manager started on the same state (a restart) neither misses nor doubles."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import ARTIFACT_WORKFLOWS, CLUSTER_ARTIFACT_TYPES, ENDPOINTS, EVENTS, ORDERS
from controllers.order import schedule as sched
from controllers.order import setup_order_controller
from controllers.order.hashkey import HashKey
from controllers.runtime import Manager

pytestmark = pytest.mark.looptime
NS = "ns"


def virtual_clock() -> Callable[[], datetime]:
    """Wall time at the start plus the event loop's (virtual) elapsed time."""
    loop = asyncio.get_running_loop()
    start, t0 = datetime.now(UTC), loop.time()
    return lambda: start + timedelta(seconds=loop.time() - t0)


_CLOCKS: dict[int, Callable[[], datetime]] = {}


async def start(client: FakeKubeClient) -> asyncio.Task[None]:
    """A manager on `client`; every manager of one client shares one clock (a restart does not move time)."""
    clock = _CLOCKS.setdefault(id(client), virtual_clock())
    manager = Manager(client, bind_address=None)
    setup_order_controller(manager, hash_key=HashKey(b"k" * 32), concurrency=2, clock=clock)
    return asyncio.create_task(manager.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def client() -> AsyncIterator[FakeKubeClient]:
    client = FakeKubeClient()
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {"metadata": {"name": "oci"}, "spec": {"workflowTemplateRef": {"name": "t", "clusterScope": True}}},
    )
    for name in ("src", "dst"):
        await client.create(
            ENDPOINTS, NS, {"metadata": {"name": name}, "spec": {"type": "oci", "remoteURL": name}}
        )
    yield client
    _CLOCKS.pop(id(client), None)


def scheduled_order(**cron: Any) -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": "nightly"},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}, "cron": cron},
            "artifacts": [{"type": "oci", "spec": {"image": "library/nginx:1.27"}}],
        },
    }


def aws(client: FakeKubeClient) -> dict[str, dict[str, Any]]:
    return {
        name: o for (res, ns, name), o in client.objects.items() if res == ARTIFACT_WORKFLOWS and ns == NS
    }


def scheduled_times(client: FakeKubeClient) -> list[str]:
    return sorted(o["metadata"]["annotations"][sched.ANNOTATION_SCHEDULED_TIME] for o in aws(client).values())


def events(client: FakeKubeClient, reason: str) -> list[dict[str, Any]]:
    return [o for (res, _, _), o in client.objects.items() if res == EVENTS and o["reason"] == reason]


async def finish_all(client: FakeKubeClient, phase: str = "Succeeded") -> None:
    for name, obj in aws(client).items():
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        obj = await client.get(ARTIFACT_WORKFLOWS, NS, name)
        obj["status"] = {"phase": phase, "finishedAt": obj["metadata"]["creationTimestamp"]}
        await client.replace(ARTIFACT_WORKFLOWS, NS, name, obj, subresource="status")


async def test_one_run_per_time_history_kept_and_a_restart_doubles_nothing(client: FakeKubeClient) -> None:
    task = await start(client)
    await client.create(ORDERS, NS, scheduled_order(schedules=["@every 10s"], successfulJobsHistoryLimit=2))
    await asyncio.sleep(3)
    assert aws(client) == {}  # nothing before the first time (a CronJob's rule)
    seen: list[str] = []
    for _ in range(4):
        await asyncio.sleep(10)
        times = scheduled_times(client)
        seen.extend(t for t in times if t not in seen)
        await finish_all(client)
    assert len(seen) == 4  # one ArtifactWorkflow per scheduled time, none doubled
    gaps = {
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in itertools.pairwise(seen)
    }
    assert gaps == {10.0}
    await asyncio.sleep(1)
    assert len(aws(client)) == 2  # successfulJobsHistoryLimit
    status = client.objects[(ORDERS, NS, "nightly")]["status"]
    assert status["lastScheduleTime"] == seen[-1]
    assert status["lastSuccessfulTime"]

    await stop(task)  # a restart: a new manager, its caches rebuilt from the same state
    before = scheduled_times(client)
    task = await start(client)
    await asyncio.sleep(2)
    assert scheduled_times(client) == before  # the time already started is not started again
    await asyncio.sleep(10)
    assert len(set(scheduled_times(client)) - set(before)) == 1  # and the next one is not missed
    await stop(task)


async def test_forbid_skips_while_active_and_the_deadline_reports_a_miss(client: FakeKubeClient) -> None:
    task = await start(client)
    await client.create(
        ORDERS,
        NS,
        scheduled_order(schedules=["@every 10s"], concurrencyPolicy="Forbid", startingDeadlineSeconds=3),
    )
    await asyncio.sleep(11)
    (first,) = scheduled_times(client)
    await asyncio.sleep(15)  # the next time comes while the first run is active: held back, then too late
    assert scheduled_times(client) == [first]
    assert len(events(client, "AlreadyActive")) == 1
    assert len(events(client, "MissedSchedule")) == 1
    status = client.objects[(ORDERS, NS, "nightly")]["status"]
    (scheduled,) = [c for c in status["conditions"] if c["type"] == "Scheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "MissedSchedule")
    await finish_all(client)
    await asyncio.sleep(10)
    assert len(scheduled_times(client)) == 2  # the following time starts on time
    await stop(task)


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_schedule_metrics_count_starts_and_misses(client: FakeKubeClient) -> None:
    started = sample("arc_order_schedule_events_total", reason="Started")
    skews = sample("arc_order_scheduled_run_skew_seconds_count")
    missed = sample("arc_order_schedule_events_total", reason="MissedSchedule")
    task = await start(client)
    await client.create(
        ORDERS,
        NS,
        scheduled_order(schedules=["@every 10s"], concurrencyPolicy="Forbid", startingDeadlineSeconds=3),
    )
    await asyncio.sleep(26)
    assert sample("arc_order_schedule_events_total", reason="Started") == started + 1
    assert sample("arc_order_scheduled_run_skew_seconds_count") == skews + 1
    assert sample("arc_order_schedule_events_total", reason="MissedSchedule") == missed + 1
    await stop(task)
