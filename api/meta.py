"""Kubernetes meta types (`k8s.io/apimachinery/pkg/apis/meta/v1`) as pydantic v2 models.

Wire names are camelCase through aliases, Python attributes snake_case. Dump with
`model_dump(mode="json", exclude_none=True)` (or `dump(obj)`) to get Go's `omitempty` behaviour: every
optional field is `None` when unset and disappears from the output. Fields Go always serializes (no
`omitempty`) have non-`None` defaults instead, so they always appear.

Timestamps (`metav1.Time`) stay the RFC 3339 strings they were sent or stored as (`2026-11-21T10:00:00Z`);
`resourceVersion` is an opaque string. Free-form JSON (`fieldsV1`, table cells, a watch event's object,
an artifact's `spec`) is typed `RawJSON`: stored exactly as parsed, `null`s included, never filtered by
`exclude_none`.

Models are deliberately plain: no validators on the read path. Business rules live in the
`validation` modules and return `list[FieldError]`.

The OpenAPI documents do not use these classes for the meta definitions: they carry byte-identical copies
of kube-apiserver's `io.k8s.apimachinery.pkg.apis.meta.v1.*` definitions (see `api/openapi.py`) so the
aggregator merges them without renaming; `tests/unit/api/test_openapi.py` checks that both agree on the
field names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "Condition",
    "ConditionStatus",
    "DeleteOptions",
    "K8sModel",
    "ListMeta",
    "LocalObjectReference",
    "ManagedFieldsEntry",
    "ObjectMeta",
    "OwnerReference",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "Preconditions",
    "RawJSON",
    "Status",
    "StatusCause",
    "StatusDetails",
    "Table",
    "TableColumnDefinition",
    "TableRow",
    "WatchEvent",
    "dump",
    "x_kubernetes",
]


def _keep(value: Any) -> Any:
    return value


RawJSON = Annotated[Any, PlainSerializer(_keep, return_type=Any)]
"""Any JSON value, kept exactly as parsed (`null`s inside objects and lists included)."""


class K8sModel(BaseModel):
    """Base of every API type: camelCase on the wire, snake_case in Python, unknown fields ignored.

    Unknown fields are reported by `api.schema.unknown_fields` (for `fieldValidation=Strict|Warn`), not
    by pydantic, so reads stay forward-compatible.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


def dump(obj: BaseModel) -> dict[str, Any]:
    """The wire form of an object: camelCase, `omitempty` (`model_dump(mode="json", exclude_none=True)`)."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def x_kubernetes(
    *,
    required: bool = False,
    list_type: Literal["atomic", "set", "map"] | None = None,
    list_map_keys: tuple[str, ...] = (),
    map_type: Literal["atomic", "granular"] | None = None,
    patch_strategy: str | None = None,
    patch_merge_key: str | None = None,
    preserve_unknown_fields: bool = False,
    enum: tuple[str, ...] = (),
    format: str | None = None,
) -> dict[str, Any]:
    """OpenAPI facts about a field, for `Field(json_schema_extra=...)`; read by `api.openapi`.

    `required` marks a field the schema lists as required (Go: no `omitempty`, no `+optional`);
    the Python model still accepts it missing so that validation can report every error at once.
    `patch_strategy`/`patch_merge_key` are Go's `patchStrategy`/`patchMergeKey` tags: the strategic merge
    patch metadata kubectl reads from the OpenAPI (`x-kubernetes-patch-strategy`/`-merge-key`).
    """
    out: dict[str, Any] = {}
    if required:
        out["x-arc-required"] = True
    if list_type is not None:
        out["x-kubernetes-list-type"] = list_type
    if list_map_keys:
        out["x-kubernetes-list-map-keys"] = list(list_map_keys)
    if map_type is not None:
        out["x-kubernetes-map-type"] = map_type
    if patch_strategy is not None:
        out["x-kubernetes-patch-strategy"] = patch_strategy
    if patch_merge_key is not None:
        out["x-kubernetes-patch-merge-key"] = patch_merge_key
    if preserve_unknown_fields:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if enum:
        out["enum"] = list(enum)
    if format is not None:
        out["format"] = format
    return out


# --- ObjectMeta ---------------------------------------------------------------------------------------


class ManagedFieldsEntry(K8sModel):
    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: str | None = None
    fields_v1: RawJSON = Field(default=None, alias="fieldsV1")
    subresource: str | None = None


class OwnerReference(K8sModel):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(K8sModel):
    """metav1.ObjectMeta, every field kube-apiserver serves."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    self_link: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None

    @model_validator(mode="after")
    def _omit_empty(self) -> ObjectMeta:
        """Go's ``omitempty``: empty labels, annotations, ownerReferences and finalizers are not kept
        (``managedFields: []`` is a request to reset them, so it stays)."""
        if self.labels is not None and not self.labels:
            self.labels = None
        if self.annotations is not None and not self.annotations:
            self.annotations = None
        if self.owner_references is not None and not self.owner_references:
            self.owner_references = None
        if self.finalizers is not None and not self.finalizers:
            self.finalizers = None
        return self


