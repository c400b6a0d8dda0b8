"""Shared pieces of the benchmarks: process CPU/RSS readings, latency statistics, concurrency drivers, and
the frame of a run (its log lines, its work directory, its report's header)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def exit_on_signal(signum: int, frame: object) -> None:
    """A SIGTERM handler that unwinds through the finally blocks stopping what the benchmark started."""
    raise SystemExit(128 + signum)


def git_commit() -> str:
    """The checkout's commit (``+dirty`` with local changes): which code a result was measured on."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def report_header(benchmark: str, mode: str) -> dict[str, Any]:
    """What every benchmark report starts with: which benchmark, when, on what machine, at which commit.

    Call it when the runs are done: ``machine.load_avg_at_end`` says how busy the machine was meanwhile.
    """
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_end": os.getloadavg(),
        },
        "commit": git_commit(),
    }


@contextlib.contextmanager
def work_directory(prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """A temporary directory for a run's servers and logs, removed afterwards unless ``keep``."""
    work_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work_dir
    finally:
        if keep:
            log(f"work directory kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


def worker_args(workers: int) -> tuple[str, ...]:
    """``arc-apiserver`` flags for ``workers`` processes (none for the default of one)."""
    return (f"--workers={workers}",) if workers > 1 else ()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``arc-apiserver --workers N``: the supervisor and its workers)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
        except FileNotFoundError:
            continue
    return tree


def _own_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live children (``/proc/<pid>/stat``). The
    benchmark's own process counts alone: the servers it started are its children and are measured on
    their own (from 4beea6c until this was noticed, bench.compare's ``bench-client`` included them)."""
    if pid == os.getpid():
        return _own_cpu_seconds(pid)
    return sum(_own_cpu_seconds(p) for p in process_tree(pid))


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` size (``VmRSS``, ``VmHWM``) in KiB, summed over the process's tree."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as handle:
                for line in handle:
                    if line.startswith(f"{field}:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def rss_bytes(pid: int) -> int:
    return status_kib(pid, "VmRSS") * 1024


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Run:
    """One measured operation at one concurrency."""

    name: str
    concurrency: int
    operations: int
    seconds: float
    latencies: list[float] = field(repr=False, default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float | int | str | dict[str, float]]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "operations": self.operations,
            "ops_per_second": round(self.ops_per_second, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 3),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 3),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 3) if self.latencies else 0.0,
            "cpu_ms_per_op": {k: round(v * 1000 / max(self.operations, 1), 4) for k, v in self.cpu.items()},
        }


async def drive(
    name: str,
    operation: Callable[[int], Awaitable[None]],
    *,
    operations: int,
    concurrency: int,
    pids: dict[str, int],
) -> Run:
    """Run ``operation(i)`` for each i with ``concurrency`` in flight, measuring the CPU of ``pids``."""
    latencies: list[float] = []
    counter = iter(range(operations))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - started)

    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = {k: cpu_seconds(p) - cpu_before[k] for k, p in pids.items()}
    return Run(name, concurrency, operations, elapsed, latencies, cpu)
