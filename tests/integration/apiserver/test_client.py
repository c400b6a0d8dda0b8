"""The official kubernetes_asyncio client against the standalone ARC API server (issue 5).

- an informer (list, then watch from the list's resourceVersion; 410 → relist) survives an etcd
  compaction of the revision it would resume from;
- watch-list (``sendInitialEvents``) gives the current state, then the ``k8s.io/initial-events-end``
  bookmark, then changes;
- 64 concurrent read-modify-write updates with resourceVersion preconditions see only 200s and 409s and
  lose nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from hack.etcd import EtcdServer
from tests.integration.apiserver.conftest import (
    API_VERSION,
    GROUP,
    GV_PATH,
    VERSION,
    async_wait_for,
    order,
    unique_namespace,
)

pytestmark = pytest.mark.integration

WAIT = 30.0


def artifact_type(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactType",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"workflowTemplateRef": {"name": "copy", "clusterScope": False}},
    }


# ---- etcd, without aetcd: the v3 HTTP gateway ------------------------------------------------------------


async def etcd_revision(etcd: EtcdServer) -> int:
    """The etcd cluster's current revision (the header of any range request)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{etcd.client_url}/v3/kv/range",
            json={"key": base64.b64encode(b"/nothing-here").decode()},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return int(body["header"]["revision"])


async def etcd_compact(etcd: EtcdServer, revision: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{etcd.client_url}/v3/kv/compaction",
            json={"revision": str(revision), "physical": True},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()


# ---- an informer (client-go's reflector, reduced to its essentials) --------------------------------------


@dataclass
class Informer:
    """List, then watch from the list's resourceVersion; resume watches from the last seen revision;
    relist on 410 Expired. ``cache`` maps names to the objects as last seen."""

    api: k8s_client.CustomObjectsApi
    namespace: str
    plural: str
    watch_timeout: int = 1
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_version: str = ""
    lists: int = 0
    expired: int = 0
    events: list[tuple[str, str]] = field(default_factory=list)

    async def relist(self) -> str:
        listing = await self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural)
        self.cache = {item["metadata"]["name"]: item for item in listing["items"]}
        self.lists += 1
        self.resource_version = str(listing["metadata"]["resourceVersion"])
        return self.resource_version

    async def run(self) -> None:
        resource_version = await self.relist()
        while True:
            watch = Watch()
            try:
                # timeout_seconds: the server ends each watch after a second (like client-go's random
                # timeouts), so the informer resumes from its last revision again and again.
                stream = watch.stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    self.plural,
                    resource_version=resource_version,
                    timeout_seconds=self.watch_timeout,
                )
                async for event in stream:
                    obj = event["raw_object"]
                    name = obj["metadata"]["name"]
                    self.events.append((event["type"], name))
                    if event["type"] == "DELETED":
                        self.cache.pop(name, None)
                    else:
                        self.cache[name] = obj
                    resource_version = self.resource_version = obj["metadata"]["resourceVersion"]
            except ApiException as exc:
                if exc.status != 410:
                    raise
                self.expired += 1
                resource_version = await self.relist()
            finally:
                await watch.close()


async def test_informer_survives_compaction(
    custom_objects: k8s_client.CustomObjectsApi, etcd_server: EtcdServer, namespace: str
) -> None:
    api = custom_objects
    plural = "artifacttypes"  # no other test watches this resource: its shared etcd watch is ours alone
    for name in ("a", "b"):
        await api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, artifact_type(name, namespace)
        )
    informer = Informer(api, namespace, plural)
    task = asyncio.create_task(informer.run())
    try:
        await async_wait_for(lambda: set(informer.cache) == {"a", "b"}, within=WAIT, what="the first sync")
        await api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, artifact_type("c", namespace)
        )
        await api.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, "a")
        await async_wait_for(lambda: set(informer.cache) == {"b", "c"}, within=WAIT, what="watched changes")
        assert informer.lists == 1 and informer.expired == 0

        # The informer resumes each watch from the last revision it saw; a write elsewhere moves etcd past
        # it, and a compaction at that newer revision removes the history the informer would resume from.
        elsewhere = unique_namespace()
        await api.create_namespaced_custom_object(
            GROUP, VERSION, elsewhere, plural, artifact_type("elsewhere", elsewhere)
        )
        compacted_at = await etcd_revision(etcd_server)
        assert compacted_at > int(informer.resource_version)
        await etcd_compact(etcd_server, compacted_at)

        await async_wait_for(
            lambda: informer.expired >= 1 and informer.lists >= 2, within=WAIT, what="the 410 and the relist"
        )
        assert set(informer.cache) == {"b", "c"}

        # And it keeps watching after the relist.
        await api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, artifact_type("d", namespace)
        )
        await api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            "b",
            {"metadata": {"labels": {"seen": "yes"}}},
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
        )
        await async_wait_for(
            lambda: (
                "d" in informer.cache
                and informer.cache["b"]["metadata"].get("labels", {}).get("seen") == "yes"
            ),
            within=WAIT,
            what="changes after the relist",
        )
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    current = await api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    assert {item["metadata"]["name"]: item for item in current["items"]} == informer.cache


