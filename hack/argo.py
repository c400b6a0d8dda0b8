"""Argo's workflow-controller (hack/binaries.txt) against the local control plane (notes §8).

The CRDs (``manifests/base/crds/minimal``) and the controller's RBAC
(``manifests/cluster-install/workflow-controller-rbac``, in namespace ``argo`` as its kustomization puts
it) are read from the pinned module in the Go module cache — the exact sources the binary was built from,
so they cannot drift apart and need no copy in the tree. ARC's own settings live in ``deploy/argo/``: the
namespace and the ``workflow-controller-configmap`` the controller refuses to start without.

argo-server (the ``argo`` CLI's ``server`` command, same module and version) serves Argo's API — what Argo's
UI shows — for the ``argo`` CLI: ``--auth-mode=client``, so every request carries the caller's own
Kubernetes bearer token and kube-apiserver's RBAC decides (an SRE's token lists what the SRE may list); its
own identity (``system:serviceaccount:argo:argo-server``, Argo's ``argo-server-cluster-role``) only reads its
configuration. TLS with the certificate it makes itself (self-signed), like a fresh install. It binds every
interface too, so it runs in a loopback-only namespace of its own and its port is published on the host's
``127.0.0.1:<server_port>``.

Out of a cluster the controller authenticates with a client certificate for
``system:serviceaccount:argo:argo``, so Argo's ClusterRole ``argo-cluster-role`` and Role ``argo-role``
apply unchanged; one instance runs with ``LEADER_ELECTION_DISABLE=true``. Argo v3.6.5 cannot bind its
servers to 127.0.0.1 (metrics on ``:<port>``, ``/healthz`` on ``:6060``, both hard-coded), so it runs in a
network namespace of its own that has only loopback (``hack.loopback_netns``): it reaches kube-apiserver
through a forwarded ``127.0.0.1:<port>``, and its metrics (``:9090`` inside) are published on the host's
``127.0.0.1:<metrics_port>`` for Prometheus. Nothing of Argo listens on the host's other interfaces.
"""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.binaries import REPO_ROOT, binary_path, go_module_cache, pinned_versions
from hack.kube import KubeHTTP
from hack.manifests import documents, install_crds_and_rbac

NAMESPACE = "argo"
SERVICE_ACCOUNT = "argo"
USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
DEPLOY_DIR = REPO_ROOT / "deploy" / "argo"
# One instance, no Lease; requeue after 1s (default 10s; Argo's own `make start` uses 1s) keeps steps quick.
ENV: Mapping[str, str] = {"LEADER_ELECTION_DISABLE": "true", "DEFAULT_REQUEUE_TIME": "1s"}
SERVER_SERVICE_ACCOUNT = "argo-server"
SERVER_USER = f"system:serviceaccount:{NAMESPACE}:{SERVER_SERVICE_ACCOUNT}"
SERVER_PORT = 2746
"""argo-server's port inside its namespace (its default)."""
_NAMESPACED_KINDS = ("Role", "RoleBinding")
METRICS_PORT = 9090
"""Argo's metrics port inside its namespace (deploy/argo/workflow-controller-configmap.yaml)."""
# Logged by WorkflowController.Run once it has its configuration (workflow/controller/controller.go).
STARTED_LOG_LINE = "Starting Workflow Controller"


def module_dir() -> Path:
    """The pinned Argo Workflows module's sources (CRDs, RBAC) in the Go module cache."""
    return go_module_cache() / "github.com" / "argoproj" / f"argo-workflows/v3@{pinned_versions()['argo']}"


def crds() -> list[dict[str, Any]]:
    minimal = module_dir() / "manifests" / "base" / "crds" / "minimal"
    return [doc for path in sorted(minimal.glob("argoproj.io_*.yaml")) for doc in documents(path)]


def rbac() -> list[dict[str, Any]]:
    """The controller's roles (and Argo's aggregated view/edit/admin ones), bound to the ``argo`` account,
    and argo-server's ClusterRole, bound to ``argo-server``."""
    objects = []
    install = module_dir() / "manifests" / "cluster-install"
    paths = [
        *sorted((install / "workflow-controller-rbac").glob("*.yaml")),
        *sorted((install / "argo-server-rbac").glob("*.yaml")),
    ]
    for path in paths:
        if path.name == "kustomization.yaml":
            continue
        for doc in documents(path):
            if doc["kind"] in _NAMESPACED_KINDS:
                doc["metadata"]["namespace"] = NAMESPACE
            for subject in doc.get("subjects", []):
                subject["namespace"] = NAMESPACE
            objects.append(doc)
    return objects


@dataclass(frozen=True)
class WorkflowController:
    kubeconfig: Path
    kube_apiserver_port: int
    """kube-apiserver's port on 127.0.0.1 (forwarded into Argo's namespace)."""
    metrics_port: int
    """The host's 127.0.0.1 port publishing Argo's metrics."""

    def install(self, client: KubeHTTP) -> None:
        """Namespace, CRDs (Established before the controller starts), RBAC and the controller's ConfigMap."""
        install_crds_and_rbac(client, DEPLOY_DIR / "namespace.yaml", crds(), rbac())
        client.apply_manifest(DEPLOY_DIR / "workflow-controller-configmap.yaml")

    def argv(self) -> list[str]:
        return [
            sys.executable,  # by path: the components run in the work directory, where `hack` is no package
            str(REPO_ROOT / "hack" / "loopback_netns.py"),
            f"--connect={self.kube_apiserver_port}",
            f"--publish={self.metrics_port}:{METRICS_PORT}",
            "--",
            str(binary_path("workflow-controller")),
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={NAMESPACE}",
            "--configmap=workflow-controller-configmap",
            "--log-format=json",
        ]


@dataclass(frozen=True)
class ArgoServer:
    kubeconfig: Path
    kube_apiserver_port: int
    """kube-apiserver's port on 127.0.0.1 (forwarded into argo-server's namespace)."""
    port: int
    """The host's 127.0.0.1 port publishing argo-server (HTTPS)."""

    @property
    def address(self) -> str:
        """What the argo CLI's ``ARGO_SERVER`` (or ``--argo-server``) takes."""
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(REPO_ROOT / "hack" / "loopback_netns.py"),
            f"--connect={self.kube_apiserver_port}",
            f"--publish={self.port}:{SERVER_PORT}",
            "--",
            # In client mode argo-server builds each caller's client from the default loading rules
            # ($KUBECONFIG: server and CA, the caller's token, without its own certificate), not --kubeconfig.
            "env",
            f"KUBECONFIG={self.kubeconfig}",
            str(binary_path("argo")),
            "server",
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={NAMESPACE}",
            "--auth-mode=client",
            "--configmap=workflow-controller-configmap",
            "--log-format=json",
        ]

    def ready(self) -> bool:
        """Its API answers: ``GET /api/v1/version`` is 401 without a token (``--auth-mode=client``)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # its own self-signed certificate
        try:
            with urllib.request.urlopen(f"https://{self.address}/api/v1/version", context=context, timeout=2):
                return True
        except urllib.error.HTTPError as error:
            return error.code == 401
