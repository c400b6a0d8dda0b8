"""Scheduled Orders on the real control plane (issue 19 item 1), with real controller managers.

Cron has minute granularity; a schedule of a few seconds uses `@every 10s` (robfig/cron's constant-delay
form, which CronJob, Argo's CronWorkflow and the Go ARC accept too), so no test-only clock is needed.
The managers run the Order controller only: an ArtifactWorkflow stays active until the test writes its
status, so "active" is in the test's hands.

- exactly one run per scheduled time across a graceful restart of the manager and a leader handover
  (a standby takes the Lease from a stopping leader): the scheduled times of the ArtifactWorkflows are
  every time of the schedule from the first to the last, each once;
- Forbid holds a time back while the previous run is active; with startingDeadlineSeconds that time is
  reported (Warning MissedSchedule, condition Scheduled=False) and never run late;
- a bad schedule or time zone is a 422 naming each field.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import LocalCluster
from hack.process import free_port
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCHEDULED_TIME = "arc.opendefense.cloud/scheduled-time"
PERIOD = 10


class Manager:
    """`python -m controllers` with leader election on the test's own Lease (Order controller only)."""

    def __init__(self, kubeconfig: Path, log: Path, lease: str) -> None:
        self.kubeconfig, self.log, self.lease = kubeconfig, log, lease
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> Manager:
        self.port = free_port()
        argv = [
            sys.executable, "-m", "controllers", "--kubeconfig", str(self.kubeconfig), "--leader-elect",
            "--leader-election-id", self.lease, "--concurrency", "2", "--no-artifact-workflow-controller",
            "--metrics-bind-address", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: a graceful stop, which releases the Lease."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def setup(local_cluster: LocalCluster, kubectl: Kubectl, namespace: str) -> str:
    kubectl.run("create", "namespace", "arc-system", check=False)
    kubectl.run("apply", "-f", str(REPO / "deploy/controllers/rbac.yaml"))
    for name in ("src", "dst"):
        endpoint = {
            "apiVersion": API_VERSION,
            "kind": "Endpoint",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "oci", "remoteURL": f"{name}.example/library"},
        }
        kubectl.run("apply", "-f", "-", stdin=json.dumps(endpoint))
    return namespace


@pytest.fixture
def managers(local_cluster: LocalCluster) -> Iterator[list[Manager]]:
    """The managers a test started; all stopped at its end (their log tails printed)."""
    started: list[Manager] = []
    yield started
    for i, mgr in enumerate(started):
        mgr.stop()
        print(f"--- manager {i} log tail ---\n{mgr.tail()}")


def new_manager(cluster: LocalCluster, tmp_path: Path, managers: list[Manager], lease: str) -> Manager:
    mgr = Manager(cluster.kubeconfig, tmp_path / f"manager-{len(managers)}.log", lease).start()
    managers.append(mgr)
    return mgr


def scheduled_order(namespace: str, **cron: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}, "cron": cron},
            "artifacts": [{"type": "oci", "spec": {"image": "library/nginx:1.27"}}],
        },
    }


def runs(kubectl: Kubectl, namespace: str) -> list[datetime]:
    """The scheduled times of the Order's ArtifactWorkflows, sorted (a doubled time appears twice)."""
    items = kubectl.json("get", "artifactworkflows.arc.opendefense.cloud", "-n", namespace)["items"]
    return sorted(datetime.fromisoformat(i["metadata"]["annotations"][SCHEDULED_TIME]) for i in items)


def wait_runs(kubectl: Kubectl, namespace: str, count: int, timeout: float) -> list[datetime]:
    eventually(lambda: len(runs(kubectl, namespace)) >= count, timeout=timeout, what=f"{count} runs")
    return runs(kubectl, namespace)


def test_exactly_one_run_per_time_across_a_restart_and_a_leader_handover(
    local_cluster: LocalCluster, kubectl: Kubectl, setup: str, managers: list[Manager], tmp_path: Path
) -> None:
    namespace = setup
    lease = f"arc-schedule-{uuid.uuid4().hex[:6]}"
    first = new_manager(local_cluster, tmp_path, managers, lease)
    eventually(first.ready, timeout=60, what="the manager ready")
    order = scheduled_order(
        namespace, schedules=[f"@every {PERIOD}s"], successfulJobsHistoryLimit=50, failedJobsHistoryLimit=50
    )
    kubectl.run("apply", "-f", "-", stdin=json.dumps(order))
    wait_runs(kubectl, namespace, 2, timeout=3 * PERIOD)

    first.stop()  # a restart: the Lease is released, a new process takes it
    restarted = new_manager(local_cluster, tmp_path, managers, lease)
    eventually(restarted.ready, timeout=60, what="the restarted manager ready")
    before = len(runs(kubectl, namespace))
    wait_runs(kubectl, namespace, before + 2, timeout=3 * PERIOD)

    new_manager(local_cluster, tmp_path, managers, lease)  # a standby
    time.sleep(3)  # the standby is up and waiting for the Lease
    restarted.stop()  # a leader handover
    before = len(runs(kubectl, namespace))
    times = wait_runs(kubectl, namespace, before + 2, timeout=3 * PERIOD + 15)

    steps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert steps == {float(PERIOD)}, f"scheduled times not one per {PERIOD}s: {times}"
    status = kubectl.json("get", "order", "nightly", "-n", namespace)["status"]
    assert datetime.fromisoformat(status["lastScheduleTime"]) == times[-1]
    wide = kubectl.run("get", "order", "nightly", "-n", namespace, "-o", "wide")
    assert "LAST SCHEDULE" in wide.splitlines()[0]


