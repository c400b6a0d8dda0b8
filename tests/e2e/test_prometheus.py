"""The local stack's real Prometheus scrapes ARC and kube-apiserver, evaluates deploy/prometheus/'s rules, and
a failing transfer makes ARCArtifactWorkflowsFailed fire (issue 20, item 2). The module shortens the scrape
and evaluation intervals to 1 s for its run (``Prometheus.reload``) and restores them afterwards."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import LocalCluster
from hack.prometheus import Prometheus
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, eventually, unique
from tests.e2e.test_order_controller import ManagerProcess
from tests.e2e.test_transfer import FAILING_TEMPLATE, Tenant, transfer_manager

pytestmark = pytest.mark.e2e

__all__ = ["transfer_manager"]  # the fixture: a controller manager of this module, both controllers

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "arc-dashboard.json"
JOBS = {"arc-apiserver", "kube-apiserver", "arc-controller-manager", "argo-workflow-controller"}


@pytest.fixture(scope="module")
def prom(local_cluster: LocalCluster, transfer_manager: ManagerProcess) -> Iterator[Prometheus]:
    """The stack's Prometheus, scraping this module's controller manager every second."""
    prometheus = local_cluster.prometheus
    prometheus.set_targets([f"127.0.0.1:{transfer_manager.port}"])
    prometheus.reload(interval="1s")
    try:
        eventually(
            lambda: {t["labels"]["job"] for t in prometheus.targets() if t["health"] == "up"} >= JOBS,
            timeout=30,
            what=f"every job scraped; targets: {_target_health(prometheus)}",
        )
        yield prometheus
    finally:
        prometheus.set_targets([f"127.0.0.1:{local_cluster.ports.arc_controller_manager}"])
        prometheus.reload()


def _target_health(prometheus: Prometheus) -> list[tuple[str, str, str]]:
    return [(t["labels"]["job"], t["health"], t.get("lastError", "")) for t in prometheus.targets()]


def _value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def test_every_component_is_scraped_with_authorization(prom: Prometheus, local_cluster: LocalCluster) -> None:
    health = {t["labels"]["job"]: t for t in prom.targets()}
    assert set(health) == JOBS, health
    assert (
        health["arc-apiserver"]["scrapeUrl"]
        == f"https://127.0.0.1:{local_cluster.ports.arc_apiserver}/metrics"
    )
    # Each job's own series arrived: ARC's request counter, kube-apiserver's, the controllers' work queues.
    assert prom.query('sum(apiserver_request_total{job="arc-apiserver"})')
    assert prom.query('sum(apiserver_request_total{job="kube-apiserver"})')
    queues = {s["metric"]["name"] for s in prom.query('workqueue_depth{job="arc-controller-manager"}')}
    assert {"order", "artifactworkflow"} <= queues, queues
    # Argo's, from its own network namespace through the host's loopback.
    argo = health["argo-workflow-controller"]["scrapeUrl"]
    assert argo == f"http://127.0.0.1:{local_cluster.ports.argo_metrics}/metrics"
    assert prom.query('argo_workflows_gauge{job="argo-workflow-controller"}')
    # The rules are loaded and evaluated without errors.
    groups = prom.api("rules")["groups"]
    assert {g["name"] for g in groups} == {"arc.recording", "arc.alerts"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]


def _failed_alert(prom: Prometheus) -> dict[str, Any] | None:
    firing = [a for a in prom.alerts() if a["labels"]["alertname"] == "ARCArtifactWorkflowsFailed"]
    return firing[0] if firing else None


def test_a_failing_transfer_fires_the_failure_alert(
    prom: Prometheus, kubectl: Kubectl, tmp_path: Path, transfer_manager: ManagerProcess
) -> None:
    before = prom.query('sum(arc_artifactworkflows{phase="Failed"})')
    assert before, "the controller manager's phase gauge is not scraped"
    failed_before = _value(before[0])
    if failed_before == 0:
        assert _failed_alert(prom) is None, "the alert fires with no Failed ArtifactWorkflow"

    tenant = Tenant(kubectl, unique("prom"))
    try:
        template = tmp_path / "template.yaml"
        template.write_text(FAILING_TEMPLATE)
        kubectl.run("apply", "-n", tenant.ns, "-f", str(template))
        tenant.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "ArtifactType",
                "metadata": {"name": "flaky"},
                "spec": {
                    "workflowTemplateRef": {"name": "slow-or-failing", "clusterScope": False},
                    "queueName": "arc",
                },
            }
        )
        tenant.order("broken", {"type": "flaky", "spec": {"exitCode": 3, "seconds": 1}})

        def firing() -> bool:
            alert = _failed_alert(prom)
            return (
                alert is not None
                and alert["state"] == "firing"
                and float(alert["value"]) >= failed_before + 1
            )

        eventually(
            firing, timeout=120, interval=0.5, what=f"ARCArtifactWorkflowsFailed firing: {prom.alerts()}"
        )
        aws = tenant.items("artifactworkflows.arc.opendefense.cloud")
        assert [a["status"]["phase"] for a in aws] == ["Failed"], aws
        alert = _failed_alert(prom)
        assert alert is not None
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"].endswith("docs/operations.md#arcartifactworkflowsfailed")
    finally:
        tenant.delete()


def _panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    return queries


def test_every_dashboard_panel_returns_series(prom: Prometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = _panel_queries(dashboard)
    assert len(queries) >= 8, queries
    # $__rate_interval and $job are Grafana's; the test substitutes what Grafana would.
    empty = []
    for title, expr in queries:
        concrete = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
        if not prom.query(concrete):
            empty.append((title, concrete))
    assert not empty, f"dashboard panels without data: {empty}"


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the manager's certificate is self-signed (no --metrics-cert-dir)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _service_account_token(kubectl: Kubectl, name: str, *, metrics_reader: bool) -> str:
    kubectl.run("create", "serviceaccount", "-n", "arc-system", name)
    if metrics_reader:
        kubectl.run("apply", "-f", str(REPO / "deploy" / "prometheus" / "rbac.yaml"))
        kubectl.run(
            "create",
            "clusterrolebinding",
            name,
            "--clusterrole=arc-metrics-reader",
            f"--serviceaccount=arc-system:{name}",
        )
    return kubectl.run("create", "token", "-n", "arc-system", name, "--duration=1h").strip()


def test_secure_metrics_need_a_token_allowed_to_get_metrics(
    prom: Prometheus,
    kubectl: Kubectl,
    local_cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
    transfer_manager: ManagerProcess,
) -> None:
    """--metrics-secure (the chart's default): TokenReview and SubjectAccessReview decide, as for kube's own
    components; Prometheus scrapes with a token of a service account bound to arc-metrics-reader."""
    suffix = unique("m")
    reader = _service_account_token(kubectl, f"scraper-{suffix}", metrics_reader=True)
    stranger = _service_account_token(kubectl, f"nobody-{suffix}", metrics_reader=False)
    # A standby of this module's manager (same Lease): it serves /metrics without reconciling.
    secure = ManagerProcess(
        local_cluster.controller_manager_kubeconfig,
        tmp_path_factory.mktemp("secure-manager") / "manager.log",
        lease="arc-transfer-tests",
    )
    secure.stop()
    secure.argv.append("--metrics-secure")
    secure.start()
    base = f"https://127.0.0.1:{secure.port}"
    token_file = tmp_path_factory.mktemp("prometheus-token") / "token"
    token_file.write_text(reader)
    try:
        eventually(lambda: _get(f"{base}/readyz")[0] == 200, timeout=60, what=f"ready; log:\n{secure.logs()}")
        assert _get(f"{base}/metrics") == (401, "Unauthorized\n")
        assert _get(f"{base}/metrics", "not-a-token") == (401, "Unauthorized\n")
        status, body = _get(f"{base}/metrics", stranger)
        assert (status, body) == (
            403,
            f"Authorization denied for user system:serviceaccount:arc-system:nobody-{suffix}\n",
        )
        status, body = _get(f"{base}/metrics", reader)
        assert status == 200 and "\nworkqueue_depth{" in body, body[:300]
        assert _get(f"http://127.0.0.1:{secure.port}/metrics")[0] != 200  # TLS only

        prom.set_targets([f"127.0.0.1:{secure.port}"])
        prom.reload(interval="1s", controller_manager_token=token_file)

        def scraped() -> bool:
            targets = [t for t in prom.targets() if t["labels"]["job"] == "arc-controller-manager"]
            return [(t["scrapeUrl"], t["health"]) for t in targets] == [(f"{base}/metrics", "up")]

        eventually(scraped, timeout=30, what=f"the secure manager scraped: {_target_health(prom)}")
    finally:
        prom.set_targets([f"127.0.0.1:{transfer_manager.port}"])
        prom.reload(interval="1s")
        code = secure.stop()
        assert code == 0, secure.logs()
