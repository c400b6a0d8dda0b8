"""Typed values: structured-merge-diff's ``typed`` package over wire-form dicts and ``api.structure`` schemas.

- :func:`to_field_set` — the fields a value sets (``TypedValue.ToFieldSet``);
- :func:`compare` — added / modified / removed fields between two values (``TypedValue.Compare``);
- :func:`merge` — a value merged into another, the right side winning (``TypedValue.Merge``), list items
  ordered as structured-merge-diff orders them;
- :func:`remove_items` — a value without the given fields (``TypedValue.RemoveItems``);
- :func:`ensure_named_fields` — ``Set.EnsureNamedFieldsAreMembers``.

The walkers follow structured-merge-diff's own: atomic lists and maps (and both sides empty) are leaves,
granular maps and associative lists are walked item by item. Values are never mutated in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from api.structure import DEDUCED, Schema
from apiserver.registry.fieldpath import (
    FieldSet,
    Path,
    PathElement,
    element_key,
    element_to_string,
    encode_element,
    path_to_string,
    with_prefix,
)


class TypedError(ValueError):
    """A value that does not fit its schema (structured-merge-diff's ``ValidationErrors``)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path_to_string(path)}: {message}" if path else message)
        self.path = path


class _Absent:
    """A side of a merge that has no value (distinct from a JSON null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def _kind(schema: Schema, value: Any) -> str:
    """The atom a value takes: a deduced schema takes the value's own shape."""
    if schema.kind != "deduced":
        return schema.kind
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _elem(schema: Schema) -> Schema:
    return schema.elem if schema.elem is not None else DEDUCED


def _is_atomic(schema: Schema, kind: str) -> bool:
    if schema.kind == "deduced":
        return kind == "list"  # deduced lists are atomic, deduced maps granular
    return schema.atomic


def item_element(schema: Schema, item: Any, path: Path = ()) -> PathElement:
    """The path element of an item of an associative list (``listItemToPathElement``)."""
    if schema.keys:
        if not isinstance(item, dict):
            raise TypedError(path, "associative list with keys may not have non-map elements")
        key: list[tuple[str, Any]] = []
        elem = _elem(schema)
        for name in schema.keys:
            if name in item:
                value = item[name]
            else:
                sub = elem.fields.get(name)
                if sub is None or sub.default is None:
                    raise TypedError(
                        path,
                        f'associative list with keys has an element that omits key field "{name}" '
                        "(and doesn't have default value)",
                    )
                value = sub.default
            if isinstance(value, (dict, list)):
                raise TypedError(path, f'key field "{name}" must be a scalar')
            key.append((name, value))
        key.sort()
        return ("k", tuple(key))
    if isinstance(item, dict):
        raise TypedError(path, "associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise TypedError(path, "not supported: associative list with lists as elements")
    if item is None:
        raise TypedError(path, "associative list without keys has an element that's an explicit null")
    return ("v", item)


def _check(schema: Schema, kind: str, value: Any, path: Path) -> None:
    if value is None or value is ABSENT:
        return
    if kind == "map" and not isinstance(value, dict):
        raise TypedError(path, f"expected map, got {_shape(value)}")
    if kind == "list" and not isinstance(value, list):
        raise TypedError(path, f"expected list, got {_shape(value)}")
    if kind == "scalar" and isinstance(value, (dict, list)):
        raise TypedError(path, f"expected scalar, got {_shape(value)}")


def _shape(value: Any) -> str:
    """How structured-merge-diff prints the offending value (Go's ``%v`` of a ``value.Value``)."""
    return "&{" + go_format(value) + "}"


def go_format(value: Any) -> str:
    """How Go's ``%v`` prints a decoded JSON value (roughly), for error messages kube words with it."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---- ToFieldSet -----------------------------------------------------------------------------------------


def to_field_set(value: Any, schema: Schema) -> FieldSet:
    """Every field ``value`` sets: leaves, list items, undeclared map keys, empty and null values."""
    out: set[Path] = set()
    _to_field_set(value, schema, (), out)
    return frozenset(out)


def to_field_set_into(value: Any, schema: Schema, path: Path, out: set[Path]) -> None:
    """:func:`to_field_set` of a value at ``path``, into ``out`` (TypedError when it does not fit)."""
    _to_field_set(value, schema, path, out)


def _to_field_set(value: Any, schema: Schema, path: Path, out: set[Path]) -> None:
    kind = _kind(schema, value)
    _check(schema, kind, value, path)
    if kind == "scalar":
        out.add(path)
        return
    if kind == "list":
        if _is_atomic(schema, kind):
            out.add(path)
            return
        if not isinstance(value, list):
            return
        elem = _elem(schema)
        seen: set[PathElement] = set()
        for item in value:
            pe = item_element(schema, item, path)
            if pe in seen:
                raise TypedError(path, f"duplicate entries for key {element_to_string(pe)}")
            seen.add(pe)
            item_path = (*path, pe)
            _to_field_set(item, elem, item_path, out)
            out.add(item_path)
        return
    if _is_atomic(schema, kind):
        out.add(path)
        return
    if not isinstance(value, dict):
        return
    for key, sub in value.items():
        sub_schema = schema.child(key)
        sub_path = (*path, ("f", key))
        if sub_schema is None:
            raise TypedError(sub_path, "field not declared in schema")
        _to_field_set(sub, sub_schema, sub_path, out)
        if sub is None or (isinstance(sub, dict) and not sub) or key not in schema.fields:
            out.add(sub_path)


# ---- merge walker (Compare and Merge) -------------------------------------------------------------------


@dataclass
class Comparison:
    added: set[Path]
    modified: set[Path]
    removed: set[Path]

    def changed(self) -> set[Path]:
        return self.added | self.modified


class _Walker:
    """``mergingWalker``: ``rule`` runs on leaves, ``hook`` after every walked (non-leaf) node."""

    def __init__(
        self,
        rule: Callable[[Path, Any, Any], Any],
        hook: Callable[[Path, Any, Any], None] | None,
        *,
        build: bool,
        comparison: Comparison | None = None,
    ) -> None:
        self.rule = rule
        self.hook = hook
        self.build = build
        self.comparison = comparison

    def merge(self, lhs: Any, rhs: Any, schema: Schema, path: Path) -> Any:
        """The merged value (ABSENT for none) of one node."""
        if lhs is not ABSENT and rhs is not ABSENT and type(lhs) is type(rhs) and lhs == rhs:
            # Identical subtrees: nothing is added, modified or removed, and the merge is either side.
            return rhs if self.build else ABSENT
        if self.build and lhs is ABSENT:
            self._check_subtree(rhs, schema, path)
            return rhs
        if self.build and rhs is ABSENT:
            return lhs
        if self.comparison is not None and (lhs is ABSENT or rhs is ABSENT):
            # A subtree on one side only: every node of it is added (or removed), as the walk would find.
            if lhs is ABSENT:
                _enumerate(rhs, schema, path, self.comparison.added, allow_duplicates=False)
            else:
                _enumerate(lhs, schema, path, self.comparison.removed, allow_duplicates=True)
            return ABSENT
        kind = _kind(schema, rhs if rhs is not ABSENT else lhs)
        deduced = schema.kind == "deduced" and lhs is not ABSENT and rhs is not ABSENT
        if deduced and _kind(schema, lhs) != kind:
            return self.rule(path, lhs, rhs)
        _check(schema, kind, lhs, path)
        _check(schema, kind, rhs, path)
        if kind == "scalar":
            return self.rule(path, lhs, rhs)
        if kind == "list":
            lhs_list = lhs if isinstance(lhs, list) else None
            rhs_list = rhs if isinstance(rhs, list) else None
            if _is_atomic(schema, kind) or (not lhs_list and not rhs_list):
                return self.rule(path, lhs, rhs)
            out = self._list(schema, lhs_list, rhs_list, path)
        else:
            lhs_map = lhs if isinstance(lhs, dict) else None
            rhs_map = rhs if isinstance(rhs, dict) else None
            if _is_atomic(schema, kind) or (not lhs_map and not rhs_map):
                return self.rule(path, lhs, rhs)
            out = self._map(schema, lhs_map, rhs_map, path)
        if self.hook is not None:
            self.hook(path, lhs, rhs)
        return out

    def _check_subtree(self, value: Any, schema: Schema, path: Path) -> None:
        """A value taken whole (the other side has none) must still fit its schema."""
        to_field_set_into(value, schema, path, set())

    def _map(self, schema: Schema, lhs: dict[str, Any] | None, rhs: dict[str, Any] | None, path: Path) -> Any:
        out: dict[str, Any] = {}
        left = lhs or {}
        right = rhs or {}
        keys = list(left)
        keys.extend(k for k in right if k not in left)
        for key in keys:
            sub_path = (*path, ("f", key))
            sub_schema = schema.child(key)
            if sub_schema is None:
                raise TypedError(sub_path, "field not declared in schema")
            merged = self.merge(left.get(key, ABSENT), right.get(key, ABSENT), sub_schema, sub_path)
            if self.build and merged is not ABSENT:
                out[key] = merged
        return out if out else ABSENT

    def _list(self, schema: Schema, lhs: list[Any] | None, rhs: list[Any] | None, path: Path) -> Any:
        elem = _elem(schema)
        rhs_pes, observed_rhs = _index(schema, rhs or [], path, allow_duplicates=False)
        lhs_pes, observed_lhs = _index(schema, lhs or [], path, allow_duplicates=True)
        shared = [pe for pe in rhs_pes if pe in observed_lhs]
        shared_index = 0
        next_shared = shared[0] if shared else None
        merged_rhs: set[PathElement] = set()
        out: list[Any] = []

        def item(pe: PathElement, left: Any, right: Any) -> None:
            merged = self.merge(left, right, elem, (*path, pe))
            if self.build and merged is not ABSENT:
                out.append(merged)

        li = ri = 0
        while li < len(lhs_pes) or ri < len(rhs_pes):
            if li < len(lhs_pes) and ri < len(rhs_pes):
                pe = lhs_pes[li]
                if pe == rhs_pes[ri]:
                    merged_rhs.add(pe)
                    item(pe, observed_lhs[pe], observed_rhs[pe])
                    li += 1
                    ri += 1
                    shared_index += 1
                    next_shared = shared[shared_index] if shared_index < len(shared) else None
                    continue
                if pe in observed_rhs and next_shared is not None and next_shared != pe:
                    li += 1
                    continue
            if li < len(lhs_pes):
                pe = lhs_pes[li]
                if pe not in observed_rhs:
                    item(pe, (lhs or [])[li], ABSENT)
                    li += 1
                    continue
                if pe in merged_rhs:
                    li += 1
                    continue
            if ri < len(rhs_pes):
                pe = rhs_pes[ri]
                merged_rhs.add(pe)
                item(pe, observed_lhs.get(pe, ABSENT), observed_rhs[pe])
                ri += 1
                if next_shared is not None and next_shared == pe:
                    shared_index += 1
                    next_shared = shared[shared_index] if shared_index < len(shared) else None
        return out if out else ABSENT


def _enumerate(value: Any, schema: Schema, path: Path, out: set[Path], *, allow_duplicates: bool) -> None:
    """Every node the merge walk visits in a subtree that only one side has (leaves and walked nodes)."""
    kind = _kind(schema, value)
    _check(schema, kind, value, path)
    if kind == "scalar" or not value or _is_atomic(schema, kind):
        out.add(path)
        return
    if kind == "list":
        elem = _elem(schema)
        seen: set[PathElement] = set()
        for item in value:
            pe = item_element(schema, item, path)
            if pe in seen and not allow_duplicates:
                raise TypedError(path, f"duplicate entries for key {element_to_string(pe)}")
            seen.add(pe)
            _enumerate(item, elem, (*path, pe), out, allow_duplicates=allow_duplicates)
    else:
        for key, sub in value.items():
            sub_schema = schema.child(key)
            sub_path = (*path, ("f", key))
            if sub_schema is None:
                raise TypedError(sub_path, "field not declared in schema")
            _enumerate(sub, sub_schema, sub_path, out, allow_duplicates=allow_duplicates)
    out.add(path)


def added_fields_v1(value: Any, schema: Schema) -> dict[str, Any]:
    """The FieldsV1 of a subtree only the new side has (:func:`_enumerate`'s nodes, encoded directly)."""
    kind = _kind(schema, value)
    _check(schema, kind, value, ())
    if kind == "scalar" or not value or _is_atomic(schema, kind):
        return {}
    children: list[tuple[tuple[int, str], str, dict[str, Any]]] = []
    if kind == "list":
        elem = _elem(schema)
        seen: set[PathElement] = set()
        for item in value:
            pe = item_element(schema, item)
            if pe in seen:
                raise TypedError((), f"duplicate entries for key {element_to_string(pe)}")
            seen.add(pe)
            children.append((element_key(pe), encode_element(pe), added_fields_v1(item, elem)))
    else:
        for key, sub in value.items():
            sub_schema = schema.child(key)
            if sub_schema is None:
                raise TypedError((("f", key),), "field not declared in schema")
            children.append(((0, key), "f:" + key, added_fields_v1(sub, sub_schema)))
    children.sort(key=lambda c: c[0])
    out: dict[str, Any] = {".": {}}
    for _, encoded, sub_fields in children:
        out[encoded] = sub_fields
    return out


def _index(
    schema: Schema, items: list[Any], path: Path, *, allow_duplicates: bool
) -> tuple[list[PathElement], dict[PathElement, Any]]:
    pes: list[PathElement] = []
    observed: dict[PathElement, Any] = {}
    for item in items:
        pe = item_element(schema, item, path)
        if pe in observed:
            if not allow_duplicates:
                raise TypedError(path, f"duplicate entries for key {element_to_string(pe)}")
            observed[pe] = None  # duplicated items are not merged with the new value
        else:
            observed[pe] = item
        pes.append(pe)
    return pes, observed


def compare(lhs: Any, rhs: Any, schema: Schema) -> Comparison:
    """``TypedValue.Compare``: which fields ``rhs`` added, modified and removed relative to ``lhs``."""
    result = Comparison(set(), set(), set())

    def rule(path: Path, left: Any, right: Any) -> Any:
        if left is ABSENT:
            result.added.add(path)
        elif right is ABSENT:
            result.removed.add(path)
        elif left != right or (type(left) is not type(right) and (left is None or right is None)):
            result.modified.add(path)
        return ABSENT

    def hook(path: Path, left: Any, right: Any) -> None:
        if left is ABSENT:
            result.added.add(path)
        elif right is ABSENT:
            result.removed.add(path)

    _Walker(rule, hook, build=False, comparison=result).merge(lhs, rhs, schema, ())
    return result


def merge(lhs: Any, rhs: Any, schema: Schema) -> Any:
    """``TypedValue.Merge``: ``rhs`` merged into ``lhs``; leaves (and atomic values) of ``rhs`` win."""

    def rule(path: Path, left: Any, right: Any) -> Any:
        return right if right is not ABSENT else left

    out = _Walker(rule, None, build=True).merge(lhs, rhs, schema, ())
    return {} if out is ABSENT else out


# ---- RemoveItems ----------------------------------------------------------------------------------------


def remove_items(value: Any, paths: FieldSet, schema: Schema) -> Any:
    """``TypedValue.RemoveItems``: ``value`` without the members of ``paths`` (and what is below them).

    A map or list left empty becomes None (a JSON null), as in structured-merge-diff.
    """
    kind = _kind(schema, value)
    if kind == "scalar":
        return value
    if kind == "list":
        if not isinstance(value, list) or not value:
            return None
        if _is_atomic(schema, kind):
            return None
        elem = _elem(schema)
        items: list[Any] = []
        for item in value:
            pe = item_element(schema, item)
            if (pe,) in paths:
                continue
            subset = with_prefix(paths, pe)
            items.append(remove_items(item, subset, elem) if subset else item)
        return items or None
    if not isinstance(value, dict) or not value:
        return None
    if _is_atomic(schema, kind):
        return None
    out: dict[str, Any] = {}
    for key, sub in value.items():
        pe = ("f", key)
        if (pe,) in paths:
            continue
        subset = with_prefix(paths, pe)
        if subset:
            sub_schema = schema.child(key)
            sub = remove_items(sub, subset, sub_schema if sub_schema is not None else DEDUCED)
        out[key] = sub
    return out or None


def ensure_named_fields(paths: Iterable[Path], schema: Schema) -> FieldSet:
    """``Set.EnsureNamedFieldsAreMembers``: every declared struct field above a member is a member too."""
    out: set[Path] = set()
    for path in paths:
        out.add(path)
        node: Schema | None = schema
        for depth, (kind, name) in enumerate(path[:-1]):
            if node is None:
                break
            if kind == "f":
                if node.kind == "map" and name in node.fields:
                    out.add(path[: depth + 1])
                node = node.child(name) if node.kind in ("map", "deduced") else None
            elif kind == "k" and node.kind == "list":
                node = node.elem
            else:
                node = None
    return frozenset(out)


def drop_nulls(value: Any, schema: Schema) -> Any:
    """Nulls left by pruning dropped where the schema does not keep unknown values (kube prunes nulls of
    non-nullable fields); inside deduced values nulls are data."""
    if schema.kind == "deduced":
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            if sub is None:
                continue
            sub_schema = schema.child(key)
            out[key] = drop_nulls(sub, sub_schema) if sub_schema is not None else sub
        return out
    if isinstance(value, list) and schema.kind == "list":
        elem = _elem(schema)
        return [drop_nulls(item, elem) for item in value]
    return value
