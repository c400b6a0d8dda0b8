"""Duplicate keys in a JSON request body, for ``fieldValidation=Strict|Warn`` (kube's strict decoding).

kube-apiserver decodes bodies with ``sigs.k8s.io/json``'s ``DisallowDuplicateFields``: a key that appears
twice in one object is a strict error ``duplicate field "<path>"`` (path as ``a.b[0].c``, once per path),
which Strict answers with 400 ``strict decoding error: …`` and Warn turns into a ``Warning`` header. orjson
(the body's decoder) keeps the last value silently, so the duplicates are found by a second parse with the
standard library's C scanner and an ``object_pairs_hook`` (~10 µs for an Order; paths are worked out only
when there is a duplicate, which is rare).
"""

from __future__ import annotations

import json
from typing import Any

from apiserver.negotiation import JSON, media_type_of

__all__ = ["duplicate_fields"]


class _Found:
    def __init__(self) -> None:
        self.duplicates: dict[int, list[str]] = {}
        self.keep: list[dict[str, Any]] = []

    def hook(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            dups: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in dups:
                    dups.append(key)
                seen.add(key)
            self.duplicates[id(obj)] = dups
            self.keep.append(obj)  # ids stay valid until the walk
        return obj


def _walk(value: Any, path: str, found: _Found, out: list[str]) -> None:
    if isinstance(value, dict):
        dups = found.duplicates.get(id(value), ())
        for key in dups:
            out.append(f"{path}.{key}" if path else key)
        for key, child in value.items():
            _walk(child, f"{path}.{key}" if path else key, found, out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _walk(child, f"{path}[{i}]", found, out)


def duplicate_fields(raw: bytes, content_type: str | None) -> list[str]:
    """Paths of the keys that appear more than once in one object of a JSON body (``[]`` for YAML, which
    the YAML decoder checks, and for a body that is not valid JSON, which the body's decoder rejects)."""
    if media_type_of(content_type) not in ("", JSON):
        return []
    found = _Found()
    try:
        doc = json.loads(raw, object_pairs_hook=found.hook)
    except (ValueError, RecursionError):
        return []
    if not found.duplicates:
        return []
    out: list[str] = []
    _walk(doc, "", found, out)
    return out
