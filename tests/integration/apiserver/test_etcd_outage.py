"""Killing etcd while clients read: 5xx (never 404), /readyz fails, and the server recovers by itself.

Uses an etcd and an ``arc-apiserver`` of its own (the session's pair stays untouched): etcd is killed with
SIGKILL, then restarted on the same data directory and ports; the API server process is never restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer
from hack.process import pid_alive
from tests.integration.apiserver.conftest import GV_PATH, RawClient, async_wait_for, order, raw_session
from tests.integration.conftest import start_etcd

pytestmark = pytest.mark.integration

ETCD_REQUEST_TIMEOUT = 2.0
WAIT = 60.0


@dataclass
class Pair:
    etcd: EtcdServer
    server: ArcApiServer
    raw: RawClient


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    etcd = await asyncio.to_thread(start_etcd, "etcd-outage", tmp_path)
    server = ArcApiServer(
        tmp_path,
        etcd.client_url,
        name="arc-apiserver-outage",
        etcd_prefix="/arc-outage",
        extra_args=(f"--etcd-request-timeout={ETCD_REQUEST_TIMEOUT}", "--watch-bookmark-interval=1"),
    )
    try:
        await asyncio.to_thread(server.start)
        async with raw_session(server) as session:
            yield Pair(etcd, server, RawClient(session, server.url))
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(etcd.stop)


def kill_etcd(etcd: EtcdServer) -> None:
    pid = etcd.component.pid()
    assert pid is not None and pid_alive(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "etcd survived SIGKILL"
        time.sleep(0.05)


async def test_reads_fail_with_5xx_while_etcd_is_down_and_recover(pair: Pair, namespace: str) -> None:
    raw = pair.raw
    orders = f"{GV_PATH}/namespaces/{namespace}/orders"
    created = await raw.request("POST", orders, json=order("survivor", namespace))
    assert created.status == 201, created.body
    got = await raw.get(f"{orders}/survivor")
    assert got.status == 200
    listed = await raw.get(orders)
    assert [item["metadata"]["name"] for item in listed.body["items"]] == ["survivor"]
    assert (await raw.get("/readyz")).status == 200

    # A client watching across the outage (from the list's revision).
    watch = await raw.session.get(
        f"{raw.base_url}{orders}",
        params={"watch": "true", "resourceVersion": listed.body["metadata"]["resourceVersion"]},
    )
    assert watch.status == 200
    try:
        await asyncio.to_thread(kill_etcd, pair.etcd)

        reads: list[tuple[str, int, Any]] = []
        for path in (f"{orders}/survivor", orders, f"{orders}/never-existed", f"{orders}/survivor", orders):
            started = time.monotonic()
            reply = await raw.get(path, request_timeout=30)
            elapsed = time.monotonic() - started
            reads.append((path, reply.status, reply.body))
            assert reply.status in (503, 504), (path, reply.status, reply.body)
            assert reply.body["kind"] == "Status" and reply.body["code"] == reply.status
            assert reply.body["reason"] in ("ServiceUnavailable", "Timeout"), reply.body
            assert elapsed < ETCD_REQUEST_TIMEOUT + 10, f"{path} took {elapsed:.1f}s"
        assert all(status != 404 for _, status, _ in reads)

        ready = await raw.get("/readyz", params={"verbose": "true"})
        assert ready.status >= 500, ready.body
        assert "etcd" in str(ready.body)

        # A write while etcd is down is not lost silently either.
        write = await raw.request("POST", orders, json=order("during-outage", namespace), request_timeout=30)
        assert write.status in (503, 504), write.body

        # etcd comes back on the same data directory and ports; the API server is not restarted.
        await asyncio.to_thread(pair.etcd.start, unsafe_no_fsync=True)

        async def survivor_readable() -> bool:
            return (await raw.get(f"{orders}/survivor", request_timeout=30)).status == 200

        await async_wait_for(survivor_readable, within=WAIT, what="GET to answer 200 again", interval=0.2)
        again = await raw.get(f"{orders}/survivor")
        assert again.body == got.body
        assert (await raw.get(f"{orders}/never-existed")).status == 404
        assert (await raw.get("/readyz")).status == 200
        listed_again = await raw.get(orders)
        assert [item["metadata"]["name"] for item in listed_again.body["items"]] == ["survivor"]

        # The watch opened before the outage still delivers changes made after it.
        later = await raw.request("POST", orders, json=order("after-outage", namespace))
        assert later.status == 201, later.body
        async with asyncio.timeout(WAIT):
            while True:
                line = await watch.content.readline()
                assert line, "the watch ended during the outage"
                event = orjson.loads(line)
                if event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "after-outage":
                    break
                assert event["type"] in ("BOOKMARK", "ADDED", "MODIFIED"), event
    finally:
        watch.close()
