"""SPEC §3 validation rules: for each rule a valid and an invalid case, with exact path and error type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.arc.v1alpha1 import defaults, validation
from api.arc.v1alpha1.types import ArtifactWorkflow, ArtifactWorkflowStatus
from api.fields import ErrorType
from api.resources import BY_KIND

from . import fixtures as fx

Mutate = Callable[[dict[str, Any]], None]


def _errors(wire: dict[str, Any]) -> list[tuple[str, ErrorType]]:
    obj = BY_KIND[wire["kind"]].model.model_validate(wire)
    defaults.set_defaults(obj)
    return [(e.field, e.type) for e in validation.validate(obj)]


def _set(path: str, value: Any) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if value is _DELETE:
            if isinstance(node, list):
                del node[int(last)]
            else:
                node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


_DELETE = object()

R, INV, NS, DUP, FORB = (
    ErrorType.REQUIRED,
    ErrorType.INVALID,
    ErrorType.NOT_SUPPORTED,
    ErrorType.DUPLICATE,
    ErrorType.FORBIDDEN,
)

#: A P-256 public key as cosign generate-key-pair writes cosign.pub.
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvuQ9IqmzX9/FsvDkS6xHvkv4Q0t8
2iqd5cBFXoc5qhCh/oS9sxm6qG5OKmzcs+yFwDL3Q1Gl3PtzQyHnaU3hvg==
-----END PUBLIC KEY-----
"""

