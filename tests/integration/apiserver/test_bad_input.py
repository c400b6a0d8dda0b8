"""Bad input over raw HTTPS: each request gets kube's Status and changes nothing stored (issue 5).

Every case runs in a fresh namespace seeded with one object of each kind; the namespace's objects (and the
test's ClusterArtifactType) are listed before and after the request and must be identical, resourceVersions
included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.integration.apiserver.conftest import API_VERSION, GROUP, GV_PATH, RawClient, Reply, order

pytestmark = pytest.mark.integration

NAMESPACED = ("orders", "artifactworkflows", "endpoints", "artifacttypes")
OPTIONS_KINDS = ("ListOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "DeleteOptions")
MIB = 1024 * 1024

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"


def endpoint(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "oci", "remoteURL": "registry.example", **spec},
    }


def artifact_type(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactType",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"workflowTemplateRef": {"name": "copy", "clusterScope": False}, **spec},
    }


def cluster_artifact_type(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterArtifactType",
        "metadata": {"name": name},
        "spec": {"workflowTemplateRef": {"name": "copy", "clusterScope": True}, **spec},
    }


def artifact_workflow(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ArtifactWorkflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "oci",
            "workflowTemplateRef": {"name": "copy", "clusterScope": False},
            "parameters": [{"name": "image", "value": "alpine"}],
            **spec,
        },
    }


@dataclass
class Seeded:
    """The namespace of one case and the objects created in it."""

    namespace: str
    objects: dict[str, dict[str, Any]]

    @property
    def cat(self) -> str:
        return f"{self.namespace}-cat"

    def current(self, plural: str) -> dict[str, Any]:
        copy: dict[str, Any] = orjson.loads(orjson.dumps(self.objects[plural]))
        return copy

    def rv(self, plural: str) -> str:
        return str(self.objects[plural]["metadata"]["resourceVersion"])


async def seed(raw: RawClient, namespace: str) -> Seeded:
    objects: dict[str, dict[str, Any]] = {}
    ns_path = f"{GV_PATH}/namespaces/{namespace}"
    for plural, body in (
        ("orders", order("existing", namespace)),
        ("artifactworkflows", artifact_workflow("existing", namespace)),
        ("endpoints", endpoint("existing", namespace)),
        ("artifacttypes", artifact_type("existing", namespace)),
    ):
        reply = await raw.request("POST", f"{ns_path}/{plural}", json=body)
        assert reply.status == 201, reply.body
        objects[plural] = reply.body
    reply = await raw.request(
        "POST", f"{GV_PATH}/clusterartifacttypes", json=cluster_artifact_type(f"{namespace}-cat")
    )
    assert reply.status == 201, reply.body
    objects["clusterartifacttypes"] = reply.body
    return Seeded(namespace, objects)


async def snapshot(raw: RawClient, seeded: Seeded) -> dict[str, list[dict[str, Any]]]:
    """Everything the case could have touched, as stored."""
    out: dict[str, list[dict[str, Any]]] = {}
    for plural in NAMESPACED:
        reply = await raw.get(f"{GV_PATH}/namespaces/{seeded.namespace}/{plural}")
        assert reply.status == 200, reply.body
        out[plural] = reply.body["items"]
    reply = await raw.get(f"{GV_PATH}/clusterartifacttypes")
    assert reply.status == 200, reply.body
    out["clusterartifacttypes"] = [
        item for item in reply.body["items"] if item["metadata"]["name"].startswith(seeded.namespace)
    ]
    return out


Body = Callable[[Seeded], Any]


@dataclass(frozen=True)
class Case:
    """One bad request. ``path`` is below ``/apis/<g>/<v>`` with ``{ns}`` for the case's namespace."""

    id: str
    method: str
    path: str
    status: int
    reason: str
    body: Body | None = None
    raw: bytes | None = None
    content_type: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    causes: frozenset[tuple[str, str]] | None = None
    """The exact (field, reason) set of ``details.causes`` (None: not checked)."""
    kind: str | None = None
    """``details.kind`` of a 422 (the object's kind, or the options kind for query errors)."""
    message: str | None = None


