"""ARC with many Orders stored, and the CRD setup with as many as it takes before it degrades.

    .venv/bin/python -m bench.scale [--orders N | --full] [--crd-orders M] [--compaction-interval S]
                                    [--out docs/bench/scale.json]

1. ARC: one etcd (fsync on, like production) and the real ``arc-apiserver`` (standalone, HTTPS, token) with
   ``--etcd-compaction-interval=S`` (20 s here, 5 min by default) so that compaction shows within the run.
   N Orders (50,000 by default, 1,000,000 with ``--full``; 3 artifacts each, label ``shard=s<i % 100>``,
   spread over 10 namespaces) are created THROUGH the API server with 64 in flight. Every 2 s a sample
   records: Orders stored, create rate and p50/p99 of the window, API server and etcd RSS, etcd's
   ``etcd_mvcc_db_total_size_in_bytes`` / ``..._in_use_in_bytes``, current and compacted revision (etcd's
   ``/metrics``). With all N stored: a paginated LIST of all Orders (limit 500: time, pages, per-page
   latency), a label-selected LIST (``shard=s7``, N/100 objects), a watch from "now" (resourceVersion of a
   fresh list; 200 creates one after another, latency from the start of the create to the event), then
   merge-patches of N/10 Orders (old revisions for compaction to remove) and a wait for the next compaction
   to show the in-use size dropping (the file itself only shrinks on defragmentation, which ARC does not do).
2. CRD: the local stack (``hack/cluster.py``) with the same Order kind as a CRD in kube-apiserver
   (``bench.compare.install_crds``, group ``crd.arc.opendefense.cloud``), Orders created with the same client
   in batches (after 500 warm-up creates) until M are stored (default: the quick N), or the create p99 of
   two batches in a row exceeds 1 s, or kube-apiserver's RSS exceeds 4 GB; the same samples (kube-apiserver
   RSS, kube's etcd), then the same paginated and label-selected LISTs and watch.

Results: raw JSON (default docs/bench/scale.json); docs/performance.md summarises them. Every process is
started in a temporary work directory and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import (
    cpu_seconds,
    exit_on_signal,
    log,
    percentile,
    report_header,
    rss_bytes,
    work_directory,
)
from bench.compare import (
    ARC_GROUP,
    CRD_GROUP,
    MERGE_PATCH,
    Api,
    admin_target,
    ensure_namespaces,
    install_crds,
    latency_summary,
    order,
    token_target,
    watch_latency_http,
)
from bench.controllers import metric, parse_metrics
from hack.arcapiserver import ArcApiServer
from hack.cluster import LocalCluster
from hack.etcd import EtcdServer

QUICK_ORDERS = 50_000
FULL_ORDERS = 1_000_000
NAMESPACES = tuple(f"scale-{i}" for i in range(10))
SHARDS = 100
IN_FLIGHT = 64
PAGE = 500
SELECTOR = "shard=s7"
"""The label-selected LISTs: one Order in SHARDS."""
CRD_P99_LIMIT = 1.0
CRD_RSS_LIMIT = 4 * 2**30
MB = 2**20


def name_of(i: int) -> tuple[str, str]:
    return NAMESPACES[i % len(NAMESPACES)], f"o-{i:07d}"


@dataclass
class Progress:
    """What the creators have done so far; the sampler reads it."""

    created: int = 0
    window: list[float] = field(default_factory=list)
    phase: str = "start"


class Sampler:
    """Every ``every`` seconds: objects stored, create window, server and etcd RSS, etcd DB size/revisions."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        etcd_url: str,
        pids: Mapping[str, int],
        progress: Progress,
        *,
        checkpoint: Path | None = None,
    ) -> None:
        self.session = session
        self.etcd_url = etcd_url
        self.pids = dict(pids)
        self.progress = progress
        self.checkpoint = checkpoint
        self.samples: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self._last = (self.started, 0)
        self._logged = self.started

    async def etcd_metrics(self) -> dict[str, float]:
        async with self.session.get(f"{self.etcd_url}/metrics") as resp:
            m = parse_metrics(await resp.text())
        return {
            "db_total_mb": round(metric(m, "etcd_mvcc_db_total_size_in_bytes") / MB, 1),
            "db_in_use_mb": round(metric(m, "etcd_mvcc_db_total_size_in_use_in_bytes") / MB, 1),
            "current_revision": metric(m, "etcd_debugging_mvcc_current_revision"),
            "compact_revision": metric(m, "etcd_debugging_mvcc_compact_revision"),
            "keys": metric(m, "etcd_debugging_mvcc_keys_total"),
        }

    async def sample(self) -> dict[str, Any]:
        now = time.perf_counter()
        window, self.progress.window = self.progress.window, []
        last_t, last_n = self._last
        self._last = (now, self.progress.created)
        entry: dict[str, Any] = {
            "t": round(now - self.started, 1),
            "phase": self.progress.phase,
            "stored": self.progress.created,
            "creates_per_s": round((self.progress.created - last_n) / max(now - last_t, 1e-9), 1),
            "create_p50_ms": round(percentile(window, 50) * 1000, 1) if window else None,
            "create_p99_ms": round(percentile(window, 99) * 1000, 1) if window else None,
        }
        for name, pid in self.pids.items():
            entry[f"{name}_rss_mb"] = round(rss_bytes(pid) / MB, 1)
            entry[f"{name}_cpu_s"] = round(cpu_seconds(pid), 2)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            entry.update(await self.etcd_metrics())
        self.samples.append(entry)
        if now - self._logged >= 30:  # a long run leaves a trail: progress lines and a partial JSON
            self._logged = now
            log(f"progress: {json.dumps(entry)}")
            if self.checkpoint is not None:
                self.checkpoint.write_text(json.dumps({"partial": True, "samples": self.samples}) + "\n")
        return entry

    async def run(self, every: float) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(every)


