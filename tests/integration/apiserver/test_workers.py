"""``--workers 2`` on the real etcd: the workers are replicas of one another (issue 17, direction 2).

Which worker serves a connection is read from the kernel: the server side of the client's TCP connection
(``/proc/net/tcp``) is a socket inode that exactly one worker process holds as a file descriptor. So the
test knows that its watch is served by one worker and its writes by the other, kills the watch's worker,
and resumes the watch from the last resourceVersion it saw on the restarted worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer
from hack.process import free_port, pid_alive
from tests.integration.apiserver.conftest import (
    GV_PATH,
    admin_token,
    async_wait_for,
    order,
    ssl_context,
    unique_namespace,
)


@pytest.fixture(scope="module")
def workers_server(
    etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArcApiServer]:
    server = ArcApiServer(
        tmp_path_factory.mktemp("arc-workers"),
        etcd_server.client_url,
        name="arc-apiserver-workers",
        etcd_prefix="/arc-workers",
        extra_args=("--workers=2", "--watch-bookmark-interval=1", "--log-level=WARNING"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker_pids(server: ArcApiServer) -> set[int]:
    parent = server.component.pid()
    assert parent is not None
    children: set[int] = set()
    for task in os.listdir(f"/proc/{parent}/task"):
        with open(f"/proc/{parent}/task/{task}/children") as handle:
            children.update(int(pid) for pid in handle.read().split())
    return children


def serving_pid(server: ArcApiServer, client_port: int) -> int:
    """The worker process that holds the server side of the connection from ``client_port``."""
    inode = None
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server.port and remote_port == client_port:
                inode = fields[9]
    assert inode is not None, f"no server socket for client port {client_port}"
    target = f"socket:[{inode}]"
    for pid in worker_pids(server):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except FileNotFoundError:
                continue
    raise AssertionError(f"no worker holds {target}")


class OneConnection(aiohttp.TCPConnector):
    """A connector of one connection that remembers its local port (the key to its server socket)."""

    local_port = 0

    def __init__(self, server: ArcApiServer) -> None:
        super().__init__(ssl=ssl_context(server), limit=1)

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        protocol = await super()._create_connection(*args, **kwargs)
        self.local_port = protocol.transport.get_extra_info("sockname")[1]
        return protocol


class Pinned:
    """One keep-alive connection (``limit=1``) and the worker serving it, checked on every request."""

    def __init__(self, server: ArcApiServer) -> None:
        self.server = server
        self.connector = OneConnection(server)
        self.session = aiohttp.ClientSession(
            connector=self.connector, headers={"Authorization": f"Bearer {admin_token(server)}"}
        )
        self.pid: int | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, int]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.session.request(method, self.server.url + path, data=data, headers=headers) as resp:
            payload = orjson.loads(await resp.read())
        pid = serving_pid(self.server, self.connector.local_port)
        if self.pid is None:
            self.pid = pid
        assert pid == self.pid, "the keep-alive connection moved to another worker"
        return resp.status, payload, pid

    async def close(self) -> None:
        await self.session.close()


async def pinned_to(server: ArcApiServer, want: int, *, attempts: int = 60) -> Pinned:
    """A connection the kernel gave to worker ``want`` (new connections until one lands there)."""
    for _ in range(attempts):
        pinned = Pinned(server)
        await pinned.request("GET", GV_PATH)
        if pinned.pid == want:
            return pinned
        await pinned.close()
    raise AssertionError(f"no connection reached worker {want} in {attempts} attempts")


class Watch:
    """A watch of Orders in one namespace; ``served_by`` is the worker holding its connection."""

    def __init__(self, server: ArcApiServer, namespace: str, resource_version: str) -> None:
        self.server, self.namespace, self.resource_version = server, namespace, resource_version
        self.connector = OneConnection(server)
        self.session = aiohttp.ClientSession(
            connector=self.connector, headers={"Authorization": f"Bearer {admin_token(server)}"}
        )
        self.response: aiohttp.ClientResponse | None = None
        self.served_by = 0

    async def open(self) -> None:
        self.response = await self.session.get(
            f"{self.server.url}{GV_PATH}/namespaces/{self.namespace}/orders",
            params={"watch": "true", "resourceVersion": self.resource_version, "allowWatchBookmarks": "true"},
        )
        assert self.response.status == 200
        self.served_by = serving_pid(self.server, self.connector.local_port)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """ADDED/MODIFIED/DELETED events until the stream ends (bookmarks skipped, positions kept)."""
        assert self.response is not None
        try:
            async for line in self.response.content:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                assert event["type"] != "ERROR", event
                self.resource_version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    yield event
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionResetError):
            return

    async def close(self) -> None:
        if self.response is not None:
            self.response.close()
        await self.session.close()


async def collect(watch: Watch, count: int, *, within: float = 30.0) -> list[tuple[str, str]]:
    """``count`` events as ``(name, resourceVersion)`` in the order the watch delivered them."""
    seen: list[tuple[str, str]] = []

    async def run() -> None:
        async for event in watch.events():
            assert event["type"] == "ADDED", event
            meta = event["object"]["metadata"]
            seen.append((meta["name"], meta["resourceVersion"]))
            if len(seen) == count:
                return

    await asyncio.wait_for(run(), within)
    return seen


async def test_watch_on_one_worker_sees_writes_through_another_without_gap_across_its_restart(
    workers_server: ArcApiServer,
) -> None:
    server = workers_server
    namespace = unique_namespace()
    first, second = sorted(worker_pids(server))
    writer = await pinned_to(server, second)
    watches: list[Watch] = []
    try:
        status, listed, _ = await writer.request("GET", f"{GV_PATH}/namespaces/{namespace}/orders")
        assert status == 200
        start_rv = listed["metadata"]["resourceVersion"]
        for _ in range(60):  # a watch whose connection the kernel gave to the other worker
            watch = Watch(server, namespace, start_rv)
            watches.append(watch)
            await watch.open()
            if watch.served_by == first:
                break
        assert watch.served_by == first

        async def create(names: list[str]) -> list[tuple[str, str]]:
            created = []
            for name in names:
                status, body, pid = await writer.request(
                    "POST", f"{GV_PATH}/namespaces/{namespace}/orders", order(name, namespace)
                )
                assert status == 201, body
                assert pid == second
                created.append((name, body["metadata"]["resourceVersion"]))
            return created

        before = await create([f"before-{i:02d}" for i in range(15)])
        assert await collect(watch, len(before)) == before  # every write, in order, same resourceVersions

        os.kill(first, signal.SIGKILL)  # the watch's worker dies; writes go on through the other
        during = await create([f"during-{i:02d}" for i in range(15)])
        assert [event async for event in watch.events()] == []  # the stream ended with its worker

        restarted = await async_wait_for(
            lambda: next(iter(worker_pids(server) - {first, second}), None), within=30, what="a new worker"
        )
        for _ in range(60):  # resume from the last resourceVersion seen, on the restarted worker
            resumed = Watch(server, namespace, watch.resource_version)
            watches.append(resumed)
            try:
                await resumed.open()
            except (AssertionError, aiohttp.ClientError):
                await asyncio.sleep(0.2)  # the new worker's socket may not be listening yet
                continue
            if resumed.served_by == restarted:
                break
        assert resumed.served_by == restarted
        after = await create([f"after-{i:02d}" for i in range(10)])
        delivered = await collect(resumed, len(during) + len(after))
        assert delivered == during + after  # no gap, no duplicate, in etcd's order
        revisions = [int(rv) for _, rv in before + delivered]
        assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    finally:
        for w in watches:
            await w.close()
        await writer.close()


def test_sigterm_drains_every_worker_and_the_supervisor_exits(
    etcd_server: EtcdServer, tmp_path: Path
) -> None:
    server = ArcApiServer(
        tmp_path, etcd_server.client_url, etcd_prefix="/arc-workers-stop", extra_args=("--workers=2",)
    )
    server.start()
    parent = server.component.pid()
    workers = worker_pids(server)
    assert len(workers) == 2
    sockets = metrics_socket_dirs(workers)
    assert len(sockets) == 1, f"the workers' metrics sockets are not in one directory: {sockets}"
    server.component.stop(timeout=20)
    assert parent is not None and not pid_alive(parent)
    assert not any(pid_alive(pid) for pid in workers)
    log = server.component.log_file.read_text()
    assert log.count("shutting down") == 2, log[-2000:]
    assert "killing it" not in log
    assert not any(d.exists() for d in sockets), "the workers' metrics directory outlived the server"


def test_a_worker_that_cannot_start_fails_the_start(etcd_server: EtcdServer, tmp_path: Path) -> None:
    """A port taken by a socket without SO_REUSEPORT: the workers cannot bind, the supervisor exits 1."""
    port = free_port()
    (tmp_path / "tokens.csv").write_text("token,user,uid\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "apiserver",
                "--workers=2",
                f"--etcd-servers={etcd_server.client_url}",
                "--etcd-prefix=/arc-workers-fail",
                f"--secure-port={port}",
                "--standalone",
                f"--token-auth-file={tmp_path / 'tokens.csv'}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "worker exited before serving" in proc.stderr
    assert time.monotonic() - started < 30


def metrics_socket_dirs(pids: set[int]) -> set[Path]:
    """The directories of the ``worker-<i>.sock`` metrics sockets these processes have bound."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    dirs: set[Path] = set()
    with open("/proc/net/unix") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            if len(fields) == 8 and fields[6] in inodes and fields[7].endswith(".sock"):
                dirs.add(Path(fields[7]).parent)
    return dirs


