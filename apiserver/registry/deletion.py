"""Deleting objects, as kube's generic registry does (``registry/generic/registry/store.go`` ``Delete`` and
``DeleteCollection``): preconditions, the garbage collector's finalizers from the propagation policy, a
graceful delete that only marks an object with finalizers, dry run, and the Status a delete answers.

Functions over a :class:`Store`, beside it, as apply (``registry/apply.py``) and patch application
(``registry/patch.py``) are: the Store keeps reads, creates and updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from api.resources import ResourceInfo
from apiserver import errors
from apiserver.registry.store import (
    FINALIZER_FOREGROUND,
    FINALIZER_ORPHAN,
    ListOptions,
    RequestScope,
    Store,
    decode_stored,
    now_rfc3339,
)
from apiserver.storage.interface import Revision, StorageError

__all__ = ["delete", "delete_collection", "deleted_status"]


async def delete(
    store: Store, scope: RequestScope, name: str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Delete one object; returns (a Status or the object now terminating, whether it is gone).

    Finalizers (and ``propagationPolicy`` Orphan/Foreground, which add the ``orphan`` or
    ``foregroundDeletion`` finalizer) turn the delete into an update setting ``deletionTimestamp``.
    """
    key = store.key(scope.namespace, name)
    preconditions = options.get("preconditions") or {}
    uid_pre = preconditions.get("uid")
    rv_pre = store._revision(preconditions.get("resourceVersion"))
    policy = options.get("propagationPolicy")
    orphan_dependents = options.get("orphanDependents")

    def check_preconditions(obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if uid_pre and uid_pre != meta.get("uid"):
            raise errors.conflict(
                store.info.group_resource,
                name,
                f"Precondition failed: UID in precondition: {uid_pre}, "
                f"UID in object meta: {meta.get('uid', '')}",
            )
        if rv_pre is not None and str(rv_pre) != meta.get("resourceVersion"):
            raise errors.conflict(
                store.info.group_resource,
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv_pre}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion', '')}",
            )

    def gc_finalizers(finalizers: list[str]) -> list[str]:
        """``deletionFinalizersForGarbageCollection``."""
        orphan = FINALIZER_ORPHAN in finalizers
        foreground = FINALIZER_FOREGROUND in finalizers
        if orphan_dependents is not None:
            orphan, foreground = bool(orphan_dependents), False
        elif policy == "Orphan":
            orphan, foreground = True, False
        elif policy == "Foreground":
            orphan, foreground = False, True
        elif policy == "Background":
            orphan, foreground = False, False
        out = [x for x in finalizers if x not in (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)]
        if orphan:
            out.append(FINALIZER_ORPHAN)
        if foreground:
            out.append(FINALIZER_FOREGROUND)
        return out

    try:
        current = decode_stored(await store.storage.get(key))
    except StorageError as err:
        raise store._error(err, name, "delete") from None
    check_preconditions(current)
    meta = current["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if meta.get("deletionTimestamp") and finalizers:
        # Already terminating: finalizers cannot be changed through DeleteOptions any more.
        return current, False
    new_finalizers = gc_finalizers(finalizers)
    if new_finalizers:

        def mark_deleting(old_wire: dict[str, Any]) -> dict[str, Any]:
            check_preconditions(old_wire)
            out = dict(old_wire)
            out_meta = dict(out["metadata"])
            out_meta["finalizers"] = gc_finalizers(list(out_meta.get("finalizers") or []))
            if not out_meta.get("deletionTimestamp"):
                out_meta["deletionTimestamp"] = now_rfc3339()
                out_meta["deletionGracePeriodSeconds"] = 0
            out["metadata"] = out_meta
            return out

        updated = await store._guaranteed_update(
            scope, scope.namespace, name, mark_deleting, precondition=None
        )
        return updated, False

    if scope.dry_run:
        return deleted_status(store.info, current), True
    try:
        deleted = await store.storage.delete(
            key,
            precondition=Revision(int(meta["resourceVersion"])) if rv_pre is not None else None,
            validate=lambda value: check_preconditions(decode_stored(value)),
        )
    except StorageError as err:
        raise store._error(err, name, "delete") from None
    return deleted_status(store.info, decode_stored(deleted)), True


def deleted_status(info: ResourceInfo, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The Status a delete answers when the object is gone (``details`` name it)."""
    meta = obj.get("metadata") or {}
    details = {"name": meta.get("name", ""), "group": info.group, "kind": info.plural}
    if meta.get("uid"):
        details["uid"] = meta["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


async def delete_collection(
    store: Store, scope: RequestScope, list_options: ListOptions, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Delete every object the list selects (a few at a time, like kube's workers); returns them."""
    page = await store.list(scope.namespace, list_options)
    semaphore = asyncio.Semaphore(16)

    async def delete_one(obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        item_scope = RequestScope(
            namespace=meta.get("namespace"),
            dry_run=scope.dry_run,
            field_manager=scope.field_manager,
            user_agent=scope.user_agent,
        )
        async with semaphore:
            try:
                await delete(store, item_scope, meta["name"], options)
            except errors.StatusError as err:
                if err.code == 404:
                    return None
                raise
        return obj

    results = await asyncio.gather(*(delete_one(obj) for obj in page.items))
    return [obj for obj in results if obj is not None]
