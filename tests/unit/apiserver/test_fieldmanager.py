"""The merge and ownership algorithms of server-side apply (no sockets): field sets, typed merge/compare,
the field manager's Update and Apply, and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.arc.v1alpha1.types import ArtifactType
from api.meta import dump
from api.structure import schema_of
from apiserver.registry import typed
from apiserver.registry.fieldpath import from_fields_v1, path_to_string, to_fields_v1
from apiserver.registry.managedfields import (
    ANCIENT_CHANGES,
    BEFORE_FIRST_APPLY,
    LAST_APPLIED,
    ConflictsError,
    FieldManager,
)
from apiserver.registry.strategicpatch import StrategicPatchError, strategic_merge_patch

AV = "arc.opendefense.cloud/v1alpha1"
ORDERS = FieldManager("Order", AV, has_status=True)
TYPES = FieldManager("ArtifactType", AV, has_status=False)


def art(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": AV, "kind": "ArtifactType", "metadata": {"name": "t"}, "spec": spec}


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u", resourceVersion="1", creationTimestamp="2026-01-01T00:00:00Z")
    return out


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


# ---- generated configurations -------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c"])
values = st.sampled_from(["1", "2"])
# Non-empty collections: an applied empty list or map that replaces a pruned one is stored again as empty
# (kube does the same), so idempotence holds from the second apply of the same configuration on.
parameters = st.lists(
    st.fixed_dictionaries({"name": names, "value": values}),
    min_size=1,
    max_size=3,
    unique_by=lambda p: p["name"],
)
labels = st.dictionaries(st.sampled_from(["app", "team"]), values, min_size=1, max_size=2)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": "copy"}}
    if draw(st.booleans()):
        spec["parameters"] = draw(parameters)
    if draw(st.booleans()):
        spec["queueName"] = draw(values)
    if draw(st.booleans()):
        spec["rules"] = {"srcTypes": draw(st.lists(st.sampled_from(["oci", "helm"]), min_size=1, max_size=2))}
    body = art(**spec)
    body["metadata"]["labels"] = draw(labels)
    return body


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the Store keeps of an object (the model's dump: empty labels dropped), times left out."""
    out = stored(dump(ArtifactType.model_validate(obj)))
    for entry in out["metadata"].get("managedFields", []):
        entry.pop("time", None)
    return out


@settings(max_examples=60, deadline=None)
@given(first=configs(), second=configs())
def test_apply_is_idempotent(first: dict[str, Any], second: dict[str, Any]) -> None:
    obj, _ = TYPES.apply(None, first, manager="a", subresource=None, force=False, now="T1")
    obj, _ = TYPES.apply(as_stored(obj), second, manager="a", subresource=None, force=False, now="T2")
    again, _ = TYPES.apply(as_stored(obj), second, manager="a", subresource=None, force=False, now="T3")
    assert as_stored(again) == as_stored(obj)


@settings(max_examples=60, deadline=None)
@given(config=configs())
def test_fields_only_the_applier_owned_are_removed_when_no_longer_sent(config: dict[str, Any]) -> None:
    config["spec"]["queueName"] = "q"
    obj, _ = TYPES.apply(None, config, manager="a", subresource=None, force=False, now="T1")
    without = copy.deepcopy(config)
    del without["spec"]["queueName"]
    obj, changed = TYPES.apply(stored(obj), without, manager="a", subresource=None, force=False, now="T2")
    assert changed and "queueName" not in obj["spec"]
    # Co-owned by another applier with the same value: it stays.
    obj, _ = TYPES.apply(None, config, manager="a", subresource=None, force=False, now="T1")
    obj, _ = TYPES.apply(
        stored(obj), art(queueName="q"), manager="b", subresource=None, force=False, now="T2"
    )
    obj, _ = TYPES.apply(obj, without, manager="a", subresource=None, force=False, now="T3")
    assert obj["spec"]["queueName"] == "q"


@settings(max_examples=60, deadline=None)
@given(config=configs())
def test_fields_v1_round_trips_and_covers_the_configuration(config: dict[str, Any]) -> None:
    schema = schema_of("ArtifactType")
    paths = typed.to_field_set(config, schema)
    assert from_fields_v1(to_fields_v1(paths)) == paths
    merged = typed.merge({"apiVersion": AV, "kind": "ArtifactType"}, config, schema)
    assert paths <= typed.to_field_set(merged, schema)
    assert typed.compare(merged, merged, schema).changed() == set()


