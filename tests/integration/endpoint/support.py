"""Remotes for the Endpoint probe tests, all on loopback.

- :class:`TLSRegistry`: a Debian ``docker-registry`` with htpasswd auth (:class:`Registry`), optionally
  serving TLS with a certificate of a throw-away CA (``hack.pki``), so "self-signed without its CA" and
  "with its CA" are real handshakes.
- :class:`TokenRegistry`: an aiohttp server speaking the distribution token flow (``401 Bearer
  realm=…,service=…`` on ``/v2/``, a token service at ``/token`` checking Basic credentials), because
  docker-registry's own token auth needs a JWT issuer.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from hack import pki
from hack.process import free_port
from tests.integration.workflowtemplates.support import DOCKER_REGISTRY, crypt


@dataclass
class TLSRegistry:
    root: Path
    user: str
    password: str
    tls: bool = False
    port: int = field(default_factory=free_port)
    ca: pki.KeyPair | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
        hashed = crypt.crypt(self.password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
        htpasswd.write_text(f"{self.user}:{hashed}\n")
        http: dict[str, Any] = {"addr": f"127.0.0.1:{self.port}", "secret": "arc-test"}
        if self.tls:
            self.ca = pki.create_ca(self.root / "pki", "ca", "arc-test-ca")
            cert = pki.issue(
                self.ca,
                self.root / "pki",
                "registry",
                common_name="registry",
                ip_addresses=["127.0.0.1"],
                server=True,
            )
            http["tls"] = {"certificate": str(cert.cert_file), "key": str(cert.key_file)}
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}},
            "http": http,
            "auth": {"htpasswd": {"realm": "arc-test", "path": str(htpasswd)}},
        }
        (self.root / "config.yml").write_text(yaml.safe_dump(config))
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(self.root / "config.yml")], stdout=log, stderr=log
        )
        context = ssl.create_default_context(cafile=str(self.ca.cert_file)) if self.ca else None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=context)
                return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"docker-registry on {self.url} did not come up")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class TokenRegistry:
    """``/v2/`` wants ``Bearer <token>``; ``/token`` hands the token out for the right Basic credentials."""

    TOKEN = "t0k3n-for-the-probe"

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.port = 0
        self.token_requests: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _v2(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") == f"Bearer {self.TOKEN}":
            return web.json_response({})
        challenge = f'Bearer realm="{self.url}/token",service="arc-test",scope="registry:catalog:*"'
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED"}]}, status=401, headers={"WWW-Authenticate": challenge}
        )

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests.append(dict(request.query))
        good = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != good:
            return web.json_response({"details": "bad credentials"}, status=401)
        return web.json_response({"token": self.TOKEN, "expires_in": 60})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/", self._v2)
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
