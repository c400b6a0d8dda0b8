"""controllers.runtime.handler: which Requests an event enqueues; controllerutil's Endpoint Secret index."""

from __future__ import annotations

from api.arc.v1alpha1.types import ArtifactWorkflow, Endpoint
from controllers.controllerutil import endpoint_secret_keys
from controllers.runtime import Request
from controllers.runtime.handler import enqueue_request_for_object, enqueue_request_for_owner


def _aw(owner_references: list[dict[str, object]]) -> ArtifactWorkflow:
    return ArtifactWorkflow.model_validate(
        {
            "apiVersion": "arc.opendefense.cloud/v1alpha1",
            "kind": "ArtifactWorkflow",
            "metadata": {"namespace": "team-a", "name": "copy-0", "ownerReferences": owner_references},
            "spec": {},
        }
    )


def _ref(kind: str, name: str, *, controller: bool) -> dict[str, object]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": kind,
        "name": name,
        "uid": f"uid-{name}",
        "controller": controller,
    }


def test_enqueue_request_for_object_is_the_objects_own_key() -> None:
    assert list(enqueue_request_for_object(_aw([]))) == [Request("team-a", "copy-0")]


def test_enqueue_request_for_owner_maps_only_the_controller_of_that_kind() -> None:
    aw = _aw(
        [
            _ref("Order", "not-controller", controller=False),
            _ref("Schedule", "other-kind", controller=True),
            _ref("Order", "copy", controller=True),
        ]
    )
    assert list(enqueue_request_for_owner("Order")(aw)) == [Request("team-a", "copy")]
    assert list(enqueue_request_for_owner("Order")(_aw([]))) == []


def test_endpoint_secret_keys() -> None:
    def endpoint(spec: dict[str, object]) -> Endpoint:
        return Endpoint.model_validate(
            {"metadata": {"namespace": "team-a", "name": "hub"}, "spec": {"type": "oci", **spec}}
        )

    base = {"remoteURL": "https://registry.example"}
    assert endpoint_secret_keys(endpoint({**base, "secretRef": {"name": "pull"}})) == ["team-a/pull"]
    assert endpoint_secret_keys(endpoint(base)) == []
