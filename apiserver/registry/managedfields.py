"""``metadata.managedFields`` for Update operations (create, PUT, PATCH), as kube-apiserver records them.

Every write names a manager (``fieldManager``, else the first segment of the User-Agent). The manager's
``Update`` entry owns the fields it set or changed; those fields leave the other managers' entries, and
entries left empty disappear. A write that changes nothing keeps the entries as they are (no new
timestamp), like kube's ``IgnoreManagedFieldsTimestampsTransformer``. Writes to the main resource of a kind
with a status subresource do not own ``status``, writes to ``/status`` own only ``status`` (kube's reset
fields). Field sets use the ``FieldsV1`` encoding (``{"f:spec": {"f:type": {}}}``); lists are treated
as atomic values, which is what ARC's schemas declare for all but their keyed lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Path = tuple[str, ...]

# Fields the field manager never tracks (structured-merge-diff's stripped metadata).
_STRIPPED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def _leaves(value: Any, prefix: Path, out: dict[Path, Any]) -> None:
    """Every leaf of ``value`` (a non-mapping or an empty mapping) under ``prefix``, into ``out``."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            _leaves(sub, (*prefix, str(key)), out)
    else:
        out[prefix] = value


def _tracked(
    obj: Mapping[str, Any], *, subresource: str | None, reset_status: bool
) -> Iterator[tuple[Path, Any]]:
    """The top-level values (and metadata's) the field manager tracks for one kind of write."""
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if subresource == "status" and key != "status":
            continue
        if subresource != "status" and reset_status and key == "status":
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for meta_key, meta_value in value.items():
                if meta_key not in _STRIPPED_METADATA and meta_value is not None:
                    yield ("metadata", str(meta_key)), meta_value
            continue
        yield (str(key),), value


def field_values(obj: Mapping[str, Any], *, subresource: str | None, reset_status: bool) -> dict[Path, Any]:
    """The tracked leaf fields of an object and their values, for one kind of write."""
    out: dict[Path, Any] = {}
    for path, value in _tracked(obj, subresource=subresource, reset_status=reset_status):
        _leaves(value, path, out)
    return out


def _all_fields_v1(obj: Mapping[str, Any], *, subresource: str | None, reset_status: bool) -> dict[str, Any]:
    """``to_fields_v1(set(field_values(obj, …)))`` built directly (every tracked field, keys sorted)."""
    root: dict[str, Any] = {}
    for path, value in sorted(
        _tracked(obj, subresource=subresource, reset_status=reset_status), key=lambda item: item[0]
    ):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
        if isinstance(value, Mapping) and value:
            node.update(_sorted_fields(value))
    return root


def _sorted_fields(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        f"f:{key}": _sorted_fields(sub) if isinstance(sub, Mapping) and sub else {}
        for key, sub in sorted(((str(k), v) for k, v in value.items()), key=lambda item: item[0])
    }


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(fields, Mapping):
        return out
    children = {k: v for k, v in fields.items() if k.startswith("f:")}
    if not children and prefix:
        out.add(prefix)
    for key, sub in children.items():
        out |= from_fields_v1(sub, (*prefix, key[2:]))
    return out


def _overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def update_managed_fields(
    obj: dict[str, Any],
    old: Mapping[str, Any] | None,
    *,
    manager: str,
    api_version: str,
    subresource: str | None,
    now: str,
    reset_status: bool,
) -> None:
    """Set ``obj["metadata"]["managedFields"]`` for an Update operation by ``manager``."""
    meta = obj.setdefault("metadata", {})
    if old is None:
        # A create: the manager owns every tracked field (the general path below, built directly).
        fields = _all_fields_v1(obj, subresource=subresource, reset_status=reset_status)
        if not fields:
            meta.pop("managedFields", None)
            return
        created: dict[str, Any] = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if subresource:
            created["subresource"] = subresource
        meta["managedFields"] = [created]
        return
    new_values = field_values(obj, subresource=subresource, reset_status=reset_status)
    entries = [dict(e) for e in ((old.get("metadata") or {}).get("managedFields") or [])]
    old_values = field_values(old, subresource=subresource, reset_status=reset_status)
    changed = {p for p, v in new_values.items() if old_values.get(p, _MISSING) != v}
    removed = {p for p in old_values if p not in new_values}
    if not changed and not removed:
        if entries:
            meta["managedFields"] = entries
        else:
            meta.pop("managedFields", None)
        return
    touched = changed | removed
    kept: list[dict[str, Any]] = []
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1"))
        if entry.get("subresource") == subresource or (subresource is None and not entry.get("subresource")):
            owned = {p for p in owned if p in new_values and not any(_overlaps(p, t) for t in removed)}
        if not (
            entry.get("manager") == manager
            and entry.get("operation") == "Update"
            and entry.get("subresource") == subresource
        ):
            owned = {p for p in owned if not any(_overlaps(p, t) for t in touched)}
        entry["fieldsV1"] = to_fields_v1(owned)
        if owned:
            kept.append(entry)
    entries = kept
    mine = next(
        (
            e
            for e in entries
            if e.get("manager") == manager
            and e.get("operation") == "Update"
            and e.get("subresource") == subresource
        ),
        None,
    )
    owned = from_fields_v1(mine.get("fieldsV1")) if mine else set()
    owned |= changed
    owned = {p for p in owned if p in new_values}
    entry = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(owned),
    }
    if subresource:
        entry["subresource"] = subresource
    if mine is not None:
        entries[entries.index(mine)] = entry
    elif owned:
        entries.append(entry)
    entries = [e for e in entries if e.get("fieldsV1")]
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


_MISSING = object()
