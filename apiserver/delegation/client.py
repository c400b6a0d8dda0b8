"""`DelegationClient`: how the API server asks its delegating kube-apiserver (reviews, namespaces, the
authentication ConfigMap) — a minimal asynchronous client, the only place in apiserver/ speaking HTTP to it.

Named after what it does, not `KubeClient`: that is the controllers' client (`controllers.kube`), a different
thing with a different error family.

Credentials come from a kubeconfig (client certificate or bearer token, CA) or from the in-cluster service
account as client-go's ``rest.InClusterConfig`` reads it: the address from ``KUBERNETES_SERVICE_HOST`` and
``KUBERNETES_SERVICE_PORT`` (no cluster DNS needed), the mounted CA, and the token file re-read every
minute (the kubelet rotates bound service-account tokens; a token read once expires); `api.incluster` reads
it for both programs. Errors are mapped once to :class:`DelegationError` carrying the status code and the
server's Status.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from api.incluster import SERVICE_ACCOUNT_DIR, service_host
from api.incluster import NotInClusterError as NotInClusterError  # raised by load_kubeconfig(None)
from api.incluster import TokenFile as TokenFile
from apiserver.certs import write_private_file


class DelegationError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"kube-apiserver answered {status}: {message}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class KubeConfig:
    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    token_file: TokenFile | None = None
    """Takes precedence over ``token``: a rotated token is picked up."""

    def bearer_token(self) -> str | None:
        return self.token_file.token() if self.token_file is not None else self.token


def in_cluster_config(
    service_account_dir: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> KubeConfig:
    """client-go's ``rest.InClusterConfig``: the Service's address from the environment, the pod's token."""
    server = service_host(environ)  # NotInClusterError first, as client-go checks the environment first
    ctx = ssl.create_default_context(cafile=str(service_account_dir / "ca.crt"))
    return KubeConfig(server, ctx, token_file=TokenFile(service_account_dir / "token"))


def _material(entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


def load_kubeconfig(path: Path | None) -> KubeConfig:
    """The current context of a kubeconfig file, or the in-cluster service account when ``path`` is None."""
    if path is None:
        return in_cluster_config()
    doc = yaml.safe_load(path.read_text())
    current = doc.get("current-context")
    context = next(c["context"] for c in doc["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    user: dict[str, Any] = next(
        (u["user"] for u in doc.get("users", []) if u["name"] == context.get("user")), {}
    )
    base = path.parent
    ca = _material(cluster, "certificate-authority", base)
    ctx = ssl.create_default_context(cadata=ca.decode() if ca else None)
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert, key = _material(user, "client-certificate", base), _material(user, "client-key", base)
    if cert and key:
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert_file.write_bytes(cert)
            write_private_file(key_file, key)
            ctx.load_cert_chain(cert_file, key_file)
    return KubeConfig(str(cluster["server"]).rstrip("/"), ctx, user.get("token"))


class DelegationClient:
    """JSON over HTTPS to kube-apiserver with explicit timeouts."""

    def __init__(self, config: KubeConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        headers = {"Accept": "application/json", "User-Agent": "arc-apiserver"}
        self._session = aiohttp.ClientSession(
            base_url=self.config.server,
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=self.config.ssl_context, limit=32),
        )

    def _auth(self, headers: dict[str, str] | None = None) -> dict[str, str] | None:
        token = self.config.bearer_token()
        if token:
            return {**(headers or {}), "Authorization": f"Bearer {token}"}
        return headers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("DelegationClient is not started")
        return self._session

    async def request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        data = orjson.dumps(body) if body is not None else None
        headers = self._auth({"Content-Type": "application/json"} if data is not None else None)
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.session.request(method, path, data=data, params=params, headers=headers) as resp,
            ):
                raw = await resp.read()
                payload: Any = orjson.loads(raw) if raw else None
                if resp.status >= 400:
                    raise DelegationError(resp.status, payload)
                return payload
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise DelegationError(0, f"{type(exc).__name__}: {exc}") from None

    async def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body=body)

    async def watch(
        self, path: str, *, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events from ``resource_version``; ends when the server ends the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        try:
            async with self.session.get(
                path,
                params=params,
                headers=self._auth(),
                timeout=aiohttp.ClientTimeout(total=timeout_seconds + 30, sock_connect=self.timeout),
            ) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    raise DelegationError(resp.status, orjson.loads(raw) if raw else None)
                async for line in resp.content:
                    if line.strip():
                        yield orjson.loads(line)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise DelegationError(0, f"{type(exc).__name__}: {exc}") from None
