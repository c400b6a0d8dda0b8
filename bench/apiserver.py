"""ARC's API server against raw etcd, in one run on this machine.

    .venv/bin/python -m bench.apiserver [--quick] [--out docs/bench/apiserver.json]

Starts one etcd and the real ``arc-apiserver`` process (standalone mode, HTTPS, token authentication — the
same code path as behind the aggregator minus the proxy hop) and measures, with the same client process:

- create / get / update at 1, 16 and 64 in flight: through the server (HTTPS + JSON) and the same operation
  done directly on etcd with aetcd's raw gRPC stubs (a create is a transaction on create_revision == 0, an
  update a transaction on mod_revision, a get a linearizable range);
- CPU per operation of the API server and of etcd (``/proc/<pid>/stat``);
- list of N objects: one LIST through the server vs a raw range of the prefix plus JSON decode of every value;
- watch delivery latency: time from a write's response to its event on an open watch (server vs raw etcd);
- API server RSS while the objects are stored.

Results go to JSON (raw) and are summarised as ratios; docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aetcd.rpc as rpc
import aiohttp
import orjson

from bench.common import Run, cpu_seconds, drive, percentile, rss_bytes
from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer

GV = "/apis/arc.opendefense.cloud/v1alpha1"
_CREATE = rpc.Compare.CompareTarget.CREATE
_MOD = rpc.Compare.CompareTarget.MOD
_EQUAL = rpc.Compare.CompareResult.EQUAL


def endpoint(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "yes"}},
        "spec": {"type": "oci", "remoteURL": "registry.example/mirror", "usage": "All"},
    }


class RawEtcd:
    """The reference: the same operations on etcd with aetcd's raw stubs (one gRPC channel)."""

    def __init__(self, url: str) -> None:
        options = [
            ("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.max_send_message_length", 2**31 - 1),
        ]
        self.channel = rpc.insecure_channel(url.split("://", 1)[1], options=options)
        self.kv = rpc.KVStub(self.channel)
        self.watch_stub = rpc.WatchStub(self.channel)

    async def create(self, key: str, value: bytes) -> int:
        raw = key.encode()
        response = await self.kv.Txn(
            rpc.TxnRequest(
                compare=[rpc.Compare(key=raw, target=_CREATE, result=_EQUAL, create_revision=0)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=raw, value=value))],
            ),
            timeout=10,
        )
        assert response.succeeded
        return int(response.header.revision)

    async def get(self, key: str) -> tuple[bytes, int]:
        response = await self.kv.Range(rpc.RangeRequest(key=key.encode()), timeout=10)
        kv = response.kvs[0]
        return kv.value, int(kv.mod_revision)

    async def update(self, key: str, value: bytes, mod_revision: int) -> int:
        raw = key.encode()
        response = await self.kv.Txn(
            rpc.TxnRequest(
                compare=[rpc.Compare(key=raw, target=_MOD, result=_EQUAL, mod_revision=mod_revision)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=raw, value=value))],
            ),
            timeout=10,
        )
        assert response.succeeded
        return int(response.header.revision)

    async def list_decoded(self, prefix: str) -> int:
        raw = prefix.encode()
        end = raw[:-1] + bytes([raw[-1] + 1])
        response = await self.kv.Range(rpc.RangeRequest(key=raw, range_end=end), timeout=60)
        return len([orjson.loads(kv.value) for kv in response.kvs])

    async def close(self) -> None:
        await self.channel.close()


class Server:
    def __init__(self, server: ArcApiServer, token: str) -> None:
        context = ssl.create_default_context(cafile=str(server.cert_dir / "apiserver.crt"))
        self.session = aiohttp.ClientSession(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            connector=aiohttp.TCPConnector(ssl=context, limit=256),
        )

    async def request(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, path, data=data, params=params or None) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
            return orjson.loads(raw)

    async def close(self) -> None:
        await self.session.close()


