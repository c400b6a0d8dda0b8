"""Watch: a chunked stream of WatchEvents, one JSON object per line (``k8s.io/apiserver`` ``watch.go``).

Semantics, as kube-apiserver's watch cache gives them:

- ``sendInitialEvents=true`` (also the default for ``resourceVersion`` unset or ``"0"``, WatchList being on):
  synthetic ADDED events for the current state, then — with ``allowWatchBookmarks`` — a BOOKMARK whose
  object carries the annotation ``k8s.io/initial-events-end: "true"``, then the changes;
- ``resourceVersion=N``: every change after N;
- selectors are applied to both the old and the new object, so an object that starts matching arrives as
  ADDED and one that stops matching leaves as DELETED;
- periodic BOOKMARKs (``allowWatchBookmarks``) carry the latest revision known complete;
- history compacted under the watch: an ERROR event with a 410 Expired Status, then the stream ends;
- ``timeoutSeconds`` ends the stream (default: between 30 and 60 minutes, like ``--min-request-timeout``).

The storage shares one etcd watch per resource among all watchers; a client that leaves cancels its
handler and the ``finally`` closes its subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from api.resources import ResourceInfo
from apiserver import errors
from apiserver.encoding import encode_json
from apiserver.listing import Lease, ListGate, write_slices
from apiserver.negotiation import IncludeObject, MediaType, partial_object_metadata, table
from apiserver.registry.store import ListOptions, Store, stored_json
from apiserver.registry.watching import EventType, ObjectEvent, Revision

logger = logging.getLogger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
MIN_REQUEST_TIMEOUT = 1800.0


class WatchEncoder:
    """Turns objects into the wire events of one watch (JSON, Table or PartialObjectMetadata)."""

    def __init__(self, info: ResourceInfo, media: MediaType, include_object: IncludeObject) -> None:
        self.info = info
        self.media = media
        self.include_object = include_object
        self.columns_sent = False

    def event(self, event_type: str, obj: dict[str, Any]) -> bytes:
        if event_type != "BOOKMARK":
            if self.media.transform == "Table":
                rv = (obj.get("metadata") or {}).get("resourceVersion", "")
                obj = table(
                    self.info,
                    [obj],
                    list_meta={"resourceVersion": rv},
                    include_object=self.include_object,
                    with_columns=not self.columns_sent,
                    version=self.media.version,
                )
                self.columns_sent = True
            elif self.media.transform == "PartialObjectMetadata":
                obj = partial_object_metadata(obj, self.media.version)
        return encode_json({"type": event_type, "object": obj}) + b"\n"

    def bookmark(self, revision: Revision | str, *, initial_events_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj: dict[str, Any]
        if self.media.transform == "PartialObjectMetadata":
            obj = {
                "kind": "PartialObjectMetadata",
                "apiVersion": f"meta.k8s.io/{self.media.version}",
                "metadata": meta,
            }
        elif self.media.transform == "Table":
            obj = {
                "kind": "Table",
                "apiVersion": f"meta.k8s.io/{self.media.version}",
                "metadata": meta,
                "columnDefinitions": None,
                "rows": None,
            }
        else:
            obj = {"kind": self.info.kind, "apiVersion": self.info.api_version, "metadata": meta}
        return self.event("BOOKMARK", obj)

    @staticmethod
    def error(err: errors.StatusError) -> bytes:
        status = err.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        return orjson.dumps({"type": "ERROR", "object": status}) + b"\n"


def translate(
    event: ObjectEvent, matches: Callable[[dict[str, Any]], bool] | None
) -> tuple[str, dict[str, Any]] | None:
    """A Store event as the (type, object) a selector-filtered watcher sees, or None to skip it."""
    rv = str(event.revision)
    if event.type == EventType.DELETED:
        old = event.prev_object
        if old is None:
            return None
        old["metadata"]["resourceVersion"] = rv
        return ("DELETED", old) if matches is None or matches(old) else None
    new = event.object
    assert new is not None
    if matches is None:
        return ("ADDED" if event.type == EventType.ADDED else "MODIFIED"), new
    new_matches = matches(new)
    old = None if event.type == EventType.ADDED else event.prev_object
    if old is None:
        return ("ADDED", new) if new_matches else None
    old_matches = matches(old)
    if new_matches and old_matches:
        return "MODIFIED", new
    if new_matches:
        return "ADDED", new
    if old_matches:
        old["metadata"]["resourceVersion"] = rv
        return "DELETED", old
    return None


async def serve_watch(
    request: web.Request,
    store: Store,
    namespace: str | None,
    options: ListOptions,
    *,
    resource_version: str | None,
    send_initial_events: bool,
    allow_bookmarks: bool,
    timeout_seconds: int | None,
    media: MediaType,
    include_object: IncludeObject,
    bookmark_interval: float,
    lists: ListGate,
) -> web.StreamResponse:
    query_key = tuple(sorted(request.query.items()))
    encoder = WatchEncoder(store.info, media, include_object)
    matches = store.matcher(options)
    initial = b""
    lease: Lease[tuple[Revision, bytes]] | None = None
    if send_initial_events:
        try:
            lease = await lists.acquire(
                ("watch", store.info.plural, namespace, query_key, media, include_object),
                lambda: _initial_events(store, namespace, options, resource_version, media, include_object),
            )
        except errors.StatusError as err:
            if not err.is_resource_version_too_large:
                raise
            # kube's cacher: the watch is established and carries the 504 as its one ERROR event.
            return await _error_stream(request, media, err)
        start, initial = lease.value
        encoder.columns_sent = bool(initial)
    elif resource_version in (None, "0"):
        start = None
    else:
        assert resource_version is not None
        start = Revision(int(resource_version))
    try:
        watcher = await store.watch(namespace, from_revision=start)
    except errors.StatusError as err:
        if lease is not None:
            lease.release()
        if err.code != 410:
            raise
        # kube's cacher answers a watch from a compacted revision with a stream holding one ERROR event.
        return await _error_stream(request, media, err)
    except BaseException:
        if lease is not None:
            lease.release()
        raise

    response = web.StreamResponse(
        status=200, headers={"Content-Type": media.content_type, "Cache-Control": "no-cache, private"}
    )
    response.enable_chunked_encoding()
    timeout = float(timeout_seconds) if timeout_seconds else MIN_REQUEST_TIMEOUT * (1 + random.random())
    try:
        await response.prepare(request)
        had_initial = bool(initial)
        await write_slices(request, response, initial)
        del initial
        if lease is not None:
            lease.release()  # the initial events are out: the shared snapshot may go
        if send_initial_events and allow_bookmarks:
            await response.write(
                encoder.bookmark(start if start is not None else Revision(0), initial_events_end=True)
            )
        elif not had_initial:
            # Headers are out; give clients (and proxies) something to flush.
            await response.write(b"")
        last_bookmark = time.monotonic()
        async with asyncio.timeout(timeout):
            try:
                async for event in watcher:
                    if event.type == EventType.BOOKMARK:
                        if allow_bookmarks and time.monotonic() - last_bookmark >= bookmark_interval:
                            last_bookmark = time.monotonic()
                            await response.write(encoder.bookmark(event.revision))
                        continue
                    translated = translate(event, matches)
                    if translated is not None:
                        await response.write(encoder.event(*translated))
            except errors.StatusError as err:
                # The Store mapped the storage's failure (410 compacted, 500): the watch's last event.
                await response.write(encoder.error(err))
    except TimeoutError:
        pass
    except ConnectionResetError:
        # The client went away (``kubectl get -w`` ended, an informer re-listed): nothing left to send,
        # and nothing to log — aiohttp drops the connection quietly when it finishes this response.
        return response
    except asyncio.CancelledError:
        raise
    finally:
        if lease is not None:
            lease.release()
        await watcher.close()
    with contextlib.suppress(ConnectionResetError):
        # The client may go away just as the watch ends (its timeout): nothing to send, nothing to log.
        await response.write_eof()
    return response


async def _initial_events(
    store: Store,
    namespace: str | None,
    options: ListOptions,
    resource_version: str | None,
    media: MediaType,
    include_object: IncludeObject,
) -> tuple[Revision, bytes]:
    """The synthetic ADDED events of a watch's initial state, encoded once for every watcher sharing
    them (a Table's column definitions ride on the first event, which every watcher receives first)."""
    encoder = WatchEncoder(store.info, media, include_object)
    chunks: list[bytes] = []
    listing = ListOptions(
        label_selector=options.label_selector,
        label_prefilter=options.label_prefilter,
        field_selector=options.field_selector,
        resource_version=resource_version if resource_version not in (None, "0") else None,
    )
    plain = media.transform is None
    while True:
        page = await store.list(namespace, listing, stored=plain)
        if page.stored is not None:
            chunks.extend(b'{"type":"ADDED","object":' + stored_json(v) + b"}\n" for v in page.stored)
        chunks.extend(encoder.event("ADDED", obj) for obj in page.items)
        if not page.continue_token:
            return Revision(int(page.resource_version)), b"".join(chunks)
        listing = ListOptions(
            label_selector=options.label_selector,
            label_prefilter=options.label_prefilter,
            field_selector=options.field_selector,
            continue_token=page.continue_token,
        )


async def _error_stream(
    request: web.Request, media: MediaType, err: errors.StatusError
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": media.content_type})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(WatchEncoder.error(err))
    await response.write_eof()
    return response
