"""The API server in-process over the in-memory storage, with an admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver.server import Config, create_app
from apiserver.storage.memory import MemoryStorage

TOKEN = "admin-token"
GV = "/apis/arc.opendefense.cloud/v1alpha1"


class Api:
    """A thin JSON client for the tests: every call returns (status, body, headers)."""

    def __init__(self, client: TestClient[Any, Any], storage: MemoryStorage) -> None:
        self.client = client
        self.storage = storage
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        all_headers = {**self.headers, **(headers or {})}
        if content_type:
            all_headers["Content-Type"] = content_type
        resp = await self.client.request(
            method, path, json=json, data=data, headers=all_headers, params=params
        )
        raw = await resp.read()
        try:
            import orjson

            body: Any = orjson.loads(raw) if raw else None
        except ValueError:
            body = raw.decode()
        return resp.status, body, resp.headers


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},admin,1,"system:masters"\n')
    storage = MemoryStorage()
    await storage.start()
    app = create_app(Config(storage=storage, token_auth_file=tokens, bookmark_interval=0.0))
    async with TestClient(TestServer(app)) as client:
        yield Api(client, storage)
    await storage.close()


def order(name: str = "o1", namespace: str = "team-a", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "demo"}},
        "spec": {
            "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
            "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
        },
    }
    body.update(extra)
    return body
