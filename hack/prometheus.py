"""Prometheus (hack/binaries.txt) on the local stack, scraping what docs/operations.md says to scrape.

The scrape jobs carry the names the rules of ``deploy/prometheus/arc-rules.yaml`` select on:

- ``arc-apiserver`` and ``kube-apiserver``: HTTPS with a client certificate of the cluster CA for the user
  ``arc-prometheus``, bound to the ClusterRole ``arc-metrics-reader`` of ``deploy/prometheus/rbac.yaml``
  (``get`` on the non-resource URL ``/metrics``): both API servers authenticate and authorize ``/metrics``
  as kube components do (ARC's by a delegated SubjectAccessReview).
- ``arc-controller-manager``: the targets come from a file (``file_sd``), so a test that runs its own
  controller manager points the job at it (``set_targets``); Prometheus re-reads the file when it changes.
  The stack's manager runs with ``--metrics-secure`` as in the Helm chart: HTTPS with the bearer token of the
  service account ``arc-prometheus`` (``controller_manager_token``; the manager reviews it with
  kube-apiserver). Tests that run their own plain-HTTP managers write a configuration without a token.

- ``argo-workflow-controller``: Argo's metrics (plain HTTP), published on the host's loopback from the
  controller's own network namespace (hack/argo.py, hack/loopback_netns.py).

Prometheus binds 127.0.0.1 only; its TSDB lives in ``<work>/data/prometheus``. ``reload`` rewrites the
configuration (e.g. a test's shorter intervals) and asks Prometheus to re-read it (``/-/reload``).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.binaries import REPO_ROOT, binary_path

DEPLOY_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = DEPLOY_DIR / "arc-rules.yaml"
USER = "arc-prometheus"
"""The user of Prometheus' client certificate (CN) on the local stack."""
SERVICE_ACCOUNT = "arc-prometheus"
"""Prometheus' service account in arc-system (a token for the controller manager's ``--metrics-secure``)."""
CLUSTER_ROLE = "arc-metrics-reader"
CONTROLLER_MANAGER_JOB = "arc-controller-manager"


@dataclass(frozen=True)
class Prometheus:
    work_dir: Path
    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    """Prometheus' client certificate (``USER``) for the API servers."""
    arc_apiserver: str
    """``host:port`` of ARC's API server."""
    kube_apiserver: str
    controller_manager: str
    """The default target of ``arc-controller-manager`` (``set_targets`` replaces it)."""
    argo_workflow_controller: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.work_dir / "prometheus" / "prometheus.yml"

    @property
    def targets_file(self) -> Path:
        return self.work_dir / "prometheus" / f"{CONTROLLER_MANAGER_JOB}.json"

    @property
    def token_file(self) -> Path:
        return self.work_dir / "prometheus" / "token"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data" / "prometheus"

    def config(
        self, *, interval: str = "15s", controller_manager_token: Path | None = None
    ) -> dict[str, Any]:
        tls = {"ca_file": str(self.ca_file), "cert_file": str(self.cert_file), "key_file": str(self.key_file)}

        def https(job: str, target: str) -> dict[str, Any]:
            return {
                "job_name": job,
                "scheme": "https",
                "tls_config": tls,
                "static_configs": [{"targets": [target]}],
            }

        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                https("arc-apiserver", self.arc_apiserver),
                https("kube-apiserver", self.kube_apiserver),
                {
                    "job_name": "argo-workflow-controller",
                    "static_configs": [{"targets": [self.argo_workflow_controller]}],
                },
                {
                    "job_name": CONTROLLER_MANAGER_JOB,
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
                    **(
                        {
                            "scheme": "https",
                            # The manager's serving certificate is self-signed (no --metrics-cert-dir here).
                            "tls_config": {"insecure_skip_verify": True},
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(controller_manager_token),
                            },
                        }
                        if controller_manager_token is not None
                        else {}
                    ),
                },
            ],
        }

    def write_config(self, *, interval: str = "15s", controller_manager_token: Path | None = None) -> None:
        """The configuration, and the controller manager's default target unless a targets file exists."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.config(interval=interval, controller_manager_token=controller_manager_token)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        if not self.targets_file.exists():
            self.set_targets([self.controller_manager])

    def set_targets(self, targets: Sequence[str]) -> None:
        """Point the ``arc-controller-manager`` job at ``targets`` (``host:port``), atomically."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": list(targets)}]))
        tmp.replace(self.targets_file)

    def argv(self) -> list[str]:
        return [
            str(binary_path("prometheus")),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.format=json",
        ]

    def _get(self, path: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as resp:
            body: bytes = resp.read()
            return body

    def ready(self) -> bool:
        return self._get("/-/ready", timeout=2).startswith(b"Prometheus Server is Ready")

    def reload(self, *, interval: str = "15s", controller_manager_token: Path | None = None) -> None:
        """Rewrite the configuration (see ``config``) and make the running Prometheus re-read it."""
        self.write_config(interval=interval, controller_manager_token=controller_manager_token)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()

    def api(self, path: str, **params: str) -> Any:
        """``/api/v1/<path>``'s ``data`` (raises on an answer whose status is not ``success``)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = json.loads(self._get(f"/api/v1/{path}{query}", timeout=30))
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {answer}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts
