"""Strategic merge patch (``application/strategic-merge-patch+json``), as
``k8s.io/apimachinery/pkg/util/strategicpatch`` applies it on the server (``StrategicMergeMapPatch`` with
``MergeParallelList`` and ``IgnoreUnmatchedNulls``).

Maps merge key by key (``null`` deletes); a list merges item by item only when its schema says
``x-kubernetes-patch-strategy: merge`` — by ``x-kubernetes-patch-merge-key`` for lists of objects, as a set
for lists of scalars — and is replaced otherwise. Directives: ``$patch: replace|delete`` on a map or a
list item, ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>`` and ``$retainKeys``. The patch
metadata comes from ``api.structure`` (ARC's OpenAPI), which is also what kubectl reads to build the patch.
Fields the schema does not declare merge as plain maps and replace as lists (kube answers 500 for them;
``fieldValidation`` reports them after the patch).
"""

from __future__ import annotations

import copy
from typing import Any

from api.structure import DEDUCED, Schema
from apiserver.registry.typed import go_format

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"


class StrategicPatchError(ValueError):
    """A patch kube refuses; ``unprocessable`` ones are 422, the others 400."""

    def __init__(self, message: str, *, unprocessable: bool = False) -> None:
        super().__init__(message)
        self.unprocessable = unprocessable


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """``original`` with ``patch`` applied (neither is modified)."""
    return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), schema)


def _strategies(schema: Schema | None) -> tuple[bool, str]:
    """``extractRetainKeysPatchStrategy``: (retainKeys, the merge/replace strategy)."""
    if schema is None or not schema.patch_strategy:
        return False, ""
    parts = schema.patch_strategy.split(",")
    retain = "retainKeys" in parts
    rest = [p for p in parts if p != "retainKeys"]
    return retain, rest[0] if rest else ""


def _child(schema: Schema, key: str) -> Schema:
    found = schema.child(key) if schema.kind in ("map", "deduced") else None
    return found if found is not None else DEDUCED


def _item_schema(schema: Schema) -> Schema:
    return schema.elem if schema.kind == "list" and schema.elem is not None else DEDUCED


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            del patch[DIRECTIVE]
            return patch
        if directive == "delete":
            return {}
        raise StrategicPatchError(f"unknown patch type: {go_format(directive)} in map: {go_format(patch)}")
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, schema)
    for key in list(patch):
        if key not in patch:
            continue
        patch_value = patch[key]
        is_delete_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST, ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST)
            is_delete_list = True
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original or type(original[key]) is not type(patch_value):
            if not is_delete_list:
                _discard_nulls(patch_value)
                kept, keep = _remove_directives(patch_value)
                if keep:
                    original[key] = kept
                else:
                    original.pop(key, None)
            continue
        sub = _child(schema, key)
        _, strategy = _strategies(sub)
        current = original[key]
        if isinstance(current, dict):
            original[key] = patch_value if strategy == "replace" else _merge_map(current, patch_value, sub)
        elif isinstance(current, list):
            original[key] = _merge_slice_handler(current, patch_value, sub, strategy, is_delete_list)
        else:
            kept, keep = _remove_directives(patch_value)
            if keep:
                original[key] = kept
            else:
                original.pop(key, None)
    return original


