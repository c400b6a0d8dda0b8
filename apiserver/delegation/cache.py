"""`ListWatchCache`: a list+watch cache of one kind of kube-apiserver object (client-go's informer, minimally;
not named `Informer`, which is the controllers' typed, indexed one in `controllers.runtime`).

Used for ``kube-system/extension-apiserver-authentication`` (front-proxy CA and header names, reloaded when
it changes) and for namespaces (NamespaceLifecycle admission). It relists after an error or a 410 and
resumes watches from the last resourceVersion it saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from apiserver.delegation.client import DelegationClient, DelegationError

logger = logging.getLogger(__name__)


class ListWatchCache:
    def __init__(
        self,
        client: DelegationClient,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        on_change: Callable[[], None] | None = None,
        relist_backoff: float = 1.0,
    ) -> None:
        self.client = client
        self.path = path
        self.params = dict(params or {})
        self.on_change = on_change
        self.relist_backoff = relist_backoff
        self.items: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def key(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer {self.path}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def wait_synced(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self.synced.wait()
        except TimeoutError:
            return False
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def _run(self) -> None:
        while True:
            try:
                listing = await self.client.get(self.path, params=self.params)
                self.items = {self.key(item): item for item in listing.get("items") or []}
                resource_version = listing["metadata"]["resourceVersion"]
                self.synced.set()
                self._changed()
                while True:
                    async for event in self.client.watch(
                        self.path + self._query_suffix(), resource_version=resource_version
                    ):
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise DelegationError(int(obj.get("code") or 500), obj)
                        resource_version = (obj.get("metadata") or {}).get(
                            "resourceVersion", resource_version
                        )
                        if kind == "BOOKMARK":
                            continue
                        if kind == "DELETED":
                            self.items.pop(self.key(obj), None)
                        else:
                            self.items[self.key(obj)] = obj
                        self._changed()
            except asyncio.CancelledError:
                raise
            except (DelegationError, KeyError, TypeError) as err:
                logger.warning("informer relisting", extra={"path": self.path, "error": str(err)})
                await asyncio.sleep(self.relist_backoff)

    def _query_suffix(self) -> str:
        if not self.params:
            return ""
        from urllib.parse import urlencode

        return "?" + urlencode(self.params)
