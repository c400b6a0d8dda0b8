"""The generic Store: kube-apiserver's ``registry/generic/registry/store.go`` for every ARC resource.

It is the only place that turns storage results into Kubernetes ``StatusError``s (house rule: map a
library's errors once, at the boundary). Objects cross it as wire-form dicts (``metadata.resourceVersion``
set from etcd's mod revision); writes parse the request object once into its pydantic model, run the
strategy (defaults, prepare, validate) and store the dumped JSON without ``resourceVersion``. Reads never
re-validate what is stored.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from api import fields as f
from api.meta import dump
from api.resources import ResourceInfo, format_rfc3339
from api.schema import (
    duplicate_field_warning,
    strict_decoding_message,
    unknown_field_warning,
    unknown_fields,
)
from apiserver import errors, limits
from apiserver.encoding import encode_json
from apiserver.registry.managedfields import FieldManager, settle_request
from apiserver.registry.patch import apply_patch
from apiserver.registry.strategy import ResourceStrategy, StatusStrategy, Strategy, metadata_of
from apiserver.registry.watching import ObjectWatch
from apiserver.storage.interface import (
    INCONSISTENT_CONTINUE_MESSAGE,
    CompactedError,
    ExpiredError,
    InsufficientStorageError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    ListResult,
    RequestTooLargeError,
    ResourceVersionMatch,
    Revision,
    RevisionConflictError,
    Storage,
    StorageError,
    StorageUnavailableError,
    StoredValue,
    TooLargeRevisionError,
)
from apiserver.storage.keys import KeyLayout
from apiserver.uid import new_uuid

logger = logging.getLogger(__name__)

FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apiserver/pkg/storage/names
_MAX_GENERATED_BASE = 63 - 5
_GENERATE_NAME_ATTEMPTS = 8
FRESHNESS_TIMEOUT = 3.0
"""How long a read from a revision not seen yet waits for it (kube's watch cache ``blockTimeout``)."""
FRESHNESS_POLL = 0.05
NOSPACE_HINT = (
    "ARC's etcd is out of space; writes fail until an administrator frees space "
    "(delete objects, compact, defragment, disarm the NOSPACE alarm: see docs/security.md)"
)
RESOURCE_VERSION_SET_ON_CREATE = "resourceVersion should not be set on objects to be created"


def now_rfc3339() -> str:
    return format_rfc3339()


class _DeleteDuringUpdate(Exception):
    """An update removed the last finalizer of an object being deleted: delete it instead."""

    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__("emptied finalizers")
        self.obj = obj


@dataclass
class RequestScope:
    """What a write needs to know about its request (``metav1.CreateOptions``/``UpdateOptions`` + who)."""

    namespace: str | None = None
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)
    applied_managed_fields: list[dict[str, Any]] | None = None
    """Set by server-side apply: the managedFields its write stores (instead of an Update's)."""
    duplicate_fields: list[str] = field(default_factory=list)
    """Keys the JSON body held twice (``apiserver.strictjson``): strict errors like unknown fields."""
    final_checks: list[Callable[[Mapping[str, Any], Mapping[str, Any]], None]] = field(default_factory=list)
    """Admission's checks of an update's final object against the stored one (new wire, old wire), run
    inside the read-modify-write: what admission authorized before the write is what gets stored."""

    @property
    def manager(self) -> str:
        """``fieldManager``, else the user agent's first segment (kube's ``managerOrUserAgent``)."""
        if self.field_manager:
            return self.field_manager
        return self.user_agent.split("/", 1)[0] or "unknown"


@dataclass(frozen=True)
class ListOptions:
    """``metav1.ListOptions`` after validation (``apiserver.query`` parses the query)."""

    label_selector: Callable[[Mapping[str, str]], bool] | None = None
    label_prefilter: Callable[[bytes], bool] | None = None
    """A necessary condition of ``label_selector`` on the stored bytes (skips decoding non-matches)."""
    field_selector: Callable[[Mapping[str, str]], bool] | None = None
    limit: int | None = None
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


@dataclass(frozen=True)
class ListPage:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str | None = None
    remaining_item_count: int | None = None
    stored: Sequence[StoredValue] | None = None
    """With ``list(..., stored=True)`` and no selector: the stored values, undecoded (``items`` is empty)."""


