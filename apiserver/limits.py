"""What one request may cost: kube-apiserver's limits, and the one ARC adds (nesting depth).

A single request must never be able to stop the server for everyone, so every input whose cost can grow
faster than its size is bounded here, before the expensive step:

- **Request bodies** are read up to ``MAX_REQUEST_BODY_BYTES`` (kube's ``MaxRequestBodyBytes``, 3 MiB; more
  is a 413 before anything is decoded).
- **JSON patch** (``k8s.io/apiserver/pkg/endpoints/handlers/patch.go``): at most
  ``MAX_JSON_PATCH_OPERATIONS`` operations (more is a 413), and the values its ``copy`` operations
  duplicate may add up to ``JSON_PATCH_MAX_COPY_BYTES`` (kube's ``JSONPatchMaxCopyBytes``,
  evanphx/json-patch's ``AccumulatedCopySizeLimit``; more is a 422). The copies are counted *while* the
  patch is applied, one operation at a time, so a doubling chain of copies is refused long before its
  result exists.
- **Nesting depth** (ARC's own): an object may nest at most ``MAX_OBJECT_DEPTH`` objects and arrays. Go's
  decoders allow 10,000 levels; ARC's JSON encoder (orjson) stops at 254, and a list or a watch event
  wraps every item in up to five more levels — an object accepted deeper than that could be written but
  never listed again. The limit is checked on every write (create, update, patch, ``/status``), as a 422
  naming the field, so what is stored can always be read back. Patch documents are bounded by
  ``MAX_DECODE_DEPTH`` before they are applied (their application recurses).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from api import fields as f

MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
"""kube's ``MaxRequestBodyBytes`` (``k8s.io/apiserver/pkg/server/config.go``)."""
MAX_JSON_PATCH_OPERATIONS = 10_000
"""kube's ``maxJSONPatchOperations``."""
JSON_PATCH_MAX_COPY_BYTES = 3 * 1024 * 1024
"""kube's ``JSONPatchMaxCopyBytes``: what the ``copy`` operations of one patch may duplicate in total."""
MAX_OBJECT_DEPTH = 128
"""How deep an object may nest (its root is level 1); see the module docstring."""
MAX_DECODE_DEPTH = 2 * MAX_OBJECT_DEPTH
"""How deep a request document may nest before it is even looked at (YAML bodies, patches)."""
MAX_LIST_LIMIT = 2**63 - 1
"""``limit`` is an int64 in kube; larger values are a 400 from its query decoder."""


class PatchTooLargeError(Exception):
    """The patch has more operations than kube allows (413)."""


class PatchCopyLimitError(Exception):
    """The patch's ``copy`` operations duplicate more than kube allows (422)."""


def nesting_depth(value: Any) -> int:
    """How many objects and arrays nest in ``value`` at the deepest point (a scalar is 0); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _deeper_than(obj: Any, limit: int) -> bool:
    """Whether a container in ``obj`` sits deeper than ``limit`` levels (the root is level 1)."""
    if limit < 1:
        return True
    stack: list[tuple[Any, int]] = [(obj, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def too_deep_field(obj: Any, limit: int = MAX_OBJECT_DEPTH) -> f.FieldError | None:
    """The first field of ``obj`` nested deeper than ``limit`` levels, as a 422 cause; else None.

    Iterative, so a hostile depth costs a walk, never Python's recursion limit. Every create and update
    walks its body here, so the walk first only counts levels (no field paths: a quarter of the cost of
    parsing a create was building paths of fields that were never too deep) and names the field only when
    one is too deep.
    """
    if not _deeper_than(obj, limit):
        return None
    stack: list[tuple[Any, f.FieldPath, int]] = [(obj, f.FieldPath(), 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > limit:
            return f.invalid(path, f.OMIT_VALUE, f"must not be nested more than {limit} levels deep")
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, dict | list):
                    stack.append((child, path.child(str(key)), depth + 1))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                if isinstance(child, dict | list):
                    stack.append((child, path.index(i), depth + 1))
    return None


def _encoded_size(value: Any) -> int:
    """The JSON size of ``value`` (what evanphx/json-patch counts for a copy)."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        pass
    try:  # deeper than orjson nests, or integers beyond 64 bits
        return len(json.dumps(value, separators=(",", ":")))
    except (RecursionError, TypeError, ValueError):
        return JSON_PATCH_MAX_COPY_BYTES + 1


def apply_json_patch(document: Any, operations: Sequence[Any]) -> Any:
    """RFC 6902 with kube's limits; the document is copied first (the caller's stays untouched).

    Raises ``PatchTooLargeError`` (more than 10,000 operations), ``PatchCopyLimitError`` (copies beyond
    3 MiB, checked before each copy is made) and jsonpatch's own errors for patches that do not apply.
    """
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchTooLargeError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}"
        )
    for operation in operations:
        if isinstance(operation, dict) and nesting_depth(operation.get("value")) > MAX_DECODE_DEPTH:
            raise jsonpatch.InvalidJsonPatch(f"value nested more than {MAX_DECODE_DEPTH} levels deep")
    doc = copy.deepcopy(document)
    copied = 0
    for operation in operations:
        source_pointer = operation.get("from") if isinstance(operation, dict) else None
        if isinstance(source_pointer, str) and operation.get("op") == "copy":
            source = jsonpointer.resolve_pointer(doc, source_pointer)
            copied += _encoded_size(source)
            if copied > JSON_PATCH_MAX_COPY_BYTES:
                raise PatchCopyLimitError(
                    "Unable to complete the copy, the accumulated size increase of copy is "
                    f"{copied}, exceeding the limit {JSON_PATCH_MAX_COPY_BYTES}"
                )
        doc = jsonpatch.JsonPatch([operation]).apply(doc, in_place=True)
    return doc


def path_segment_problems(name: str) -> list[str]:
    """kube's ``path.IsValidPathSegmentName``: what makes ``name`` unusable as a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]
