"""Hostile input (issue 14): one small request must never stop the server for everyone.

A regression test per finding of the security review, on the session's real ``arc-apiserver`` over real
etcd: each bad request gets kube's Status (a 4xx), changes nothing stored, costs at most one log line and
never a traceback; expensive documents (YAML alias bombs, large YAML, copy-amplifying JSON patches) are
refused or decoded without blocking other requests; objects nested too deep are refused at write, and one
stored before the limit existed no longer breaks every LIST; a watch or list from a future
resourceVersion answers as kube's watch cache does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from apiserver.limits import MAX_DECODE_DEPTH, MAX_JSON_PATCH_OPERATIONS, MAX_OBJECT_DEPTH
from apiserver.storage.etcd import EtcdConfig, EtcdStorage
from apiserver.storage.keys import KeyLayout
from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer
from tests.integration.apiserver.conftest import API_VERSION, GV_PATH, RawClient, order
from tests.integration.apiserver.test_bad_input import (
    JSON_PATCH,
    MERGE,
    ORDER,
    ORDERS,
    Case,
    causes,
    check_reply,
    seed,
    snapshot,
    with_spec,
)

pytestmark = pytest.mark.integration

INVALID = "FieldValueInvalid"
ARTIFACT_SPEC = "spec.artifacts[0].spec"
ARTIFACT_SPEC_DEPTH = 5  # Order(1) > spec(2) > artifacts(3) > [0](4) > spec(5)


def nested_json(depth: int) -> bytes:
    """``{"a":{"a":…{}…}}``: ``depth`` nested objects, built as text (deeper than any encoder nests)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def deep_order_bytes(name: str, namespace: str, spec_depth: int) -> bytes:
    """An Order whose first artifact's free ``spec`` nests ``spec_depth`` objects."""
    body = order(name, namespace, images=("a",))
    body["spec"]["artifacts"][0]["spec"] = {"marker": 1}
    return orjson.dumps(body).replace(b'{"marker":1}', nested_json(spec_depth))


def too_deep_field() -> str:
    """The field kube-style validation names: the first object nested deeper than the limit."""
    return ARTIFACT_SPEC + ".a" * (MAX_OBJECT_DEPTH + 1 - ARTIFACT_SPEC_DEPTH)


def alias_bomb(levels: int = 9) -> bytes:
    """The 'billion laughs' YAML: each level names the previous one nine times (under 1 KB)."""
    doc = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        doc += f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]\n".encode()
        previous = name
    return doc


def copy_amplification(steps: int = 30) -> list[dict[str, Any]]:
    """A JSON patch of ~3 KB whose copies double a 1 KB list ``steps`` times (2^30 KB if applied):
    each ``copy`` appends the whole list to itself."""
    base = "/spec/artifacts/0/spec"
    ops: list[dict[str, Any]] = [{"op": "add", "path": f"{base}/d", "value": ["x" * 1024]}]
    ops += [{"op": "copy", "from": f"{base}/d", "path": f"{base}/d/-"} for _ in range(steps)]
    return ops


