"""The storage under test: the conformance suite runs once against memory and once against real etcd."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from apiserver.storage.engine import StorageEngine
from apiserver.storage.etcd import EtcdConfig, EtcdStorage
from apiserver.storage.keys import KeyLayout
from apiserver.storage.memory import MemoryStorage

PROGRESS_INTERVAL = 0.2


def unique_layout() -> KeyLayout:
    return KeyLayout(prefix=f"/test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["memory", pytest.param("etcd", marks=pytest.mark.integration)])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[StorageEngine]:
    layout = unique_layout()
    backend: MemoryStorage | EtcdStorage
    if request.param == "memory":
        backend = MemoryStorage(layout=layout, progress_interval=PROGRESS_INTERVAL)
    else:
        server = request.getfixturevalue("etcd_server")
        backend = EtcdStorage(
            EtcdConfig(
                endpoint=server.client_url,
                layout=layout,
                request_timeout=5.0,
                compaction_interval=0,
                progress_interval=PROGRESS_INTERVAL,
            )
        )
    async with backend:
        yield backend
