"""ARC's etcd behind mutual TLS, with every endpoint of ``--etcd-servers`` used (issue 14).

Real etcd started with ``--client-cert-auth --trusted-ca-file --cert-file --key-file`` (certificates from
``hack.pki``) and the real ``arc-apiserver`` with kube's flags ``--etcd-cafile``, ``--etcd-certfile`` and
``--etcd-keyfile``:
- with its client certificate ARC serves; without one, etcd refuses it (and anyone else who reaches the port);
- two dead endpoints ahead of a live one in ``--etcd-servers``: ARC serves;
- a 3-member cluster on loopback loses the member ARC talks to: ARC fails over and keeps serving, watches too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer, EtcdTLS, start_cluster
from hack.process import free_port, pid_alive
from tests.integration.apiserver.conftest import GV_PATH, RawClient, order, raw_session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> EtcdTLS:
    return EtcdTLS.create(tmp_path_factory.mktemp("etcd-pki"), "etcd-it")


@pytest.fixture(scope="module")
def tls_etcd(tls: EtcdTLS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer.allocate("etcd-tls", tmp_path_factory.mktemp("etcd-tls"), tls=tls)
    server.start(unsafe_no_fsync=True)
    yield server
    server.stop()


def tls_flags(tls: EtcdTLS, *urls: str, client_cert: bool = True) -> tuple[str, ...]:
    flags = [
        f"--etcd-servers={','.join(urls)}",
        f"--etcd-cafile={tls.ca.cert_file}",
        "--etcd-request-timeout=3",
    ]
    if client_cert:
        flags += [f"--etcd-certfile={tls.client.cert_file}", f"--etcd-keyfile={tls.client.key_file}"]
    return tuple(flags)


async def serving(work: Path, name: str, flags: tuple[str, ...]) -> ArcApiServer:
    server = ArcApiServer(work, "unused", name=name, etcd_prefix=f"/{name}", extra_args=flags)
    await asyncio.to_thread(server.start)
    return server


async def create_and_read(raw: RawClient, namespace: str, name: str) -> None:
    orders = f"{GV_PATH}/namespaces/{namespace}/orders"
    created = await raw.request("POST", orders, json=order(name, namespace))
    assert created.status == 201, created.body
    got = await raw.get(f"{orders}/{name}")
    assert got.status == 200 and got.body["metadata"]["uid"] == created.body["metadata"]["uid"]


def refused(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5, context=context):
            return False
    except (urllib.error.URLError, ssl.SSLError, ConnectionError):
        return True


def test_etcd_refuses_clients_without_a_certificate(tls: EtcdTLS, tls_etcd: EtcdServer) -> None:
    assert not refused(tls_etcd.client_url, tls.client_context())
    assert refused(tls_etcd.client_url, ssl.create_default_context(cafile=str(tls.ca.cert_file)))
    assert refused(tls_etcd.client_url.replace("https://", "http://"), None)


async def test_arc_serves_with_its_client_certificate(
    tls: EtcdTLS, tls_etcd: EtcdServer, tmp_path: Path
) -> None:
    server = await serving(tmp_path, "arc-mtls", tls_flags(tls, tls_etcd.client_url))
    try:
        async with raw_session(server) as session:
            raw = RawClient(session, server.url)
            await create_and_read(raw, "mtls", "o1")
            assert (await raw.get("/readyz")).status == 200
    finally:
        await asyncio.to_thread(server.stop)


async def test_arc_without_a_client_certificate_is_refused(
    tls: EtcdTLS, tls_etcd: EtcdServer, tmp_path: Path
) -> None:
    server = ArcApiServer(
        tmp_path,
        "unused",
        name="arc-no-cert",
        etcd_prefix="/arc-no-cert",
        extra_args=tls_flags(tls, tls_etcd.client_url, client_cert=False),
    )
    server.ensure_credentials()
    server.component.start(server.argv())
    try:
        await asyncio.to_thread(
            server.component.wait_until,
            lambda: (server.cert_dir / "apiserver.crt").exists() and _answers(server),
            timeout=30,
            what="listening",
        )
        async with raw_session(server) as session:
            raw = RawClient(session, server.url)
            ready = await raw.get("/readyz", params={"verbose": "true"})
            assert ready.status >= 500 and "etcd" in str(ready.body)
            created = await raw.request("POST", f"{GV_PATH}/namespaces/x/orders", json=order("o", "x"))
            assert created.status in (503, 504), created.body
    finally:
        await asyncio.to_thread(server.stop)


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "etcd survived SIGKILL"
        time.sleep(0.05)


def _answers(server: ArcApiServer) -> bool:
    with socket.create_connection(("127.0.0.1", server.port), timeout=1):
        return True


async def test_two_dead_endpoints_before_a_live_one(
    tls: EtcdTLS, tls_etcd: EtcdServer, tmp_path: Path
) -> None:
    dead = [f"https://127.0.0.1:{free_port()}", f"https://127.0.0.1:{free_port()}"]
    server = await serving(tmp_path, "arc-failover", tls_flags(tls, *dead, tls_etcd.client_url))
    try:
        async with raw_session(server) as session:
            raw = RawClient(session, server.url)
            for i in range(10):
                await create_and_read(raw, "failover", f"o{i}")
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def cluster(tls: EtcdTLS, tmp_path: Path) -> AsyncIterator[list[EtcdServer]]:
    members = await asyncio.to_thread(start_cluster, "etcd-m", tmp_path / "cluster", tls=tls)
    try:
        yield members
    finally:
        for member in members:
            await asyncio.to_thread(member.stop)


async def test_a_cluster_member_dies_and_arc_keeps_serving(
    tls: EtcdTLS, cluster: list[EtcdServer], tmp_path: Path
) -> None:
    server = await serving(tmp_path, "arc-cluster", tls_flags(tls, *(m.client_url for m in cluster)))
    try:
        async with raw_session(server) as session:
            raw = RawClient(session, server.url)
            orders = f"{GV_PATH}/namespaces/cluster/orders"
            await create_and_read(raw, "cluster", "before")
            listed = await raw.get(orders)
            watch = await session.get(
                f"{server.url}{orders}",
                params={"watch": "true", "resourceVersion": listed.body["metadata"]["resourceVersion"]},
            )
            assert watch.status == 200
            pid = cluster[0].component.pid()  # the member ARC uses first
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await asyncio.to_thread(_wait_gone, pid)
            # after the switch, every request succeeds; statuses before it are 5xx at worst, never 404
            statuses: list[int] = []
            deadline = time.monotonic() + 30
            while True:
                reply = await raw.request("POST", orders, json=order(f"after-{len(statuses)}", "cluster"))
                statuses.append(reply.status)
                if reply.status == 201:
                    break
                assert reply.status in (503, 504), reply.body
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.2)
            for i in range(10):
                await create_and_read(raw, "cluster", f"steady-{i}")
            # the watch (re-established on a live member) delivers what was written after the kill
            seen: set[str] = set()
            async with asyncio.timeout(30):
                while "steady-9" not in seen:
                    line = await watch.content.readline()
                    assert line, "watch ended"
                    if b'"ADDED"' in line:
                        seen.add(line.split(b'"name":"', 1)[1].split(b'"', 1)[0].decode())
            watch.close()
            assert "after-" + str(len(statuses) - 1) in seen
    finally:
        await asyncio.to_thread(server.stop)
