"""The installation's hash key (SPEC §4.1): created once, shared by replicas, never shown anywhere else."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest

from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import (
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    ENDPOINTS,
    ORDERS,
    SECRETS,
)
from controllers.order import setup_order_controller
from controllers.order.hashkey import DATA_KEY, KEY_BYTES, HashKey, load_or_create_hash_key
from controllers.runtime import Manager

pytestmark = pytest.mark.looptime


async def test_the_key_is_created_once_and_then_read() -> None:
    client = FakeKubeClient()
    first = await load_or_create_hash_key(client, "arc-system/arc-artifact-hash-key")
    assert len(first.value) == KEY_BYTES
    second = await load_or_create_hash_key(client, "arc-system/arc-artifact-hash-key")
    assert second == first
    stored = client.objects[(SECRETS, "arc-system", "arc-artifact-hash-key")]
    assert base64.b64decode(stored["data"][DATA_KEY]) == first.value
    assert stored["immutable"] is True


async def test_replicas_racing_to_create_end_up_with_one_key() -> None:
    client = FakeKubeClient()
    keys = await asyncio.gather(*(load_or_create_hash_key(client) for _ in range(5)))
    assert len({k.value for k in keys}) == 1


async def test_a_key_secret_without_the_key_is_an_error() -> None:
    client = FakeKubeClient()
    await client.create(SECRETS, "arc-system", {"metadata": {"name": "k"}, "data": {"other": "YQ=="}})
    with pytest.raises(ValueError, match="no data key"):
        await load_or_create_hash_key(client, "arc-system/k")


def test_the_key_is_masked_in_repr_and_str() -> None:
    key = HashKey(b"\x01" * 32)
    assert "\\x01" not in repr(key) and "\\x01" not in str(key)
    with pytest.raises(ValueError):
        HashKey(b"short")


async def test_the_key_never_appears_in_objects_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Run the Order controller with credentials to hash: no object but the key's own Secret, and no log
    line, holds the key in any encoding."""
    caplog.set_level(logging.DEBUG)
    client = FakeKubeClient()
    key = await load_or_create_hash_key(client)
    manager = Manager(client, bind_address=None)
    setup_order_controller(manager, hash_key=key, concurrency=2)
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {"metadata": {"name": "oci"}, "spec": {"workflowTemplateRef": {"name": "t", "clusterScope": True}}},
    )
    await client.create(SECRETS, "ns", {"metadata": {"name": "creds"}, "data": {"password": "cHc="}})
    for name in ("src", "dst"):
        spec = {"type": "oci", "remoteURL": f"{name}.example", "secretRef": {"name": "creds"}}
        await client.create(ENDPOINTS, "ns", {"metadata": {"name": name}, "spec": spec})
    order = {
        "metadata": {"name": "o"},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [{"type": "oci", "spec": {"image": "a"}}],
        },
    }
    await client.create(ORDERS, "ns", order)
    task = asyncio.create_task(manager.run())
    try:
        async with asyncio.timeout(10):
            while True:
                if any(res == ARTIFACT_WORKFLOWS for res, _, _ in client.objects):
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    encodings = [key.value.hex(), base64.b64encode(key.value).decode(), repr(key.value)[2:-1]]
    for (res, ns, name), obj in client.objects.items():
        if (res, ns, name) == (SECRETS, "arc-system", "arc-artifact-hash-key"):
            continue
        text = json.dumps(obj)
        assert not any(e in text for e in encodings), (res, ns, name)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert logged  # the controller did log
    assert not any(e in logged for e in encodings)
