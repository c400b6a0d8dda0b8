"""An Event recorder: core/v1 Events on ARC objects, correlated as client-go's `EventCorrelator` does it.

`record(...)` never blocks a reconcile: it puts the event on a bounded buffer (dropping when full, as
client-go's broadcaster does, counted in `arc_events_dropped_total`) and `run()` — a TaskGroup child of the
manager — writes them through an `EventCorrelator` (client-go `tools/record/events_cache.go`, defaults of
`NewEventCorrelator`):
- **aggregation**: events of one object, source, type and reason with *different* messages are similar;
  from the 10th distinct message within 10 minutes on, they become one Event with the message
  "(combined from similar events): <latest message>" whose count grows;
- **deduplication** (the event logger): an event identical to one already written (same source, object,
  type, reason and message) is not created again: its `count`, `lastTimestamp` and `message` are updated
  with a PATCH of the existing Event; if that Event is gone (TTL), a new one is created;
- **spam filter**: per source, object and type a token bucket of 25 events, refilled by one every 5
  minutes; an event without a token is not written (counted in `arc_events_spam_filtered_total`).
All three keep LRU caches of 4,096 keys.

Writes go out on `writers` concurrent tasks, each with its own buffer; an event's aggregation key (object,
type, reason — not the message) picks the writer, so everything that can be counted or combined into one
Event is written in order by one task and the count never races. (With a single writer, 1,000 Orders being
created produced Events faster than one round trip at a time could write them: a quarter of them were
dropped. With four writers and 16 reconcile workers, 10,000 Orders on a loaded machine still lost ~4 % of
them; 16 writers, one per default worker, keep up with what the workers produce.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import Counter
from pydantic import BaseModel

from api.resources import format_rfc3339
from controllers.kube import KubeClient, KubeError, NotFoundError
from controllers.kube.resources import EVENTS

__all__ = ["EventCorrelator", "EventRecorder", "ObjectReference"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

EVENTS_DROPPED = Counter(
    "arc_events_dropped_total", "Events not written because the recorder's buffer was full.", ["component"]
)
EVENTS_SPAM_FILTERED = Counter(
    "arc_events_spam_filtered_total",
    "Events not written because their object exceeded the spam filter's rate (client-go's correlator).",
    ["component"],
)

MAX_LRU_CACHE_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL_SECONDS = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED_PREFIX = "(combined from similar events): "


class _LRU(OrderedDict[str, Any]):
    """k8s.io/utils/lru: `get` marks an entry used, `add` evicts the least recently used beyond `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def lookup(self, key: str) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def add(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _source(event: dict[str, Any]) -> tuple[str, str]:
    source = event.get("source") or {}
    return str(source.get("component") or ""), str(source.get("host") or "")


def _object(event: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = event.get("involvedObject") or {}
    return obj


def event_key(event: dict[str, Any]) -> str:
    """client-go's `getEventKey`: identical events (message included)."""
    o = _object(event)
    return "".join(
        [
            *_source(event),
            o.get("kind", ""),
            o.get("namespace", ""),
            o.get("name", ""),
            o.get("fieldPath", ""),
            o.get("uid", ""),
            o.get("apiVersion", ""),
            event.get("type", ""),
            event.get("reason", ""),
            event.get("message", ""),
        ]
    )


def spam_key(event: dict[str, Any]) -> str:
    """client-go's `getSpamKey`: source, object and type."""
    o = _object(event)
    return "".join(
        [
            *_source(event),
            o.get("kind", ""),
            o.get("namespace", ""),
            o.get("name", ""),
            o.get("uid", ""),
            o.get("apiVersion", ""),
            event.get("type", ""),
        ]
    )


def aggregate_key(event: dict[str, Any]) -> tuple[str, str]:
    """client-go's `EventAggregatorByReasonFunc`: (aggregate key, local key = the message)."""
    o = _object(event)
    key = "".join(
        [
            *_source(event),
            o.get("kind", ""),
            o.get("namespace", ""),
            o.get("name", ""),
            o.get("uid", ""),
            o.get("apiVersion", ""),
            event.get("type", ""),
            event.get("reason", ""),
            event.get("reportingComponent", ""),
            event.get("reportingInstance", ""),
        ]
    )
    return key, str(event.get("message", ""))


class _TokenBucket:
    """golang.org/x/time/rate's Limiter as `AllowN(now, 1)` uses it: starts full."""

    __slots__ = ("burst", "last", "qps", "tokens")

    def __init__(self, qps: float, burst: int, now: float) -> None:
        self.qps = qps
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def try_accept(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class CorrelateResult:
    event: dict[str, Any]
    patch: dict[str, Any] | None
    """Set when the event is a repeat: the PATCH of the existing Event (count, lastTimestamp, message)."""
    skip: bool = False


@dataclass(slots=True)
class _Log:
    count: int
    first_timestamp: str
    name: str
    resource_version: str


class EventCorrelator:
    """client-go's `EventCorrelator`: aggregate, then observe (deduplicate), then the spam filter."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = MAX_LRU_CACHE_ENTRIES,
        max_events: int = AGGREGATE_MAX_EVENTS,
        max_interval: float = AGGREGATE_INTERVAL_SECONDS,
        burst: int = SPAM_BURST,
        qps: float = SPAM_QPS,
    ) -> None:
        self.clock = clock
        self.max_events = max_events
        self.max_interval = max_interval
        self.burst = burst
        self.qps = qps
        self._aggregates = _LRU(cache_size)  # aggregate key -> (set of messages, last seen)
        self._logs = _LRU(cache_size)  # event key -> _Log
        self._spam = _LRU(cache_size)  # spam key -> _TokenBucket

    def _aggregate(self, event: dict[str, Any], now: float) -> tuple[dict[str, Any], str]:
        key, local = aggregate_key(event)
        record: tuple[set[str], float] | None = self._aggregates.lookup(key)
        if record is None or now - record[1] > self.max_interval:
            record = (set(), now)
        messages = record[0]
        messages.add(local)
        self._aggregates.add(key, (messages, now))
        if len(messages) < self.max_events:
            return event, event_key(event)
        messages.pop()  # as client-go's `localKeys.PopAny()`: keeps the set from growing without bound
        stamp = format_rfc3339(datetime.fromtimestamp(now, UTC))
        combined = {
            **event,
            "metadata": {
                "name": f"{_object(event).get('name', '')}.{int(now * 1e9):x}",
                "namespace": (event.get("metadata") or {}).get("namespace"),
            },
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "message": COMBINED_PREFIX + str(event.get("message", "")),
        }
        return combined, key

    def _observe(self, event: dict[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        last: _Log | None = self._logs.lookup(key)
        patch = None
        if last is not None and last.count > 0:
            event = {
                **event,
                "metadata": {**(event.get("metadata") or {}), "name": last.name},
                "firstTimestamp": last.first_timestamp,
                "count": last.count + 1,
            }
            if last.resource_version:
                event["metadata"]["resourceVersion"] = last.resource_version
            patch = {
                "count": event["count"],
                "lastTimestamp": event.get("lastTimestamp"),
                "message": event.get("message"),
            }
        meta = event.get("metadata") or {}
        self._logs.add(
            key,
            _Log(
                int(event.get("count") or 0),
                str(event.get("firstTimestamp") or ""),
                str(meta.get("name") or ""),
                str(meta.get("resourceVersion") or ""),
            ),
        )
        return event, patch

    def _filter(self, event: dict[str, Any], now: float) -> bool:
        key = spam_key(event)
        bucket: _TokenBucket | None = self._spam.lookup(key)
        if bucket is None:
            bucket = _TokenBucket(self.qps, self.burst, now)
        skip = not bucket.try_accept(now)
        self._spam.add(key, bucket)
        return skip

    def correlate(self, event: dict[str, Any]) -> CorrelateResult:
        now = self.clock()
        aggregated, key = self._aggregate(event, now)
        observed, patch = self._observe(aggregated, key)
        if self._filter(observed, now):
            return CorrelateResult(observed, None, skip=True)
        return CorrelateResult(observed, patch)

    def update_state(self, event: dict[str, Any]) -> None:
        """The Event as the server returned it (its name, count and resourceVersion)."""
        meta = event.get("metadata") or {}
        self._logs.add(
            event_key(event),
            _Log(
                int(event.get("count") or 0),
                str(event.get("firstTimestamp") or ""),
                str(meta.get("name") or ""),
                str(meta.get("resourceVersion") or ""),
            ),
        )


@dataclass(frozen=True, slots=True)
class ObjectReference:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str = ""

    @classmethod
    def of(cls, obj: BaseModel) -> ObjectReference:
        meta: Any = getattr(obj, "metadata")  # noqa: B009
        return cls(
            api_version=str(getattr(obj, "api_version")),  # noqa: B009
            kind=str(getattr(obj, "kind")),  # noqa: B009
            namespace=meta.namespace or "default",
            name=meta.name or "",
            uid=meta.uid or "",
            resource_version=meta.resource_version or "",
        )

    def to_dict(self) -> dict[str, str]:
        out = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        return out


@dataclass(slots=True)
class _Pending:
    ref: ObjectReference
    type: EventType
    reason: str
    message: str


class EventRecorder:
    def __init__(
        self,
        client: KubeClient,
        component: str,
        *,
        buffer: int = 1000,
        cache_size: int = MAX_LRU_CACHE_ENTRIES,
        writers: int = 16,
        correlator: EventCorrelator | None = None,
    ) -> None:
        self.client = client
        self.component = component
        self._buffers: list[asyncio.Queue[_Pending]] = [asyncio.Queue(maxsize=buffer) for _ in range(writers)]
        self.correlator = correlator if correlator is not None else EventCorrelator(cache_size=cache_size)
        self._dropped = EVENTS_DROPPED.labels(component=component)
        self._spam_filtered = EVENTS_SPAM_FILTERED.labels(component=component)
        self.dropped = 0
        self.spam_filtered = 0

    def record(self, obj: BaseModel | ObjectReference, type: EventType, reason: str, message: str) -> None:
        ref = obj if isinstance(obj, ObjectReference) else ObjectReference.of(obj)
        event = _Pending(ref, type, reason, message[:1024])
        shard_key = "\x00".join((ref.kind, ref.namespace, ref.name, ref.uid, type, reason))
        shard = zlib.crc32(shard_key.encode()) % len(self._buffers)
        try:
            self._buffers[shard].put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self._dropped.inc()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i, buffer in enumerate(self._buffers):
                tg.create_task(self._drain(buffer), name=f"event-writer-{i}")

    async def _drain(self, buffer: asyncio.Queue[_Pending]) -> None:
        while True:
            event = await buffer.get()
            try:
                async with asyncio.timeout(10):
                    await self.write(event.ref, event.type, event.reason, event.message)
            except (KubeError, TimeoutError) as exc:
                logger.warning("event not written", extra={"reason": event.reason, "error": str(exc)})

    async def flush(self) -> None:
        """Write everything buffered now (tests, shutdown)."""
        for buffer in self._buffers:
            while not buffer.empty():
                event = buffer.get_nowait()
                await self.write(event.ref, event.type, event.reason, event.message)

    def make_event(self, ref: ObjectReference, type: EventType, reason: str, message: str) -> dict[str, Any]:
        """client-go's `recorder.makeEvent`: named `<object>.<unix nanoseconds in hex>`, count 1."""
        now_ns = time.time_ns()
        now = format_rfc3339(datetime.fromtimestamp(now_ns / 1e9, UTC))
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.{now_ns:x}", "namespace": ref.namespace},
            "involvedObject": ref.to_dict(),
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

    async def write(self, ref: ObjectReference, type: EventType, reason: str, message: str) -> None:
        """client-go's `recordToSink` for one event: correlate, then PATCH the existing Event (a repeat)
        or create one (new, or the existing one is gone)."""
        result = self.correlator.correlate(self.make_event(ref, type, reason, message))
        if result.skip:
            self.spam_filtered += 1
            self._spam_filtered.inc()
            return
        event = result.event
        written: dict[str, Any] | None = None
        if result.patch is not None:
            with contextlib.suppress(NotFoundError):
                written = await self.client.patch(
                    EVENTS, ref.namespace, event["metadata"]["name"], result.patch, patch_type="merge"
                )
        if written is None:
            body = {
                **event,
                "metadata": {k: v for k, v in event["metadata"].items() if k != "resourceVersion"},
            }
            written = await self.client.create(EVENTS, ref.namespace, body)
        self.correlator.update_state(written)
