"""JSON encoding of wire objects, below every layer that writes them (storage results, responses, watch
events): orjson, with the standard library's encoder as a fallback for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["encode_json"]


def encode_json(body: Any) -> bytes:
    """JSON bytes; deeper than orjson nests (254 levels) the standard library's encoder takes over.

    Writes bound objects to ``limits.MAX_OBJECT_DEPTH``, but objects stored before that limit existed may
    nest deeper: a list (or watch event) holding one of them must still be served, not a 500.
    """
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
