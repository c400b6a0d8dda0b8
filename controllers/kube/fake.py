"""`FakeKubeClient`: an in-memory KubeClient for unit tests and benchmarks.

It keeps the semantics reconcilers depend on: a global resourceVersion counter, `generation` bumped when
`spec` changes, the status subresource (writes to the object keep `status`, `/status` writes keep the
rest), optimistic concurrency on PUT (`ConflictError` on a stale resourceVersion), `AlreadyExistsError`,
`NotFoundError`, finalizers (DELETE sets `deletionTimestamp`; the object goes when the last finalizer is
removed), merge and JSON patches, and watches that replay the changes after the given resourceVersion.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jsonpatch

from api.mergepatch import merge_patch
from api.meta import Status
from api.resources import format_rfc3339
from controllers.kube.client import JSON, PatchType
from controllers.kube.errors import AlreadyExistsError, ConflictError, NotFoundError
from controllers.kube.resources import Resource

__all__ = ["FakeKubeClient"]

_STATUS_KINDS = {"Order", "ArtifactWorkflow", "Endpoint"}


def _status(code: int, reason: str, message: str) -> Status:
    return Status(status="Failure", code=code, reason=reason, message=message)


class FakeKubeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[Resource, str, str], JSON] = {}
        self._rv = 0
        self._watchers: dict[Resource, list[asyncio.Queue[JSON]]] = {}
        self._history: list[tuple[int, Resource, JSON]] = []
        self.pod_logs: dict[tuple[str, str, str], str] = {}
        """Container logs served by `logs`, by (namespace, pod, container)."""
        self.calls: list[tuple[str, str, str, str]] = []
        """(verb, resource plural, namespace, name) of every call, for assertions."""

    def _key(self, resource: Resource, namespace: str | None, name: str) -> tuple[Resource, str, str]:
        return (resource, namespace or "" if resource.namespaced else "", name)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _notify(self, resource: Resource, kind: str, obj: JSON) -> None:
        event = {"type": kind, "object": copy.deepcopy(obj)}
        self._history.append((self._rv, resource, event))
        for q in self._watchers.get(resource, ()):
            q.put_nowait(copy.deepcopy(event))

    def _not_found(self, resource: Resource, name: str) -> NotFoundError:
        return NotFoundError(_status(404, "NotFound", f'{resource} "{name}" not found'))

    def _existing(
        self, verb: str, resource: Resource, namespace: str | None, name: str, subresource: str | None = None
    ) -> tuple[tuple[Resource, str, str], JSON]:
        """Record the call, then find the object it names (its key and stored form) or raise NotFound."""
        self.calls.append(
            (verb if subresource is None else f"{verb}/{subresource}", resource.plural, namespace or "", name)
        )
        key = self._key(resource, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise self._not_found(resource, name)
        return key, obj

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        _, obj = self._existing("get", resource, namespace, name)
        return copy.deepcopy(obj)

    async def logs(
        self, namespace: str, pod: str, *, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        """From `pod_logs[(namespace, pod, container)]`, as the API cuts it (last lines, then bytes)."""
        self.calls.append(("get/log", "pods", namespace, pod))
        text = self.pod_logs.get((namespace, pod, container))
        if text is None:
            raise self._not_found(Resource("", "v1", "pods", "Pod", True), pod)
        lines = text.splitlines(keepends=True)[-tail_lines:] if tail_lines else []
        return "".join(lines).encode()[:limit_bytes].decode("utf-8", "replace")

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> JSON:
        self.calls.append(("list", resource.plural, namespace or "", ""))
        items = [
            copy.deepcopy(o)
            for (r, ns, _), o in sorted(self.objects.items(), key=lambda kv: kv[0][1:])
            if r == resource and (namespace is None or ns == namespace)
        ]
        return {"items": items, "metadata": {"resourceVersion": str(self._rv)}}

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JSON]:
        q: asyncio.Queue[JSON] = asyncio.Queue()
        since = int(resource_version or 0)
        for rv, res, event in self._history:
            if res == resource and rv > since:
                q.put_nowait(copy.deepcopy(event))
        self._watchers.setdefault(resource, []).append(q)
        try:
            while True:
                event = await q.get()
                meta = event["object"].get("metadata") or {}
                if namespace is None or meta.get("namespace") == namespace:
                    yield event
        finally:
            self._watchers[resource].remove(q)

    async def create(self, resource: Resource, namespace: str | None, body: JSON) -> JSON:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or ""
        self.calls.append(("create", resource.plural, namespace or "", name))
        key = self._key(resource, namespace, name)
        if key in self.objects:
            raise AlreadyExistsError(_status(409, "AlreadyExists", f'{resource} "{name}" already exists'))
        if resource.namespaced:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_rfc3339()
        meta["resourceVersion"] = self._next_rv()
        if resource.group:
            meta["generation"] = 1
        if resource.kind in _STATUS_KINDS:
            obj.pop("status", None)
        self.objects[key] = obj
        self._notify(resource, "ADDED", obj)
        return copy.deepcopy(obj)

    def _write(self, resource: Resource, key: tuple[Resource, str, str], new: JSON, *, status: bool) -> JSON:
        old = self.objects[key]
        if resource.kind in _STATUS_KINDS:
            if status:
                merged = copy.deepcopy(old)
                if "status" in new:
                    merged["status"] = new["status"]
                else:
                    merged.pop("status", None)
                new = merged
            elif "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        meta["generation"] = old["metadata"].get("generation")
        if meta["generation"] is None:
            meta.pop("generation")
        elif new.get("spec") != old.get("spec"):
            meta["generation"] += 1
        if new == old:
            return copy.deepcopy(old)
        meta["resourceVersion"] = self._next_rv()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[key]
            self._notify(resource, "DELETED", new)
            return copy.deepcopy(new)
        self.objects[key] = new
        self._notify(resource, "MODIFIED", new)
        return copy.deepcopy(new)

    async def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JSON,
        *,
        subresource: str | None = None,
    ) -> JSON:
        key, old = self._existing("update", resource, namespace, name, subresource)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ConflictError(
                _status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            )
        return self._write(resource, key, copy.deepcopy(body), status=subresource == "status")

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JSON:
        key, old = self._existing("patch", resource, namespace, name, subresource)
        if patch_type == "json":
            try:
                new = jsonpatch.apply_patch(copy.deepcopy(old), patch)
            except jsonpatch.JsonPatchException as exc:
                raise ConflictError(_status(422, "Invalid", str(exc))) from exc
        else:
            new = merge_patch(old, patch)
        rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ConflictError(_status(409, "Conflict", "the object has been modified"))
        return self._write(resource, key, new, status=subresource == "status")

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> None:
        key, old = self._existing("delete", resource, namespace, name)
        if uid and old["metadata"].get("uid") != uid:
            raise ConflictError(_status(409, "Conflict", "Precondition failed: UID in precondition"))
        if old["metadata"].get("finalizers"):
            if not old["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = format_rfc3339()
                new["metadata"]["resourceVersion"] = self._next_rv()
                self.objects[key] = new
                self._notify(resource, "MODIFIED", new)
            return
        del self.objects[key]
        old = copy.deepcopy(old)
        old["metadata"]["resourceVersion"] = self._next_rv()
        self._notify(resource, "DELETED", old)

    async def close(self) -> None:
        return None
