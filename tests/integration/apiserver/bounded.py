"""Processes for the long proof suites that fit under ``ulimit -v`` (``make fuzz``, ``make chaos``).

etcd maps its whole backend quota (8 GiB by ``hack.etcd``'s default) into its address space, so under a
``ulimit -v`` it must run with a smaller quota; ARC's API server gets its own ceiling (``prlimit --as``) so
that a request making it grow without bound ends the server (a finding), not the machine.
"""

from __future__ import annotations

import os

from hack.arcapiserver import ArcApiServer
from hack.binaries import binary_path
from hack.etcd import EtcdServer

ETCD_QUOTA = 1024 * 1024 * 1024
SERVER_VMEM = int(os.environ.get("ARC_SERVER_VMEM_MB", "4096")) * 1024 * 1024


def start_small_etcd(etcd: EtcdServer) -> None:
    """``etcd`` (a fresh or a killed one, same data and ports) with a 1 GiB backend quota."""
    binary_path("etcd")  # fails with the build hint when etcd is not built
    etcd.data_dir.mkdir(parents=True, exist_ok=True)
    etcd.component.start([*etcd.argv(unsafe_no_fsync=True), f"--quota-backend-bytes={ETCD_QUOTA}"])
    etcd.component.wait_until(etcd.healthy, timeout=30, what="healthy")


class BoundedApiServer(ArcApiServer):
    """``arc-apiserver`` under ``prlimit --as``: the same process, with a ceiling on its memory."""

    def argv(self) -> list[str]:
        return ["prlimit", f"--as={SERVER_VMEM}", "--", *super().argv()]
