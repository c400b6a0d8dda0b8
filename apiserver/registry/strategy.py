"""What happens to an object on create, update and status update — sample-apiserver's strategy.go.

A strategy works on typed models (parsed once at the boundary). The generic :class:`ResourceStrategy`
covers every ARC kind because the rules are the same as kube-apiserver's for a custom resource with a
status subresource (``apiextensions-apiserver/pkg/registry/customresource/strategy.go``):

- create: ``status`` is cleared (when the kind has a status subresource) and ``generation`` is 1;
- update of the main resource: the stored ``status`` is kept and ``generation`` goes up by one only when
  something other than ``metadata`` and ``status`` changed;
- update of ``/status``: everything but ``status`` (and ``managedFields``) is taken from the stored object.

Validation comes from ``api.arc.v1alpha1.validation``; defaulting from ``api.arc.v1alpha1.defaults``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from api.arc.v1alpha1 import defaults, validation
from api.fields import FieldError
from api.meta import ObjectMeta
from api.resources import ResourceInfo


def metadata_of(obj: BaseModel) -> ObjectMeta:
    meta = getattr(obj, "metadata", None)
    if not isinstance(meta, ObjectMeta):
        raise TypeError(f"{type(obj).__name__} has no ObjectMeta")
    return meta


class Strategy(Protocol):
    """The per-resource hooks the generic store calls (``rest.RESTCreateStrategy`` and friends)."""

    info: ResourceInfo

    def set_defaults(self, obj: BaseModel) -> None: ...

    def prepare_for_create(self, obj: BaseModel) -> None: ...

    def prepare_for_update(self, obj: BaseModel, old: BaseModel) -> None: ...

    def validate(self, obj: BaseModel) -> list[FieldError]: ...

    def validate_update(self, obj: BaseModel, old: BaseModel) -> list[FieldError]: ...


class ResourceStrategy:
    """The main resource's strategy for any ARC kind."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info

    def set_defaults(self, obj: BaseModel) -> None:
        defaults.set_defaults(obj)

    def prepare_for_create(self, obj: BaseModel) -> None:
        if self.info.has_status:
            obj.status = None  # type: ignore[attr-defined]
        metadata_of(obj).generation = 1

    def prepare_for_update(self, obj: BaseModel, old: BaseModel) -> None:
        if self.info.has_status:
            obj.status = old.status  # type: ignore[attr-defined]
        meta, old_meta = metadata_of(obj), metadata_of(old)
        meta.generation = old_meta.generation
        if spec_changed(obj, old):
            meta.generation = (old_meta.generation or 0) + 1

    def validate(self, obj: BaseModel) -> list[FieldError]:
        return validation.validate(obj)

    def validate_update(self, obj: BaseModel, old: BaseModel) -> list[FieldError]:
        return validation.validate_update(obj, old)


class StatusStrategy(ResourceStrategy):
    """The ``/status`` subresource: only ``status`` (and ``managedFields``) may change."""

    def prepare_for_update(self, obj: BaseModel, old: BaseModel) -> None:
        status = obj.status  # type: ignore[attr-defined]
        managed_fields = metadata_of(obj).managed_fields
        for name in type(obj).model_fields:
            if name != "status":
                setattr(
                    obj,
                    name,
                    getattr(old, name).model_copy(deep=True) if name == "metadata" else getattr(old, name),
                )
        metadata_of(obj).managed_fields = managed_fields
        obj.status = status  # type: ignore[attr-defined]

    def validate_update(self, obj: BaseModel, old: BaseModel) -> list[FieldError]:
        return validation.validate_status_update(obj, old)


def spec_changed(obj: BaseModel, old: BaseModel) -> bool:
    """Whether anything but ``metadata`` and ``status`` differs (what bumps ``generation``)."""
    return any(
        getattr(obj, name) != getattr(old, name)
        for name in type(obj).model_fields
        if name not in ("metadata", "status", "api_version", "kind")
    )