class ListMeta(K8sModel):
    self_link: str | None = None
    resource_version: str | None = None
    continue_: str | None = Field(default=None, alias="continue")
    remaining_item_count: int | None = None


class LocalObjectReference(K8sModel):
    """A reference to an object in the referring object's own namespace."""

    # kube's corev1.LocalObjectReference is `+structType=atomic`: server-side apply owns it as one value.
    model_config = ConfigDict(**K8sModel.model_config, json_schema_extra={"x-kubernetes-map-type": "atomic"})

    name: str = Field(
        default="",
        description="Name of the referenced object, in the same namespace as the referring object.",
        json_schema_extra=x_kubernetes(required=True),
    )


# --- Conditions -----------------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(K8sModel):
    """metav1.Condition."""

    type: str = Field(
        default="",
        description="type of condition in CamelCase or in foo.example.com/CamelCase.",
        json_schema_extra=x_kubernetes(required=True),
    )
    status: str = Field(
        default="",
        description="status of the condition, one of True, False, Unknown.",
        json_schema_extra=x_kubernetes(required=True, enum=("False", "True", "Unknown")),
    )
    observed_generation: int | None = Field(
        default=None,
        description=(
            "observedGeneration represents the .metadata.generation that the condition was set based upon. "
            "For instance, if .metadata.generation is currently 12, but the .status.conditions[x]."
            "observedGeneration is 9, the condition is out of date with respect to the current state "
            "of the instance."
        ),
    )
    last_transition_time: str | None = Field(
        default=None,
        description=(
            "lastTransitionTime is the last time the condition transitioned from one status to another. "
            "This should be when the underlying condition changed.  If that is not known, then using "
            "the time when the API field changed is acceptable."
        ),
        json_schema_extra=x_kubernetes(required=True, format="date-time"),
    )
    reason: str = Field(
        default="",
        description=(
            "reason contains a programmatic identifier indicating the reason for the condition's last "
            "transition. The value should be a CamelCase string. This field may not be empty."
        ),
        json_schema_extra=x_kubernetes(required=True),
    )
    message: str = Field(
        default="",
        description=(
            "message is a human readable message indicating details about the transition. "
            "This may be an empty string."
        ),
        json_schema_extra=x_kubernetes(required=True),
    )


# --- Status ---------------------------------------------------------------------------------------------


class StatusCause(K8sModel):
    reason: str | None = None
    message: str | None = None
    field: str | None = None


class StatusDetails(K8sModel):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retry_after_seconds: int | None = None


class Status(K8sModel):
    """metav1.Status, the body of every error response (and of some successful deletes)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Status"] = "Status"
    metadata: ListMeta = Field(default_factory=ListMeta)
    status: str | None = None
    message: str | None = None
    reason: str | None = None
    details: StatusDetails | None = None
    code: int | None = None


# --- Table ----------------------------------------------------------------------------------------------


class TableColumnDefinition(K8sModel):
    name: str
    type: str
    format: str = ""
    description: str = ""
    priority: int = 0


class TableRow(K8sModel):
    cells: list[RawJSON] = Field(default_factory=list)
    conditions: list[RawJSON] | None = None
    object: RawJSON = None


class Table(K8sModel):
    api_version: Literal["meta.k8s.io/v1", "meta.k8s.io/v1beta1"] = "meta.k8s.io/v1"
    kind: Literal["Table"] = "Table"
    metadata: ListMeta = Field(default_factory=ListMeta)
    column_definitions: list[TableColumnDefinition] | None = None
    rows: list[TableRow] = Field(default_factory=list)


# --- PartialObjectMetadata, WatchEvent, DeleteOptions ---------------------------------------------------


class PartialObjectMetadata(K8sModel):
    api_version: Literal["meta.k8s.io/v1", "meta.k8s.io/v1beta1"] = "meta.k8s.io/v1"
    kind: Literal["PartialObjectMetadata"] = "PartialObjectMetadata"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class PartialObjectMetadataList(K8sModel):
    api_version: Literal["meta.k8s.io/v1", "meta.k8s.io/v1beta1"] = "meta.k8s.io/v1"
    kind: Literal["PartialObjectMetadataList"] = "PartialObjectMetadataList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[PartialObjectMetadata] = Field(default_factory=list)


WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


class WatchEvent(K8sModel):
    """One line of a watch stream; `object` is the full wire form of the object (or a Status on ERROR)."""

    type: WatchEventType
    object: RawJSON = None


class Preconditions(K8sModel):
    uid: str | None = None
    resource_version: str | None = None


class DeleteOptions(K8sModel):
    """metav1.DeleteOptions; clients send `apiVersion` `v1` or `meta.k8s.io/v1`, or none at all."""

    api_version: str | None = None
    kind: Literal["DeleteOptions"] | None = None
    grace_period_seconds: int | None = None
    preconditions: Preconditions | None = None
    orphan_dependents: bool | None = None
    propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None
    dry_run: list[str] | None = None
    ignore_store_read_error_with_cluster_breaking_potential: bool | None = None
