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
  to drain between them, so a slow client holds its TLS buffers, not another copy of the list. A read
  keeps its slot until its response went out to every client sharing it (at most ``HOLD_TIMEOUT``), so
  at most ``max_in_flight`` bodies are alive at once: memory stays bounded however many clients re-list.
"""

from __future__ import annotations

import asyncio
import contextlib
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
WRITE_SLICE = 64 * 1024
"""Bytes written to a client before waiting for its socket to drain."""


HOLD_TIMEOUT = 10.0
"""How long a read keeps its slot while its clients are still being written to: clients that read slowly
cannot keep the others waiting for longer (their own writes go on, bounded by ``WRITE_TIMEOUT``)."""
WRITE_TIMEOUT = 60.0
"""How long writing one shared body to one client may take (kube's ``--request-timeout``); a client that
reads slower is disconnected."""


class _Batch(Generic[T]):
    """One queued read, shared by the identical requests that arrive while it waits for a slot; it keeps
    its slot until every one of them has written its response (as APF holds a request's seat)."""

    __slots__ = ("left", "result", "sharers", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.result: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.result.add_done_callback(_retrieve)
        self.sharers = 0
        self.left = asyncio.Event()

    def leave(self) -> None:
        self.sharers -= 1
        if self.sharers <= 0:
            self.left.set()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failed read's error as seen even when every sharer left before it."""
    if not future.cancelled():
        future.exception()


class Lease(Generic[T]):
    """A shared read's result, held until ``release()`` (after the response was written)."""

    __slots__ = ("_batch", "value")

    def __init__(self, batch: _Batch[T], value: T) -> None:
        self._batch: _Batch[T] | None = batch
        self.value = value

    def release(self) -> None:
        """Done with the value (it is dropped here: a long watch must not keep its initial snapshot)."""
        batch, self._batch = self._batch, None
        if batch is not None:
            del self.value
            batch.leave()


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

    async def acquire(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> Lease[T]:
        """``read()``'s result, run when a slot is free or shared with an identical queued request.

        Raises 429 when ``max_queued`` distinct reads already wait. The read runs in its own task: a
        client that leaves does not cancel it for the others sharing it. The slot stays taken until every
        sharer released its lease (or ``HOLD_TIMEOUT``), so at most ``max_in_flight`` results are alive.
        """
        batch: _Batch[T] | None = self._queued.get(key)
        if batch is not None:
            self.shared += 1
        else:
            if len(self._queued) >= self.max_queued:
                self.rejected += 1
                raise errors.too_many_requests("too many requests, please try again later", 1)
            batch = _Batch()
            self._queued[key] = batch
            batch.task = asyncio.create_task(self._run(key, batch, read), name=f"list {key!r}")
        batch.sharers += 1
        try:
            value = await asyncio.shield(batch.result)
        except BaseException:
            batch.leave()
            raise
        return Lease(batch, value)

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """:meth:`acquire` and release at once (the caller keeps the value, not the slot)."""
        lease = await self.acquire(key, read)
        value = lease.value
        lease.release()
        return value

    async def _run(self, key: Hashable, batch: _Batch[T], read: Callable[[], Awaitable[T]]) -> None:
        try:
            async with self._slots:
                # From now on the snapshot may be older than a newcomer: it queues its own read.
                if self._queued.get(key) is batch:
                    del self._queued[key]
                try:
                    value = await read()
                except Exception as exc:
                    batch.result.set_exception(exc)
                    return
                batch.result.set_result(value)
                if batch.sharers > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(HOLD_TIMEOUT):
                            await batch.left.wait()
        finally:
            if self._queued.get(key) is batch:
                del self._queued[key]
            if not batch.result.done():
                batch.result.cancel()


async def write_body(
    request: web.Request, body: bytes, content_type: str, *, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """A 200 with ``body`` written in slices, draining between them (no per-client copy)."""
    response = web.StreamResponse(status=200, headers=headers)
    response.headers["Content-Type"] = content_type
    response.headers["Audit-Id"] = request_id.get()
    response.content_length = len(body)
    await response.prepare(request)
    try:
        await write_slices(request, response, body)
    except ConnectionResetError:
        # The client went away (or was too slow): nothing left to send, nothing to log.
        return response
    await response.write_eof()
    return response


async def write_slices(request: web.Request, response: web.StreamResponse, body: bytes) -> None:
    """``body`` in ``WRITE_SLICE`` pieces, each after the socket drained; a client that takes longer
    than ``WRITE_TIMEOUT`` for all of it is disconnected (it cannot pin the shared body)."""
    view = memoryview(body)
    try:
        async with asyncio.timeout(WRITE_TIMEOUT):
            for start in range(0, len(view), WRITE_SLICE):
                await response.write(view[start : start + WRITE_SLICE])
    except TimeoutError:
        logger.info("client too slow to read its list, disconnecting", extra={"bytes": len(body)})
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("client too slow") from None
