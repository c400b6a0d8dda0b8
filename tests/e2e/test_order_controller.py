"""The Order controller on the real local control plane (SPEC §4.1, §4.4, §5).

`arc-controller-manager` runs as a subprocess with leader election on, as its service account: with
exactly the rules of deploy/controllers/rbac.yaml (issue 14: the cut RBAC must be enough for all of this).
The test stands in for the ArtifactWorkflow controller: it sets ArtifactWorkflow status through `/status`.
"Nothing happened" is asserted only after the manager has demonstrably reconciled the Order again
(`controller_runtime_reconcile_total` moved), never after a blind sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import LocalCluster
from hack.process import free_port
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


class ManagerProcess:
    """`python -m controllers` with leader election, its own metrics port and a log file."""

    def __init__(self, kubeconfig: Path, log: Path, *, lease: str = "arc-controller-manager") -> None:
        self.log = log
        self.argv = [
            sys.executable,
            "-m",
            "controllers",
            "--kubeconfig",
            str(kubeconfig),
            "--leader-elect",
            "--leader-election-id",
            lease,
            "--concurrency",
            "4",
        ]
        self.start()

    def start(self) -> None:
        self.port = free_port()
        self._log_file = self.log.open("ab")
        argv = [*self.argv, "--metrics-bind-address", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._log_file, stderr=subprocess.STDOUT)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop gracefully (releasing the Lease) for a test that runs its own managers; start again after."""
        code = self.stop()
        assert code == 0, f"manager exited {code}:\n{self.logs()}"
        try:
            yield
        finally:
            self.start()
            eventually(self.ready, timeout=60, what=f"manager ready again; log:\n{self.logs()}")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def acquired_as(self) -> list[str]:
        """The identities this manager logged "acquired leader lease" under (one per acquisition)."""
        return [r.get("identity", "") for r in self.log_records() if r.get("msg") == "acquired leader lease"]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def metric(self, name: str, /, **labels: str) -> float:
        _, text = self.get("/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric_labels = series[len(name) :].strip("{}")
            if series.split("{")[0] == name and all(
                p in metric_labels.split(",") for p in want.split(",") if p
            ):
                total += float(value)
        return total

    def reconciles(self) -> float:
        return self.metric("controller_runtime_reconcile_total", controller="order")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def manager_kubeconfig(local_cluster: LocalCluster, kubectl: Kubectl) -> Path:
    """deploy/controllers/rbac.yaml applied, and the kubeconfig of its service account (a client certificate
    for ``system:serviceaccount:arc-system:arc-controller-manager``): managers run with exactly that RBAC."""
    kubectl.run("create", "namespace", "arc-system", check=False)
    kubectl.run("apply", "-f", str(REPO / "deploy/controllers/rbac.yaml"))
    return local_cluster.controller_manager_kubeconfig


@pytest.fixture(scope="module")
def manager(
    local_cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagerProcess]:
    mgr = ManagerProcess(
        manager_kubeconfig(local_cluster, kubectl), tmp_path_factory.mktemp("manager") / "manager.log"
    )
    try:
        eventually(mgr.ready, timeout=60, what=f"manager ready; log:\n{mgr.logs()}")
        yield mgr
    finally:
        code = mgr.stop()
        assert code == 0, f"manager exited {code}:\n{mgr.logs()}"


class Arc:
    """kubectl helpers for one test namespace."""

    def __init__(self, kubectl: Kubectl, namespace: str, manager: ManagerProcess) -> None:
        self.k = kubectl
        self.ns = namespace
        self.manager = manager

    def apply(self, *objs: dict[str, Any]) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
        self.k.run("apply", "-n", self.ns, "-f", "-", stdin=json.dumps(doc))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self.k.run("get", "-n", self.ns, kind, name, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    def aws(self) -> dict[str, dict[str, Any]]:
        items = self.k.json("get", "-n", self.ns, "artifactworkflows.arc.opendefense.cloud")["items"]
        return {aw["metadata"]["name"]: aw for aw in items if not aw["metadata"].get("deletionTimestamp")}

    def all_aws(self) -> dict[str, dict[str, Any]]:
        items = self.k.json("get", "-n", self.ns, "artifactworkflows.arc.opendefense.cloud")["items"]
        return {aw["metadata"]["name"]: aw for aw in items}

    def order_status(self, name: str = "o") -> dict[str, Any]:
        order = self.get("orders.arc.opendefense.cloud", name)
        return (order or {}).get("status") or {}

    def set_phase(self, aw: str, phase: str, message: str = "") -> None:
        patch = json.dumps({"status": {"phase": phase, "message": message}})
        self.k.run(
            "patch", "-n", self.ns, "artifactworkflows.arc.opendefense.cloud", aw,
            "--subresource=status", "--type=merge", "-p", patch,
        )  # fmt: skip

    def wait_aws(self, check: Any, what: str, timeout: float = 60) -> dict[str, dict[str, Any]]:
        box: dict[str, dict[str, dict[str, Any]]] = {}

        def probe() -> bool:
            box["v"] = self.aws()
            return bool(check(box["v"]))

        eventually(probe, timeout=timeout, what=f"{what}; manager log:\n{self.manager.logs()}")
        return box["v"]

    def quiesce(self, action: Any) -> None:
        """Run `action` and wait until the manager has reconciled at least once more and gone idle."""
        before = self.manager.reconciles()
        action()
        eventually(
            lambda: self.manager.reconciles() > before, timeout=30, what="a reconcile after the change"
        )
        eventually(
            lambda: (
                self.manager.metric("workqueue_depth", name="order") == 0
                and self.manager.metric("controller_runtime_active_workers", controller="order") == 0
            ),
            timeout=30,
            what="the order queue drained",
        )


@pytest.fixture
def arc(kubectl: Kubectl, namespace: str, manager: ManagerProcess) -> Arc:
    a = Arc(kubectl, namespace, manager)
    seed(a)
    return a


def seed(a: Arc) -> None:
    """The Secret, Endpoints (src uses the Secret) and ArtifactType `oci` the tests' Orders use."""
    a.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "type": "Opaque",
            "data": {"token": "YQ=="},
        },
        endpoint("src", "src.example/mirror", secret="creds"),
        endpoint("dst", "dst.example/library"),
        endpoint("other", "other.example/library"),
        {
            "apiVersion": API_VERSION,
            "kind": "ArtifactType",
            "metadata": {"name": "oci"},
            "spec": {
                "workflowTemplateRef": {"name": "arc-oci", "clusterScope": False},
                "rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
                "parameters": [{"name": "scan", "value": "false"}],
            },
        },
    )


