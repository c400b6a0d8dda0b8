"""A minimal synchronous client for bootstrapping the local control plane (no kubectl needed).

Only hack/ uses it: readiness probes and server-side apply of a few bootstrap objects. ARC's own
code talks to Kubernetes with kubernetes_asyncio.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from hack.pki import write_private_file


class KubeHTTPError(Exception):
    """A non-2xx answer of `KubeHTTP`; carries the HTTP status and the server's Status body.

    Not `KubeError` (the controllers' async client's family, `controllers.kube.errors`) nor `DelegationError`
    (the API server's delegation client): this one belongs to the synchronous bootstrap client only."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class KubeHTTP:
    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        req = urllib.request.Request(f"{self.server}{path}", data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        for name, value in (headers or {}).items():  # e.g. traceparent, as an instrumented client sends it
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=timeout) as resp:
                data = resp.read()
        except urllib.error.HTTPError as err:
            raise KubeHTTPError(err.code, err.read().decode(errors="replace")) from None
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def get(self, path: str, *, timeout: float = 10.0) -> Any:
        return self.request("GET", path, timeout=timeout)

    def apply(self, obj: dict[str, Any], *, field_manager: str = "arc-hack") -> Any:
        """Server-side apply one object (force), deriving its path from apiVersion/kind/metadata."""
        return self.request(
            "PATCH",
            f"{self.object_path(obj)}?fieldManager={quote(field_manager)}&force=true",
            body=json.dumps(obj).encode(),
            content_type="application/apply-patch+yaml",
        )

    def apply_manifest(self, path: Path, *, field_manager: str = "arc-hack") -> None:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                self.apply(doc, field_manager=field_manager)

    def object_path(self, obj: dict[str, Any]) -> str:
        api_version: str = obj["apiVersion"]
        group_version = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        plural = self.resource_plural(api_version, obj["kind"])
        meta = obj["metadata"]
        ns = meta.get("namespace")
        prefix = f"{group_version}/namespaces/{ns}" if ns else group_version
        return f"{prefix}/{plural}/{meta['name']}"

    def resource_plural(self, api_version: str, kind: str) -> str:
        group_version = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        for resource in self.get(group_version)["resources"]:
            if resource["kind"] == kind and "/" not in resource["name"]:
                return str(resource["name"])
        raise KeyError(f"no resource for {api_version} {kind}")


def write_kubeconfig(
    path: Path, *, server: str, ca_file: Path, cert_file: Path, key_file: Path, user: str
) -> None:
    """A kubeconfig with one cluster, one user (client certificate) and one current context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "arc-local", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert_file), "client-key": str(key_file)}}
        ],
        "contexts": [{"name": "arc-local", "context": {"cluster": "arc-local", "user": user}}],
        "current-context": "arc-local",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, yaml.safe_dump(config, sort_keys=False).encode())
