"""The storage algorithms both backends share, written once over a few primitives.

kube-apiserver keeps these in ``storage/etcd3/store.go`` (GetList's paging loop, GuaranteedUpdate's
read-modify-write retry, Delete's precondition loop). Here a backend supplies five primitives —
``_range``, ``_get_optional``, ``_put_if``, ``_delete_if`` and ``_open_watch_source`` — and
:class:`StorageEngine` builds the :class:`~apiserver.storage.interface.Storage` contract on top, so the
in-memory double and etcd cannot drift apart in the semantics the conformance suite checks.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from apiserver.storage.continuation import LATEST, decode_continue, encode_continue
from apiserver.storage.interface import (
    EXPIRED_LIST_MESSAGE,
    INCONSISTENT_CONTINUE_MESSAGE,
    Closable,
    CompactedError,
    KeyNotFoundError,
    ListResult,
    Predicate,
    ResourceVersionMatch,
    Revision,
    RevisionConflictError,
    StoredValue,
    TooLargeRevisionError,
    TryUpdate,
    ValidateDeletion,
    Watcher,
)
from apiserver.storage.keys import KeyLayout
from apiserver.storage.watchcache import WatchHub, WatchSource

MAX_PAGE = 10_000
"""The largest page read while a predicate filters (kube's ``maxLimit``)."""


@dataclass(frozen=True, slots=True)
class RangePage:
    """A backend's answer to one range read: ``count`` keys in ``[start, end)``, of which ``items``.

    ``count`` is ``None`` when the read did not learn it (:meth:`StorageEngine._scan`'s bounded windows).
    """

    items: Sequence[StoredValue]
    more: bool
    count: int | None
    revision: Revision


def prefix_end(prefix: str) -> str:
    """The exclusive end of the range of keys starting with ``prefix`` (etcd's ``prefix_range_end``)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class StorageEngine(Closable, ABC):
    """Implements the Storage protocol's list, update, delete and watch over a backend's primitives."""

    def __init__(
        self,
        *,
        layout: KeyLayout,
        watch_cache_capacity: int,
        watcher_queue_size: int,
        progress_interval: float,
    ) -> None:
        self.layout = layout
        self._hub = WatchHub(
            open_source=self._open_watch_source,
            current_revision=self.current_revision,
            shared_prefix=layout.shared_watch_prefix,
            ring_capacity=watch_cache_capacity,
            queue_size=watcher_queue_size,
            progress_interval=progress_interval,
        )

    @property
    def watch_hub(self) -> WatchHub:
        """The watch fan-out (introspection for tests and metrics)."""
        return self._hub

    # -------------------------------------------------------------------------------------- lifecycle

    @abstractmethod
    async def start(self) -> None:
        """Connect (etcd) or nothing (memory); ``async with`` starts and closes the storage."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    # ----------------------------------------------------------------------------- backend primitives

    @abstractmethod
    async def current_revision(self) -> Revision: ...

    @abstractmethod
    async def create(self, key: str, value: bytes) -> Revision: ...

    @abstractmethod
    async def compact(self, revision: Revision) -> None: ...

    @abstractmethod
    async def _range(self, start: str, end: str, *, limit: int, revision: int) -> RangePage:
        """Keys in ``[start, end)`` at ``revision`` (0: current), at most ``limit`` (0: all).

        Raises CompactedError (no message needed) or TooLargeRevisionError for an unusable revision.
        """

    @abstractmethod
    async def _get_optional(self, key: str) -> StoredValue | None: ...

    @abstractmethod
    async def _put_if(
        self, key: str, value: bytes, *, mod_revision: int
    ) -> tuple[Revision | None, StoredValue | None]:
        """Put if the key's mod revision is ``mod_revision`` (0: the key must not exist).

        Returns ``(new revision, None)`` on success, ``(None, current value or None)`` otherwise.
        """

    @abstractmethod
    async def _delete_if(self, key: str, *, mod_revision: int | None) -> tuple[bool, StoredValue | None]:
        """Delete if the key's mod revision is ``mod_revision`` (``None``: unconditionally).

        Returns ``(True, deleted value)`` on success, ``(False, current value or None)`` otherwise.
        """

    @abstractmethod
    async def _open_watch_source(self, prefix: str, start_revision: Revision) -> WatchSource:
        """A raw watch of the keys under ``prefix`` from ``start_revision`` (inclusive), with prev values.

        Raises CompactedError if ``start_revision`` is no longer available.
        """

    # ------------------------------------------------------------------------------------ operations

    async def list(
        self,
        prefix: str,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
        revision: Revision | None = None,
        match: ResourceVersionMatch = ResourceVersionMatch.NOT_OLDER_THAN,
        predicate: Predicate | None = None,
    ) -> ListResult:
        end = prefix_end(prefix)
        start = prefix
        read_revision = 0
        paging = continue_token is not None
        if continue_token is not None:
            start, token_revision = decode_continue(continue_token, prefix)
            if token_revision != LATEST:
                read_revision = token_revision
        elif revision is not None and revision > 0 and match is ResourceVersionMatch.EXACT:
            read_revision = revision
        limit = limit if limit is not None and limit > 0 else 0
        # Without a limit the collection is still read in chunks: one etcd response stays bounded in size
        # and time (kube reads it in one range, but serves such lists from its watch cache).
        batch = limit or MAX_PAGE

        page = await self._read(prefix, start, end, batch, read_revision, paging)
        snapshot = page.revision
        if (
            continue_token is None
            and revision is not None
            and match is ResourceVersionMatch.NOT_OLDER_THAN
            and snapshot < revision
        ):
            raise TooLargeRevisionError(requested=revision, current=snapshot)

        if predicate is None and limit:
            items = page.items
            if not page.more:
                return ListResult(items=items, revision=snapshot)
            return ListResult(
                items=items,
                revision=snapshot,
                continue_token=encode_continue(items[-1].key + "\x00", prefix, snapshot),
                remaining_item_count=None if page.count is None else page.count - len(items),
            )

        selected: list[StoredValue] = []
        while True:
            page_items = page.items
            if predicate is None:
                selected.extend(page_items)
            else:
                for index, item in enumerate(page_items):
                    if predicate(item):
                        selected.append(item)
                        if limit and len(selected) >= limit:
                            has_more = index < len(page_items) - 1 or page.more
                            next_token = (
                                encode_continue(item.key + "\x00", prefix, snapshot) if has_more else None
                            )
                            return ListResult(items=selected, revision=snapshot, continue_token=next_token)
            if not (page.more and page_items):
                return ListResult(items=selected, revision=snapshot)
            start = page_items[-1].key + "\x00"
            batch = min(batch * 2, MAX_PAGE)
            page = await self._read(prefix, start, end, batch, snapshot, paging)

    async def _read(
        self, prefix: str, start: str, end: str, limit: int, revision: int, paging: bool
    ) -> RangePage:
        """One page of ``limit`` keys from ``start``, with kube's 410s for a compacted ``revision``."""
        try:
            return await self._scan(prefix, start, end, limit=limit, revision=revision)
        except CompactedError as exc:
            if not paging:
                raise CompactedError(
                    EXPIRED_LIST_MESSAGE, requested=Revision(revision), oldest=exc.oldest, current=exc.current
                ) from None
            current = exc.current if exc.current is not None else await self.current_revision()
            raise CompactedError(
                INCONSISTENT_CONTINUE_MESSAGE,
                requested=Revision(revision),
                oldest=exc.oldest,
                current=current,
                continue_token=encode_continue(start, prefix, LATEST),
            ) from None

    async def _scan(self, prefix: str, start: str, end: str, *, limit: int, revision: int) -> RangePage:
        """Up to ``limit`` (> 0) keys of ``[start, end)`` without making etcd walk all of the rest.

        etcd answers a range with ``limit`` only after counting every key up to ``range_end`` (``count``),
        so reading page after page of a large collection to its end is quadratic in its size. From the
        collection's first key there is nothing to bound (and the count is the remaining-item count kube
        reports); from a continuation key the read goes through windows ``[cursor, prefix_end(cursor[:n]))``
        that widen by one key character per round trip — each one ends where the keys sharing one more
        character of ``cursor`` end — so etcd walks about as many keys as the page returns. ``count`` is
        then known only when the windows reached ``end``.
        """
        if start == prefix:
            return await self._range(start, end, limit=limit, revision=revision)
        items: list[StoredValue] = []
        cursor, level = start, len(start)
        while True:
            window_end = end if level <= len(prefix) else min(prefix_end(cursor[:level]), end)
            page = await self._range(cursor, window_end, limit=limit + 1 - len(items), revision=revision)
            revision = page.revision
            items.extend(page.items)
            if len(items) > limit:
                return RangePage(items=items[:limit], more=True, count=None, revision=page.revision)
            if window_end == end:
                return RangePage(items=items, more=False, count=len(items), revision=page.revision)
            cursor, level = window_end, min(level, len(window_end)) - 1

    async def get(self, key: str) -> StoredValue:
        value = await self._get_optional(key)
        if value is None:
            raise KeyNotFoundError(key)
        return value

    async def guaranteed_update(
        self,
        key: str,
        *,
        try_update: TryUpdate,
        precondition: Revision | None = None,
        ignore_not_found: bool = False,
        suggestion: StoredValue | None = None,
    ) -> StoredValue:
        fresh = suggestion is None
        current = await self._get_optional(key) if suggestion is None else suggestion
        while True:
            if current is None and not ignore_not_found:
                if not fresh:
                    current, fresh = await self._get_optional(key), True
                    continue
                raise KeyNotFoundError(key)
            if precondition is not None and (current is None or current.mod_revision != precondition):
                if not fresh:
                    current, fresh = await self._get_optional(key), True
                    continue
                raise RevisionConflictError(
                    key, expected=precondition, actual=None if current is None else current.mod_revision
                )
            new = try_update(current)
            if inspect.isawaitable(new):
                new = await new
            if new is None or (current is not None and new == current.value):
                if not fresh:
                    current, fresh = await self._get_optional(key), True
                    continue
                if current is None:
                    raise KeyNotFoundError(key)
                return current
            revision, latest = await self._put_if(
                key, new, mod_revision=0 if current is None else current.mod_revision
            )
            if revision is not None:
                created = revision if current is None else current.create_revision
                return StoredValue(key=key, value=new, create_revision=created, mod_revision=revision)
            current, fresh = latest, True

    async def delete(
        self,
        key: str,
        *,
        precondition: Revision | None = None,
        validate: ValidateDeletion | None = None,
    ) -> StoredValue:
        if validate is None:
            deleted, value = await self._delete_if(key, mod_revision=precondition)
            if deleted and value is not None:
                return value
            if value is None or precondition is None:
                raise KeyNotFoundError(key)
            raise RevisionConflictError(key, expected=precondition, actual=value.mod_revision)
        current = await self._get_optional(key)
        while True:
            if current is None:
                raise KeyNotFoundError(key)
            if precondition is not None and current.mod_revision != precondition:
                raise RevisionConflictError(key, expected=precondition, actual=current.mod_revision)
            checked = validate(current)
            if inspect.isawaitable(checked):
                await checked
            deleted, value = await self._delete_if(key, mod_revision=current.mod_revision)
            if deleted:
                return current if value is None else value
            current = value

    async def watch(
        self,
        prefix: str,
        *,
        from_revision: Revision | None = None,
        bookmarks: bool = False,
    ) -> Watcher:
        return await self._hub.watch(prefix, from_revision=from_revision, bookmarks=bookmarks)
