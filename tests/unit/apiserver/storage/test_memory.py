"""Memory-only behaviour: the unavailability switch, broken and compacted watch sources, virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apiserver.storage.interface import CompactedError, EventType, KeyNotFoundError, StorageUnavailableError
from apiserver.storage.memory import MemoryStorage


@pytest.fixture
async def storage() -> AsyncIterator[MemoryStorage]:
    async with MemoryStorage(progress_interval=10.0) as storage:
        yield storage


def key(storage: MemoryStorage, name: str) -> str:
    return storage.layout.object_key("orders", name, "ns")


async def test_unavailable_raises_storage_unavailable_never_not_found(storage: MemoryStorage) -> None:
    await storage.create(key(storage, "a"), b"v")
    storage.unavailable = True
    for operation in (
        storage.get(key(storage, "a")),
        storage.get(key(storage, "missing")),
        storage.create(key(storage, "b"), b"v"),
        storage.list(storage.layout.resource_prefix("orders")),
        storage.guaranteed_update(key(storage, "a"), try_update=lambda _: b"w"),
        storage.delete(key(storage, "a")),
        storage.current_revision(),
        storage.watch(storage.layout.resource_prefix("orders")),
    ):
        with pytest.raises(StorageUnavailableError) as info:
            await operation
        assert not isinstance(info.value, KeyNotFoundError)
    storage.unavailable = False
    assert (await storage.get(key(storage, "a"))).value == b"v"


async def test_broken_source_is_reopened_without_losing_events(storage: MemoryStorage) -> None:
    hub = storage.watch_hub
    async with await storage.watch(storage.layout.resource_prefix("orders")) as watcher:
        first = await storage.create(key(storage, "a"), b"v")
        assert (await anext(watcher)).revision == first
        storage.break_watches()
        second = await storage.create(key(storage, "b"), b"v")  # written while the source is down
        async with asyncio.timeout(5):
            assert (await anext(watcher)).revision == second
        assert hub.sources_opened == 2


async def test_source_compacted_while_down_expires_its_watchers(storage: MemoryStorage) -> None:
    async with await storage.watch(storage.layout.resource_prefix("orders")) as watcher:
        storage.break_watches()
        await storage.create(key(storage, "a"), b"v")
        await storage.create(key(storage, "b"), b"v")
        await storage.compact(await storage.current_revision())
        async with asyncio.timeout(5):
            with pytest.raises(CompactedError):
                await anext(watcher)
    assert storage.watch_hub.open_sources == 0


async def test_closing_the_storage_ends_watchers(storage: MemoryStorage) -> None:
    watcher = await storage.watch(storage.layout.resource_prefix("orders"))
    await storage.close()
    assert [event async for event in watcher] == []
    with pytest.raises(StorageUnavailableError):
        await storage.watch(storage.layout.resource_prefix("orders"))


async def test_cancelled_watch_start_leaves_nothing_open(storage: MemoryStorage) -> None:
    task = asyncio.create_task(storage.watch(storage.layout.resource_prefix("orders")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert storage.watch_hub.open_sources == 0


@pytest.mark.looptime
async def test_bookmarks_follow_the_progress_interval(storage: MemoryStorage, looptime: float) -> None:
    async with await storage.watch(storage.layout.resource_prefix("orders"), bookmarks=True) as watcher:
        written = await storage.create(storage.layout.object_key("others", "x", "ns"), b"elsewhere")
        event = await anext(watcher)
        assert (event.type, event.revision) == (EventType.BOOKMARK, written)
        assert looptime == 10


def test_backends_implement_the_storage_protocol() -> None:
    from apiserver.storage.etcd import EtcdConfig, EtcdStorage
    from apiserver.storage.interface import Storage

    backends: list[Storage] = [MemoryStorage(), EtcdStorage(EtcdConfig())]  # checked by mypy
    assert len(backends) == 2
