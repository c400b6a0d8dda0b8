"""A rate-limited work queue with client-go's `workqueue` semantics, on asyncio.

Why this shape (client-go's `Type` + `delaying_queue` + `default_rate_limiters`):
- **Dedup**: a key waiting in the queue is stored once (`dirty`); adding it again is a no-op. Reconciles are
  level-based, so ten changes while a key waits need one reconcile, not ten.
- **One in flight per key**: a key being processed (`processing`) is not handed to a second worker. If it is
  added meanwhile it is marked dirty and re-queued by `done()`, so the change is never lost and never raced.
- **Per-key exponential backoff** (`ItemExponentialFailureRateLimiter`, 5 ms doubling to 1000 s) for
  failures, reset by `forget()` on success, combined (max) with a **global token bucket**
  (`BucketRateLimiter`, 10 qps, burst 100) that bounds the retry rate of the whole controller.
- **Delayed adds** (`add_after`) keep the earliest due time per key; one timer handle per waiting key.

All times come from the event loop's clock, so tests run it under virtual time (looptime).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge

__all__ = ["ExponentialBackoff", "RateLimitingQueue", "ShutDownError", "TokenBucket"]

K = TypeVar("K", bound=Hashable)

WORKQUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of the work queue.", ["name"])
WORKQUEUE_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by the work queue.", ["name"])
WORKQUEUE_RETRIES = Counter(
    "workqueue_retries_total", "Total number of retries handled by the work queue.", ["name"]
)


class ShutDownError(Exception):
    """The queue was shut down; workers stop."""


class ExponentialBackoff(Generic[K]):
    """Per-key `base * 2**failures`, capped (client-go ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 64:
            return self.cap
        return min(self.base * float(1 << n), self.cap)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)


class TokenBucket:
    """A token bucket handing out reservations (golang.org/x/time/rate `Reserve().Delay()`)."""

    def __init__(self, qps: float = 10.0, burst: int = 100) -> None:
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def delay(self, now: float) -> float:
        if self._last is None:
            self._last = now
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps


class RateLimitingQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        *,
        backoff: ExponentialBackoff[K] | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.name = name
        self._backoff: ExponentialBackoff[K] = backoff if backoff is not None else ExponentialBackoff()
        self._bucket = bucket if bucket is not None else TokenBucket()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._depth = WORKQUEUE_DEPTH.labels(name=name)
        self._adds = WORKQUEUE_ADDS.labels(name=name)
        self._retries = WORKQUEUE_RETRIES.labels(name=name)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def add(self, key: K) -> None:
        """Queue `key` now, unless it is already waiting; if it is in flight it re-runs after `done`."""
        if self._shutting_down or key in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._depth.set(len(self._queue))
        self._notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` after `delay` seconds; an earlier pending due time wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        handle = loop.call_at(due, self._fire, key)
        self._waiting[key] = (due, handle)

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` after max(its exponential backoff, the global bucket's delay)."""
        self._retries.inc()
        delay = max(self._backoff.when(key), self._bucket.delay(asyncio.get_running_loop().time()))
        self.add_after(key, delay)

    def forget(self, key: K) -> None:
        """Reset the key's backoff (after a successful reconcile)."""
        self._backoff.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._backoff.num_requeues(key)

    async def get(self) -> K:
        """The next key to process; it stays `processing` until `done(key)`. Raises ShutDownError."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDownError(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._notify()  # pass the wake-up on
                raise
        key = self._queue.popleft()
        self._depth.set(len(self._queue))
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """Mark `key` finished; if it was added while in flight, it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._depth.set(len(self._queue))
            self._notify()

    def shutdown(self) -> None:
        """Stop handing out keys: waiting `get()`s raise ShutDownError; pending delayed adds are dropped."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _notify(self) -> None:
        """Wake one waiting `get()` (single-threaded: no lock needed)."""
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