# ---- watch-list -------------------------------------------------------------------------------------------


async def test_watch_list_sends_initial_events_then_bookmark(
    api_client: k8s_client.ApiClient, custom_objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    created = []
    for name in ("w1", "w2", "w3"):
        obj = await custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "orders", order(name, namespace)
        )
        created.append(obj)
    # This client has no sendInitialEvents parameter: a raw request through the same ApiClient.
    resp = await api_client.call_api(
        f"{GV_PATH}/namespaces/{namespace}/orders",
        "GET",
        query_params=[
            ("watch", "true"),
            ("sendInitialEvents", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("allowWatchBookmarks", "true"),
        ],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=60,
    )
    try:
        assert resp.status == 200

        async def next_event() -> dict[str, Any]:
            async with asyncio.timeout(WAIT):
                while True:
                    line = await resp.content.readline()
                    assert line, "the watch ended"
                    event: dict[str, Any] = orjson.loads(line)
                    # Periodic bookmarks (the server under test sends them every second) are skipped
                    # unless they end the initial events.
                    annotations = event["object"]["metadata"].get("annotations") or {}
                    if event["type"] != "BOOKMARK" or annotations.get("k8s.io/initial-events-end"):
                        return event

        initial = [await next_event() for _ in created]
        assert [e["type"] for e in initial] == ["ADDED"] * 3
        assert sorted(e["object"]["metadata"]["name"] for e in initial) == ["w1", "w2", "w3"]
        for event in initial:
            assert event["object"]["kind"] == "Order"
            assert event["object"]["apiVersion"] == API_VERSION

        bookmark = await next_event()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["kind"] == "Order"
        assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        newest = max(int(obj["metadata"]["resourceVersion"]) for obj in created)
        assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= newest

        await custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "orders", order("w4", namespace)
        )
        later = await next_event()
        assert later["type"] == "ADDED"
        assert later["object"]["metadata"]["name"] == "w4"
        assert int(later["object"]["metadata"]["resourceVersion"]) > int(
            bookmark["object"]["metadata"]["resourceVersion"]
        )
    finally:
        resp.close()


# ---- optimistic concurrency -------------------------------------------------------------------------------

WRITERS = 64
IDS_ANNOTATION = "arc.opendefense.cloud/writers"


async def test_concurrent_updates_conflict_but_lose_nothing(
    custom_objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    api = custom_objects
    await api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "orders", order("contended", namespace, annotations={IDS_ANNOTATION: ""})
    )
    statuses: Counter[int] = Counter()

    async def writer(ident: int) -> None:
        while True:
            current = await api.get_namespaced_custom_object(GROUP, VERSION, namespace, "orders", "contended")
            ids = [x for x in current["metadata"]["annotations"][IDS_ANNOTATION].split(",") if x]
            current["metadata"]["annotations"][IDS_ANNOTATION] = ",".join([*ids, str(ident)])
            current["spec"]["queueName"] = f"q{len(ids) + 1}"
            try:
                _, status, _ = await api.replace_namespaced_custom_object_with_http_info(
                    GROUP, VERSION, namespace, "orders", "contended", current
                )
            except ApiException as exc:
                statuses[exc.status] += 1
                if exc.status != 409:
                    raise
                assert orjson.loads(exc.body or "{}")["reason"] == "Conflict"
                continue
            statuses[status] += 1
            return

    async with asyncio.timeout(180):
        await asyncio.gather(*(writer(i) for i in range(WRITERS)))

    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] == WRITERS
    assert statuses[409] > 0, "64 concurrent writers never conflicted: the test did not test anything"
    final = await api.get_namespaced_custom_object(GROUP, VERSION, namespace, "orders", "contended")
    ids = final["metadata"]["annotations"][IDS_ANNOTATION].split(",")
    assert sorted(int(x) for x in ids) == list(range(WRITERS))
    assert final["spec"]["queueName"] == f"q{WRITERS}"
    assert final["metadata"]["generation"] == 1 + WRITERS  # every accepted write changed the spec once
