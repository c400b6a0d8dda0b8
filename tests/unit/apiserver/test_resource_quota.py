"""Object-count ResourceQuota for ARC's kinds, through the HTTP handlers over the in-memory storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver.admission.resource_quota import parse_quantity
from apiserver.server import Config, create_app
from apiserver.storage.memory import MemoryStorage
from tests.unit.apiserver.conftest import GV, TOKEN, Api, order

RESOURCE = "count/orders.arc.opendefense.cloud"


def quota(name: str, namespace: str, hard: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hard": hard, **spec},
    }


@pytest.fixture
def quotas() -> list[dict[str, Any]]:
    return []


@pytest.fixture
async def quota_api(tmp_path: Path, quotas: list[dict[str, Any]]) -> AsyncIterator[Api]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},admin,1,"system:masters"\n')
    storage = MemoryStorage()
    await storage.start()
    app = create_app(
        Config(storage=storage, token_auth_file=tokens, bookmark_interval=0.0, resource_quotas=lambda: quotas)
    )
    async with TestClient(TestServer(app)) as client:
        yield Api(client, storage)
    await storage.close()


@pytest.mark.parametrize(
    ("text", "value"),
    [("5", 5), ("1k", 1000), ("2Ki", 2048), ("1e3", 1000), ("1.5k", 1500), ("0", 0), ("x", None), ("", None)],
)
def test_parse_quantity(text: str, value: int | None) -> None:
    assert parse_quantity(text) == (None if value is None else Decimal(value))


async def test_creates_beyond_the_quota_get_kubes_403(quota_api: Api, quotas: list[dict[str, Any]]) -> None:
    quotas += [
        quota("loose", "team-a", {RESOURCE: "10"}),
        quota("orders", "team-a", {RESOURCE: "2", "pods": "5"}),
        quota("elsewhere", "team-b", {RESOURCE: "0"}),
        quota("scoped", "team-a", {RESOURCE: "0"}, scopes=["BestEffort"]),
    ]
    path = f"{GV}/namespaces/team-a/orders"
    for name in ("o1", "o2"):
        status, body, _ = await quota_api.call("POST", path, json=order(name))
        assert status == 201, body
    status, body, _ = await quota_api.call("POST", path, json=order("o3"))
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'orders.arc.opendefense.cloud "o3" is forbidden: exceeded quota: orders, '
        f"requested: {RESOURCE}=1, used: {RESOURCE}=2, limited: {RESOURCE}=2"
    )
    assert body["details"] == {"name": "o3", "group": "arc.opendefense.cloud", "kind": "orders"}
    # Other kinds and other namespaces' quotas are not involved; a delete makes room again.
    status, body, _ = await quota_api.call("DELETE", f"{path}/o1")
    assert status == 200, body
    status, body, _ = await quota_api.call("POST", path, json=order("o3"))
    assert status == 201, body


async def test_concurrent_creates_do_not_overshoot(quota_api: Api, quotas: list[dict[str, Any]]) -> None:
    quotas.append(quota("orders", "team-a", {RESOURCE: "3"}))
    path = f"{GV}/namespaces/team-a/orders"
    replies = await asyncio.gather(*(quota_api.call("POST", path, json=order(f"o{i}")) for i in range(20)))
    assert sorted(status for status, _, _ in replies) == [201] * 3 + [403] * 17
    _, body, _ = await quota_api.call("GET", path)
    assert len(body["items"]) == 3


async def test_no_quota_no_limit(quota_api: Api) -> None:
    path = f"{GV}/namespaces/team-a/orders"
    for i in range(5):
        status, body, _ = await quota_api.call("POST", path, json=order(f"o{i}"))
        assert status == 201, body
