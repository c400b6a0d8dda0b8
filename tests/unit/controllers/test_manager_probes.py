"""The manager's listeners: /metrics and the probes, together (local stack) or apart (a pod's :8080/:8081)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from controllers.kube.client import JSON
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import Resource
from controllers.runtime import Manager

CM = Resource("", "v1", "configmaps", "ConfigMap", True)


class GatedClient(FakeKubeClient):
    """Lists wait for `release`: the informer has not synced until then."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def list(self, resource: Resource, namespace: str | None = None, **kw: Any) -> JSON:
        await self.release.wait()
        return await super().list(resource, namespace, **kw)


async def get(port: int | None, path: str) -> tuple[int, str]:
    assert port is not None
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


async def started(manager: Manager) -> AsyncIterator[Manager]:
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    async with asyncio.timeout(5):
        while manager.health_bound_port is None and manager.bound_port is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    try:
        yield manager
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def apart() -> AsyncIterator[tuple[Manager, GatedClient]]:
    client = GatedClient()
    manager = Manager(client, bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")
    manager.informer(CM, lambda raw: raw)
    async for m in started(manager):
        yield m, client


async def test_probes_apart_from_metrics_and_readyz_waits_for_caches(
    apart: tuple[Manager, GatedClient],
) -> None:
    manager, client = apart
    assert manager.health_bound_port != manager.bound_port
    status, text = await get(manager.health_bound_port, "/readyz")
    assert status == 500
    assert text == "[-]informer-sync failed: reason withheld\nhealthz check failed\n"
    assert await get(manager.health_bound_port, "/readyz/informer-sync") == (
        500,
        "internal server error: informers not synced: configmaps\n",
    )
    for live in ("/healthz", "/livez"):
        assert await get(manager.health_bound_port, live) == (200, "ok")
    assert await get(manager.health_bound_port, "/healthz?verbose") == (
        200,
        "[+]ping ok\nhealthz check passed\n",
    )
    client.release.set()
    async with asyncio.timeout(5):
        while (await get(manager.health_bound_port, "/readyz"))[0] != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert await get(manager.health_bound_port, "/readyz?verbose") == (
        200,
        "[+]informer-sync ok\nhealthz check passed\n",
    )
    assert await get(manager.health_bound_port, "/readyz?exclude=nope&verbose") == (
        200,
        '[+]informer-sync ok\nwarn: some health checks cannot be excluded: no matches for "nope"\n'
        "healthz check passed\n",
    )
    status, text = await get(manager.bound_port, "/metrics")
    assert status == 200 and "# TYPE" in text
    assert (await get(manager.bound_port, "/readyz"))[0] == 404
    assert (await get(manager.health_bound_port, "/metrics"))[0] == 404


async def test_probes_share_the_metrics_listener_by_default() -> None:
    client = GatedClient()
    client.release.set()
    async for manager in started(Manager(client)):
        assert manager.health_bound_port == manager.bound_port
        assert await get(manager.bound_port, "/readyz") == (200, "ok")
        assert (await get(manager.bound_port, "/metrics"))[0] == 200


async def test_zero_turns_a_listener_off() -> None:
    client = GatedClient()
    async for manager in started(Manager(client, bind_address="0", health_probe_bind_address="127.0.0.1:0")):
        assert manager.bound_port is None and manager.health_bound_port is not None
