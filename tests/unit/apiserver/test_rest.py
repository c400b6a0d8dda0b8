"""REST semantics of the generic handlers and Store, over the in-memory storage."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.unit.apiserver.conftest import GV, Api, order

ORDERS = f"{GV}/namespaces/team-a/orders"


async def test_create_sets_server_owned_metadata_and_drops_status(api: Api) -> None:
    body = order(status={"phase": "Succeeded"})
    status, obj, _ = await api.call("POST", ORDERS, json=body)
    assert status == 201, obj
    meta = obj["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert "status" not in obj
    assert meta["managedFields"][0]["manager"] == "Python"  # aiohttp's user agent
    assert meta["managedFields"][0]["operation"] == "Update"
    assert "f:spec" in meta["managedFields"][0]["fieldsV1"]
    status, got, _ = await api.call("GET", f"{ORDERS}/o1")
    assert status == 200 and got == obj


async def test_create_twice_is_already_exists(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    status, err, _ = await api.call("POST", ORDERS, json=order())
    assert status == 409
    assert err["reason"] == "AlreadyExists"
    assert err["message"] == 'orders.arc.opendefense.cloud "o1" already exists'
    assert err["details"] == {"name": "o1", "group": "arc.opendefense.cloud", "kind": "orders"}


async def test_create_with_resource_version_is_a_422_naming_the_field(api: Api) -> None:
    """kube answers a reasonless 500 here; ARC never answers bad input with a 5xx."""
    with_rv = order()
    with_rv["metadata"]["resourceVersion"] = "5"
    status, err, _ = await api.call("POST", ORDERS, json=with_rv)
    assert status == 422
    assert err["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: resourceVersion should not be set on objects to be created",
            "field": "metadata.resourceVersion",
        }
    ]
    # Reported with the other field errors, all at once; a dry run and a zero or unparsable resourceVersion
    # (kube's versioner) pass.
    invalid = order(spec={"artifacts": []})
    invalid["metadata"]["resourceVersion"] = "5"
    status, err, _ = await api.call("POST", ORDERS, json=invalid)
    assert status == 422
    assert "metadata.resourceVersion" in {c["field"] for c in err["details"]["causes"]}
    assert len(err["details"]["causes"]) >= 2
    status, _, _ = await api.call("POST", ORDERS, json=with_rv, params={"dryRun": "All"})
    assert status == 201
    with_rv["metadata"]["resourceVersion"] = "0"
    status, created, _ = await api.call("POST", ORDERS, json=with_rv)
    assert status == 201 and created["metadata"]["resourceVersion"] != "0"


async def test_get_missing_is_not_found(api: Api) -> None:
    status, err, _ = await api.call("GET", f"{ORDERS}/nope")
    assert status == 404
    assert err["kind"] == "Status" and err["reason"] == "NotFound"
    assert err["message"] == 'orders.arc.opendefense.cloud "nope" not found'


async def test_invalid_object_reports_every_cause(api: Api) -> None:
    body = order(name="Bad_Name")
    body["spec"] = {"artifacts": [{"spec": {}}]}
    status, err, _ = await api.call("POST", ORDERS, json=body)
    assert status == 422, err
    assert err["reason"] == "Invalid"
    fields = {c["field"] for c in err["details"]["causes"]}
    assert {"metadata.name", "spec.artifacts[0].type"} <= fields
    assert len(err["details"]["causes"]) >= 3
    assert err["message"].startswith('Order.arc.opendefense.cloud "Bad_Name" is invalid: [')
    assert (await api.call("GET", f"{ORDERS}/Bad_Name"))[0] == 404


async def test_malformed_json_and_wrong_kind_are_bad_requests(api: Api) -> None:
    status, err, _ = await api.call("POST", ORDERS, data=b"{not json", content_type="application/json")
    assert status == 400 and err["reason"] == "BadRequest"
    status, err, _ = await api.call("POST", ORDERS, json={**order(), "kind": "Endpoint"})
    assert status == 400 and "does not match the expected kind" in err["message"]
    status, err, _ = await api.call("POST", ORDERS, json={**order(), "apiVersion": "v1"})
    assert status == 400 and "does not match the expected API version" in err["message"]


async def test_namespace_mismatch_is_bad_request(api: Api) -> None:
    status, err, _ = await api.call("POST", ORDERS, json=order(namespace="team-b"))
    assert status == 400
    assert (
        err["message"]
        == "the namespace of the provided object does not match the namespace sent on the request"
    )


async def test_yaml_body_is_accepted(api: Api) -> None:
    import yaml

    status, obj, _ = await api.call(
        "POST", ORDERS, data=yaml.safe_dump(order()), content_type="application/yaml"
    )
    assert status == 201, obj


async def test_unsupported_body_media_type_is_415(api: Api) -> None:
    status, err, _ = await api.call("POST", ORDERS, data=b"x", content_type="text/plain")
    assert status == 415 and err["reason"] == "UnsupportedMediaType"


async def test_oversized_body_is_413(api: Api) -> None:
    body = order()
    body["metadata"]["annotations"] = {"big": "x" * (3 * 1024 * 1024 + 10)}
    status, err, _ = await api.call("POST", ORDERS, json=body)
    assert status == 413 and err["reason"] == "RequestEntityTooLarge"


async def test_generate_name(api: Api) -> None:
    body = order()
    body["metadata"] = {"generateName": "order-"}
    status, obj, _ = await api.call("POST", ORDERS, json=body)
    assert status == 201, obj
    assert obj["metadata"]["name"].startswith("order-") and len(obj["metadata"]["name"]) == len("order-") + 5


async def test_field_validation_strict_and_warn(api: Api) -> None:
    body = order()
    body["spec"]["bogus"] = 1
    status, err, _ = await api.call("POST", ORDERS, json=body, params={"fieldValidation": "Strict"})
    assert status == 400
    assert err["message"] == 'strict decoding error: unknown field "spec.bogus"'
    status, _, headers = await api.call("POST", ORDERS, json=body, params={"fieldValidation": "Warn"})
    assert status == 201
    assert headers.getall("Warning") == ['299 - "unknown field \\"spec.bogus\\""']
    status, err, _ = await api.call("POST", ORDERS, json=order("o2"), params={"fieldValidation": "Loose"})
    assert status == 422 and err["details"]["kind"] == "CreateOptions"


async def test_dry_run_create_stores_nothing(api: Api) -> None:
    status, obj, _ = await api.call("POST", ORDERS, json=order(), params={"dryRun": "All"})
    assert status == 201 and obj["metadata"]["uid"]
    assert (await api.call("GET", f"{ORDERS}/o1"))[0] == 404


async def test_update_bumps_generation_only_on_spec_change_and_keeps_status(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    status_body = {**obj, "status": {"phase": "Running", "message": "working"}}
    status, with_status, _ = await api.call("PUT", f"{ORDERS}/o1/status", json=status_body)
    assert status == 200, with_status
    assert with_status["status"]["phase"] == "Running"
    assert with_status["metadata"]["generation"] == 1

    labels_only = {**with_status, "metadata": {**with_status["metadata"], "labels": {"app": "other"}}}
    labels_only.pop("status")
    status, updated, _ = await api.call("PUT", f"{ORDERS}/o1", json=labels_only)
    assert status == 200, updated
    assert updated["metadata"]["generation"] == 1
    assert updated["status"]["phase"] == "Running"  # the main resource keeps the stored status

    spec_change = {**updated, "spec": {**updated["spec"], "queueName": "q1"}}
    status, updated2, _ = await api.call("PUT", f"{ORDERS}/o1", json=spec_change)
    assert status == 200 and updated2["metadata"]["generation"] == 2


async def test_status_update_ignores_everything_but_status(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    body = {**obj, "spec": {**obj["spec"], "queueName": "sneaky"}, "status": {"phase": "Pending"}}
    status, out, _ = await api.call("PUT", f"{ORDERS}/o1/status", json=body)
    assert status == 200
    assert "queueName" not in out["spec"] and out["status"]["phase"] == "Pending"


async def test_stale_resource_version_conflicts(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    await api.call("PUT", f"{ORDERS}/o1", json={**obj, "spec": {**obj["spec"], "queueName": "a"}})
    status, err, _ = await api.call(
        "PUT", f"{ORDERS}/o1", json={**obj, "spec": {**obj["spec"], "queueName": "b"}}
    )
    assert status == 409 and err["reason"] == "Conflict"
    assert err["message"] == (
        'Operation cannot be fulfilled on orders.arc.opendefense.cloud "o1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    _, current, _ = await api.call("GET", f"{ORDERS}/o1")
    assert current["spec"]["queueName"] == "a"


async def test_put_without_resource_version_is_unconditional(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    body = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}
    body["spec"] = {**obj["spec"], "queueName": "z"}
    status, out, _ = await api.call("PUT", f"{ORDERS}/o1", json=body)
    assert status == 200 and out["spec"]["queueName"] == "z"


async def test_name_mismatch_on_update(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    status, err, _ = await api.call("PUT", f"{ORDERS}/other", json=obj)
    assert status == 400 and "does not match the name on the URL" in err["message"]


async def test_merge_and_json_patch(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    merge = {"metadata": {"labels": {"tier": "gold"}}}
    status, out, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=orjson.dumps(merge), content_type="application/merge-patch+json"
    )
    assert status == 200 and out["metadata"]["labels"] == {"app": "demo", "tier": "gold"}
    ops = [{"op": "add", "path": "/spec/queueName", "value": "fast"}]
    status, out, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=orjson.dumps(ops), content_type="application/json-patch+json"
    )
    assert status == 200 and out["spec"]["queueName"] == "fast" and out["metadata"]["generation"] == 2


async def test_json_patch_test_failure_is_422(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/f"]},
    ]
    status, err, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=orjson.dumps(ops), content_type="application/json-patch+json"
    )
    assert status == 422 and err["reason"] == "Invalid"
    # kube's NewGenericServerResponse(422, …, isUnexpectedResponse=false): no causes, nothing of the library.
    assert err["message"] == "the server rejected our request due to an error in our request"
    assert err["details"] == {}


async def test_merge_patch_with_stale_resource_version_conflicts(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    await api.call(
        "PATCH",
        f"{ORDERS}/o1",
        data=b'{"spec":{"queueName":"a"}}',
        content_type="application/merge-patch+json",
    )
    patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"], "finalizers": None}}
    status, err, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=orjson.dumps(patch), content_type="application/merge-patch+json"
    )
    assert status == 409 and err["reason"] == "Conflict"


async def test_unknown_patch_type_is_415_listing_what_is_served(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    status, err, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=b"{}", content_type="application/apply-patch+cbor"
    )
    assert status == 415 and err["reason"] == "UnsupportedMediaType"
    assert err["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
    )


async def test_delete_without_finalizers_returns_success_status(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order())
    status, out, _ = await api.call("DELETE", f"{ORDERS}/o1")
    assert status == 200
    assert out["kind"] == "Status" and out["status"] == "Success"
    assert out["details"] == {
        "name": "o1",
        "group": "arc.opendefense.cloud",
        "kind": "orders",
        "uid": obj["metadata"]["uid"],
    }
    assert (await api.call("GET", f"{ORDERS}/o1"))[0] == 404
    assert (await api.call("DELETE", f"{ORDERS}/o1"))[0] == 404


async def test_finalizer_keeps_object_terminating_until_removed(api: Api) -> None:
    body = order()
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await api.call("POST", ORDERS, json=body)
    status, out, _ = await api.call("DELETE", f"{ORDERS}/o1")
    assert status == 200 and out["metadata"]["deletionTimestamp"]
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0
    _, current, _ = await api.call("GET", f"{ORDERS}/o1")
    assert current["metadata"]["deletionTimestamp"] == out["metadata"]["deletionTimestamp"]
    ops = [{"op": "remove", "path": "/metadata/finalizers"}]
    status, _, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=orjson.dumps(ops), content_type="application/json-patch+json"
    )
    assert status == 200
    assert (await api.call("GET", f"{ORDERS}/o1"))[0] == 404


async def test_foreground_and_orphan_propagation_add_gc_finalizers(api: Api) -> None:
    await api.call("POST", ORDERS, json=order("fg"))
    await api.call("POST", ORDERS, json=order("or"))
    _, out, _ = await api.call("DELETE", f"{ORDERS}/fg", json={"propagationPolicy": "Foreground"})
    assert out["metadata"]["finalizers"] == ["foregroundDeletion"]
    _, out, _ = await api.call("DELETE", f"{ORDERS}/or", params={"propagationPolicy": "Orphan"})
    assert out["metadata"]["finalizers"] == ["orphan"]


async def test_delete_preconditions(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    status, err, _ = await api.call("DELETE", f"{ORDERS}/o1", json={"preconditions": {"uid": "not-it"}})
    assert status == 409 and "Precondition failed: UID in precondition: not-it" in err["message"]
    assert (await api.call("GET", f"{ORDERS}/o1"))[0] == 200


async def test_list_with_selectors_and_pagination(api: Api) -> None:
    for i in range(5):
        body = order(f"o{i}")
        body["metadata"]["labels"] = {"n": str(i % 2)}
        await api.call("POST", ORDERS, json=body)
    status, lst, _ = await api.call("GET", ORDERS, params={"labelSelector": "n=1"})
    assert status == 200 and lst["kind"] == "OrderList"
    assert [o["metadata"]["name"] for o in lst["items"]] == ["o1", "o3"]
    _, lst, _ = await api.call("GET", ORDERS, params={"fieldSelector": "metadata.name=o4"})
    assert [o["metadata"]["name"] for o in lst["items"]] == ["o4"]
    status, err, _ = await api.call("GET", ORDERS, params={"fieldSelector": "spec.nope=x"})
    assert status == 400 and err["message"] == "field label not supported: spec.nope"
    status, err, _ = await api.call("GET", ORDERS, params={"labelSelector": "a in (b"})
    assert status == 400
    names: list[str] = []
    params = {"limit": "2"}
    while True:
        _, page, _ = await api.call("GET", ORDERS, params=params)
        names += [o["metadata"]["name"] for o in page["items"]]
        if not page["metadata"].get("continue"):
            break
        params = {"limit": "2", "continue": page["metadata"]["continue"]}
    assert names == [f"o{i}" for i in range(5)]
    _, everywhere, _ = await api.call("GET", f"{GV}/orders")
    assert len(everywhere["items"]) == 5


async def test_list_options_are_validated(api: Api) -> None:
    status, err, _ = await api.call("GET", ORDERS, params={"resourceVersionMatch": "Exact"})
    assert status == 422 and err["details"]["kind"] == "ListOptions"
    status, err, _ = await api.call("GET", ORDERS, params={"limit": "x"})
    assert status == 400


async def test_unknown_query_parameters_are_ignored(api: Api) -> None:
    status, _, _ = await api.call("GET", ORDERS, params={"frobnicate": "yes"})
    assert status == 200


async def test_table_and_partial_object_metadata(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    status, table, headers = await api.call("GET", ORDERS, headers={"Accept": table_accept})
    assert status == 200 and table["kind"] == "Table"
    assert headers["Content-Type"] == "application/json;as=Table;g=meta.k8s.io;v=v1"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Phase",
        "Progress",
        "Age",
        "Last Schedule",
        "Message",
    ]
    assert table["columnDefinitions"][-1]["priority"] == 1
    assert table["rows"][0]["cells"][0] == "o1"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    pom = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    _, lst, _ = await api.call("GET", ORDERS, headers={"Accept": pom})
    assert lst["kind"] == "PartialObjectMetadataList" and lst["items"][0]["metadata"]["name"] == "o1"
    status, err, _ = await api.call("GET", ORDERS, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert status == 406 and err["reason"] == "NotAcceptable"


async def test_storage_unavailable_is_503_never_404(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    api.storage.unavailable = True
    try:
        for method, path in (("GET", f"{ORDERS}/o1"), ("GET", ORDERS), ("DELETE", f"{ORDERS}/o1")):
            status, err, _ = await api.call(method, path)
            assert status == 503, (method, path, err)
            assert err["reason"] == "ServiceUnavailable"
        status, text, _ = await api.call("GET", "/readyz")
        assert status == 500 and "[-]etcd failed" in text
    finally:
        api.storage.unavailable = False
    assert (await api.call("GET", f"{ORDERS}/o1"))[0] == 200


async def test_unauthenticated_requests_are_401_but_probes_are_public(api: Api) -> None:
    resp = await api.client.get(ORDERS)
    assert resp.status == 401 and (await resp.json())["reason"] == "Unauthorized"
    resp = await api.client.get("/healthz")
    assert resp.status == 200


async def test_unknown_path_is_a_status_404(api: Api) -> None:
    status, err, _ = await api.call("GET", f"{GV}/namespaces/x/widgets")
    assert status == 404 and err["kind"] == "Status"


async def read_events(api: Api, path: str, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    resp = await api.client.get(path, params=params, headers=api.headers)
    assert resp.status == 200
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(events) < count:
            line = await resp.content.readline()
            events.append(orjson.loads(line))
    resp.close()
    return events


async def test_watch_sends_initial_state_bookmark_and_changes(api: Api) -> None:
    await api.call("POST", ORDERS, json=order("a"))
    reader = asyncio.create_task(
        read_events(
            api,
            ORDERS,
            {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "sendInitialEvents": "true",
                "resourceVersionMatch": "NotOlderThan",
            },
            4,
        )
    )
    await asyncio.sleep(0.2)
    await api.call("POST", ORDERS, json=order("b"))
    await api.call("DELETE", f"{ORDERS}/a")
    events = await reader
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "a"),
        ("BOOKMARK", None),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_from_resource_version_and_selector_transitions(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order("a"))
    rv = obj["metadata"]["resourceVersion"]
    reader = asyncio.create_task(
        read_events(api, ORDERS, {"watch": "1", "resourceVersion": rv, "labelSelector": "app=demo"}, 2)
    )
    await asyncio.sleep(0.2)
    patch = b'{"metadata":{"labels":{"app":"gone"}}}'
    await api.call("PATCH", f"{ORDERS}/a", data=patch, content_type="application/merge-patch+json")
    patch = b'{"metadata":{"labels":{"app":"demo"}}}'
    await api.call("PATCH", f"{ORDERS}/a", data=patch, content_type="application/merge-patch+json")
    events = await reader
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


async def test_watch_as_table_sends_columns_once(api: Api) -> None:
    await api.call("POST", ORDERS, json=order("a"))
    await api.call("POST", ORDERS, json=order("b"))
    resp = await api.client.get(
        ORDERS,
        params={"watch": "true"},
        headers={**api.headers, "Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"},
    )
    first = orjson.loads(await resp.content.readline())
    second = orjson.loads(await resp.content.readline())
    resp.close()
    assert first["object"]["kind"] == "Table" and first["object"]["columnDefinitions"]
    assert "columnDefinitions" not in second["object"]


async def test_watch_of_compacted_revision_is_410_error_event(api: Api) -> None:
    _, obj, _ = await api.call("POST", ORDERS, json=order("a"))
    for i in range(3):
        await api.call(
            "PATCH",
            f"{ORDERS}/a",
            data=orjson.dumps({"spec": {"queueName": str(i)}}),
            content_type="application/merge-patch+json",
        )
    await api.storage.compact(await api.storage.current_revision())
    events = await read_events(
        api, ORDERS, {"watch": "true", "resourceVersion": obj["metadata"]["resourceVersion"]}, 1
    )
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["kind"] == "Status" and events[0]["object"]["apiVersion"] == "v1"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_delete_collection(api: Api) -> None:
    for i in range(3):
        await api.call("POST", ORDERS, json=order(f"o{i}"))
    status, out, _ = await api.call("DELETE", ORDERS, params={"fieldSelector": "metadata.name!=o1"})
    assert status == 200 and sorted(o["metadata"]["name"] for o in out["items"]) == ["o0", "o2"]
    _, lst, _ = await api.call("GET", ORDERS)
    assert [o["metadata"]["name"] for o in lst["items"]] == ["o1"]


async def test_concurrent_unconditional_patches_lose_nothing(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())

    async def add_label(i: int) -> int:
        patch = orjson.dumps({"metadata": {"labels": {f"k{i}": "v"}}})
        status, _, _ = await api.call(
            "PATCH", f"{ORDERS}/o1", data=patch, content_type="application/merge-patch+json"
        )
        return status

    assert set(await asyncio.gather(*(add_label(i) for i in range(32)))) == {200}
    _, obj, _ = await api.call("GET", f"{ORDERS}/o1")
    assert {f"k{i}" for i in range(32)} <= set(obj["metadata"]["labels"])
