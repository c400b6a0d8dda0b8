"""`KubeClient`: the controllers' seam to kube-apiserver, and its one real implementation.

`ApiKubeClient` is the only code that touches `kubernetes_asyncio` (and through it aiohttp). It takes the
configuration (server, TLS, credentials and their refresh) from `kubernetes_asyncio` and decodes the bodies
itself, so that:
- every non-2xx answer is mapped exactly once to an `ApiError` subclass keeping the server's Status;
- numbers in free-form JSON keep their text (`controllers.kube.codec`);
- watch streams are read line by line, one `WatchEvent` each, with no line-length limit of aiohttp's
  (`StreamReader.readline` raises LineTooLong past twice read_bufsize, 512 KiB: one large Order's event would
  kill its informer).

Unary requests (get, list, create, replace, patch, delete) go straight to aiohttp on the ApiClient's
connection pool with a JSON body encoded once, headers and credentials from
`ApiClient.update_params_for_auth`: `ApiClient.call_api` walked every body with
`sanitize_for_serialization` (a deep copy in Python) and its session, created with `trust_env=True`,
looked up the proxy environment in a thread for every request — together a fifth of the controller
manager's CPU under bench/controllers. The proxy environment is read once (`HTTPS_PROXY`/`NO_PROXY`, as
Go's `http.ProxyFromEnvironment` reads it once per process). Watches, one long-lived stream per
informer, still go through `call_api`.

Everything aiohttp, kubernetes_asyncio or the JSON decoder can raise is mapped here, once (`_TRANSPORT`):
callers see only the `KubeError` family (tests/unit/controllers/test_kube_errors.py holds us to it).

Objects cross this boundary as plain JSON dicts (their wire form); informers parse them into models.
Every call has an explicit timeout. Every request carries the current span's W3C trace context
(``traceparent``, ``tracestate``), so kube-apiserver's spans, and through its aggregator ARC's, join the
reconcile's trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.http_exceptions import HttpProcessingError
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import OpenApiException
from kubernetes_asyncio.config import ConfigException
from opentelemetry import propagate
from yarl import URL

from controllers.kube import codec
from controllers.kube.errors import ConfigError, DecodeError, ExpiredError, TransportError, error_for
from controllers.kube.incluster import SERVICE_ACCOUNT_DIR, InCluster, in_cluster
from controllers.kube.resources import PODS, Resource

__all__ = ["ApiKubeClient", "KubeClient", "PatchType", "connect"]

JSON = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
DEFAULT_TIMEOUT = 30.0
MAX_WATCH_LINE = 64 * 1024 * 1024
"""A watch line longer than this is a broken stream (kube's objects are at most a few MiB)."""

_TRANSPORT: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,  # connection, payload, disconnects, TLS through ClientSSLError
    HttpProcessingError,  # aiohttp's parser: bad status line, headers too long, LineTooLong
    OpenApiException,  # kubernetes_asyncio refusing to build the request
    ConfigException,  # token refresh through an exec/auth plugin
    TimeoutError,
    OSError,
    EOFError,  # asyncio.IncompleteReadError
)
"""What the HTTP stack can raise without an HTTP answer; mapped to TransportError."""


