"""Where the controller manager finds kube-apiserver, as controller-runtime's ``config.GetConfig`` does.

Order: ``--kubeconfig``, then ``$KUBECONFIG``, then the pod's service account (client-go's
``rest.InClusterConfig``), then ``~/.kube/config``. The service account is read by `api.incluster` (shared
with the API server); this module maps its errors into the controllers' `ConfigError` family.

This module reads files and the environment only; `controllers.kube.client` turns the result into a
configured HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from api import incluster
from api.incluster import SERVICE_ACCOUNT_DIR, TokenFile, service_host
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


class NotInClusterError(ConfigError, incluster.NotInClusterError):
    """client-go's ``ErrNotInCluster``: the service's environment variables are not set."""


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
    try:
        host = service_host(environ)
    except incluster.NotInClusterError as exc:
        raise NotInClusterError(str(exc)) from None
    ca_file = service_account_dir / "ca.crt"
    if not ca_file.is_file():
        raise ConfigError(f"service account CA {ca_file} does not exist")
    token = service_account_dir / "token"
    try:
        return InCluster(host, ca_file, TokenFile(token))
    except OSError as exc:
        raise ConfigError(f"service account token {token}: {exc}") from exc
    except ValueError as exc:  # empty
        raise ConfigError(str(exc)) from exc


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
