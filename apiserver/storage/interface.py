"""The storage seam of the API server: bytes in, bytes out, etcd's revision model.

This mirrors ``k8s.io/apiserver/pkg/storage.Interface``: values are opaque bytes (the REST layer encodes
and decodes objects), every write is a transaction conditioned on the key's create or mod revision, and a
key's ``mod_revision`` is the object's ``resourceVersion``. Two implementations share this contract and
the same conformance suite: :mod:`apiserver.storage.etcd` (production) and :mod:`apiserver.storage.memory`
(unit tests of the REST layer).

Errors are storage errors, never HTTP ones; ``apiserver/registry/store.py`` maps them once:

====================================  ================================================================
storage error                         Kubernetes Status
====================================  ================================================================
:class:`KeyNotFoundError`             404 NotFound
:class:`KeyExistsError`               409 AlreadyExists
:class:`RevisionConflictError`        409 Conflict ("the object has been modified; ...")
:class:`ExpiredError` (incl.          410 Expired (``continue_token`` goes to ``metadata.continue``;
:class:`CompactedError`)              messages below)
:class:`TooLargeRevisionError`        504 Timeout, cause ``ResourceVersionTooLarge``
:class:`InvalidContinueError`         400 BadRequest
:class:`StorageUnavailableError`      503 ServiceUnavailable (504 when ``timeout``) — never a 404
:class:`RequestTooLargeError`         413 RequestEntityTooLarge
:class:`InsufficientStorageError`     500 InternalError naming etcd's NOSPACE
:class:`StorageError` (other)         500 InternalError
====================================  ================================================================
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple, NewType, Protocol, Self

Revision = NewType("Revision", int)
"""An etcd revision: a key's ``mod_revision`` is the object's ``resourceVersion``."""

# kube-apiserver's messages (k8s.io/apiserver/pkg/storage/etcd3/errors.go), for the REST layer's 410s.
EXPIRED_LIST_MESSAGE = "The resourceVersion for the provided list is too old."
EXPIRED_WATCH_MESSAGE = "The resourceVersion for the provided watch is too old."
EXPIRED_CONTINUE_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
INCONSISTENT_CONTINUE_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent "
    "list - objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list."
)


class StoredValue(NamedTuple):
    """One key's value at one revision (an etcd ``KeyValue``).

    A NamedTuple rather than a frozen dataclass: as immutable, and a list of 10k of them is built in a
    third of the time (``tuple.__new__`` in the backends' hot loops), which shows in large lists.
    """

    key: str
    value: bytes
    create_revision: Revision
    mod_revision: Revision


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a list, read from a single consistent snapshot.

    ``revision`` is the snapshot's revision (the list's ``metadata.resourceVersion``; watch from it).
    ``continue_token`` is set when more items follow (kube's format, see ``continuation.py``).
    ``remaining_item_count`` is set when it is known for free: more items follow and no predicate filtered.
    """

    items: Sequence[StoredValue]
    revision: Revision
    continue_token: str | None = None
    remaining_item_count: int | None = None


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    """No object: every event up to ``revision`` has been delivered (etcd progress notification)."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A change of one key, or a BOOKMARK.

    ``value`` is the new value (``None`` for DELETED and BOOKMARK). ``prev_value`` is the value before the
    change (``None`` for ADDED and BOOKMARK; for DELETED it is the deleted object — kube sends it with
    ``resourceVersion`` set to ``revision``). ``revision`` is the revision of the change.
    """

    type: EventType
    key: str
    value: StoredValue | None
    prev_value: StoredValue | None
    revision: Revision


class ResourceVersionMatch(enum.StrEnum):
    """kube's ``resourceVersionMatch`` for a list with an explicit revision."""

    NOT_OLDER_THAN = "NotOlderThan"
    EXACT = "Exact"


# --------------------------------------------------------------------------------------------- errors


class StorageError(Exception):
    """Base of every storage error; anything not more specific maps to 500."""


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class RevisionConflictError(StorageError):
    """A write's precondition on the key's mod revision failed (``actual`` is ``None`` when deleted)."""

    def __init__(self, key: str, *, expected: Revision, actual: Revision | None) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, actual {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class ExpiredError(StorageError):
    """The requested revision can no longer be served (410 Expired).

    ``requested`` is the revision asked for; ``oldest`` the oldest revision still servable when known
    (etcd's compact revision, or the start of a watch window); ``current`` the store's revision when known.
    ``continue_token`` is set only when a paginated list's snapshot was compacted: it is kube's fresh
    token (``rv: -1``) continuing after the same key at the latest revision; the REST layer puts it in
    ``metadata.continue`` with :data:`INCONSISTENT_CONTINUE_MESSAGE`.
    """

    def __init__(
        self,
        message: str,
        *,
        requested: Revision,
        oldest: Revision | None = None,
        current: Revision | None = None,
        continue_token: str | None = None,
    ) -> None:
        super().__init__(message)
        self.requested = requested
        self.oldest = oldest
        self.current = current
        self.continue_token = continue_token


class CompactedError(ExpiredError):
    """etcd compacted the requested revision."""


class TooLargeRevisionError(StorageError):
    """The requested revision is newer than the store's (kube: 504 ``ResourceVersionTooLarge``)."""

    def __init__(self, *, requested: Revision, current: Revision | None) -> None:
        super().__init__(f"too large resource version: {requested}, current: {current}")
        self.requested = requested
        self.current = current


class InvalidContinueError(StorageError):
    """A continue token that does not decode (kube: 400 ``continue key is not valid``)."""


class StorageUnavailableError(StorageError):
    """etcd is unreachable or did not answer in time: 503 (504 when ``timeout``), never 404."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class RequestTooLargeError(StorageError):
    """The storage refused a write for its size (etcd's ``--max-request-bytes``, 1.5 MiB by default): 413."""


class InsufficientStorageError(StorageError):
    """The storage is out of space (etcd's NOSPACE alarm): writes fail until an administrator frees space
    (compaction, defragmentation, disarming the alarm); reads and deletes still work. 500, as kube."""


# ------------------------------------------------------------------------------------------ protocols

TryUpdate = Callable[[StoredValue | None], bytes | Awaitable[bytes | None] | None]
"""Computes the new value from the current one (``None``: the key does not exist, only with
``ignore_not_found``). Returns the bytes to store, or ``None`` (or the unchanged bytes) to write nothing.
Raise to abort the update; the exception propagates unchanged. May be sync or async; it may run several
times (once per conflict retry), so it must be free of side effects outside its return value."""

ValidateDeletion = Callable[[StoredValue], Awaitable[None] | None]
"""Called with the current value before a delete; raise to abort. May run several times."""

Predicate = Callable[[StoredValue], bool]
"""A list filter, called exactly once per examined item, in key order; the result holds exactly the items
for which it returned True, so a caller may collect decoded objects as a side effect."""


class Closable:
    """``async with`` closes it on the way out: the one ``__aexit__`` of the storage layer's closable
    things (a watcher; a backend, whose ``__aenter__`` also starts it)."""

    __slots__ = ()

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Watcher(Protocol):
    """An open watch: an async iterator of :class:`WatchEvent`, in revision order.

    Iteration raises :class:`ExpiredError` when the watch's history was compacted under it, and ends
    (``StopAsyncIteration``) when the watcher was closed, the storage shut down, or the watcher fell too
    far behind (its bounded queue overflowed; ``overflowed`` is then true) — the client then re-watches
    from the last revision it saw, as with kube's cacher. Always ``close()`` it (or use ``async with``).
    """

    @property
    def overflowed(self) -> bool: ...

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def __anext__(self) -> WatchEvent: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Storage(Protocol):
    """Keys are absolute (``apiserver.storage.keys``); list and watch prefixes end with ``/``."""

    async def create(self, key: str, value: bytes) -> Revision:
        """Store ``value`` under a new ``key``; returns its revision (its create and mod revision).

        Raises :class:`KeyExistsError` if the key exists (txn on ``create_revision == 0``).
        """
        ...

    async def get(self, key: str) -> StoredValue:
        """The key's current value, read linearizably. Raises :class:`KeyNotFoundError` if it is absent."""
        ...

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
        """The keys under ``prefix`` in key order, from one snapshot.

        - No ``revision``, no token: a consistent read at the current revision.
        - ``revision`` with ``match=EXACT``: the snapshot at that revision (:class:`CompactedError` if
          compacted, :class:`TooLargeRevisionError` if in the future).
        - ``revision`` with ``NOT_OLDER_THAN``: the current revision, which must be ≥ ``revision``
          (else :class:`TooLargeRevisionError`).
        - ``continue_token``: the next page at the token's snapshot; ``revision`` is ignored (the REST
          layer rejects the combination, as kube does). A compacted snapshot raises
          :class:`CompactedError` with ``continue_token`` set (kube's fresh ``rv: -1`` token); a bad token
          raises :class:`InvalidContinueError`.

        ``limit`` bounds the number of returned items; with a ``predicate`` the storage reads further
        pages of the same snapshot until ``limit`` items matched or the prefix is exhausted (as kube does).
        """
        ...

    async def guaranteed_update(
        self,
        key: str,
        *,
        try_update: TryUpdate,
        precondition: Revision | None = None,
        ignore_not_found: bool = False,
        suggestion: StoredValue | None = None,
    ) -> StoredValue:
        """Read-modify-write ``key`` with ``try_update`` in a txn on its mod revision; returns the new value.

        - 404: without ``ignore_not_found`` an absent key raises :class:`KeyNotFoundError` (also when it is
          deleted between retries); with it, ``try_update(None)`` may return bytes to create the key.
        - Conflict: with a ``precondition`` (the client's resourceVersion) a key whose mod revision differs
          raises :class:`RevisionConflictError`; without one, a concurrent write makes it retry with the
          fresh value (kube's GuaranteedUpdate), so no update is lost and the caller never sees a conflict.
        - ``try_update`` returning ``None`` or the stored bytes writes nothing and returns the stored value.
        - ``suggestion`` is a value the caller already holds (maybe stale): the first attempt uses it
          instead of reading; a stale suggestion costs one retry, never a false conflict.
        """
        ...

    async def delete(
        self,
        key: str,
        *,
        precondition: Revision | None = None,
        validate: ValidateDeletion | None = None,
    ) -> StoredValue:
        """Delete ``key``; returns the deleted value (with its last mod revision).

        Raises :class:`KeyNotFoundError` if absent, :class:`RevisionConflictError` if ``precondition`` is
        set and differs from the key's mod revision. ``validate`` sees the current value and may raise to
        abort; the delete is conditioned on that value's mod revision and retried on a concurrent write.
        """
        ...

    async def watch(
        self,
        prefix: str,
        *,
        from_revision: Revision | None = None,
        bookmarks: bool = False,
    ) -> Watcher:
        """Watch the keys under ``prefix`` for changes strictly after ``from_revision`` (kube's "Start at
        Exact"); ``None`` means after the current revision. DELETED events carry the deleted value.

        Raises :class:`CompactedError` (410) if ``from_revision`` was compacted. With ``bookmarks`` the
        iterator also yields BOOKMARK events carrying the latest revision known complete (periodically,
        from etcd progress notifications); the REST layer forwards them at its own pace.
        """
        ...

    async def current_revision(self) -> Revision:
        """The store's current revision (a linearizable read)."""
        ...

    async def compact(self, revision: Revision) -> None:
        """Discard history before ``revision``; compacting an already compacted revision is a no-op."""
        ...
