"""Informer, controller switch, leader election and event recorder over the in-memory FakeKubeClient."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import EVENTS, LEASES, SECRETS, Resource
from controllers.runtime import (
    Controller,
    EventRecorder,
    Informer,
    LeaderElectionConfig,
    LeaderElector,
    ObjectReference,
    Request,
    Result,
    TerminalError,
)

pytestmark = pytest.mark.looptime

CM = Resource("", "v1", "configmaps", "ConfigMap", True)


def cm(name: str, ns: str = "ns", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


async def until(check: Any, within: float = 5) -> None:
    """Poll a condition in (virtual) time; fails after `within` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - state lives in the code under test
            await asyncio.sleep(0.01)


async def test_informer_lists_watches_indexes_and_calls_handlers() -> None:
    client = FakeKubeClient()
    await client.create(CM, "ns", cm("a", ref="x"))
    informer: Informer[dict[str, Any]] = Informer(client, CM, lambda o: o)
    informer.add_index("ref", lambda o: [o["data"]["ref"]] if o.get("data", {}).get("ref") else [])
    seen: list[tuple[str | None, str | None]] = []
    informer.add_handler(
        lambda old, new: seen.append(
            (old["metadata"]["name"] if old else None, new["metadata"]["name"] if new else None)
        )
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        assert [o["metadata"]["name"] for o in informer.by_index("ref", "x")] == ["a"]
        await client.create(CM, "ns", cm("b", ref="x"))
        await client.patch(CM, "ns", "a", {"data": {"ref": "y"}})
        await until(lambda: len(informer.by_index("ref", "x")) == 1 and informer.by_index("ref", "y"))
        assert informer.by_index("ref", "x")[0]["metadata"]["name"] == "b"
        await client.delete(CM, "ns", "b")
        await until(lambda: informer.get("ns", "b") is None)
        assert informer.by_index("ref", "x") == []
        assert seen == [(None, "a"), (None, "b"), ("a", "a"), ("b", None)]
    finally:
        task.cancel()


async def test_controller_switch_retries_with_backoff_and_stops_on_terminal_error() -> None:
    calls: list[tuple[str, float]] = []
    outcomes: dict[str, list[Any]] = {
        "flaky": [RuntimeError("boom"), RuntimeError("boom"), Result()],
        "bad": [TerminalError("no")],
        "poll": [Result(requeue_after=30), Result()],
    }

    class Rec:
        async def reconcile(self, request: Request) -> Result:
            calls.append((request.name, round(asyncio.get_running_loop().time(), 3)))
            outcome = outcomes[request.name].pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            assert isinstance(outcome, Result)
            return outcome

    controller = Controller("test", Rec(), concurrency=2)
    task = asyncio.create_task(controller.run())
    try:
        for name in outcomes:
            controller.enqueue(Request("ns", name))
        await until(lambda: all(not v for v in outcomes.values()), within=60)
        await asyncio.sleep(100)
    finally:
        task.cancel()
    assert [t for n, t in calls if n == "flaky"] == [0, 0.005, 0.015]
    assert [t for n, t in calls if n == "bad"] == [0]
    assert [t for n, t in calls if n == "poll"] == [0, 30]


async def test_a_second_elector_takes_over_when_the_leader_dies() -> None:
    client = FakeKubeClient()
    loop = asyncio.get_running_loop()
    cfg = dict(namespace="arc-system", name="lock")
    first = LeaderElector(client, LeaderElectionConfig(identity="one", release_on_cancel=False, **cfg))
    second = LeaderElector(client, LeaderElectionConfig(identity="two", **cfg))
    led: list[tuple[str, float]] = []

    async def lead(who: str) -> None:
        led.append((who, loop.time()))
        await asyncio.Event().wait()

    t1 = asyncio.create_task(first.run(lambda: lead("one")))
    await until(lambda: first.is_leader)
    t2 = asyncio.create_task(second.run(lambda: lead("two")))
    await asyncio.sleep(30)
    assert [w for w, _ in led] == ["one"], "only one leader while the first renews"
    died = loop.time()
    t1.cancel()  # dies without releasing the lease
    await until(lambda: second.is_leader, within=30)
    assert 15 <= loop.time() - died <= 20
    lease = await client.get(LEASES, "arc-system", "lock")
    assert lease["spec"]["holderIdentity"] == "two"
    assert lease["spec"]["leaseTransitions"] == 1
    t2.cancel()
    await asyncio.gather(t2, return_exceptions=True)
    lease = await client.get(LEASES, "arc-system", "lock")
    assert lease["spec"]["holderIdentity"] == "", "released on a graceful stop"


async def test_a_released_lease_is_taken_over_at_once() -> None:
    client = FakeKubeClient()
    loop = asyncio.get_running_loop()
    cfg = dict(namespace="arc-system", name="lock")
    first = LeaderElector(client, LeaderElectionConfig(identity="one", **cfg))
    second = LeaderElector(client, LeaderElectionConfig(identity="two", **cfg))
    t1 = asyncio.create_task(first.run(lambda: asyncio.Event().wait()))
    await until(lambda: first.is_leader)
    t2 = asyncio.create_task(second.run(lambda: asyncio.Event().wait()))
    await asyncio.sleep(5)
    t1.cancel()
    await asyncio.gather(t1, return_exceptions=True)
    released = loop.time()
    await until(lambda: second.is_leader, within=30)
    assert loop.time() - released <= 3
    t2.cancel()
    await asyncio.gather(t2, return_exceptions=True)


async def test_events_are_deduplicated_by_counting() -> None:
    client = FakeKubeClient()
    recorder = EventRecorder(client, "test")
    ref = ObjectReference("arc.opendefense.cloud/v1alpha1", "Order", "ns", "o", "uid-1")
    recorder.record(ref, "Normal", "Created", "made it")
    recorder.record(ref, "Normal", "Created", "made it")
    recorder.record(ref, "Warning", "Failed", "broke")
    await recorder.flush()
    events = (await client.list(EVENTS, "ns"))["items"]
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2
    assert by_reason["Created"]["count"] == 2
    assert by_reason["Created"]["involvedObject"]["kind"] == "Order"
    assert by_reason["Failed"]["type"] == "Warning"
    assert ("patch", "events", "ns", by_reason["Created"]["metadata"]["name"]) in client.calls


async def test_informer_relists_after_expiry() -> None:
    from controllers.kube.errors import ExpiredError, error_for

    client = FakeKubeClient()
    await client.create(SECRETS, "ns", {"metadata": {"name": "s"}, "data": {}})
    original_watch = client.watch
    expired_once = False

    def watch(*args: Any, **kwargs: Any) -> Any:
        nonlocal expired_once
        if not expired_once:
            expired_once = True

            async def gone() -> Any:
                raise error_for(410, {"kind": "Status", "code": 410, "reason": "Expired"})
                yield  # pragma: no cover

            return gone()
        return original_watch(*args, **kwargs)

    client.watch = watch  # type: ignore[method-assign]
    informer: Informer[dict[str, Any]] = Informer(client, SECRETS, lambda o: o)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        await client.delete(SECRETS, "ns", "s")  # happens during the gap
        await until(lambda: informer.get("ns", "s") is None)
    finally:
        task.cancel()
    assert expired_once
    assert isinstance(error_for(410, None), ExpiredError)


async def test_informer_drops_managed_fields_before_caching() -> None:
    client = FakeKubeClient()
    body = cm("a")
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {}}]
    await client.create(CM, "ns", body)
    informer: Informer[dict[str, Any]] = Informer(client, CM, lambda o: o)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        cached = informer.get("ns", "a")
        assert cached is not None and "managedFields" not in cached["metadata"]
    finally:
        task.cancel()