def endpoint(
    name: str, url: str, *, secret: str | None = None, usage: str = "All", type: str = "oci"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type, "remoteURL": url, "usage": usage}
    if secret:
        spec["secretRef"] = {"name": secret}
    return {"apiVersion": API_VERSION, "kind": "Endpoint", "metadata": {"name": name}, "spec": spec}


def order(*artifacts: dict[str, Any], name: str = "o", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": meta,
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": list(artifacts),
        },
    }


def art(image: str, **extra: Any) -> dict[str, Any]:
    return {"type": "oci", "spec": {"image": image}, **extra}


def params(aw: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in aw["spec"]["parameters"]}


def image_of(aws: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {params(aw)["specImage"]: name for name, aw in aws.items()}


def test_two_artifacts_then_add_reorder_remove(arc: Arc) -> None:
    arc.apply(order(art("a", spec={"image": "a", "opts": {"tlsVerify": False}, "n": 1000000}), art("b")))
    aws = arc.wait_aws(lambda a: len(a) == 2, "two ArtifactWorkflows")
    o = arc.get("orders.arc.opendefense.cloud", "o")
    assert o is not None
    for aw in aws.values():
        (ref,) = aw["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "Order", "o", o["metadata"]["uid"], True, True,
        )  # fmt: skip
        assert aw["metadata"]["labels"]["arc.opendefense.cloud/order"] == "o"
        assert aw["metadata"]["labels"]["arc.opendefense.cloud/artifact-type"] == "oci"
        assert aw["metadata"]["name"].startswith("o-") and len(aw["metadata"]["name"]) == 18
        assert aw["spec"]["workflowTemplateRef"] == {"name": "arc-oci", "clusterScope": False}
        assert aw["spec"]["srcSecretRef"] == {"name": "creds"}
    by_image = image_of(aws)
    first = params(aws[by_image["a"]])
    assert list(first) == [
        "srcType", "srcRemoteURL", "dstType", "dstRemoteURL", "srcSecret", "dstSecret",
        "specImage", "specN", "specOptsTlsVerify", "scan",
    ]  # fmt: skip
    assert first["srcRemoteURL"] == "src.example/mirror" and first["srcSecret"] == "true"
    assert (first["specN"], first["specOptsTlsVerify"], first["scan"]) == ("1000000", "false", "false")
    uids = {n: aw["metadata"]["uid"] for n, aw in aws.items()}

    # add one: one more, nothing re-run
    arc.apply(
        order(art("a", spec={"image": "a", "opts": {"tlsVerify": False}, "n": 1000000}), art("b"), art("c"))
    )
    aws = arc.wait_aws(lambda a: len(a) == 3, "a third ArtifactWorkflow")
    assert {n: aws[n]["metadata"]["uid"] for n in uids} == uids
    # re-order: nothing but the indexes change
    arc.quiesce(
        lambda: arc.apply(
            order(
                art("c"), art("b"), art("a", spec={"image": "a", "opts": {"tlsVerify": False}, "n": 1000000})
            )
        )
    )
    eventually(
        lambda: (
            {e["name"]: e["artifactIndex"] for e in arc.order_status()["artifactWorkflows"].values()}
            == {image_of(arc.aws())[i]: idx for idx, i in enumerate("cba")}
        ),
        timeout=30,
        what="indexes follow the new order",
    )
    assert {n: aw["metadata"]["uid"] for n, aw in arc.aws().items() if n in uids} == uids
    # remove one: its ArtifactWorkflow goes
    arc.apply(order(art("c"), art("a", spec={"image": "a", "opts": {"tlsVerify": False}, "n": 1000000})))
    aws = arc.wait_aws(lambda a: by_image["b"] not in a and len(a) == 2, "b's ArtifactWorkflow deleted")
    assert len(arc.order_status()["artifactWorkflows"]) == 2


def test_endpoint_edit_and_secret_rotation_rerun_only_affected_artifacts(arc: Arc) -> None:
    arc.apply(order(art("a"), art("b", dstRef={"name": "other"}), art("c", srcRef={"name": "other"})))
    aws = arc.wait_aws(lambda a: len(a) == 3, "three ArtifactWorkflows")
    names = image_of(aws)
    # editing other's URL re-runs b and c, not a
    arc.apply(endpoint("other", "other2.example/library"))
    aws = arc.wait_aws(
        lambda a: len(a) == 3 and names["b"] not in a and names["c"] not in a, "b and c re-run"
    )
    assert names["a"] in aws
    assert params(aws[image_of(aws)["b"]])["dstRemoteURL"] == "other2.example/library"
    eventually(
        lambda: any(
            names["b"] in e["message"] and names["c"] in e["message"]
            for e in arc.k.json("get", "events", "-n", arc.ns, "--field-selector", "reason=Rerun")["items"]
        ),
        timeout=30,
        what="a Rerun event naming the re-run artifacts",
    )
    names = image_of(aws)
    # a label on the Secret changes nothing
    arc.quiesce(lambda: arc.k.run("label", "-n", arc.ns, "secret", "creds", "team=x"))
    assert image_of(arc.aws()) == names
    # rotating its data re-runs the artifacts whose endpoints use it (src: a and b)
    patch = json.dumps({"data": {"token": "Yg=="}})
    arc.k.run("patch", "-n", arc.ns, "secret", "creds", "--type=merge", "-p", patch)
    aws = arc.wait_aws(
        lambda a: len(a) == 3 and names["a"] not in a and names["b"] not in a, "a and b re-run after rotation"
    )
    assert names["c"] in aws


def test_missing_endpoint_fails_only_its_artifact_until_it_appears(arc: Arc) -> None:
    arc.apply(order(art("a"), art("b", srcRef={"name": "later"})))
    arc.wait_aws(lambda a: len(a) == 1, "one ArtifactWorkflow")
    eventually(lambda: arc.order_status().get("phase") == "Failed", timeout=30, what="Order Failed")
    entries = arc.order_status()["artifactWorkflows"].values()
    assert [(e["artifactIndex"], e["phase"], e["message"]) for e in entries if e["phase"] == "Failed"] == [
        (1, "Failed", 'endpoint "later" not found')
    ]
    arc.apply(endpoint("later", "later.example/x"))
    arc.wait_aws(lambda a: len(a) == 2, "the second ArtifactWorkflow once the Endpoint exists")
    eventually(lambda: arc.order_status().get("phase") == "Pending", timeout=30, what="Order Pending again")


def test_usage_and_type_rule_violations_fail_with_clear_messages(arc: Arc) -> None:
    arc.apply(
        endpoint("ro", "ro.example/x", usage="PullOnly"),
        endpoint("web", "web.example/x", type="http"),
        order(art("a", dstRef={"name": "ro"}), art("b", srcRef={"name": "web"}), art("c")),
    )
    eventually(
        lambda: arc.order_status().get("progress", {}).get("failed") == 2,
        timeout=60,
        what="two failed artifacts",
    )
    messages = sorted(
        e.get("message") for e in arc.order_status()["artifactWorkflows"].values() if e["phase"] == "Failed"
    )
    assert messages == [
        'endpoint "ro" has usage PullOnly and cannot be a destination',
        'endpoint type "http" is not allowed as source by artifact type "oci"',
    ]
    assert len(arc.aws()) == 1
    ready = next(c for c in arc.order_status()["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ArtifactFailed")


def test_ready_when_all_succeed_manual_delete_recreates_and_events(arc: Arc) -> None:
    arc.apply(order(art("a"), art("b")))
    aws = arc.wait_aws(lambda a: len(a) == 2, "two ArtifactWorkflows")
    victim = sorted(aws)[0]
    old_uid = aws[victim]["metadata"]["uid"]
    arc.k.run("delete", "-n", arc.ns, "artifactworkflows.arc.opendefense.cloud", victim, "--wait=false")
    arc.wait_aws(
        lambda a: victim in a and a[victim]["metadata"]["uid"] != old_uid, "the deleted one recreated"
    )
    with subprocess.Popen(
        [
            "kubectl",
            "wait",
            "-n",
            arc.ns,
            "--for=condition=Ready",
            "orders.arc.opendefense.cloud/o",
            "--timeout=90s",
        ],
        env=arc.k.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as waiter:
        for name in aws:
            arc.set_phase(name, "Succeeded")
        out, _ = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, out
    status = arc.order_status()
    assert status["phase"] == "Succeeded"
    assert status["progress"]["succeeded"] == 2
    assert status["observedGeneration"] == 1
    eventually(
        lambda: "Succeeded" in arc.k.run("describe", "-n", arc.ns, "orders.arc.opendefense.cloud", "o"),
        timeout=30,
        what="events shown by kubectl describe",
    )
    described = arc.k.run("describe", "-n", arc.ns, "orders.arc.opendefense.cloud", "o")
    assert "ArtifactWorkflowCreated" in described
    # a finished artifact stays in status after its ArtifactWorkflow is gone, and is not re-run
    arc.quiesce(lambda: arc.k.run("delete", "-n", arc.ns, "artifactworkflows.arc.opendefense.cloud", victim))
    assert victim not in arc.aws()
    assert arc.order_status()["phase"] == "Succeeded"


def test_force_at_reruns_all_and_retry_failed_at_only_failed(arc: Arc) -> None:
    arc.apply(order(art("a"), art("b")))
    aws = arc.wait_aws(lambda a: len(a) == 2, "two ArtifactWorkflows")
    names = image_of(aws)
    arc.set_phase(names["a"], "Succeeded")
    arc.set_phase(names["b"], "Failed", "step copy: denied")
    eventually(lambda: arc.order_status().get("phase") == "Failed", timeout=30, what="Order Failed")
    b_uid = aws[names["b"]]["metadata"]["uid"]
    arc.k.run(
        "annotate", "-n", arc.ns, "orders.arc.opendefense.cloud", "o",
        "arc.opendefense.cloud/retry-failed-at=2026-01-02T03:04:05Z",
    )  # fmt: skip
    aws = arc.wait_aws(
        lambda a: names["b"] in a and a[names["b"]]["metadata"]["uid"] != b_uid, "b recreated under its name"
    )
    assert aws[names["a"]]["status"]["phase"] == "Succeeded"
    assert arc.order_status()["lastRetryAt"] == "2026-01-02T03:04:05Z"
    arc.k.run(
        "annotate",
        "-n",
        arc.ns,
        "orders.arc.opendefense.cloud",
        "o",
        "arc.opendefense.cloud/force-at=1767323045",
    )
    arc.wait_aws(lambda a: len(a) == 2 and not set(a) & set(names.values()), "everything re-run")
    assert arc.order_status()["lastForceAt"] == "2026-01-02T03:04:05Z"


def test_deleting_the_order_removes_its_workflows_then_the_order(arc: Arc) -> None:
    arc.apply(order(art("a"), art("b")))
    arc.wait_aws(lambda a: len(a) == 2, "two ArtifactWorkflows")
    arc.k.run("delete", "-n", arc.ns, "orders.arc.opendefense.cloud", "o", "--timeout=90s", timeout=120)
    assert arc.get("orders.arc.opendefense.cloud", "o") is None
    assert arc.all_aws() == {}


def test_a_kill_mid_reconcile_and_two_managers_at_once_make_no_duplicates_and_one_leader(
    kubectl: Kubectl, namespace: str, manager: ManagerProcess, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """SIGKILL while the first manager is creating ArtifactWorkflows, then two managers started together.

    The backlog (30 Orders x 10 artifacts created before any manager runs) guarantees the kill lands while
    work is in flight, and requests may have reached the server without their answers reaching the
    manager. The two successors race for the dead leader's Lease once it expires: one wins (optimistic
    concurrency on the Lease), the other stays a warm standby that never reconciles. Names are
    deterministic, so a retried create is AlreadyExists → adopt, never a second ArtifactWorkflow.
    """
    orders, per_order = 30, 10
    lease = f"e2e-{namespace}"  # its own Lease: no earlier test's holder to wait out
    with manager.paused():
        arc = Arc(kubectl, namespace, manager)
        seed(arc)
        arc.apply(
            *(order(*(art(f"i{i}-{j}") for j in range(per_order)), name=f"o{i}") for i in range(orders))
        )
        first = ManagerProcess(
            local_cluster.controller_manager_kubeconfig, tmp_path / "first.log", lease=lease
        )
        arc.manager = first
        try:
            eventually(lambda: len(arc.all_aws()) > 0, timeout=90, interval=0.05, what="the first creates")
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(timeout=30)
        finally:
            first.stop()
        survivors = {n: aw["metadata"]["uid"] for n, aw in arc.all_aws().items()}
        assert 0 < len(survivors) < orders * per_order, "the kill must land mid-way"

        a = ManagerProcess(local_cluster.controller_manager_kubeconfig, tmp_path / "a.log", lease=lease)
        b = ManagerProcess(local_cluster.controller_manager_kubeconfig, tmp_path / "b.log", lease=lease)
        try:
            arc.manager = a
            eventually(lambda: a.ready() and b.ready(), timeout=60, what="both successors ready")

            def converged() -> bool:
                items = arc.k.json("get", "-n", arc.ns, "orders.arc.opendefense.cloud")["items"]
                return len(arc.all_aws()) == orders * per_order and all(
                    (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
                    and (o.get("status") or {}).get("progress", {}).get("total") == per_order
                    for o in items
                )

            eventually(
                converged, timeout=180, what=f"all {orders * per_order} ArtifactWorkflows and statuses"
            )

            # no duplicates: exactly the desired names, each controlled once by its Order
            aws = arc.all_aws()
            assert len(aws) == orders * per_order
            for o in arc.k.json("get", "-n", arc.ns, "orders.arc.opendefense.cloud")["items"]:
                wanted = {e["name"] for e in o["status"]["artifactWorkflows"].values()}
                owned = {
                    n
                    for n, aw in aws.items()
                    if aw["metadata"]["labels"]["arc.opendefense.cloud/order"] == o["metadata"]["name"]
                }
                assert owned == wanted and len(wanted) == per_order, o["metadata"]["name"]
                for name in owned:
                    refs = aws[name]["metadata"]["ownerReferences"]
                    assert [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [
                        ("Order", o["metadata"]["uid"], True)
                    ], name
            # what the killed manager created was adopted, not deleted and recreated
            assert {n: aws[n]["metadata"]["uid"] for n in survivors} == survivors

            # exactly one leader: the Lease holder; the other logged no acquisition and reconciled nothing
            holder = json.loads(kubectl.run("get", "lease", "-n", "arc-system", lease, "-o", "json"))["spec"][
                "holderIdentity"
            ]
            leader, standby = (a, b) if holder in a.acquired_as() else (b, a)
            assert leader.acquired_as() == [holder], (a.acquired_as(), b.acquired_as(), holder)
            assert standby.acquired_as() == []
            assert leader.reconciles() > 0
            assert standby.ready() and standby.reconciles() == 0
            assert standby.metric("controller_runtime_active_workers", controller="order") == 0

            # ... and it stays that way while the leader keeps renewing (every 2 s)
            def spec() -> dict[str, Any]:
                lease_obj = json.loads(kubectl.run("get", "lease", "-n", "arc-system", lease, "-o", "json"))
                return dict(lease_obj["spec"])

            renewed = spec()["renewTime"]
            eventually(
                lambda: (now := spec())["renewTime"] != renewed and now["holderIdentity"] == holder,
                timeout=20,
                what="the leader renewing its Lease",
            )
            assert standby.reconciles() == 0 and standby.acquired_as() == []
        finally:
            codes = {m.log.name: m.stop() for m in (a, b)}
        assert codes == {"a.log": 0, "b.log": 0}, codes


def test_a_standby_manager_takes_over_without_duplicates(
    arc: Arc, manager: ManagerProcess, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    standby = ManagerProcess(local_cluster.controller_manager_kubeconfig, tmp_path / "standby.log")
    try:
        eventually(standby.ready, timeout=60, what="standby ready")
        arc.apply(order(art("a"), art("b")))
        arc.wait_aws(lambda a: len(a) == 2, "two ArtifactWorkflows")
        assert standby.reconciles() == 0, "only the leader reconciles"
        lease = json.loads(
            arc.k.run("get", "lease", "-n", "arc-system", "arc-controller-manager", "-o", "json")
        )
        holder = lease["spec"]["holderIdentity"]
        assert holder
        # a third artifact while the standby takes over after the leader is killed
        os.kill(manager.proc.pid, signal.SIGKILL)
        manager.proc.wait(timeout=30)
        arc.apply(order(art("a"), art("b"), art("c")))
        arc.wait_aws(lambda a: len(a) == 3, "the standby created the third", timeout=90)
        assert standby.reconciles() > 0
        lease = json.loads(
            arc.k.run("get", "lease", "-n", "arc-system", "arc-controller-manager", "-o", "json")
        )
        assert lease["spec"]["holderIdentity"] != holder
        assert len(arc.all_aws()) == 3
    finally:
        # the module fixture stops "manager"; hand it the standby so teardown checks a live process
        manager.proc, manager.port, manager.log = standby.proc, standby.port, standby.log
        manager._log_file, standby._log_file = standby._log_file, manager._log_file
        standby._log_file.close()
