"""Run ARC's API server as its own process (the ``arc-apiserver`` entry point) for the local stack and tests.

Standalone mode: HTTPS with a self-signed certificate, a static admin token, and a kubeconfig for kubectl
that trusts that certificate. (The aggregated mode, behind kube-apiserver, reuses the same process with
front-proxy authentication.)
"""

from __future__ import annotations

import secrets
import ssl
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hack.pki import write_private_file
from hack.process import Component, free_port


@dataclass
class ArcApiServer:
    work_dir: Path
    etcd_url: str
    port: int = field(default_factory=free_port)
    name: str = "arc-apiserver"
    etcd_prefix: str = "/registry"
    extra_args: tuple[str, ...] = ()

    @property
    def component(self) -> Component:
        return Component(self.name, self.work_dir)

    @property
    def cert_dir(self) -> Path:
        return self.work_dir / "pki" / self.name

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.work_dir / f"{self.name}-tokens.csv"

    @property
    def kubeconfig(self) -> Path:
        return self.work_dir / f"{self.name}.kubeconfig"

    def ensure_credentials(self) -> str:
        """The admin token (created once) and a kubeconfig that uses it."""
        if self.token_file.exists():
            token = self.token_file.read_text().split(",", 1)[0]
        else:
            token = secrets.token_urlsafe(24)
            self.token_file.parent.mkdir(parents=True, exist_ok=True)
            write_private_file(self.token_file, f'{token},arc-admin,arc-admin,"system:masters"\n'.encode())
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self.cert_dir / "apiserver.crt"),
                    },
                }
            ],
            "users": [{"name": "arc-admin", "user": {"token": token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "arc-admin"}}],
            "current-context": self.name,
        }
        write_private_file(self.kubeconfig, yaml.safe_dump(config, sort_keys=False).encode())
        return token

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "apiserver",
            "--standalone",
            f"--token-auth-file={self.token_file}",
            f"--etcd-servers={self.etcd_url}",
            f"--etcd-prefix={self.etcd_prefix}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.cert_dir}",
            *self.extra_args,
        ]

    def ready(self) -> bool:
        cert = self.cert_dir / "apiserver.crt"
        if not cert.exists():
            return False
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"{self.url}/readyz", context=context, timeout=2) as resp:
            return bool(resp.status == 200)

    def start(self, *, timeout: float = 30.0) -> None:
        self.ensure_credentials()
        self.component.start(self.argv())
        self.component.wait_until(self.ready, timeout=timeout, what="ready")

    def stop(self) -> None:
        self.component.stop(timeout=10)
