"""The etcd backend: the only module that imports the etcd client (``aetcd``; import-linter enforces it).

We use aetcd's generated gRPC stubs and messages directly, not its high-level ``Client``: its range helpers
ignore ``limit``/``revision``, its watcher drops progress notifications (which bookmarks need) and every
helper adds a connect check and a decorator to the hot path. One ``grpc.aio`` channel (one HTTP/2
connection) carries every call; unary calls are multiplexed on it and each shared watch is one stream.

Errors are mapped here, once (httpx's pattern), to the storage errors of ``interface.py``:

- gRPC ``UNAVAILABLE`` (etcd down, no leader, "request timed out"), ``CANCELLED`` and a broken watch stream
  → :class:`StorageUnavailableError`; ``DEADLINE_EXCEEDED`` and our own ``asyncio.timeout`` →
  :class:`StorageUnavailableError` with ``timeout=True``. Never :class:`KeyNotFoundError`: "absent" is only
  ever concluded from a successful etcd answer.
- ``OUT_OF_RANGE`` "required revision has been compacted" → :class:`CompactedError`; "is a future revision"
  → :class:`TooLargeRevisionError`. "request is too large" (etcd's ``--max-request-bytes``) →
  :class:`RequestTooLargeError`; "database space exceeded" (NOSPACE) → :class:`InsufficientStorageError`.
  Anything else → :class:`StorageError` (500).

Several endpoints (``--etcd-servers`` is a list, as in kube) each get their own channel, so that TLS checks
each member's certificate against its own name; calls go to the current member while its channel is
READY, else to the first READY one in the list (failover, logged once per switch); a read that fails as
UNAVAILABLE is retried once on another READY member, a write is not (it may have been applied). With one
endpoint nothing of this runs. TLS with a client certificate (kube's ``--etcd-cafile``, ``--etcd-certfile``,
``--etcd-keyfile``) is on for ``https://`` endpoints or when a CA or client certificate file is given.

Every call has an explicit timeout: for unary calls gRPC's own deadline (``timeout=``), which etcd sees
too and which costs a fraction of an ``asyncio.timeout`` (whose timer handle was ~2/3 of this module's
per-call overhead); ``asyncio.timeout`` guards the set-up of watch streams. Every call is timed in
``etcd_request_duration_seconds{operation,type}`` (kube-apiserver's histogram; ``type`` is
``<plural>.<group>``) and runs in an OpenTelemetry span.

Compaction follows kube-apiserver (``storage/etcd3/compact.go``): every ``compaction_interval`` (5 min by
default) compact to the revision seen one interval earlier, coordinated between replicas through a txn on
the version of ``compact_rev_key``, so several API servers compact once per interval together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aetcd.rpc as rpc
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from apiserver.observability import LATENCY_BUCKETS, tracing_enabled
from apiserver.storage.engine import RangePage, StorageEngine, prefix_end
from apiserver.storage.interface import (
    EXPIRED_WATCH_MESSAGE,
    CompactedError,
    EventType,
    InsufficientStorageError,
    KeyExistsError,
    RequestTooLargeError,
    Revision,
    StorageError,
    StorageUnavailableError,
    StoredValue,
    TooLargeRevisionError,
    WatchEvent,
)
from apiserver.storage.keys import KeyLayout
from apiserver.storage.watchcache import WatchSource

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

ETCD_REQUEST_DURATION = Histogram(
    "etcd_request_duration_seconds",
    "Etcd request latency in seconds for each operation and object type.",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
ETCD_REQUEST_ERRORS = Counter(
    "etcd_request_errors_total",
    "Etcd failed request counts for each operation and object type.",
    ["operation", "type"],
)

_EQUAL = rpc.Compare.EQUAL
_CREATE = rpc.Compare.CREATE
_MOD = rpc.Compare.MOD
_VERSION = rpc.Compare.VERSION
_DELETE_EVENT = 1  # mvccpb.Event.DELETE
_UNAVAILABLE_CODES = frozenset({rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.CANCELLED})

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 2**31 - 1),  # a list of 10k objects is far above gRPC's 4 MiB
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 100),  # recover quickly when etcd comes back (default 1 s ...
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),  # ... growing to 120 s)
    ("grpc.keepalive_time_ms", 30_000),  # detect a dead etcd under a long-lived watch stream
    ("grpc.keepalive_timeout_ms", 10_000),
)


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """How to reach etcd and tune the storage. ``compaction_interval <= 0`` disables compaction."""

    endpoint: str = "http://127.0.0.1:2379"
    """One endpoint, or several separated by commas (the members of one etcd cluster)."""
    request_timeout: float = 10.0
    compaction_interval: float = 300.0
    compact_key: str = "compact_rev_key"
    layout: KeyLayout = field(default_factory=KeyLayout)
    watch_cache_capacity: int = 1024
    watcher_queue_size: int = 1000
    progress_interval: float = 10.0
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def _map_error(exc: BaseException, *, revision: int = 0) -> StorageError:
    """The storage error for an aetcd/gRPC failure (the only place that knows gRPC's codes)."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, rpc.AioRpcError):
        code = exc.code()
        details = exc.details() or ""
        if code in _UNAVAILABLE_CODES:
            return StorageUnavailableError(f"etcd unavailable: {details}")
        if code is rpc.StatusCode.DEADLINE_EXCEEDED:
            return StorageUnavailableError(f"etcd deadline exceeded: {details}", timeout=True)
        if "request is too large" in details or "larger than max" in details:
            return RequestTooLargeError(details)
        if "database space exceeded" in details:
            return InsufficientStorageError(details)
        if code is rpc.StatusCode.OUT_OF_RANGE:
            if "compacted" in details:
                return CompactedError(details, requested=Revision(revision))
            if "future revision" in details:
                return TooLargeRevisionError(requested=Revision(revision), current=None)
        return StorageError(f"etcd error {code.name}: {details}")
    if isinstance(exc, TimeoutError):
        return StorageUnavailableError("etcd request timed out", timeout=True)
    return StorageUnavailableError(f"etcd call failed: {exc!r}")


_new_value = tuple.__new__


def _value(kv: Any, key: str) -> StoredValue:
    return _new_value(StoredValue, (key, kv.value, kv.create_revision, kv.mod_revision))


def _event(event: Any) -> WatchEvent:
    kv = event.kv
    key = kv.key.decode()
    prev = _value(event.prev_kv, key) if event.HasField("prev_kv") else None
    if event.type == _DELETE_EVENT:
        return WatchEvent(EventType.DELETED, key, None, prev, kv.mod_revision)
    kind = EventType.ADDED if kv.create_revision == kv.mod_revision else EventType.MODIFIED
    return WatchEvent(kind, key, _value(kv, key), prev, kv.mod_revision)


class _EtcdWatchSource:
    """One etcd watch stream (bidirectional gRPC call) on a prefix, with ``prev_kv``."""

    def __init__(self, storage: EtcdStorage, call: Any, iterator: Any, start_revision: Revision) -> None:
        self._storage = storage
        self._call = call
        self._iterator = iterator
        self._start_revision = start_revision

    async def next(self) -> tuple[Sequence[WatchEvent], Revision]:
        try:
            response = await self._iterator.__anext__()
        except StopAsyncIteration:
            raise StorageUnavailableError("etcd watch stream ended") from None
        except (rpc.AioRpcError, rpc.BaseError) as exc:
            raise _map_error(exc) from exc
        if response.compact_revision:
            raise CompactedError(
                EXPIRED_WATCH_MESSAGE,
                requested=Revision(self._start_revision - 1),
                oldest=Revision(response.compact_revision),
            )
        if response.canceled:
            raise StorageUnavailableError(f"etcd canceled the watch: {response.cancel_reason}")
        revision = Revision(response.header.revision)
        if not response.events:
            return (), revision
        return [_event(event) for event in response.events], revision

    async def request_progress(self) -> None:
        try:
            async with asyncio.timeout(self._storage.config.request_timeout):
                await self._call.write(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
        except Exception as exc:
            raise _map_error(exc) from exc

    async def close(self) -> None:
        self._call.cancel()


@dataclass(slots=True)
class _Member:
    endpoint: str
    channel: Any
    kv: Any
    watch: Any


def endpoints_of(value: str) -> list[str]:
    """The endpoints of ``--etcd-servers`` (comma-separated), in order, without empty entries."""
    return [e.strip() for e in value.split(",") if e.strip()]


class EtcdStorage(StorageEngine):
    """Storage on etcd. ``start()`` before use and ``close()`` after (or ``async with``); the API server
    ties both to aiohttp's ``cleanup_ctx``. ``start`` does not need etcd to be up: calls fail with
    :class:`StorageUnavailableError` until it is, and the channel reconnects by itself."""

    def __init__(self, config: EtcdConfig) -> None:
        super().__init__(
            layout=config.layout,
            watch_cache_capacity=config.watch_cache_capacity,
            watcher_queue_size=config.watcher_queue_size,
            progress_interval=config.progress_interval,
        )
        self.config = config
        self._timeout = config.request_timeout
        self._compact_key = config.compact_key.encode()
        self._channel: Any = None
        self._kv: Any = None
        self._watch_stub: Any = None
        self._members: list[_Member] = []
        self._current = 0
        self._failover = False
        self._compactor: asyncio.Task[None] | None = None
        self._observers: dict[tuple[str, str], Callable[[float], None]] = {}

    # -------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        endpoints = endpoints_of(self.config.endpoint)
        if not endpoints:
            raise ValueError("no etcd endpoint")
        secure = (
            self.config.ca_file is not None
            or self.config.cert_file is not None
            or any(e.startswith("https://") for e in endpoints)
        )
        credentials = self._credentials() if secure else None
        for endpoint in endpoints:
            target = endpoint.split("://", 1)[-1].rstrip("/")
            if credentials is not None:
                channel = rpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            else:
                channel = rpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._members.append(_Member(endpoint, channel, rpc.KVStub(channel), rpc.WatchStub(channel)))
        self._channel = self._members[0].channel
        self._kv = self._members[0].kv
        self._watch_stub = self._members[0].watch
        if len(self._members) > 1:
            self._failover = True
            for member in self._members:
                member.channel.get_state(True)  # connect all now, so that a live one is READY early
        if self.config.compaction_interval > 0:
            self._compactor = asyncio.create_task(self._compact_periodically(), name="etcd compactor")
        logger.info("etcd storage started", extra={"endpoints": endpoints, "tls": secure})

    def _pick(self, *, avoid: Any = None) -> None:
        """Make a READY member current (the current one if it is READY and not ``avoid``)."""
        import grpc  # grpc ships no type hints; connectivity states only

        ready = grpc.ChannelConnectivity.READY
        members = self._members
        current = members[self._current]
        if current.kv is not avoid and current.channel.get_state(False) is ready:
            return
        for offset in range(1, len(members)):
            index = (self._current + offset) % len(members)
            member = members[index]
            if member.kv is not avoid and member.channel.get_state(True) is ready:
                logger.warning(
                    "etcd failover", extra={"from_endpoint": current.endpoint, "to_endpoint": member.endpoint}
                )
                self._current = index
                self._channel, self._kv, self._watch_stub = member.channel, member.kv, member.watch
                return
        current.channel.get_state(True)  # none READY: keep trying to connect the current one

    def _credentials(self) -> Any:
        import grpc  # grpc ships no type hints; TLS setup only

        def read(path: Path | None) -> bytes | None:
            return None if path is None else path.read_bytes()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.config.ca_file),
            private_key=read(self.config.key_file),
            certificate_chain=read(self.config.cert_file),
        )

    async def close(self) -> None:
        compactor, self._compactor = self._compactor, None
        if compactor is not None:
            compactor.cancel()
            await asyncio.gather(compactor, return_exceptions=True)
        await self._hub.close()
        members, self._members = self._members, []
        self._channel = self._kv = self._watch_stub = None
        for member in members:
            await member.channel.close()

    # ------------------------------------------------------------------------------ instrumented call

    def _observer(self, operation: str, key: str) -> Callable[[float], None]:
        resource = self.layout.resource_label(key)
        observer = self._observers.get((operation, resource))
        if observer is None:
            observer = ETCD_REQUEST_DURATION.labels(operation, resource).observe
            self._observers[(operation, resource)] = observer
        return observer

    async def _call(
        self, operation: str, key: str, method: str | Callable[..., Any], request: Any, revision: int = 0
    ) -> Any:
        """One unary etcd call (``method`` of the KV service, or a callable taking the request and a
        ``timeout`` that binds the current member itself; on the current member): timeout, metric, span
        (only when spans are recorded), error mapping."""
        if self._failover:
            self._pick()
        if not tracing_enabled():
            return await self._invoke(operation, key, method, request, revision)
        with _tracer.start_as_current_span(f"etcd.{operation}", kind=trace.SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attribute("db.system", "etcd")
                span.set_attribute("db.operation", operation)
                span.set_attribute("etcd.key", key)
            return await self._invoke(operation, key, method, request, revision)

    async def _invoke(
        self, operation: str, key: str, method: str | Callable[..., Any], request: Any, revision: int
    ) -> Any:
        observe = self._observer(operation, key)
        started = time.perf_counter()
        try:
            try:
                call = method if callable(method) else getattr(self._kv, method)
                return await call(request, timeout=self._timeout)
            except rpc.AioRpcError as exc:
                if not self._failover or exc.code() not in _UNAVAILABLE_CODES:
                    raise
                failed = self._kv
                self._pick(avoid=failed)
                if self._kv is failed or not isinstance(request, rpc.RangeRequest):
                    raise  # no other member, or a write that may have been applied: the caller decides
                return await self._kv.Range(request, timeout=self._timeout)
        except (rpc.AioRpcError, rpc.BaseError) as exc:
            ETCD_REQUEST_ERRORS.labels(operation, self.layout.resource_label(key)).inc()
            raise _map_error(exc, revision=revision) from exc
        finally:
            observe(time.perf_counter() - started)

    # ------------------------------------------------------------------------------------ writes

    async def create(self, key: str, value: bytes) -> Revision:
        raw = key.encode()
        request = rpc.TxnRequest(
            compare=[rpc.Compare(key=raw, target=_CREATE, result=_EQUAL, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=raw, value=value))],
        )
        response = await self._call("create", key, "Txn", request)
        if not response.succeeded:
            raise KeyExistsError(key)
        return Revision(response.header.revision)

    async def _put_if(
        self, key: str, value: bytes, *, mod_revision: int
    ) -> tuple[Revision | None, StoredValue | None]:
        raw = key.encode()
        request = rpc.TxnRequest(
            compare=[rpc.Compare(key=raw, target=_MOD, result=_EQUAL, mod_revision=mod_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=raw, value=value))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=raw))],
        )
        response = await self._call("update", key, "Txn", request)
        if response.succeeded:
            return Revision(response.header.revision), None
        kvs = response.responses[0].response_range.kvs
        return None, (_value(kvs[0], key) if kvs else None)

    async def _delete_if(self, key: str, *, mod_revision: int | None) -> tuple[bool, StoredValue | None]:
        raw = key.encode()
        delete = rpc.DeleteRangeRequest(key=raw, prev_kv=True)
        if mod_revision is None:
            deleted = await self._call("delete", key, "DeleteRange", delete)
            if not deleted.deleted:
                return False, None
            return True, _value(deleted.prev_kvs[0], key)
        request = rpc.TxnRequest(
            compare=[rpc.Compare(key=raw, target=_MOD, result=_EQUAL, mod_revision=mod_revision)],
            success=[rpc.RequestOp(request_delete_range=delete)],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=raw))],
        )
        response = await self._call("delete", key, "Txn", request)
        if response.succeeded:
            prev = response.responses[0].response_delete_range.prev_kvs
            return True, (_value(prev[0], key) if prev else None)
        kvs = response.responses[0].response_range.kvs
        return False, (_value(kvs[0], key) if kvs else None)

    async def compact(self, revision: Revision) -> None:
        try:
            await self._call(
                "compact", "", "Compact", rpc.CompactionRequest(revision=revision), revision=revision
            )
        except CompactedError:
            return  # already compacted at or after this revision
        logger.info("etcd compacted", extra={"revision": revision})

    async def _compact_periodically(self) -> None:
        interval = self.config.compaction_interval
        compact_time, revision = 0, 0
        while True:
            await asyncio.sleep(interval)
            try:
                compact_time, revision = await self._compact_once(compact_time, revision)
            except StorageError as exc:
                logger.warning("etcd compaction failed", extra={"error": str(exc)})

    async def _compact_once(self, compact_time: int, revision: int) -> tuple[int, int]:
        """kube's ``compact``: the replica whose txn on ``compact_rev_key``'s version wins compacts to the
        revision it saw one interval ago; returns the new (version, revision) to remember."""
        key = self._compact_key
        request = rpc.TxnRequest(
            compare=[rpc.Compare(key=key, target=_VERSION, result=_EQUAL, version=compact_time)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=str(revision).encode()))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
        )
        response = await self._call("compact_txn", "", "Txn", request)
        current = int(response.header.revision)
        if not response.succeeded:
            kvs = response.responses[0].response_range.kvs
            return (int(kvs[0].version) if kvs else 0), current
        if revision:
            await self.compact(Revision(revision))
        return compact_time + 1, current

    # ------------------------------------------------------------------------------------- reads

    async def current_revision(self) -> Revision:
        response = await self._call(
            "current_revision", "", "Range", rpc.RangeRequest(key=self._compact_key, count_only=True)
        )
        return Revision(response.header.revision)

    async def alarms(self) -> list[str]:
        """The etcd cluster's active alarms (``NOSPACE``, ``CORRUPT``), for ``/readyz``."""
        request = rpc.AlarmRequest(action=rpc.AlarmRequest.GET)
        response = await self._call(
            "alarms",
            "",
            lambda req, timeout: rpc.MaintenanceStub(self._channel).Alarm(req, timeout=timeout),
            request,
        )
        return sorted({rpc.AlarmType.Name(member.alarm) for member in response.alarms})

    async def _get_optional(self, key: str) -> StoredValue | None:
        response = await self._call("get", key, "Range", rpc.RangeRequest(key=key.encode()))
        kvs = response.kvs
        return _value(kvs[0], key) if kvs else None

    async def _range(self, start: str, end: str, *, limit: int, revision: int) -> RangePage:
        request = rpc.RangeRequest(key=start.encode(), range_end=end.encode(), limit=limit, revision=revision)
        response = await self._call("list", start, "Range", request, revision=revision)
        return RangePage(
            items=[
                _new_value(StoredValue, (kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision))
                for kv in response.kvs
            ],
            more=response.more,
            count=response.count,
            revision=Revision(revision or response.header.revision),
        )

    async def _open_watch_source(self, prefix: str, start_revision: Revision) -> WatchSource:
        raw = prefix.encode()
        if start_revision > 1:
            # etcd reports a compacted start only after "created", on the stream; probe first so that
            # the caller (and only it) gets the 410, instead of every watcher sharing the source.
            probe = rpc.RangeRequest(key=raw, count_only=True, revision=start_revision - 1)
            with contextlib.suppress(TooLargeRevisionError):
                try:
                    await self._call("watch", prefix, "Range", probe, revision=start_revision - 1)
                except CompactedError as exc:
                    raise CompactedError(
                        EXPIRED_WATCH_MESSAGE, requested=Revision(start_revision - 1), current=exc.current
                    ) from None
        create = rpc.WatchCreateRequest(
            key=raw,
            range_end=prefix_end(prefix).encode(),
            start_revision=start_revision,
            prev_kv=True,
            progress_notify=True,
        )
        if self._failover:
            self._pick()
        call = self._watch_stub.Watch()
        observe = self._observer("watch", prefix)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                await call.write(rpc.WatchRequest(create_request=create))
                iterator = call.__aiter__()
                response = await iterator.__anext__()
        except StopAsyncIteration:
            call.cancel()
            raise StorageUnavailableError("etcd watch stream ended before it was created") from None
        except Exception as exc:
            call.cancel()
            raise _map_error(exc, revision=start_revision) from exc
        except BaseException:
            call.cancel()
            raise
        finally:
            observe(time.perf_counter() - started)
        if response.compact_revision:
            call.cancel()
            raise CompactedError(
                EXPIRED_WATCH_MESSAGE,
                requested=Revision(start_revision - 1),
                oldest=Revision(response.compact_revision),
            )
        if not response.created or response.canceled:
            call.cancel()
            raise StorageUnavailableError(f"etcd refused the watch: {response.cancel_reason}")
        return _EtcdWatchSource(self, call, iterator, start_revision)
