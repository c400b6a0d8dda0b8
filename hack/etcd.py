"""An etcd server for the local stack and the integration tests (the binary built by hack/)."""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hack import pki
from hack.binaries import binary_path
from hack.process import Component, free_port


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS of an etcd: its CA, its serving pair, and the client pair the tools here use.

    With it, etcd serves HTTPS only and requires a client certificate from that CA (``--client-cert-auth``):
    anyone else who reaches the port is refused, which is what keeps ARC's objects behind ARC's checks.
    """

    ca: pki.KeyPair
    server: pki.KeyPair
    client: pki.KeyPair

    @classmethod
    def create(cls, directory: Path, name: str) -> EtcdTLS:
        """``<name>-ca``, ``<name>-server`` (127.0.0.1, localhost) and ``<name>-client`` in ``directory``."""
        ca = pki.create_ca(directory, f"{name}-ca", f"{name}-ca")
        server = pki.issue(
            ca,
            directory,
            f"{name}-server",
            common_name=name,
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            server=True,
        )
        client = pki.issue(ca, directory, f"{name}-client", common_name=f"{name}-client", client=True)
        return cls(ca, server, client)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        context.load_cert_chain(self.client.cert_file, self.client.key_file)
        return context


@dataclass(frozen=True)
class EtcdServer:
    """A single-member etcd on loopback, data under ``<work>/data/<name>``.

    ``client_url`` is on 127.0.0.1 (only local processes reach it): plain HTTP, or HTTPS with client
    certificates required when ``tls`` is given.
    """

    name: str
    work_dir: Path
    client_port: int
    peer_port: int
    tls: EtcdTLS | None = None
    initial_cluster: str = ""
    """``name=peerURL,…`` of every member when this one is part of a cluster (``start_cluster``)."""
    quota_backend_bytes: int = 8 * 1024**3
    """etcd's ``--quota-backend-bytes``: beyond it etcd raises the NOSPACE alarm and refuses writes."""

    @classmethod
    def allocate(
        cls, name: str, work_dir: Path, *, tls: EtcdTLS | None = None, quota_backend_bytes: int = 8 * 1024**3
    ) -> EtcdServer:
        return cls(
            name=name,
            work_dir=work_dir,
            client_port=free_port(),
            peer_port=free_port(),
            tls=tls,
            quota_backend_bytes=quota_backend_bytes,
        )

    @property
    def component(self) -> Component:
        return Component(self.name, self.work_dir)

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    def client_flags(self) -> list[str]:
        """arc-apiserver's flags to reach this etcd (kube's names)."""
        flags = [f"--etcd-servers={self.client_url}"]
        if self.tls is not None:
            flags += [
                f"--etcd-cafile={self.tls.ca.cert_file}",
                f"--etcd-certfile={self.tls.client.cert_file}",
                f"--etcd-keyfile={self.tls.client.key_file}",
            ]
        return flags

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
            f"--initial-cluster={self.initial_cluster or f'{self.name}={peer}'}",
            "--initial-cluster-state=new",
            "--listen-metrics-urls=",
            "--log-level=warn",
            f"--quota-backend-bytes={self.quota_backend_bytes}",
        ]
        if unsafe_no_fsync:
            argv.append("--unsafe-no-fsync")
        if self.tls is not None:
            argv += [
                "--client-cert-auth",
                f"--trusted-ca-file={self.tls.ca.cert_file}",
                f"--cert-file={self.tls.server.cert_file}",
                f"--key-file={self.tls.server.key_file}",
            ]
        return argv

    def healthy(self) -> bool:
        context = self.tls.client_context() if self.tls is not None else None
        with urllib.request.urlopen(f"{self.client_url}/health", timeout=2, context=context) as resp:
            return bool(resp.status == 200 and b'"health":"true"' in resp.read())

    def start(self, *, unsafe_no_fsync: bool = False, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.component.start(self.argv(unsafe_no_fsync=unsafe_no_fsync))
        self.component.wait_until(self.healthy, timeout=timeout, what="healthy")

    def stop(self) -> None:
        self.component.stop()


def start_cluster(
    prefix: str, work_dir: Path, *, members: int = 3, tls: EtcdTLS | None = None, unsafe_no_fsync: bool = True
) -> list[EtcdServer]:
    """An etcd cluster of ``members`` on loopback (``<prefix>-0`` …), started together and healthy."""
    allocated = [EtcdServer.allocate(f"{prefix}-{i}", work_dir, tls=tls) for i in range(members)]
    initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in allocated)
    servers = [
        EtcdServer(m.name, work_dir, m.client_port, m.peer_port, tls=tls, initial_cluster=initial)
        for m in allocated
    ]
    for server in servers:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        server.component.start(server.argv(unsafe_no_fsync=unsafe_no_fsync))
    for server in servers:
        server.component.wait_until(server.healthy, timeout=60, what="healthy")
    return servers
