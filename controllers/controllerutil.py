"""What both controllers share, as controller-runtime's `controllerutil`: keys, finalizers, owners, `Ready`.

- The labels, annotations and finalizers ARC puts on objects, under its group domain — one spelling, imported
  by the Order controller (which writes most of them on ArtifactWorkflows) and the ArtifactWorkflow controller
  (which reads them back and copies them to Workflows). Neither controller imports the other.
- Finalizers: the list with one added or removed, and the PATCH that writes it (with the object's
  resourceVersion as a precondition, so a stale copy is a conflict, not a lost update).
- Controller owner references (`controller: true`, `blockOwnerDeletion: true`) and who controls an object.
- The `Ready` condition: `lastTransitionTime` moves only when its status flips (metav1.Condition rules).
- The informer index of Endpoints by the Secret they name, which both the Order and the Endpoint controller
  add to the manager's one Endpoint informer (an Endpoint's Secret changing re-queues what uses it).

Timestamps are written with `api.resources.format_rfc3339`, the spelling the API server uses too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, TypeVar

from api.arc.v1alpha1.types import Endpoint
from api.meta import Condition, ObjectMeta, OwnerReference
from api.resources import format_rfc3339
from controllers.kube import KubeClient, Resource

__all__ = [
    "ANNOTATION_ARTIFACT_INDEX",
    "ANNOTATION_DST_ENDPOINT",
    "ANNOTATION_FORCE_AT",
    "ANNOTATION_ORDER_NAME",
    "ANNOTATION_RETRY_FAILED_AT",
    "ANNOTATION_SRC_ENDPOINT",
    "ANNOTATION_TRACE_ID",
    "ARTIFACT_WORKFLOW_FINALIZER",
    "ENDPOINT_SECRET_INDEX",
    "LABEL_ARTIFACT_TYPE",
    "LABEL_ARTIFACT_WORKFLOW",
    "LABEL_ORDER",
    "ORDER_FINALIZER",
    "READY",
    "controller_of",
    "controller_ref",
    "endpoint_secret_keys",
    "is_controlled_by",
    "patch_finalizers",
    "set_condition",
    "stamp_transition",
    "with_finalizer",
    "without_finalizer",
]

ORDER_FINALIZER: Final = "arc.opendefense.cloud/order"
"""On every Order: its deletion waits until its ArtifactWorkflows are gone."""
ARTIFACT_WORKFLOW_FINALIZER: Final = "arc.opendefense.cloud/artifact-workflow"
"""On every ArtifactWorkflow: its deletion waits until its Workflow is gone."""

LABEL_ORDER: Final = "arc.opendefense.cloud/order"
"""The owning Order's name as a label value (cut to 63 characters + hash, see `order.naming.label_value`)."""
LABEL_ARTIFACT_TYPE: Final = "arc.opendefense.cloud/artifact-type"
LABEL_ARTIFACT_WORKFLOW: Final = "arc.opendefense.cloud/artifact-workflow"
ANNOTATION_ORDER_NAME: Final = "arc.opendefense.cloud/order-name"
"""The full Order name, when the label value had to be cut."""
ANNOTATION_TRACE_ID: Final = "arc.opendefense.cloud/trace-id"
"""The trace id of the reconcile that created the object (SPEC §5)."""
ANNOTATION_ARTIFACT_INDEX: Final = "arc.opendefense.cloud/artifact-index"
ANNOTATION_SRC_ENDPOINT: Final = "arc.opendefense.cloud/src-endpoint"
ANNOTATION_DST_ENDPOINT: Final = "arc.opendefense.cloud/dst-endpoint"
"""Put on an ArtifactWorkflow by the Order controller when it creates it: the artifact's index in the Order
and its effective Endpoint names, for the Workflow's title and description in the Argo UI."""
ANNOTATION_FORCE_AT: Final = "arc.opendefense.cloud/force-at"
ANNOTATION_RETRY_FAILED_AT: Final = "arc.opendefense.cloud/retry-failed-at"

READY: Final = "Ready"

ENDPOINT_SECRET_INDEX: Final = "secret"
"""Endpoints by `<namespace>/<spec.secretRef.name>` (`endpoint_secret_keys`)."""


def endpoint_secret_keys(endpoint: Endpoint) -> list[str]:
    """The index values of an Endpoint in `ENDPOINT_SECRET_INDEX`: the Secret it names, if any."""
    ref = endpoint.spec.secret_ref
    if ref is None or not ref.name:
        return []
    return [f"{endpoint.metadata.namespace}/{ref.name}"]


# --- finalizers --------------------------------------------------------------------------------------------


def with_finalizer(meta: ObjectMeta, finalizer: str) -> list[str] | None:
    """The finalizers with `finalizer` added, or None when it is there already (nothing to write)."""
    current = meta.finalizers or []
    return None if finalizer in current else [*current, finalizer]


def without_finalizer(meta: ObjectMeta, finalizer: str) -> list[str] | None:
    """The finalizers with `finalizer` removed, or None when it is not there (nothing to write)."""
    current = meta.finalizers or []
    return [f for f in current if f != finalizer] if finalizer in current else None


class _Object(Protocol):
    @property
    def metadata(self) -> ObjectMeta: ...


M = TypeVar("M", bound=_Object)


async def patch_finalizers(
    client: KubeClient, resource: Resource, obj: M, finalizers: Sequence[str], parse: Callable[[Any], M]
) -> M:
    """Write `metadata.finalizers` with a merge patch, conditioned on `obj`'s resourceVersion; the object
    the API returned, parsed."""
    meta = obj.metadata
    patched = await client.patch(
        resource,
        meta.namespace,
        meta.name or "",
        {"metadata": {"finalizers": list(finalizers) or None, "resourceVersion": meta.resource_version}},
    )
    return parse(patched)


# --- owner references --------------------------------------------------------------------------------------


def controller_ref(owner: _Object, *, api_version: str, kind: str) -> dict[str, Any]:
    """A controller ownerReference to `owner` (wire form): the garbage collector deletes the dependent with
    it, and foreground deletion of the owner waits for it."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(meta: ObjectMeta) -> OwnerReference | None:
    """The object's controller ownerReference, if any."""
    return next((r for r in meta.owner_references or [] if r.controller), None)


def is_controlled_by(owner_references: Sequence[dict[str, Any]] | None, uid: str | None) -> bool:
    """Whether the ownerReferences (wire form) name `uid` as the controller."""
    return any(r.get("uid") == uid and r.get("controller") for r in owner_references or [])


# --- conditions --------------------------------------------------------------------------------------------


def stamp_transition(new: Condition, old: Condition | None, *, now: str | None = None) -> Condition:
    """`new` with its lastTransitionTime: `old`'s while the status stays the same, else `now` (default:
    the clock, RFC 3339)."""
    if old is not None and old.status == new.status and old.last_transition_time:
        new.last_transition_time = old.last_transition_time
    else:
        new.last_transition_time = now or format_rfc3339()
    return new


def set_condition(
    conditions: Sequence[Condition] | None, new: Condition, *, now: str | None = None
) -> list[Condition]:
    """Replace the condition of `new.type` (or append it); lastTransitionTime changes only when the status
    flips (see `stamp_transition`)."""
    out = list(conditions or [])
    for i, old in enumerate(out):
        if old.type == new.type:
            out[i] = stamp_transition(new, old, now=now)
            return out
    out.append(stamp_transition(new, None, now=now))
    return out