async def create_orders(
    api: Api,
    indices: range,
    progress: Progress,
    *,
    stop: asyncio.Event | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[float]:
    """Create Orders ``indices`` with IN_FLIGHT in flight; their latencies (also fed to ``progress``)."""
    it = iter(indices)
    latencies: list[float] = []

    async def worker() -> None:
        for i in it:
            if stop is not None and stop.is_set():
                return
            ns, name = name_of(i)
            body = order(name, ns, api.target.group, {"shard": f"s{i % SHARDS}", **(labels or {})})
            started = time.perf_counter()
            await api.request("POST", api.collection("orders", ns), body)
            elapsed = time.perf_counter() - started
            latencies.append(elapsed)
            progress.window.append(elapsed)
            progress.created += 1

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return latencies


async def paginated_list(api: Api, expected: int, selector: str | None = None) -> dict[str, Any]:
    """LIST every Order of every namespace (or those ``selector`` selects), ``limit=500`` pages following
    ``continue`` (as kubectl and client-go's pager do).

    A list that outlives a compaction gets 410 Expired with a fresh, inconsistent ``continue`` token in the
    Status (as from kube-apiserver); like client-go's pager we go on with it and count it."""
    pages: list[float] = []
    items = 0
    token = ""
    expired = 0
    started = time.perf_counter()
    path = api.collection("orders", None)
    while True:
        params = {"limit": str(PAGE)}
        if selector:
            params["labelSelector"] = selector
        if token:
            params["continue"] = token
        t0 = time.perf_counter()
        async with api.session.get(path, params=params) as resp:
            out = orjson.loads(await resp.read())
        pages.append(time.perf_counter() - t0)
        if resp.status == 410 and out.get("metadata", {}).get("continue"):
            expired += 1
            token = out["metadata"]["continue"]
            continue
        if resp.status != 200:
            raise RuntimeError(f"{api.target.name}: paginated LIST answered {resp.status}: {out}")
        items += len(out["items"])
        token = out["metadata"].get("continue") or ""
        if not token:
            break
    total = time.perf_counter() - started
    return {
        "items": items,
        "expected": expected,
        "expired_410_resumed": expired,
        "pages": len(pages),
        "seconds": round(total, 2),
        "objects_per_s": round(items / total, 1),
        "page_p50_ms": round(percentile(pages, 50) * 1000, 1),
        "page_p99_ms": round(percentile(pages, 99) * 1000, 1),
        "page_max_ms": round(max(pages) * 1000, 1),
        "first_page_ms": round(pages[0] * 1000, 1),
    }


async def label_list(api: Api, expected: int) -> dict[str, Any]:
    started = time.perf_counter()
    out = await api.request(
        "GET", api.collection("orders", None), params={"labelSelector": SELECTOR}, total_seconds=1800
    )
    seconds = time.perf_counter() - started
    return {
        "selector": SELECTOR,
        "items": len(out["items"]),
        "expected": expected,
        "ms": round(seconds * 1000, 1),
    }


async def stored_phases(api: Api, n: int, progress: Progress, sampler: Sampler) -> dict[str, Any]:
    """With ``n`` Orders stored: paginated list, label-selected list, watch from now."""
    out: dict[str, Any] = {}
    progress.phase = "list"
    await sampler.sample()
    # A phase that fails is recorded as such; the later phases still run (a long run is not lost).
    try:
        out["paginated_list"] = await paginated_list(api, n)
    except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
        out["paginated_list"] = {"error": str(err)[:500]}
    await sampler.sample()
    log(f"paginated LIST of {n}: {out['paginated_list']}")
    progress.phase = "label-list"
    try:
        out["label_list"] = await label_list(api, n // SHARDS)
    except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
        out["label_list"] = {"error": str(err)[:500]}
    await sampler.sample()
    log(f"label-selected LIST: {out['label_list']}")
    try:
        out["label_list_paginated"] = await paginated_list(api, n // SHARDS, SELECTOR)
    except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
        out["label_list_paginated"] = {"error": str(err)[:500]}
    log(f"label-selected paginated LIST: {out['label_list_paginated']}")
    progress.phase = "watch"
    try:
        latencies = await watch_latency_http(api, "watch", 200)
        out["watch_from_now"] = {k: v for k, v in latency_summary(latencies).items() if k != "quantiles_ms"}
    except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
        out["watch_from_now"] = {"error": str(err)[:500]}
    log(f"watch from now with {n} stored: {out['watch_from_now']}")
    return out


def rss_trend(samples: list[dict[str, Any]], key: str, total: int) -> dict[str, Any]:
    """RSS at 10 / 50 / 100 % of the objects stored and the least-squares slope over the create phase."""
    points = [(s["stored"], s[key]) for s in samples if s["phase"] == "create" and s["stored"] >= total * 0.1]
    if len(points) < 2:
        return {}
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0

    def at(fraction: float) -> float:
        return float(min(points, key=lambda p: abs(p[0] - total * fraction))[1])

    return {
        "at_10pct_mb": at(0.1),
        "at_50pct_mb": at(0.5),
        "at_100pct_mb": at(1.0),
        "max_mb": max(ys),
        "slope_mb_per_100k_objects": round(slope * 100_000, 2),
    }


@contextlib.asynccontextmanager
async def sampled(
    api: Api, etcd_url: str, pids: Mapping[str, int], *, checkpoint: Path | None = None
) -> AsyncIterator[tuple[Progress, Sampler]]:
    """A run's progress and its Sampler, sampling every 2 s while the run lasts; closes ``api`` after it."""
    progress = Progress()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    sampler = Sampler(session, etcd_url, pids, progress, checkpoint=checkpoint)
    sampling = asyncio.create_task(sampler.run(2.0))
    try:
        yield progress, sampler
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await session.close()
        await api.close()


async def run_arc(work: Path, n: int, compaction_interval: float, checkpoint: Path) -> dict[str, Any]:
    etcd = EtcdServer.allocate("etcd-scale", work)
    etcd.start()
    arc = ArcApiServer(
        work,
        etcd.client_url,
        extra_args=("--log-level=WARNING", f"--etcd-compaction-interval={compaction_interval:g}"),
    )
    try:
        arc.start()
        arc_pid, etcd_pid = arc.component.pid(), etcd.component.pid()
        assert arc_pid and etcd_pid
        pids = {"arc-apiserver": arc_pid, "etcd": etcd_pid}
        api = Api(token_target("arc", arc))
        async with sampled(api, etcd.client_url, pids, checkpoint=checkpoint) as (progress, sampler):
            progress.phase = "create"
            cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
            started = time.perf_counter()
            latencies = await create_orders(api, range(n), progress)
            seconds = time.perf_counter() - started
            cpu = {k: round((cpu_seconds(p) - cpu0[k]) * 1000 / n, 3) for k, p in pids.items()}
            await sampler.sample()
            result: dict[str, Any] = {
                "orders": n,
                "create": {
                    "seconds": round(seconds, 1),
                    "per_second": round(n / seconds, 1),
                    **{k: v for k, v in latency_summary(latencies).items() if k != "quantiles_ms"},
                    "cpu_s_per_1k": cpu,
                },
            }
            log(f"ARC: {n} Orders created in {seconds:.1f}s ({n / seconds:.0f}/s)")
            result.update(await stored_phases(api, n, progress, sampler))

            # Compaction: N/10 merge-patches leave N/10 old revisions; wait for the next compaction past them.
            progress.phase = "patch"
            before = await sampler.sample()
            touched = max(n // 10, 1)
            it = iter(range(touched))

            async def patcher() -> None:
                for i in it:
                    ns, name = name_of(i)
                    await api.request(
                        "PATCH",
                        f"{api.collection('orders', ns)}/{name}",
                        {"metadata": {"labels": {"touched": "yes"}}},
                        content_type=MERGE_PATCH,
                    )

            await asyncio.gather(*(patcher() for _ in range(IN_FLIGHT)))
            after_patch = await sampler.sample()
            progress.phase = "compaction-wait"
            target = after_patch.get("current_revision", 0)
            deadline = time.perf_counter() + 2.5 * compaction_interval + 10
            compacted = after_patch
            while time.perf_counter() < deadline:
                await asyncio.sleep(2.0)
                compacted = await sampler.sample()
                if compacted.get("compact_revision", 0) >= target:
                    break
            result["compaction"] = {
                "interval_s": compaction_interval,
                "patched": touched,
                "before_patches": {
                    k: before.get(k) for k in ("db_total_mb", "db_in_use_mb", "compact_revision")
                },
                "after_patches": {
                    k: after_patch.get(k) for k in ("db_total_mb", "db_in_use_mb", "current_revision")
                },
                "after_compaction": {
                    k: compacted.get(k) for k in ("t", "db_total_mb", "db_in_use_mb", "compact_revision")
                },
                "compacted_past_patches": compacted.get("compact_revision", 0) >= target,
                "waited_s": round(compacted["t"] - after_patch["t"], 1),
            }
            log(f"compaction: {result['compaction']}")
        result["samples"] = sampler.samples
        result["apiserver_rss"] = rss_trend(sampler.samples, "arc-apiserver_rss_mb", n)
        result["etcd_rss"] = rss_trend(sampler.samples, "etcd_rss_mb", n)
        log(f"ARC API server RSS while storing: {result['apiserver_rss']}")
        return result
    finally:
        arc.stop()
        etcd.stop()


async def run_crd(cluster: LocalCluster, n: int, batch: int, rss_limit: int) -> dict[str, Any]:
    pids: dict[str, int] = {}
    for name in ("kube-apiserver", "etcd"):
        pid = cluster.component(name).pid()
        assert pid is not None
        pids[name] = pid
    api = Api(admin_target("crd", cluster, CRD_GROUP))
    batches: list[dict[str, Any]] = []
    stopped_because = f"reached {n}"
    over = 0
    async with sampled(api, cluster.etcd.client_url, pids) as (progress, sampler):
        # Warm-up (not counted): the first creates of a fresh CRD pay for its handler and caches.
        progress.phase = "warm-up"
        await create_orders(api, range(n, n + 500), Progress(), labels={"warmup": "yes"})
        for ns in NAMESPACES:
            await api.request("DELETE", api.collection("orders", ns), params={"labelSelector": "warmup=yes"})
        progress.phase = "create"
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        started = time.perf_counter()
        for first in range(0, n, batch):
            t0 = time.perf_counter()
            latencies = await create_orders(api, range(first, min(first + batch, n)), progress)
            seconds = time.perf_counter() - t0
            rss = rss_bytes(pids["kube-apiserver"])
            entry = {
                "stored": progress.created,
                "per_second": round(len(latencies) / seconds, 1),
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                "kube_apiserver_rss_mb": round(rss / MB, 1),
            }
            batches.append(entry)
            log(f"CRD batch: {entry}")
            over = over + 1 if entry["p99_ms"] > CRD_P99_LIMIT * 1000 else 0
            if over >= 2:
                stopped_because = f"create p99 > 1 s in two batches in a row (last {entry['p99_ms']} ms)"
                break
            if rss > rss_limit:
                stopped_because = f"kube-apiserver RSS {rss / MB:.0f} MB > {rss_limit / 2**30:g} GB"
                break
        stored = progress.created
        seconds = time.perf_counter() - started
        cpu = {k: round((cpu_seconds(p) - cpu0[k]) * 1000 / stored, 3) for k, p in pids.items()}
        await sampler.sample()
        result: dict[str, Any] = {
            "orders": stored,
            "stopped_because": stopped_because,
            "create": {
                "seconds": round(seconds, 1),
                "per_second": round(stored / seconds, 1),
                "cpu_s_per_1k": cpu,
            },
            "batches": batches,
        }
        result.update(await stored_phases(api, stored, progress, sampler))
        progress.phase = "idle"
        await asyncio.sleep(4)
        await sampler.sample()
    result["samples"] = sampler.samples
    result["kube_apiserver_rss"] = rss_trend(sampler.samples, "kube-apiserver_rss_mb", stored)
    result["etcd_rss"] = rss_trend(sampler.samples, "etcd_rss_mb", stored)
    log(f"kube-apiserver RSS while storing: {result['kube_apiserver_rss']}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, help=f"Orders stored in ARC (default {QUICK_ORDERS:,})")
    parser.add_argument("--full", action="store_true", help=f"{FULL_ORDERS:,} Orders in ARC")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ORDERS:,} Orders (the default)")
    parser.add_argument(
        "--crd-orders",
        type=int,
        help=f"at most this many as CRDs (default: {QUICK_ORDERS:,}; --full: {FULL_ORDERS:,})",
    )
    parser.add_argument(
        "--crd-rss-limit",
        type=float,
        default=CRD_RSS_LIMIT / 2**30,
        help="stop the CRD creates above this RSS (GB)",
    )
    parser.add_argument("--crd-batch", type=int, default=5000)
    parser.add_argument(
        "--compaction-interval", type=float, default=20.0, help="ARC's --etcd-compaction-interval"
    )
    parser.add_argument("--skip-crd", action="store_true", help="only the ARC part")
    parser.add_argument("--skip-arc", action="store_true", help="only the CRD part")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/scale.json"))
    args = parser.parse_args(argv)
    n = args.orders or (FULL_ORDERS if args.full else QUICK_ORDERS)
    crd_orders = args.crd_orders or (FULL_ORDERS if args.full else QUICK_ORDERS)
    import uvloop

    # SIGTERM (or SIGINT, which a background job ignores) unwinds through the finally blocks that stop
    # the servers this benchmark started.
    signal.signal(signal.SIGTERM, exit_on_signal)

    report = report_header(
        "scale", "full" if n >= FULL_ORDERS else "quick" if n == QUICK_ORDERS else "custom"
    )
    with work_directory("arc-bench-scale-") as work:
        checkpoint = args.out.with_suffix(".partial.json")
        if not args.skip_arc:
            report["arc"] = uvloop.run(run_arc(work / "arc", n, args.compaction_interval, checkpoint))
            checkpoint.unlink(missing_ok=True)
        if not args.skip_crd:
            cluster = LocalCluster(work / "crd", controller_manager=False)
            try:
                cluster.up()
                admin = cluster.admin()
                install_crds(admin)
                ensure_namespaces(admin, [*NAMESPACES, "watch"])
                report["crd"] = uvloop.run(
                    run_crd(cluster, crd_orders, args.crd_batch, int(args.crd_rss_limit * 2**30))
                )
            finally:
                cluster.down()
    report["machine"]["load_avg_at_end"] = os.getloadavg()
    report["group"] = {"arc": ARC_GROUP, "crd": CRD_GROUP}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    summary = {
        side: {k: v for k, v in report[side].items() if k not in ("samples", "batches")}
        for side in ("arc", "crd")
        if side in report
    }
    print(json.dumps(summary, indent=1))
    log(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
