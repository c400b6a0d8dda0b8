"""House rule 7 for the controllers: nothing of aiohttp or kubernetes_asyncio leaks out of `controllers.kube`.

In the spirit of kopf's `test_aiohttp_is_not_leaked_outside`: the real `ApiKubeClient` talks to a server
that misbehaves in every way we can think of (closed port, 5xx with and without a Status, malformed or
non-object JSON, a body cut short, a server that hangs, a socket that answers with garbage, watch streams
with bad lines or cut mid-event), and every failure must surface as the `KubeError` family: an `ApiError`
subclass for an HTTP answer, `TransportError` when there was none, `DecodeError` for a 2xx we cannot read.

The servers bind 127.0.0.1 with ephemeral ports: this is the one unit module that needs sockets, because
the transport itself is what is under test.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from controllers.kube import (
    AlreadyExistsError,
    ApiKubeClient,
    ConfigError,
    ConflictError,
    DecodeError,
    ExpiredError,
    KubeError,
    NotFoundError,
    TransportError,
    connect,
)
from controllers.kube.errors import ApiError, InternalError, ServiceUnavailableError
from controllers.kube.resources import SECRETS

REPO = Path(__file__).resolve().parents[3]


def status(code: int, reason: str, message: str = "m") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}  # fmt: skip


async def cut_short(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "1000"})
    await resp.prepare(request)
    await resp.write(b'{"kind": "Sec')
    assert request.transport is not None
    request.transport.close()
    return resp


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


async def watch_stream(request: web.Request) -> web.StreamResponse:
    """`?case=` picks the stream: big (one 1.2 MB event split over chunks), bad-line, expired, cut."""
    case = request.query.get("case", "")
    if case == "hang":
        await asyncio.sleep(30)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    obj = {
        "metadata": {"name": "s", "namespace": "ns", "resourceVersion": "5"},
        "data": {"x": "A" * 1_200_000},
    }
    if case == "big":
        line = json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"
        for i in range(0, len(line), 70_000):
            await resp.write(line[i : i + 70_000])
        await resp.write(b'\n{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}')
    elif case == "bad-line":
        await resp.write(b'{"type": "ADDED", "object": {"metadata": {}}}\n{not json}\n')
    elif case == "no-object":
        await resp.write(b'{"type": "ADDED", "object": [1]}\n')
    elif case == "expired":
        event = {"type": "ERROR", "object": status(410, "Expired", "too old resource version")}
        await resp.write(json.dumps(event).encode() + b"\n")
    elif case == "error-garbage":
        await resp.write(b'{"type": "ERROR", "object": {"code": "x"}}\n')
    elif case == "cut":
        await resp.write(b'{"type": "ADDED", "object": {"metad')
        assert request.transport is not None
        request.transport.close()
    await resp.write_eof()
    return resp


async def dispatch(request: web.Request) -> web.StreamResponse:
    """The secret's name picks the behaviour: /api/v1/namespaces/ns/secrets/<behaviour>."""
    if request.query.get("watch") == "true":
        return await watch_stream(request)
    behaviour = request.match_info.get("name") or request.query.get("labelSelector", "ok")
    answers: dict[str, web.Response] = {
        "ok": web.json_response({"kind": "Secret", "metadata": {"name": "ok"}}),
        "plain-500": web.Response(status=500, text="upstream exploded"),
        "status-500": web.json_response(status(500, "InternalError", "etcd down"), status=500),
        "status-503": web.json_response(status(503, "ServiceUnavailable"), status=503),
        "empty-502": web.Response(status=502),
        "not-found": web.json_response(status(404, "NotFound"), status=404),
        "conflict": web.json_response(status(409, "Conflict"), status=409),
        "exists": web.json_response(status(409, "AlreadyExists"), status=409),
        "teapot": web.Response(status=418, text="<html>"),
        "malformed": web.Response(status=200, text='{"kind": "Secret", ', content_type="application/json"),
        "not-utf8": web.Response(status=200, body=b"\xff\xfe{}", content_type="application/json"),
        "array": web.json_response([1, 2, 3]),
        "empty-200": web.Response(status=200),
    }
    if behaviour == "cut-short":
        return await cut_short(request)
    if behaviour == "hang":
        return await hang(request)
    return answers[behaviour]


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/api/v1/namespaces/ns/secrets/{name}", dispatch)
    app.router.add_route("GET", "/api/v1/namespaces/ns/secrets", dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def garbage_server() -> AsyncIterator[str]:
    """A TCP server that answers any request with bytes that are not HTTP."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01garbage\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


def client_for(url: str, timeout: float = 5.0) -> ApiKubeClient:
    return ApiKubeClient(k8s_client.ApiClient(k8s_client.Configuration(host=url)), timeout=timeout)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def failure(call: Awaitable[Any]) -> KubeError:
    """The exception `call` raises; it must be ours (defined in controllers.kube), nothing else."""
    try:
        await call
    except KubeError as exc:
        assert type(exc).__module__ == "controllers.kube.errors", type(exc)
        return exc
    except BaseException as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(
            f"{type(exc).__module__}.{type(exc).__qualname__} leaked out of controllers.kube: {exc!r}"
        )
    pytest.fail("no exception")


@pytest.mark.parametrize(
    ("behaviour", "expected", "code"),
    [
        ("plain-500", InternalError, 500),
        ("status-500", InternalError, 500),
        ("status-503", ServiceUnavailableError, 503),
        ("empty-502", InternalError, 502),
        ("not-found", NotFoundError, 404),
        ("conflict", ConflictError, 409),
        ("exists", AlreadyExistsError, 409),
        ("teapot", ApiError, 418),
    ],
)
async def test_http_errors_are_api_errors_keeping_the_status(
    server: str, behaviour: str, expected: type[ApiError], code: int
) -> None:
    client = client_for(server)
    try:
        for call in (
            client.get(SECRETS, "ns", behaviour),
            client.replace(SECRETS, "ns", behaviour, {"metadata": {}}),
            client.patch(SECRETS, "ns", behaviour, {"data": None}),
            client.delete(SECRETS, "ns", behaviour, uid="u"),
        ):
            exc = await failure(call)
            assert type(exc) is expected and isinstance(exc, ApiError)
            assert exc.code == code and exc.status.code == code
            assert exc.status.message, "the server's message (or body) is kept"
    finally:
        await client.close()


@pytest.mark.parametrize("behaviour", ["malformed", "not-utf8", "array", "empty-200"])
async def test_a_2xx_we_cannot_read_is_a_decode_error(server: str, behaviour: str) -> None:
    client = client_for(server)
    try:
        exc = await failure(client.get(SECRETS, "ns", behaviour))
        assert isinstance(exc, DecodeError)
        assert await client.get(SECRETS, "ns", "ok") == {"kind": "Secret", "metadata": {"name": "ok"}}
    finally:
        await client.close()


async def test_no_answer_is_a_transport_error(server: str, garbage_server: str) -> None:
    cases: list[tuple[str, str, float]] = [
        ("closed port", closed_port(), 5.0),
        ("body cut short", server, 5.0),
        ("server hangs", server, 0.3),
        ("not HTTP", garbage_server, 5.0),
    ]
    for what, url, timeout in cases:
        client = client_for(url, timeout=timeout)
        name = {"body cut short": "cut-short", "server hangs": "hang"}.get(what, "ok")
        try:
            exc = await failure(client.get(SECRETS, "ns", name))
            assert isinstance(exc, TransportError), (what, exc)
            exc = await failure(client.list(SECRETS, "ns", label_selector=name))
            assert isinstance(exc, TransportError), (what, exc)
            if what != "body cut short":
                exc = await failure(watch(client, name))
                assert isinstance(exc, TransportError), (what, exc)
        finally:
            await client.close()


async def watch(client: ApiKubeClient, case: str) -> list[dict[str, Any]]:
    """Open a watch whose stream is `case` (the server reads it from the query)."""
    events = []
    original = client._api.call_api

    async def with_case(*args: Any, **kwargs: Any) -> Any:
        kwargs["query_params"] = [*kwargs["query_params"], ("case", case)]
        return await original(*args, **kwargs)

    client._api.call_api = with_case  # type: ignore[method-assign]
    try:
        async for event in client.watch(SECRETS, "ns", resource_version="1", timeout_seconds=5):
            events.append(event)
    finally:
        client._api.call_api = original  # type: ignore[method-assign]
    return events


async def test_watch_streams_map_their_failures_and_read_lines_of_any_length(server: str) -> None:
    client = client_for(server)
    try:
        events = await watch(client, "big")
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
        assert len(events[0]["object"]["data"]["x"]) == 1_200_000  # aiohttp's readline refuses > 512 KiB
        assert isinstance(await failure(watch(client, "bad-line")), DecodeError)
        assert isinstance(await failure(watch(client, "no-object")), DecodeError)
        assert isinstance(await failure(watch(client, "expired")), ExpiredError)
        assert isinstance(await failure(watch(client, "error-garbage")), InternalError)
        assert isinstance(await failure(watch(client, "cut")), (TransportError, DecodeError))
    finally:
        await client.close()


async def test_an_unusable_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    missing = await failure(connect(tmp_path / "nope"))
    assert isinstance(missing, ConfigError)
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: 3\n")
    assert isinstance(await failure(connect(broken)), ConfigError)


def test_only_controllers_kube_imports_the_http_client_libraries() -> None:
    """The static half of the rule: aiohttp's client side and kubernetes_asyncio live in controllers/kube.

    The one other HTTP client is the Endpoint probe's, which talks to tenants' registries, not to the API:
    it is that traffic's I/O boundary and maps every aiohttp error to a condition itself (no
    kubernetes_asyncio).
    """
    pattern = re.compile(r"^\s*(from|import)\s+(kubernetes_asyncio|aiohttp)\b(?!\s+import\s+web\b)", re.M)
    probe = REPO / "controllers" / "endpoint" / "probe.py"
    assert "kubernetes_asyncio" not in probe.read_text()
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "controllers").rglob("*.py")
        if "kube" not in path.relative_to(REPO / "controllers").parts[:1]
        and path != probe
        and pattern.search(path.read_text())
    ]
    assert offenders == []