def test_forbid_skips_a_time_while_a_run_is_active_and_reports_the_missed_deadline(
    local_cluster: LocalCluster, kubectl: Kubectl, setup: str, managers: list[Manager], tmp_path: Path
) -> None:
    namespace = setup
    mgr = new_manager(local_cluster, tmp_path, managers, f"arc-schedule-{uuid.uuid4().hex[:6]}")
    eventually(mgr.ready, timeout=60, what="the manager ready")
    order = scheduled_order(
        namespace, schedules=[f"@every {PERIOD}s"], concurrencyPolicy="Forbid", startingDeadlineSeconds=3
    )
    kubectl.run("apply", "-f", "-", stdin=json.dumps(order))
    (first,) = wait_runs(kubectl, namespace, 1, timeout=2 * PERIOD + 10)

    def reasons() -> list[str]:
        out = kubectl.json(
            "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=nightly"
        )
        return [e["reason"] for e in out["items"]]

    eventually(lambda: "MissedSchedule" in reasons(), timeout=2 * PERIOD, what="MissedSchedule reported")
    assert "AlreadyActive" in reasons()
    assert runs(kubectl, namespace) == [first]  # the held-back time did not run, and will not run late
    status = kubectl.json("get", "order", "nightly", "-n", namespace)["status"]
    (cond,) = [c for c in status["conditions"] if c["type"] == "Scheduled"]
    assert (cond["status"], cond["reason"]) == ("False", "MissedSchedule"), cond
    missed = next(iter(status["schedules"].values()))["lastMissedTime"]
    assert datetime.fromisoformat(missed) == first + timedelta(seconds=PERIOD)

    (aw,) = kubectl.json("get", "artifactworkflows.arc.opendefense.cloud", "-n", namespace)["items"]
    done = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    succeeded = json.dumps({"status": {"phase": "Succeeded", "finishedAt": done}})
    kubectl.run(
        "patch", "artifactworkflows.arc.opendefense.cloud", aw["metadata"]["name"], "-n", namespace,
        "--subresource=status", "--type=merge", "-p", succeeded,
    )  # fmt: skip
    times = wait_runs(kubectl, namespace, 2, timeout=2 * PERIOD + 5)
    assert times[1] - times[0] >= timedelta(seconds=2 * PERIOD)  # the next time on the grid, not the late one
    assert (times[1] - first).total_seconds() % PERIOD == 0
    status = kubectl.json("get", "order", "nightly", "-n", namespace)["status"]
    assert status["lastSuccessfulTime"] == done  # the finished run's finishedAt
    eventually(
        lambda: any(
            c["type"] == "Scheduled" and c["status"] == "True"
            for c in kubectl.json("get", "order", "nightly", "-n", namespace)["status"]["conditions"]
        ),
        timeout=10,
        what="Scheduled=True again",
    )


def test_the_docs_example_applies(kubectl: Kubectl, setup: str) -> None:
    """docs/api.md's scheduled Order, as a user applies it (defaults filled in by the API server)."""
    (example,) = re.findall(r"```yaml schedule-example\n(.*?)```", (REPO / "docs/api.md").read_text(), re.S)
    out = kubectl.run("apply", "-f", "-", stdin=example.replace("namespace: team-a", f"namespace: {setup}"))
    assert "order.arc.opendefense.cloud/nightly-nginx created" in out
    stored = kubectl.json("get", "order", "nightly-nginx", "-n", setup)
    assert stored["spec"]["defaults"]["cron"] == {
        "schedules": ["0 2 * * *"],
        "timezone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }


def test_a_bad_schedule_and_time_zone_are_422_with_each_field(kubectl: Kubectl, setup: str) -> None:
    order = scheduled_order(setup, schedules=["0 3 * *", "@hourly"], timezone="Mars/Olympus")
    err = kubectl.run("apply", "-f", "-", stdin=json.dumps(order), check=False)
    assert 'The Order "nightly" is invalid' in err, err
    assert 'spec.defaults.cron.schedules[0]: Invalid value: "0 3 * *": expected exactly 5 fields' in err
    assert 'spec.defaults.cron.timezone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' in err
