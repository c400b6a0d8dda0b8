"""Unknown-field detection against a kind's schema, for `fieldValidation=Strict|Warn|Ignore`.

The models ignore unknown fields (reads stay forward-compatible); the API server calls
`unknown_fields(Order, body)` on request bodies and, per the request's `fieldValidation`:
- `Strict`: 400 BadRequest with `strict_decoding_message(paths)`
  (`strict decoding error: unknown field "spec.x", unknown field "spec.y"`);
- `Warn`: one `Warning: 299 - "unknown field \"spec.x\""` header per path (`unknown_field_warning`);
- `Ignore`: nothing.

Paths are the ones kube-apiserver reports for custom resources (sorted; list items `[i]`, map keys
`.key`): `spec.artifacts[1].foo`, `metadata.bogus`, `status.artifactWorkflows.0123abcd.x`. Free-form
values (an artifact's `spec`, `managedFields[].fieldsV1`) accept anything. Only the camelCase wire names
are known fields: a snake_case key is reported as unknown even though the models would accept it.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final, Union

from pydantic import BaseModel

from api.fields import go_quote

__all__ = ["duplicate_field_warning", "strict_decoding_message", "unknown_field_warning", "unknown_fields"]

# A node of the compiled schema: a model's fields, a list/dict of nodes, or None (anything goes).
_Node = Union["_ModelNode", "_ListNode", "_MapNode", None]


class _ModelNode:
    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, _Node] = {}


class _ListNode:
    __slots__ = ("item",)

    def __init__(self, item: _Node) -> None:
        self.item = item


class _MapNode:
    __slots__ = ("value",)

    def __init__(self, value: _Node) -> None:
        self.value = value


_SCALARS: Final = (str, int, float, bool, type(None))


def _node_for(annotation: Any) -> _Node:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _node_for(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        nodes = [_node_for(a) for a in typing.get_args(annotation) if a is not type(None)]
        real = [n for n in nodes if n is not None]
        return real[0] if len(real) == 1 and len(nodes) == 1 else None
    if origin in (list, Sequence, tuple):
        args = typing.get_args(annotation)
        return _ListNode(_node_for(args[0])) if args else None
    if origin in (dict, Mapping):
        args = typing.get_args(annotation)
        return _MapNode(_node_for(args[1])) if len(args) == 2 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _compile(annotation)
    return None


@functools.cache
def _compile(model: type[BaseModel]) -> _ModelNode:
    node = _ModelNode()
    for name, info in model.model_fields.items():
        node.fields[info.alias or name] = _node_for(info.annotation)
    return node


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _walk(value: Any, node: _Node, path: str, out: list[str]) -> None:
    if node is None:
        return
    if isinstance(node, _ModelNode):
        if not isinstance(value, Mapping):
            return
        for key, sub in value.items():
            if key in node.fields:
                _walk(sub, node.fields[key], _join(path, str(key)), out)
            else:
                out.append(_join(path, str(key)))
    elif isinstance(node, _ListNode):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, node.item, f"{path}[{i}]", out)
    elif isinstance(value, Mapping):
        for key, sub in value.items():
            _walk(sub, node.value, _join(path, str(key)), out)


def unknown_fields(model: type[BaseModel], data: Mapping[str, Any]) -> list[str]:
    """Paths of the fields in `data` (a wire-form dict) that `model`'s schema does not know, sorted."""
    out: list[str] = []
    _walk(data, _compile(model), "", out)
    out.sort()
    return out


def strict_decoding_message(paths: Sequence[str], duplicates: Sequence[str] = ()) -> str:
    """The BadRequest message for `fieldValidation=Strict` (duplicate keys, then unknown fields)."""
    problems = [duplicate_field_warning(p) for p in duplicates] + [unknown_field_warning(p) for p in paths]
    return "strict decoding error: " + ", ".join(problems)


def duplicate_field_warning(path: str) -> str:
    """The text of a duplicate key (`sigs.k8s.io/json`'s strict error), as a warning or in the 400."""
    return f"duplicate field {go_quote(path)}"


def unknown_field_warning(path: str) -> str:
    """The warning text for `fieldValidation=Warn` (the server sends it as `299 - "<text>"`)."""
    return f"unknown field {go_quote(path)}"