class KubeClient(Protocol):
    """What controllers need from kube-apiserver. Errors: `ApiError` subclasses, `TransportError`."""

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON: ...

    async def logs(
        self, namespace: str, pod: str, *, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        """The last lines of a container's log (`pods/log`: tailLines, limitBytes), as text."""
        ...

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
        self._session: aiohttp.ClientSession | None = None
        self._proxy: tuple[URL | None, aiohttp.BasicAuth | None] = (None, None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self._api.close()

    def _unary_session(self) -> aiohttp.ClientSession:
        """A session on the ApiClient's connector (its TLS context and pool) that does not consult the
        proxy environment per request; the proxy (configured, or from the environment) is fixed once."""
        if self._session is None:
            rest = self._api.rest_client
            config = self._api.configuration
            if config.proxy:
                self._proxy = (URL(config.proxy), None)
            else:
                try:
                    self._proxy = get_env_proxy_for_url(URL(config.host or ""))
                except LookupError:
                    self._proxy = (None, None)
            self._session = aiohttp.ClientSession(
                connector=rest.pool_manager.connector,
                connector_owner=False,
                trust_env=False,
                read_bufsize=2**21,
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        expect_object: bool = True,
        text: bool = False,
    ) -> Any:
        """One request; the decoded JSON object of a 2xx answer (`DecodeError` if it is not one), or its
        body as text (`text`, for pods/log)."""
        api = self._api
        headers: dict[str, str] = _traced(
            {
                **api.default_headers,
                "Accept": "*/*" if text else "application/json",
                "Content-Type": content_type,
            }
        )
        params = list(query or [])
        data = codec.dumps(body).encode() if body is not None else None
        try:
            async with asyncio.timeout(self._timeout):
                await api.update_params_for_auth(headers, params, ["BearerToken"])
                session = self._unary_session()
                proxy, proxy_auth = self._proxy
                rest = api.rest_client
                extra: dict[str, Any] = {}
                if rest.server_hostname:
                    extra["server_hostname"] = rest.server_hostname
                if rest.proxy_headers:
                    extra["proxy_headers"] = rest.proxy_headers
                async with session.request(
                    method,
                    f"{api.configuration.host}{path}",
                    params=params or None,
                    headers=headers,
                    data=data,
                    proxy=proxy,
                    proxy_auth=proxy_auth,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                    **extra,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
        except _TRANSPORT as exc:
            raise TransportError(f"{method} {path}: {exc!r}") from exc
        if not 200 <= status <= 299:
            raise error_for(status, _decode_any(raw))
        if text:
            return raw.decode("utf-8", "replace")
        if not expect_object:
            return _decode_any(raw)
        return _decode_object(raw, f"{method} {path}")

    async def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        out: JSON = await self._request("GET", resource.path(namespace, name))
        return out

    async def logs(
        self, namespace: str, pod: str, *, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        query = [("container", container), ("tailLines", str(tail_lines)), ("limitBytes", str(limit_bytes))]
        out: str = await self._request("GET", PODS.path(namespace, pod, "log"), query=query, text=True)
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
                    header_params=_traced({"Accept": "application/json"}),
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=timeout,
                )
        except _TRANSPORT as exc:
            raise TransportError(f"WATCH {path}: {exc!r}") from exc
        try:
            if not 200 <= resp.status <= 299:
                try:
                    raw = await resp.read()
                except _TRANSPORT as exc:
                    raise TransportError(f"WATCH {path}: {exc!r}") from exc
                raise error_for(resp.status, _decode_any(raw))
            async for line in _lines(resp.content, f"WATCH {path}"):
                event = _decode_object(line, f"WATCH {path}")
                if event.get("type") == "ERROR":
                    obj = event.get("object")
                    obj = obj if isinstance(obj, dict) else {}
                    err = error_for(_int(obj.get("code"), 500), obj)
                    if isinstance(err, ExpiredError) or err.code == 410:
                        raise ExpiredError(err.status)
                    raise err
                if not isinstance(event.get("object"), dict):
                    raise DecodeError(f"WATCH {path}: event without an object: {line[:200]!r}")
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
        await self._request("DELETE", resource.path(namespace, name), body=body, expect_object=False)


def _traced(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the current context's trace headers (none outside a span), as client-go's otelhttp
    transport sends them.

    The Python SDK marks its trace ids random (W3C Trace Context Level 2, flags ``03``); kube-apiserver's
    propagator (OpenTelemetry-Go v1.41 in Kubernetes 1.33) drops a version-``00`` ``traceparent`` with any
    flag beyond *sampled* and starts a trace of its own. Like Go's injector, only the sampled bit is sent.
    """
    propagate.inject(headers)
    traceparent = headers.get("traceparent")
    if traceparent is not None and traceparent.count("-") == 3:
        version, trace_id, span_id, flags = traceparent.split("-")
        headers["traceparent"] = f"{version}-{trace_id}-{span_id}-{int(flags, 16) & 0x01:02x}"
    return headers


async def _lines(stream: aiohttp.StreamReader, what: str) -> AsyncIterator[bytes]:
    """The non-empty lines of a chunked stream, however long (up to MAX_WATCH_LINE); ends at EOF."""
    buffer = bytearray()
    while True:
        try:
            chunk = await stream.readany()
        except _TRANSPORT as exc:
            raise TransportError(f"{what}: {exc!r}") from exc
        if not chunk:
            if buffer.strip():
                yield bytes(buffer)
            return
        start = len(buffer)
        buffer += chunk
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            start = 0
            if line.strip():
                yield line
        if len(buffer) > MAX_WATCH_LINE:
            raise TransportError(f"{what}: a line longer than {MAX_WATCH_LINE} bytes")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _decode_any(raw: bytes) -> Any:
    """JSON if it is JSON, else the text (error bodies need not be JSON)."""
    if not raw:
        return None
    try:
        return codec.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _decode_object(raw: bytes, what: str) -> JSON:
    try:
        value = codec.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise DecodeError(f"{what}: the answer is not JSON: {raw[:200]!r}") from exc
    if not isinstance(value, dict):
        raise DecodeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


async def connect(
    kubeconfig: Path | str | None,
    *,
    context: str | None = None,
    qps_pool: int = 64,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    environ: Mapping[str, str] | None = None,
) -> ApiKubeClient:
    """An ApiKubeClient from a kubeconfig file (certificates, token or exec credentials), or, with
    ``kubeconfig=None``, from the pod's service account (`controllers.kube.incluster`).

    Raises `ConfigError` when the configuration cannot be read or used (`NotInClusterError` when there is
    no kubeconfig and the process is not in a pod).
    """
    configuration = k8s_client.Configuration()
    if kubeconfig is None:
        _configure_in_cluster(configuration, in_cluster(service_account_dir, environ))
    else:
        try:
            await k8s_config.load_kube_config(
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"kubeconfig {kubeconfig}: {exc}") from exc
    configuration.connection_pool_maxsize = qps_pool
    try:
        return ApiKubeClient(k8s_client.ApiClient(configuration=configuration))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: an unreadable CA bundle
        raise ConfigError(f"TLS configuration for {configuration.host}: {exc}") from exc


def _configure_in_cluster(configuration: Any, cluster: InCluster) -> None:
    """Host, CA and a bearer token that follows the rotated token file (checked before every request)."""
    configuration.host = cluster.host
    configuration.ssl_ca_cert = str(cluster.ca_file)
    configuration.api_key_prefix["BearerToken"] = "Bearer"
    configuration.api_key["BearerToken"] = cluster.token.token()

    def refresh(conf: Any, *_: Any) -> None:
        conf.api_key["BearerToken"] = cluster.token.token()

    configuration.refresh_api_key_hook = refresh