CASES: list[tuple[str, Callable[[], dict[str, Any]], Mutate, list[tuple[str, ErrorType]]]] = [
    # --- Order
    ("order valid", fx.order, _set("spec.queueName", "q"), []),
    ("order no artifacts", fx.order, _set("spec.artifacts", _DELETE), [("spec.artifacts", R)]),
    ("order empty artifacts", fx.order, _set("spec.artifacts", []), [("spec.artifacts", R)]),
    (
        "order artifact without type",
        fx.order,
        _set("spec.artifacts.1.type", _DELETE),
        [("spec.artifacts[1].type", R)],
    ),
    (
        "order artifact own refs",
        fx.order,
        _set("spec.defaults", _DELETE),
        [
            ("spec.artifacts[0].srcRef", R),
            ("spec.artifacts[0].dstRef", R),
            ("spec.artifacts[1].srcRef", R),
            ("spec.artifacts[1].dstRef", R),
        ],
    ),
    (
        "order artifact refs own instead of defaults",
        fx.order,
        lambda o: (
            o["spec"].pop("defaults"),
            [a.update(srcRef={"name": "a"}, dstRef={"name": "b"}) for a in o["spec"]["artifacts"]],
        ),
        [],
    ),
    (
        "order missing dst default",
        fx.order,
        _set("spec.defaults.dstRef", _DELETE),
        [
            ("spec.artifacts[0].dstRef", R),
            ("spec.artifacts[1].dstRef", R),
        ],
    ),
    (
        "order ref with empty name",
        fx.order,
        _set("spec.artifacts.0.srcRef", {"name": ""}),
        [
            ("spec.artifacts[0].srcRef.name", R),
        ],
    ),
    (
        "order artifact spec not an object",
        fx.order,
        _set("spec.artifacts.0.spec", "x"),
        [("spec.artifacts[0].spec", INV)],
    ),
    (
        "order artifact spec list",
        fx.order,
        _set("spec.artifacts.0.spec", [1]),
        [("spec.artifacts[0].spec", INV)],
    ),
    ("order artifact spec absent (defaults to {})", fx.order, _set("spec.artifacts.0.spec", _DELETE), []),
    (
        "order duplicate artifacts",
        fx.order,
        _set("spec.artifacts.1.spec", {"image": "library/alpine:3.20"}),
        [
            ("spec.artifacts[1]", DUP),
        ],
    ),
    (
        "order duplicate via default ref",
        fx.order,
        lambda o: o["spec"]["artifacts"][1].update(
            spec={"image": "library/alpine:3.20"}, srcRef={"name": "docker-hub"}
        ),
        [("spec.artifacts[1]", DUP)],
    ),
    (
        "order duplicate null spec vs {}",
        fx.order,
        lambda o: (
            [a.update(spec={}) for a in o["spec"]["artifacts"]] and o["spec"]["artifacts"][1].pop("spec")
        ),
        [("spec.artifacts[1]", DUP)],
    ),
    (
        "order same spec different dst",
        fx.order,
        lambda o: o["spec"]["artifacts"][1].update(
            spec={"image": "library/alpine:3.20"}, dstRef={"name": "other"}
        ),
        [],
    ),
    # --- Endpoint
    ("endpoint valid", fx.endpoint, _set("spec.usage", "All"), []),
    ("endpoint usage defaulted", fx.endpoint, _set("spec.usage", _DELETE), []),
    ("endpoint no type", fx.endpoint, _set("spec.type", _DELETE), [("spec.type", R)]),
    ("endpoint empty type", fx.endpoint, _set("spec.type", ""), [("spec.type", R)]),
    ("endpoint no remoteURL", fx.endpoint, _set("spec.remoteURL", _DELETE), [("spec.remoteURL", R)]),
    ("endpoint bad usage", fx.endpoint, _set("spec.usage", "Both"), [("spec.usage", NS)]),
    (
        "endpoint secretRef without name",
        fx.endpoint,
        _set("spec.secretRef", {}),
        [("spec.secretRef.name", R)],
    ),
    # --- ArtifactType
    ("type valid", fx.artifact_type, _set("spec.queueName", "q"), []),
    (
        "type no template ref",
        fx.artifact_type,
        _set("spec.workflowTemplateRef", _DELETE),
        [("spec.workflowTemplateRef", R)],
    ),
    (
        "type template ref without name",
        fx.artifact_type,
        _set("spec.workflowTemplateRef.name", ""),
        [
            ("spec.workflowTemplateRef.name", R),
        ],
    ),
    ("type cluster template ok", fx.artifact_type, _set("spec.workflowTemplateRef.clusterScope", True), []),
    (
        "type empty parameter name",
        fx.artifact_type,
        _set("spec.parameters", [{"name": "", "value": "1"}]),
        [
            ("spec.parameters[0].name", R),
        ],
    ),
    (
        "type duplicate parameter",
        fx.artifact_type,
        _set("spec.parameters", [{"name": "a"}, {"name": "b"}, {"name": "a"}]),
        [
            ("spec.parameters[2].name", DUP),
        ],
    ),
    (
        "type bad ttl",
        fx.artifact_type,
        _set("spec.ttl.afterFailed", "1 day"),
        [("spec.ttl.afterFailed", INV)],
    ),
    ("type compound ttl", fx.artifact_type, _set("spec.ttl.afterFailed", "1h30m"), []),
    (
        "type cosign key",
        fx.artifact_type,
        _set("spec.verification", {"cosign": {"publicKey": PUBLIC_KEY}}),
        [],
    ),
    (
        "type cosign key missing",
        fx.artifact_type,
        _set("spec.verification", {"cosign": {}}),
        [("spec.verification.cosign.publicKey", R)],
    ),
    (
        "type cosign private key",
        fx.cluster_artifact_type,
        _set("spec.verification", {"cosign": {"publicKey": PUBLIC_KEY.replace("PUBLIC", "PRIVATE")}}),
        [("spec.verification.cosign.publicKey", INV)],
    ),
    (
        "type cosign key not base64",
        fx.artifact_type,
        _set("spec.verification", {"cosign": {"publicKey": PUBLIC_KEY.replace("MFkw", "M!kw")}}),
        [("spec.verification.cosign.publicKey", INV)],
    ),
    # --- ClusterArtifactType
    (
        "cluster type valid",
        fx.cluster_artifact_type,
        _set("spec.parameters", [{"name": "a", "value": ""}]),
        [],
    ),
    (
        "cluster type namespaced template",
        fx.cluster_artifact_type,
        _set("spec.workflowTemplateRef.clusterScope", False),
        [
            ("spec.workflowTemplateRef.clusterScope", INV),
        ],
    ),
    (
        "cluster type clusterScope defaulted false",
        fx.cluster_artifact_type,
        _set("spec.workflowTemplateRef.clusterScope", _DELETE),
        [
            ("spec.workflowTemplateRef.clusterScope", INV),
        ],
    ),
    (
        "cluster type with namespace",
        fx.cluster_artifact_type,
        _set("metadata.namespace", "team-a"),
        [
            ("metadata.namespace", FORB),
        ],
    ),
    (
        "cluster type duplicate parameter",
        fx.cluster_artifact_type,
        _set("spec.parameters", [{"name": "a"}, {"name": "a"}]),
        [
            ("spec.parameters[1].name", DUP),
        ],
    ),
    # --- ArtifactWorkflow
    ("workflow valid", fx.artifact_workflow, _set("spec.queueName", "q"), []),
    (
        "workflow duplicate parameter",
        fx.artifact_workflow,
        _set("spec.parameters.1.name", "srcType"),
        [
            ("spec.parameters[1].name", DUP),
        ],
    ),
    # --- metadata
    ("name uppercase", fx.endpoint, _set("metadata.name", "Docker-Hub"), [("metadata.name", INV)]),
    ("name too long", fx.endpoint, _set("metadata.name", "a" * 254), [("metadata.name", INV)]),
    ("name 253 ok", fx.endpoint, _set("metadata.name", ("a" * 63 + ".") * 3 + "a" * 61), []),
    ("name dots ok", fx.endpoint, _set("metadata.name", "docker.io"), []),
    ("no name", fx.endpoint, _set("metadata.name", _DELETE), [("metadata.name", R)]),
    (
        "namespaced without namespace",
        fx.order,
        _set("metadata.namespace", _DELETE),
        [("metadata.namespace", R)],
    ),
    ("bad label key", fx.order, _set("metadata.labels", {"-x": "y"}), [("metadata.labels", INV)]),
    ("bad label value", fx.order, _set("metadata.labels", {"x": "a b"}), [("metadata.labels", INV)]),
    ("label ok", fx.order, _set("metadata.labels", {"arc.opendefense.cloud/order": "mirror", "e": ""}), []),
    (
        "bad annotation key",
        fx.order,
        _set("metadata.annotations", {"a/b/c": "x"}),
        [("metadata.annotations", INV)],
    ),
    ("annotation uppercase key ok", fx.order, _set("metadata.annotations", {"Example.com/Key": "x"}), []),
    (
        "annotations too big",
        fx.order,
        _set("metadata.annotations", {"a": "x" * (256 * 1024)}),
        [
            ("metadata.annotations", ErrorType.TOO_LONG),
        ],
    ),
    (
        "bad finalizer",
        fx.order,
        _set("metadata.finalizers", ["arc.opendefense.cloud/order", "not/a/name"]),
        [
            ("metadata.finalizers", INV),
        ],
    ),
]