async def watch_latency_server(server: Server, namespace: str, writes: int) -> list[float]:
    """Seconds from the start of a create to its ADDED event on an already open watch."""
    done: dict[str, float] = {}
    arrived: dict[str, float] = {}
    path = f"{GV}/namespaces/{namespace}/endpoints"
    listing = await server.request("GET", path)
    async with server.session.get(
        path, params={"watch": "true", "resourceVersion": listing["metadata"]["resourceVersion"]}
    ) as resp:

        async def reader() -> None:
            async for line in resp.content:
                event = orjson.loads(line)
                arrived[event["object"]["metadata"]["name"]] = time.perf_counter()
                if len(arrived) >= writes:
                    return

        task = asyncio.create_task(reader())
        for i in range(writes):
            name = f"w{i}"
            done[name] = time.perf_counter()
            await server.request("POST", path, endpoint(name, namespace))
            await asyncio.sleep(0.005)
        await asyncio.wait_for(task, 30)
    return [max(0.0, arrived[n] - done[n]) for n in done]


async def watch_latency_raw(
    etcd: RawEtcd,
    prefix: str,
    writes: int,
    *,
    value: Callable[[int], bytes] | None = None,
    gap: float = 0.005,
    wait_seconds: float = 30,
) -> list[float]:
    """Seconds from the start of a raw create to its event on an open etcd watch of ``prefix``."""
    make_value = value or (lambda i: orjson.dumps(endpoint(f"w{i}", "x")))
    done: dict[str, float] = {}
    arrived: dict[str, float] = {}
    raw = prefix.encode()
    end = raw[:-1] + bytes([raw[-1] + 1])
    queue: asyncio.Queue[rpc.WatchRequest] = asyncio.Queue()
    await queue.put(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=raw, range_end=end)))

    async def requests() -> Any:
        while True:
            yield await queue.get()

    call = etcd.watch_stub.Watch(requests())
    first = await call.read()
    assert first.created

    async def reader() -> None:
        while len(arrived) < writes:
            response = await call.read()
            for event in response.events:
                arrived[event.kv.key.decode()] = time.perf_counter()

    task = asyncio.create_task(reader())
    for i in range(writes):
        key = f"{prefix}w{i}"
        done[key] = time.perf_counter()
        await etcd.create(key, make_value(i))
        await asyncio.sleep(gap)
    await asyncio.wait_for(task, wait_seconds)
    call.cancel()
    return [max(0.0, arrived[k] - done[k]) for k in done]


async def measure_crud(
    server: Server, raw: RawEtcd, *, concurrency: int, count: int, pids: dict[str, int]
) -> list[Run]:
    """create, get, update of ``count`` objects at ``concurrency``: raw etcd first, then the server."""
    ns = f"c{concurrency}"
    value = orjson.dumps(endpoint("x", ns))
    revisions: dict[int, int] = {}
    objects: dict[int, Any] = {}
    path = f"{GV}/namespaces/{ns}/endpoints"

    async def raw_create(i: int) -> None:
        await raw.create(f"/raw/{ns}/e{i}", value)

    async def raw_get(i: int) -> None:
        _, revisions[i] = await raw.get(f"/raw/{ns}/e{i}")

    async def raw_update(i: int) -> None:
        await raw.update(f"/raw/{ns}/e{i}", value, revisions[i])

    async def create(i: int) -> None:
        objects[i] = await server.request("POST", path, endpoint(f"e{i}", ns))

    async def get(i: int) -> None:
        objects[i] = await server.request("GET", f"{path}/e{i}")

    async def update(i: int) -> None:
        obj = objects[i]
        obj["spec"]["remoteURL"] = "registry.example/other"
        await server.request("PUT", f"{path}/e{i}", obj)

    runs = []
    for name, operation in (
        ("raw-etcd create", raw_create),
        ("raw-etcd get", raw_get),
        ("raw-etcd update", raw_update),
        ("arc create", create),
        ("arc get", get),
        ("arc update", update),
    ):
        runs.append(await drive(name, operation, operations=count, concurrency=concurrency, pids=pids))
    return runs