HOSTILE_CASES = [
    # ---- names, limit, resourceVersion (were 500s with a traceback each) ---------------------------
    Case(
        "name-with-slash",
        "GET",
        "/namespaces/{ns}/orders/a%2Fb",
        400,
        "BadRequest",
        message="Name parameter invalid: \"a/b\": may not contain '/'",
    ),
    Case(
        "name-with-percent",
        "DELETE",
        "/namespaces/{ns}/orders/a%25b",
        400,
        "BadRequest",
        message="Name parameter invalid: \"a%b\": may not contain '%'",
    ),
    Case(
        "limit-beyond-int64",
        "GET",
        ORDERS,
        400,
        "BadRequest",
        params=(("limit", "99999999999999999999"),),
        message='strconv.ParseInt: parsing "99999999999999999999": value out of range',
    ),
    Case("limit-int64-max", "GET", ORDERS, 200, "", params=(("limit", str(2**63 - 1)),)),
    Case(
        "resource-version-beyond-int64",
        "GET",
        ORDERS,
        400,
        "BadRequest",
        params=(("resourceVersion", "99999999999999999999"),),
    ),
    # ---- object size -------------------------------------------------------------------------------
    Case(
        "object-too-large-for-etcd",
        "POST",
        ORDERS,
        413,
        "RequestEntityTooLarge",
        body=lambda s: with_spec(
            order("big", s.namespace), artifacts=[{"type": "oci", "spec": {"x": "x" * (2 * 1024 * 1024)}}]
        ),
    ),
    Case(
        "too-many-artifacts",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("many", s.namespace, images=tuple(str(i) for i in range(1001))),
        causes=causes(("spec.artifacts", "FieldValueTooMany")),
        kind="Order",
    ),
    # ---- nesting depth (an Order 248 deep was accepted, then every LIST answered 500) --------------
    Case(
        "too-deep-create",
        "POST",
        ORDERS,
        422,
        "Invalid",
        raw=deep_order_bytes("deep", "{ns}", 248),
        content_type="application/json",
        causes=causes((too_deep_field(), INVALID)),
        kind="Order",
    ),
    Case(
        "too-deep-merge-patch",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        raw=b'{"spec":{"artifacts":[{"type":"oci","spec":' + nested_json(MAX_OBJECT_DEPTH) + b"}]}}",
        content_type=MERGE,
        causes=causes((too_deep_field(), INVALID)),
        kind="Order",
    ),
    Case(
        "merge-patch-document-too-deep",
        "PATCH",
        ORDER,
        400,
        "BadRequest",
        raw=nested_json(MAX_DECODE_DEPTH + 44),
        content_type=MERGE,
        message=f"error decoding patch: exceeded max depth of {MAX_DECODE_DEPTH}",
    ),
    # ---- YAML --------------------------------------------------------------------------------------
    Case(
        "yaml-alias-bomb",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        raw=alias_bomb(),
        content_type="application/yaml",
        message="error decoding YAML: yaml: document contains excessive aliasing",
    ),
    Case(
        "yaml-too-deep",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        raw=b"[" * 300 + b"]" * 300,
        content_type="application/yaml",
        message=f"error decoding YAML: yaml: exceeded max depth of {MAX_DECODE_DEPTH}",
    ),
    # ---- JSON patch --------------------------------------------------------------------------------
    Case(
        "json-patch-too-many-operations",
        "PATCH",
        ORDER,
        413,
        "RequestEntityTooLarge",
        raw=orjson.dumps(
            [{"op": "test", "path": "/kind", "value": "Order"}] * (MAX_JSON_PATCH_OPERATIONS + 1)
        ),
        content_type=JSON_PATCH,
        message=(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {MAX_JSON_PATCH_OPERATIONS + 1}"
        ),
    ),
    Case(
        "json-patch-copy-amplification",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        raw=orjson.dumps(copy_amplification()),
        content_type=JSON_PATCH,
    ),
]


def log_lines(server: ArcApiServer) -> list[str]:
    return server.component.log_file.read_text(errors="replace").splitlines()


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[case.id for case in HOSTILE_CASES])
async def test_hostile_request_gets_a_4xx_one_log_line_and_changes_nothing(
    raw: RawClient, namespace: str, arc_apiserver: ArcApiServer, case: Case
) -> None:
    seeded = await seed(raw, namespace)
    before = await snapshot(raw, seeded)
    logged_before = len(log_lines(arc_apiserver))

    data = case.raw.replace(b"{ns}", namespace.encode()) if case.raw is not None else None
    content_type = case.content_type
    if case.body is not None:
        data = orjson.dumps(case.body(seeded))
        content_type = content_type or "application/json"
    started = time.monotonic()
    reply = await raw.request(
        case.method,
        GV_PATH + case.path.format(ns=namespace),
        data=data,
        content_type=content_type,
        params=list(case.params),
        request_timeout=20,
    )
    check_reply(case, reply)
    assert time.monotonic() - started < 10, "a bounded request must be answered promptly"
    assert await snapshot(raw, seeded) == before

    new_lines = log_lines(arc_apiserver)[logged_before:]
    assert not any("Traceback" in line for line in new_lines), "\n".join(new_lines)
    audit_id = reply.headers.get("Audit-Id", "")
    assert audit_id
    assert len([line for line in new_lines if audit_id in line]) <= 1, "\n".join(new_lines)


