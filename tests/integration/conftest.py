"""Fixtures for integration tests: one real etcd per test session (the binary built by hack/).

envtest-style: a temporary data dir, free ports, ``--unsafe-no-fsync``, stopped at the end of the session.
Tests share it and isolate themselves by key prefix (a unique ``KeyLayout.prefix`` each).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.arcapiserver import ArcApiServer
from hack.binaries import binary_path
from hack.etcd import EtcdServer


def start_etcd(name: str, work_dir: Path) -> EtcdServer:
    """A fresh single-member etcd; fails the test (not skips) when the binary is not built."""
    try:
        binary_path("etcd")
    except FileNotFoundError as exc:
        pytest.fail(f"integration tests need etcd: {exc}")
    server = EtcdServer.allocate(name, work_dir)
    server.start(unsafe_no_fsync=True)
    return server


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = start_etcd("etcd-integration", tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def arc_apiserver(
    etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArcApiServer]:
    """The real ``arc-apiserver`` process in standalone mode on the session's etcd (its own key prefix).

    ``arc_apiserver.kubeconfig`` is an admin kubeconfig for kubectl; ``arc_apiserver.url`` its address.
    """
    server = ArcApiServer(
        tmp_path_factory.mktemp("arc-apiserver"),
        etcd_server.client_url,
        etcd_prefix="/arc-integration",
        extra_args=("--watch-bookmark-interval=1",),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
