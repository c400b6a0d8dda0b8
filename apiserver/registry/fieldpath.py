"""Field paths and field sets as structured-merge-diff (``sigs.k8s.io/structured-merge-diff/v4/fieldpath``)
has them, with their ``FieldsV1`` encoding and the text kube prints in conflict messages.

A path element is a tuple: ``("f", name)`` for a map key or struct field, ``("k", ((key, value), ...))``
for an item of a list keyed by its map keys (sorted by key name), ``("v", value)`` for an item of a set
and ``("i", index)`` for a position. A path is a tuple of elements and a field set is a ``frozenset`` of
paths (its *members*: a member with members below it is encoded with ``".": {}`` in FieldsV1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

PathElement = tuple[str, Any]
Path = tuple[PathElement, ...]
FieldSet = frozenset[Path]

EMPTY: FieldSet = frozenset()


def field(name: str) -> PathElement:
    return ("f", name)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def element_to_string(pe: PathElement) -> str:
    """``PathElement.String()``: ``.name``, ``[type="Ready"]``, ``[="x"]``, ``[0]``."""
    kind, value = pe
    if kind == "f":
        return "." + str(value)
    if kind == "k":
        return "[" + ",".join(f"{name}={_json(v)}" for name, v in value) + "]"
    if kind == "v":
        return f"[={_json(value)}]"
    return f"[{value}]"


def path_to_string(path: Path) -> str:
    return "".join(element_to_string(pe) for pe in path)


def element_key(pe: PathElement) -> tuple[int, str]:
    """structured-merge-diff's order of path elements: fields, keys, values, indexes."""
    kind, value = pe
    order = {"f": 0, "k": 1, "v": 2, "i": 3}[kind]
    if kind == "f":
        return order, str(value)
    if kind == "i":
        return order, f"{int(value):020d}"
    return order, _json(dict(value) if kind == "k" else value)


def encode_element(pe: PathElement) -> str:
    kind, value = pe
    if kind == "f":
        return "f:" + str(value)
    if kind == "k":
        return "k:" + _json(dict(value))
    if kind == "v":
        return "v:" + _json(value)
    return f"i:{value}"


def _decode_element(text: str) -> PathElement:
    kind, _, rest = text.partition(":")
    if kind == "f":
        return ("f", rest)
    if kind == "k":
        decoded = orjson.loads(rest)
        if not isinstance(decoded, dict):
            raise ValueError(f"invalid key element {text!r}")
        return ("k", tuple(sorted((str(k), _hashable(v)) for k, v in decoded.items())))
    if kind == "v":
        return ("v", _hashable(orjson.loads(rest)))
    if kind == "i":
        return ("i", int(rest))
    raise ValueError(f"invalid path element {text!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``FieldsV1`` object of a field set (members with children get ``".": {}``)."""
    root: dict[PathElement, Any] = {}
    members: set[Path] = set()
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
        members.add(path)
    return _emit(root, (), members)


def _emit(node: dict[PathElement, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix and node and prefix in members:
        out["."] = {}
    for pe in sorted(node, key=element_key):
        out[encode_element(pe)] = _emit(node[pe], (*prefix, pe), members)
    return out


def from_fields_v1(fields: Any) -> FieldSet:
    """The field set of a ``FieldsV1`` object; ValueError on a malformed one."""
    out: set[Path] = set()
    if not isinstance(fields, Mapping):
        if fields is None:
            return EMPTY
        raise ValueError("FieldsV1 must be an object")
    _parse(fields, (), out)
    return frozenset(out)


def _parse(node: Mapping[str, Any], prefix: Path, out: set[Path]) -> None:
    for key, sub in node.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, _decode_element(str(key)))
        if not isinstance(sub, Mapping):
            raise ValueError("FieldsV1 values must be objects")
        if not sub:
            out.add(path)
        else:
            _parse(sub, path, out)


def with_prefix(paths: Iterable[Path], pe: PathElement) -> FieldSet:
    """``Set.WithPrefix``: the paths below ``pe``, without it."""
    return frozenset(p[1:] for p in paths if len(p) > 1 and p[0] == pe)


def exclude_prefixes(paths: Iterable[Path], prefixes: Iterable[Path]) -> FieldSet:
    """``NewExcludeSetFilter``: drop every path at or below one of ``prefixes``."""
    excluded = tuple(prefixes)
    if not excluded:
        return frozenset(paths)
    if all(len(x) == 1 for x in excluded):
        first = {x[0] for x in excluded}
        return frozenset(p for p in paths if not p or p[0] not in first)
    return frozenset(p for p in paths if not any(p[: len(x)] == x for x in excluded))
