"""The OpenAPI documents: valid, complete for kubectl, and checked in up to date."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator.validation.validators import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator
from pydantic import BaseModel

from api import meta, openapi
from api.resources import RESOURCES
from hack import update_openapi

V2 = openapi.build_v2()
V3 = openapi.build_v3()
PREFIX = "/apis/arc.opendefense.cloud/v1alpha1"


def test_v2_is_valid_swagger() -> None:
    assert [str(e) for e in OpenAPIV2SpecValidator(V2).iter_errors()] == []


def test_v3_is_valid_openapi_30() -> None:
    assert [str(e) for e in OpenAPIV30SpecValidator(V3).iter_errors()] == []


def test_checked_in_files_are_current() -> None:
    assert update_openapi.stale() == [], "run: .venv/bin/python -m hack.update_openapi"


def test_generation_is_stable() -> None:
    assert openapi.serialize(openapi.build_v2()) == openapi.serialize(V2)
    assert openapi.serialize(openapi.build_v3()) == openapi.serialize(V3)


@pytest.mark.parametrize("doc", [V2, V3], ids=["v2", "v3"])
def test_every_kind_has_a_gvk_tagged_schema(doc: dict[str, Any]) -> None:
    schemas = doc["definitions"] if "definitions" in doc else doc["components"]["schemas"]
    for r in RESOURCES:
        for model, gvk in ((r.model, r.gvk), (r.list_model, r.list_gvk)):
            name = openapi.definition_name(model)
            assert name.startswith("cloud.opendefense.arc.v1alpha1.")
            assert schemas[name]["x-kubernetes-group-version-kind"] == [gvk.to_dict()]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert schemas["cloud.opendefense.arc.v1alpha1.Order"]["properties"]["metadata"]


def _walk_properties(schemas: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, schema in schemas.items():
        if name.startswith("cloud.opendefense.arc."):
            for prop, s in schema.get("properties", {}).items():
                out.append((name, prop, s))
    return out


@pytest.mark.parametrize("doc", [V2, V3], ids=["v2", "v3"])
def test_descriptions_everywhere(doc: dict[str, Any]) -> None:
    schemas = doc["definitions"] if "definitions" in doc else doc["components"]["schemas"]
    missing = [f"{n}.{p}" for n, p, s in _walk_properties(schemas) if not s.get("description")]
    assert missing == []
    assert all(s.get("description") for n, s in schemas.items() if n.startswith("cloud.opendefense.arc."))


def test_list_semantics() -> None:
    s = V3["components"]["schemas"]
    conditions = s["cloud.opendefense.arc.v1alpha1.OrderStatus"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    params = s["cloud.opendefense.arc.v1alpha1.ArtifactTypeSpec"]["properties"]["parameters"]
    assert (params["x-kubernetes-list-type"], params["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    artifacts = s["cloud.opendefense.arc.v1alpha1.OrderSpec"]["properties"]["artifacts"]
    assert artifacts["x-kubernetes-list-type"] == "atomic"
    free = s["cloud.opendefense.arc.v1alpha1.OrderArtifact"]["properties"]["spec"]
    assert free["x-kubernetes-preserve-unknown-fields"] is True
    usage = s["cloud.opendefense.arc.v1alpha1.EndpointSpec"]["properties"]["usage"]
    assert usage["enum"] == ["All", "PullOnly", "PushOnly"]


def _ops(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items() if m != "parameters"]


def test_paths_for_every_verb() -> None:
    for doc in (V2, V3):
        paths = doc["paths"]
        for r in RESOURCES:
            ns = "namespaces/{namespace}/" if r.namespaced else ""
            coll = f"{PREFIX}/{ns}{r.plural}"
            assert set(paths[coll]) >= {"get", "post", "delete"}
            assert set(paths[f"{coll}/{{name}}"]) >= {"get", "put", "patch", "delete"}
            assert set(paths[f"{PREFIX}/watch/{ns}{r.plural}"]) >= {"get"}
            assert set(paths[f"{PREFIX}/watch/{ns}{r.plural}/{{name}}"]) >= {"get"}
            if r.has_status:
                assert set(paths[f"{coll}/{{name}}/status"]) >= {"get", "put", "patch"}
            else:
                assert f"{coll}/{{name}}/status" not in paths
            if r.namespaced:
                assert "get" in paths[f"{PREFIX}/{r.plural}"]
                assert "get" in paths[f"{PREFIX}/watch/{r.plural}"]
    assert f"{PREFIX}/namespaces/{{namespace}}/orders/{{name}}" in V3["paths"]
    assert f"{PREFIX}/clusterartifacttypes/{{name}}" in V3["paths"]


def test_operations_carry_a_single_gvk() -> None:
    kinds = {r.kind for r in RESOURCES}
    for doc in (V2, V3):
        for path, _method, op in _ops(doc):
            if path == f"{PREFIX}/":
                continue
            gvk = op["x-kubernetes-group-version-kind"]
            assert isinstance(gvk, dict) and gvk["kind"] in kinds and gvk["group"] == "arc.opendefense.cloud"


def test_patch_content_types_are_exactly_the_served_ones() -> None:
    """What PATCH accepts (apiserver.negotiation) is what the OpenAPI advertises: kubectl builds its
    client-side apply patches as strategic merge patches when the operation consumes that type."""
    expected = {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    }
    for path, method, op in _ops(V3):
        if method == "patch":
            assert set(op["requestBody"]["content"]) == expected, path
    for path, method, op in _ops(V2):
        if method == "patch":
            assert set(op["consumes"]) == expected, path


def test_keyed_lists_carry_their_patch_metadata() -> None:
    schemas = V3["components"]["schemas"]
    params = schemas["cloud.opendefense.arc.v1alpha1.ArtifactTypeSpec"]["properties"]["parameters"]
    assert params["x-kubernetes-list-map-keys"] == ["name"]
    assert params["x-kubernetes-patch-merge-key"] == "name"
    assert params["x-kubernetes-patch-strategy"] == "merge"
    conditions = schemas["cloud.opendefense.arc.v1alpha1.OrderStatus"]["properties"]["conditions"]
    assert conditions["x-kubernetes-patch-merge-key"] == "type"
    artifacts = schemas["cloud.opendefense.arc.v1alpha1.OrderSpec"]["properties"]["artifacts"]
    assert artifacts["x-kubernetes-list-type"] == "atomic" and "x-kubernetes-patch-merge-key" not in artifacts
    ref = schemas["cloud.opendefense.arc.v1alpha1.LocalObjectReference"]
    assert ref["x-kubernetes-map-type"] == "atomic"


def test_write_operations_declare_query_parameters() -> None:
    for path, method, op in _ops(V3):
        names = {p["name"] for p in op.get("parameters", [])}
        if method in ("post", "put"):
            assert {"fieldValidation", "dryRun", "fieldManager"} <= names, path
        if method == "patch":
            assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names, path


def test_v3_root_points_at_the_group_version() -> None:
    data = openapi.serialize(V3)
    root = openapi.build_v3_root(data)
    url = root["paths"]["apis/arc.opendefense.cloud/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/arc.opendefense.cloud/v1alpha1?hash=")
    assert len(url.split("hash=")[1]) == 128


@pytest.mark.parametrize(
    ("model", "definition"),
    [
        (meta.ObjectMeta, "ObjectMeta"),
        (meta.ListMeta, "ListMeta"),
        (meta.OwnerReference, "OwnerReference"),
        (meta.ManagedFieldsEntry, "ManagedFieldsEntry"),
        (meta.Condition, "Condition"),
        (meta.Status, "Status"),
        (meta.StatusDetails, "StatusDetails"),
        (meta.StatusCause, "StatusCause"),
        (meta.DeleteOptions, "DeleteOptions"),
        (meta.Preconditions, "Preconditions"),
        (meta.WatchEvent, "WatchEvent"),
    ],
)
def test_meta_models_match_kube_definitions(model: type[BaseModel], definition: str) -> None:
    """The pydantic meta models carry exactly the fields of kube's (vendored) definitions."""
    kube = V2["definitions"][f"io.k8s.apimachinery.pkg.apis.meta.v1.{definition}"]
    ours = {info.alias or name for name, info in model.model_fields.items()}
    assert ours == set(kube["properties"])
