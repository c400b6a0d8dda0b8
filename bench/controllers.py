"""The Order controller under load: N Orders x 3 artifacts on the real local stack, one controller manager.

    .venv/bin/python -m bench.controllers [--quick] [--orders N] [--concurrency C] [--out PATH] [--keep]
                                          [--artifact-workflow-controller] [--workers N] [--h2]

1. Starts the local stack (`hack/cluster.py`: etcd (two), kube-apiserver, kube-controller-manager,
   kube-scheduler, kwok, ARC's aggregated API server) in a temporary work directory, WITHOUT ARC's
   controller manager; ``--workers N`` runs ARC's API server with N worker processes, ``--h2`` puts the
   HTTP/2 terminator (hack/haproxy.py) between the aggregator and ARC.
2. Creates a namespace, a Secret, two Endpoints (the source uses the Secret) and a ClusterArtifactType.
3. Starts ONE `python -m controllers` subprocess as `make run` does (its service-account kubeconfig and RBAC
   from deploy/controllers, leader election on) but without the ArtifactWorkflow controller unless
   `--artifact-workflow-controller` (with it, Argo runs every Workflow on the same cores and keeps writing
   statuses, so the no-op resync below is skipped), and waits until it is ready and holds the Lease.
4. Creates N Orders x 3 artifacts (1,000 by default, 200 with --quick; 8 creates in flight) and measures,
   from the first create, the time until all 3·N ArtifactWorkflows exist and until every Order's status is
   current (`observedGeneration == generation`, `progress.total == 3`) — seen through the benchmark's own
   watches (informers) — then until the manager is idle (work queue empty, no reconcile running).
5. Reads the manager's `/metrics` (`controller_runtime_reconcile_total`, errors, reconcile time,
   `workqueue_adds_total`), samples its RSS from /proc, reads the CPU time of every process of the stack
   and of the benchmark itself from /proc/<pid>/stat, and counts the API requests served meanwhile
   (`apiserver_request_total` of kube-apiserver and of ARC's API server, by verb, resource and code, and per
   Order).

Results: raw JSON (default docs/bench/controllers.json); docs/performance.md summarises them. The stack is
stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import cpu_seconds, log, report_header, rss_bytes, work_directory, worker_args
from controllers.kube import ApiKubeClient, KubeError, connect
from controllers.kube.resources import (
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    ENDPOINTS,
    LEASES,
    ORDERS,
    SECRETS,
    Resource,
)
from controllers.runtime import Informer
from hack.cluster import DEPLOY_DIR, LocalCluster

NAMESPACE = "bench"
ARTIFACTS = 3
ARTIFACT_TYPE = "bench-oci"  # the stack may bring a demo "oci" type of its own
API_VERSION = "arc.opendefense.cloud/v1alpha1"
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False)


# --- the manager's /metrics ---------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format → {name: [(labels, value)]} (enough for counters, gauges and histograms)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, rest = series.partition("{")
        labels: dict[str, str] = {}
        for part in rest.rstrip("}").split('",'):
            if "=" in part:
                key, _, val = part.partition("=")
                labels[key.strip()] = val.strip().strip('"')
        out.setdefault(name, []).append((labels, float(value)))
    return out


def metric(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, /, **labels: str) -> float:
    return sum(v for lbl, v in metrics.get(name, []) if all(lbl.get(k) == w for k, w in labels.items()))


class ManagerProcess:
    """`python -m controllers` as `make run` starts it (hack/cluster.py's argv), output to a log file."""

    def __init__(self, cluster: LocalCluster, extra: list[str], *, profile: Path | None = None) -> None:
        self.port = cluster.ports.arc_controller_manager
        self.log_path = cluster.work_dir / "logs" / "bench-arc-controller-manager.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.argv = [*cluster.arc_controller_manager_argv(), *extra]
        if profile is not None:  # cProfile writes when the manager exits after SIGTERM
            self.argv[1:1] = ["-m", "cProfile", "-o", str(profile)]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def get(self, path: str) -> tuple[int, str]:
        try:
            async with self.session.get(f"http://127.0.0.1:{self.port}{path}") as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0, ""

    async def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        status, text = await self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"manager /metrics answered {status}")
        return parse_metrics(text)

    async def stop(self) -> None:
        await self.session.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


