"""How much of the key space one page makes the backend walk (etcd counts every key up to range_end)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apiserver.storage.engine import RangePage
from apiserver.storage.memory import MemoryStorage


class WalkCountingStorage(MemoryStorage):
    """MemoryStorage that adds up ``count`` of every range read: the keys etcd would have visited."""

    walked = 0
    reads = 0

    async def _range(self, start: str, end: str, *, limit: int, revision: int) -> RangePage:
        page = await super()._range(start, end, limit=limit, revision=revision)
        assert page.count is not None
        self.walked += page.count
        self.reads += 1
        return page


@pytest.mark.parametrize(
    "name",
    [lambda i: f"order-{i:05d}", lambda i: f"o{(i * 7919) % 100_003:x}", lambda i: f"{i % 5}-{i}"],
    ids=["sequential", "scattered", "runs"],
)
async def test_paging_to_the_end_walks_each_key_a_bounded_number_of_times(name: Callable[[int], str]) -> None:
    total, limit = 6_000, 100
    async with WalkCountingStorage() as storage:
        for i in range(total):
            await storage.create(storage.layout.object_key("orders", name(i), f"ns{i % 3}"), b"{}")
        prefix = storage.layout.resource_prefix("orders")
        storage.walked = storage.reads = 0
        page = await storage.list(prefix, limit=limit)
        listed, pages = len(page.items), 1
        while page.continue_token:
            page = await storage.list(prefix, limit=limit, continue_token=page.continue_token)
            listed, pages = listed + len(page.items), pages + 1
        assert listed == total
        # Ranges to the end of the collection would walk sum(remaining) = total * pages / 2 = 180,000 keys;
        # the first page counts the collection once, each continuation page walks a small multiple of its
        # size (windows widen one key character at a time, so the last one overshoots by < the alphabet).
        assert storage.walked < total + pages * limit * 10, storage.walked
        assert storage.reads < pages * 10, storage.reads
