"""Event handlers, as controller-runtime's `handler` package: which Requests an informer event enqueues.

- `enqueue_request_for_object`: the object's own key (`handler.EnqueueRequestForObject`);
- `enqueue_request_for_owner(kind)`: the key of the object's controller of that kind in its namespace
  (`handler.EnqueueRequestForOwner` with `OnlyControllerOwner`).

Both read `metadata` of the API's typed objects; raw objects (e.g. Argo Workflows) map themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from api.meta import ObjectMeta
from controllers.runtime.reconcile import Request

__all__ = ["enqueue_request_for_object", "enqueue_request_for_owner"]


class _Object(Protocol):
    @property
    def metadata(self) -> ObjectMeta: ...


def enqueue_request_for_object(obj: _Object) -> Iterable[Request]:
    return [Request(obj.metadata.namespace or "", obj.metadata.name or "")]


def enqueue_request_for_owner(kind: str) -> Callable[[_Object], Iterable[Request]]:
    def owners(obj: _Object) -> Iterable[Request]:
        return [
            Request(obj.metadata.namespace or "", ref.name)
            for ref in obj.metadata.owner_references or []
            if ref.controller and ref.kind == kind
        ]

    return owners
