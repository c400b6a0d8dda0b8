"""An etcd server for the local stack and the integration tests (the binary built by hack/)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hack.binaries import binary_path
from hack.process import Component, free_port


@dataclass(frozen=True)
class EtcdServer:
    """A single-member etcd on loopback, data under ``<work>/data/<name>``.

    ``client_url`` is plain HTTP on 127.0.0.1: only local processes reach it.
    """

    name: str
    work_dir: Path
    client_port: int
    peer_port: int
    quota_backend_bytes: int = 8 * 1024**3
    """etcd's ``--quota-backend-bytes``: beyond it etcd raises the NOSPACE alarm and refuses writes."""

    @classmethod
    def allocate(cls, name: str, work_dir: Path, *, quota_backend_bytes: int = 8 * 1024**3) -> EtcdServer:
        return cls(
            name=name,
            work_dir=work_dir,
            client_port=free_port(),
            peer_port=free_port(),
            quota_backend_bytes=quota_backend_bytes,
        )

    @property
    def component(self) -> Component:
        return Component(self.name, self.work_dir)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data" / self.name

    def argv(self, *, unsafe_no_fsync: bool = False) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [
            str(binary_path("etcd")),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            "--initial-cluster-state=new",
            "--listen-metrics-urls=",
            "--log-level=warn",
            f"--quota-backend-bytes={self.quota_backend_bytes}",
        ]
        if unsafe_no_fsync:
            argv.append("--unsafe-no-fsync")
        return argv

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.client_url}/health", timeout=2) as resp:
            return bool(resp.status == 200 and b'"health":"true"' in resp.read())

    def start(self, *, unsafe_no_fsync: bool = False, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.component.start(self.argv(unsafe_no_fsync=unsafe_no_fsync))
        self.component.wait_until(self.healthy, timeout=timeout, what="healthy")

    def stop(self) -> None:
        self.component.stop()
