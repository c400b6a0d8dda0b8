"""JSON decoding that keeps numbers exactly as the server wrote them.

An artifact's free `spec` is passed to workflows with numbers "exactly as written" (SPEC §4.1): `1e6` must
not become `1000000.0`. Integers already round-trip through `int`; any other number is decoded as a
`JSONNumber`, a `float` that remembers its text.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSONNumber", "dumps", "loads"]


class JSONNumber(float):
    """A non-integer JSON number; `text` is its literal as received."""

    text: str

    def __new__(cls, text: str) -> JSONNumber:
        obj = super().__new__(cls, text)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text


_DECODER = json.JSONDecoder(parse_float=JSONNumber)


def loads(raw: bytes | str) -> Any:
    return _DECODER.decode(raw.decode() if isinstance(raw, bytes) else raw)


def dumps(value: Any) -> str:
    """Compact JSON (numbers as received)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
