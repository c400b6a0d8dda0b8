"""SPEC §5's logs of the controller manager, and the trace context its client sends.

A reconcile's log lines are JSON, one line per event, with controller, namespace/name, the reconcile id and
the reconcile span's trace and span ids; the requests it sends to kube-apiserver carry a ``traceparent``
whose parent is that same span — so kube-apiserver's spans (and ARC's behind the aggregator) join the
reconcile's trace, and a log line, a request and a trace lead to each other.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from controllers.kube import ApiKubeClient
from controllers.kube.errors import NotFoundError
from controllers.kube.resources import SECRETS
from controllers.runtime import Controller, Request, Result
from controllers.runtime.logs import configure_logging
from tests.unit.otel import recorded_spans


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger as ``python -m controllers`` configures it, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", json_output=True)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.fixture
async def kube() -> AsyncIterator[tuple[ApiKubeClient, list[dict[str, str]]]]:
    """An ApiKubeClient against a loopback server that records every request's headers (404 for all)."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append({"path": request.path, **{k.lower(): v for k, v in request.headers.items()}})
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"}
        return web.json_response(body, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = ApiKubeClient(k8s_client.ApiClient(k8s_client.Configuration(host=f"http://127.0.0.1:{port}")))
    try:
        yield api, seen
    finally:
        await api.close()
        await runner.cleanup()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class GetsItsSecret:
    """Logs, then reads a Secret of the object's name through the real client (kube answers 404)."""

    def __init__(self, api: ApiKubeClient) -> None:
        self.api = api

    async def reconcile(self, request: Request) -> Result:
        logging.getLogger("controllers.test").info("reconciling", extra={"step": 1})
        try:
            await self.api.get(SECRETS, request.namespace, request.name)
        except NotFoundError:
            logging.getLogger("controllers.test").info("secret missing")
        return Result()


async def test_reconcile_logs_and_requests_carry_the_reconcile_span(
    kube: tuple[ApiKubeClient, list[dict[str, str]]], log_stream: io.StringIO
) -> None:
    api, seen = kube
    controller = Controller("test-json", GetsItsSecret(api))
    with recorded_spans() as spans:
        await controller.process(Request("team-a", "o1"))
        await controller.process(Request("team-b", "o2"))
    reconciles = spans.named("reconcile test-json")
    assert len(reconciles) == 2
    records = [r for r in lines(log_stream) if r.get("logger") == "controllers.test"]
    assert [r["msg"] for r in records] == ["reconciling", "secret missing"] * 2
    assert len(seen) == 2
    for span, (first, second), request in zip(reconciles, (records[:2], records[2:]), seen, strict=True):
        trace_id = format(span.context.trace_id, "032x")
        span_id = format(span.context.span_id, "016x")
        namespace, name = span.attributes["k8s.namespace.name"], span.attributes["k8s.object.name"]  # type: ignore[index]
        for record in (first, second):
            assert record["level"] == "INFO" and record["ts"]
            assert record["controller"] == "test-json"
            assert (record["namespace"], record["object_name"]) == (namespace, name)
            assert record["reconcile_id"] == span.attributes["reconcile_id"]  # type: ignore[index]
            assert (record["trace_id"], record["span_id"]) == (trace_id, span_id)
        assert first["step"] == 1
        assert request["path"] == f"/api/v1/namespaces/{namespace}/secrets/{name}"
        # The reconcile span is the parent of whatever kube-apiserver does for this request.
        # Sampled (kube-apiserver's parent-based sampler records it too), and no other flag: kube-apiserver's
        # Go propagator refuses a version-00 traceparent with more (and would start a trace of its own).
        assert request["traceparent"] == f"00-{trace_id}-{span_id}-01"
    assert records[0]["reconcile_id"] != records[2]["reconcile_id"]
    assert records[0]["trace_id"] != records[2]["trace_id"]  # each reconcile is a trace of its own


async def test_requests_outside_a_span_carry_no_trace_context(
    kube: tuple[ApiKubeClient, list[dict[str, str]]],
) -> None:
    api, seen = kube
    with pytest.raises(NotFoundError):
        await api.get(SECRETS, "ns", "x")
    assert "traceparent" not in seen[0]
