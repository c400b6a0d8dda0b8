"""Where the controller manager finds kube-apiserver, as controller-runtime's ``config.GetConfig`` does.

Order: ``--kubeconfig``, then ``$KUBECONFIG``, then the pod's service account (client-go's
``rest.InClusterConfig``), then ``~/.kube/config``. In a pod the service account is:
- the address ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`` (the kubelet sets both for the
  ``kubernetes`` Service; no cluster DNS needed);
- ``ca.crt``, ``token`` and ``namespace`` under ``/var/run/secrets/kubernetes.io/serviceaccount``. The token
  is a bound token the kubelet rotates (it expires within the hour), so it is re-read every minute, as
  client-go's cached token source does; a failed re-read keeps the previous token.

This module reads files and the environment only; `controllers.kube.client` turns the result into a
configured HTTP client.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controllers.kube.errors import ConfigError

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "InCluster",
    "NotInClusterError",
    "TokenFile",
    "in_cluster",
    "in_cluster_namespace",
    "resolve_kubeconfig",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0


class NotInClusterError(ConfigError):
    """client-go's ``ErrNotInCluster``: the service's environment variables are not set."""


class TokenFile:
    """A bearer token from a file, re-read once it is ``period`` seconds old."""

    def __init__(self, path: Path, *, period: float = TOKEN_REREAD_SECONDS) -> None:
        self.path = path
        self.period = period
        self._token = self._read()
        self._read_at = time.monotonic()

    def _read(self) -> str:
        try:
            token = self.path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"service account token {self.path}: {exc}") from exc
        if not token:
            raise ConfigError(f"service account token {self.path} is empty")
        return token

    def token(self) -> str:
        if time.monotonic() - self._read_at >= self.period:
            with contextlib.suppress(ConfigError):
                self._token = self._read()
            self._read_at = time.monotonic()
        return self._token


@dataclass(frozen=True)
class InCluster:
    host: str
    """``https://host:port``"""
    ca_file: Path
    token: TokenFile


def in_cluster(
    service_account_dir: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> InCluster:
    """The pod's service account; `NotInClusterError` outside a pod, `ConfigError` if its files are bad."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise NotInClusterError(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
            " must be defined"
        )
    if ":" in host:  # an IPv6 address: net.JoinHostPort brackets it
        host = f"[{host}]"
    ca_file = service_account_dir / "ca.crt"
    if not ca_file.is_file():
        raise ConfigError(f"service account CA {ca_file} does not exist")
    return InCluster(f"https://{host}:{port}", ca_file, TokenFile(service_account_dir / "token"))


def in_cluster_namespace(service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> str | None:
    """The pod's namespace (the service account's ``namespace`` file), or None outside a pod."""
    try:
        namespace = (service_account_dir / "namespace").read_text().strip()
    except OSError:
        return None
    return namespace or None


def resolve_kubeconfig(
    flag: Path | None, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Path | None:
    """The kubeconfig file to use, or None for the in-cluster service account (GetConfig's order).

    ``~/.kube/config`` is used only when the process is not in a pod.
    """
    env = os.environ if environ is None else environ
    if flag is not None:
        return flag
    if env.get("KUBECONFIG"):
        return Path(env["KUBECONFIG"])
    if env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT"):
        return None
    default = (home if home is not None else Path.home()) / ".kube" / "config"
    return default if default.is_file() else None