Counts = dict[str, float]


class ApiRequests:
    """`apiserver_request_total` of kube-apiserver and of ARC's API server, read from their /metrics.

    kube-apiserver is asked with the admin certificate; ARC's API server directly (not through the
    aggregator, which has no route to it for /metrics) with the front-proxy client certificate and the
    admin identity in the request headers, exactly as kube-apiserver's proxy presents a user to it.
    """

    def __init__(self, cluster: LocalCluster) -> None:
        pki = cluster.pki_dir
        self._kube = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._kube.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        self._arc = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._arc.load_cert_chain(pki / "front-proxy-client.crt", pki / "front-proxy-client.key")
        self._kube_url = f"{cluster.server}/metrics"
        self._arc_url = f"https://127.0.0.1:{cluster.ports.arc_apiserver}/metrics"
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _scrape(self, url: str, context: ssl.SSLContext, headers: dict[str, str]) -> Counts:
        async with self.session.get(url, ssl=context, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{url} answered {resp.status}")
            metrics = parse_metrics(await resp.text())
        counts: Counts = {}
        for labels, value in metrics.get("apiserver_request_total", []):
            if labels.get("verb") in ("WATCH", "CONNECT") or value == 0:
                continue
            what = labels.get("resource", "") + (
                f"/{labels['subresource']}" if labels.get("subresource") else ""
            )
            key = f"{labels.get('verb')} {labels.get('group') or 'core'}/{what} {labels.get('code')}"
            counts[key] = counts.get(key, 0) + value
        return counts

    async def snapshot(self) -> dict[str, Counts]:
        return {
            "kube-apiserver": await self._scrape(self._kube_url, self._kube, {}),
            "arc-apiserver": await self._scrape(
                self._arc_url, self._arc, {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
            ),
        }

    async def close(self) -> None:
        await self.session.close()


def request_delta(before: dict[str, Counts], after: dict[str, Counts], per: int) -> dict[str, Any]:
    """Requests between two snapshots, per server and `verb group/resource code`, and per Order.

    kube-apiserver also counts the requests it proxies to ARC (under ARC's group); they are reported with
    ARC's own count and left out of kube-apiserver's, which then holds what kube-apiserver served itself
    (Events, Leases, the Workflows of the ArtifactWorkflow controller, other controllers' traffic).
    """
    out: dict[str, Any] = {}
    for server in ("arc-apiserver", "kube-apiserver"):
        rows = {
            key: after[server].get(key, 0) - before[server].get(key, 0)
            for key in after[server]
            if after[server].get(key, 0) - before[server].get(key, 0) > 0
            and not (server == "kube-apiserver" and " arc.opendefense.cloud/" in key)
        }
        out[server] = {
            "total": int(sum(rows.values())),
            "per_order": round(sum(rows.values()) / per, 2),
            "by_request": {k: int(v) for k, v in sorted(rows.items(), key=lambda kv: -kv[1])},
        }
    return out


def requests_per_order(requests: dict[str, Any], n_orders: int) -> dict[str, float]:
    """The requests of the run by kind, per Order: what the controller wrote to ARC (the benchmark's own
    Order creates apart), the Events it wrote, the SubjectAccessReviews ARC's API server sent for it, and
    everything else (leases, other controllers' traffic)."""
    out = dict.fromkeys(
        ("order_creates", "controller_writes", "controller_reads", "events", "subjectaccessreviews", "other"),
        0.0,
    )
    for server in ("arc-apiserver", "kube-apiserver"):
        for key, count in requests[server]["by_request"].items():
            verb, what, _code = key.split(" ")
            if what == "core/events":
                kind = "events"
            elif what == "authorization.k8s.io/subjectaccessreviews":
                kind = "subjectaccessreviews"
            elif server == "arc-apiserver" and verb == "POST" and what.endswith("/orders"):
                kind = "order_creates"
            elif server == "arc-apiserver" and verb in ("POST", "PUT", "PATCH", "DELETE"):
                kind = "controller_writes"
            elif server == "arc-apiserver" and verb in ("GET", "LIST"):
                kind = "controller_reads"
            else:
                kind = "other"
            out[kind] += count
    return {kind: round(count / n_orders, 3) for kind, count in out.items()}


# --- the workload -------------------------------------------------------------------------------------


def order(i: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": f"o-{i:05d}", "namespace": NAMESPACE},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [
                {
                    "type": ARTIFACT_TYPE,
                    "spec": {"image": f"library/app-{i}-{j}", "tag": "1.0", "platforms": ["amd64"]},
                }
                for j in range(ARTIFACTS)
            ],
        },
    }