async def test_every_scrape_reads_every_worker_labelled(workers_server: ArcApiServer) -> None:
    """Any worker a scrape reaches answers with both workers' metrics, each sample labelled `worker`; the
    requests made on one worker's connection count on that worker only, and counters never go back."""
    from prometheus_client.parser import text_string_to_metric_families

    server = workers_server
    await async_wait_for(lambda: len(worker_pids(server)) == 2 or None, within=60, what="two workers")
    first, _ = sorted(worker_pids(server))
    pinned = await pinned_to(server, first)
    headers = {"Authorization": f"Bearer {admin_token(server)}"}

    async def scrape() -> tuple[int, dict[str, float], set[str]]:
        """(the worker that answered, requests counted per worker label, the workers of process RSS)"""
        async with aiohttp.ClientSession(
            connector=OneConnection(server), headers=headers
        ) as session:  # a new connection: any worker
            connector = session.connector
            assert isinstance(connector, OneConnection)
            async with session.get(server.url + "/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=")
                text = await resp.text()
            answered = serving_pid(server, connector.local_port)
        requests: dict[str, float] = {}
        rss: set[str] = set()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "apiserver_request_total":
                    worker = sample.labels["worker"]
                    requests[worker] = requests.get(worker, 0.0) + sample.value
                if sample.name == "process_resident_memory_bytes":
                    rss.add(sample.labels["worker"])
        return answered, requests, rss

    try:
        answered_by: set[int] = set()
        scrapes: list[dict[str, float]] = []
        for round_ in range(12):
            if round_ % 3 == 0:
                for _ in range(20):  # resource requests on the pinned worker's connection only
                    status, _, _ = await pinned.request("GET", f"{GV_PATH}/namespaces/default/orders")
                    assert status == 200
            answered, requests, rss = await scrape()
            answered_by.add(answered)
            assert rss == {"0", "1"}, f"a scrape did not read both workers: {rss}"
            for worker, count in (scrapes[-1] if scrapes else {}).items():  # a worker that served requests
                assert requests.get(worker, 0.0) >= count, f"{worker} went back: {scrapes[-1]} → {requests}"
            scrapes.append(requests)
        # 60 GETs on the pinned worker's connection after the first scrape: they count on one worker only,
        # whichever worker answered each scrape.
        grown = sorted(scrapes[-1].get(w, 0.0) - scrapes[0].get(w, 0.0) for w in ("0", "1"))
        assert grown[1] >= 60 and grown[0] < 30, scrapes
        assert len(answered_by) == 2, "every scrape reached the same worker: 12 new connections, 1 worker"
    finally:
        await pinned.close()
