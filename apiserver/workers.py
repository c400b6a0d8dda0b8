"""``--workers N``: N API server processes on one port, supervised by the process that was started.

One Python process serves requests on one core. ARC's API server keeps no state of its own that replicas
would have to share: every object and every resourceVersion comes from etcd, and each process has its own
etcd watch per resource and its own watch fan-out, exactly as the Helm chart's replicas (pods) do. So the
way to use more cores is more processes. Each worker binds the serving address with ``SO_REUSEPORT``; the
kernel spreads new connections over the listening workers (a connection stays with the worker that accepted
it, as a watch must). A worker that is not listening (starting, restarting, gone) receives no connections.

The parent process serves nothing itself. Like a kubelet for its containers it:

- starts the workers (``fork``: the in-memory serving certificate, generated once, is the same in all of
  them), and fails the whole start if one of them cannot start (a bad flag, a port taken: exit 1, as one
  process would);
- restarts a worker that dies, with kubelet's back-off (10 s doubling to 300 s when it keeps dying within
  10 minutes of its start; at once for its first crash);
- on SIGTERM or SIGINT forwards SIGTERM to every worker, which then does kube's graceful termination on its
  own (``/readyz`` fails, ``--shutdown-delay-duration``, the listener closes, in-flight requests drain), and
  exits when all have; a worker still alive ``--shutdown-delay-duration`` + 30 s later is killed.

Health and readiness are each worker's own: ``/livez`` and ``/readyz`` are answered by whichever worker a
connection reached, from that worker's etcd and informer state, as a kubelet probe reaches one of a
Service's pods. ``/metrics`` is every worker's, labelled ``worker`` (``apiserver.workermetrics``).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import ForkProcess
from types import FrameType

logger = logging.getLogger("apiserver")

INITIAL_BACKOFF = 10.0
"""kubelet's first restart back-off of a crashing container (``backOffPeriod``)."""
MAX_BACKOFF = 300.0
"""kubelet's ``MaxContainerBackOff``."""
BACKOFF_RESET = 600.0
"""A worker that ran this long without dying starts its back-off afresh (kubelet: twice the maximum)."""
STOP_GRACE = 30.0
"""Seconds a worker has after SIGTERM, beyond the shutdown delay, before it is killed."""
START_TIMEOUT = 120.0
"""Seconds a worker has to start serving (informers of the delegated mode sync within 30 s each)."""

WorkerMain = Callable[[int, "multiprocessing.connection.Connection"], None]
"""A worker's body: its index and the pipe on which it writes one byte once it serves."""


@dataclass
class _Worker:
    index: int
    process: ForkProcess
    started: float
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None
    ready: multiprocessing.connection.Connection | None = field(default=None, repr=False)


class Supervisor:
    """Runs ``count`` workers until SIGTERM/SIGINT; see the module docstring."""

    def __init__(self, count: int, target: WorkerMain, *, shutdown_delay: float = 0.0) -> None:
        self.count = count
        self.target = target
        self.shutdown_delay = shutdown_delay
        self._context = multiprocessing.get_context("fork")
        self._workers: list[_Worker] = []
        self._stopping = False

    def _spawn(self, index: int) -> tuple[ForkProcess, multiprocessing.connection.Connection]:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self.target, args=(index, writer), name=f"arc-apiserver-worker-{index}", daemon=False
        )
        process.start()
        writer.close()
        return process, reader

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not self._start_all():
                self._stop_all()
                return 0 if self._stopping else 1
            logger.info("workers serving", extra={"workers": self.count})
            while not self._stopping:
                self._supervise_once()
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _start_all(self) -> bool:
        now = time.monotonic()
        for index in range(self.count):
            process, ready = self._spawn(index)
            self._workers.append(_Worker(index, process, now, ready=ready))
        deadline = now + START_TIMEOUT
        for worker in self._workers:
            assert worker.ready is not None
            if not self._wait_ready(worker, deadline):
                return False
        return True

    def _wait_ready(self, worker: _Worker, deadline: float) -> bool:
        """Whether the worker wrote its ready byte (False: it exited first, or SIGTERM came, or timeout)."""
        assert worker.ready is not None
        while not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.error("worker did not start serving", extra={"worker": worker.index})
                return False
            ready = multiprocessing.connection.wait(
                [worker.ready, worker.process.sentinel], min(remaining, 1)
            )
            if worker.ready in ready:
                try:
                    worker.ready.recv_bytes()
                except EOFError:
                    pass
                else:
                    worker.ready.close()
                    worker.ready = None
                    return True
            if worker.process.sentinel in ready or not worker.process.is_alive():
                worker.process.join()
                logger.error(
                    "worker exited before serving",
                    extra={"worker": worker.index, "exit_code": worker.process.exitcode},
                )
                return False
        return False

    def _supervise_once(self) -> None:
        now = time.monotonic()
        waits: list[float] = [1.0]
        for worker in self._workers:
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self._restart(worker)
                else:
                    waits.append(worker.restart_at - now)
        alive = [w.process.sentinel for w in self._workers if w.restart_at is None]
        multiprocessing.connection.wait(alive, timeout=max(0.0, min(waits)))
        if self._stopping:
            return
        now = time.monotonic()
        for worker in self._workers:
            if worker.restart_at is None and not worker.process.is_alive():
                worker.process.join()
                if now - worker.started >= BACKOFF_RESET:
                    worker.backoff = 0.0
                delay = worker.backoff
                worker.backoff = INITIAL_BACKOFF if delay == 0 else min(MAX_BACKOFF, delay * 2)
                worker.restart_at = now + delay
                logger.warning(
                    "worker died; restarting",
                    extra={
                        "worker": worker.index,
                        "pid": worker.process.pid,
                        "exit_code": worker.process.exitcode,
                        "restart_in_seconds": delay,
                    },
                )

    def _restart(self, worker: _Worker) -> None:
        process, ready = self._spawn(worker.index)
        worker.process, worker.ready, worker.started = process, ready, time.monotonic()
        worker.restart_at = None
        worker.restarts += 1
        # Its ready byte is not awaited: a restarted worker listens only once it serves, and until then
        # the kernel hands its share of connections to the others.
        ready.close()

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.restart_at is None and worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_delay + STOP_GRACE
        for worker in self._workers:
            if worker.restart_at is not None:
                continue
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.warning("worker did not stop in time; killing it", extra={"worker": worker.index})
                worker.process.kill()
                worker.process.join()
