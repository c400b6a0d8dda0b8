"""apiserver.listing.ListGate: bounded, shared whole-collection reads (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from apiserver import errors
from apiserver.listing import ListGate


class Reads:
    """Reads that block until released, counting how many ran and how many ran at once."""

    def __init__(self) -> None:
        self.started = 0
        self.running = 0
        self.peak = 0
        self.release = asyncio.Event()

    async def read(self) -> int:
        self.started += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.release.wait()
            return self.started
        finally:
            self.running -= 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_at_most_max_in_flight_reads_run_at_once() -> None:
    gate = ListGate(max_in_flight=2, max_queued=10)
    reads = Reads()
    tasks = [asyncio.create_task(gate.read(("k", i), reads.read)) for i in range(6)]
    await settle()
    assert reads.running == 2 and gate.queued == 4
    reads.release.set()
    await asyncio.gather(*tasks)
    assert reads.started == 6 and reads.peak == 2


async def test_identical_queued_requests_share_one_read() -> None:
    gate = ListGate(max_in_flight=1, max_queued=10)
    reads = Reads()
    blocker = asyncio.create_task(gate.read("other", reads.read))
    await settle()
    sharing = [asyncio.create_task(gate.read("same", reads.read)) for _ in range(50)]
    await settle()
    assert gate.shared == 49
    reads.release.set()
    results = await asyncio.gather(*sharing)
    await blocker
    assert reads.started == 2
    assert len(set(results)) == 1


async def test_a_running_read_is_not_joined_by_newcomers() -> None:
    """A newcomer must not get a snapshot taken before it arrived."""
    gate = ListGate(max_in_flight=2, max_queued=10)
    reads = Reads()
    first = asyncio.create_task(gate.read("same", reads.read))
    await settle()
    assert reads.running == 1
    second = asyncio.create_task(gate.read("same", reads.read))
    await settle()
    assert reads.running == 2 and gate.shared == 0
    reads.release.set()
    await asyncio.gather(first, second)


async def test_full_queue_is_a_429_with_retry_after() -> None:
    gate = ListGate(max_in_flight=1, max_queued=3)
    reads = Reads()
    tasks = [asyncio.create_task(gate.read(i, reads.read)) for i in range(3)]
    await settle()  # one runs, two wait
    tasks.append(asyncio.create_task(gate.read(3, reads.read)))
    await settle()
    assert reads.running == 1 and gate.queued == 3
    with pytest.raises(errors.StatusError) as caught:
        await gate.read("one-too-many", reads.read)
    assert caught.value.code == 429 and caught.value.reason == "TooManyRequests"
    assert caught.value.status.details is not None and caught.value.status.details.retry_after_seconds == 1
    assert gate.rejected == 1
    reads.release.set()
    await asyncio.gather(*tasks)
    assert await gate.read("after", reads.read) == 5  # room again


async def test_a_client_that_leaves_does_not_cancel_the_shared_read() -> None:
    gate = ListGate(max_in_flight=1, max_queued=10)
    reads = Reads()
    blocker = asyncio.create_task(gate.read("other", reads.read))
    await settle()
    leaver = asyncio.create_task(gate.read("same", reads.read))
    stayer = asyncio.create_task(gate.read("same", reads.read))
    await settle()
    leaver.cancel()
    reads.release.set()
    assert await stayer == 2
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await leaver


async def test_errors_reach_every_sharer() -> None:
    gate = ListGate(max_in_flight=1, max_queued=10)
    reads = Reads()
    blocker = asyncio.create_task(gate.read("other", reads.read))
    await settle()

    async def failing() -> int:
        raise errors.service_unavailable("storage is unavailable")

    sharers = [asyncio.create_task(gate.read("same", failing)) for _ in range(3)]
    await settle()
    reads.release.set()
    results = await asyncio.gather(*sharers, return_exceptions=True)
    assert all(isinstance(r, errors.StatusError) and r.code == 503 for r in results)
    await blocker
