"""JSON merge patch (RFC 7386), the one implementation the API server and the fake kube client share."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` merged in: objects merge key by key, ``null`` deletes a key, anything
    else replaces. Neither argument is modified; the result shares no mutable value with ``patch``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
