"""Where the time goes on the aggregated path: CPU profiles of ARC and kube-apiserver under proxied load.

    .venv/bin/python -m bench.profile [--seconds 20] [--concurrency 64] [--workers N] [--h2]
                                      [--out docs/bench/profile-aggregated.json]

Starts the local stack without the controller manager (as bench/compare does), optionally with ARC's
HTTP/2 terminator in front (``--h2``: the APIService is pointed at HAProxy's port), and drives Orders
through kube-apiserver's aggregator with ``--concurrency`` requests in flight for ``--seconds`` per
operation: creates, then GETs and merge-patches of the Orders created. During each operation:

- ARC (and its workers) is sampled by ``py-spy record --nonblocking --subprocesses`` at 100 Hz;
- kube-apiserver's own CPU profile is taken from ``/debug/pprof/profile`` (started with
  ``--profiling=true`` here; the admin is in ``system:masters``) and read with ``go tool pprof -traces``;
- the CPU seconds of every process (``/proc``) give each one's share per operation.

Every sample is put into the first category of :data:`ARC_CATEGORIES` / :data:`KUBE_CATEGORIES` whose
pattern occurs anywhere in its stack (so the shares add up to 100 %), e.g. a TLS handshake under aiohttp is
"TLS handshakes", not "HTTP server". The report keeps the categories' shares, the 25 hottest leaf functions
of each process and the per-process CPU per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import cpu_seconds, exit_on_signal, log, report_header, work_directory, worker_args
from bench.compare import (
    ARC_GROUP,
    H2_SYSTEM,
    MERGE_PATCH,
    Api,
    admin_target,
    aggregator_switch,
    ensure_namespaces,
    order,
)
from hack.cluster import LocalCluster

#: (category, substrings of a frame): a sample belongs to the first category with a frame containing one.
ARC_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS handshakes", ("do_handshake",)),
    ("TLS records (encrypt, decrypt)", ("ssl.py", "sslproto.py")),
    ("etcd client (aetcd, grpc.aio)", ("aetcd/", "grpc/")),
    ("authentication, authorization (delegation)", ("apiserver/delegation/", "apiserver/auth.py")),
    ("admission", ("apiserver/admission/",)),
    ("store: decode, validate, patch, managedFields, encode", ("apiserver/registry/", "api/", "pydantic")),
    ("watch fan-out", ("apiserver/watch.py",)),
    ("storage layer (codec, update loop)", ("apiserver/storage/",)),
    ("request routing, negotiation, errors", ("apiserver/handlers.py", "apiserver/requestinfo.py")),
    ("metrics, tracing, logging", ("prometheus_client", "opentelemetry", "logging/", "pythonjsonlogger")),
    ("HTTP server (aiohttp parse, respond)", ("aiohttp/", "multidict", "yarl")),
    ("event loop (uvloop), threads, other", ("",)),
)
KUBE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS handshakes", ("crypto/tls.(*Conn).handshakeContext", "HandshakeState")),
    ("garbage collection", ("runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge")),
    ("client certificate chain check per request (x509 authenticator)", ("authentication/request/x509",)),
    (
        "other authentication, authorization (RBAC)",
        ("k8s.io/apiserver/pkg/authentication", "k8s.io/apiserver/pkg/authorization", "authorizer/rbac"),
    ),
    ("TLS records (encrypt, decrypt)", ("crypto/",)),
    ("HTTP/2 framing", ("http2",)),
    (
        "proxying to ARC (aggregator, reverse proxy)",
        ("kube-aggregator", "k8s.io/apimachinery/pkg/util/proxy", "net/http/httputil"),
    ),
    ("HTTP/1.1 server and client, handler chain", ("net/http.",)),
    ("network syscalls", ("syscall.", "internal/poll")),
    ("Go scheduler, allocation", ("runtime.",)),
    ("other", ("",)),
)
OPERATIONS = ("create", "get", "patch")


def categorise(
    stacks: Iterable[tuple[list[str], float]], categories: tuple[tuple[str, tuple[str, ...]], ...]
) -> dict[str, float]:
    """Shares (0 to 1) of the samples per category; ``stacks`` are (frames, weight)."""
    totals: defaultdict[str, float] = defaultdict(float)
    for frames, weight in stacks:
        for name, patterns in categories:
            if any(p in frame for frame in frames for p in patterns):
                totals[name] += weight
                break
    whole = sum(totals.values()) or 1.0
    return {name: round(totals[name] / whole, 4) for name, _ in categories if totals[name]}


def hottest_leaves(stacks: Iterable[tuple[list[str], float]], n: int = 25) -> list[tuple[str, float]]:
    """The ``n`` leaf frames with the most self time, as shares of all samples."""
    leaves: defaultdict[str, float] = defaultdict(float)
    for frames, weight in stacks:
        if frames:
            leaves[frames[-1]] += weight
    whole = sum(leaves.values()) or 1.0
    hottest = sorted(leaves.items(), key=lambda item: -item[1])[:n]
    return [(frame, round(weight / whole, 4)) for frame, weight in hottest]


def parse_collapsed(text: str) -> list[tuple[list[str], float]]:
    """py-spy's ``--format raw`` (Brendan Gregg's collapsed stacks): ``root;…;leaf count`` per line."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), float(count)))
    return stacks


