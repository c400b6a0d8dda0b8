"""``metadata.managedFields``: kube-apiserver's field manager (``k8s.io/apimachinery/pkg/util/managedfields``)
for Update operations (create, PUT, PATCH) and server-side apply.

kube stacks small managers around structured-merge-diff's ``merge.Updater``; :class:`FieldManager` keeps
their order and rules in one place:

- managedFields of the request object are used when they decode, ``[]`` or ``[{}]`` resets them, else the
  stored ones are kept (``decodeLiveOrNew``); writes to a subresource always keep the stored ones;
- an Update by a manager takes the fields it added or changed from everyone else, and nobody owns removed
  fields any more; an apply owns exactly the fields of its configuration, conflicts with other owners of
  fields it changes (409, one cause per field) unless forced, and removes the fields it owned before and no
  longer sends unless someone else owns them too;
- ``apiVersion``, ``kind`` and metadata's identity fields are never owned (``stripMeta``); writes to the
  main resource of a kind with a status subresource never own ``status``, writes to ``/status`` own only
  ``status`` (the strategies' reset fields);
- an object without managedFields gets none from Updates; the first apply to it gives every existing
  field to ``before-first-apply``; more than 10 Update managers fold the oldest into ``ancient-changes``;
- the ``kubectl`` manager may take fields still equal to its ``last-applied-configuration`` (kubectl's
  client-side → server-side migration) and keeps that annotation current.

Entries are sorted as kube sorts them (Apply before Update, then time, manager, apiVersion, subresource).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.structure import Schema, schema_of
from apiserver.registry import typed
from apiserver.registry.fieldpath import (
    EMPTY,
    FieldSet,
    Path,
    exclude_prefixes,
    from_fields_v1,
    path_to_string,
    to_fields_v1,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
_MAX_ANNOTATIONS_BYTES = 256 * 1024

_STRIP: FieldSet = frozenset(
    {
        (("f", "apiVersion"),),
        (("f", "kind"),),
        (("f", "metadata"),),
        *(
            (("f", "metadata"), ("f", name))
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    }
)
"""``stripMetaManager``'s set: removed (as exact members) from the writing manager's fields."""


@dataclass(frozen=True)
class ManagerId:
    """kube's manager identifier: an entry without time and fields (Apply entries without apiVersion)."""

    manager: str
    operation: str
    api_version: str = ""
    subresource: str = ""

    def describe(self) -> str:
        """``printManager``: how a conflict message names the manager."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f" with subresource {orjson.dumps(self.subresource).decode()}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


@dataclass
class VersionedSet:
    fields: FieldSet
    api_version: str
    applied: bool


@dataclass
class Managed:
    fields: dict[ManagerId, VersionedSet] = field(default_factory=dict)
    times: dict[ManagerId, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    manager: ManagerId
    path: Path


class ConflictsError(Exception):
    """An apply changes fields other managers own (``merge.Conflicts``)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def conflict_message(conflicts: list[Conflict]) -> str:
    """``getConflictMessage`` of kube's field manager."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.manager.describe()}: {path_to_string(c.path)}"
    by_manager: dict[str, list[str]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager.describe(), []).append(path_to_string(c.path))
    lines: list[str] = []
    for described in sorted(by_manager):
        lines.append(f"conflicts with {described}:")
        lines.extend(f"- {p}" for p in by_manager[described])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


class ManagedFieldsError(ValueError):
    """managedFields that do not decode."""


def decode(entries: Any) -> Managed:
    """``DecodeManagedFields``."""
    managed = Managed()
    if not entries:
        return managed
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ManagedFieldsError(f"managed fields entry {i} is not an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion") or ""
        if not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = entry.get("fieldsType") or ""
        if fields_type != "FieldsV1":
            raise ManagedFieldsError(
                f"missing fieldsType in managed fields entry {i}"
                if not fields_type
                else f'invalid fieldsType "{fields_type}" in managed fields entry {i}'
            )
        manager = ManagerId(
            str(entry.get("manager") or ""),
            str(operation),
            "" if operation == "Apply" else str(api_version),
            str(entry.get("subresource") or ""),
        )
        try:
            paths = from_fields_v1(entry.get("fieldsV1"))
        except (ValueError, TypeError) as exc:
            raise ManagedFieldsError(f"error decoding versioned set: {exc}") from None
        managed.fields[manager] = VersionedSet(paths, str(api_version), operation == "Apply")
        managed.times[manager] = entry.get("time")
    return managed


def encode(managed: Managed) -> list[dict[str, Any]] | None:
    """``encodeManagedFields`` (sorted as kube sorts them); None when nobody owns anything."""
    if not managed.fields:
        return None
    out: list[dict[str, Any]] = []
    for manager, versioned in managed.fields.items():
        entry: dict[str, Any] = {
            "manager": manager.manager,
            "operation": "Apply" if versioned.applied else "Update",
            "apiVersion": versioned.api_version,
        }
        time = managed.times.get(manager)
        if time:
            entry["time"] = time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = to_fields_v1(versioned.fields)
        if manager.subresource:
            entry["subresource"] = manager.subresource
        out.append(entry)
    out.sort(
        key=lambda e: (
            e["operation"],
            e.get("time") or "",
            e["manager"],
            e["apiVersion"],
            e.get("subresource") or "",
        )
    )
    return out


def settle_request(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """What of a request's managedFields the field manager will use, before the object is validated (kube
    validates the managedFields the field manager computed): a reset stays a reset (``[]``), entries that
    do not decode are dropped (the stored ones are kept instead), others stay."""
    if entries is None:
        return None
    if _is_reset(entries):
        return []
    for entry in entries:
        # The checks of ``decode`` short of parsing FieldsV1 (a FieldsV1 that does not parse makes the
        # field manager fall back to the stored entries later, which is what dropping them here does).
        if (
            entry.get("operation") not in ("Apply", "Update")
            or not entry.get("apiVersion")
            or entry.get("fieldsType") != "FieldsV1"
            or not isinstance(entry.get("fieldsV1") or {}, dict)
        ):
            return None
    return entries


def _is_reset(entries: Any) -> bool:
    """``isResetManagedFields``: ``[]`` or ``[{}]``."""
    if isinstance(entries, list):
        return not entries or (len(entries) == 1 and entries[0] == {})
    return False


@functools.cache
def _schema(kind: str) -> Schema:
    return schema_of(kind)


class FieldManager:
    """The field manager of one kind at its one served version."""

    def __init__(self, kind: str, api_version: str, *, has_status: bool) -> None:
        self.kind = kind
        self.api_version = api_version
        self.has_status = has_status

    @property
    def schema(self) -> Schema:
        return _schema(self.kind)

    def empty(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind}

    def ignored(self, subresource: str | None) -> tuple[Path, ...]:
        """The strategy's reset fields (structured-merge-diff's ``IgnoreFilter``)."""
        if subresource == "status":
            return tuple((("f", name),) for name in self.schema.fields if name != "status")
        if self.has_status:
            return ((("f", "status"),),)
        return ()

    # ---- structured-merge-diff's merge.Updater ---------------------------------------------------------
    def _compare(self, live: Any, new: Any, ignored: tuple[Path, ...]) -> typed.Comparison:
        cmp = typed.compare(_without_managed_fields(live), _without_managed_fields(new), self.schema)
        if ignored:
            cmp.added = set(exclude_prefixes(cmp.added, ignored))
            cmp.modified = set(exclude_prefixes(cmp.modified, ignored))
            cmp.removed = set(exclude_prefixes(cmp.removed, ignored))
        return cmp

    def _update(
        self,
        live: Any,
        new: Any,
        managers: dict[ManagerId, VersionedSet],
        workflow: ManagerId,
        *,
        force: bool,
        ignored: tuple[Path, ...],
    ) -> typed.Comparison:
        """``Updater.update``: the writer takes what it changed; nobody keeps what it removed."""
        cmp = self._compare(live, new, ignored)
        changed = cmp.changed()
        conflicts: dict[ManagerId, FieldSet] = {}
        for manager, versioned in managers.items():
            if manager == workflow:
                continue
            overlap = versioned.fields & changed
            if overlap:
                conflicts[manager] = frozenset(overlap)
        if conflicts and not force:
            raise ConflictsError(
                [
                    Conflict(manager, path)
                    for manager, paths in conflicts.items()
                    for path in sorted(paths, key=path_to_string)
                ]
            )
        for manager, versioned in list(managers.items()):
            if manager == workflow:
                continue
            remaining = versioned.fields - conflicts.get(manager, EMPTY) - cmp.removed
            if remaining:
                versioned.fields = frozenset(remaining)
            else:
                del managers[manager]
        return cmp

    def _prune(
        self,
        merged: Any,
        managers: dict[ManagerId, VersionedSet],
        last: VersionedSet | None,
    ) -> Any:
        """``Updater.prune``: remove what the applier owned before, no longer applies and nobody owns."""
        if last is None or not last.fields:
            return merged
        schema = self.schema

        def ensure(paths: Iterable[Path]) -> FieldSet:
            return typed.ensure_named_fields(paths, schema)

        owned: set[Path] = set()
        for versioned in managers.values():
            owned |= versioned.fields
        if last.fields <= owned:
            return merged  # everything applied before is still owned by someone: nothing to remove
        last_set = ensure(last.fields)
        pruned = typed.remove_items(merged, last_set, schema) or {}
        merged_set = ensure(typed.to_field_set(merged, schema))
        pruned_set = ensure(typed.to_field_set(pruned, schema))
        pruned = typed.remove_items(merged, merged_set - (pruned_set | ensure(owned)), schema) or {}
        pruned_set = ensure(typed.to_field_set(pruned, schema))
        return typed.remove_items(merged, (merged_set - pruned_set) & last_set, schema) or {}

    # ---- Update (create, PUT, PATCH) -------------------------------------------------------------------
    def update(
        self,
        new: dict[str, Any],
        live: Mapping[str, Any] | None,
        *,
        manager: str,
        subresource: str | None,
        now: str,
    ) -> None:
        """Set ``new["metadata"]["managedFields"]`` for an Update by ``manager`` (``live`` None: a create)."""
        meta = new.setdefault("metadata", {})
        live_obj: Mapping[str, Any] = live if live is not None else self.empty()
        live_entries = (live_obj.get("metadata") or {}).get("managedFields")
        requested = meta.get("managedFields")
        try:
            if subresource:
                managed = _decode_or_empty(live_entries)
            elif _is_reset(requested):
                managed = Managed()
            else:
                managed = decode(requested)
                if not managed.fields:
                    managed = _decode_or_empty(live_entries)
        except ManagedFieldsError:
            managed = _decode_or_empty(live_entries)
        meta.pop("managedFields", None)
        if not managed.fields and (live_obj.get("metadata") or {}).get("uid"):
            return  # skipNonApplied: an existing object without managedFields gets none from Updates
        if live is None and not managed.fields:
            created = self._created_fields(new, subresource)
            if created is not None:
                if created:
                    entry: dict[str, Any] = {
                        "manager": manager or "unknown",
                        "operation": "Update",
                        "apiVersion": self.api_version,
                        "time": now,
                        "fieldsType": "FieldsV1",
                        "fieldsV1": created,
                    }
                    if subresource:
                        entry["subresource"] = subresource
                    meta["managedFields"] = [entry]
                return
        try:
            self._update_managed(managed, live_obj, new, manager=manager, subresource=subresource, now=now)
        except typed.TypedError:
            return  # UpdateNoErrors: kube drops managedFields of objects it cannot type
        entries = encode(managed)
        if entries:
            meta["managedFields"] = entries

    def _created_fields(self, new: Mapping[str, Any], subresource: str | None) -> dict[str, Any] | None:
        """A create's FieldsV1 built straight from the object: what ``_update_managed`` computes from the
        empty object (every node added, markers on walked nodes, reset and identity fields left out), in
        FieldsV1's order; None when it has to take the general path (an object that does not fit)."""
        ignored = {p[0][1] for p in self.ignored(subresource)}
        out: dict[str, Any] = {}
        try:
            for key in sorted(new):
                if key in ("apiVersion", "kind") or key in ignored:
                    continue
                value = new[key]
                schema = self.schema.child(key)
                if schema is None:
                    return None
                if key == "metadata" and isinstance(value, Mapping):
                    meta: dict[str, Any] = {}
                    for meta_key in sorted(value):
                        path = (("f", "metadata"), ("f", meta_key))
                        if path in _STRIP:
                            continue
                        sub = schema.child(meta_key)
                        if sub is None:
                            return None
                        meta["f:" + meta_key] = typed.added_fields_v1(value[meta_key], sub)
                    if meta:
                        out["f:metadata"] = meta
                    continue
                out["f:" + key] = typed.added_fields_v1(value, schema)
        except typed.TypedError:
            return None
        return out

    def _update_managed(
        self,
        managed: Managed,
        live: Mapping[str, Any],
        new: Mapping[str, Any],
        *,
        manager: str,
        subresource: str | None,
        now: str,
    ) -> None:
        ignored = self.ignored(subresource)
        me = ManagerId(manager or "unknown", "Update", self.api_version, subresource or "")
        current = ManagerId("current-operation", "Update", self.api_version, subresource or "")
        fields = managed.fields
        cmp = self._update(live, new, fields, current, force=True, ignored=ignored)
        owned = exclude_prefixes(cmp.changed(), ignored) - _STRIP
        if owned:
            previous = fields.get(me)
            fields[me] = VersionedSet(
                owned | (previous.fields if previous else EMPTY), self.api_version, applied=False
            )
            managed.times[me] = now
        _cap_update_managers(managed)

    # ---- Apply ----------------------------------------------------------------------------------------
    def apply(
        self,
        live: Mapping[str, Any] | None,
        config: Mapping[str, Any],
        *,
        manager: str,
        subresource: str | None,
        force: bool,
        now: str,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply of ``config`` to ``live`` (None: create); returns (the object with its
        managedFields, whether the object itself changed). Raises :class:`ConflictsError` and
        :class:`typed.TypedError`."""
        live_obj: dict[str, Any] = dict(live) if live is not None else self.empty()
        live_meta = dict(live_obj.get("metadata") or {})
        try:
            managed = decode(live_meta.get("managedFields"))
        except ManagedFieldsError as exc:
            raise typed.TypedError((), f"failed to decode managed fields: {exc}") from None
        live_meta.pop("managedFields", None)
        live_obj["metadata"] = live_meta
        if not managed.fields:
            # skipNonApplied: the fields that exist before the first apply belong to "before-first-apply".
            self._update_managed(
                managed, self.empty(), live_obj, manager=BEFORE_FIRST_APPLY, subresource=subresource, now=now
            )
        try:
            new, changed = self._apply(managed, live_obj, config, manager, subresource, force, now)
        except ConflictsError as conflicts:
            allowed = self._allowed_by_last_applied(live_obj) if manager == "kubectl" else None
            if allowed is None:
                raise
            left = [c for c in conflicts.conflicts if c.path not in allowed]
            if left:
                raise ConflictsError(left) from None
            new, changed = self._apply(managed, live_obj, config, manager, subresource, True, now)
        annotations = (new.get("metadata") or {}).get("annotations") or {}
        if manager == "kubectl" and annotations.get(LAST_APPLIED):
            _set_last_applied(new, config)
            changed = changed or new != live_obj
        entries = encode(managed)
        if entries:
            new.setdefault("metadata", {})["managedFields"] = entries
        else:
            new.setdefault("metadata", {}).pop("managedFields", None)
        return new, changed

    def _apply(
        self,
        managed: Managed,
        live: dict[str, Any],
        config: Mapping[str, Any],
        manager: str,
        subresource: str | None,
        force: bool,
        now: str,
    ) -> tuple[dict[str, Any], bool]:
        schema = self.schema
        ignored = self.ignored(subresource)
        fields = {m: VersionedSet(v.fields, v.api_version, v.applied) for m, v in managed.fields.items()}
        me = ManagerId(manager, "Apply", "", subresource or "")
        merged = typed.merge(live, config, schema)
        last = fields.get(me)
        applied = exclude_prefixes(typed.to_field_set(config, schema), ignored)
        fields[me] = VersionedSet(applied, self.api_version, applied=True)
        merged = self._prune(merged, fields, last)
        merged = typed.drop_nulls(merged, schema)
        self._update(live, merged, fields, me, force=force, ignored=ignored)
        mine = fields.get(me)
        if mine is not None:
            remaining = mine.fields - _STRIP
            if remaining:
                mine.fields = remaining
            else:
                del fields[me]
        changed = merged != live
        times = {m: t for m, t in managed.times.items() if m in fields}
        if changed or (me in fields and me not in times):
            times[me] = now
        managed.fields = fields
        managed.times = times
        return merged, changed

    def _allowed_by_last_applied(self, live: Mapping[str, Any]) -> FieldSet | None:
        """``lastAppliedManager``: fields of the last-applied-configuration still equal in the object."""
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        raw = annotations.get(LAST_APPLIED)
        if not raw:
            return None
        try:
            last = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(last, dict) or last.get("apiVersion") != self.api_version:
            return None
        try:
            last_set = typed.to_field_set(last, self.schema)
            cmp = typed.compare(last, _without_managed_fields(live), self.schema)
        except typed.TypedError:
            return None
        return last_set - cmp.modified - cmp.added - cmp.removed


def _decode_or_empty(entries: Any) -> Managed:
    try:
        return decode(entries)
    except ManagedFieldsError:
        return Managed()


def _without_managed_fields(obj: Any) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _set_last_applied(obj: dict[str, Any], config: Mapping[str, Any]) -> None:
    """``lastAppliedUpdater``: the annotation holds the applied configuration (without itself)."""
    applied = dict(config)
    applied_meta = dict(applied.get("metadata") or {})
    applied_annotations = {
        k: v for k, v in (applied_meta.get("annotations") or {}).items() if k != LAST_APPLIED
    }
    if applied_annotations:
        applied_meta["annotations"] = applied_annotations
    else:
        applied_meta.pop("annotations", None)
    applied["metadata"] = applied_meta
    meta = obj.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    # runtime.Encode of the unstructured configuration: sorted keys, compact, a final newline.
    annotations[LAST_APPLIED] = orjson.dumps(applied, option=orjson.OPT_SORT_KEYS).decode() + "\n"
    if sum(len(k) + len(v) for k, v in annotations.items()) > _MAX_ANNOTATIONS_BYTES:
        annotations.pop(LAST_APPLIED)
    meta["annotations"] = annotations


def _cap_update_managers(managed: Managed) -> None:
    """``capManagersManager``: at most 10 Update managers; the oldest fold into ``ancient-changes``."""
    updaters = [m for m, v in managed.fields.items() if not v.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda m: (managed.times.get(m) or "", orjson.dumps(m.__dict__)))
    first_by_version: dict[str, ManagerId] = {}
    length = len(updaters)
    for manager in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        versioned = managed.fields[manager]
        version = versioned.api_version
        bucket = ManagerId(ANCIENT_CHANGES, "Update", version, "")
        if version in first_by_version:
            if bucket not in managed.fields:
                first = first_by_version[version]
                managed.fields[bucket] = managed.fields.pop(first)
                managed.times[bucket] = managed.times.pop(first, None)
            managed.fields[bucket] = VersionedSet(
                versioned.fields | managed.fields[bucket].fields, version, versioned.applied
            )
            del managed.fields[manager]
            managed.times[bucket] = managed.times.pop(manager, None)
            length -= 1
        else:
            first_by_version[version] = manager
