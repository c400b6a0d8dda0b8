"""What `ApiKubeClient`'s unary requests put on the wire: the path and query, the credentials of the
configuration (re-read through its refresh hook), kubernetes_asyncio's User-Agent, the content type of the
patch, and the body as JSON — and that the proxy environment is read once, not per request.

Like test_kube_errors, this needs a socket: the transport is what is under test (127.0.0.1, ephemeral port).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from controllers.kube import ApiKubeClient
from controllers.kube.resources import ORDERS, SECRETS


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "headers": dict(request.headers),
                "body": json.loads(body) if body else None,
            }
        )
        return web.json_response({"kind": "Secret", "metadata": {"name": "x", "resourceVersion": "7"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def client_with_token(url: str, tokens: list[str]) -> ApiKubeClient:
    configuration = k8s_client.Configuration(host=url)
    configuration.api_key_prefix["BearerToken"] = "Bearer"
    configuration.api_key["BearerToken"] = tokens[0]

    def refresh(conf: Any, *_: Any) -> None:
        conf.api_key["BearerToken"] = tokens[0]

    configuration.refresh_api_key_hook = refresh
    return ApiKubeClient(k8s_client.ApiClient(configuration))


async def test_requests_carry_credentials_body_and_content_type(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = recorder
    tokens = ["t-1"]
    client = client_with_token(url, tokens)
    try:
        body = {"metadata": {"name": "ä"}, "spec": {"n": 1.5, "list": [1, None, True]}}
        assert (await client.create(ORDERS, "ns", body))["metadata"]["resourceVersion"] == "7"
        await client.patch(ORDERS, "ns", "o", {"metadata": {"finalizers": ["f"]}})
        await client.patch(ORDERS, "ns", "o", [{"op": "remove", "path": "/x"}], patch_type="json")
        tokens[0] = "t-2"  # rotated: the refresh hook is consulted on every request
        await client.replace(ORDERS, "ns", "o", body, subresource="status")
        await client.list(SECRETS, "ns", label_selector="a.b/c=d", limit=5, continue_="tok")
        await client.delete(ORDERS, "ns", "o", uid="u-1", propagation_policy="Background")
    finally:
        await client.close()
    create, merge, jsonpatch, put, listed, delete = seen
    assert (create["method"], create["path"], create["body"]) == (
        "POST",
        "/apis/arc.opendefense.cloud/v1alpha1/namespaces/ns/orders",
        body,
    )
    assert create["headers"]["Authorization"] == "Bearer t-1"
    assert create["headers"]["Content-Type"] == "application/json"
    assert create["headers"]["Accept"] == "application/json"
    assert create["headers"]["User-Agent"].startswith("OpenAPI-Generator/")
    assert merge["headers"]["Content-Type"] == "application/merge-patch+json"
    assert jsonpatch["headers"]["Content-Type"] == "application/json-patch+json"
    assert jsonpatch["body"] == [{"op": "remove", "path": "/x"}]
    assert put["method"] == "PUT" and put["path"].endswith("/orders/o/status")
    assert put["headers"]["Authorization"] == "Bearer t-2"
    assert listed["query"] == [("labelSelector", "a.b/c=d"), ("limit", "5"), ("continue", "tok")]
    assert delete["body"] == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "u-1"},
        "propagationPolicy": "Background",
    }


async def test_the_proxy_environment_is_read_once(
    recorder: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import controllers.kube.client as kube_client

    url, seen = recorder
    calls: list[str] = []
    real = kube_client.get_env_proxy_for_url

    def counting(target: Any) -> Any:
        calls.append(str(target))
        return real(target)

    monkeypatch.setattr(kube_client, "get_env_proxy_for_url", counting)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = client_with_token(url, ["t"])
    try:
        for _ in range(5):
            await client.get(SECRETS, "ns", "x")
    finally:
        await client.close()
    assert len(seen) == 5
    assert calls == [url]