async def prepare(client: ApiKubeClient) -> None:
    await client.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    await client.create(
        SECRETS,
        NAMESPACE,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "data": {"token": "c2VjcmV0"}},
    )
    for name, url, secret in (
        ("src", "mirror.example/library", "creds"),
        ("dst", "registry.example/library", ""),
    ):
        spec: dict[str, Any] = {"type": "oci", "remoteURL": url, "usage": "All"}
        if secret:
            spec["secretRef"] = {"name": secret}
        await client.create(
            ENDPOINTS,
            NAMESPACE,
            {"apiVersion": API_VERSION, "kind": "Endpoint", "metadata": {"name": name}, "spec": spec},
        )
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterArtifactType",
            "metadata": {"name": ARTIFACT_TYPE},
            "spec": {
                "workflowTemplateRef": {"name": "arc-oci-transfer", "clusterScope": True},
                "rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
                "parameters": [{"name": "scan", "value": "false"}],
            },
        },
    )


@dataclass
class Progress:
    """What the benchmark's own informers see; times are seconds since the first create."""

    orders: int
    all_workflows: float | None = None
    all_status: float | None = None
    samples: list[dict[str, float]] = field(default_factory=list)


def is_current(o: dict[str, Any]) -> bool:
    status = o.get("status") or {}
    return bool(
        status.get("observedGeneration") == o["metadata"].get("generation")
        and (status.get("progress") or {}).get("total") == ARTIFACTS
    )


async def observe(
    orders: Informer[dict[str, Any]],
    aws: Informer[dict[str, Any]],
    progress: Progress,
    started: float,
    deadline: float,
) -> None:
    want = progress.orders * ARTIFACTS
    last_sample = 0.0
    # Kept up to date by the informer's handler rather than recounted every 100 ms: at 10,000 Orders a scan
    # of the whole cache ten times a second is CPU taken from the stack being measured.
    current_names: set[str] = set()

    def track(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        if new is not None and is_current(new):
            current_names.add(obj["metadata"]["name"])
        else:
            current_names.discard(obj["metadata"]["name"])

    orders.add_handler(track)  # replays the cache
    while True:
        now = time.perf_counter() - started
        n_aws = len(aws)
        current = len(current_names)
        if progress.all_workflows is None and n_aws >= want:
            progress.all_workflows = now
        if progress.all_status is None and current == progress.orders and len(orders) == progress.orders:
            progress.all_status = now
        if now - last_sample >= 1.0:
            last_sample = now
            progress.samples.append(
                {"t": round(now, 2), "artifact_workflows": n_aws, "orders_current": current}
            )
        if progress.all_workflows is not None and progress.all_status is not None:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not converged: {n_aws}/{want} ArtifactWorkflows, {current} Orders current")
        await asyncio.sleep(0.1)


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_bytes(pid))
        except OSError:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def wait_idle(manager: ManagerProcess, deadline: float) -> float:
    """Until the order queue is empty and no reconcile runs, twice in a row 0.5 s apart; returns the time."""
    quiet = 0
    while time.perf_counter() < deadline:
        m = await manager.metrics()
        busy = metric(m, "workqueue_depth", name="order") + metric(
            m, "controller_runtime_active_workers", controller="order"
        )
        quiet = quiet + 1 if busy == 0 else 0
        if quiet >= 2:
            return time.perf_counter()
        await asyncio.sleep(0.5)
    raise TimeoutError("the manager did not go idle")


