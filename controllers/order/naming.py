"""SPEC §4.1's hash and naming rules: the artifact hash, ArtifactWorkflow names, label values.

The artifact hash is the first 16 hex characters of SHA-256 over the canonical JSON (keys sorted,
separators `,` `:`, no spaces, non-ASCII kept) of
`[namespace, type, spec, srcName, srcGeneration, dstName, dstGeneration, srcSecretHash, dstSecretHash,
lastForceAt]`, with an eleventh element, the scheduled time, for an artifact that has run on its schedule
(`schedule.py`; an unscheduled artifact keeps the ten-element hash of SPEC). A Secret's hash is keyed
(HMAC-SHA-256 with the installation's hash key, `hashkey.py`):
ArtifactWorkflow names are readable by everyone who may list them, and an unkeyed hash of credentials
would let them test password guesses offline. Numbers are written as they were received
(`controllers.kube.codec.JSONNumber`), so the hash of `1e6` is not the hash of `1000000.0`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from controllers.order.parameters import scalar

__all__ = [
    "MAX_NAME",
    "artifact_hash",
    "canonical_json",
    "label_value",
    "secret_hash",
    "workflow_name",
]

MAX_NAME: Final = 63
HASH_LEN: Final = 16


def canonical_json(value: Any) -> str:
    """Keys sorted, `,`/`:` separators, no spaces, non-ASCII kept, numbers as received."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool | int | float):
        return scalar(value)  # the same literals as workflow parameters (JSONNumber is a float)
    if isinstance(value, Mapping):
        items = sorted(value.items())
        return "{" + ",".join(f"{canonical_json(str(k))}:{canonical_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    raise TypeError(f"not JSON: {type(value).__name__}")


def artifact_hash(
    *,
    namespace: str,
    type: str,
    spec: Any,
    src_name: str,
    src_generation: int | None,
    dst_name: str,
    dst_generation: int | None,
    src_secret_hash: str | None,
    dst_secret_hash: str | None,
    last_force_at: str | None,
    scheduled_time: str | None = None,
) -> str:
    doc: list[Any] = [
        namespace,
        type,
        spec,
        src_name,
        src_generation,
        dst_name,
        dst_generation,
        src_secret_hash,
        dst_secret_hash,
        last_force_at,
    ]
    if scheduled_time is not None:
        doc.append(scheduled_time)
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:HASH_LEN]


def secret_hash(data: Mapping[str, str] | None, *, key: bytes) -> str:
    """Hex HMAC-SHA-256, keyed with the installation's hash key, of the canonical JSON of a Secret's `data`
    map as stored (base64 values)."""
    if not key:
        raise ValueError("the Secret hash needs the installation's hash key")
    return hmac.new(key, canonical_json(dict(data or {})).encode(), hashlib.sha256).hexdigest()


def workflow_name(order_name: str, artifact_hash: str) -> str:
    """`<order-name>-<hash>`, the order-name part cut so the whole fits in 63 characters."""
    name = f"{order_name}-{artifact_hash}"
    if len(name) <= MAX_NAME:
        return name
    head = order_name[: MAX_NAME - len(artifact_hash) - 1].rstrip("-.")
    return f"{head}-{artifact_hash}"


def label_value(value: str) -> str:
    """A label value for a name: unchanged up to 63 characters, else cut + `-` + 8 hex of its SHA-256."""
    if len(value) <= MAX_NAME:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: MAX_NAME - 9]}-{digest}"
