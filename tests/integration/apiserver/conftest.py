"""Helpers for the API server's integration tests: the real kubectl, raw HTTPS and kubernetes_asyncio.

Every test talks to the session's real ``arc-apiserver`` process (fixture ``arc_apiserver``) and isolates
itself in a namespace of its own (``it-<uuid8>``; standalone ARC does not check that namespaces exist).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from hack.arcapiserver import ArcApiServer

GROUP = "arc.opendefense.cloud"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
GV_PATH = f"/apis/{GROUP}/{VERSION}"
KUBECTL_TIMEOUT = 60.0


def unique_namespace() -> str:
    return f"it-{uuid.uuid4().hex[:8]}"


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until it is true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], Any], *, within: float, what: str, interval: float = 0.05
) -> Any:
    """Await ``predicate()`` (sync or async) until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def order(name: str, namespace: str, *, images: tuple[str, ...] = ("a", "b"), **meta: Any) -> dict[str, Any]:
    """A valid Order with one artifact per image, both Endpoints from ``spec.defaults``."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [{"type": "oci", "spec": {"image": image}} for image in images],
        },
    }


# ---- kubectl --------------------------------------------------------------------------------------------


@dataclass
class Kubectl:
    """The real kubectl binary against the session's server (own discovery cache, bounded runtime)."""

    kubeconfig: Path
    cache_dir: Path
    binary: str = field(default_factory=lambda: shutil.which("kubectl") or "kubectl")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
            **(extra or {}),
        }

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def apply(self, obj: Mapping[str, Any]) -> str:
        return self.run("apply", "-f", "-", input=yaml.safe_dump(dict(obj))).stdout

    def get_json(self, *args: str) -> Any:
        return orjson.loads(self.run("get", *args, "-o", "json").stdout)

    def start(
        self, *args: str, output: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """kubectl in the background, stdout and stderr into ``output`` (the caller kills it)."""
        with output.open("wb") as sink:
            return subprocess.Popen(
                [self.binary, *args],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env(env),
            )


@pytest.fixture(scope="session")
def kubectl_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kubectl-cache")


@pytest.fixture
def kubectl(arc_apiserver: ArcApiServer, kubectl_cache_dir: Path) -> Kubectl:
    if shutil.which("kubectl") is None:
        pytest.fail("the integration tests need kubectl on PATH")
    return Kubectl(arc_apiserver.kubeconfig, kubectl_cache_dir)


@pytest.fixture
def namespace() -> str:
    return unique_namespace()


# ---- raw HTTPS ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def causes(self) -> list[tuple[str, str]]:
        """``(field, reason)`` of every cause of a Status body."""
        details = self.body.get("details") or {} if isinstance(self.body, dict) else {}
        return [(c.get("field", ""), c.get("reason", "")) for c in details.get("causes") or []]


def ssl_context(server: ArcApiServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert_dir / "apiserver.crt"))


def admin_token(server: ArcApiServer) -> str:
    return server.token_file.read_text().split(",", 1)[0]


class RawClient:
    """aiohttp with the server's CA and the admin bearer token; JSON in, JSON (or text) out."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float = 30.0,
    ) -> Reply:
        all_headers = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            content_type = content_type or "application/json"
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        async with self.session.request(
            method,
            self.base_url + path,
            data=data,
            params=params,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        ) as resp:
            raw = await resp.read()
            try:
                body: Any = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
            return Reply(resp.status, body, dict(resp.headers))

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)


def raw_session(server: ArcApiServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl_context(server), limit=100),
        headers={"Authorization": f"Bearer {admin_token(server)}"},
    )


@pytest.fixture
async def raw(arc_apiserver: ArcApiServer) -> AsyncIterator[RawClient]:
    async with raw_session(arc_apiserver) as session:
        yield RawClient(session, arc_apiserver.url)


# ---- kubernetes_asyncio ---------------------------------------------------------------------------------


@pytest.fixture
async def api_client(arc_apiserver: ArcApiServer) -> AsyncIterator[k8s_client.ApiClient]:
    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(arc_apiserver.kubeconfig), client_configuration=configuration
    )
    async with k8s_client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def custom_objects(api_client: k8s_client.ApiClient) -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(api_client)
