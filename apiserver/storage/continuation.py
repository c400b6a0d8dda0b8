"""Continue tokens in kube's format (``k8s.io/apiserver/pkg/storage/continue.go``).

A token is base64url without padding of ``{"v":"meta.k8s.io/v1","rv":<int>,"start":"<suffix>"}`` where
``start`` is the next key to read with the list prefix stripped (the last returned key plus ``\\0``) and
``rv`` the snapshot revision; ``rv: -1`` means "continue at the latest revision" (the token handed out with
a 410 after the snapshot was compacted). Tokens are opaque to clients; keeping kube's format costs nothing
and makes tokens readable in the same tools.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath

from apiserver.storage.interface import InvalidContinueError

TOKEN_VERSION = "meta.k8s.io/v1"
LATEST = -1
"""A token revision meaning "the latest revision" (kube: ``continueToken.ResourceVersion == -1``)."""


def encode_continue(key: str, prefix: str, revision: int) -> str:
    """The token continuing at ``key`` (inclusive) under ``prefix`` at ``revision``."""
    if not key.startswith(prefix) or key == prefix:
        raise ValueError(f"key {key!r} is not below the list prefix {prefix!r}")
    payload = json.dumps(
        {"v": TOKEN_VERSION, "rv": revision, "start": key[len(prefix) :]}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode("ascii")


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    """The absolute start key and the revision of a token; :class:`InvalidContinueError` if malformed.

    As in kube, the start key is ``path.Clean``-ed so a crafted token cannot escape ``prefix``.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidContinueError(f"continue key is not valid: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        version = data.get("v") if isinstance(data, dict) else None
        raise InvalidContinueError(
            f"continue key is not valid: server does not recognize this encoded version {version!r}"
        )
    revision = data.get("rv")
    start = data.get("start")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision == 0 or revision < LATEST:
        raise InvalidContinueError(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    if not isinstance(start, str) or not start:
        raise InvalidContinueError(
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)"
        )
    key = start if start.startswith("/") else "/" + start
    if _clean(key) != key:
        raise InvalidContinueError(f"continue key is not valid: {start}")
    return prefix + key[1:], revision


def _clean(path: str) -> str:
    """Go's ``path.Clean`` for rooted paths (posixpath keeps a leading ``//``, Go does not)."""
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned
