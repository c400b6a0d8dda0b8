"""Shared pieces of the benchmarks: process CPU/RSS readings, latency statistics, concurrency drivers."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    """User + system CPU time so far of a process and its live children (``/proc/<pid>/stat``)."""
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
