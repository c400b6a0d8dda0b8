"""Shared pieces of the benchmarks: process CPU/RSS readings, latency statistics, concurrency drivers."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


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
