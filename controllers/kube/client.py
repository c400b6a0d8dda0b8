"""`KubeClient`: the controllers' seam to kube-apiserver, and its one real implementation.

`ApiKubeClient` is the only code that touches `kubernetes_asyncio` (and through it aiohttp). It sends raw
requests with `ApiClient.call_api(..., _preload_content=False)` and decodes the bodies itself, so that:
- every non-2xx answer is mapped exactly once to an `ApiError` subclass keeping the server's Status;
- numbers in free-form JSON keep their text (`controllers.kube.codec`);
- watch streams are read line by line, one `WatchEvent` each.

Objects cross this boundary as plain JSON dicts (their wire form); informers parse them into models.
Every call has an explicit timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from controllers.kube import codec
from controllers.kube.errors import ExpiredError, TransportError, error_for
from controllers.kube.resources import Resource

__all__ = ["ApiKubeClient", "KubeClient", "PatchType", "connect"]

JSON = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
DEFAULT_TIMEOUT = 30.0


class KubeClient(Protocol):
    """What controllers need from kube-apiserver. Errors: `ApiError` subclasses, `TransportError`."""

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON: ...

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> JSON:
        """One page of a list (the List object: `items`, `metadata.resourceVersion`, `metadata.continue`)."""
        ...

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JSON]:
        """Watch events (`{"type", "object"}`) after `resource_version`, bookmarks allowed.

        Raises `ExpiredError` when the server says the version is gone (HTTP 410 or an ERROR event).
        """
        ...

    async def create(self, resource: Resource, namespace: str | None, body: JSON) -> JSON: ...

    async def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JSON,
        *,
        subresource: str | None = None,
    ) -> JSON:
        """PUT; with `metadata.resourceVersion` set a stale write raises `ConflictError`."""
        ...

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JSON: ...

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> None:
        """DELETE; `uid` is a precondition (a recreated object of the same name is not deleted)."""
        ...

    async def close(self) -> None: ...


class ApiKubeClient:
    """KubeClient over `kubernetes_asyncio.client.ApiClient` (build it with `connect`)."""

    def __init__(self, api: k8s_client.ApiClient, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._api = api
        self._timeout = timeout

    async def close(self) -> None:
        await self._api.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                resp = await self._api.call_api(
                    path,
                    method,
                    query_params=query or [],
                    header_params={"Accept": "application/json", "Content-Type": content_type},
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
                try:
                    raw = await resp.read()
                    status = resp.status
                finally:
                    resp.release()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{method} {path}: {exc!r}") from exc
        decoded = _decode(raw)
        if not 200 <= status <= 299:
            raise error_for(status, decoded)
        return decoded

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        out: JSON = await self._request("GET", resource.path(namespace, name))
        return out

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> JSON:
        query: list[tuple[str, str]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if limit:
            query.append(("limit", str(limit)))
        if continue_:
            query.append(("continue", continue_))
        out: JSON = await self._request("GET", resource.path(namespace), query=query)
        return out

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JSON]:
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        path = resource.path(namespace)
        # The server ends the stream after timeout_seconds; the client gives up a little later.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout, sock_read=timeout_seconds + 30
        )
        try:
            async with asyncio.timeout(self._timeout):
                resp = await self._api.call_api(
                    path,
                    "GET",
                    query_params=query,
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=timeout,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"WATCH {path}: {exc!r}") from exc
        try:
            if not 200 <= resp.status <= 299:
                raise error_for(resp.status, _decode(await resp.read()))
            while True:
                try:
                    line = await resp.content.readline()
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    raise TransportError(f"WATCH {path}: {exc!r}") from exc
                if not line:
                    return
                if not line.strip():
                    continue
                event = codec.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    err = error_for(int(obj.get("code") or 500), obj)
                    if isinstance(err, ExpiredError) or err.code == 410:
                        raise ExpiredError(err.status)
                    raise err
                yield event
        finally:
            resp.release()

    async def create(self, resource: Resource, namespace: str | None, body: JSON) -> JSON:
        out: JSON = await self._request("POST", resource.path(namespace), body=body)
        return out

    async def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JSON,
        *,
        subresource: str | None = None,
    ) -> JSON:
        out: JSON = await self._request("PUT", resource.path(namespace, name, subresource), body=body)
        return out

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> JSON:
        out: JSON = await self._request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=patch,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        )
        return out

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        propagation_policy: str | None = None,
    ) -> None:
        body: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            body["preconditions"] = {"uid": uid}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        await self._request("DELETE", resource.path(namespace, name), body=body)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return codec.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


async def connect(kubeconfig: Path | str, *, context: str | None = None, qps_pool: int = 64) -> ApiKubeClient:
    """An ApiKubeClient from a kubeconfig file (certificates, token or exec credentials)."""
    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(kubeconfig), context=context, client_configuration=configuration
    )
    configuration.connection_pool_maxsize = qps_pool
    return ApiKubeClient(k8s_client.ApiClient(configuration=configuration))