def parse_pprof_traces(text: str) -> list[tuple[list[str], float]]:
    """``go tool pprof -traces``: blocks split by ``-----------+---``, the first line ``<value> <leaf>``,
    then one caller per line; frames are returned root first, like py-spy's."""
    stacks = []
    for block in text.split("-----------+")[1:]:
        lines = [x.strip() for x in block.splitlines()[1:] if x.strip()]
        if not lines:
            continue
        value, _, leaf = lines[0].partition(" ")
        seconds = _duration_seconds(value)
        if seconds is None:
            continue
        frames = [leaf.strip(), *lines[1:]]
        stacks.append((frames[::-1], seconds))
    return stacks


def _duration_seconds(value: str) -> float | None:
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if value.endswith(unit):
            try:
                return float(value.removesuffix(unit)) * scale
            except ValueError:
                return None
    return None


class PySpy:
    """``py-spy record`` on a process tree until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = out
        self.proc = subprocess.Popen(
            [
                *(binary, "record", "--nonblocking", "--subprocesses", "--rate", str(rate)),
                *("--format", "raw", "--output", str(out), "--pid", str(pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> list[tuple[list[str], float]]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        if not self.out.is_file():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
        return parse_collapsed(self.out.read_text())


def pprof_traces(profile: Path) -> list[tuple[list[str], float]]:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    text = subprocess.run(
        [go, "tool", "pprof", "-traces", str(profile)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return parse_pprof_traces(text)


async def drive_for(seconds: float, concurrency: int, operation: Callable[[int], Awaitable[None]]) -> int:
    """Run ``operation(i)`` with ``concurrency`` in flight until ``seconds`` have passed; operations done."""
    deadline = time.monotonic() + seconds
    counter = iter(range(1 << 62))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in counter:
            if time.monotonic() >= deadline:
                return
            await operation(i)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def profile_operation(
    api: Api,
    op: str,
    operation: Callable[[int], Awaitable[None]],
    *,
    seconds: float,
    concurrency: int,
    pids: dict[str, int],
    work_dir: Path,
) -> dict[str, Any]:
    spy = PySpy(pids["arc-apiserver"], work_dir / f"arc-{op}.txt")
    await asyncio.sleep(1.0)  # py-spy attaches
    pprof_path = work_dir / f"kube-apiserver-{op}.pb.gz"
    pprof = asyncio.create_task(fetch_pprof(api, pprof_path, int(seconds)))
    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    started = time.perf_counter()
    done = await drive_for(seconds, concurrency, operation)
    elapsed = time.perf_counter() - started
    cpu = {k: cpu_seconds(p) - cpu_before[k] for k, p in pids.items()}
    arc_stacks = await asyncio.to_thread(spy.stop)
    await pprof
    kube_stacks = await asyncio.to_thread(pprof_traces, pprof_path)
    log(f"{op}: {done} in {elapsed:.1f}s ({done / elapsed:.0f}/s); {len(arc_stacks)} ARC stacks")
    return {
        "operation": op,
        "concurrency": concurrency,
        "operations": done,
        "ops_per_second": round(done / elapsed, 1),
        "cpu_ms_per_op": {k: round(v * 1000 / max(done, 1), 3) for k, v in cpu.items()},
        "arc": {
            "samples": int(sum(w for _, w in arc_stacks)),
            "categories": categorise(arc_stacks, ARC_CATEGORIES),
            "hottest_leaves": hottest_leaves(arc_stacks),
        },
        "kube_apiserver": {
            "cpu_seconds_sampled": round(sum(w for _, w in kube_stacks), 2),
            "categories": categorise(kube_stacks, KUBE_CATEGORIES),
            "hottest_leaves": hottest_leaves(kube_stacks),
        },
    }


async def fetch_pprof(api: Api, out: Path, seconds: int) -> None:
    """kube-apiserver's CPU profile over the next ``seconds`` (the admin may read /debug/pprof)."""
    limit = aiohttp.ClientTimeout(total=seconds + 60)
    async with api.session.get(
        "/debug/pprof/profile", params={"seconds": str(seconds)}, timeout=limit
    ) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/debug/pprof/profile: {resp.status} {body[:300]!r}")
    await asyncio.to_thread(out.write_bytes, body)


