"""Generic REST handlers: every verb of every ARC resource, bound to its Store.

Routes are explicit per resource (``server.py`` builds them from the resource table). Each handler parses
the request once (path, query, body), delegates to the Store and encodes the result through content
negotiation. Errors are raised as ``StatusError`` and written by the middleware.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, cast

import orjson
from aiohttp import web

from apiserver import errors
from apiserver.admission.attributes import AdmissionAttributes, AdmissionPlugin
from apiserver.admission.resource_quota import ResourceQuotaGate
from apiserver.auth import USER, UserInfo
from apiserver.limits import MAX_REQUEST_BODY_BYTES
from apiserver.listing import ListGate, write_body
from apiserver.negotiation import (
    IncludeObject,
    MediaType,
    decode_body_async,
    decode_patch_async,
    encode,
    negotiate,
    transform_list,
    transform_object,
)
from apiserver.observability import ADMISSION_DURATION
from apiserver.query import delete_options, list_options, patch_options, write_options
from apiserver.registry import deletion
from apiserver.registry.apply import apply
from apiserver.registry.patch import APPLY_PATCH
from apiserver.registry.store import RequestScope, Store, stored_json
from apiserver.strictjson import duplicate_fields
from apiserver.watch import serve_watch

MAX_BODY_BYTES = MAX_REQUEST_BODY_BYTES


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """``Warning: 299 - "<text>"`` headers (RFC 7234), deduplicated in order. A text with a control
    character is dropped, as kube's ``NewWarningHeader`` refuses it (a header cannot carry it)."""
    seen: list[str] = []
    for warning in warnings:
        if warning not in seen and not any(unicodedata.category(ch) == "Cc" for ch in warning):
            seen.append(warning)
    return [("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"') for w in seen]


def respond(
    body: Any, media: MediaType, *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(body=encode(media, body), status=status, content_type=None)
    response.headers["Content-Type"] = media.content_type
    for name, value in warning_headers(warnings or []):
        response.headers.add(name, value)
    return response


def include_object_of(request: web.Request) -> IncludeObject:
    value = request.query.get("includeObject") or "Metadata"
    if value not in ("None", "Metadata", "Object"):
        raise errors.bad_request(
            f'includeObject: Unsupported value: "{value}": supported values: "None", "Metadata", "Object"'
        )
    return cast(IncludeObject, value)


class ResourceHandlers:
    """The handlers of one resource (and its ``/status`` subresource)."""

    def __init__(
        self,
        store: Store,
        *,
        admission: list[AdmissionPlugin],
        bookmark_interval: float,
        quota: ResourceQuotaGate | None = None,
        lists: ListGate | None = None,
    ) -> None:
        self.store = store
        self.info = store.info
        self.admission = admission
        self.bookmark_interval = bookmark_interval
        self.quota = quota
        self.lists = lists or ListGate()

    # ---- helpers ----------------------------------------------------------------------------------
    def _namespace(self, request: web.Request) -> str | None:
        return request.match_info.get("namespace") if self.info.namespaced else None

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise errors.request_entity_too_large(f"limit is {MAX_BODY_BYTES}")
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            raise errors.request_entity_too_large(f"limit is {MAX_BODY_BYTES}")
        return raw

    def _scope(self, request: web.Request, operation: str) -> RequestScope:
        options = write_options(request.query, request.query.getall("dryRun", []), operation)  # type: ignore[arg-type]
        return RequestScope(
            namespace=self._namespace(request),
            dry_run=options.dry_run,
            field_manager=options.field_manager,
            field_validation=options.field_validation,
            user_agent=request.headers.get("User-Agent", ""),
        )

    def _respond_object(
        self,
        request: web.Request,
        media: MediaType,
        obj: Any,
        *,
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        """One object in the form the client negotiated: itself, a Table row or PartialObjectMetadata."""
        return respond(
            transform_object(self.info, media, obj, include_object_of(request)),
            media,
            status=status,
            warnings=warnings,
        )

    async def _admit(self, attributes: AdmissionAttributes) -> None:
        for plugin in self.admission:
            started, rejected = time.perf_counter(), "true"
            try:
                await plugin.admit(attributes)
                rejected = "false"
            finally:
                ADMISSION_DURATION.labels(
                    type(plugin).__name__, attributes.operation, rejected, "validate"
                ).observe(time.perf_counter() - started)

    # ---- reads ------------------------------------------------------------------------------------
    async def get(self, request: web.Request) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "object")
        obj = await self.store.get(self._namespace(request), request.match_info["name"])
        return self._respond_object(request, media, obj)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        """The legacy watch form ``…/watch/…``: a watch of the collection, narrowed to
        ``metadata.name=<name>`` when the path names an object (authorized as ``watch``: the path prefix
        sets the verb). ``GET …/<name>?watch=true`` is a plain get, as in kube-apiserver (its item route
        ignores ``watch``), so it is authorized as ``get`` and never streams."""
        query = dict(request.query)
        query["watch"] = "true"
        if "name" in request.match_info:
            selector = f"metadata.name={request.match_info['name']}"
            query["fieldSelector"] = (
                f"{query['fieldSelector']},{selector}" if query.get("fieldSelector") else selector
            )
        return await self._list_or_watch(request, query)

    async def list(self, request: web.Request) -> web.StreamResponse:
        return await self._list_or_watch(request, request.query)

    async def _list_or_watch(self, request: web.Request, query: Mapping[str, str]) -> web.StreamResponse:
        options, watch = list_options(self.info, query)
        namespace = self._namespace(request)
        include_object = include_object_of(request)
        if watch is not None:
            media = negotiate(request.headers.get("Accept"), "watch")
            return await serve_watch(
                request,
                self.store,
                namespace,
                options,
                resource_version=watch.resource_version,
                send_initial_events=watch.send_initial_events,
                allow_bookmarks=watch.allow_bookmarks,
                timeout_seconds=watch.timeout_seconds,
                media=media,
                include_object=include_object,
                bookmark_interval=self.bookmark_interval,
                lists=self.lists,
            )
        media = negotiate(request.headers.get("Accept"), "list")

        plain_json = media.subtype == "json" and media.transform is None

        async def read() -> bytes:
            page = await self.store.list(namespace, options, stored=plain_json)
            list_meta: dict[str, Any] = {"resourceVersion": page.resource_version}
            if page.continue_token:
                list_meta["continue"] = page.continue_token
            if page.remaining_item_count is not None:
                list_meta["remainingItemCount"] = page.remaining_item_count
            if page.stored is not None:
                # The stored objects as they are: no decoding of thousands of large objects.
                return b"".join(
                    (
                        b'{"apiVersion":"',
                        self.info.api_version.encode(),
                        b'","kind":"',
                        self.info.list_kind.encode(),
                        b'","metadata":',
                        orjson.dumps(list_meta),
                        b',"items":[',
                        b",".join([stored_json(value) for value in page.stored]),
                        b"]}",
                    )
                )
            return encode(media, transform_list(self.info, media, page.items, list_meta, include_object))

        key = ("list", self.info.plural, namespace, tuple(sorted(query.items())), media, include_object)
        lease = await self.lists.acquire(key, read)
        try:
            return await write_body(request, lease.value, media.content_type)
        finally:
            lease.release()

    # ---- writes -----------------------------------------------------------------------------------
    async def _object_body(self, request: web.Request, scope: RequestScope) -> dict[str, Any]:
        """The object of a create or update (JSON or YAML, decoded off the loop); its duplicate keys go
        into ``scope`` for fieldValidation."""
        raw = await self._body(request)
        body = await decode_body_async(raw, request.headers.get("Content-Type"))
        if scope.field_validation != "Ignore":
            scope.duplicate_fields = duplicate_fields(raw, request.headers.get("Content-Type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        return body

    async def create(self, request: web.Request) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "object")
        scope = self._scope(request, "CreateOptions")
        body = await self._object_body(request, scope)
        raw_meta = body.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        name = str(meta.get("name") or "")
        quota = self.quota.create(self.info, scope.namespace, name) if self.quota else nullcontext()
        async with quota:
            await self._admit(self._attributes("CREATE", scope, name, obj=body, user=request.get(USER)))
            obj = await self.store.create(scope, body)
        return self._respond_object(request, media, obj, status=201, warnings=scope.warnings)

    async def update(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, None)

    async def update_status(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, "status")

    async def _update(self, request: web.Request, subresource: str | None) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "object")
        scope = self._scope(request, "UpdateOptions")
        name = request.match_info["name"]
        body = await self._object_body(request, scope)
        await self._admit(
            self._attributes("UPDATE", scope, name, subresource=subresource, obj=body, user=request.get(USER))
        )
        obj = await self.store.update(scope, name, body, subresource=subresource)
        return self._respond_object(request, media, obj, warnings=scope.warnings)

    async def patch(self, request: web.Request) -> web.StreamResponse:
        return await self._patch(request, None)

    async def patch_status(self, request: web.Request) -> web.StreamResponse:
        return await self._patch(request, "status")

    async def _patch(self, request: web.Request, subresource: str | None) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "object")
        scope = self._scope(request, "PatchOptions")
        name = request.match_info["name"]
        patch_type, patch = await decode_patch_async(
            await self._body(request), request.headers.get("Content-Type")
        )
        force = patch_options(request.query, patch_type, scope.field_manager)
        if patch_type == APPLY_PATCH:
            return await self._apply(request, media, scope, name, patch, subresource=subresource, force=force)
        await self._admit(
            self._attributes(
                "UPDATE",
                scope,
                name,
                subresource=subresource,
                user=request.get(USER),
                patch=(patch_type, patch),
            )
        )
        obj = await self.store.patch(scope, name, patch_type, patch, subresource=subresource)
        return self._respond_object(request, media, obj, warnings=scope.warnings)

    async def _apply(
        self,
        request: web.Request,
        media: MediaType,
        scope: RequestScope,
        name: str,
        config: Any,
        *,
        subresource: str | None,
        force: bool,
    ) -> web.StreamResponse:
        """Server-side apply; an apply that creates the object is admitted as a CREATE (and counted against
        ResourceQuota) and answers 201."""
        user = request.get(USER)

        async def admit_create(obj: Mapping[str, Any]) -> None:
            await self._admit(self._attributes("CREATE", scope, name, obj=obj, user=user))

        await self._admit(
            self._attributes(
                "UPDATE", scope, name, subresource=subresource, user=user, patch=(APPLY_PATCH, config)
            )
        )
        quota: AbstractAsyncContextManager[None] = nullcontext()
        if self.quota is not None and subresource is None and not await self._exists(scope.namespace, name):
            # An apply that creates takes a quota slot; one that updates does not. (Created by someone else
            # in between, it updates under the check; deleted in between, it creates unchecked: as rare as
            # kube's own quota-versus-create races.)
            quota = self.quota.create(self.info, scope.namespace, name)
        async with quota:
            obj, created = await apply(
                self.store, scope, name, config, subresource=subresource, force=force, on_create=admit_create
            )
        return self._respond_object(
            request, media, obj, status=201 if created else 200, warnings=scope.warnings
        )

    def _attributes(
        self,
        operation: str,
        scope: RequestScope,
        name: str,
        *,
        subresource: str | None = None,
        obj: Mapping[str, Any] | None = None,
        user: UserInfo | None = None,
        patch: tuple[str, Any] | None = None,
    ) -> AdmissionAttributes:
        """What admission sees of this request (``admission.NewAttributesRecord``)."""
        return AdmissionAttributes(
            operation,
            self.info,
            scope.namespace,
            name,
            subresource,
            obj,
            scope.dry_run,
            user=user,
            scope=scope,
            patch=patch,
        )

    async def _exists(self, namespace: str | None, name: str) -> bool:
        try:
            await self.store.get(namespace, name)
        except errors.StatusError as err:
            if err.code == 404:
                return False
            raise
        return True

    async def _delete_request(self, request: web.Request) -> tuple[dict[str, Any], RequestScope]:
        """DeleteOptions from the optional body and the query, and the request's scope."""
        raw = await self._body(request)
        body = await decode_body_async(raw, request.headers.get("Content-Type")) if raw.strip() else None
        options = delete_options(request.query, body, request.query.getall("dryRun", []))
        scope = RequestScope(
            namespace=self._namespace(request),
            dry_run=bool(options.get("dryRun")),
            user_agent=request.headers.get("User-Agent", ""),
        )
        return options, scope

    async def delete(self, request: web.Request) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "object")
        name = request.match_info["name"]
        options, scope = await self._delete_request(request)
        await self._admit(self._attributes("DELETE", scope, name))
        result, _deleted = await deletion.delete(self.store, scope, name, options)
        if result.get("kind") == "Status":
            return respond(result, MediaType(media.subtype))
        return self._respond_object(request, media, result)

    async def delete_collection(self, request: web.Request) -> web.StreamResponse:
        media = negotiate(request.headers.get("Accept"), "list")
        options, _ = list_options(self.info, {k: v for k, v in request.query.items() if k != "watch"})
        delete, scope = await self._delete_request(request)
        await self._admit(self._attributes("DELETE", scope, ""))
        items = await deletion.delete_collection(self.store, scope, options, delete)
        return respond(transform_list(self.info, media, items, {}, include_object_of(request)), media)


def resource_routes(handlers: ResourceHandlers, group_version_path: str) -> list[web.RouteDef]:
    """The routes of one resource, as kube-apiserver's installer lays them out."""
    info = handlers.info
    plural = info.plural
    if info.namespaced:
        collection = f"{group_version_path}/namespaces/{{namespace}}/{plural}"
        everywhere = f"{group_version_path}/{plural}"
        watch_prefix = f"{group_version_path}/watch/namespaces/{{namespace}}/{plural}"
    else:
        collection = everywhere = f"{group_version_path}/{plural}"
        watch_prefix = f"{group_version_path}/watch/{plural}"
    item = f"{collection}/{{name}}"

    routes = [
        web.get(collection, handlers.list, allow_head=False),
        web.post(collection, handlers.create),
        web.delete(collection, handlers.delete_collection),
        web.get(item, handlers.get, allow_head=False),
        web.put(item, handlers.update),
        web.patch(item, handlers.patch),
        web.delete(item, handlers.delete),
        web.get(watch_prefix, handlers.watch, allow_head=False),
        web.get(f"{watch_prefix}/{{name}}", handlers.watch, allow_head=False),
    ]
    if info.namespaced:
        routes.append(web.get(everywhere, handlers.list, allow_head=False))
        routes.append(web.get(f"{group_version_path}/watch/{plural}", handlers.watch, allow_head=False))
    if info.has_status:
        routes += [
            web.get(f"{item}/status", handlers.get, allow_head=False),
            web.put(f"{item}/status", handlers.update_status),
            web.patch(f"{item}/status", handlers.patch_status),
        ]
    return routes
