"""The storage conformance suite: every test runs against MemoryStorage and against EtcdStorage on real etcd.

(House rule 11: the fake passes the contract tests of the real thing.)
"""

from __future__ import annotations

import asyncio
import random

import pytest

from apiserver.storage.engine import StorageEngine
from apiserver.storage.interface import (
    INCONSISTENT_CONTINUE_MESSAGE,
    CompactedError,
    EventType,
    ExpiredError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    ResourceVersionMatch,
    Revision,
    RevisionConflictError,
    StoredValue,
    TooLargeRevisionError,
    Watcher,
    WatchEvent,
)

TIMEOUT = 5.0


def okey(storage: StorageEngine, name: str, namespace: str | None = "ns") -> str:
    return storage.layout.object_key("orders", name, namespace)


def all_orders(storage: StorageEngine) -> str:
    return storage.layout.resource_prefix("orders")


async def next_event(watcher: Watcher, *, skip_bookmarks: bool = True) -> WatchEvent:
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await anext(watcher)
            if not (skip_bookmarks and event.type is EventType.BOOKMARK):
                return event


async def collect(watcher: Watcher, count: int) -> list[WatchEvent]:
    return [await next_event(watcher) for _ in range(count)]


# ---------------------------------------------------------------------------------------- create / get


async def test_create_then_get(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    revision = await storage.create(key, b"v1")
    value = await storage.get(key)
    assert value == StoredValue(key=key, value=b"v1", create_revision=revision, mod_revision=revision)
    assert await storage.current_revision() == revision


async def test_create_existing_key_raises_key_exists(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    revision = await storage.create(key, b"v1")
    with pytest.raises(KeyExistsError):
        await storage.create(key, b"v2")
    assert (await storage.get(key)).mod_revision == revision


async def test_get_missing_key_raises_not_found(storage: StorageEngine) -> None:
    with pytest.raises(KeyNotFoundError):
        await storage.get(okey(storage, "missing"))


# -------------------------------------------------------------------------------------------- update


async def test_guaranteed_update_without_precondition(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    seen: list[bytes | None] = []

    def bump(current: StoredValue | None) -> bytes:
        assert current is not None
        seen.append(current.value)
        return current.value + b"+"

    updated = await storage.guaranteed_update(key, try_update=bump)
    assert seen == [b"v1"]
    assert updated.value == b"v1+"
    assert updated.create_revision == created
    assert updated.mod_revision > created
    assert await storage.get(key) == updated


async def test_guaranteed_update_accepts_async_try_update(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    await storage.create(key, b"v1")

    async def bump(current: StoredValue | None) -> bytes:
        await asyncio.sleep(0)
        assert current is not None
        return b"async"

    assert (await storage.guaranteed_update(key, try_update=bump)).value == b"async"


async def test_guaranteed_update_with_matching_precondition(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    updated = await storage.guaranteed_update(key, try_update=lambda _: b"v2", precondition=created)
    assert updated.value == b"v2"


async def test_guaranteed_update_with_stale_precondition_conflicts(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    current = await storage.guaranteed_update(key, try_update=lambda _: b"v2")
    calls = 0

    def never(_: StoredValue | None) -> bytes:
        nonlocal calls
        calls += 1
        return b"v3"

    with pytest.raises(RevisionConflictError) as info:
        await storage.guaranteed_update(key, try_update=never, precondition=created)
    assert (info.value.expected, info.value.actual) == (created, current.mod_revision)
    assert calls == 0
    assert (await storage.get(key)).value == b"v2"


async def test_guaranteed_update_missing_key(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    with pytest.raises(KeyNotFoundError):
        await storage.guaranteed_update(key, try_update=lambda _: b"x")
    created = await storage.guaranteed_update(
        key, try_update=lambda current: b"new" if current is None else b"old", ignore_not_found=True
    )
    assert created.value == b"new"
    assert created.create_revision == created.mod_revision
    assert await storage.get(key) == created


async def test_guaranteed_update_without_change_writes_nothing(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    assert (
        await storage.guaranteed_update(key, try_update=lambda c: c.value if c else None)
    ).mod_revision == (created)
    assert (await storage.guaranteed_update(key, try_update=lambda _: None)).mod_revision == created
    assert await storage.current_revision() == created


async def test_guaranteed_update_error_in_try_update_propagates(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    await storage.create(key, b"v1")

    def invalid(_: StoredValue | None) -> bytes:
        raise ValueError("invalid")

    with pytest.raises(ValueError, match="invalid"):
        await storage.guaranteed_update(key, try_update=invalid)
    assert (await storage.get(key)).value == b"v1"


async def test_concurrent_guaranteed_updates_lose_nothing(storage: StorageEngine) -> None:
    key = okey(storage, "counter")
    await storage.create(key, b"0")
    attempts = 0

    async def increment(current: StoredValue | None) -> bytes:
        nonlocal attempts
        attempts += 1
        assert current is not None
        await asyncio.sleep(0)  # let the others read the same value: force conflicts
        return str(int(current.value) + 1).encode()

    await asyncio.gather(*(storage.guaranteed_update(key, try_update=increment) for _ in range(32)))
    assert (await storage.get(key)).value == b"32"
    assert attempts > 32  # conflicts happened and were retried


async def test_concurrent_updates_with_precondition_succeed_once(storage: StorageEngine) -> None:
    key = okey(storage, "counter")
    created = await storage.create(key, b"0")

    async def update(i: int) -> StoredValue:
        return await storage.guaranteed_update(
            key, try_update=lambda _: str(i + 1).encode(), precondition=created
        )

    results = await asyncio.gather(*(update(i) for i in range(32)), return_exceptions=True)
    successes = [r for r in results if isinstance(r, StoredValue)]
    conflicts = [r for r in results if isinstance(r, RevisionConflictError)]
    assert len(successes) == 1
    assert len(conflicts) == 31
    assert await storage.get(key) == successes[0]


async def test_stale_suggestion_costs_a_retry_not_a_conflict(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    await storage.create(key, b"v1")
    stale = await storage.get(key)
    current = await storage.guaranteed_update(key, try_update=lambda _: b"v2")
    seen: list[bytes] = []

    def record(value: StoredValue | None) -> bytes:
        assert value is not None
        seen.append(value.value)
        return value.value + b"+"

    updated = await storage.guaranteed_update(
        key, try_update=record, precondition=current.mod_revision, suggestion=stale
    )
    assert updated.value == b"v2+"
    assert seen == [b"v2"]


# -------------------------------------------------------------------------------------------- delete


async def test_delete_returns_the_deleted_value(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    deleted = await storage.delete(key)
    assert deleted == StoredValue(key, b"v1", created, created)
    with pytest.raises(KeyNotFoundError):
        await storage.get(key)
    with pytest.raises(KeyNotFoundError):
        await storage.delete(key)


async def test_delete_with_precondition(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    created = await storage.create(key, b"v1")
    current = await storage.guaranteed_update(key, try_update=lambda _: b"v2")
    with pytest.raises(RevisionConflictError) as info:
        await storage.delete(key, precondition=created)
    assert info.value.actual == current.mod_revision
    assert (await storage.get(key)).value == b"v2"
    assert (await storage.delete(key, precondition=current.mod_revision)).value == b"v2"
    with pytest.raises(KeyNotFoundError):
        await storage.delete(key, precondition=current.mod_revision)


async def test_delete_with_validation(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    await storage.create(key, b"protected")

    def refuse(value: StoredValue) -> None:
        if value.value == b"protected":
            raise PermissionError("has finalizers")

    with pytest.raises(PermissionError):
        await storage.delete(key, validate=refuse)
    await storage.guaranteed_update(key, try_update=lambda _: b"free")
    assert (await storage.delete(key, validate=refuse)).value == b"free"
    with pytest.raises(KeyNotFoundError):
        await storage.delete(key, validate=refuse)


# ---------------------------------------------------------------------------------------------- list


async def _fill(storage: StorageEngine, names: list[tuple[str, str]]) -> None:
    for namespace, name in names:
        await storage.create(okey(storage, name, namespace), f"{namespace}/{name}".encode())


async def test_list_in_key_order_with_namespace_prefixes(storage: StorageEngine) -> None:
    await _fill(storage, [("ns1", "b"), ("ns10", "a"), ("ns1", "a"), ("ns2", "c")])
    await storage.create(storage.layout.object_key("others", "x", "ns1"), b"other resource")
    everything = await storage.list(all_orders(storage))
    assert [item.value for item in everything.items] == [b"ns1/a", b"ns1/b", b"ns10/a", b"ns2/c"]
    assert everything.continue_token is None and everything.remaining_item_count is None
    assert everything.revision == await storage.current_revision()
    ns1 = await storage.list(storage.layout.namespace_prefix("orders", "ns1"))
    assert [item.value for item in ns1.items] == [b"ns1/a", b"ns1/b"]


async def test_list_pages_through_one_snapshot(storage: StorageEngine) -> None:
    names = [(f"ns{i % 3}", f"o{i:03d}") for i in range(25)]
    await _fill(storage, names)
    prefix = all_orders(storage)
    expected = sorted(f"{ns}/{name}".encode() for ns, name in names)

    page = await storage.list(prefix, limit=7)
    snapshot = page.revision
    seen = list(page.items)
    remaining = [page.remaining_item_count]
    await storage.create(okey(storage, "late", "ns0"), b"late")  # after the snapshot: never listed
    await storage.delete(okey(storage, "o000", "ns0"))  # deleted after the snapshot: still listed
    while page.continue_token:
        page = await storage.list(prefix, limit=7, continue_token=page.continue_token)
        assert page.revision == snapshot
        seen.extend(page.items)
        remaining.append(page.remaining_item_count)
    assert [item.value for item in seen] == expected
    # The first page counts the collection (kube's remainingItemCount); continuation pages read bounded
    # windows and report a count only when it is known (never a wrong one).
    assert remaining[0] == 18 and remaining[-1] is None
    assert all(count in (None, 25 - 7 * (i + 1)) for i, count in enumerate(remaining[:-1]))


def _names(seed: int) -> list[tuple[str, str]]:
    """Keys of uneven shapes: namespaces and names that are prefixes of each other, runs and gaps."""
    rng = random.Random(seed)
    namespaces = ["a", "a0", "ab", "b", "default", "ns-1", "ns-10", "z"]
    names = {"x", "x0", "x00", "x-1", "x-10", "y"} | {
        f"order-{rng.randrange(10 ** rng.randint(1, 4))}" for _ in range(60)
    }
    return sorted({(rng.choice(namespaces), name) for name in names for _ in range(2)})


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
async def test_pages_through_uneven_keys_return_each_key_once(storage: StorageEngine, limit: int) -> None:
    names = _names(limit)
    await _fill(storage, names)
    for prefix in (all_orders(storage), storage.layout.namespace_prefix("orders", "a")):
        expected = [item.value for item in (await storage.list(prefix)).items]
        page = await storage.list(prefix, limit=limit)
        seen = list(page.items)
        while page.continue_token:
            assert len(page.items) == limit
            page = await storage.list(prefix, limit=limit, continue_token=page.continue_token)
            seen.extend(page.items)
        assert [item.value for item in seen] == expected
    assert len(expected) == sum(1 for ns, _ in names if ns == "a")


async def test_unlimited_list_is_read_in_chunks(
    storage: StorageEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apiserver.storage import engine

    monkeypatch.setattr(engine, "MAX_PAGE", 4)
    names = _names(1)
    await _fill(storage, names)
    everything = await storage.list(all_orders(storage))
    assert [item.value for item in everything.items] == sorted(f"{ns}/{n}".encode() for ns, n in names)
    assert everything.continue_token is None
    selected = await storage.list(all_orders(storage), predicate=lambda value: value.value.endswith(b"0"))
    assert [item.value for item in selected.items] == [
        f"{ns}/{n}".encode() for ns, n in sorted(names) if n.endswith("0")
    ]


async def test_continue_token_has_kube_format(storage: StorageEngine) -> None:
    import base64
    import json

    await _fill(storage, [("ns", "a"), ("ns", "b")])
    page = await storage.list(all_orders(storage), limit=1)
    assert page.continue_token is not None
    token = json.loads(base64.urlsafe_b64decode(page.continue_token + "=" * (-len(page.continue_token) % 4)))
    assert token == {"v": "meta.k8s.io/v1", "rv": page.revision, "start": "ns/a\x00"}


async def test_invalid_continue_token(storage: StorageEngine) -> None:
    with pytest.raises(InvalidContinueError):
        await storage.list(all_orders(storage), continue_token="not-a-token")


async def test_list_at_exact_revision_reads_the_snapshot(storage: StorageEngine) -> None:
    a, b = okey(storage, "a"), okey(storage, "b")
    await storage.create(a, b"a1")
    await storage.create(b, b"b1")
    snapshot = await storage.current_revision()
    await storage.guaranteed_update(a, try_update=lambda _: b"a2")
    await storage.delete(b)
    await storage.create(okey(storage, "c"), b"c1")

    old = await storage.list(all_orders(storage), revision=snapshot, match=ResourceVersionMatch.EXACT)
    assert old.revision == snapshot
    assert [item.value for item in old.items] == [b"a1", b"b1"]
    new = await storage.list(all_orders(storage), revision=snapshot)  # NotOlderThan: current state
    assert [item.value for item in new.items] == [b"a2", b"c1"]
    assert new.revision > snapshot


async def test_list_at_a_future_revision(storage: StorageEngine) -> None:
    future = Revision(await storage.current_revision() + 100)
    with pytest.raises(TooLargeRevisionError):
        await storage.list(all_orders(storage), revision=future)
    with pytest.raises(TooLargeRevisionError):
        await storage.list(all_orders(storage), revision=future, match=ResourceVersionMatch.EXACT)


async def test_list_with_predicate_fills_pages(storage: StorageEngine) -> None:
    await _fill(storage, [("ns", f"o{i:02d}") for i in range(30)])

    def even(value: StoredValue) -> bool:
        return int(value.value[-2:]) % 2 == 0

    prefix = all_orders(storage)
    page = await storage.list(prefix, limit=4, predicate=even)
    seen = list(page.items)
    assert len(seen) == 4 and page.remaining_item_count is None
    while page.continue_token:
        page = await storage.list(prefix, limit=4, predicate=even, continue_token=page.continue_token)
        seen.extend(page.items)
    assert [item.value for item in seen] == [f"ns/o{i:02d}".encode() for i in range(0, 30, 2)]


async def test_list_after_compaction_is_expired_with_a_fresh_token(storage: StorageEngine) -> None:
    await _fill(storage, [("ns", f"o{i}") for i in range(6)])
    prefix = all_orders(storage)
    first = await storage.list(prefix, limit=2)
    assert first.continue_token is not None
    await storage.create(okey(storage, "o9"), b"ns/o9")
    current = await storage.current_revision()
    await storage.compact(current)

    with pytest.raises(CompactedError) as info:
        await storage.list(prefix, limit=2, continue_token=first.continue_token)
    error = info.value
    assert str(error) == INCONSISTENT_CONTINUE_MESSAGE
    assert error.requested == first.revision
    assert error.current is not None and error.current >= current
    assert error.continue_token is not None
    rest: list[StoredValue] = []
    token: str | None = error.continue_token
    while token:  # the fresh token continues after the same key at the latest revision
        page = await storage.list(prefix, limit=2, continue_token=token)
        assert page.revision >= current
        rest.extend(page.items)
        token = page.continue_token
    assert [item.value for item in rest] == [b"ns/o2", b"ns/o3", b"ns/o4", b"ns/o5", b"ns/o9"]

    with pytest.raises(CompactedError) as exact:
        await storage.list(prefix, revision=first.revision, match=ResourceVersionMatch.EXACT)
    assert exact.value.continue_token is None
    assert isinstance(exact.value, ExpiredError)


async def test_compact_is_idempotent(storage: StorageEngine) -> None:
    await storage.create(okey(storage, "a"), b"a")
    current = await storage.current_revision()
    await storage.compact(current)
    await storage.compact(current)
    await storage.compact(Revision(current - 1))
    assert (await storage.get(okey(storage, "a"))).value == b"a"


# --------------------------------------------------------------------------------------------- watch


async def test_watch_from_a_revision_with_previous_values(storage: StorageEngine) -> None:
    key = okey(storage, "a")
    start = await storage.current_revision()
    created = await storage.create(key, b"v1")
    updated = await storage.guaranteed_update(key, try_update=lambda _: b"v2")
    await storage.delete(key)
    await storage.create(storage.layout.object_key("others", "a", "ns"), b"not watched")

    async with await storage.watch(all_orders(storage), from_revision=start) as watcher:
        added, modified, deleted = await collect(watcher, 3)
    assert (added.type, added.key, added.revision, added.prev_value) == (EventType.ADDED, key, created, None)
    assert added.value == StoredValue(key, b"v1", created, created)
    assert modified.type is EventType.MODIFIED
    assert modified.value == updated
    assert modified.prev_value == StoredValue(key, b"v1", created, created)
    assert deleted.type is EventType.DELETED
    assert deleted.value is None
    assert deleted.prev_value == updated
    assert deleted.revision > updated.mod_revision


async def test_watch_is_strictly_after_the_revision(storage: StorageEngine) -> None:
    first = await storage.create(okey(storage, "a"), b"a")
    second = await storage.create(okey(storage, "b"), b"b")
    async with await storage.watch(all_orders(storage), from_revision=first) as watcher:
        event = await next_event(watcher)
    assert (event.type, event.revision) == (EventType.ADDED, second)


async def test_watch_without_revision_starts_now(storage: StorageEngine) -> None:
    await storage.create(okey(storage, "before"), b"before")
    async with await storage.watch(all_orders(storage)) as watcher:
        await storage.create(okey(storage, "after"), b"after")
        event = await next_event(watcher)
    assert event.key == okey(storage, "after")


async def test_watch_from_a_compacted_revision_is_expired(storage: StorageEngine) -> None:
    start = await storage.current_revision()
    for i in range(3):
        await storage.create(okey(storage, f"o{i}"), b"x")
    await storage.compact(await storage.current_revision())
    with pytest.raises(CompactedError):
        await storage.watch(all_orders(storage), from_revision=Revision(start - 1))


async def test_watchers_share_one_source_per_resource(storage: StorageEngine) -> None:
    hub = storage.watch_hub
    opened = hub.sources_opened
    start = await storage.current_revision()
    watchers = [await storage.watch(all_orders(storage), from_revision=start) for _ in range(3)]
    ns1 = await storage.watch(storage.layout.namespace_prefix("orders", "ns1"), from_revision=start)
    assert hub.sources_opened == opened + 1
    assert hub.open_sources == 1
    try:
        await storage.create(okey(storage, "a", "ns1"), b"1")
        await storage.create(okey(storage, "b", "ns2"), b"2")
        for watcher in watchers:
            assert [e.key for e in await collect(watcher, 2)] == [
                okey(storage, "a", "ns1"),
                okey(storage, "b", "ns2"),
            ]
        assert (await next_event(ns1)).key == okey(storage, "a", "ns1")
        await storage.create(okey(storage, "c", "ns1"), b"3")
        assert (await next_event(ns1)).key == okey(storage, "c", "ns1")  # ns2's event was filtered out
    finally:
        for watcher in [*watchers, ns1]:
            await watcher.close()
    assert hub.open_sources == 0


async def test_watcher_from_a_future_revision_waits_without_spoiling_the_shared_source(
    storage: StorageEngine,
) -> None:
    """A watch from a revision not reached yet waits for it (kube's cacher) — and the shared source it
    opens starts now, so watchers from the present still share it (no private source each)."""
    hub = storage.watch_hub
    opened = hub.sources_opened
    now = await storage.current_revision()
    future = Revision(now + 3)
    parked = await storage.watch(all_orders(storage), from_revision=future)
    present = await storage.watch(all_orders(storage), from_revision=now)
    async with parked, present:
        assert hub.sources_opened == opened + 1 and hub.open_sources == 1
        revisions = [await storage.create(okey(storage, f"o{i}"), b"x") for i in range(4)]
        assert [e.revision for e in await collect(present, 4)] == revisions
        assert [e.revision for e in await collect(parked, 1)] == [r for r in revisions if r > future]


async def test_watcher_joining_late_replays_from_the_ring(storage: StorageEngine) -> None:
    hub = storage.watch_hub
    start = await storage.current_revision()
    async with await storage.watch(all_orders(storage), from_revision=start) as first:
        revisions = [await storage.create(okey(storage, f"o{i}"), b"x") for i in range(5)]
        await collect(first, 5)
        opened = hub.sources_opened
        async with await storage.watch(all_orders(storage), from_revision=revisions[1]) as late:
            assert [e.revision for e in await collect(late, 3)] == revisions[2:]
        assert hub.sources_opened == opened  # served from the ring


async def test_watcher_older_than_the_ring_gets_a_private_source(storage: StorageEngine) -> None:
    hub = storage.watch_hub
    hub.ring_capacity = 3
    start = await storage.current_revision()
    async with await storage.watch(all_orders(storage), from_revision=start) as first:
        revisions = [await storage.create(okey(storage, f"o{i}"), b"x") for i in range(8)]
        await collect(first, 8)
        opened = hub.sources_opened
        async with await storage.watch(all_orders(storage), from_revision=start) as old:
            assert hub.sources_opened == opened + 1
            assert [e.revision for e in await collect(old, 8)] == revisions
        assert hub.open_sources == 1


async def test_slow_watcher_does_not_block_a_fast_one(storage: StorageEngine) -> None:
    storage.watch_hub.queue_size = 5
    start = await storage.current_revision()
    slow = await storage.watch(all_orders(storage), from_revision=start)
    fast = await storage.watch(all_orders(storage), from_revision=start)
    received: list[WatchEvent] = []

    async def consume() -> None:
        while len(received) < 20:
            received.append(await next_event(fast))

    consumer = asyncio.create_task(consume())
    for i in range(20):
        await storage.create(okey(storage, f"o{i:02d}"), b"x")
        await asyncio.sleep(0.01)  # a steady stream the fast watcher keeps up with
    await asyncio.wait_for(consumer, TIMEOUT)
    assert len(received) == 20

    assert slow.overflowed
    drained = [event async for event in slow]  # what was queued, then the end
    assert len(drained) == 5
    assert [e.key for e in drained] == [e.key for e in received[:5]]
    assert storage.watch_hub.overflows >= 1
    await slow.close()
    await fast.close()


async def test_bookmarks_carry_the_latest_revision(storage: StorageEngine) -> None:
    async with await storage.watch(all_orders(storage), bookmarks=True) as watcher:
        written = await storage.create(okey(storage, "a"), b"x")
        assert (await next_event(watcher)).revision == written
        await storage.create(storage.layout.object_key("others", "b", "ns"), b"elsewhere")
        later = await storage.current_revision()
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await anext(watcher)
                assert event.type is EventType.BOOKMARK
                assert event.revision >= written
                if event.revision >= later:
                    break
        assert storage.watch_hub.latest_revision(all_orders(storage)) == event.revision


async def test_watch_without_bookmarks_gets_none(storage: StorageEngine) -> None:
    async with await storage.watch(all_orders(storage)) as watcher:
        await asyncio.sleep(0.5)  # a few progress intervals
        written = await storage.create(okey(storage, "a"), b"x")
        event = await next_event(watcher, skip_bookmarks=False)
    assert (event.type, event.revision) == (EventType.ADDED, written)


async def test_closed_watcher_ends_iteration(storage: StorageEngine) -> None:
    watcher = await storage.watch(all_orders(storage))
    await watcher.close()
    assert [event async for event in watcher] == []
    assert storage.watch_hub.open_sources == 0
