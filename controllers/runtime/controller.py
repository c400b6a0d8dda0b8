"""A controller: a work queue, N workers, and controller-runtime's `reconcileHandler` switch.

Events from informers become `Request`s on the queue (`enqueue`); `concurrency` workers take keys one at
a time (the queue guarantees one reconcile per key at a time) and call the reconciler inside a logging
context (`reconcile_id`, namespace, name) and an OpenTelemetry span. The outcome decides what happens
next, as in controller-runtime:
- `TerminalError` → counted as an error, not retried (backoff forgotten);
- any other exception → counted as an error, re-queued with backoff (`add_rate_limited`);
- `Result(requeue_after=s)` → forget backoff, `add_after(s)`;
- `Result(requeue=True)` → `add_rate_limited`;
- `Result()` → forget backoff.
Workers start only once every informer the controller depends on has synced (WaitForCacheSync).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from controllers.kube import ApiError, ConflictError, TransportError
from controllers.runtime import logs
from controllers.runtime.informer import Informer
from controllers.runtime.queue import RateLimitingQueue, ShutDownError
from controllers.runtime.reconcile import Reconciler, Request, TerminalError

__all__ = ["Controller", "error_reason"]

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("arc.controllers")

T = TypeVar("T")

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller.",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller.",
    ["controller"],
)
TERMINAL_ERRORS = Counter(
    "controller_runtime_terminal_reconcile_errors_total",
    "Total number of terminal reconciliation errors per controller.",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller.",
    ["controller"],
    buckets=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.4,
        0.5,
        0.75,
        1.0,
        2.0,
        5.0,
        10.0,
        30.0,
        60.0,
    ),
)
ARC_RECONCILE_ERRORS = Counter(
    "arc_reconcile_errors_total",
    "Reconciles that ended in an error, by controller and reason: the Kubernetes Status reason of an API"
    " error (Conflict, NotFound, Forbidden, ServerTimeout, ...), Transport for no answer, Terminal for an"
    " error retrying cannot fix, else the exception's type.",
    ["controller", "reason"],
)
_API_REASONS = frozenset(
    {
        "BadRequest",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Expired",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "ServiceUnavailable",
    }
)
"""kube's StatusReasons (k8s.io/apimachinery metav1): anything else a server says is counted as Unknown,
so the label's values stay a small fixed set."""


def error_reason(exc: BaseException) -> str:
    """The `reason` label of `arc_reconcile_errors_total` for an exception out of a reconcile."""
    if isinstance(exc, TerminalError):
        return "Terminal"
    if isinstance(exc, ApiError):
        return exc.reason if exc.reason in _API_REASONS else "Unknown"
    if isinstance(exc, TransportError):
        return "Transport"
    return type(exc).__name__


ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers", "Number of currently used workers per controller.", ["controller"]
)
MAX_WORKERS = Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller.",
    ["controller"],
)


class Controller:
    def __init__(self, name: str, reconciler: Reconciler, *, concurrency: int = 4) -> None:
        self.name = name
        self.reconciler = reconciler
        self.concurrency = concurrency
        self.queue: RateLimitingQueue[Request] = RateLimitingQueue(name)
        self._informers: list[Informer[Any]] = []
        self._total = {
            r: RECONCILE_TOTAL.labels(controller=name, result=r)
            for r in ("success", "error", "requeue", "requeue_after")
        }
        self._errors = RECONCILE_ERRORS.labels(controller=name)
        self._terminal = TERMINAL_ERRORS.labels(controller=name)
        self._time = RECONCILE_TIME.labels(controller=name)
        self._active = ACTIVE_WORKERS.labels(controller=name)
        MAX_WORKERS.labels(controller=name).set(concurrency)

    def enqueue(self, request: Request) -> None:
        self.queue.add(request)

    def watch(self, informer: Informer[T], mapper: Callable[[T], Iterable[Request]]) -> None:
        """Map every event of `informer` (old and new object) to requests for this controller."""
        self._informers.append(informer)

        def handle(old: T | None, new: T | None) -> None:
            seen: set[Request] = set()
            for obj in (old, new):
                if obj is None:
                    continue
                for req in mapper(obj):
                    if req not in seen:
                        seen.add(req)
                        self.queue.add(req)

        informer.add_handler(handle)

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return tuple(self._informers)

    async def run(self) -> None:
        """Wait for the caches, then run the workers until cancelled."""
        for informer in self._informers:
            await informer.wait_synced()
        logger.info("starting workers", extra={"controller": self.name, "workers": self.concurrency})
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.concurrency):
                    tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                request = await self.queue.get()
            except ShutDownError:
                return
            self._active.inc()
            try:
                await self.process(request)
            finally:
                self._active.dec()
                self.queue.done(request)

    async def process(self, request: Request) -> None:
        """One reconcile of `request` and the reconcileHandler switch on its outcome."""
        reconcile_id = str(uuid.uuid4())
        tokens = (
            logs.CONTROLLER.set(self.name),
            logs.NAMESPACE.set(request.namespace),
            logs.NAME.set(request.name),
            logs.RECONCILE_ID.set(reconcile_id),
        )
        start = time.perf_counter()
        try:
            with tracer.start_as_current_span(
                f"reconcile {self.name}",
                attributes={
                    "controller": self.name,
                    "k8s.namespace.name": request.namespace,
                    "k8s.object.name": request.name,
                    "reconcile_id": reconcile_id,
                },
            ) as span:
                try:
                    result = await self.reconciler.reconcile(request)
                except asyncio.CancelledError:
                    raise
                except TerminalError as exc:
                    self._errors.inc()
                    ARC_RECONCILE_ERRORS.labels(self.name, error_reason(exc)).inc()
                    self._terminal.inc()
                    self._total["error"].inc()
                    self.queue.forget(request)
                    span.record_exception(exc)
                    logger.error("terminal reconcile error", extra={"error": str(exc)})
                    return
                except ConflictError as exc:
                    self._errors.inc()
                    ARC_RECONCILE_ERRORS.labels(self.name, error_reason(exc)).inc()
                    self._total["error"].inc()
                    self.queue.add_rate_limited(request)
                    logger.debug("conflict, retrying", extra={"error": str(exc)})
                    return
                except Exception as exc:
                    self._errors.inc()
                    ARC_RECONCILE_ERRORS.labels(self.name, error_reason(exc)).inc()
                    self._total["error"].inc()
                    self.queue.add_rate_limited(request)
                    span.record_exception(exc)
                    span.set_status(trace.StatusCode.ERROR, str(exc))
                    logger.warning("reconcile failed, retrying", extra={"error": repr(exc)}, exc_info=True)
                    return
                if result.requeue_after > 0:
                    self.queue.forget(request)
                    self.queue.add_after(request, result.requeue_after)
                    self._total["requeue_after"].inc()
                elif result.requeue:
                    self.queue.add_rate_limited(request)
                    self._total["requeue"].inc()
                else:
                    self.queue.forget(request)
                    self._total["success"].inc()
        finally:
            self._time.observe(time.perf_counter() - start)
            for var, token in zip(
                (logs.CONTROLLER, logs.NAMESPACE, logs.NAME, logs.RECONCILE_ID), tokens, strict=True
            ):
                var.reset(token)
