"""Server-side apply and strategic merge patch through the HTTP handlers (in-memory storage)."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from tests.unit.apiserver.conftest import GV, Api, order

ORDERS = f"{GV}/namespaces/team-a/orders"
TYPES = f"{GV}/namespaces/team-a/artifacttypes"
APPLY = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"


async def apply(
    api: Api, path: str, body: dict[str, Any], manager: str | None = "flux", **params: str
) -> tuple[int, Any]:
    query = dict(params)
    if manager is not None:
        query["fieldManager"] = manager
    status, out, _ = await api.call(
        "PATCH", path, data=yaml.safe_dump(body), content_type=APPLY, params=query
    )
    return status, out


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def artifact_type(name: str = "oci", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "ArtifactType",
        "metadata": {"name": name},
        "spec": {"workflowTemplateRef": {"name": "copy"}, **spec},
    }


async def test_apply_requires_a_field_manager(api: Api) -> None:
    status, err = await apply(api, f"{ORDERS}/o1", order(), manager=None)
    assert status == 422 and err["reason"] == "Invalid"
    assert err["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )


async def test_force_is_forbidden_on_other_patches(api: Api) -> None:
    await api.call("POST", ORDERS, json=order())
    status, err, _ = await api.call(
        "PATCH",
        f"{ORDERS}/o1",
        data=b"{}",
        content_type="application/merge-patch+json",
        params={"force": "true"},
    )
    assert status == 422
    assert err["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be specified for non-apply patch",
            "field": "force",
        }
    ]


async def test_apply_creates_then_an_unchanged_apply_writes_nothing(api: Api) -> None:
    status, created = await apply(api, f"{ORDERS}/o1", order())
    assert status == 201, created
    (entry,) = created["metadata"]["managedFields"]
    assert entry["manager"] == "flux" and entry["operation"] == "Apply" and "subresource" not in entry
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:artifacts": {}, "f:defaults": {"f:dstRef": {}, "f:srcRef": {}}},
    }
    status, again = await apply(api, f"{ORDERS}/o1", order())
    assert status == 200
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert again == created


async def test_second_manager_conflicts_then_forces(api: Api) -> None:
    await apply(api, f"{ORDERS}/o1", order())
    mine = order()
    mine["metadata"]["labels"] = {"app": "other", "team": "a"}
    status, err = await apply(api, f"{ORDERS}/o1", mine, manager="alice")
    assert status == 409 and err["reason"] == "Conflict"
    assert err["message"] == 'Apply failed with 1 conflict: conflict with "flux": .metadata.labels.app'
    assert err["details"] == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "flux"',
                "field": ".metadata.labels.app",
            }
        ]
    }
    status, forced = await apply(api, f"{ORDERS}/o1", mine, manager="alice", force="true")
    assert status == 200, forced
    assert forced["metadata"]["labels"] == {"app": "other", "team": "a"}
    owned = managers(forced)
    assert "f:metadata" not in owned[("flux", "Apply")]  # its only metadata field went to alice
    assert owned[("alice", "Apply")]["f:metadata"]["f:labels"] == {"f:app": {}, "f:team": {}}


async def test_same_value_is_shared_and_survives_one_owner_dropping_it(api: Api) -> None:
    await apply(api, f"{ORDERS}/o1", order())
    shared = {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": "o1", "labels": {"app": "demo"}},
    }
    status, _ = await apply(api, f"{ORDERS}/o1", shared, manager="alice")
    assert status == 200
    dropped = order()
    dropped["metadata"]["labels"] = {}
    status, obj = await apply(api, f"{ORDERS}/o1", dropped)
    assert status == 200
    assert obj["metadata"]["labels"] == {"app": "demo"}  # alice still owns it
    status, obj = await apply(api, f"{ORDERS}/o1", {**shared, "metadata": {"name": "o1"}}, manager="alice")
    assert "labels" not in obj["metadata"]


async def test_fields_the_applier_no_longer_sends_are_removed(api: Api) -> None:
    body = order(spec={**order()["spec"], "queueName": "fast"})
    await apply(api, f"{ORDERS}/o1", body)
    status, obj = await apply(api, f"{ORDERS}/o1", order())
    assert status == 200 and "queueName" not in obj["spec"]
    assert obj["metadata"]["generation"] == 2


async def test_update_by_another_manager_takes_the_fields_it_changed(api: Api) -> None:
    await apply(api, f"{ORDERS}/o1", order())
    patch = {"metadata": {"labels": {"app": "edited"}}}
    status, obj, _ = await api.call(
        "PATCH",
        f"{ORDERS}/o1",
        data=orjson.dumps(patch),
        content_type="application/merge-patch+json",
        params={"fieldManager": "kubectl-edit"},
    )
    assert status == 200
    owned = managers(obj)
    assert owned[("kubectl-edit", "Update")] == {"f:metadata": {"f:labels": {"f:app": {}}}}
    assert "f:metadata" not in owned[("flux", "Apply")]
    status, err = await apply(api, f"{ORDERS}/o1", order())
    assert status == 409
    assert err["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using arc.opendefense.cloud/v1alpha1: '
        ".metadata.labels.app"
    )


async def test_keyed_lists_merge_by_their_key(api: Api) -> None:
    params = [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    status, obj = await apply(api, f"{TYPES}/oci", artifact_type(parameters=params))
    assert status == 201, obj
    status, obj = await apply(
        api, f"{TYPES}/oci", artifact_type(parameters=[{"name": "c", "value": "3"}]), manager="alice"
    )
    assert status == 200, obj
    assert [p["name"] for p in obj["spec"]["parameters"]] == ["a", "b", "c"]
    assert managers(obj)[("alice", "Apply")]["f:spec"]["f:parameters"] == {
        'k:{"name":"c"}': {".": {}, "f:name": {}, "f:value": {}}
    }
    status, err = await apply(
        api, f"{TYPES}/oci", artifact_type(parameters=[{"name": "a", "value": "9"}]), manager="alice"
    )
    assert status == 409
    assert err["details"]["causes"][0]["field"] == '.spec.parameters[name="a"].value'


async def test_status_apply_touches_only_status(api: Api) -> None:
    await apply(api, f"{ORDERS}/o1", order())
    body = order(status={"phase": "Running"})
    body["metadata"]["labels"] = {"app": "ignored"}
    status, obj = await apply(api, f"{ORDERS}/o1/status", body, manager="controller")
    assert status == 200, obj
    assert obj["status"] == {"phase": "Running"} and obj["metadata"]["labels"] == {"app": "demo"}
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "controller")
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:phase": {}}}
    status, _err = await apply(api, f"{ORDERS}/missing/status", order("missing"), manager="controller")
    assert status == 404


async def test_apply_on_the_main_resource_does_not_own_status(api: Api) -> None:
    status, obj = await apply(api, f"{ORDERS}/o1", order(status={"phase": "Running"}))
    assert status == 201 and "status" not in obj
    assert "f:status" not in obj["metadata"]["managedFields"][0]["fieldsV1"]


async def test_dry_run_and_preconditions(api: Api) -> None:
    status, obj = await apply(api, f"{ORDERS}/o1", order(), dryRun="All")
    assert status == 201 and obj["metadata"]["name"] == "o1"
    status, _, _ = await api.call("GET", f"{ORDERS}/o1")
    assert status == 404
    status, created = await apply(api, f"{ORDERS}/o1", order())
    stale = order()
    stale["metadata"]["resourceVersion"] = "1"
    status, err = await apply(api, f"{ORDERS}/o1", stale)
    assert status == 409 and err["reason"] == "Conflict"
    fresh = order()
    fresh["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    fresh["metadata"]["labels"] = {"app": "new"}
    status, _ = await apply(api, f"{ORDERS}/o1", fresh)
    assert status == 200


async def test_bad_configurations_are_400(api: Api) -> None:
    body = order()
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    status, err = await apply(api, f"{ORDERS}/o1", body)
    assert (status, err["message"]) == (400, "metadata.managedFields must be nil")
    status, err = await apply(api, f"{ORDERS}/o1", {**order(), "kind": "Endpoint"})
    assert (status, err["message"]) == (
        400,
        "invalid object type: arc.opendefense.cloud/v1alpha1, Kind=Endpoint",
    )
    status, err = await apply(api, f"{ORDERS}/o1", {**order(), "spec": {"nope": 1}})
    assert status == 400 and err["message"].endswith(".spec.nope: field not declared in schema")
    status, err = await apply(api, f"{ORDERS}/o2", order())
    assert status == 400 and "does not match the name on the URL" in err["message"]


async def test_invalid_result_is_422(api: Api) -> None:
    body = order()
    body["spec"]["artifacts"] = []
    status, err = await apply(api, f"{ORDERS}/o1", body)
    assert status == 422 and err["reason"] == "Invalid"


async def test_client_side_apply_migration_for_kubectl(api: Api) -> None:
    """kubectl's manager may take fields that still equal its last-applied-configuration."""
    body = order()
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": orjson.dumps(order()).decode()
    }
    status, _, _ = await api.call(
        "POST", ORDERS, json=body, params={"fieldManager": "kubectl-client-side-apply"}
    )
    assert status == 201
    changed = order()
    changed["metadata"]["labels"] = {"app": "server-side"}
    status, obj = await apply(api, f"{ORDERS}/o1", changed, manager="kubectl")
    assert status == 200, obj
    assert obj["metadata"]["labels"] == {"app": "server-side"}
    last = orjson.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["metadata"]["labels"] == {"app": "server-side"}
    status, _err = await apply(api, f"{ORDERS}/o1", changed, manager="someone")
    assert status == 200  # same values: shared, no conflict


