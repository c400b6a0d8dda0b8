"""Watch fan-out: one backend watch per resource, shared by every client watching it.

Why this shape (the essentials of kube-apiserver's cacher, without its object cache):

- **One source per resource prefix.** A watch on ``.../orders/ns1/`` shares the source of
  ``.../orders/`` (``KeyLayout.shared_watch_prefix``) and filters by key, so N clients cost one etcd watch
  and one decode of each etcd event, not N.
- **A bounded ring buffer of recent events** (``ring_capacity``) lets a client that starts from a recent
  revision join the shared source: the events after its revision are replayed from the ring, then it
  receives live ones, with no gap and no duplicate (subscribing and replaying happen without an ``await``).
  The window covers every revision from the one the source started at (or the newest evicted event)
  to now.
- **Older than the window but not compacted: a private source.** Where kube's cacher answers "too old
  resource version" (410), etcd still has the history, so the watcher gets its own source from its
  revision, closed when it leaves. Only compacted revisions are 410s (:class:`CompactedError`), exactly
  the ones kube's etcd watcher rejects; clients relist less often.
- **Slow consumers never block others.** Each watcher has a bounded queue (``queue_size`` plus whatever
  was replayed). Dispatch never awaits a consumer: a watcher whose queue is full is terminated, as kube's
  cacher terminates a blocked watcher; its iterator delivers what was queued, then ends, and the client
  re-watches from the last revision it saw.
- **The source lives as long as its watchers.** When the last watcher of a prefix leaves, the source is
  closed at once (etcd keeps the history, so the next watcher simply opens a new one from its revision).
- **Outages are invisible to watchers.** A source that breaks (etcd restarted, stream reset) is reopened
  with backoff from the revision after the last one seen; watchers just wait. If that revision was
  compacted meanwhile, every watcher of the source gets :class:`CompactedError` (410), as in kube.
- **Bookmarks.** Every ``progress_interval`` a source with bookmark-wanting watchers asks etcd for a
  progress notification; its revision is offered to those watchers as a BOOKMARK event, in order with the
  other events, so the REST layer can send it whenever it likes (kube sends one about every minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, Self

from apiserver.storage.interface import (
    Closable,
    EventType,
    ExpiredError,
    Revision,
    StorageError,
    StorageUnavailableError,
    WatchEvent,
)

logger = logging.getLogger(__name__)

RECONNECT_BACKOFF_INITIAL = 0.1
RECONNECT_BACKOFF_MAX = 2.0


class WatchSource(Protocol):
    """One backend watch stream (an etcd watch with ``prev_kv``)."""

    async def next(self) -> tuple[Sequence[WatchEvent], Revision]:
        """The next batch of events and the stream's revision; no events means a progress notification
        (every event up to the revision was delivered). Raises StorageUnavailableError when the stream
        broke, ExpiredError when its history was compacted."""
        ...

    async def request_progress(self) -> None: ...

    async def close(self) -> None: ...


OpenSource = Callable[[str, Revision], Awaitable[WatchSource]]


class _Subscriber(Closable):
    """One client's watch: a bounded queue fed by a shared source. Implements ``interface.Watcher``."""

    __slots__ = (
        "_buffer",
        "_capacity",
        "_done",
        "_error",
        "_from_revision",
        "_last_revision",
        "_limit",
        "_overflowed",
        "_shared",
        "_waiter",
        "bookmarks",
        "prefix",
    )

    def __init__(self, prefix: str, from_revision: Revision, *, bookmarks: bool, capacity: int) -> None:
        self.prefix = prefix
        self.bookmarks = bookmarks
        self._from_revision = from_revision
        self._last_revision = from_revision
        self._capacity = capacity
        self._limit = capacity
        self._buffer: deque[WatchEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._overflowed = False
        self._error: BaseException | None = None
        self._shared: _SharedWatch | None = None

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    def offer(self, event: WatchEvent) -> bool:
        """Queue ``event`` if this watcher wants it; False when the watcher overflowed (now terminated)."""
        if self._done:
            return False
        if event.type is EventType.BOOKMARK:
            if not self.bookmarks or event.revision <= self._last_revision:
                return True
        elif event.revision <= self._from_revision or not event.key.startswith(self.prefix):
            return True
        if len(self._buffer) >= self._limit:
            self._overflowed = True
            self.finish(None)
            return False
        self._buffer.append(event)
        self._last_revision = event.revision
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def allow_backlog(self, extra: int) -> None:
        """Room for replayed events on top of the live queue size."""
        self._limit += extra

    def finish(self, error: BaseException | None) -> None:
        """No more events: the iterator drains the queue, then raises ``error`` or ends."""
        if self._done:
            return
        self._done = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._buffer:
                if self._limit > self._capacity:
                    self._limit -= 1
                return self._buffer.popleft()
            if self._done:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self) -> None:
        self.finish(None)
        self._buffer.clear()
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.remove(self)