async def healthz_while(raw: RawClient, slow: asyncio.Task[Any]) -> float:
    """Seconds /healthz takes while ``slow`` is in flight (it must still be in flight afterwards)."""
    await asyncio.sleep(0.2)
    started = time.monotonic()
    reply = await raw.get("/healthz", request_timeout=10)
    assert reply.status == 200
    return time.monotonic() - started


async def test_large_yaml_is_decoded_without_blocking_other_requests(raw: RawClient, namespace: str) -> None:
    """A 2.8 MB flat YAML body (95 s on the event loop before) is decoded off the loop: /healthz answers
    while it is still being decoded, and the YAML create then succeeds."""
    head = (
        f"apiVersion: {API_VERSION}\nkind: Order\nmetadata:\n  name: flat\n  namespace: {namespace}\n"
        "spec:\n  defaults:\n    srcRef: {name: src}\n    dstRef: {name: dst}\n"
        "  artifacts:\n  - type: oci\n    spec:\n"
    ).encode()
    lines = [f"      k{i}: v{i}\n".encode() for i in range(140_000)]
    body = head + b"".join(lines)
    assert 2_500_000 < len(body) < 3 * 1024 * 1024
    create = asyncio.create_task(
        raw.request(
            "POST",
            f"{GV_PATH}/namespaces/{namespace}/orders",
            data=body,
            content_type="application/yaml",
            request_timeout=120,
        )
    )
    seconds = await healthz_while(raw, create)
    assert not create.done(), "the YAML create finished first: the check proves nothing"
    assert seconds < 2.0, f"/healthz took {seconds:.1f}s while a YAML body was decoded"
    reply = await create
    # The 131k-key artifact spec is far above etcd's request limit: 413, not a 500.
    assert reply.status in (201, 413), reply.body


async def test_alias_bomb_is_refused_at_once_and_others_are_served(raw: RawClient, namespace: str) -> None:
    bombs = [
        raw.request(
            "POST",
            f"{GV_PATH}/namespaces/{namespace}/orders",
            data=alias_bomb(levels),
            content_type="application/yaml",
            request_timeout=15,
        )
        for levels in (9, 10, 11, 12)
    ]
    replies = await asyncio.gather(*bombs, raw.get("/healthz", request_timeout=15))
    for reply in replies[:-1]:
        assert reply.status == 400, reply.body
        assert reply.body["message"] == "error decoding YAML: yaml: document contains excessive aliasing"
    assert replies[-1].status == 200


async def test_stored_object_deeper_than_the_limit_still_lists(
    raw: RawClient, namespace: str, arc_apiserver: ArcApiServer, etcd_server: EtcdServer
) -> None:
    """An Order nested 248 deep (its free spec), stored before the write-time limit existed, made every
    LIST that included it a 500 (namespace, cluster-wide, paged, watch initial events): all serve it now."""
    await seed(raw, namespace)
    layout = KeyLayout(prefix=arc_apiserver.etcd_prefix)
    raw_order = orjson.loads(orjson.dumps(order("legacy-deep", namespace, images=("a",))))
    raw_order["metadata"].update(
        uid="6b8f3c1e-0000-4000-8000-000000000001", creationTimestamp="2026-01-01T00:00:00Z"
    )
    value = orjson.dumps(raw_order).replace(b'{"image":"a"}', nested_json(249))
    async with EtcdStorage(
        EtcdConfig(endpoint=etcd_server.client_url, layout=layout, compaction_interval=0)
    ) as etcd:
        await etcd.create(layout.object_key("orders", "legacy-deep", namespace), value)

    for path, params in (
        (f"{GV_PATH}/namespaces/{namespace}/orders", ()),
        (f"{GV_PATH}/orders", ()),
        (f"{GV_PATH}/namespaces/{namespace}/orders", (("limit", "1"),)),
    ):
        reply = await raw.get(path, params=list(params))
        assert reply.status == 200, reply.body
    reply = await raw.get(f"{GV_PATH}/namespaces/{namespace}/orders")
    names = {item["metadata"]["name"] for item in reply.body["items"]}
    assert "legacy-deep" in names
    reply = await raw.get(f"{GV_PATH}/namespaces/{namespace}/orders/legacy-deep")
    assert reply.status == 200, reply.body
    events = await read_events(
        raw, f"{GV_PATH}/namespaces/{namespace}/orders", [("watch", "true")], until=2, within=10
    )
    assert "legacy-deep" in {e["object"]["metadata"].get("name") for e in events}, events
    # It can be deleted like any other object.
    reply = await raw.request("DELETE", f"{GV_PATH}/namespaces/{namespace}/orders/legacy-deep")
    assert reply.status == 200, reply.body


