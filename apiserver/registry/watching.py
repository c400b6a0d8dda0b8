"""The Store's watch: storage events decoded, storage errors mapped to Statuses — the same error boundary
every other verb has (``registry/store.py``), so the HTTP layer (``apiserver/watch.py``) sees objects and
``StatusError``s only, never the storage's own types.

Decoding is lazy and per watcher: an event a selector skips, or whose previous value nobody reads, is not
decoded; the objects belong to the watcher that reads them (``translate`` may set their resourceVersion).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from apiserver import errors
from apiserver.storage.interface import EventType, ExpiredError, Revision, StorageError, StoredValue, Watcher
from apiserver.storage.interface import WatchEvent as StorageEvent

logger = logging.getLogger(__name__)

__all__ = ["EventType", "ObjectEvent", "ObjectWatch", "Revision"]

Decode = Callable[[StoredValue], dict[str, Any]]


class ObjectEvent:
    """One change as the Store's watchers see it: ``type`` (ADDED, MODIFIED, DELETED or BOOKMARK),
    ``revision``, and the decoded ``object`` (the new value) and ``prev_object`` (the value before)."""

    __slots__ = ("__dict__", "_decode", "_event")

    def __init__(self, event: StorageEvent, decode: Decode) -> None:
        self._event = event
        self._decode = decode

    @property
    def type(self) -> EventType:
        return self._event.type

    @property
    def revision(self) -> Revision:
        return self._event.revision

    @functools.cached_property
    def object(self) -> dict[str, Any] | None:
        value = self._event.value
        return None if value is None else self._decode(value)

    @functools.cached_property
    def prev_object(self) -> dict[str, Any] | None:
        value = self._event.prev_value
        return None if value is None else self._decode(value)


class ObjectWatch:
    """An open watch of the Store: iterate for :class:`ObjectEvent`s; iteration raises a ``StatusError``
    (410 Expired when the history was compacted under it, 500 when the storage failed) and ends when the
    storage closed the watch (the client re-watches, as with kube's cacher). Always ``close()`` it."""

    def __init__(self, watcher: Watcher, decode: Decode) -> None:
        self._watcher = watcher
        self._decode = decode

    def __aiter__(self) -> AsyncIterator[ObjectEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ObjectEvent]:
        try:
            async for event in self._watcher:
                yield ObjectEvent(event, self._decode)
        except ExpiredError as err:
            raise errors.expired(
                f"too old resource version: {err.requested} ({err.oldest or err.current})"
            ) from None
        except StorageError as err:
            logger.warning("watch ended by storage error", extra={"error": str(err)})
            raise errors.internal_error("the watch was interrupted by a storage error") from None

    async def close(self) -> None:
        await self._watcher.close()