class _SharedWatch:
    """One source and its ring buffer, fanned out to subscribers."""

    def __init__(self, hub: WatchHub, prefix: str, from_revision: Revision, *, private: bool) -> None:
        self.hub = hub
        self.prefix = prefix
        self.private = private
        self._ring: deque[WatchEvent] = deque()
        self._oldest = from_revision
        self._latest = from_revision
        self._subscribers: dict[_Subscriber, None] = {}
        self._source: WatchSource | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False

    @property
    def oldest(self) -> Revision:
        """The oldest ``from_revision`` this shared watch can serve."""
        return self._oldest

    @property
    def latest_revision(self) -> Revision:
        """The newest revision seen (event or progress notification)."""
        return self._latest

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, subscriber: _Subscriber) -> None:
        """Replay the ring's events after the subscriber's revision, then feed it live (no await here)."""
        subscriber._shared = self
        subscriber.allow_backlog(len(self._ring))
        for event in self._ring:
            subscriber.offer(event)
        self._subscribers[subscriber] = None

    async def start(self) -> None:
        """Open the source (called once, by the subscriber that created this shared watch)."""
        try:
            self._source = await self.hub._open_source(self.prefix, Revision(self._latest + 1))
            self.hub.sources_opened += 1
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._started.set_exception(exc)
                self._started.exception()  # mark retrieved: joiners re-raise it themselves
            else:
                self._started.cancel()
            self.hub._forget(self)
            self._finish_all(exc if isinstance(exc, StorageError) else None)
            raise
        self._started.set_result(None)
        self._tasks.append(asyncio.create_task(self._run(), name=f"watch {self.prefix}"))
        if self.hub.progress_interval > 0:
            self._tasks.append(asyncio.create_task(self._progress(), name=f"watch progress {self.prefix}"))

    async def wait_started(self) -> None:
        """Wait for the creator's ``start``; raise its error (StorageUnavailableError if it was cancelled)."""
        await asyncio.wait([self._started])
        if self._started.cancelled():
            raise StorageUnavailableError("watch start was aborted")
        error = self._started.exception()
        if error is not None:
            raise error

    async def _run(self) -> None:
        try:
            await self._pump()
        except ExpiredError as exc:
            logger.info("watch source compacted", extra={"prefix": self.prefix, "revision": self._latest})
            self._finish_all(exc)
        finally:
            self._closed = True
            self.hub._forget(self)
            self._finish_all(None)
            await self._close_source()

    async def _pump(self) -> None:
        while self._subscribers:
            assert self._source is not None
            try:
                events, revision = await self._source.next()
            except ExpiredError:
                raise
            except StorageError as exc:
                logger.warning(
                    "watch source broke, reopening",
                    extra={"prefix": self.prefix, "revision": self._latest, "error": str(exc)},
                )
                await self._reopen()
                continue
            if events:
                self._dispatch(events)
            elif revision > self._latest:
                self._latest = revision
                self._broadcast(WatchEvent(EventType.BOOKMARK, "", None, None, revision))

    async def _reopen(self) -> None:
        await self._close_source()
        backoff = RECONNECT_BACKOFF_INITIAL
        while self._subscribers:
            await asyncio.sleep(backoff)
            try:
                self._source = await self.hub._open_source(self.prefix, Revision(self._latest + 1))
                self.hub.sources_opened += 1
                logger.info("watch source reopened", extra={"prefix": self.prefix, "revision": self._latest})
                return
            except ExpiredError:
                raise
            except StorageError:
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)

    def _dispatch(self, events: Sequence[WatchEvent]) -> None:
        ring = self._ring
        capacity = self.hub.ring_capacity
        for event in events:
            if len(ring) >= capacity:
                self._oldest = ring.popleft().revision
            ring.append(event)
            if event.revision > self._latest:
                self._latest = event.revision
            self._broadcast(event)

    def _broadcast(self, event: WatchEvent) -> None:
        dropped: list[_Subscriber] | None = None
        for subscriber in self._subscribers:
            if not subscriber.offer(event):
                if dropped is None:
                    dropped = []
                dropped.append(subscriber)
        if dropped:
            for subscriber in dropped:
                del self._subscribers[subscriber]
                subscriber._shared = None
                if subscriber.overflowed:
                    self.hub.overflows += 1
                    logger.warning(
                        "watcher too slow, terminating it",
                        extra={"prefix": subscriber.prefix, "queue_size": self.hub.queue_size},
                    )

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(self.hub.progress_interval)
            source = self._source
            if source is not None and any(s.bookmarks for s in self._subscribers):
                with contextlib.suppress(StorageError):
                    await source.request_progress()

    async def remove(self, subscriber: _Subscriber) -> None:
        self._subscribers.pop(subscriber, None)
        if not self._subscribers:
            await self.close()

    async def close(self) -> None:
        self._closed = True
        self.hub._forget(self)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._finish_all(None)
        await self._close_source()

    async def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            with contextlib.suppress(StorageError):
                await source.close()

    def _finish_all(self, error: BaseException | None) -> None:
        subscribers = list(self._subscribers)
        self._subscribers.clear()
        for subscriber in subscribers:
            subscriber._shared = None
            subscriber.finish(error)