async def run(quick: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="arc-bench-"))
    etcd = EtcdServer.allocate("etcd-bench", work)
    etcd.start()
    arc = ArcApiServer(work, etcd.client_url, etcd_prefix="/arc", extra_args=("--log-level=WARNING",))
    arc.start()
    token = arc.token_file.read_text().split(",", 1)[0]
    server, raw = Server(arc, token), RawEtcd(etcd.client_url)
    etcd_pid, arc_pid = etcd.component.pid(), arc.component.pid()
    assert etcd_pid and arc_pid
    pids = {"etcd": etcd_pid, "apiserver": arc_pid}
    results: dict[str, Any] = {"quick": quick, "runs": []}
    n = 2000 if quick else 10000
    try:
        for concurrency in (1, 16, 64):
            count = n // 4 if concurrency == 1 else n
            for r in await measure_crud(server, raw, concurrency=concurrency, count=count, pids=pids):
                results["runs"].append(r.summary())
                print(json.dumps(r.summary()))

        # List of N objects in one namespace.
        list_ns = "list"
        await asyncio.gather(
            *(
                server.request("POST", f"{GV}/namespaces/{list_ns}/endpoints", endpoint(f"l{i}", list_ns))
                for i in range(n)
            )
        )
        lists: dict[str, list[float]] = {"arc": [], "raw": []}
        for _ in range(5):
            started = time.perf_counter()
            out = await server.request("GET", f"{GV}/namespaces/{list_ns}/endpoints")
            lists["arc"].append(time.perf_counter() - started)
            assert len(out["items"]) == n
            started = time.perf_counter()
            count = await raw.list_decoded(f"/arc/arc.opendefense.cloud/endpoints/{list_ns}/")
            lists["raw"].append(time.perf_counter() - started)
            assert count == n
        results["list"] = {
            "objects": n,
            "arc_ms": round(min(lists["arc"]) * 1000, 1),
            "raw_range_decode_ms": round(min(lists["raw"]) * 1000, 1),
        }
        print(json.dumps(results["list"]))

        # Watch delivery.
        writes = 200 if quick else 500
        arc_watch = await watch_latency_server(server, "watch", writes)
        raw_watch = await watch_latency_raw(raw, "/rawwatch/", writes)
        results["watch"] = {
            "writes": writes,
            "arc_p50_ms": round(percentile(arc_watch, 50) * 1000, 3),
            "arc_p99_ms": round(percentile(arc_watch, 99) * 1000, 3),
            "raw_p50_ms": round(percentile(raw_watch, 50) * 1000, 3),
            "raw_p99_ms": round(percentile(raw_watch, 99) * 1000, 3),
        }
        print(json.dumps(results["watch"]))

        # Memory while objects are stored: RSS now vs after storing more.
        stored = sum(r["operations"] for r in results["runs"] if r["name"] == "arc create") + n + writes
        results["memory"] = {
            "objects_stored": stored,
            "apiserver_rss_mb": round(rss_bytes(arc_pid) / 2**20, 1),
            "etcd_rss_mb": round(rss_bytes(etcd_pid) / 2**20, 1),
        }
        extra = n
        await asyncio.gather(
            *(
                server.request("POST", f"{GV}/namespaces/mem/endpoints", endpoint(f"m{i}", "mem"))
                for i in range(extra)
            )
        )
        results["memory"]["objects_stored_after"] = stored + extra
        results["memory"]["apiserver_rss_mb_after"] = round(rss_bytes(arc_pid) / 2**20, 1)
        print(json.dumps(results["memory"]))
        results["apiserver_cpu_total_s"] = round(cpu_seconds(arc_pid), 2)
    finally:
        await server.close()
        await raw.close()
        arc.stop()
        etcd.stop()
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    by = {(r["name"], r["concurrency"]): r for r in results["runs"]}
    out: dict[str, Any] = {}
    for concurrency in (1, 16, 64):
        for op in ("create", "get", "update"):
            arc, raw = by.get((f"arc {op}", concurrency)), by.get((f"raw-etcd {op}", concurrency))
            if arc and raw:
                out[f"{op}@{concurrency}"] = {
                    "throughput_ratio": round(arc["ops_per_second"] / raw["ops_per_second"], 3),
                    "p99_ratio": round(arc["p99_ms"] / raw["p99_ms"], 2) if raw["p99_ms"] else None,
                    "apiserver_cpu_ms_per_op": arc["cpu_ms_per_op"].get("apiserver"),
                    "etcd_cpu_ms_per_op_raw": raw["cpu_ms_per_op"].get("etcd"),
                }
    if "list" in results:
        out["list"] = round(results["list"]["arc_ms"] / results["list"]["raw_range_decode_ms"], 2)
    if "watch" in results:
        out["watch_p50_extra_ms"] = round(results["watch"]["arc_p50_ms"] - results["watch"]["raw_p50_ms"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer operations (a couple of minutes)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/apiserver.json"))
    args = parser.parse_args()
    import uvloop

    results = uvloop.run(run(args.quick))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratios"], indent=2))


if __name__ == "__main__":
    main()