def test_a_create_owns_every_field_with_dot_markers() -> None:
    obj = art(workflowTemplateRef={"name": "copy"}, parameters=[{"name": "a", "value": "1"}])
    obj["metadata"]["labels"] = {"x": "y"}
    TYPES.update(obj, None, manager="kubectl-create", subresource=None, now="T1")
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["operation"] == "Update" and entry["time"] == "T1"
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:x": {}}},
        "f:spec": {
            ".": {},
            "f:parameters": {".": {}, 'k:{"name":"a"}': {".": {}, "f:name": {}, "f:value": {}}},
            "f:workflowTemplateRef": {".": {}, "f:name": {}},
        },
    }


def test_conflict_messages_name_every_manager() -> None:
    obj, _ = TYPES.apply(None, art(queueName="q"), manager="a", subresource=None, force=False, now="T1")
    obj = stored(obj)
    edited = copy.deepcopy(obj)
    edited["metadata"]["labels"] = {"x": "1"}
    TYPES.update(edited, obj, manager="kubectl-edit", subresource=None, now="T2")
    with pytest.raises(ConflictsError) as info:
        TYPES.apply(
            edited,
            {**art(queueName="r"), "metadata": {"name": "t", "labels": {"x": "2"}}},
            manager="b",
            subresource=None,
            force=False,
            now="T3",
        )
    assert str(info.value) == (
        "Apply failed with 2 conflicts: "
        'conflicts with "a":\n- .spec.queueName\n'
        f'conflicts with "kubectl-edit" using {AV}:\n- .metadata.labels.x'
    )
    assert [path_to_string(c.path) for c in info.value.conflicts] == [".spec.queueName", ".metadata.labels.x"]


def test_first_apply_to_an_object_without_managed_fields_credits_before_first_apply() -> None:
    live = stored(art(workflowTemplateRef={"name": "copy"}, queueName="q"))
    obj, _ = TYPES.apply(live, art(queueName="r"), manager="a", subresource=None, force=True, now="T1")
    managers = owners(obj)
    assert managers[(BEFORE_FIRST_APPLY, "Update")] == {
        "f:spec": {".": {}, "f:workflowTemplateRef": {".": {}, "f:name": {}}}
    }
    assert managers[("a", "Apply")] == {"f:spec": {"f:queueName": {}}}


def test_more_than_ten_update_managers_fold_into_ancient_changes() -> None:
    obj = art(workflowTemplateRef={"name": "copy"})
    TYPES.update(obj, None, manager="m00", subresource=None, now="T00")
    for i in range(1, 12):
        new = copy.deepcopy(stored(obj))
        new["metadata"]["labels"] = {**(new["metadata"].get("labels") or {}), f"l{i}": "v"}
        TYPES.update(new, stored(obj), manager=f"m{i:02d}", subresource=None, now=f"T{i:02d}")
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10 and ANCIENT_CHANGES in managers and "m00" not in managers


def test_status_writes_own_only_status_and_main_writes_never_status() -> None:
    order = {
        "apiVersion": AV,
        "kind": "Order",
        "metadata": {"name": "o"},
        "spec": {"artifacts": [{"type": "oci"}]},
        "status": {"phase": "Running"},
    }
    obj, _ = ORDERS.apply(None, order, manager="a", subresource=None, force=False, now="T1")
    assert "f:status" not in owners(obj)[("a", "Apply")]
    obj, _ = ORDERS.apply(stored(obj), order, manager="c", subresource="status", force=False, now="T2")
    (status_entry,) = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "c"]
    assert status_entry["subresource"] == "status"
    assert status_entry["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_kubectl_may_take_fields_still_equal_to_its_last_applied_configuration() -> None:
    import orjson

    last = art(workflowTemplateRef={"name": "copy"}, queueName="q")
    live = copy.deepcopy(last)
    live["metadata"]["annotations"] = {LAST_APPLIED: orjson.dumps(last).decode()}
    TYPES.update(live, None, manager="kubectl-client-side-apply", subresource=None, now="T1")
    live = stored(live)
    config = art(workflowTemplateRef={"name": "copy"}, queueName="r")
    with pytest.raises(ConflictsError):
        TYPES.apply(live, config, manager="someone", subresource=None, force=False, now="T2")
    obj, _ = TYPES.apply(live, config, manager="kubectl", subresource=None, force=False, now="T2")
    assert obj["spec"]["queueName"] == "r"
    assert orjson.loads(obj["metadata"]["annotations"][LAST_APPLIED])["spec"]["queueName"] == "r"


def test_keyed_list_items_without_a_key_are_typed_errors() -> None:
    with pytest.raises(typed.TypedError, match="duplicate entries"):
        TYPES.apply(
            None,
            art(parameters=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]),
            manager="a",
            subresource=None,
            force=False,
            now="T",
        )


# ---- strategic merge patch ---------------------------------------------------------------------------