def _extract_key(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise StrategicPatchError(error)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise StrategicPatchError(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS)
    keep = {v for v in retain if isinstance(v, str)}
    for key, value in patch.items():
        if value is None or key.startswith(DELETE_FROM_PRIMITIVE_LIST) or key.startswith(SET_ELEMENT_ORDER):
            continue
        if key not in keep:
            raise StrategicPatchError(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS)
    for key in list(original):
        if key not in keep:
            del original[key]


def _merge_set_element_order(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> None:
    """``mergePatchIntoOriginal``: lists with a ``$setElementOrder`` are merged first, then ordered."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise StrategicPatchError(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER)
        list_key = _extract_key(key, SET_ELEMENT_ORDER, ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER)
        found_original = list_key in original
        found_patch = list_key in patch
        original_list = original.get(list_key)
        patch_list = patch.get(list_key)
        if found_original and not isinstance(original_list, list):
            raise StrategicPatchError(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER)
        if found_patch and not isinstance(patch_list, list):
            raise StrategicPatchError(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER)
        sub = _child(schema, list_key)
        _, strategy = _strategies(sub)
        merge_key = sub.patch_merge_key
        _validate_with_order(patch_list or [], order, merge_key)
        if found_original and not found_patch:
            merged: list[Any] = list(original_list or [])
        elif found_patch and not found_original:
            kept, keep = _remove_directives(patch_list)
            if not keep:
                continue
            merged = kept
        elif found_original and found_patch:
            merged = _merge_slice_handler(original_list or [], patch_list or [], sub, strategy, False)
        else:
            continue
        if merge_key:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = _partition_primitives(merged, order)
        element_is_map = _element_is_map(original_list or [], patch_list or [])
        original[list_key] = _normalize_order(
            patch_items, server_only, order, original_list or [], merge_key, element_is_map
        )
        patch.pop(list_key, None)


def _validate_with_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    if not order or not patch_list:
        return
    items = [v for v in patch_list if not (isinstance(v, dict) and v.get(DIRECTIVE) == "delete")]
    if merge_key:
        for v in patch_list:
            if not isinstance(v, dict):
                raise StrategicPatchError("expected a map[string]interface {}, but received a " + _go_type(v))
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[oi], merge_key):
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise StrategicPatchError(
            f"The order in patch list:\n{go_format(patch_list)}\n doesn't match {SET_ELEMENT_ORDER} list:\n"
            f"{go_format(order)}\n"
        )


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    return "<nil>"


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return bool(left == right)
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise StrategicPatchError("expected a map[string]interface {}, but received a " + _go_type(right))
    for item in (left, right):
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return bool(left[merge_key] == right[merge_key])


def _remove_directives(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for key in list(value):
            kept, keep = _remove_directives(value[key])
            if keep:
                value[key] = kept
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        out = []
        for item in value:
            kept, keep = _remove_directives(item)
            if keep:
                out.append(kept)
        return out, True
    return value, True


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in list(value):
            if value[key] is None:
                del value[key]
            else:
                _discard_nulls(value[key])
    elif isinstance(value, list):
        for item in value:
            _discard_nulls(item)


def _merge_slice_handler(
    original: list[Any], patch: Any, schema: Schema, strategy: str, is_delete_list: bool
) -> list[Any]:
    if not isinstance(patch, list):
        raise StrategicPatchError("expected a []interface {}, but received a " + _go_type(patch))
    if strategy == "merge" or is_delete_list:
        return _merge_slice(original, patch, schema, schema.patch_merge_key, is_delete_list)
    return patch


def _element_is_map(*lists: list[Any]) -> bool:
    """``sliceElementType``: the one element type of the lists (maps or scalars)."""
    seen: type | None = None
    for items in lists:
        for item in items:
            current = type(item)
            if seen is None:
                seen = current
                if isinstance(item, list):
                    raise StrategicPatchError(ERR_NO_LIST_OF_LISTS, unprocessable=True)
            elif seen is not current and not (
                issubclass(seen, (int, float)) and issubclass(current, (int, float))
            ):
                raise StrategicPatchError(f"list element types are not identical: {go_format(list(lists))}")
    if seen is None:
        raise StrategicPatchError("no elements in any of the given slices")
    return seen is dict


def _merge_slice(
    original: list[Any], patch: list[Any], schema: Schema, merge_key: str, is_delete_list: bool
) -> list[Any]:
    if not original and not patch:
        return original
    is_map = _element_is_map(original, patch)
    if not is_map:
        if is_delete_list:
            return [v for v in original if v not in patch]
        merged = _dedupe_scalars([*original, *patch])
    else:
        if not merge_key:
            raise StrategicPatchError("cannot merge lists without merge key for " + "list")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_without_special_elements(original, patch, merge_key, _item_schema(schema))
    if merge_key:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = _partition_primitives(merged, patch)
    return _normalize_order(patch_items, server_only, patch, original, merge_key, is_map)


def _dedupe_scalars(items: list[Any]) -> list[Any]:
    """``deduplicateScalars``: Go's swap-with-last removal, order included."""
    s = list(items)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if s[i] == s[j]:
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _merge_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    without: list[Any] = []
    replace = False
    for item in patch:
        directive = item.get(DIRECTIVE, None) if isinstance(item, dict) else None
        if not isinstance(item, dict) or DIRECTIVE not in item:
            without.append(item)
            continue
        if directive == "delete":
            if merge_key not in item:
                raise StrategicPatchError(
                    f"map: {go_format(item)} does not contain declared merge key: {merge_key}"
                )
            original = [
                o for o in original if not (isinstance(o, dict) and o.get(merge_key, _NO) == item[merge_key])
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StrategicPatchError("merging lists cannot yet be specified in the patch")
        else:
            raise StrategicPatchError(f"unknown patch type: {go_format(directive)} in map: {go_format(item)}")
    if replace:
        return without, []
    return original, without


_NO = object()


def _has_key(item: Any, merge_key: str, value: Any) -> bool:
    return isinstance(item, dict) and item.get(merge_key, _NO) == value


def _no_merge_key(item: Any, merge_key: str) -> StrategicPatchError:
    return StrategicPatchError(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")


def _bad_arg(item: Any) -> StrategicPatchError:
    return StrategicPatchError("expected a map[string]interface {}, but received a " + _go_type(item))


def _merge_without_special_elements(
    original: list[Any], patch: list[Any], merge_key: str, schema: Schema
) -> list[Any]:
    out = list(original)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        index = next(
            (
                i
                for i, o in enumerate(out)
                if isinstance(o, dict) and o.get(merge_key, _NO) == item[merge_key]
            ),
            None,
        )
        if index is not None:
            out[index] = _merge_map(out[index], item, schema)
        else:
            out.append(item)
    return out


def _partition_maps(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg(item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        found = any(isinstance(b, dict) and b.get(merge_key, _NO) == item[merge_key] for b in by)
        (in_patch if found else server_only).append(item)
    return in_patch, server_only


def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    in_patch = [v for v in items if v in by]
    server_only = [v for v in items if v not in by]
    return in_patch, server_only


def _index(items: list[Any], value: Any, merge_key: str, is_map: bool) -> int:
    def key(item: Any) -> Any:
        if is_map:
            return item.get(merge_key) if isinstance(item, dict) else None
        return item

    wanted = key(value)
    for i, item in enumerate(items):
        if key(item) == wanted:
            return i
    return -1


def _normalize_slice_order(items: list[Any], order: list[Any], merge_key: str, is_map: bool) -> list[Any]:
    to_delete: list[Any] = []
    if is_map:
        for item in [*items, *order]:
            if not isinstance(item, dict):
                raise StrategicPatchError(
                    "expected a map[string]interface {}, but received a " + _go_type(item)
                )
            if merge_key not in item:
                raise StrategicPatchError(
                    f"map: {go_format(item)} does not contain declared merge key: {merge_key}"
                )
        keep = [v for v in items if v.get(DIRECTIVE) != "delete"]
        to_delete = [v for v in items if v.get(DIRECTIVE) == "delete"]
        items = keep
    # Go's sort.SliceStable with "less = both found and before, else true": insertion-sort semantics.
    out = list(items)
    for i in range(1, len(out)):
        j = i
        while j > 0 and _less(out[j], out[j - 1], order, merge_key, is_map):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out + to_delete


def _less(a: Any, b: Any, order: list[Any], merge_key: str, is_map: bool) -> bool:
    ia = _index(order, a, merge_key, is_map)
    if ia >= 0:
        ib = _index(order, b, merge_key, is_map)
        if ib >= 0:
            return ia < ib
    return True


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    is_map: bool,
) -> list[Any]:
    patch_items = _normalize_slice_order(patch_items, patch_order, merge_key, is_map)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, is_map)
    return _merge_sorted(server_only, patch_items, server_order, merge_key, is_map)


def _merge_sorted(
    left: list[Any], right: list[Any], server_order: list[Any], merge_key: str, is_map: bool
) -> list[Any]:
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, is_map)
            ri = _index(server_order, right[j], merge_key, is_map)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
