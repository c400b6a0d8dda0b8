"""`gather_bounded`: a reconcile's writes run concurrently, at most N at once, failures as themselves."""

from __future__ import annotations

import asyncio

import pytest

from api.meta import Status
from controllers.kube import ConflictError
from controllers.runtime.concurrency import gather_bounded

pytestmark = pytest.mark.looptime


async def test_at_most_limit_writes_run_at_once_and_results_keep_their_order() -> None:
    running = peak = 0

    async def write(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1)
        running -= 1
        return i

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await gather_bounded(3, [write(i) for i in range(7)]) == list(range(7))
    assert peak == 3
    assert loop.time() - started == pytest.approx(3)  # ceil(7 / 3) rounds of 1 s (virtual time)


async def test_every_write_runs_to_its_end_then_the_first_failure_is_raised_as_itself() -> None:
    finished: list[int] = []

    async def write(i: int) -> None:
        await asyncio.sleep(i)
        if i in (1, 2):
            raise ConflictError(Status(code=409, reason="Conflict", message=f"write {i}"))
        finished.append(i)

    with pytest.raises(ConflictError) as caught:
        await gather_bounded(8, [write(i) for i in range(4)])
    assert "write 1" in str(caught.value)
    assert finished == [0, 3]