@pytest.mark.parametrize(("name", "make", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rules(
    name: str, make: Callable[[], dict[str, Any]], mutate: Mutate, expected: list[tuple[str, ErrorType]]
) -> None:
    wire = make()
    mutate(wire)
    assert _errors(wire) == expected


def test_three_problems_three_causes() -> None:
    wire = fx.endpoint()
    wire["metadata"]["name"] = "Bad_Name"
    del wire["spec"]["type"]
    wire["spec"]["usage"] = "Sometimes"
    obj = BY_KIND["Endpoint"].model.model_validate(wire)
    errs = validation.validate(obj)
    assert [e.to_cause()["field"] for e in errs] == ["metadata.name", "spec.type", "spec.usage"]
    assert [e.to_cause()["reason"] for e in errs] == [
        "FieldValueInvalid",
        "FieldValueRequired",
        "FieldValueNotSupported",
    ]
    assert (
        errs[2].to_cause()["message"]
        == 'Unsupported value: "Sometimes": supported values: "All", "PullOnly", "PushOnly"'
    )


def test_order_duplicate_message() -> None:
    wire = fx.order()
    wire["spec"]["artifacts"][1]["spec"] = {"image": "library/alpine:3.20"}
    obj = BY_KIND["Order"].model.model_validate(wire)
    (err,) = validation.validate(obj)
    assert (
        str(err)
        == 'spec.artifacts[1]: Duplicate value: {"spec":{"image":"library/alpine:3.20"},"type":"oci"}'
    )


@pytest.mark.parametrize(
    "count", [validation.MAX_ARTIFACTS_PER_ORDER, validation.MAX_ARTIFACTS_PER_ORDER + 1]
)
def test_order_artifact_count_is_bounded(count: int) -> None:
    wire = fx.order()
    wire["spec"]["artifacts"] = [{"type": "oci", "spec": {"image": f"i{i}"}} for i in range(count)]
    errs = validation.validate(BY_KIND["Order"].model.model_validate(wire))
    if count <= validation.MAX_ARTIFACTS_PER_ORDER:
        assert errs == []
        return
    (err,) = errs
    assert err.to_cause() == {
        "reason": "FieldValueTooMany",
        "message": f"Too many: {count}: must have at most {validation.MAX_ARTIFACTS_PER_ORDER} items",
        "field": "spec.artifacts",
    }


# --- update validation -----------------------------------------------------------------------------------


def _aw(**spec: Any) -> ArtifactWorkflow:
    wire = fx.artifact_workflow()
    wire["spec"].update(spec)
    return ArtifactWorkflow.model_validate(wire)


def test_artifact_workflow_spec_immutable() -> None:
    old = _aw()
    assert validation.validate_update(_aw(), old) == []
    new = _aw(type="helm", queueName="q")
    errs = validation.validate_update(new, old)
    assert [(e.field, e.type) for e in errs] == [("spec.type", INV), ("spec.queueName", INV)]
    assert str(errs[0]) == 'spec.type: Invalid value: "helm": field is immutable'


def test_artifact_workflow_status_change_is_fine() -> None:
    old = _aw()
    new = _aw()
    new.status = ArtifactWorkflowStatus(phase="Running")
    assert validation.validate_update(new, old) == []


@pytest.mark.parametrize("field", ["name", "namespace", "uid"])
def test_meta_immutable_on_update(field: str) -> None:
    old_wire = fx.endpoint()
    old_wire["metadata"].update(uid="u1", resourceVersion="3")
    new_wire = fx.endpoint()
    new_wire["metadata"].update(uid="u1", resourceVersion="3")
    new_wire["metadata"][field] = "changed"
    model = BY_KIND["Endpoint"].model
    errs = validation.validate_update(model.model_validate(new_wire), model.model_validate(old_wire))
    assert [(e.field, e.type) for e in errs] == [(f"metadata.{field}", INV)]
    assert str(errs[0]) == f'metadata.{field}: Invalid value: "changed": field is immutable'


def test_update_requires_resource_version_and_keeps_spec_rules() -> None:
    model = BY_KIND["Endpoint"].model
    old = model.model_validate(fx.endpoint())
    new_wire = fx.endpoint()
    new_wire["spec"]["usage"] = "Nope"
    errs = validation.validate_update(model.model_validate(new_wire), old)
    assert [(e.field, e.type) for e in errs] == [("metadata.resourceVersion", INV), ("spec.usage", NS)]


def test_status_update_validates_conditions() -> None:
    model = BY_KIND["Order"].model
    old_wire = fx.order()
    old_wire["metadata"]["resourceVersion"] = "7"
    new_wire = fx.order()
    new_wire["metadata"]["resourceVersion"] = "7"
    new_wire["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "Maybe",
                "reason": "Processing",
                "lastTransitionTime": "2026-11-21T10:00:00Z",
            },
            {
                "type": "Ready",
                "status": "True",
                "reason": "bad reason",
                "lastTransitionTime": "2026-11-21T10:00:00Z",
            },
        ]
    }
    errs = validation.validate_status_update(model.model_validate(new_wire), model.model_validate(old_wire))
    assert [(e.field, e.type) for e in errs] == [
        ("status.conditions[0].status", NS),
        ("status.conditions[1].type", DUP),
        ("status.conditions[1].reason", INV),
    ]