async def test_event_writers_run_concurrently_and_repeats_still_count() -> None:
    """Four writers, each create taking 1 s (virtual): 21 distinct events take well under the 21 s of one
    writer; the 5 repeats of one event go through one writer in order, so they end as one Event, count 5.
    (The 20 are of 20 objects: 10 or more of one object and reason would be combined by the correlator.)"""
    client = FakeKubeClient()
    original_create = client.create

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(1)
        return await original_create(*args, **kwargs)

    client.create = slow_create  # type: ignore[method-assign]
    recorder = EventRecorder(client, "test", writers=4)
    ref = ObjectReference("arc.opendefense.cloud/v1alpha1", "Order", "ns", "o", "uid-1")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(20):
        recorder.record(
            ObjectReference("arc.opendefense.cloud/v1alpha1", "Order", "ns", f"o-{i}", f"uid-{i}"),
            "Normal",
            "Created",
            f"made {i}",
        )
    for _ in range(5):
        recorder.record(ref, "Normal", "Repeated", "again")
    task = asyncio.create_task(recorder.run())
    try:
        await until(lambda: len([k for k in client.objects if k[0] == EVENTS]) == 21, within=30)
        await until(
            lambda: any(o.get("count") == 5 for (r, _, _), o in client.objects.items() if r == EVENTS),
            within=30,
        )
        assert loop.time() - started < 12  # crc32 spreads these 21 keys 6/5/5/5 (deterministic)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert recorder.dropped == 0