def smp(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge_patch(original, patch, schema_of("ArtifactType"))


BASE = art(
    workflowTemplateRef={"name": "copy"},
    parameters=[{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
    rules={"srcTypes": ["oci", "helm"]},
)


def test_smp_merges_keyed_lists_and_replaces_others() -> None:
    out = smp(BASE, {"spec": {"parameters": [{"name": "b", "value": "9"}, {"name": "c", "value": "3"}]}})
    assert out["spec"]["parameters"] == [
        {"name": "a", "value": "1"},
        {"name": "b", "value": "9"},
        {"name": "c", "value": "3"},
    ]
    out = smp(BASE, {"spec": {"rules": {"srcTypes": ["s3"]}}})
    assert out["spec"]["rules"]["srcTypes"] == ["s3"]  # atomic list without a patch strategy: replaced
    assert BASE["spec"]["parameters"][1]["value"] == "2"  # the original is not modified


def test_smp_directives() -> None:
    assert smp(BASE, {"spec": {"parameters": [{"name": "a", "$patch": "delete"}]}})["spec"]["parameters"] == [
        {"name": "b", "value": "2"}
    ]
    replaced = smp(BASE, {"spec": {"parameters": [{"$patch": "replace"}, {"name": "z", "value": "0"}]}})
    assert replaced["spec"]["parameters"] == [{"name": "z", "value": "0"}]
    ordered = smp(
        BASE,
        {
            "spec": {
                "$setElementOrder/parameters": [{"name": "b"}, {"name": "a"}],
                "parameters": [{"name": "b", "value": "2"}],
            }
        },
    )
    assert [p["name"] for p in ordered["spec"]["parameters"]] == ["b", "a"]
    assert smp(BASE, {"spec": {"rules": {"$patch": "replace", "dstTypes": ["x"]}}})["spec"]["rules"] == {
        "dstTypes": ["x"]
    }
    assert "rules" in smp(BASE, {"spec": {"rules": {"$patch": "delete"}}})["spec"]
    assert smp(BASE, {"spec": {"rules": {"$patch": "delete"}}})["spec"]["rules"] == {}
    retained = smp(BASE, {"spec": {"$retainKeys": ["queueName"], "queueName": "q"}})
    assert retained["spec"] == {"queueName": "q"}
    deleted = smp(
        {**BASE, "metadata": {"name": "t", "finalizers": ["x", "y"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}},
    )
    assert deleted["metadata"]["finalizers"] == ["y"]
    merged = smp(
        {**BASE, "metadata": {"name": "t", "finalizers": ["x"]}}, {"metadata": {"finalizers": ["y", "x"]}}
    )
    assert merged["metadata"]["finalizers"] == ["y", "x"]  # a set: merged, in the patch's order


def test_smp_errors() -> None:
    with pytest.raises(StrategicPatchError, match="unknown patch type: merge"):
        smp(BASE, {"spec": {"$patch": "merge"}})
    with pytest.raises(StrategicPatchError, match="does not contain declared merge key: name"):
        smp(BASE, {"spec": {"parameters": [{"value": "1"}]}})
    with pytest.raises(StrategicPatchError, match="invalid patch format of retainKeys"):
        smp(BASE, {"spec": {"$retainKeys": ["x"], "queueName": "q"}})


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": AV,
        "kind": "Order",
        "metadata": {"name": "o", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"artifacts": [{"type": "oci", "spec": {"image": "x", "n": None}}]},
    }
    if draw(st.booleans()):
        obj["metadata"]["labels"] = draw(labels)
    if draw(st.booleans()):
        obj["metadata"]["finalizers"] = draw(st.lists(st.sampled_from(["a/b", "c/d"]), unique=True))
    if draw(st.booleans()):
        obj["spec"]["defaults"] = {"srcRef": {"name": "s"}}
    if draw(st.booleans()):
        obj["status"] = {"phase": "Running", "artifactWorkflows": {"h": {"name": "n", "phase": "Running"}}}
    return obj


@settings(max_examples=80, deadline=None)
@given(obj=st.one_of(orders(), configs()), subresource=st.sampled_from([None, "status"]))
def test_a_creates_fields_built_directly_are_the_general_computation(
    obj: dict[str, Any], subresource: str | None
) -> None:
    """The create fast path (FieldsV1 straight from the object) equals the general compare-based one,
    key order included."""
    import json

    from apiserver.registry.managedfields import Managed, encode

    fm = ORDERS if obj["kind"] == "Order" else TYPES
    direct = fm._created_fields(obj, subresource)
    managed = Managed()
    fm._update_managed(managed, fm.empty(), obj, manager="m", subresource=subresource, now="T")
    entries = encode(managed) or [{"fieldsV1": {}}]
    assert json.dumps(direct) == json.dumps(entries[0]["fieldsV1"])