def test_defaults_idempotent_and_deterministic() -> None:
    for make in (fx.order, fx.endpoint, fx.artifact_type, fx.cluster_artifact_type, fx.artifact_workflow):
        wire = make()
        if wire["kind"] == "Order":
            wire["spec"]["artifacts"][0].pop("spec")
        if wire["kind"] == "Endpoint":
            wire["spec"].pop("usage")
        model = BY_KIND[wire["kind"]].model
        a, b = model.model_validate(wire), model.model_validate(wire)
        defaults.set_defaults(a)
        once = a.model_dump()
        defaults.set_defaults(a)
        defaults.set_defaults(b)
        assert a.model_dump() == once == b.model_dump()


def test_defaults_values() -> None:
    model = BY_KIND["Endpoint"].model
    ep = model.model_validate({"spec": {"type": "oci", "remoteURL": "x"}})
    defaults.set_defaults(ep)
    assert ep.spec.usage == "All"  # type: ignore[attr-defined]
    order = BY_KIND["Order"].model.model_validate(
        {"spec": {"artifacts": [{"type": "oci"}, {"type": "oci", "spec": {"a": None}}]}}
    )
    defaults.set_defaults(order)
    assert [a.spec for a in order.spec.artifacts] == [{}, {"a": None}]  # type: ignore[attr-defined]