async def leader(client: ApiKubeClient) -> str:
    try:
        lease = await client.get(LEASES, "arc-system", "arc-controller-manager")
    except KubeError:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def resync(
    client: ApiKubeClient,
    manager: ManagerProcess,
    orders: Informer[dict[str, Any]],
    aws: Informer[dict[str, Any]],
    n_orders: int,
    deadline: float,
) -> dict[str, Any]:
    """Edit the ArtifactType every Order uses: all Orders are reconciled and nothing is written.

    SPEC §4.1: a type edit affects ArtifactWorkflows created afterwards and re-runs nothing, so each of these
    reconciles reads the caches, finds the world as desired and returns — the controller's own throughput,
    without API writes. Checked: no Order and no ArtifactWorkflow changes its resourceVersion.
    """
    before_rv = {(o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in orders.list()}
    before_aws = {a["metadata"]["name"]: a["metadata"]["resourceVersion"] for a in aws.list()}
    m0 = await manager.metrics()
    reconciles0 = metric(m0, "controller_runtime_reconcile_total", controller="order")
    cpu0 = cpu_seconds(manager.pid)
    started = time.perf_counter()
    await client.patch(
        CLUSTER_ARTIFACT_TYPES,
        None,
        ARTIFACT_TYPE,
        {"spec": {"parameters": [{"name": "scan", "value": "false"}, {"name": "resync", "value": "1"}]}},
    )
    while True:
        m1 = await manager.metrics()
        done = metric(m1, "controller_runtime_reconcile_total", controller="order") - reconciles0
        if done >= n_orders:
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"resync: {done}/{n_orders} reconciles")
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started  # polled every 50 ms: a slight overestimate
    cpu1 = cpu_seconds(manager.pid)
    await wait_idle(manager, deadline)
    after_rv = {(o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in orders.list()}
    after_aws = {a["metadata"]["name"]: a["metadata"]["resourceVersion"] for a in aws.list()}
    assert after_rv == before_rv and after_aws == before_aws, "a no-op resync wrote something"
    time_sum = metric(m1, "controller_runtime_reconcile_time_seconds_sum", controller="order") - metric(
        m0, "controller_runtime_reconcile_time_seconds_sum", controller="order"
    )
    return {
        "reconciles": int(done),
        "seconds": round(seconds, 2),
        "reconciles_per_second": round(done / seconds, 1),
        "mean_reconcile_ms": round(1000 * time_sum / done, 3) if done else None,
        "manager_cpu_ms_per_reconcile": round(1000 * (cpu1 - cpu0) / done, 3) if done else None,
        "writes": 0,
    }


async def run(
    cluster: LocalCluster,
    n_orders: int,
    extra_args: list[str],
    limit: float,
    profile: Path | None = None,
    *,
    no_op_resync: bool = True,
) -> dict[str, Any]:
    client = await connect(cluster.kubeconfig)
    requests = ApiRequests(cluster)
    manager: ManagerProcess | None = None
    informer_tasks: list[asyncio.Task[None]] = []
    try:
        await prepare(client)
        await asyncio.to_thread(cluster.admin().apply_manifest, DEPLOY_DIR / "controllers" / "rbac.yaml")
        # The Order controller's throughput is measured: the Endpoint controller (its probes and their
        # status writes fan out to every Order of an Endpoint) stays off, as in the earlier figures.
        manager = ManagerProcess(cluster, ["--no-endpoint-controller", *extra_args], profile=profile)
        log(f"manager: pid {manager.pid}: {' '.join(manager.argv[1:])}")
        ready_by = time.perf_counter() + 90
        while (await manager.get("/readyz"))[0] != 200 or not await leader(client):
            if manager.proc.poll() is not None or time.perf_counter() > ready_by:
                raise RuntimeError(f"manager not ready/leading:\n{manager.log_tail()}")
            await asyncio.sleep(0.25)
        log("manager ready and leading")

        orders: Informer[dict[str, Any]] = Informer(client, ORDERS, lambda raw: raw, namespace=NAMESPACE)
        aws: Informer[dict[str, Any]] = Informer(
            client, ARTIFACT_WORKFLOWS, lambda raw: raw, namespace=NAMESPACE
        )
        informer_tasks = [asyncio.create_task(i.run()) for i in (orders, aws)]
        await asyncio.wait_for(asyncio.gather(orders.wait_synced(), aws.wait_synced()), 30)

        pids = {name: cluster.component(name).pid() for name in cluster.component_names}
        pids_known = {name: pid for name, pid in pids.items() if pid is not None}
        pids_known["arc-controller-manager"] = manager.pid
        pids_known["benchmark"] = os.getpid()
        rss_before = rss_bytes(manager.pid)
        metrics_before = await manager.metrics()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids_known.items()}
        requests_before = await requests.snapshot()
        peak = [rss_before]
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(manager.pid, peak, stop_sampling))

        log(f"creating {n_orders} Orders x {ARTIFACTS} artifacts")
        started = time.perf_counter()
        progress = Progress(orders=n_orders)
        observer = asyncio.create_task(observe(orders, aws, progress, started, started + limit))
        counter = iter(range(n_orders))

        async def creator() -> None:
            for i in counter:
                await client.create(ORDERS, NAMESPACE, order(i))

        await asyncio.gather(*(creator() for _ in range(8)))
        created = time.perf_counter() - started
        log(f"created in {created:.1f}s; waiting for convergence")
        await observer
        converged = max(progress.all_workflows or 0.0, progress.all_status or 0.0)
        metrics_converged = await manager.metrics()
        cpu_converged = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids_known.items()}
        idle = await wait_idle(manager, started + limit) - started
        metrics_idle = await manager.metrics()
        requests_idle = await requests.snapshot()
        cpu_idle = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids_known.items()}
        stop_sampling.set()
        await sampler
        rss_after = rss_bytes(manager.pid)

        # correctness: exactly 3 ArtifactWorkflows per Order, each controlled by it
        uids = {o["metadata"]["name"]: o["metadata"]["uid"] for o in orders.list()}
        per_order: dict[str, int] = {}
        for aw in aws.list():
            refs = [r for r in aw["metadata"].get("ownerReferences") or [] if r.get("controller")]
            assert len(refs) == 1 and uids.get(refs[0]["name"]) == refs[0]["uid"], aw["metadata"]
            per_order[refs[0]["name"]] = per_order.get(refs[0]["name"], 0) + 1
        assert len(per_order) == n_orders and set(per_order.values()) == {ARTIFACTS}, "duplicates or gaps"

        def reconciles(m: dict[str, list[tuple[dict[str, str], float]]], result: str | None = None) -> float:
            labels = {"controller": "order"} | ({"result": result} if result else {})
            return metric(m, "controller_runtime_reconcile_total", **labels) - metric(
                metrics_before, "controller_runtime_reconcile_total", **labels
            )

        def delta(m: dict[str, list[tuple[dict[str, str], float]]], name: str, /, **labels: str) -> float:
            return metric(m, name, **labels) - metric(metrics_before, name, **labels)

        rec_converged = reconciles(metrics_converged)
        rec_idle = reconciles(metrics_idle)
        time_sum = delta(metrics_idle, "controller_runtime_reconcile_time_seconds_sum", controller="order")
        time_count = delta(
            metrics_idle, "controller_runtime_reconcile_time_seconds_count", controller="order"
        )
        log(f"converged in {converged:.1f}s, idle at {idle:.1f}s; no-op resync of every Order")
        resynced = (
            await resync(client, manager, orders, aws, n_orders, time.perf_counter() + limit)
            if no_op_resync
            else None
        )
        events = await client.list(Resource("", "v1", "events", "Event", True), NAMESPACE, limit=1)
        return {
            "orders": n_orders,
            "artifacts_per_order": ARTIFACTS,
            "artifact_workflows": sum(per_order.values()),
            "manager_argv": manager.argv[1:],
            "create_seconds": round(created, 2),
            "creates_per_second": round(n_orders / created, 1),
            "all_artifact_workflows_seconds": round(progress.all_workflows or 0.0, 2),
            "all_status_current_seconds": round(progress.all_status or 0.0, 2),
            "converged_seconds": round(converged, 2),
            "idle_seconds": round(idle, 2),
            "reconciles": {
                "until_converged": int(rec_converged),
                "until_idle": int(rec_idle),
                "per_second_until_converged": round(rec_converged / converged, 1),
                "per_second_until_idle": round(rec_idle / idle, 1),
                "by_result_until_idle": {
                    r: int(reconciles(metrics_idle, r))
                    for r in ("success", "error", "requeue", "requeue_after")
                },
                "errors_until_idle": int(
                    delta(metrics_idle, "controller_runtime_reconcile_errors_total", controller="order")
                ),
                "mean_reconcile_ms": round(1000 * time_sum / time_count, 2) if time_count else None,
                "per_order_until_idle": round(rec_idle / n_orders, 2),
            },
            "resync_no_op": resynced,
            "workqueue_adds_until_idle": int(delta(metrics_idle, "workqueue_adds_total", name="order")),
            "events_dropped_until_idle": int(delta(metrics_idle, "arc_events_dropped_total")),
            "api_requests_until_idle": (
                api_requests := request_delta(requests_before, requests_idle, n_orders)
            ),
            "requests_per_order_until_idle": requests_per_order(api_requests, n_orders),
            "cpu_ms_per_order_until_converged": {
                k: round(1000 * v / n_orders, 2) for k, v in cpu_converged.items() if v >= 0.005
            },
            "cpu_ms_per_order_until_converged_total": round(1000 * sum(cpu_converged.values()) / n_orders, 1),
            "manager_rss_mb_per_1000_orders": round((peak[0] - rss_before) / 2**20 * 1000 / n_orders, 1),
            "manager_rss_mb": {
                "before": round(rss_before / 2**20, 1),
                "peak": round(peak[0] / 2**20, 1),
                "after": round(rss_after / 2**20, 1),
            },
            "cpu_seconds_until_converged": {k: round(v, 2) for k, v in cpu_converged.items()},
            "cpu_seconds_until_idle": {k: round(v, 2) for k, v in cpu_idle.items()},
            "cpu_cores_busy_until_converged": round(sum(cpu_converged.values()) / converged, 2),
            "events_in_namespace": events.get("metadata", {}).get("remainingItemCount", 0)
            + len(events.get("items") or []),
            "progress_samples": progress.samples,
        }
    finally:
        for task in informer_tasks:
            task.cancel()
        await asyncio.gather(*informer_tasks, return_exceptions=True)
        if manager is not None:
            await manager.stop()
        await client.close()
        await requests.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 Orders instead of 1,000")
    parser.add_argument("--orders", type=int, help="number of Orders (overrides --quick)")
    parser.add_argument("--concurrency", type=int, help="the manager's --concurrency (default: its own)")
    parser.add_argument(
        "--artifact-workflow-controller",
        action="store_true",
        help="also run the ArtifactWorkflow controller (Argo Workflows are then created and run; the no-op"
        " resync is skipped, Argo keeps writing statuses)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to converge")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/controllers.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument("--profile", type=Path, help="run the manager under cProfile, stats to this file")
    parser.add_argument("--workers", type=int, default=1, help="arc-apiserver --workers (default 1)")
    parser.add_argument(
        "--h2", action="store_true", help="the aggregator reaches ARC over HTTP/2 through hack/haproxy.py"
    )
    args = parser.parse_args(argv)
    n_orders = args.orders or (200 if args.quick else 1000)
    extra = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    if not args.artifact_workflow_controller:
        extra.append(
            "--no-artifact-workflow-controller"
        )  # `make run` starts it; measured: the Order controller

    with work_directory("arc-bench-controllers-", keep=args.keep) as work_dir:
        cluster = LocalCluster(
            work_dir,
            controller_manager=False,
            arc_apiserver_args=worker_args(args.workers),
            h2_terminator=args.h2,
        )
        try:
            cluster.up()
            result = asyncio.run(
                run(
                    cluster,
                    n_orders,
                    extra,
                    limit=args.timeout,
                    profile=args.profile,
                    no_op_resync=not args.artifact_workflow_controller,
                )
            )
        finally:
            cluster.down()
    report = {
        **report_header("controllers", "quick" if n_orders <= 200 else "full"),
        "arc_workers": args.workers,
        "h2_terminator": args.h2,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k not in ("progress_samples", "manager_argv")}
    print(json.dumps(summary, indent=2))
    log(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
