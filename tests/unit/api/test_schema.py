"""Unknown-field reporting for fieldValidation=Strict|Warn, with kube's paths and messages."""

from __future__ import annotations

from api.arc.v1alpha1.types import ClusterArtifactType, Endpoint, Order
from api.schema import strict_decoding_message, unknown_field_warning, unknown_fields

from . import fixtures as fx


def test_known_fields_only() -> None:
    for make, model in (
        (fx.order, Order),
        (fx.endpoint, Endpoint),
        (fx.cluster_artifact_type, ClusterArtifactType),
    ):
        assert unknown_fields(model, make()) == []


def test_unknown_fields_paths_sorted() -> None:
    wire = fx.order()
    wire["spec"]["x"] = 1
    wire["spec"]["artifacts"][1]["bogus"] = True
    wire["spec"]["artifacts"][0]["srcRef"] = {"name": "a", "namespace": "other"}
    wire["metadata"]["labelz"] = {}
    wire["status"] = {
        "artifactWorkflows": {"0123456789abcdef": {"name": "w", "extra": 1}},
        "progress": {"total": 1},
    }
    wire["top"] = None
    assert unknown_fields(Order, wire) == [
        "metadata.labelz",
        "spec.artifacts[0].srcRef.namespace",
        "spec.artifacts[1].bogus",
        "spec.x",
        "status.artifactWorkflows.0123456789abcdef.extra",
        "top",
    ]


def test_free_form_values_accept_anything() -> None:
    wire = fx.order()
    wire["spec"]["artifacts"][0]["spec"] = {"anything": {"goes": [1, None, {"deep": True}]}}
    wire["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]
    assert unknown_fields(Order, wire) == []


def test_snake_case_is_unknown_on_the_wire() -> None:
    wire = fx.endpoint()
    wire["spec"]["remote_url"] = "x"
    assert unknown_fields(Endpoint, wire) == ["spec.remote_url"]


def test_messages() -> None:
    assert strict_decoding_message(["spec.x"]) == 'strict decoding error: unknown field "spec.x"'
    assert (
        strict_decoding_message(["spec.x", "spec.y"])
        == 'strict decoding error: unknown field "spec.x", unknown field "spec.y"'
    )
    assert unknown_field_warning("spec.x") == 'unknown field "spec.x"'
