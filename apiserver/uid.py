"""Random (version 4) UUIDs for ``metadata.uid`` and request ids, from pooled random bytes.

``uuid.uuid4()`` reads 16 bytes from the OS per call; the read releases the GIL, and under load the
thread then waits for it behind grpc.aio's poller thread — py-spy put ~5 % of a create there. Reading
4 KiB at a time keeps the same source (``os.urandom``, as Go's ``crypto/rand`` behind kube's uids).
"""

from __future__ import annotations

import os

_BATCH = 256


class UUIDSource:
    """Version-4 UUID strings from ``os.urandom`` read ``batch`` UUIDs at a time (not thread-safe)."""

    def __init__(self, batch: int = _BATCH) -> None:
        self._size = 16 * batch
        self._pool = b""
        self._offset = self._size

    def __call__(self) -> str:
        if self._offset >= len(self._pool):
            self._pool, self._offset = os.urandom(self._size), 0
        raw = bytearray(self._pool[self._offset : self._offset + 16])
        self._offset += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_uuid = UUIDSource()
"""The process's source (the API server's request handling runs on one event loop thread)."""
