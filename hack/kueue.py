"""Kueue (the ``kueue`` binary, hack/binaries.txt) against the local control plane (notes §8).

What a Kueue Deployment gets from its manifests, the local stack derives from the pinned module's own
files in the Go module cache (``sigs.k8s.io/kueue@<version>``, the exact sources of the binary, so they
never drift apart): the CRDs (``config/components/crd/bases``), the controller's RBAC
(``config/components/rbac``, with the ``kueue-`` name prefix and ``kueue-system`` namespace its
kustomization adds) and the webhooks (``config/components/webhook/manifests.yaml``). ARC's own choices live
in ``deploy/kueue/``.

Out of a cluster:
- the process authenticates with a client certificate for
  ``system:serviceaccount:kueue-system:kueue-controller-manager``, so Kueue's ClusterRoles and bindings
  apply unchanged;
- the webhooks are registered by URL (``https://127.0.0.1:<port><path>``) with the cluster CA in
  ``caBundle`` and a serving certificate with IP SAN 127.0.0.1 (Kueue's internal cert management wants a
  Service, so it is off); only the Job, Pod and ``kueue.x-k8s.io`` webhooks are kept (the integrations
  this stack enables), and the pod webhooks get the namespace selector of ``managedJobsNamespaceSelector``;
- ``--feature-gates=VisibilityOnDemand=false``: the visibility API server wants in-cluster config and exits;
- Kueue v0.12.3 reads its metrics serving certificate from the hard-coded ``/etc/kueue/metrics/certs``
  (``cmd/kueue/main.go``) whenever internal cert management is off and exits without it, so a certificate
  is written there once per machine (any valid pair will do: the metrics server only serves with it).
"""

from __future__ import annotations

import base64
import copy
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack import pki
from hack.binaries import REPO_ROOT, binary_path, go_module_cache, pinned_versions
from hack.kube import KubeHTTP
from hack.manifests import documents, install_crds_and_rbac

NAMESPACE = "kueue-system"
SERVICE_ACCOUNT = "kueue-controller-manager"
USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
NAME_PREFIX = "kueue-"
DEPLOY_DIR = REPO_ROOT / "deploy" / "kueue"
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
FEATURE_GATES = "VisibilityOnDemand=false"
# The webhooks of the integrations the stack enables (batch/job, pod) and of Kueue's own kinds.
_WEBHOOK_PATHS = ("/mutate-batch-v1-job", "/validate-batch-v1-job", "/mutate--v1-pod", "/validate--v1-pod")
_POD_WEBHOOK_PATHS = ("/mutate--v1-pod", "/validate--v1-pod")
_RBAC_FILES = ("role.yaml", "role_binding.yaml", "metrics_auth_role.yaml", "metrics_auth_role_binding.yaml")


def module_dir() -> Path:
    """The pinned Kueue module's sources (CRDs, RBAC, webhooks) in the Go module cache."""
    return go_module_cache() / "sigs.k8s.io" / f"kueue@{pinned_versions()['kueue']}"


def crds() -> list[dict[str, Any]]:
    bases = module_dir() / "config" / "components" / "crd" / "bases"
    return [doc for path in sorted(bases.glob("*.yaml")) for doc in documents(path)]


def rbac() -> list[dict[str, Any]]:
    """Kueue's controller ClusterRoles and bindings, named as its ``config/default`` kustomization does."""
    objects = []
    for name in _RBAC_FILES:
        for doc in documents(module_dir() / "config" / "components" / "rbac" / name):
            doc["metadata"]["name"] = NAME_PREFIX + doc["metadata"]["name"]
            if "roleRef" in doc:
                doc["roleRef"]["name"] = NAME_PREFIX + doc["roleRef"]["name"]
                doc["subjects"] = [
                    {"kind": "ServiceAccount", "name": NAME_PREFIX + s["name"], "namespace": NAMESPACE}
                    for s in doc["subjects"]
                ]
            objects.append(doc)
    return objects


