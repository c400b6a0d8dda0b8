"""``/metrics`` of all ``--workers`` in every scrape, each series labelled with its ``worker``.

Under ``--workers N`` the kernel hands a scrape's connection to any one worker, and each worker has its own
counters, histograms and process metrics. Served as they are, consecutive scrapes would read different
processes: counters would jump back and forth and ``rate()`` would be noise. So each worker also serves
its own registry on a Unix socket in a directory only the server's user can open (the supervisor makes it,
``0700``), and the worker a scrape reaches answers with every worker's families, one ``worker="<index>"``
label added to each sample — as a Prometheus target per process would label them. Queries that ``sum`` or
``rate`` across a pod see all workers; ``by (worker)`` tells them apart.

A worker that is restarting is left out of that scrape (its counters start from zero when it is back, as a
restarted pod's do, which ``rate()`` handles). Peers are read concurrently, each within ``PEER_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["PEER_TIMEOUT", "WorkerMetrics"]

logger = logging.getLogger("apiserver")

PEER_TIMEOUT = 5.0
"""Seconds to read one peer worker's metrics (Prometheus' default scrape timeout is 10 s)."""
WORKER_LABEL = "worker"


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    """This worker's index and the directory of all workers' metrics sockets."""

    directory: Path
    index: int

    def socket(self, index: int) -> Path:
        return self.directory / f"worker-{index}.sock"

    async def serve_own(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: serve this worker's registry on its socket while the app runs."""
        own = web.Application()
        own.router.add_get("/metrics", _own_metrics)
        runner = web.AppRunner(own, access_log=None, handle_signals=False)
        await runner.setup()
        path = self.socket(self.index)
        path.unlink(missing_ok=True)  # the previous process of this index (restarted worker)
        await web.UnixSite(runner, str(path)).start()
        try:
            yield
        finally:
            await runner.cleanup()
            path.unlink(missing_ok=True)

    async def exposition(self) -> bytes:
        """Every reachable worker's metrics, labelled, in the Prometheus text format."""
        peers = sorted(
            int(p.stem.removeprefix("worker-"))
            for p in self.directory.glob("worker-*.sock")
            if p.stem.removeprefix("worker-").isdigit()
        )
        others = [i for i in peers if i != self.index]
        texts = await asyncio.gather(*(self._read(i) for i in others))
        by_worker = {i: text for i, text in zip(others, texts, strict=True) if text is not None}
        by_worker[self.index] = generate_latest(REGISTRY).decode()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Labelled(by_worker))
        return generate_latest(registry)

    async def _read(self, index: int) -> str | None:
        connector = aiohttp.UnixConnector(path=str(self.socket(index)))
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT)
                ) as session,
                session.get("http://worker/metrics") as response,
            ):
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status, message=response.reason or ""
                    )
                return await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.info("worker metrics not read", extra={"worker": index, "error": str(exc)})
            return None


async def _own_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), content_type="text/plain")


class _Labelled:
    """A collector of parsed families, each sample with its worker's label; families merged by name."""

    def __init__(self, by_worker: dict[int, str]) -> None:
        self.by_worker = by_worker

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for index, text in sorted(self.by_worker.items()):
            for family in _parse(text):
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type)
                merged.samples.extend(_with_worker(family.samples, str(index)))
        yield from families.values()


def _parse(text: str) -> Iterable[Metric]:
    try:
        return list(text_string_to_metric_families(text))
    except ValueError as exc:  # a peer's exposition that does not parse: left out, said once
        logger.warning("worker metrics did not parse", extra={"error": str(exc)})
        return []


def _with_worker(samples: Iterable[Sample], worker: str) -> Iterator[Sample]:
    for sample in samples:
        yield sample._replace(labels={**sample.labels, WORKER_LABEL: worker})
