"""An in-memory Storage with etcd's semantics, for unit tests of the REST layer.

Same revision model as etcd (one global revision, starting at 1, bumped by every write), snapshot reads at
any revision not compacted, watches from any revision not compacted with previous values, compaction, and
kube's continue tokens. It shares every algorithm above the primitives with the etcd backend
(:mod:`apiserver.storage.engine`, :mod:`apiserver.storage.watchcache`), and the conformance suite
(``tests/integration/storage``) runs against both.

``unavailable = True`` makes every operation raise :class:`StorageUnavailableError`, so REST tests can
check the 503 path without etcd.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Sequence

from apiserver.storage.engine import RangePage, StorageEngine
from apiserver.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    Revision,
    StorageUnavailableError,
    StoredValue,
    TooLargeRevisionError,
    WatchEvent,
)
from apiserver.storage.keys import KeyLayout
from apiserver.storage.watchcache import WatchSource


class _MemoryWatchSource:
    """A raw watch on the in-memory log: replays history from a revision, then follows writes."""

    def __init__(self, storage: MemoryStorage, prefix: str) -> None:
        self._storage = storage
        self.prefix = prefix
        self._batches: deque[tuple[Sequence[WatchEvent], Revision]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._broken: Exception | None = None

    def push(self, events: Sequence[WatchEvent], revision: Revision) -> None:
        self._batches.append((events, revision))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def break_stream(self, error: Exception) -> None:
        self._broken = error
        self.push((), Revision(0))

    async def next(self) -> tuple[Sequence[WatchEvent], Revision]:
        while not self._batches:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._broken is not None:
            raise self._broken
        return self._batches.popleft()

    async def request_progress(self) -> None:
        self._storage._check_available()
        self.push((), self._storage._revision)

    async def close(self) -> None:
        self._storage._sources.discard(self)


class MemoryStorage(StorageEngine):
    """The in-memory double; see the module docstring."""

    def __init__(
        self,
        *,
        layout: KeyLayout | None = None,
        watch_cache_capacity: int = 1024,
        watcher_queue_size: int = 1000,
        progress_interval: float = 10.0,
    ) -> None:
        super().__init__(
            layout=layout or KeyLayout(),
            watch_cache_capacity=watch_cache_capacity,
            watcher_queue_size=watcher_queue_size,
            progress_interval=progress_interval,
        )
        self._revision = Revision(1)
        self._compacted = Revision(0)
        self._data: dict[str, StoredValue] = {}
        self._keys: list[str] = []
        self._log: list[WatchEvent] = []
        self._sources: set[_MemoryWatchSource] = set()
        self.unavailable = False

    async def start(self) -> None:
        """Nothing to start (symmetry with EtcdStorage)."""

    async def close(self) -> None:
        await self._hub.close()

    async def _operation(self) -> None:
        """Every operation yields to the event loop once, as a real network call does, so that tests see
        realistic interleavings (concurrent updates conflict, watchers get scheduled between writes)."""
        await asyncio.sleep(0)
        self._check_available()

    def _check_available(self) -> None:
        if self.unavailable:
            raise StorageUnavailableError("memory storage is marked unavailable")

    def break_watches(self) -> None:
        """Break every raw watch stream, as an etcd restart does (the watch cache reopens them)."""
        for source in list(self._sources):
            self._sources.discard(source)
            source.break_stream(StorageUnavailableError("watch stream broken"))

    # ------------------------------------------------------------------------------------ writes

    def _commit(self, key: str, value: StoredValue | None, prev: StoredValue | None) -> Revision:
        revision = Revision(self._revision + 1)
        self._revision = revision
        if value is None:
            del self._data[key]
            del self._keys[bisect.bisect_left(self._keys, key)]
            event = WatchEvent(EventType.DELETED, key, None, prev, revision)
        else:
            if prev is None:
                bisect.insort(self._keys, key)
            self._data[key] = value
            kind = EventType.ADDED if prev is None else EventType.MODIFIED
            event = WatchEvent(kind, key, value, prev, revision)
        self._log.append(event)
        for source in self._sources:
            if key.startswith(source.prefix):
                source.push((event,), revision)
        return revision

    async def create(self, key: str, value: bytes) -> Revision:
        await self._operation()
        if key in self._data:
            raise KeyExistsError(key)
        revision = Revision(self._revision + 1)
        return self._commit(key, StoredValue(key, value, revision, revision), None)

    async def _put_if(
        self, key: str, value: bytes, *, mod_revision: int
    ) -> tuple[Revision | None, StoredValue | None]:
        await self._operation()
        current = self._data.get(key)
        if (0 if current is None else current.mod_revision) != mod_revision:
            return None, current
        revision = Revision(self._revision + 1)
        created = revision if current is None else current.create_revision
        return self._commit(key, StoredValue(key, value, created, revision), current), None

    async def _delete_if(self, key: str, *, mod_revision: int | None) -> tuple[bool, StoredValue | None]:
        await self._operation()
        current = self._data.get(key)
        if current is None or (mod_revision is not None and current.mod_revision != mod_revision):
            return False, current
        self._commit(key, None, current)
        return True, current

    async def compact(self, revision: Revision) -> None:
        await self._operation()
        if revision > self._revision:
            raise TooLargeRevisionError(requested=revision, current=self._revision)
        if revision <= self._compacted:
            return
        self._compacted = revision
        self._log = [event for event in self._log if event.revision >= revision]

    # ------------------------------------------------------------------------------------- reads

    async def current_revision(self) -> Revision:
        await self._operation()
        return self._revision

    async def _get_optional(self, key: str) -> StoredValue | None:
        await self._operation()
        return self._data.get(key)

    def _snapshot(self, revision: int) -> tuple[dict[str, StoredValue], list[str]]:
        if revision == 0 or revision == self._revision:
            return self._data, self._keys
        if revision < self._compacted:
            raise CompactedError(
                "required revision has been compacted",
                requested=Revision(revision),
                oldest=self._compacted,
                current=self._revision,
            )
        if revision > self._revision:
            raise TooLargeRevisionError(requested=Revision(revision), current=self._revision)
        data = dict(self._data)
        for event in reversed(self._log):
            if event.revision <= revision:
                break
            if event.prev_value is None:
                del data[event.key]
            else:
                data[event.key] = event.prev_value
        return data, sorted(data)

    async def _range(self, start: str, end: str, *, limit: int, revision: int) -> RangePage:
        await self._operation()
        data, keys = self._snapshot(revision)
        low = bisect.bisect_left(keys, start)
        high = bisect.bisect_left(keys, end, lo=low)
        count = high - low
        stop = high if not limit else min(high, low + limit)
        items = [data[key] for key in keys[low:stop]]
        return RangePage(
            items=items, more=stop < high, count=count, revision=Revision(revision or self._revision)
        )

    async def _open_watch_source(self, prefix: str, start_revision: Revision) -> WatchSource:
        await self._operation()
        if start_revision < self._compacted:
            raise CompactedError(
                "required revision has been compacted",
                requested=Revision(start_revision - 1),
                oldest=self._compacted,
                current=self._revision,
            )
        source = _MemoryWatchSource(self, prefix)
        backlog = [e for e in self._log if e.revision >= start_revision and e.key.startswith(prefix)]
        if backlog:
            source.push(backlog, self._revision)
        self._sources.add(source)
        return source
