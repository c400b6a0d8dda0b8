"""`gather_bounded`: one reconcile's independent writes, concurrently, at most N in flight.

Writes of different children (an Order's ArtifactWorkflows) are independent, and a reconcile that awaits
them one after the other spends most of its time waiting on the API. Every write runs to its end; then the
first failure is raised as itself (not as an ExceptionGroup), so the controller's switch sees a
ConflictError as a conflict, and the retry finds the others' effects in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

__all__ = ["gather_bounded"]

T = TypeVar("T")


async def gather_bounded(limit: int, writes: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Await `writes` with at most `limit` running at once; their results in order."""
    if len(writes) <= 1:
        return [await w for w in writes]
    semaphore = asyncio.Semaphore(limit)

    async def bounded(write: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await write

    results = await asyncio.gather(*(bounded(w) for w in writes), return_exceptions=True)
    out: list[T] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        out.append(result)
    return out
