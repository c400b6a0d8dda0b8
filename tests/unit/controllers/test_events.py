"""The Event recorder correlates as client-go's `EventCorrelator` (tools/record/events_cache.go and its
events_cache_test.go): identical events are counted on one Event by PATCH, the 10th distinct message of one
object and reason within 10 minutes starts a "(combined from similar events)" Event, and a token bucket of
25 (one more every 5 minutes) per source, object and type filters spam."""

from __future__ import annotations

from typing import Any

from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import EVENTS
from controllers.runtime import EventRecorder
from controllers.runtime.events import (
    COMBINED_PREFIX,
    EventCorrelator,
    ObjectReference,
    aggregate_key,
    event_key,
    spam_key,
)

REF = ObjectReference("arc.opendefense.cloud/v1alpha1", "Order", "ns", "o", "uid-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def event(
    message: str = "m", reason: str = "Created", type: str = "Normal", name: str = "o"
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.1", "namespace": "ns"},
        "involvedObject": {**REF.to_dict(), "name": name},
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": "c"},
        "reportingComponent": "c",
        "firstTimestamp": "2027-01-15T08:00:00Z",
        "lastTimestamp": "2027-01-15T08:00:00Z",
        "count": 1,
    }


def served(result_event: dict[str, Any], rv: str = "9") -> dict[str, Any]:
    """What the server returns for a written event."""
    return {**result_event, "metadata": {**result_event["metadata"], "resourceVersion": rv}}


def test_keys_are_client_gos() -> None:
    e = event("hello")
    assert aggregate_key(e)[1] == "hello"
    assert "hello" in event_key(e) and "hello" not in aggregate_key(e)[0]
    assert "Created" in aggregate_key(e)[0] and "Created" not in spam_key(e)
    assert spam_key(e) == spam_key(event("other", reason="Deleted"))
    assert spam_key(e) != spam_key(event(type="Warning"))


def test_identical_events_are_counted_by_patch() -> None:
    c = EventCorrelator(clock=Clock())
    first = c.correlate(event())
    assert first.patch is None and first.event["count"] == 1
    c.update_state(served(first.event))
    second = c.correlate(event())
    assert second.event["metadata"]["name"] == first.event["metadata"]["name"]
    assert second.event["count"] == 2
    assert second.patch == {"count": 2, "lastTimestamp": "2027-01-15T08:00:00Z", "message": "m"}
    third = c.correlate(event())
    assert third.patch is not None and third.patch["count"] == 3


def test_the_tenth_similar_event_is_combined_and_later_ones_counted_on_it() -> None:
    """events_cache_test.go 'the-10th-event-should-be-aggregated' and 'the-11th-event-should-be-patched'."""
    c = EventCorrelator(clock=Clock())
    for i in range(9):
        result = c.correlate(event(f"message {i}"))
        assert result.patch is None and result.event["message"] == f"message {i}"
        c.update_state(served(result.event))
    tenth = c.correlate(event("message 9"))
    assert tenth.patch is None
    assert tenth.event["message"] == COMBINED_PREFIX + "message 9"
    assert tenth.event["count"] == 1
    c.update_state(served(tenth.event))
    eleventh = c.correlate(event("message 10"))
    assert eleventh.event["metadata"]["name"] == tenth.event["metadata"]["name"]
    assert eleventh.patch is not None
    assert eleventh.patch["count"] == 2
    assert eleventh.patch["message"] == COMBINED_PREFIX + "message 10"


def test_aggregation_is_per_reason_and_forgets_after_ten_quiet_minutes() -> None:
    clock = Clock()
    c = EventCorrelator(clock=clock)
    for i in range(9):
        c.correlate(event(f"m{i}"))
    assert c.correlate(event("x", reason="Deleted")).event["message"] == "x"  # another reason
    clock.now += 601
    assert c.correlate(event("m9")).event["message"] == "m9"  # the record was reset


def test_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() -> None:
    clock = Clock()
    c = EventCorrelator(clock=clock)
    results = [c.correlate(event(f"m{i}", reason=f"R{i}")) for i in range(26)]
    assert [r.skip for r in results] == [False] * 25 + [True]
    assert not c.correlate(event("other", type="Warning")).skip  # another type: its own bucket
    assert not c.correlate(event("other", name="p")).skip  # another object: its own bucket
    clock.now += 299
    assert c.correlate(event("late")).skip
    clock.now += 2
    assert not c.correlate(event("later")).skip
    assert c.correlate(event("again")).skip


def test_caches_are_bounded_lrus() -> None:
    c = EventCorrelator(clock=Clock(), cache_size=2)
    for name in ("a", "b", "c"):
        c.update_state(served(c.correlate(event(name=name)).event))
    assert c.correlate(event(name="a")).patch is None  # evicted: created again
    assert c.correlate(event(name="c")).patch is not None


async def test_recorder_patches_repeats_and_recreates_a_vanished_event() -> None:
    client = FakeKubeClient()
    recorder = EventRecorder(client, "test")
    await recorder.write(REF, "Normal", "Created", "made it")
    await recorder.write(REF, "Normal", "Created", "made it")
    (stored,) = (await client.list(EVENTS, "ns"))["items"]
    assert stored["count"] == 2 and stored["message"] == "made it"
    assert stored["source"] == {"component": "test"} and stored["reportingComponent"] == "test"
    await client.delete(EVENTS, "ns", stored["metadata"]["name"])  # the Event's TTL ran out
    await recorder.write(REF, "Normal", "Created", "made it")
    (recreated,) = (await client.list(EVENTS, "ns"))["items"]
    assert recreated["count"] == 3  # client-go keeps counting; the old Event is simply replaced
    kinds = [call[0] for call in client.calls if call[1] == "events"]
    assert kinds.count("create") == 2 and kinds.count("patch") == 2


async def test_recorder_combines_many_similar_events_of_one_object() -> None:
    client = FakeKubeClient()
    recorder = EventRecorder(client, "test")
    for i in range(12):
        await recorder.write(REF, "Normal", "ArtifactWorkflowCreated", f"Created ArtifactWorkflow aw-{i}")
    items = (await client.list(EVENTS, "ns"))["items"]
    combined = [e for e in items if e["message"].startswith(COMBINED_PREFIX)]
    assert len(items) == 10 and len(combined) == 1
    assert combined[0]["count"] == 3
    assert combined[0]["message"] == COMBINED_PREFIX + "Created ArtifactWorkflow aw-11"


async def test_spam_filtered_events_are_counted_not_written() -> None:
    client = FakeKubeClient()
    recorder = EventRecorder(client, "test")
    for i in range(30):
        await recorder.write(REF, "Warning", f"Reason{i}", "x")
    assert recorder.spam_filtered == 5
    assert len((await client.list(EVENTS, "ns"))["items"]) == 25
