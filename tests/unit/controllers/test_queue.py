"""The work queue: dedup, one key in flight at a time, per-key backoff, the global bucket (virtual time)."""

from __future__ import annotations

import asyncio

import pytest

from controllers.runtime.queue import ExponentialBackoff, RateLimitingQueue, ShutDownError, TokenBucket

pytestmark = pytest.mark.looptime


async def test_adds_are_deduplicated_while_waiting() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-dedup")
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_a_key_in_flight_is_not_handed_out_again_until_done() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-exclusive")
    q.add("a")
    key = await q.get()
    q.add("a")  # changed while being processed
    assert len(q) == 0, "must not be queued while in flight"
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(1)
    assert not waiter.done()
    q.done(key)
    assert await asyncio.wait_for(waiter, 1) == "a"


async def test_done_without_new_add_does_not_requeue() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-done")
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_workers_get_different_keys_concurrently() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-parallel")
    q.add("a")
    q.add("b")
    first, second = await asyncio.gather(q.get(), q.get())
    assert {first, second} == {"a", "b"}
    assert q.processing == {"a", "b"}


async def test_add_after_waits_and_keeps_the_earliest_due_time(looptime: float) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-after")
    q.add_after("a", 10)
    q.add_after("a", 3)
    q.add_after("a", 20)
    assert await q.get() == "a"
    assert asyncio.get_running_loop().time() == pytest.approx(3)
    q.done("a")
    await asyncio.sleep(30)
    assert len(q) == 0, "the later timers were dropped"


async def test_backoff_doubles_per_key_from_5ms_and_is_capped() -> None:
    b: ExponentialBackoff[str] = ExponentialBackoff()
    assert [b.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert b.when("b") == 0.005, "per key"
    for _ in range(40):
        b.when("a")
    assert b.when("a") == 1000.0
    b.forget("a")
    assert b.when("a") == 0.005


async def test_rate_limited_retries_back_off_in_virtual_time() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-retry")
    loop = asyncio.get_running_loop()
    start = loop.time()
    times = []
    for _ in range(4):
        q.add_rate_limited("a")
        key = await q.get()
        times.append(round(loop.time() - start, 3))
        q.done(key)
    assert times == [0.005, 0.015, 0.035, 0.075]
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_the_global_bucket_limits_retries_beyond_the_burst() -> None:
    bucket = TokenBucket(qps=10, burst=2)
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.delay(0.0) == pytest.approx(0.2)
    q: RateLimitingQueue[int] = RateLimitingQueue("t-bucket", bucket=TokenBucket(qps=10, burst=1))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(3):
        q.add_rate_limited(i)
    got = [await q.get() for _ in range(3)]
    assert got == [0, 1, 2]
    assert loop.time() - start == pytest.approx(0.2)


async def test_shutdown_wakes_waiting_workers() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t-shutdown")
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDownError):
        await asyncio.wait_for(waiter, 1)
