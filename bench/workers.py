"""``arc-apiserver --workers N`` against one worker and raw etcd, in one run (issue 17, direction 2).

    .venv/bin/python -m bench.workers [--ops 2000] [--workers 2] [--rounds 2] [--out docs/bench/workers.json]

Starts one etcd (fsync on) and two standalone ``arc-apiserver`` processes on it (own key prefixes): one
with a single process, one with ``--workers N``. The same client code as bench/compare (aiohttp over HTTPS,
JSON with orjson, one connection per request in flight; Orders with 3 artifacts) then drives creates and
gets at 16 and 64 in flight against both servers and the same operations on raw etcd (aetcd's raw stubs),
systems interleaved and each step repeated ``--rounds`` times (the best round is kept: this machine is
shared, and a slow round measures the neighbours). CPU per operation is read for the whole process tree of
each server (supervisor + workers) and for etcd. Fast (a minute or two); no kube-apiserver, so it shows
what more processes give ARC's own serving, not the aggregated path (bench/compare ``--workers``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import Run, drive, percentile, report_header, work_directory
from bench.compare import ARC_GROUP, Api, Raw, order, token_target
from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer, start_cluster

CONCURRENCIES = (16, 64)


Client = Api | Raw


def summary(run: Run, server: str, etcd: str) -> dict[str, Any]:
    ms = [v * 1000 for v in run.latencies]
    etcd_cpu = sum(cpu for key, cpu in run.cpu.items() if key.startswith(f"{etcd}#"))
    return {
        "ops_per_s": round(run.operations / run.seconds, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "server_cpu_ms_per_op": round(run.cpu[server] * 1000 / run.operations, 3),
        "etcd_cpu_ms_per_op": round(etcd_cpu * 1000 / run.operations, 3),
        "client_cpu_ms_per_op": round(run.cpu["client"] * 1000 / run.operations, 3),
    }


async def measure(
    systems: dict[str, tuple[Client, str, str]], pids: dict[str, int], *, ops: int, rounds: int
) -> dict[str, Any]:
    """``systems``: name → (client, pid key of its server, pid key of its etcd); best of ``rounds``."""
    results: dict[str, Any] = {}
    for client, _, _ in systems.values():  # warm-up: connections, code paths
        if isinstance(client, Api):
            collection = client.collection("orders", "warm")
            await asyncio.gather(
                *(client.request("POST", collection, order(f"w{i}", "warm", ARC_GROUP)) for i in range(100))
            )
    for concurrency in CONCURRENCIES:
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for round_ in range(rounds):
            namespace = f"c{concurrency}r{round_}"
            for name, (client, server, etcd) in systems.items():
                for verb in ("create", "get"):
                    run = await step(name, verb, client, namespace, ops, concurrency, pids)
                    row = summary(run, server, etcd)
                    key = (name, verb)
                    if key not in best or row["ops_per_s"] > best[key]["ops_per_s"]:
                        best[key] = row
        for (name, verb), row in best.items():
            results.setdefault(f"{verb}@{concurrency}", {})[name] = row
    return results


async def step(
    system: str, verb: str, client: Client, namespace: str, ops: int, concurrency: int, pids: dict[str, int]
) -> Run:
    if isinstance(client, Raw):
        key = f"/bench-{system}/orders/{namespace}/"
        value = json.dumps(order("x", namespace, ARC_GROUP)).encode()
        raw = client

        async def raw_op(i: int) -> None:
            if verb == "create":
                await raw.create(f"{key}{i}", value)
            else:
                await raw.get(f"{key}{i}")

        return await drive(system, raw_op, operations=ops, concurrency=concurrency, pids=pids)
    api = client
    collection = api.collection("orders", namespace)

    async def op(i: int) -> None:
        name = f"{system}-{i}"
        if verb == "create":
            await api.request("POST", collection, order(name, namespace, ARC_GROUP))
        else:
            await api.request("GET", f"{collection}/{name}")

    return await drive(system, op, operations=ops, concurrency=concurrency, pids=pids)


async def run_systems(
    servers: dict[str, ArcApiServer],
    etcds: dict[str, list[EtcdServer]],
    plan: dict[str, tuple[str, str]],
    *,
    ops: int,
    rounds: int,
) -> dict[str, Any]:
    """``plan``: system name → (server name or ``raw``, etcd name); CPU of an etcd is all its members'."""
    pids: dict[str, int] = {"client": os.getpid()}
    for name, server in servers.items():
        pids[name] = server.component.pid() or 0
    member_pids: dict[str, list[int]] = {
        name: [m.component.pid() or 0 for m in members] for name, members in etcds.items()
    }
    for name, members_ in member_pids.items():
        for i, pid in enumerate(members_):
            pids[f"{name}#{i}"] = pid
    clients: dict[str, Client] = {}
    systems: dict[str, tuple[Client, str, str]] = {}
    for system, (server_name, etcd) in plan.items():
        client: Client
        if server_name == "raw":
            client = Raw(etcds[etcd][0].client_url)
        else:
            client = Api(token_target(system, servers[server_name]))
        clients[system] = client
        systems[system] = (client, server_name if server_name != "raw" else f"{etcd}#0", etcd)
    try:
        results = await measure(systems, pids, ops=ops, rounds=rounds)
    finally:
        for client in clients.values():
            await client.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=2000, help="operations per step")
    parser.add_argument("--workers", type=int, default=2, help="--workers of the multi-process server")
    parser.add_argument("--rounds", type=int, default=2, help="repeats of every step (the best is kept)")
    parser.add_argument(
        "--etcd-cluster",
        action="store_true",
        help="also a 3-member etcd cluster on loopback (fsync on) with one ARC process and raw calls on it",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/bench/workers.json"))
    args = parser.parse_args(argv)
    with work_directory("arc-bench-workers-") as work:
        etcds: dict[str, list[EtcdServer]] = {"etcd1": [EtcdServer.allocate("etcd1", work)]}
        one, many = "arc-1-worker", f"arc-{args.workers}-workers"
        quiet = "--log-level=WARNING"
        url = etcds["etcd1"][0].client_url
        servers = {
            one: ArcApiServer(work, url, name=one, etcd_prefix="/w1", extra_args=(quiet,)),
            many: ArcApiServer(
                work, url, name=many, etcd_prefix="/wn", extra_args=(quiet, f"--workers={args.workers}")
            ),
        }
        plan = {one: (one, "etcd1"), many: (many, "etcd1"), "raw-etcd": ("raw", "etcd1")}
        started = time.perf_counter()
        try:
            etcds["etcd1"][0].start()
            if args.etcd_cluster:
                etcds["etcd3"] = start_cluster("etcd3", work, members=3, unsafe_no_fsync=False)
                urls = ",".join(m.client_url for m in etcds["etcd3"])
                servers["arc-etcd3"] = ArcApiServer(work, urls, name="arc-etcd3", extra_args=(quiet,))
                plan |= {"arc-1-worker-etcd3": ("arc-etcd3", "etcd3"), "raw-etcd3": ("raw", "etcd3")}
            for server in servers.values():
                server.start()
            import uvloop

            results = uvloop.run(run_systems(servers, etcds, plan, ops=args.ops, rounds=args.rounds))
        finally:
            for server in servers.values():
                server.stop()
            for members in etcds.values():
                for member in members:
                    member.stop()
    ratios: dict[str, dict[str, float]] = {}
    for step_name, rows in results.items():
        rate = {name: row["ops_per_s"] for name, row in rows.items()}
        ratios[step_name] = {
            f"{many} / {one}": round(rate[many] / rate[one], 2),
            f"{one} / raw": round(rate[one] / rate["raw-etcd"], 2),
            f"{many} / raw": round(rate[many] / rate["raw-etcd"], 2),
            f"{one} CPU / etcd CPU per op": round(
                rows[one]["server_cpu_ms_per_op"] / max(rows["raw-etcd"]["etcd_cpu_ms_per_op"], 1e-9), 2
            ),
        }
        if "raw-etcd3" in rate:
            ratios[step_name] |= {
                "arc on etcd3 / arc on etcd1": round(rate["arc-1-worker-etcd3"] / rate[one], 2),
                "raw etcd3 / raw etcd1": round(rate["raw-etcd3"] / rate["raw-etcd"], 2),
                "arc p99 on etcd3 / on etcd1": round(
                    rows["arc-1-worker-etcd3"]["p99_ms"] / rows[one]["p99_ms"], 2
                ),
            }
    report = {
        **report_header("workers", f"{args.rounds} rounds"),
        "ops": args.ops,
        "rounds": args.rounds,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"ratios": ratios, "load": report["machine"]["load_avg_at_end"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
