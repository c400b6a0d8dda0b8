"""kill -9 of ARC's etcd and of ARC's API server in the middle of creates and updates (issue 14's faults).

Every cycle: a bounded load (``faults.Load``: 4 workers, at most ``BUDGET`` answered operations each: 3
new objects each, then merge-patch updates and GETs of all of theirs) runs, the
component is killed with SIGKILL, started again on the same data and port, the load goes on until writes
are acknowledged again, then everything stored is compared with the ``Ledger``: every acknowledged write is
there (a later one whose answer was lost may have replaced it), no acknowledged object ever answered 404 or
another 4xx, reads never went back in time. Clients see 5xx or no answer at worst.

``make test`` runs ``CHAOS_CYCLES`` (default 2) cycles per component; ``make chaos`` 20 (marker ``chaos``).
A 3-member etcd cluster on loopback loses its leader under the same load.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from hack.arcapiserver import ArcApiServer
from hack.binaries import binary_path
from hack.etcd import EtcdServer
from hack.process import Component, free_port, pid_alive
from tests.integration.apiserver.bounded import ETCD_QUOTA, BoundedApiServer, start_small_etcd
from tests.integration.apiserver.conftest import raw_session
from tests.integration.apiserver.faults import Ledger, Load

pytestmark = pytest.mark.integration

BUDGET = 75
"""Answered operations per worker and cycle (4 workers: at most 300 per cycle)."""
SHORT_CYCLES = int(os.environ.get("CHAOS_CYCLES", "2"))
LONG_CYCLES = int(os.environ.get("CHAOS_LONG_CYCLES", "20"))
RECOVERY = 60.0


def kill9(component: Component) -> None:
    pid = component.pid()
    assert pid is not None and pid_alive(pid), f"{component.name} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"{component.name} survived SIGKILL"
        time.sleep(0.02)


@dataclass
class Pair:
    etcd: EtcdServer
    server: ArcApiServer
    session: aiohttp.ClientSession


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    etcd = EtcdServer.allocate("etcd-faults", tmp_path)
    await asyncio.to_thread(start_small_etcd, etcd)
    server = BoundedApiServer(
        tmp_path,
        etcd.client_url,
        name="arc-apiserver-faults",
        etcd_prefix="/arc-faults",
        extra_args=("--etcd-request-timeout=2",),
    )
    try:
        await asyncio.to_thread(server.start)
        async with raw_session(server) as session:
            yield Pair(etcd, server, session)
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(etcd.stop)


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out after {within:.0f}s waiting for {what}"
        await asyncio.sleep(0.1)


async def fault_cycle(
    load: Load,
    kill: Callable[[], None],
    restart: Callable[[], None],
    *,
    down_for: float = 0.5,
    during_outage: Callable[[], object] | None = None,
) -> None:
    """The load, the kill in its middle, the restart, and the load until writes are acknowledged again."""
    ledger = load.ledger
    task = asyncio.create_task(load.run(BUDGET))
    try:
        await until(lambda: ledger.acks > 0 or task.done(), 30, "the first acknowledged write")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(kill)
        await asyncio.sleep(down_for)
        if during_outage is not None:
            await asyncio.to_thread(during_outage)
        await asyncio.to_thread(restart)
        after = ledger.acks
        await until(lambda: ledger.acks >= after + 5 or task.done(), RECOVERY, "writes acknowledged again")
    finally:
        load.stop.set()
        await task


async def verify(load: Load) -> None:
    """With the server serving again: everything acknowledged is stored, and nothing answered a 4xx."""
    deadline = time.monotonic() + RECOVERY
    while True:
        try:
            stored = await load.stored()
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the server did not list again after the fault"
            await asyncio.sleep(0.2)
    problems = load.ledger.check_stored(stored)
    assert not load.ledger.violations, load.ledger.violations[:10]
    assert not problems, problems[:10]


async def run_cycles(pair: Pair, which: str, cycles: int) -> Ledger:
    namespace = f"fault-{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    component = pair.etcd.component if which == "etcd" else pair.server.component

    def restart() -> None:
        if which == "etcd":
            start_small_etcd(pair.etcd)
        else:
            pair.server.start()

    for cycle in range(cycles):
        load = Load(
            pair.session, pair.server.url, namespace, ledger, tag=f"c{cycle}", objects=3 * (cycle + 2)
        )
        await fault_cycle(load, lambda: kill9(component), restart)
        await verify(load)
    answers = dict(sorted(ledger.statuses.items()))
    print(f"{which}: {cycles} kills, {len(ledger.acked)} objects, {ledger.acks} acks, answers {answers}")
    assert len(ledger.acked) >= 4 * (cycles + 1), "the load did not get its objects created"
    return ledger


async def test_etcd_kill9_under_load_loses_no_acknowledged_write(pair: Pair) -> None:
    await run_cycles(pair, "etcd", SHORT_CYCLES)


async def test_apiserver_kill9_under_load_loses_no_acknowledged_write(pair: Pair) -> None:
    await run_cycles(pair, "apiserver", SHORT_CYCLES)


@pytest.mark.chaos
async def test_long_etcd_kill9(pair: Pair) -> None:
    await run_cycles(pair, "etcd", LONG_CYCLES)


@pytest.mark.chaos
async def test_long_apiserver_kill9(pair: Pair) -> None:
    await run_cycles(pair, "apiserver", LONG_CYCLES)


# ---- a 3-member etcd cluster loses its leader -------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    work_dir: Path
    client_port: int
    peer_port: int

    @property
    def component(self) -> Component:
        return Component(self.name, self.work_dir)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def argv(self, cluster: str) -> list[str]:
        return [
            str(binary_path("etcd")),
            f"--name={self.name}",
            f"--data-dir={self.work_dir / 'data' / self.name}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={cluster}",
            "--initial-cluster-token=arc-faults",
            "--initial-cluster-state=new",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--unsafe-no-fsync",
            "--heartbeat-interval=50",
            "--election-timeout=500",
            f"--quota-backend-bytes={ETCD_QUOTA}",  # its mmap, under make chaos's ulimit -v
        ]

    def status(self) -> dict[str, str]:
        """``/v3/maintenance/status`` over the gRPC gateway: this member's id and its leader's."""
        request = urllib.request.Request(
            f"{self.client_url}/v3/maintenance/status", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=2) as resp:
            body = orjson.loads(resp.read())
        return {"member": body["header"]["member_id"], "leader": body.get("leader", "")}


@dataclass
class EtcdCluster:
    members: list[Member]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self, member: Member) -> None:
        member.component.start(member.argv(self.initial_cluster))

    def leader(self, among: list[Member] | None = None) -> Member | None:
        for member in among or self.members:
            try:
                status = member.status()
            except OSError:
                continue
            if status["leader"] and status["leader"] == status["member"]:
                return member
        return None

    def wait_for_leader(self, among: list[Member] | None = None, timeout: float = 30) -> Member:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader(among)
            if leader is not None:
                return leader
            time.sleep(0.1)
        raise AssertionError("no etcd leader elected")


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    binary_path("etcd")
    cluster = EtcdCluster([Member(f"etcd-m{i}", tmp_path, free_port(), free_port()) for i in range(3)])
    try:
        for member in cluster.members:
            (member.work_dir / "data" / member.name).mkdir(parents=True, exist_ok=True)
            cluster.start(member)
        cluster.wait_for_leader()
        yield cluster
    finally:
        for member in cluster.members:
            member.component.stop()


@pytest.fixture
async def cluster_pair(etcd_cluster: EtcdCluster, tmp_path: Path) -> AsyncIterator[tuple[EtcdCluster, Pair]]:
    """ARC's API server on the 3 members, the current leader first in ``--etcd-servers``."""
    leader = etcd_cluster.wait_for_leader()
    ordered = [leader, *(m for m in etcd_cluster.members if m is not leader)]
    server = BoundedApiServer(
        tmp_path,
        ",".join(m.client_url for m in ordered),
        name="arc-apiserver-cluster",
        etcd_prefix="/arc-cluster",
        extra_args=("--etcd-request-timeout=2",),
    )
    try:
        await asyncio.to_thread(server.start)
        async with raw_session(server) as session:
            # EtcdServer is only used for its name in Pair; the cluster is driven through etcd_cluster.
            yield etcd_cluster, Pair(None, server, session)  # type: ignore[arg-type]
    finally:
        await asyncio.to_thread(server.stop)