async def test_strategic_merge_patch_merges_keyed_lists(api: Api) -> None:
    params = [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    await api.call("POST", TYPES, json=artifact_type(parameters=params))
    patch = {
        "spec": {
            "$setElementOrder/parameters": [{"name": "c"}, {"name": "a"}],
            "parameters": [{"name": "c", "value": "3"}, {"name": "b", "$patch": "delete"}],
        },
        "metadata": {"labels": {"x": "y"}},
    }
    status, obj, _ = await api.call("PATCH", f"{TYPES}/oci", data=orjson.dumps(patch), content_type=SMP)
    assert status == 200, obj
    assert obj["spec"]["parameters"] == [{"name": "c", "value": "3"}, {"name": "a", "value": "1"}]
    assert obj["metadata"]["labels"] == {"x": "y"}
    status, err, _ = await api.call(
        "PATCH", f"{TYPES}/oci", data=orjson.dumps({"spec": {"$patch": "bogus"}}), content_type=SMP
    )
    assert status == 400 and err["message"].startswith("unknown patch type: bogus")


async def test_openapi_advertises_exactly_the_served_patch_types(api: Api) -> None:
    from apiserver.negotiation import PATCH_MEDIA_TYPES

    status, doc, _ = await api.call("GET", "/openapi/v2")
    assert status == 200
    path = doc["paths"][f"{GV}/namespaces/{{namespace}}/orders/{{name}}"]
    assert sorted(path["patch"]["consumes"]) == sorted(PATCH_MEDIA_TYPES)
    status, doc, _ = await api.call("GET", "/openapi/v3/apis/arc.opendefense.cloud/v1alpha1")
    body = doc["paths"][f"{GV}/namespaces/{{namespace}}/orders/{{name}}"]["patch"]["requestBody"]
    assert sorted(body["content"]) == sorted(PATCH_MEDIA_TYPES)


async def test_an_alias_bomb_is_refused(api: Api) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    body = "\n".join(lines) + "\nkind: Order\napiVersion: arc.opendefense.cloud/v1alpha1\n"
    status, err, _ = await api.call(
        "PATCH", f"{ORDERS}/o1", data=body, content_type=APPLY, params={"fieldManager": "x"}
    )
    assert status == 400 and "excessive aliasing" in err["message"]


async def test_applies_are_counted_as_verb_apply(api: Api) -> None:
    await apply(api, f"{ORDERS}/o1", order())
    resp = await api.client.get("/metrics", headers=api.headers)
    text = await resp.text()
    assert resp.status == 200
    assert any(
        line.startswith("apiserver_request_total{") and 'verb="APPLY"' in line and 'resource="orders"' in line
        for line in text.splitlines()
    ), text[:2000]


def test_the_apply_benchmark_runs(capsys: Any) -> None:
    """bench/apply (docs/performance.md) on a few objects: every operation is measured."""
    from bench.apply import main

    assert main(["--objects", "20", "--rounds", "1"]) == 0
    report = orjson.loads(capsys.readouterr().out)["cpu_ms_per_op"]
    assert set(report) == {
        "update",
        "merge-patch",
        "apply (first)",
        "apply (again)",
        "apply (again) / update",
    }
    assert all(value > 0 for value in report.values())


async def test_the_garbage_collectors_strategic_patches(api: Api) -> None:
    """kube's garbage collector patches ownerReferences with strategic merge (merge key uid)."""
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u1", "blockOwnerDeletion": True}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm2", "uid": "u2"}
    body = order()
    body["metadata"]["ownerReferences"] = [owner, other]
    _, created, _ = await api.call("POST", ORDERS, json=body)
    uid = created["metadata"]["uid"]
    unblock = {"metadata": {"ownerReferences": [{**owner, "blockOwnerDeletion": False}], "uid": uid}}
    status, obj, _ = await api.call("PATCH", f"{ORDERS}/o1", data=orjson.dumps(unblock), content_type=SMP)
    assert status == 200, obj
    assert obj["metadata"]["ownerReferences"] == [{**owner, "blockOwnerDeletion": False}, other]
    remove = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}], "uid": uid}}
    status, obj, _ = await api.call("PATCH", f"{ORDERS}/o1", data=orjson.dumps(remove), content_type=SMP)
    assert status == 200 and obj["metadata"]["ownerReferences"] == [other]
