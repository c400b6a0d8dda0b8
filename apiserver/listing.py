"""Whole-collection reads (LIST, a watch's initial events): bounded, shared, streamed.

A LIST of 2,000 x 10 KB Orders is 20 MB of JSON to read, decode and encode; 200 informers re-listing at
once (every controller after a restart) used to run 200 of them side by side on one event loop — each one
slowed all others until etcd calls timed out (504s) and memory held 200 copies. kube-apiserver serves these
from its watch cache under API Priority and Fairness, which queues them and answers 429 when the queues are
full. ARC does the same with three rules:

- **Bounded concurrency.** At most ``max_in_flight`` reads run at once; up to ``max_queued`` more wait in
  line; beyond that a request is answered 429 TooManyRequests with ``Retry-After: 1`` (client-go's
  reflector and ARC's informers back off and retry).
- **One snapshot for identical requests.** A request identical to one *waiting* in line (same resource,
  namespace, query and media type) joins it instead of queueing its own: they share one etcd snapshot
  and one encoded body. Only a read that has not started is joined, so the snapshot is never older than
  the request (a consistent read stays consistent).
- **Streamed, not copied.** The shared body is written to each client in slices, waiting for the socket
  to drain between them, so a slow client holds its TLS buffers, not another copy of the list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from aiohttp import web

from apiserver import errors
from apiserver.observability import request_id

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_IN_FLIGHT = 4
"""Whole-collection reads running at once (the server has one event loop: more only interleave)."""
MAX_QUEUED = 64
"""Distinct reads waiting for a slot before 429s."""
WRITE_SLICE = 256 * 1024
"""Bytes written to a client before waiting for its socket to drain."""


class _Batch(Generic[T]):
    """One queued read, shared by the identical requests that arrive while it waits for a slot."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: asyncio.Task[T] | None = None


class ListGate:
    """Bounded, coalesced whole-collection reads (see the module docstring)."""

    def __init__(self, *, max_in_flight: int = MAX_IN_FLIGHT, max_queued: int = MAX_QUEUED) -> None:
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self._slots = asyncio.Semaphore(max_in_flight)
        self._queued: dict[Hashable, _Batch[Any]] = {}
        self.rejected = 0
        """Requests answered 429 (tests and the load check read it)."""
        self.shared = 0
        """Requests that joined a queued read instead of running their own."""

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, run when a slot is free or shared with an identical queued request.

        Raises 429 when ``max_queued`` distinct reads already wait. The read runs in its own task: a
        client that leaves does not cancel it for the others sharing it.
        """
        batch: _Batch[T] | None = self._queued.get(key)
        if batch is not None and batch.task is not None:
            self.shared += 1
            return await asyncio.shield(batch.task)
        if len(self._queued) >= self.max_queued:
            self.rejected += 1
            raise errors.too_many_requests("too many requests, please try again later", 1)
        batch = _Batch()
        self._queued[key] = batch
        batch.task = asyncio.create_task(self._run(key, batch, read), name=f"list {key!r}")
        return await asyncio.shield(batch.task)

    async def _run(self, key: Hashable, batch: _Batch[T], read: Callable[[], Awaitable[T]]) -> T:
        try:
            async with self._slots:
                # From now on the snapshot may be older than a newcomer: it queues its own read.
                if self._queued.get(key) is batch:
                    del self._queued[key]
                return await read()
        finally:
            if self._queued.get(key) is batch:
                del self._queued[key]


async def write_body(
    request: web.Request, body: bytes, content_type: str, *, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """A 200 with ``body`` written in slices, draining between them (no per-client copy)."""
    response = web.StreamResponse(status=200, headers=headers)
    response.headers["Content-Type"] = content_type
    response.headers["Audit-Id"] = request_id.get()
    response.content_length = len(body)
    await response.prepare(request)
    view = memoryview(body)
    for start in range(0, len(view), WRITE_SLICE):
        await response.write(view[start : start + WRITE_SLICE])
    await response.write_eof()
    return response