async def current_revision(raw: RawClient, namespace: str) -> int:
    reply = await raw.get(f"{GV_PATH}/namespaces/{namespace}/orders")
    assert reply.status == 200
    return int(reply.body["metadata"]["resourceVersion"])


async def test_list_from_a_future_resource_version_is_kubes_504(raw: RawClient, namespace: str) -> None:
    future = await current_revision(raw, namespace) + 1_000_000
    started = time.monotonic()
    reply = await raw.get(
        f"{GV_PATH}/namespaces/{namespace}/orders",
        params=[("resourceVersion", str(future)), ("resourceVersionMatch", "NotOlderThan")],
    )
    waited = time.monotonic() - started
    assert reply.status == 504, reply.body
    assert reply.body["reason"] == "Timeout"
    assert reply.body["details"]["causes"] == [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    ]
    assert reply.body["details"]["retryAfterSeconds"] == 1
    assert reply.headers["Retry-After"] == "1"
    assert 2.5 < waited < 10, f"kube's watch cache waits 3 s for the revision; waited {waited:.1f}s"


async def read_events(
    raw: RawClient, path: str, params: list[tuple[str, str]], *, until: int, within: float
) -> list[dict[str, Any]]:
    """Up to ``until`` watch events (or whatever arrived within ``within`` seconds)."""
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within):
            async with raw.session.get(raw.base_url + path, params=params) as resp:
                assert resp.status == 200, await resp.text()
                async for line in resp.content:
                    if line.strip():
                        events.append(orjson.loads(line))
                        if len(events) >= until:
                            break
    except TimeoutError:
        pass
    return events


async def test_watch_from_a_future_resource_version_answers_as_kube(raw: RawClient, namespace: str) -> None:
    """sendInitialEvents from a future revision: one ERROR event (504, ResourceVersionTooLarge) after
    kube's 3 s. A plain watch from a future revision waits for it without spoiling the shared watch:
    a watcher from now still gets the next change at once."""
    path = f"{GV_PATH}/namespaces/{namespace}/orders"
    future = await current_revision(raw, namespace) + 1_000_000
    events = await read_events(
        raw,
        path,
        [
            ("watch", "true"),
            ("sendInitialEvents", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", str(future)),
        ],
        until=1,
        within=15,
    )
    assert len(events) == 1 and events[0]["type"] == "ERROR", events
    status = events[0]["object"]
    assert status["code"] == 504 and status["reason"] == "Timeout", status
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"

    # A watcher parked on a future revision, then a watcher from now: the latter sees the create.
    parked = asyncio.create_task(
        read_events(raw, path, [("watch", "true"), ("resourceVersion", str(future))], until=1, within=6)
    )
    await asyncio.sleep(0.5)
    now = await current_revision(raw, namespace)
    live = asyncio.create_task(
        read_events(raw, path, [("watch", "true"), ("resourceVersion", str(now))], until=1, within=10)
    )
    await asyncio.sleep(0.5)
    reply = await raw.request("POST", path, json=order("after", namespace))
    assert reply.status == 201, reply.body
    live_events = await live
    assert [e["type"] for e in live_events] == ["ADDED"], live_events
    assert await parked == []