async def leader_loss_cycles(cluster_pair: tuple[EtcdCluster, Pair], cycles: int) -> None:
    """The leader (first of ``--etcd-servers``) is killed and comes back after a new one is elected:
    every acknowledged write is stored, clients saw 5xx at worst."""
    cluster, pair = cluster_pair
    namespace = f"fault-{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    for cycle in range(cycles):
        leader = cluster.wait_for_leader()
        others = [m for m in cluster.members if m is not leader]
        load = Load(
            pair.session, pair.server.url, namespace, ledger, tag=f"c{cycle}", objects=3 * (cycle + 2)
        )
        await fault_cycle(
            load,
            lambda leader=leader: kill9(leader.component),  # type: ignore[misc]
            lambda leader=leader: cluster.start(leader),  # type: ignore[misc]
            during_outage=lambda others=others: cluster.wait_for_leader(others),  # type: ignore[misc]
        )
        await verify(load)
    print(f"etcd cluster: {cycles} leader kills, answers {dict(sorted(ledger.statuses.items()))}")


async def test_etcd_cluster_loses_its_leader_under_load(cluster_pair: tuple[EtcdCluster, Pair]) -> None:
    await leader_loss_cycles(cluster_pair, SHORT_CYCLES)


@pytest.mark.chaos
async def test_long_etcd_cluster_leader_loss(cluster_pair: tuple[EtcdCluster, Pair]) -> None:
    await leader_loss_cycles(cluster_pair, LONG_CYCLES)


async def test_etcd_cluster_serves_writes_while_its_old_leader_is_down(
    cluster_pair: tuple[EtcdCluster, Pair],
) -> None:
    """Failover: with the first of ``--etcd-servers`` (the leader) killed and not restarted, writes are
    acknowledged again through the other two members, which keep quorum."""
    cluster, pair = cluster_pair
    namespace = f"fault-{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    leader = cluster.wait_for_leader()
    others = [m for m in cluster.members if m is not leader]
    load = Load(pair.session, pair.server.url, namespace, ledger, tag="failover")
    task = asyncio.create_task(load.run(BUDGET))
    try:
        await until(lambda: ledger.acks > 0 or task.done(), 30, "the first acknowledged write")
        await asyncio.to_thread(kill9, leader.component)
        await asyncio.to_thread(cluster.wait_for_leader, others)
        after = ledger.acks
        await until(lambda: ledger.acks >= after + 10, 20, "writes acknowledged with the old leader down")
    finally:
        load.stop.set()
        await task
        cluster.start(leader)
    await verify(load)
