"""apiserver.workermetrics: one scrape reads every worker's registry, each sample labelled `worker`."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from apiserver.workermetrics import WorkerMetrics

PEER_TEXT = """# HELP arc_test_workermetrics_total Counter of apiserver requests.
# TYPE arc_test_workermetrics_total counter
arc_test_workermetrics_total{verb="GET",code="200"} 7.0
# HELP arc_peer_only_seconds A histogram only the peer has.
# TYPE arc_peer_only_seconds histogram
arc_peer_only_seconds_bucket{le="1.0"} 1.0
arc_peer_only_seconds_bucket{le="+Inf"} 2.0
arc_peer_only_seconds_count 2.0
arc_peer_only_seconds_sum 3.5
"""

OWN = Counter("arc_test_workermetrics", "Counter of apiserver requests.", ["verb", "code"])


async def _peer(path: Path, text: str) -> AsyncIterator[None]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    try:
        yield
    finally:
        await runner.cleanup()


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


@pytest.fixture
def directory() -> Iterator[Path]:
    # A Unix socket path is limited to 107 bytes: pytest's tmp_path may be longer.
    with tempfile.TemporaryDirectory(prefix="wm-") as short:
        yield Path(short)


async def test_own_and_peer_families_merged_with_the_worker_label(directory: Path) -> None:
    OWN.labels("GET", "200").inc(3)
    metrics = WorkerMetrics(directory, 0)
    peer = _peer(metrics.socket(1), PEER_TEXT)
    await peer.__anext__()
    try:
        text = (await metrics.exposition()).decode()
    finally:
        await peer.aclose()
    requests = _samples(text, "arc_test_workermetrics_total")
    assert requests[(("code", "200"), ("verb", "GET"), ("worker", "1"))] == 7.0
    assert requests[(("code", "200"), ("verb", "GET"), ("worker", "0"))] >= 3.0
    assert text.count("# TYPE arc_test_workermetrics_total counter") == 1  # one family, both workers' samples
    assert _samples(text, "arc_peer_only_seconds_count") == {(("worker", "1"),): 2.0}
    assert (("le", "1.0"), ("worker", "1")) in _samples(text, "arc_peer_only_seconds_bucket")
    # every sample of the scrape carries a worker label (own process metrics included)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels.get("worker") in {"0", "1"}, sample


async def test_a_worker_that_does_not_answer_is_left_out(directory: Path) -> None:
    metrics = WorkerMetrics(directory, 0)
    metrics.socket(1).write_text("")  # a stale socket path of a restarting worker: nobody listens
    peer = _peer(metrics.socket(2), "this is not the exposition format {")
    await peer.__anext__()
    try:
        text = (await metrics.exposition()).decode()
    finally:
        await peer.aclose()
        metrics.socket(1).unlink()
    workers = {s.labels["worker"] for f in text_string_to_metric_families(text) for s in f.samples}
    assert workers == {"0"}


async def test_serve_own_serves_this_workers_registry_and_removes_its_socket(directory: Path) -> None:
    own = WorkerMetrics(directory, 3)
    other = WorkerMetrics(directory, 4)
    app = web.Application()
    serving = own.serve_own(app)
    await serving.__anext__()
    try:
        assert own.socket(3).exists()
        text = (await other.exposition()).decode()
        assert {s.labels["worker"] for f in text_string_to_metric_families(text) for s in f.samples} == {
            "3",
            "4",
        }
    finally:
        await serving.aclose()
    assert not own.socket(3).exists()