@dataclass(frozen=True)
class Kueue:
    """Kueue's files under ``<work>/kueue/`` and its three loopback ports."""

    work_dir: Path
    kubeconfig: Path
    webhook_port: int
    health_port: int
    metrics_port: int

    @property
    def dir(self) -> Path:
        return self.work_dir / "kueue"

    @property
    def config_file(self) -> Path:
        return self.dir / "configuration.yaml"

    @property
    def cert_dir(self) -> Path:
        """The webhook server's tls.crt/tls.key."""
        return self.dir / "webhook-certs"

    def configuration(self) -> dict[str, Any]:
        """deploy/kueue/configuration.yaml with this stack's addresses filled in."""
        config: dict[str, Any] = yaml.safe_load((DEPLOY_DIR / "configuration.yaml").read_text())
        config["health"] = {"healthProbeBindAddress": f"127.0.0.1:{self.health_port}"}
        config["metrics"] = {"bindAddress": f"127.0.0.1:{self.metrics_port}"}
        config["webhook"] = {"host": "127.0.0.1", "port": self.webhook_port, "certDir": str(self.cert_dir)}
        return config

    def prepare(self, ca: pki.KeyPair) -> None:
        """Serving certificates and the configuration file."""
        pki.issue(
            ca, self.cert_dir, "tls", common_name="kueue-webhook", ip_addresses=["127.0.0.1"], server=True
        )
        if not (METRICS_CERT_DIR / "tls.crt").exists() or not (METRICS_CERT_DIR / "tls.key").exists():
            pki.issue(
                ca,
                METRICS_CERT_DIR,
                "tls",
                common_name="kueue-metrics",
                dns_names=["localhost"],
                ip_addresses=["127.0.0.1"],
                server=True,
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.configuration(), sort_keys=False))

    def install(self, client: KubeHTTP) -> None:
        """Namespace, CRDs (Established before Kueue starts) and RBAC."""
        install_crds_and_rbac(client, DEPLOY_DIR / "namespace.yaml", crds(), rbac())

    def argv(self) -> list[str]:
        return [
            str(binary_path("kueue")),
            f"--config={self.config_file}",
            f"--kubeconfig={self.kubeconfig}",
            f"--feature-gates={FEATURE_GATES}",
        ]

    def ready(self) -> bool:
        """``/readyz`` answers once the webhook server serves."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)

    def webhook_configurations(self, ca_bundle: bytes) -> list[dict[str, Any]]:
        """Kueue's (Mutating|Validating)WebhookConfigurations, kept webhooks pointed at 127.0.0.1 by URL."""
        namespace_selector = self.configuration()["managedJobsNamespaceSelector"]
        bundle = base64.b64encode(ca_bundle).decode()
        configurations = []
        manifests = module_dir() / "config" / "components" / "webhook" / "manifests.yaml"
        for doc in documents(manifests):
            webhooks = []
            for webhook in doc["webhooks"]:
                path = webhook["clientConfig"]["service"]["path"]
                if path not in _WEBHOOK_PATHS and "-kueue-x-k8s-io-" not in path:
                    continue
                webhook = copy.deepcopy(webhook)
                webhook["clientConfig"] = {
                    "url": f"https://127.0.0.1:{self.webhook_port}{path}",
                    "caBundle": bundle,
                }
                if path in _POD_WEBHOOK_PATHS:
                    webhook["namespaceSelector"] = namespace_selector
                webhooks.append(webhook)
            doc["metadata"]["name"] = NAME_PREFIX + doc["metadata"]["name"]
            doc["webhooks"] = webhooks
            configurations.append(doc)
        return configurations

    def register_webhooks(self, client: KubeHTTP, ca_bundle: bytes) -> None:
        for configuration in self.webhook_configurations(ca_bundle):
            client.apply(configuration)