def decode_stored(value: StoredValue) -> dict[str, Any]:
    """The wire form of a stored object: its JSON with ``metadata.resourceVersion`` = mod revision."""
    obj: dict[str, Any] = orjson.loads(value.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(value.mod_revision)
    return obj


_METADATA = b'"metadata":{'


def stored_json(value: StoredValue) -> bytes:
    """The wire JSON of a stored object without decoding it: ``"resourceVersion"`` spliced into its
    top-level ``metadata`` (what :func:`decode_stored` + encoding gives, for lists of thousands of large
    objects at a fraction of the memory and time). Falls back to decoding when the bytes are not laid
    out as ARC stores objects (``apiVersion``, ``kind``, then ``metadata``, all at the top level)."""
    data = value.value
    at = data.find(_METADATA)
    # Inside a JSON string every quote is escaped, so a match is a key; it is the top-level metadata when
    # nothing before it opened an object but the document itself.
    if at > 0 and data[:at].count(b"{") == 1 and data.startswith(b"{"):
        insert = at + len(_METADATA)
        rv = b'"resourceVersion":"' + str(value.mod_revision).encode() + b'"'
        return data[:insert] + rv + (b"" if data[insert : insert + 1] == b"}" else b",") + data[insert:]
    return encode_json(decode_stored(value))


def encode_for_storage(obj: Mapping[str, Any]) -> bytes:
    """What goes into etcd: the object without ``resourceVersion`` and ``selfLink`` (kube's versioner)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("selfLink", None)
    return orjson.dumps({**obj, "metadata": meta})


def object_fields(info: ResourceInfo, obj: Mapping[str, Any]) -> dict[str, str]:
    """The field-selector view of an object: name, namespace and the kind's selectable fields."""
    meta = obj.get("metadata") or {}
    out = {"metadata.name": meta.get("name") or "", "metadata.namespace": meta.get("namespace") or ""}
    for path in info.selectable_fields:
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        out[path] = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return out


def storage_error(err: StorageError, info: ResourceInfo, name: str, *, operation: str) -> errors.StatusError:
    """Map a storage error to the Status kube-apiserver answers (``storage/errors``)."""
    resource = info.group_resource
    if isinstance(err, KeyNotFoundError):
        return errors.not_found(resource, name)
    if isinstance(err, KeyExistsError):
        return errors.already_exists(resource, name)
    if isinstance(err, RevisionConflictError):
        return errors.conflict(resource, name)
    if isinstance(err, ExpiredError):
        return errors.expired(str(err), err.continue_token)
    if isinstance(err, TooLargeRevisionError):
        return errors.resource_version_too_large(
            f"Too large resource version: {err.requested}, current: {err.current}"
        )
    if isinstance(err, InvalidContinueError):
        return errors.bad_request(f"continue key is not valid: {err}")
    if isinstance(err, RequestTooLargeError):
        logger.info("object too large for storage", extra={"operation": operation, "error": str(err)})
        return errors.request_entity_too_large(f"the object is too large to be stored: {err}")
    if isinstance(err, InsufficientStorageError):
        logger.error("storage is out of space", extra={"operation": operation, "error": str(err)})
        return errors.internal_error(f"{err}: {NOSPACE_HINT}")
    if isinstance(err, StorageUnavailableError):
        logger.warning("storage unavailable", extra={"operation": operation, "error": str(err)})
        if err.timeout:
            return errors.timeout(f"the {operation} of {resource} did not complete in time")
        return errors.service_unavailable(f"storage is unavailable: the {operation} of {resource} failed")
    logger.error("storage error", extra={"operation": operation, "error": str(err)})
    return errors.internal_error(f"storage error during {operation}")


class Store:
    """Get, list, watch, create, update, patch and delete of one resource over a Storage."""

    def __init__(self, info: ResourceInfo, storage: Storage, keys: KeyLayout) -> None:
        self.info = info
        self.storage = storage
        self.keys = keys
        self.strategy: Strategy = ResourceStrategy(info)
        self.status_strategy: Strategy = StatusStrategy(info)
        self.field_manager = FieldManager(info.kind, info.api_version, has_status=info.has_status)
        _ = self.field_manager.schema  # built once per process at start-up, not on the first write

    # ---- keys -------------------------------------------------------------------------------------
    def key(self, namespace: str | None, name: str) -> str:
        """The object's storage key; a name that cannot be a path segment is a 400 (``NamespaceKeyFunc``)."""
        problems = limits.path_segment_problems(name)
        if problems:
            raise errors.bad_request(f"Name parameter invalid: {f.go_quote(name)}: {';'.join(problems)}")
        if self.info.namespaced and namespace:
            _check_namespace(namespace)
        return self.keys.object_key(self.info.plural, name, namespace if self.info.namespaced else None)

    def prefix(self, namespace: str | None) -> str:
        if self.info.namespaced and namespace:
            _check_namespace(namespace)
            return self.keys.namespace_prefix(self.info.plural, namespace)
        return self.keys.resource_prefix(self.info.plural)

    def _error(self, err: StorageError, name: str, operation: str) -> errors.StatusError:
        return storage_error(err, self.info, name, operation=operation)

    # ---- decoding the request object ---------------------------------------------------------------
    def parse(self, body: Mapping[str, Any], scope: RequestScope, *, name: str = "") -> BaseModel:
        """Check apiVersion/kind, unknown fields (``fieldValidation``) and the shape; returns the model."""
        # Missing apiVersion/kind default to the endpoint's, as kube's decoder does with the URL's GVK.
        api_version = body.get("apiVersion") or self.info.api_version
        kind = body.get("kind") or self.info.kind
        if api_version != self.info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({self.info.api_version})"
            )
        if kind != self.info.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({self.info.kind})"
            )
        if "apiVersion" not in body or "kind" not in body:
            body = {**body, "apiVersion": api_version, "kind": kind}
        too_deep = limits.too_deep_field(body)
        if too_deep is not None:
            meta = body.get("metadata")
            obj_name = (meta.get("name") if isinstance(meta, Mapping) else None) or name
            raise errors.invalid(self.info.group_kind, str(obj_name or ""), [too_deep])
        if scope.field_validation != "Ignore":
            unknown = unknown_fields(self.info.model, body)
            duplicates = scope.duplicate_fields
            if (unknown or duplicates) and scope.field_validation == "Strict":
                raise errors.bad_request(strict_decoding_message(unknown, duplicates))
            scope.warnings.extend(duplicate_field_warning(p) for p in duplicates)
            scope.warnings.extend(unknown_field_warning(p) for p in unknown)
        try:
            return self.info.model.model_validate(body)
        except ValidationError as exc:
            meta = body.get("metadata")
            obj_name = (meta.get("name") if isinstance(meta, Mapping) else None) or name
            raise errors.invalid(
                self.info.group_kind, str(obj_name or ""), f.from_validation_error(exc)
            ) from None

    def _ensure_namespace(self, obj: BaseModel, scope: RequestScope) -> None:
        """``EnsureObjectNamespaceMatchesRequestNamespace``."""
        meta = metadata_of(obj)
        expected = scope.namespace if self.info.namespaced else None
        if (meta.namespace or None) == expected:
            return
        if not meta.namespace:
            meta.namespace = expected
        elif expected is None:
            meta.namespace = None
        else:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    # ---- reads ------------------------------------------------------------------------------------
    async def get(self, namespace: str | None, name: str) -> dict[str, Any]:
        try:
            value = await self.storage.get(self.key(namespace, name))
        except StorageError as err:
            raise self._error(err, name, "get") from None
        return decode_stored(value)

    def matcher(self, options: ListOptions) -> Callable[[dict[str, Any]], bool] | None:
        labels, fields_ = options.label_selector, options.field_selector
        if labels is None and fields_ is None:
            return None
        info = self.info

        def matches(obj: dict[str, Any]) -> bool:
            if labels is not None and not labels((obj.get("metadata") or {}).get("labels") or {}):
                return False
            return fields_ is None or fields_(object_fields(info, obj))

        return matches

    async def list(self, namespace: str | None, options: ListOptions, *, stored: bool = False) -> ListPage:
        """One page of the collection. ``stored``: without selectors, hand back the stored values
        undecoded (``ListPage.stored``), for callers that write them out as they are."""
        matches = self.matcher(options)
        prefilter = options.label_prefilter
        selected: list[dict[str, Any]] = []
        predicate: Callable[[StoredValue], bool] | None = None
        if matches is not None:

            def predicate(value: StoredValue) -> bool:
                if prefilter is not None and not prefilter(value.value):
                    return False
                obj = decode_stored(value)
                if not matches(obj):
                    return False
                selected.append(obj)
                return True

        revision: Revision | None = None
        match = ResourceVersionMatch.NOT_OLDER_THAN
        rv = options.resource_version
        if rv and rv != "0" and not options.continue_token:
            revision = Revision(int(rv))
            if options.resource_version_match == "Exact":
                match = ResourceVersionMatch.EXACT
        prefix = self.prefix(namespace)
        waited_until: float | None = None
        while True:
            try:
                result: ListResult = await self.storage.list(
                    prefix,
                    limit=options.limit or None,
                    continue_token=options.continue_token,
                    revision=revision,
                    match=match,
                    predicate=predicate,
                )
                break
            except TooLargeRevisionError as err:
                # kube's watch cache waits up to 3 s for a revision it has not seen yet, then 504s.
                now = asyncio.get_running_loop().time()
                waited_until = waited_until or now + FRESHNESS_TIMEOUT
                if now >= waited_until:
                    raise self._error(err, "", "list") from None
                selected.clear()
                await asyncio.sleep(FRESHNESS_POLL)
            except CompactedError as err:
                if err.continue_token:
                    raise errors.expired(INCONSISTENT_CONTINUE_MESSAGE, err.continue_token) from None
                raise self._error(err, "", "list") from None
            except StorageError as err:
                raise self._error(err, "", "list") from None
        raw = stored and predicate is None
        return ListPage(
            items=selected
            if predicate is not None
            else []
            if raw
            else [decode_stored(v) for v in result.items],
            stored=result.items if raw else None,
            resource_version=str(result.revision),
            continue_token=result.continue_token,
            remaining_item_count=result.remaining_item_count,
        )

    async def count(self, namespace: str | None) -> int:
        """How many objects the namespace (or the cluster) holds now: one etcd range with ``limit=1``."""
        try:
            result = await self.storage.list(self.prefix(namespace), limit=1)
        except StorageError as err:
            raise self._error(err, "", "list") from None
        return len(result.items) + (result.remaining_item_count or 0)

    async def watch(self, namespace: str | None, *, from_revision: Revision | None) -> ObjectWatch:
        """A watch of the namespace (or the cluster) from ``from_revision`` (now when None), with bookmarks:
        decoded events, storage errors as Statuses (``registry/watching.py``)."""
        try:
            watcher = await self.storage.watch(
                self.prefix(namespace), from_revision=from_revision, bookmarks=True
            )
        except StorageError as err:
            raise self._error(err, "", "watch") from None
        return ObjectWatch(watcher, decode_stored)

    # ---- create -----------------------------------------------------------------------------------
    async def create(self, scope: RequestScope, body: Mapping[str, Any]) -> dict[str, Any]:
        obj = self.parse(body, scope)
        meta = metadata_of(obj)
        sent_resource_version = meta.resource_version
        self.strategy.set_defaults(obj)
        self._ensure_namespace(obj, scope)
        meta.uid = new_uuid()
        meta.creation_timestamp = now_rfc3339()
        meta.deletion_timestamp = None
        meta.deletion_grace_period_seconds = None
        meta.self_link = None
        generate = not meta.name and bool(meta.generate_name)
        if generate:
            meta.name = self._generated_name(meta.generate_name or "")
        self.strategy.prepare_for_create(obj)
        _settle_managed_fields(obj)
        errs = self.strategy.validate(obj)
        if _nonzero_resource_version(sent_resource_version) and not scope.dry_run:
            # kube's etcd3 store rejects this with a plain error that reaches clients as a reasonless 500.
            # ARC's rule is that bad input is never a 5xx: the same words, as a 422 naming the field.
            errs.append(f.forbidden("metadata.resourceVersion", RESOURCE_VERSION_SET_ON_CREATE))
        wire = self._valid_wire(obj, errs, None, scope=scope, subresource=None, now=meta.creation_timestamp)
        if scope.dry_run:
            return wire
        for attempt in range(_GENERATE_NAME_ATTEMPTS):
            name = wire["metadata"]["name"]
            try:
                revision = await self.storage.create(self.key(meta.namespace, name), encode_for_storage(wire))
            except KeyExistsError:
                if generate and attempt + 1 < _GENERATE_NAME_ATTEMPTS:
                    wire["metadata"]["name"] = self._generated_name(meta.generate_name or "")
                    continue
                if generate:
                    raise errors.generate_name_conflict(self.info.group_resource, name) from None
                raise errors.already_exists(self.info.group_resource, name) from None
            except StorageError as err:
                raise self._error(err, name, "create") from None
            wire["metadata"]["resourceVersion"] = str(revision)
            return wire
        raise AssertionError("unreachable")

    def _valid_wire(
        self,
        obj: BaseModel,
        errs: builtins.list[f.FieldError],
        old_wire: Mapping[str, Any] | None,
        *,
        scope: RequestScope,
        subresource: str | None,
        now: str | None,
    ) -> dict[str, Any]:
        """422 with every field error, else the wire form with this write's managedFields."""
        if errs:
            raise errors.invalid(self.info.group_kind, metadata_of(obj).name or "", errs)
        wire = dump(obj)
        if scope.applied_managed_fields is not None:
            # Server-side apply computed the managedFields already (apiserver.registry.apply).
            entries = scope.applied_managed_fields
            if entries:
                wire["metadata"]["managedFields"] = entries
            else:
                wire["metadata"].pop("managedFields", None)
            return wire
        self.field_manager.update(
            wire, old_wire, manager=scope.manager, subresource=subresource, now=now or now_rfc3339()
        )
        return wire

    @staticmethod
    def _generated_name(base: str) -> str:
        return base[:_MAX_GENERATED_BASE] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))

    # ---- update and patch -------------------------------------------------------------------------
    def _prepare_update(
        self,
        scope: RequestScope,
        new: BaseModel,
        old_wire: dict[str, Any],
        *,
        subresource: str | None,
    ) -> dict[str, Any]:
        """``rest.BeforeUpdate`` + managed fields; returns the object to store (wire form)."""
        strategy = self.status_strategy if subresource == "status" else self.strategy
        old = self.info.model.model_validate(old_wire)
        strategy.set_defaults(new)
        self._ensure_namespace(new, scope)
        meta, old_meta = metadata_of(new), metadata_of(old)
        new_rv = meta.resource_version
        if new_rv and new_rv != old_meta.resource_version:
            raise errors.conflict(self.info.group_resource, old_meta.name or "")
        strategy.prepare_for_update(new, old)
        meta = metadata_of(new)
        meta.resource_version = old_meta.resource_version
        if not meta.uid:
            meta.uid = old_meta.uid
        meta.creation_timestamp = old_meta.creation_timestamp
        if old_meta.deletion_timestamp:
            meta.deletion_timestamp = old_meta.deletion_timestamp
        if old_meta.deletion_grace_period_seconds is not None and meta.deletion_grace_period_seconds is None:
            meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds
        _settle_managed_fields(new)
        errs = strategy.validate_update(new, old)
        wire = self._valid_wire(new, errs, old_wire, scope=scope, subresource=subresource, now=now_rfc3339())
        for check in scope.final_checks:
            check(wire, old_wire)
        if meta.deletion_timestamp and not meta.finalizers:
            raise _DeleteDuringUpdate(wire)
        return wire

    async def _guaranteed_update(
        self,
        scope: RequestScope,
        namespace: str | None,
        name: str,
        compute: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        precondition: Revision | None,
    ) -> dict[str, Any]:
        """Read-modify-write with the storage's retry; ``compute`` maps the current object to the new one."""
        key = self.key(namespace, name)
        result: dict[str, Any] = {}

        def try_update(current: StoredValue | None) -> bytes | None:
            assert current is not None  # no create-on-update for ARC kinds
            old_wire = decode_stored(current)
            new_wire = compute(old_wire)
            result.clear()
            result.update(new_wire)
            encoded = encode_for_storage(new_wire)
            if encoded == current.value:
                return None
            if _only_managed_field_times_differ(new_wire, old_wire):
                result.clear()
                result.update(old_wire)
                return None
            return encoded

        try:
            if scope.dry_run:
                current = await self.storage.get(key)
                if precondition is not None and current.mod_revision != precondition:
                    raise errors.conflict(self.info.group_resource, name)
                try_update(current)
                return dict(result)
            stored = await self.storage.guaranteed_update(
                key, try_update=try_update, precondition=precondition
            )
        except _DeleteDuringUpdate as pending:
            return await self._delete_emptied(scope, namespace, name, pending.obj)
        except StorageError as err:
            raise self._error(err, name, "update") from None
        result.setdefault("metadata", {})["resourceVersion"] = str(stored.mod_revision)
        return dict(result)

    async def _delete_emptied(
        self, scope: RequestScope, namespace: str | None, name: str, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """``deleteWithoutFinalizers``: the update removed the last finalizer of a deleting object."""
        if scope.dry_run:
            return obj
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        try:
            await self.storage.delete(
                self.key(namespace, name), precondition=Revision(int(rv)) if rv else None
            )
        except KeyNotFoundError:
            pass
        except StorageError as err:
            raise self._error(err, name, "delete") from None
        return obj

    async def update(
        self,
        scope: RequestScope,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT: unconditional without a resourceVersion (retried on conflict), else conditional."""
        new = self.parse(body, scope, name=name)
        meta = metadata_of(new)
        if meta.name != name:
            raise name_mismatch(meta.name, name)
        precondition = self._revision(meta.resource_version)

        first: list[BaseModel] = [new]

        def compute(old_wire: dict[str, Any]) -> dict[str, Any]:
            # Each attempt mutates its own copy; re-validating the (already checked) body is cheaper than a
            # deep copy of the model.
            attempt = (
                first.pop()
                if first
                else self.info.model.model_validate(
                    {**body, "apiVersion": self.info.api_version, "kind": self.info.kind}
                )
            )
            return self._prepare_update(scope, attempt, old_wire, subresource=subresource)

        return await self._guaranteed_update(scope, scope.namespace, name, compute, precondition=precondition)

    def _revision(self, resource_version: str | None) -> Revision | None:
        if not resource_version:
            return None
        try:
            revision = int(resource_version)
        except ValueError:
            raise errors.bad_request(f'invalid resourceVersion "{resource_version}"') from None
        return Revision(revision)

    async def patch(
        self,
        scope: RequestScope,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """JSON patch or JSON merge patch applied to the current object, then the update path."""

        def compute(old_wire: dict[str, Any]) -> dict[str, Any]:
            patched = apply_patch(patch_type, old_wire, patch, kind=self.info.kind)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            new = self.parse(patched, scope, name=name)
            if metadata_of(new).name != name:
                raise name_mismatch(metadata_of(new).name, name)
            return self._prepare_update(scope, new, old_wire, subresource=subresource)

        return await self._guaranteed_update(scope, scope.namespace, name, compute, precondition=None)


def _only_managed_field_times_differ(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """kube's ``IgnoreManagedFieldsTimestampsTransformer``: a write that would change nothing but the times
    of managedFields entries is no write (no new resourceVersion, no watch event)."""
    new_meta, old_meta = new.get("metadata") or {}, old.get("metadata") or {}
    new_entries, old_entries = new_meta.get("managedFields"), old_meta.get("managedFields")
    if not new_entries or not old_entries or len(new_entries) != len(old_entries):
        return False
    if any(new.get(k) != old.get(k) for k in {*new, *old} if k != "metadata"):
        return False
    if any(new_meta.get(k) != old_meta.get(k) for k in {*new_meta, *old_meta} if k != "managedFields"):
        return False
    return all(
        {k: v for k, v in a.items() if k != "time"} == {k: v for k, v in b.items() if k != "time"}
        for a, b in zip(new_entries, old_entries, strict=True)
    )


def _settle_managed_fields(obj: BaseModel) -> None:
    """The request's managedFields as the field manager will read them (see ``settle_request``)."""
    meta = metadata_of(obj)
    if meta.managed_fields is None:
        return
    entries = [
        {
            "operation": e.operation,
            "apiVersion": e.api_version,
            "fieldsType": e.fields_type,
            "fieldsV1": e.fields_v1,
        }
        for e in meta.managed_fields
    ]
    if len(entries) == 1 and not meta.managed_fields[0].model_dump(exclude_none=True):
        entries = [{}]  # kube's reset: one empty entry
    settled = settle_request(entries)
    if settled is None:
        meta.managed_fields = None
    elif not settled:
        meta.managed_fields = []


def _check_namespace(namespace: str) -> None:
    problems = limits.path_segment_problems(namespace)
    if problems:
        raise errors.bad_request(
            f"Namespace parameter invalid: {f.go_quote(namespace)}: {';'.join(problems)}"
        )


def _nonzero_resource_version(resource_version: str | None) -> bool:
    """kube's ``versioner.ObjectResourceVersion(obj)`` succeeding with a non-zero version."""
    try:
        return int(resource_version or "0") != 0
    except ValueError:
        return False


def name_mismatch(body_name: str | None, url_name: str) -> errors.StatusError:
    return errors.bad_request(
        f"the name of the object ({body_name or ''}) does not match the name on the URL ({url_name})"
    )
