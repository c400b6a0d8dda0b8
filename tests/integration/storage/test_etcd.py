"""What only real etcd can show: outages, the periodic compactor, metrics and spans."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from apiserver.storage.etcd import EtcdConfig, EtcdStorage
from apiserver.storage.interface import (
    CompactedError,
    EventType,
    KeyNotFoundError,
    ResourceVersionMatch,
    StorageUnavailableError,
)
from hack.etcd import EtcdServer
from tests.integration.conftest import start_etcd
from tests.integration.storage.conftest import unique_layout
from tests.unit.otel import recorded_spans

pytestmark = pytest.mark.integration


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of this test's own, which it may kill and restart."""
    server = start_etcd("etcd-outage", tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def outage_storage(own_etcd: EtcdServer) -> AsyncIterator[EtcdStorage]:
    config = EtcdConfig(
        endpoint=own_etcd.client_url, layout=unique_layout(), request_timeout=2.0, compaction_interval=0
    )
    async with EtcdStorage(config) as storage:
        yield storage


async def eventually(call: Callable[[], Awaitable[Any]]) -> Any:
    """Retry ``call`` while storage is unavailable (gRPC reconnects with a backoff of at most 2 s)."""
    deadline = time.monotonic() + 20.0
    while True:
        try:
            return await call()
        except StorageUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_etcd_outage_is_unavailable_never_not_found(
    own_etcd: EtcdServer, outage_storage: EtcdStorage
) -> None:
    storage = outage_storage
    layout = storage.layout
    key = layout.object_key("orders", "a", "ns")
    prefix = layout.resource_prefix("orders")
    await storage.create(key, b"v1")
    watcher = await storage.watch(prefix)

    await asyncio.to_thread(own_etcd.stop)
    operations: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: storage.get(key),
        "get missing": lambda: storage.get(layout.object_key("orders", "missing", "ns")),
        "create": lambda: storage.create(layout.object_key("orders", "b", "ns"), b"v"),
        "list": lambda: storage.list(prefix),
        "update": lambda: storage.guaranteed_update(key, try_update=lambda _: b"v2"),
        "delete": lambda: storage.delete(key),
        "current_revision": storage.current_revision,
        "watch": lambda: storage.watch(layout.resource_prefix("others")),
    }
    for name, operation in operations.items():
        with pytest.raises(StorageUnavailableError) as info:
            await operation()
        assert not isinstance(info.value, KeyNotFoundError), name

    await asyncio.to_thread(own_etcd.start, unsafe_no_fsync=True)
    assert (await eventually(lambda: storage.get(key))).value == b"v1"
    revision = await storage.create(layout.object_key("orders", "c", "ns"), b"after restart")
    async with asyncio.timeout(20):
        event = await anext(watcher)  # the shared watch reopened by itself
    assert (event.type, event.revision) == (EventType.ADDED, revision)
    await watcher.close()


async def test_periodic_compaction_compacts_one_interval_behind(etcd_server: EtcdServer) -> None:
    layout = unique_layout()
    config = EtcdConfig(
        endpoint=etcd_server.client_url,
        layout=layout,
        compaction_interval=0.3,
        compact_key=f"{layout.prefix}/compact_rev_key",
    )
    async with EtcdStorage(config) as storage:
        prefix = layout.resource_prefix("orders")
        old = await storage.create(layout.object_key("orders", "a", "ns"), b"v1")
        await storage.guaranteed_update(layout.object_key("orders", "a", "ns"), try_update=lambda _: b"v2")

        async def compacted() -> bool:
            try:
                await storage.list(prefix, revision=old, match=ResourceVersionMatch.EXACT)
            except CompactedError:
                return True
            return False

        async with asyncio.timeout(10):
            while not await compacted():  # noqa: ASYNC110 - polling etcd, there is no event to wait on
                await asyncio.sleep(0.1)
        assert [item.value for item in (await storage.list(prefix)).items] == [b"v2"]


async def test_requests_are_measured(etcd_server: EtcdServer) -> None:
    config = EtcdConfig(endpoint=etcd_server.client_url, layout=unique_layout(), compaction_interval=0)
    labels = {"operation": "create", "type": "orders.arc.opendefense.cloud"}
    before = REGISTRY.get_sample_value("etcd_request_duration_seconds_count", labels) or 0.0
    async with EtcdStorage(config) as storage:
        await storage.create(storage.layout.object_key("orders", "a", "ns"), b"v")
    assert REGISTRY.get_sample_value("etcd_request_duration_seconds_count", labels) == before + 1


async def test_each_etcd_call_is_a_span(etcd_server: EtcdServer) -> None:
    # The session's one recording provider (tests/unit/otel.py): OpenTelemetry's proxy tracers bind to the
    # first real provider installed in a process, so a provider of this test's own would capture the spans
    # of every later test in the same run.
    config = EtcdConfig(endpoint=etcd_server.client_url, layout=unique_layout(), compaction_interval=0)
    with recorded_spans() as recorded:
        async with EtcdStorage(config) as storage:
            key = storage.layout.object_key("orders", "a", "ns")
            await storage.create(key, b"v")
            with pytest.raises(KeyNotFoundError):
                await storage.get(storage.layout.object_key("orders", "missing", "ns"))
    spans = {span.name: span for span in recorded.all}
    assert spans["etcd.create"].attributes is not None
    assert spans["etcd.create"].attributes["etcd.key"] == key
    assert "etcd.get" in spans