def causes(*pairs: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


def without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    target = obj
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return obj


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj["spec"] = {**obj["spec"], **spec}
    return obj


def with_meta(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    obj["metadata"] = {**obj["metadata"], **meta}
    return obj


ORDERS = "/namespaces/{ns}/orders"
ORDER = "/namespaces/{ns}/orders/existing"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
BIG = "x" * (3 * MIB + 16)

CASES = [
    # ---- malformed bodies ---------------------------------------------------------------------------------
    Case(
        "malformed-json-create",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        raw=b'{"apiVersion": "arc',
        content_type="application/json",
    ),
    Case("malformed-json-update", "PUT", ORDER, 400, "BadRequest", raw=b"{", content_type="application/json"),
    Case("malformed-merge-patch", "PATCH", ORDER, 400, "BadRequest", raw=b'{"spec":', content_type=MERGE),
    Case("malformed-json-patch", "PATCH", ORDER, 400, "BadRequest", raw=b"[{", content_type=JSON_PATCH),
    Case(
        "json-patch-not-a-list",
        "PATCH",
        ORDER,
        400,
        "BadRequest",
        raw=b'{"op": "add"}',
        content_type=JSON_PATCH,
        message="json: cannot unmarshal object into Go value of type jsonpatch.Patch",
    ),
    Case(
        "body-not-an-object",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        raw=b"[1, 2]",
        content_type="application/json",
    ),
    Case(
        "malformed-yaml",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        raw=b"kind: [Order",
        content_type="application/yaml",
    ),
    # ---- wrong kind, apiVersion, namespace, name ----------------------------------------------------------
    Case(
        "wrong-kind",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        body=lambda s: endpoint("other", s.namespace) | {"kind": "Endpoint"},
    ),
    Case(
        "wrong-api-version",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        body=lambda s: order("other", s.namespace) | {"apiVersion": f"{GROUP}/v1"},
        message=(
            f"the API version in the data ({GROUP}/v1) does not match the expected API version "
            f"({API_VERSION})"
        ),
    ),
    Case(
        "wrong-group",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        body=lambda s: order("other", s.namespace) | {"apiVersion": "v1"},
    ),
    Case(
        "wrong-kind-update",
        "PUT",
        ORDER,
        400,
        "BadRequest",
        body=lambda s: s.current("orders") | {"kind": "Endpoint"},
    ),
    Case(
        "namespace-mismatch-create",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        body=lambda s: order("other", "somewhere-else"),
        message="the namespace of the provided object does not match the namespace sent on the request",
    ),
    Case(
        "namespace-mismatch-update",
        "PUT",
        ORDER,
        400,
        "BadRequest",
        body=lambda s: with_meta(s.current("orders"), namespace="somewhere-else"),
        message="the namespace of the provided object does not match the namespace sent on the request",
    ),
    Case(
        "name-mismatch-update",
        "PUT",
        ORDER,
        400,
        "BadRequest",
        body=lambda s: with_meta(s.current("orders"), name="other"),
        message="the name of the object (other) does not match the name on the URL (existing)",
    ),
    Case(
        "name-invalid-characters",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("Bad_Name", s.namespace),
        causes=causes(("metadata.name", INVALID)),
        kind="Order",
    ),
    Case(
        "name-leading-dash",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("-name", s.namespace),
        causes=causes(("metadata.name", INVALID)),
        kind="Order",
    ),
    Case(
        "name-too-long",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("n" * 254, s.namespace),
        causes=causes(("metadata.name", INVALID)),
        kind="Order",
    ),
    Case(
        "name-missing",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: without(order("x", s.namespace), "metadata", "name"),
        causes=causes(("metadata.name", REQUIRED)),
        kind="Order",
    ),
    Case(
        "already-exists",
        "POST",
        ORDERS,
        409,
        "AlreadyExists",
        body=lambda s: order("existing", s.namespace),
        message=f'orders.{GROUP} "existing" already exists',
    ),
    Case(
        # kube's etcd3 store answers this with a reasonless 500; ARC never answers bad input with a 5xx.
        "resource-version-on-create",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: with_meta(order("other", s.namespace), resourceVersion="5"),
        causes=frozenset({("metadata.resourceVersion", "FieldValueForbidden")}),
        message=(
            f'Order.{GROUP} "other" is invalid: metadata.resourceVersion: '
            "Forbidden: resourceVersion should not be set on objects to be created"
        ),
    ),
    # ---- SPEC §3 validation: Order -------------------------------------------------------------------------
    Case(
        "order-no-artifacts",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: with_spec(order("other", s.namespace), artifacts=[]),
        causes=causes(("spec.artifacts", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-artifacts-missing",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: without(order("other", s.namespace), "spec", "artifacts"),
        causes=causes(("spec.artifacts", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-artifact-without-type",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: with_spec(
            order("other", s.namespace), artifacts=[{"type": "oci"}, {"spec": {"image": "x"}}]
        ),
        causes=causes(("spec.artifacts[1].type", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-artifact-without-source-and-destination",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: without(order("other", s.namespace, images=("a",)), "spec", "defaults"),
        causes=causes(("spec.artifacts[0].srcRef", REQUIRED), ("spec.artifacts[0].dstRef", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-artifact-spec-not-an-object",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: with_spec(
            order("other", s.namespace), artifacts=[{"type": "oci", "spec": "image: x"}]
        ),
        causes=causes(("spec.artifacts[0].spec", INVALID)),
        kind="Order",
    ),
    Case(
        "order-duplicate-artifacts",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("other", s.namespace, images=("a", "b", "a")),
        causes=causes(("spec.artifacts[2]", DUPLICATE)),
        kind="Order",
    ),
    Case(
        "order-every-cause-at-once",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: with_meta(
            with_spec(
                without(order("Bad_Name", s.namespace), "spec", "defaults"),
                artifacts=[{"srcRef": {"name": "s"}, "dstRef": {"name": "d"}}, {"type": "oci", "spec": 1}],
            ),
            labels={"bad key!": "x"},
        ),
        causes=causes(
            ("metadata.name", INVALID),
            ("metadata.labels", INVALID),
            ("spec.artifacts[0].type", REQUIRED),
            ("spec.artifacts[1].srcRef", REQUIRED),
            ("spec.artifacts[1].dstRef", REQUIRED),
            ("spec.artifacts[1].spec", INVALID),
        ),
        kind="Order",
    ),
    Case(
        "order-update-invalid",
        "PUT",
        ORDER,
        422,
        "Invalid",
        body=lambda s: with_spec(s.current("orders"), artifacts=[]),
        causes=causes(("spec.artifacts", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-merge-patch-invalid",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        body=lambda s: {"spec": {"artifacts": [{"type": ""}]}},
        content_type=MERGE,
        causes=causes(("spec.artifacts[0].type", REQUIRED)),
        kind="Order",
    ),
    Case(
        "order-json-patch-invalid",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        body=lambda s: [
            {"op": "add", "path": "/spec/artifacts/-", "value": {"type": "oci", "spec": {"image": "a"}}}
        ],
        content_type=JSON_PATCH,
        causes=causes(("spec.artifacts[2]", DUPLICATE)),
        kind="Order",
    ),
    # ---- SPEC §3 validation: Endpoint ----------------------------------------------------------------------
    Case(
        "endpoint-type-and-url-required",
        "POST",
        "/namespaces/{ns}/endpoints",
        422,
        "Invalid",
        body=lambda s: {**endpoint("other", s.namespace), "spec": {"usage": "All"}},
        causes=causes(("spec.type", REQUIRED), ("spec.remoteURL", REQUIRED)),
        kind="Endpoint",
    ),
    Case(
        "endpoint-usage-enum",
        "POST",
        "/namespaces/{ns}/endpoints",
        422,
        "Invalid",
        body=lambda s: endpoint("other", s.namespace, usage="Sometimes"),
        causes=causes(("spec.usage", NOT_SUPPORTED)),
        kind="Endpoint",
    ),
    # ---- SPEC §3 validation: ArtifactType / ClusterArtifactType --------------------------------------------
    Case(
        "artifact-type-template-name-required",
        "POST",
        "/namespaces/{ns}/artifacttypes",
        422,
        "Invalid",
        body=lambda s: artifact_type("other", s.namespace, workflowTemplateRef={"clusterScope": False}),
        causes=causes(("spec.workflowTemplateRef.name", REQUIRED)),
        kind="ArtifactType",
    ),
    Case(
        "artifact-type-template-ref-required",
        "POST",
        "/namespaces/{ns}/artifacttypes",
        422,
        "Invalid",
        body=lambda s: without(artifact_type("other", s.namespace), "spec", "workflowTemplateRef"),
        causes=causes(("spec.workflowTemplateRef", REQUIRED)),
        kind="ArtifactType",
    ),
    Case(
        "artifact-type-parameter-names",
        "POST",
        "/namespaces/{ns}/artifacttypes",
        422,
        "Invalid",
        body=lambda s: artifact_type(
            "other",
            s.namespace,
            parameters=[{"name": "", "value": "1"}, {"name": "a", "value": "2"}, {"name": "a", "value": "3"}],
        ),
        causes=causes(("spec.parameters[0].name", REQUIRED), ("spec.parameters[2].name", DUPLICATE)),
        kind="ArtifactType",
    ),
    Case(
        "cluster-artifact-type-cluster-scope",
        "POST",
        "/clusterartifacttypes",
        422,
        "Invalid",
        body=lambda s: cluster_artifact_type(
            f"{s.namespace}-other", workflowTemplateRef={"name": "copy", "clusterScope": False}
        ),
        causes=causes(("spec.workflowTemplateRef.clusterScope", INVALID)),
        kind="ClusterArtifactType",
    ),
    Case(
        "cluster-artifact-type-parameter-names",
        "PUT",
        "/clusterartifacttypes/{ns}-cat",
        422,
        "Invalid",
        body=lambda s: with_spec(
            s.current("clusterartifacttypes"), parameters=[{"name": "p", "value": "1"}, {"name": "p"}]
        ),
        causes=causes(("spec.parameters[1].name", DUPLICATE)),
        kind="ClusterArtifactType",
    ),
    # ---- SPEC §3 validation: ArtifactWorkflow --------------------------------------------------------------
    Case(
        "artifact-workflow-parameter-names",
        "POST",
        "/namespaces/{ns}/artifactworkflows",
        422,
        "Invalid",
        body=lambda s: artifact_workflow(
            "other", s.namespace, parameters=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]
        ),
        causes=causes(("spec.parameters[1].name", DUPLICATE)),
        kind="ArtifactWorkflow",
    ),
    Case(
        "artifact-workflow-spec-immutable",
        "PUT",
        "/namespaces/{ns}/artifactworkflows/existing",
        422,
        "Invalid",
        body=lambda s: with_spec(s.current("artifactworkflows"), type="helm", queueName="q"),
        causes=causes(("spec.type", INVALID), ("spec.queueName", INVALID)),
        kind="ArtifactWorkflow",
    ),
    Case(
        "artifact-workflow-spec-immutable-patch",
        "PATCH",
        "/namespaces/{ns}/artifactworkflows/existing",
        422,
        "Invalid",
        body=lambda s: {"spec": {"parameters": [{"name": "image", "value": "nginx"}]}},
        content_type=MERGE,
        causes=causes(("spec.parameters", INVALID)),
        kind="ArtifactWorkflow",
    ),
    # ---- SPEC §3 validation: metadata ----------------------------------------------------------------------
    Case(
        "label-key-syntax",
        "POST",
        "/namespaces/{ns}/endpoints",
        422,
        "Invalid",
        body=lambda s: with_meta(endpoint("other", s.namespace), labels={"bad key!": "v"}),
        causes=causes(("metadata.labels", INVALID)),
        kind="Endpoint",
    ),
    Case(
        "label-value-syntax",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        body=lambda s: {"metadata": {"labels": {"tier": "not a value!"}}},
        content_type=MERGE,
        causes=causes(("metadata.labels", INVALID)),
        kind="Order",
    ),
    Case(
        "annotation-key-syntax",
        "POST",
        "/namespaces/{ns}/artifacttypes",
        422,
        "Invalid",
        body=lambda s: with_meta(artifact_type("other", s.namespace), annotations={"a/b/c": "v"}),
        causes=causes(("metadata.annotations", INVALID)),
        kind="ArtifactType",
    ),
    # ---- unknown fields ----------------------------------------------------------------------------------
    Case(
        "unknown-field-strict",
        "POST",
        ORDERS,
        400,
        "BadRequest",
        body=lambda s: with_spec(order("other", s.namespace), bogus=1),
        params=(("fieldValidation", "Strict"),),
        message='strict decoding error: unknown field "spec.bogus"',
    ),
    # ---- stale resourceVersion ---------------------------------------------------------------------------
    Case(
        "stale-resource-version-update",
        "PUT",
        ORDER,
        409,
        "Conflict",
        body=lambda s: with_meta(s.current("orders"), resourceVersion=str(int(s.rv("orders")) - 1)),
        message=(
            f'Operation cannot be fulfilled on orders.{GROUP} "existing": the object has been modified; '
            "please apply your changes to the latest version and try again"
        ),
    ),
    Case(
        "stale-resource-version-status-update",
        "PUT",
        ORDER + "/status",
        409,
        "Conflict",
        body=lambda s: with_meta(
            s.current("orders") | {"status": {"phase": "Running"}},
            resourceVersion=str(int(s.rv("orders")) - 1),
        ),
    ),
    Case(
        "stale-resource-version-merge-patch",
        "PATCH",
        ORDER,
        409,
        "Conflict",
        body=lambda s: {
            "metadata": {"resourceVersion": str(int(s.rv("orders")) - 1)},
            "spec": {"queueName": "q"},
        },
        content_type=MERGE,
    ),
    Case(
        "stale-resource-version-delete",
        "DELETE",
        ORDER,
        409,
        "Conflict",
        body=lambda s: {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"resourceVersion": str(int(s.rv("orders")) - 1)},
        },
    ),
    Case(
        "wrong-uid-delete",
        "DELETE",
        ORDER,
        409,
        "Conflict",
        body=lambda s: {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}},
    ),
    # ---- oversized bodies ----------------------------------------------------------------------------------
    Case(
        "oversized-create",
        "POST",
        ORDERS,
        413,
        "RequestEntityTooLarge",
        body=lambda s: with_spec(
            order("other", s.namespace), artifacts=[{"type": "oci", "spec": {"x": BIG}}]
        ),
    ),
    Case(
        "oversized-update",
        "PUT",
        ORDER,
        413,
        "RequestEntityTooLarge",
        body=lambda s: with_meta(s.current("orders"), annotations={"big": BIG}),
    ),
    Case(
        "oversized-patch",
        "PATCH",
        ORDER,
        413,
        "RequestEntityTooLarge",
        body=lambda s: {"metadata": {"annotations": {"big": BIG}}},
        content_type=MERGE,
    ),
    # ---- query parameters ----------------------------------------------------------------------------------
    Case("unknown-query-list", "GET", ORDERS, 200, "", params=(("bogus", "1"), ("pretty", "true"))),
    Case("unknown-query-get", "GET", ORDER, 200, "", params=(("bogus", "1"),)),
    Case(
        "unknown-query-dry-run-create",
        "POST",
        ORDERS,
        201,
        "",
        body=lambda s: order("dry", s.namespace),
        params=(("bogus", "1"), ("dryRun", "All")),
    ),
    Case("limit-not-a-number", "GET", ORDERS, 400, "BadRequest", params=(("limit", "abc"),)),
    Case(
        "resource-version-not-a-number",
        "GET",
        ORDERS,
        400,
        "BadRequest",
        params=(("resourceVersion", "abc"),),
    ),
    Case("watch-not-a-bool", "GET", ORDERS, 400, "BadRequest", params=(("watch", "maybe"),)),
    Case("label-selector-syntax", "GET", ORDERS, 400, "BadRequest", params=(("labelSelector", "a in ("),)),
    Case(
        "field-selector-unsupported",
        "GET",
        ORDERS,
        400,
        "BadRequest",
        params=(("fieldSelector", "spec.queueName=x"),),
        message="field label not supported: spec.queueName",
    ),
    Case(
        "resource-version-match-unsupported",
        "GET",
        ORDERS,
        422,
        "Invalid",
        params=(("resourceVersion", "1"), ("resourceVersionMatch", "Bogus")),
        causes=causes(("resourceVersionMatch", NOT_SUPPORTED)),
        kind="ListOptions",
    ),
    Case(
        "field-validation-unsupported",
        "POST",
        ORDERS,
        422,
        "Invalid",
        body=lambda s: order("other", s.namespace),
        params=(("fieldValidation", "Nope"),),
        causes=causes(("fieldValidation", NOT_SUPPORTED)),
        kind="CreateOptions",
    ),
    Case(
        "dry-run-unsupported",
        "PATCH",
        ORDER,
        422,
        "Invalid",
        body=lambda s: {"spec": {"queueName": "q"}},
        content_type=MERGE,
        params=(("dryRun", "Some"),),
        causes=causes(("dryRun", NOT_SUPPORTED)),
        kind="PatchOptions",
    ),
    Case(
        "propagation-policy-unsupported",
        "DELETE",
        ORDER,
        422,
        "Invalid",
        params=(("propagationPolicy", "Sideways"),),
        causes=causes(("propagationPolicy", NOT_SUPPORTED)),
        kind="DeleteOptions",
    ),
    # ---- media types ---------------------------------------------------------------------------------------
    Case(
        "cbor-apply-patch",
        "PATCH",
        ORDER,
        415,
        "UnsupportedMediaType",
        body=lambda s: {"spec": {"queueName": "q"}},
        content_type="application/apply-patch+cbor",
        message=(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/strategic-merge-patch+json, application/apply-patch+yaml"
        ),
    ),
    Case(
        "unsupported-body-media-type",
        "POST",
        ORDERS,
        415,
        "UnsupportedMediaType",
        raw=b"kind: Order",
        content_type="text/plain",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_gets_kubes_status_and_changes_nothing(
    raw: RawClient, namespace: str, case: Case
) -> None:
    seeded = await seed(raw, namespace)
    before = await snapshot(raw, seeded)

    data = case.raw
    content_type = case.content_type
    if case.body is not None:
        data = orjson.dumps(case.body(seeded))
        content_type = content_type or "application/json"
    reply = await raw.request(
        case.method,
        GV_PATH + case.path.format(ns=namespace),
        data=data,
        content_type=content_type,
        params=list(case.params),
    )
    check_reply(case, reply)

    assert await snapshot(raw, seeded) == before


def check_reply(case: Case, reply: Reply) -> None:
    assert reply.status == case.status, reply.body
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    if case.status < 400:
        return
    status = reply.body
    assert isinstance(status, dict), status
    assert status["kind"] == "Status" and status["apiVersion"] == "v1", status
    assert status["status"] == "Failure"
    assert status["code"] == case.status
    assert status.get("reason", "") == case.reason, status
    assert status["message"], status
    assert "Traceback" not in status["message"] and "<class" not in status["message"], status
    if case.message is not None:
        assert status["message"] == case.message
    if case.causes is not None:
        assert set(reply.causes) == case.causes, status
    if case.kind is not None:
        details = status["details"]
        assert details["kind"] == case.kind, status
        if case.kind in OPTIONS_KINDS:
            assert details["group"] == "meta.k8s.io", status
        else:
            assert details["group"] == GROUP, status
            name = details.get("name", "")
            assert status["message"].startswith(f'{case.kind}.{GROUP} "{name}" is invalid: '), status
