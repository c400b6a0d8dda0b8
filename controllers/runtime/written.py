"""`LastWritten`: the objects a reconciler wrote itself, preferred over older copies in the cache.

An informer's cache lags the reconciler's own writes: the reconcile that a write's watch event (or any other
event of the object) triggers may still read the version before the write. A reconciler that compares the
desired state with that stale copy writes the same change again — with the old resourceVersion, so the API
answers 409 and the key is retried with backoff: two wasted requests and a reconcile per write. Remembering
the object the API returned and using it while it is newer than the cached one (same uid, higher
resourceVersion) makes that reconcile see its own write. An entry is dropped as soon as the cache has caught
up, so this holds only the objects written in the last moments, not a second cache.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from api.meta import ObjectMeta

__all__ = ["LastWritten"]


class _Object(Protocol):
    @property
    def metadata(self) -> ObjectMeta: ...


M = TypeVar("M", bound=_Object)


def _rv_newer(a: str | None, b: str | None) -> bool:
    """Whether resourceVersion `a` is newer than `b` (kube's are etcd revisions; opaque ones never are)."""
    try:
        return int(a or "") > int(b or "")
    except ValueError:
        return False


class LastWritten(Generic[M]):
    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], M] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def remember(self, obj: M) -> None:
        """`obj` as the API returned it after a write."""
        self._objects[(obj.metadata.namespace or "", obj.metadata.name or "")] = obj

    def fresher(self, namespace: str, name: str, cached: M | None) -> M | None:
        """The written object if it is newer than `cached` (same uid), else `cached` (forgetting it)."""
        key = (namespace, name)
        written = self._objects.get(key)
        if written is None:
            return cached
        if (
            cached is not None
            and written.metadata.uid == cached.metadata.uid
            and _rv_newer(written.metadata.resource_version, cached.metadata.resource_version)
        ):
            return written
        del self._objects[key]
        return cached
