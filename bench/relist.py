"""A storm of re-lists: N informers re-listing at once (after a restart) over many large Orders.

    .venv/bin/python -m bench.relist [--orders 2000] [--size 10240] [--clients 200] [--out PATH]

Starts its own etcd and ``arc-apiserver`` (standalone, HTTPS) in a temporary directory, creates
``--orders`` Orders of about ``--size`` bytes each in one namespace (32 in flight), then starts
``--clients`` LISTs and as many watch-lists (``sendInitialEvents=true``, until the initial-events-end
bookmark) all at once, each retried after ``Retry-After`` on a 429 as client-go's reflector does. Reports
the final status of every re-list, the 429s seen, how long the storm took, the API server's RSS before,
at its peak (sampled every 100 ms) and after, and how many etcd range calls served it.

Issue 14 measured 198-200 x 504 and RSS 111 -> 390 MB for 200 clients over 2,000 x 10 KB Orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import rss_bytes
from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer
from tests.integration.apiserver.conftest import GV_PATH, order, ssl_context

NAMESPACE = "relist"


async def relist(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> tuple[int, int]:
    throttled = 0
    for _ in range(300):
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=300)) as resp:
            if resp.status == 429:
                throttled += 1
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            if resp.status != 200 or params.get("watch") != "true":
                await resp.read()
                return resp.status, throttled
            async for line in resp.content:
                event = orjson.loads(line)
                if event["type"] == "ERROR":
                    return int(event["object"]["code"]), throttled
                annotations = event["object"]["metadata"].get("annotations") or {}
                if event["type"] == "BOOKMARK" and annotations.get("k8s.io/initial-events-end"):
                    return 200, throttled
            return 599, throttled
    return 429, throttled


def etcd_lists(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("etcd_request_duration_seconds_count{") and 'operation="list"' in line
    )


async def storm(server: ArcApiServer, orders: int, size: int, clients: int) -> dict[str, Any]:
    token = server.token_file.read_text().split(",", 1)[0]
    connector = aiohttp.TCPConnector(ssl=ssl_context(server), limit=2 * clients + 10)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {token}"}) as s:
        path = f"{server.url}{GV_PATH}/namespaces/{NAMESPACE}/orders"
        filler = "z" * max(0, size - 400)
        semaphore = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            body = order(f"o{i}", NAMESPACE)
            body["spec"]["artifacts"][0]["spec"]["filler"] = filler
            async with semaphore, s.post(path, json=body) as resp:
                assert resp.status == 201, await resp.text()

        await asyncio.gather(*(create(i) for i in range(orders)))
        pid = server.component.pid()
        assert pid is not None
        async with s.get(f"{server.url}/metrics") as resp:
            lists_before = etcd_lists(await resp.text())
        rss_before = rss_bytes(pid)
        peak = rss_before
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_bytes(pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        watch = {
            "watch": "true",
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        started = time.monotonic()
        results = await asyncio.gather(
            *(relist(s, path, {}) for _ in range(clients)), *(relist(s, path, watch) for _ in range(clients))
        )
        seconds = time.monotonic() - started
        done.set()
        await sampler
        async with s.get(f"{server.url}/metrics") as resp:
            lists_after = etcd_lists(await resp.text())
        return {
            "orders": orders,
            "order_bytes": size,
            "clients": clients,
            "lists": dict(Counter(str(status) for status, _ in results[:clients])),
            "watch_lists": dict(Counter(str(status) for status, _ in results[clients:])),
            "throttled_429": sum(t for _, t in results),
            "seconds": round(seconds, 1),
            "rss_before_mb": round(rss_before / 2**20),
            "rss_peak_mb": round(peak / 2**20),
            "rss_after_mb": round(rss_bytes(pid) / 2**20),
            "etcd_list_calls": lists_after - lists_before,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--server-arg", action="append", default=[], help="extra arc-apiserver flag")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="arc-relist-") as tmp:
        work = Path(tmp)
        etcd = EtcdServer.allocate("etcd-relist", work)
        etcd.start(unsafe_no_fsync=True)
        server = ArcApiServer(
            work, etcd.client_url, etcd_prefix="/arc", extra_args=("--log-level=WARNING", *args.server_arg)
        )
        try:
            server.start()
            result = asyncio.run(storm(server, args.orders, args.size, args.clients))
        finally:
            server.stop()
            etcd.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
