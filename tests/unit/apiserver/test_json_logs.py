"""SPEC §5's logs of the API server: JSON, one line per event, with the request id, the object's
namespace/name and the ids of the request's span (so a log line leads to its trace, and back)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace

from apiserver.observability import setup_logging
from apiserver.server import Config, create_app
from apiserver.storage.memory import MemoryStorage
from tests.unit.otel import recorded_spans

from .conftest import GV, TOKEN

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger as ``python -m apiserver`` configures it, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO", "json")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line is one JSON object (multi-line messages and tracebacks stay inside it)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_request_logs_one_json_line_with_its_ids(tmp_path: Path, log_stream: io.StringIO) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},admin,1,"system:masters"\n')
    storage = MemoryStorage()
    await storage.start()
    app = create_app(Config(storage=storage, token_auth_file=tokens, bookmark_interval=0.0))
    with recorded_spans() as spans:
        async with TestClient[Any, Any](TestServer(app)) as client:
            storage.unavailable = True  # the store logs a warning for this request
            resp = await client.get(
                f"{GV}/namespaces/team-a/orders/o1",
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
                    "Audit-ID": "c0ffee00-0000-4000-8000-000000000001",
                },
            )
            assert resp.status == 503
    await storage.close()
    records = [r for r in lines(log_stream) if r.get("message") == "storage unavailable"]
    assert len(records) == 1, log_stream.getvalue()
    record = records[0]
    assert record["level"] == "WARNING"
    assert record["logger"] == "apiserver.registry.store"
    assert record["ts"]
    assert record["request_id"] == "c0ffee00-0000-4000-8000-000000000001" == resp.headers["Audit-Id"]
    assert (record["namespace"], record["name"]) == ("team-a", "o1")
    assert record["operation"] == "get"
    # The request's own span: a child of the caller's (kube-apiserver's proxy span), in the caller's trace.
    (server_span,) = [s for s in spans.all if s.kind == trace.SpanKind.SERVER]
    assert server_span.parent is not None and format(server_span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert record["trace_id"] == TRACE_ID == format(server_span.context.trace_id, "032x")
    assert record["span_id"] == format(server_span.context.span_id, "016x")


def test_a_line_outside_any_request_has_no_request_or_trace_ids(log_stream: io.StringIO) -> None:
    logging.getLogger("apiserver.test").info("etcd storage started", extra={"endpoints": ["x"]})
    logging.getLogger("apiserver.test").error("two\nlines", exc_info=ValueError("boom\nagain"))
    first, second = lines(log_stream)
    assert first["message"] == "etcd storage started" and first["endpoints"] == ["x"]
    assert first["request_id"] == ""
    assert "trace_id" not in first and "namespace" not in first
    assert second["message"] == "two\nlines" and "boom" in second["exc_info"]