async def run(cluster: LocalCluster, args: argparse.Namespace, work_dir: Path) -> list[dict[str, Any]]:
    api = Api(admin_target("arc-aggregated", cluster, ARC_GROUP))
    pids = {"bench-client": os.getpid()}
    names = ["arc-apiserver", "kube-apiserver", "etcd-arc"] + (["arc-h2-terminator"] if args.h2 else [])
    for name in names:
        pid = cluster.component(name).pid()
        assert pid is not None, name
        pids[name] = pid
    namespace = "profile"
    path = api.collection("orders", namespace)
    created = 0

    async def create(i: int) -> None:
        nonlocal created
        await api.request("POST", path, order(f"o{i}", namespace, ARC_GROUP))
        created = max(created, i + 1)

    async def get(i: int) -> None:
        await api.request("GET", f"{path}/o{i % created}")

    async def patch(i: int) -> None:
        await api.request(
            "PATCH", f"{path}/o{i % created}", {"spec": {"queueName": f"p-{i}"}}, content_type=MERGE_PATCH
        )

    operations = {"create": create, "get": get, "patch": patch}
    try:
        if args.h2:
            await aggregator_switch(cluster, {H2_SYSTEM: api})(H2_SYSTEM)
        await drive_for(3.0, args.concurrency, lambda i: api.request("GET", f"/apis/{ARC_GROUP}/v1alpha1"))
        return [
            await profile_operation(
                api,
                op,
                operations[op],
                seconds=args.seconds,
                concurrency=args.concurrency,
                pids=pids,
                work_dir=work_dir,
            )
            for op in OPERATIONS
        ]
    finally:
        await api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="load and sampling per operation")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="arc-apiserver --workers")
    parser.add_argument("--h2", action="store_true", help="the aggregator reaches ARC through HAProxy (h2)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/profile-aggregated.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (profiles, logs)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_signal)
    with work_directory("arc-bench-profile-", keep=args.keep) as work_dir:
        cluster = LocalCluster(
            work_dir,
            controller_manager=False,
            etcd_tls=False,
            arc_apiserver_args=worker_args(args.workers),
            kube_apiserver_args=("--profiling=true",),
            h2_terminator=args.h2,
        )
        try:
            cluster.up()
            admin = cluster.admin()
            ensure_namespaces(admin, ["profile"])
            import uvloop

            results = uvloop.run(run(cluster, args, work_dir))
        finally:
            cluster.down()
    report = {
        **report_header("profile", "aggregated"),
        "arc_workers": args.workers,
        "h2_terminator": args.h2,
        "seconds_per_operation": args.seconds,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in results:
        log(f"{r['operation']}: ARC {r['arc']['categories']}")
        log(f"{r['operation']}: kube-apiserver {r['kube_apiserver']['categories']}")
    log(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
