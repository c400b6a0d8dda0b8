"""Workflow parameters of an artifact (SPEC §4.1), values always strings, names unique.

Order: the fixed ones (`srcType`, `srcRemoteURL`, `dstType`, `dstRemoteURL`, `srcSecret`, `dstSecret`),
then the artifact `spec` flattened under the prefix `spec` (sorted keys at every level, each capitalised;
list items indexed; numbers as written; booleans `true`/`false`; null → ""), then the ArtifactType's
parameters. A later source wins over an earlier one of the same name and takes the earlier one's position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from controllers.kube.codec import JSONNumber

__all__ = ["build_parameters", "flatten_spec", "scalar"]


def scalar(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, JSONNumber):
        return value.text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return str(value)


def _capitalise(key: str) -> str:
    return key[:1].upper() + key[1:]


def flatten_spec(value: Any, prefix: str = "spec") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from flatten_spec(value[key], prefix + _capitalise(str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from flatten_spec(item, f"{prefix}{i}")
    else:
        yield prefix, scalar(value)


def build_parameters(
    *,
    src_type: str,
    src_remote_url: str,
    dst_type: str,
    dst_remote_url: str,
    src_secret: bool,
    dst_secret: bool,
    spec: Any,
    type_parameters: Iterable[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    fixed = (
        ("srcType", src_type),
        ("srcRemoteURL", src_remote_url),
        ("dstType", dst_type),
        ("dstRemoteURL", dst_remote_url),
        ("srcSecret", "true" if src_secret else "false"),
        ("dstSecret", "true" if dst_secret else "false"),
    )
    for source in (fixed, flatten_spec(spec if spec is not None else {}), type_parameters):
        for name, value in source:
            merged[name] = value  # an existing key keeps its position
    return [{"name": n, "value": v} for n, v in merged.items()]
