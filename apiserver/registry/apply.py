"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) of one object, as kube-apiserver's
``applyPatcher`` does it.

The configuration is checked (its kind, no managedFields), merged into the stored object by the field
manager (``apiserver.registry.managedfields``: conflicts, ownership, removals) and the result goes through
the Store's usual update path (strategy, validation, resourceVersion precondition, dryRun) with the
managedFields the apply computed. An apply to an object that does not exist creates it (not through
``/status``, which answers 404 as in kube). An apply that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from apiserver import errors
from apiserver.registry import typed
from apiserver.registry.fieldpath import path_to_string
from apiserver.registry.managedfields import ConflictsError
from apiserver.registry.store import RequestScope, Store, name_mismatch, now_rfc3339

OnCreate = Callable[[Mapping[str, Any]], Awaitable[None]]
_ATTEMPTS = 3


def check_config(store: Store, config: Any, name: str) -> dict[str, Any]:
    """``versionCheckManager`` and the structured merge manager's checks of the applied configuration."""
    if not isinstance(config, dict):
        raise errors.bad_request("error decoding YAML: the apply configuration must be an object")
    info = store.info
    api_version = str(config.get("apiVersion") or "")
    kind = str(config.get("kind") or "")
    if api_version != info.api_version or kind != info.kind:
        group, _, version = api_version.rpartition("/")
        raise errors.bad_request(f"invalid object type: {group}/{version}, Kind={kind}")
    meta = config.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if isinstance(meta, dict):
        if meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        if meta.get("name") and meta["name"] != name:
            raise name_mismatch(str(meta["name"]), name)
    return config


def _conflict_error(exc: ConflictsError) -> errors.StatusError:
    causes = [(path_to_string(c.path), f"conflict with {c.manager.describe()}") for c in exc.conflicts]
    return errors.apply_conflict(causes, str(exc))


def _typed_error(store: Store, where: str, exc: typed.TypedError) -> errors.StatusError:
    """kube answers these with a reasonless 500 (``objectGVKNN`` of the configuration as sent, in the
    message); bad input is never a 5xx in ARC: the same words as a 400."""
    gvk = f"{store.info.group}/{store.info.version}, Kind={store.info.kind}"
    return errors.bad_request(f"failed to create typed patch object ({where}; {gvk}): {exc}")


async def apply(
    store: Store,
    scope: RequestScope,
    name: str,
    config: Any,
    *,
    subresource: str | None,
    force: bool,
    on_create: OnCreate | None = None,
) -> tuple[dict[str, Any], bool]:
    """Apply ``config`` as ``scope.field_manager``; returns (the object, whether it was created)."""
    config = check_config(store, config, name)
    manager = scope.field_manager or ""
    fm = store.field_manager
    meta = config.get("metadata") or {}
    precondition = store._revision(meta.get("resourceVersion"))
    sent_as = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"  # before the merge fills them in

    def merged(live: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        try:
            return fm.apply(
                live, config, manager=manager, subresource=subresource, force=force, now=now_rfc3339()
            )
        except ConflictsError as exc:
            raise _conflict_error(exc) from None
        except typed.TypedError as exc:
            raise _typed_error(store, sent_as, exc) from None

    def compute(old_wire: dict[str, Any]) -> dict[str, Any]:
        new, changed = merged(old_wire)
        entries = (new.get("metadata") or {}).get("managedFields")
        if not changed and entries == (old_wire.get("metadata") or {}).get("managedFields"):
            return old_wire
        scope.applied_managed_fields = entries or []
        new["metadata"].pop("managedFields", None)
        # The merged object was typed against the schema already: no unknown fields to look for.
        model = store.parse(new, replace(scope, field_validation="Ignore", warnings=[]), name=name)
        return store._prepare_update(scope, model, old_wire, subresource=subresource)

    for _ in range(_ATTEMPTS):
        try:
            return (
                await store._guaranteed_update(
                    scope, scope.namespace, name, compute, precondition=precondition
                ),
                False,
            )
        except errors.StatusError as err:
            if err.code != 404 or err.reason != "NotFound" or subresource:
                raise
        if precondition is not None:
            raise errors.conflict(store.info.group_resource, name)
        new, _changed = merged(None)
        new.setdefault("metadata", {}).setdefault("name", name)
        scope.applied_managed_fields = new["metadata"].pop("managedFields", None) or []
        if on_create is not None:
            await on_create(new)
        try:
            return await store.create(scope, new), True
        except errors.StatusError as err:
            if err.code != 409 or err.reason != "AlreadyExists":
                raise
    raise errors.conflict(store.info.group_resource, name)
