"""The pod's service account as client-go's ``rest.InClusterConfig`` reads it: one copy for both programs.

The API server (to reach its delegating kube-apiserver) and the controller manager (to reach kube-apiserver)
find the cluster the same way: the address from ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT``
(the kubelet sets both for the ``kubernetes`` Service; no cluster DNS needed) and ``ca.crt``, ``token`` and
``namespace`` under ``/var/run/secrets/kubernetes.io/serviceaccount``. The token is a bound token the kubelet
rotates (it expires within the hour), so it is re-read every minute, as client-go's cached token source does;
a failed re-read keeps the previous token.

It lives in ``api/`` because that is the one layer both programs may import (``.importlinter``); it reads the
environment and files only, speaks no HTTP and raises plain errors that each program maps into its own
family (``apiserver.delegation.client``, ``controllers.kube.incluster``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "TOKEN_REREAD_SECONDS",
    "NotInClusterError",
    "TokenFile",
    "service_host",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0
"""client-go's cachingTokenSource period for ``BearerTokenFile``."""


class NotInClusterError(Exception):
    """client-go's ``ErrNotInCluster``: the service's environment variables are not set."""


class TokenFile:
    """A bearer token read from a file, re-read once it is ``period`` seconds old (and kept if a re-read
    fails). The first read raises `OSError` (unreadable) or `ValueError` (empty)."""

    def __init__(self, path: Path, *, period: float = TOKEN_REREAD_SECONDS) -> None:
        self.path = path
        self.period = period
        self._token = self._read()
        self._read_at = time.monotonic()

    def _read(self) -> str:
        token = self.path.read_text().strip()
        if not token:
            raise ValueError(f"service account token {self.path} is empty")
        return token

    def token(self) -> str:
        if time.monotonic() - self._read_at >= self.period:
            # client-go keeps the cached token when the file is briefly unreadable (mid-rotation)
            with contextlib.suppress(OSError, ValueError):
                self._token = self._read()
            self._read_at = time.monotonic()
        return self._token


def service_host(environ: Mapping[str, str] | None = None) -> str:
    """``https://host:port`` of the ``kubernetes`` Service; `NotInClusterError` outside a pod."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise NotInClusterError(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
            " must be defined"
        )
    if ":" in host:  # an IPv6 address: net.JoinHostPort brackets it
        host = f"[{host}]"
    return f"https://{host}:{port}"