class WatchHub:
    """All shared watches of one storage; see the module docstring for the design."""

    def __init__(
        self,
        *,
        open_source: OpenSource,
        current_revision: Callable[[], Awaitable[Revision]],
        shared_prefix: Callable[[str], str],
        ring_capacity: int = 1024,
        queue_size: int = 1000,
        progress_interval: float = 10.0,
    ) -> None:
        self._open_source = open_source
        self._current_revision = current_revision
        self._shared_prefix = shared_prefix
        self.ring_capacity = ring_capacity
        self.queue_size = queue_size
        self.progress_interval = progress_interval
        self._shared: dict[str, _SharedWatch] = {}
        self._private: set[_SharedWatch] = set()
        self._closed = False
        self.sources_opened = 0
        """How many backend watches were opened so far (tests assert the fan-out with it)."""
        self.overflows = 0
        """How many watchers were terminated because they fell behind."""

    @property
    def open_sources(self) -> int:
        """Backend watches open right now (shared and private)."""
        return len(self._shared) + len(self._private)

    def shared_watch(self, prefix: str) -> _SharedWatch | None:
        """The shared watch serving ``prefix``, if one is open."""
        return self._shared.get(self._shared_prefix(prefix))

    def latest_revision(self, prefix: str) -> Revision | None:
        """The newest revision the shared watch of ``prefix`` has seen (for bookmarks), if it is open."""
        shared = self.shared_watch(prefix)
        return None if shared is None else shared.latest_revision

    async def watch(self, prefix: str, *, from_revision: Revision | None, bookmarks: bool) -> _Subscriber:
        if self._closed:
            raise StorageUnavailableError("storage is closed")
        shared_prefix = self._shared_prefix(prefix)
        if from_revision is None:
            from_revision = source_revision = await self._current_revision()
        elif shared_prefix not in self._shared:
            # A watch from a revision that does not exist yet waits for it (as kube's cacher does), but the
            # shared source it creates starts now: one client's future revision must not make the source
            # useless (every later watcher would fall behind its window and need a private source).
            source_revision = min(from_revision, await self._current_revision())
        else:
            source_revision = from_revision
        while True:
            subscriber = _Subscriber(prefix, from_revision, bookmarks=bookmarks, capacity=self.queue_size)
            shared = self._shared.get(shared_prefix)
            creator = shared is None
            if shared is None:
                shared = _SharedWatch(self, shared_prefix, min(source_revision, from_revision), private=False)
                self._shared[shared_prefix] = shared
            elif from_revision < shared.oldest:
                shared = _SharedWatch(self, shared_prefix, from_revision, private=True)
                self._private.add(shared)
                creator = True
            shared.subscribe(subscriber)
            try:
                if creator:
                    await shared.start()
                else:
                    await shared.wait_started()
            except StorageError:
                if creator:
                    raise
                continue  # the creator's revision failed (e.g. compacted); ours may be fine: retry
            except BaseException:
                await subscriber.close()
                raise
            return subscriber

    def _forget(self, shared: _SharedWatch) -> None:
        if self._shared.get(shared.prefix) is shared:
            del self._shared[shared.prefix]
        self._private.discard(shared)

    async def close(self) -> None:
        """Close every shared watch; their watchers' iterators end."""
        self._closed = True
        watches = [*self._shared.values(), *self._private]
        for shared in watches:
            await shared.close()
