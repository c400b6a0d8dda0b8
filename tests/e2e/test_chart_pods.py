"""The Helm chart's pods, run for real: ARC installed into the local control plane serves ARC's API.

kwok's nodes run no containers, so ``hack.podrunner`` plays their kubelet for the release's pods: each pod
kwok marks Running gets a network namespace holding the pod's IP (from its node's ``spec.podCIDR``) and its
real image, run with podman+runc as the chart rendered it (command, args, env, user, Secrets and the
service-account token mounted where the pod says). kube-apiserver runs with ``--enable-aggregator-routing``,
so the aggregator dials the APIService's endpoint — a pod IP — through the test's bridge. No ARC process
runs on the host: whatever answers ARC's API here is the image.

Network rule: the bridge's connected route takes the pods' CIDR; the Service range and kwok's default pod
range are blackholed before the cluster starts (ClusterIPs the pods dial are addresses of the bridge,
proxied to the Service's endpoints); ``ip route get`` checks both. Argo's workflow-controller and Kueue run
on the host as in the local stack; Workflows' pods stay kwok-simulated.

Run under the machine-wide lock:
``flock /tmp/arc-e2e.lock .venv/bin/python -m pytest tests/e2e/test_chart_pods.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.binaries import REPO_ROOT, binary_path
from hack.cluster import DEPLOY_DIR, SERVICE_CLUSTER_IP_RANGE, LocalCluster
from hack.images.build import DEFAULT_OUT as IMAGES_OUT
from hack.podrunner.__main__ import DEFAULT_STATE, load_image, podman_command
from hack.podrunner.network import PodNetwork
from tests.e2e.conftest import Kubectl
from tests.e2e.support import eventually

pytestmark = pytest.mark.e2e

CHART = REPO_ROOT / "deploy" / "charts" / "arc"
RELEASE, NAMESPACE = "arc", "arc-system"
PODS_CIDR = "10.244.0.0/16"
NODE_CIDRS = ("10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24")
ARC_IMAGE = "localhost/arc"
ETCD_IMAGE = "localhost/etcd"
APISERVICE = "v1alpha1.arc.opendefense.cloud"


def _missing() -> str | None:
    """Why this machine cannot run the chart's pods, or None."""
    if os.geteuid() != 0:
        return "network namespaces and podman need root (euid is not 0)"
    for tool in ("ip", "podman", "runc", "skopeo"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (hack/apt-packages.txt)"
    if not (CHART / "Chart.yaml").is_file():
        return f"no chart at {CHART}"
    return None


@dataclass
class Stack:
    cluster: LocalCluster
    kubectl: Kubectl
    network: PodNetwork
    runner: subprocess.Popen[bytes]
    runner_log: Path
    state_dir: Path

    def podman(self, *args: str) -> str:
        return subprocess.run(
            [*podman_command(self.state_dir), *args], capture_output=True, text=True, timeout=60, check=False
        ).stdout

    def pods(self) -> list[dict[str, Any]]:
        """The release's long-running pods (a Job's pods are kwok-simulated: kwok ends them on its own)."""
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
        )["items"]
        return [
            p
            for p in items
            if not any(ref["kind"] == "Job" for ref in p["metadata"].get("ownerReferences", []))
        ]

    def diagnostics(self) -> str:
        parts = [self.runner_log.read_text(errors="replace")[-6000:]]
        parts.append(self.podman("ps", "-a", "--format", "{{.Names}} {{.Status}}"))
        for log in sorted((self.state_dir / "pods").glob("*/*.log")):
            parts.append(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def build_arc_image(out: Path) -> tuple[str, str]:
    """``make images``' arc layout (cached when the tree is unchanged); (layout with tag, tag)."""
    subprocess.run(
        [sys.executable, "-m", "hack.images", "build", "--only", "arc", "--out", str(out)],
        check=True,
        timeout=1800,
        cwd=REPO_ROOT,
    )
    summary = json.loads((out / "images.json").read_text())["arc"]
    return f"{out / summary['layout']}:{summary['tag']}", str(summary["tag"])


def build_etcd_image(state_dir: Path, tag: str) -> str:
    """An etcd image like registry.k8s.io/etcd's (``etcd`` on the PATH, no shell) from the etcd binary the
    local stack builds: the chart's default image cannot be pulled here."""
    work = state_dir / "etcd-image"
    shutil.rmtree(work, ignore_errors=True)
    (work / "usr" / "local" / "bin").mkdir(parents=True)
    shutil.copy2(binary_path("etcd"), work / "usr" / "local" / "bin" / "etcd")
    archive = state_dir / "etcd-rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(work, arcname=".")
    name = f"{ETCD_IMAGE}:{tag}"
    subprocess.run(
        [*podman_command(state_dir), "import", "--change", "ENV PATH=/usr/local/bin", str(archive), name],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return name


def hostpath_pv(name: str, path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        },
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("chart-pods")
    state_dir = DEFAULT_STATE
    state_dir.mkdir(parents=True, exist_ok=True)
    layout, tag = build_arc_image(IMAGES_OUT)  # make images' directory: warm, nothing is rebuilt
    load_image(state_dir, layout, f"{ARC_IMAGE}:{tag}")
    etcd_tag = "v3.5.21-e2e"
    build_etcd_image(state_dir, etcd_tag)

    # Routes first: nothing may dial a pod or Service address before they exist.
    network = PodNetwork(pods_cidr=PODS_CIDR, service_cidr=SERVICE_CLUSTER_IP_RANGE)
    network.setup()
    cluster = LocalCluster(
        work / "cluster",
        controller_manager=False,
        arc_apiserver=False,
        aggregator_routing=True,
        pod_cidrs=NODE_CIDRS,
        demo=False,
    )
    runner: subprocess.Popen[bytes] | None = None
    try:
        cluster.up()
        kubectl = Kubectl(cluster.kubeconfig)
        admin = cluster.admin()
        for name in ("namespace.yaml", "kueue.yaml"):  # the demo's namespace and Kueue queue "arc"
            admin.apply_manifest(DEPLOY_DIR / "demo" / name)
        for index in range(3):  # etcd's member and snapshot claims (no provisioner here)
            admin.apply(hostpath_pv(f"arc-e2e-{index}", work / "volumes" / str(index)))
        admin.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        )
        shutil.rmtree(state_dir / "pods", ignore_errors=True)  # no logs of an earlier run
        runner_log = work / "podrunner.log"
        runner = subprocess.Popen(
            [
                sys.executable, "-m", "hack.podrunner", "--state-dir", str(state_dir), "run",
                "--work-dir", str(cluster.work_dir), "--namespace", NAMESPACE,
                "--selector", f"app.kubernetes.io/instance={RELEASE}", "--pods-cidr", PODS_CIDR,
            ],
            cwd=REPO_ROOT,
            stdout=runner_log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        stack = Stack(cluster, kubectl, network, runner, runner_log, state_dir)
        helm = [str(binary_path("helm")), "--kubeconfig", str(cluster.kubeconfig)]
        values = {
            "image": {"repository": ARC_IMAGE, "tag": tag, "pullPolicy": "Never"},
            "etcd": {"image": {"repository": ETCD_IMAGE, "tag": etcd_tag, "pullPolicy": "Never"}},
            # the chart's Endpoint controller probes the examples' remotes (docker.io…): not from here
            "controllerManager": {"extraArgs": ["--endpoint-probe-allowed-hosts=127.0.0.1"]},
        }
        (work / "values.yaml").write_text(yaml.safe_dump(values))
        started = time.monotonic()
        install = subprocess.run(
            [*helm, "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(work / "values.yaml"),
             "--wait", "--timeout", "5m"],
            capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
        assert install.returncode == 0, f"helm install: {install.stderr}\n{stack.diagnostics()}"
        print(f"helm install --wait: {time.monotonic() - started:.1f}s")
        yield stack
    finally:
        if runner is not None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                runner.kill()
        cluster.down()
        subprocess.run([sys.executable, "-m", "hack.podrunner", "cleanup"], cwd=REPO_ROOT, check=False)
        network.teardown()


def test_routes_keep_private_addresses_inside_the_test(stack: Stack) -> None:
    pod_ip = stack.pods()[0]["status"]["podIP"]
    assert f"dev {stack.network.bridge}" in stack.network.route_of(pod_ip)
    for private in ("10.96.200.200", "10.0.0.7"):  # an unused ClusterIP, kwok's default pod range
        route = stack.network.route_of(private)
        assert "via" not in route and "eth0" not in route, route


def test_every_pod_of_the_release_runs_its_real_image(stack: Stack) -> None:
    pods = stack.pods()
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert {"apiserver", "controller-manager", "etcd"} <= components, components

    def all_running() -> bool:
        running = stack.podman("ps", "--filter", "status=running", "--format", "{{.Labels}}")
        return all(pod["metadata"]["uid"] in running for pod in pods)

    eventually(all_running, timeout=120, what=f"every pod running; {stack.diagnostics()}")
    images = stack.podman("ps", "--format", "{{.Image}}")
    assert f"{ARC_IMAGE}:" in images and f"{ETCD_IMAGE}:" in images


def test_the_apiservice_is_available_through_the_real_aggregator(stack: Stack) -> None:
    def available() -> bool:
        apiservice = stack.kubectl.json("get", "apiservice", APISERVICE)
        conditions = {c["type"]: c for c in apiservice.get("status", {}).get("conditions", [])}
        return conditions.get("Available", {}).get("status") == "True"

    eventually(available, timeout=120, what=f"APIService {APISERVICE} Available; {stack.diagnostics()}")
    apiservice = stack.kubectl.json("get", "apiservice", APISERVICE)
    assert apiservice["spec"]["service"]["namespace"] == NAMESPACE
    assert "127.0.0.1" not in json.dumps(apiservice["spec"])

    def orders_served() -> bool:
        # kube-apiserver's aggregated discovery picks the group up a moment after Available.
        out = stack.kubectl.run("get", "orders", "-A", "-o", "json", check=False)
        return '"kind": "List"' in out or '"items"' in out

    eventually(orders_served, timeout=60, what="kubectl get orders -A")
    resources = stack.kubectl.run("api-resources", "--api-group=arc.opendefense.cloud", "-o", "name")
    assert "orders.arc.opendefense.cloud" in resources


def test_the_pods_probes_answer_from_the_real_processes(stack: Stack) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    for pod in stack.pods():
        for container in pod["spec"]["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            for kind in ("readinessProbe", "livenessProbe"):
                probe = container.get(kind, {}).get("httpGet")
                if probe is None:
                    continue
                port = ports.get(probe["port"], probe["port"])
                url = (
                    f"{probe.get('scheme', 'HTTP').lower()}://{pod['status']['podIP']}:{port}{probe['path']}"
                )

                def ok(url: str = url) -> bool:
                    try:
                        with urllib.request.urlopen(url, timeout=5, context=insecure) as resp:
                            return bool(resp.status == 200)
                    except OSError:
                        return False

                eventually(ok, timeout=60, what=f"{kind} {url} of {pod['metadata']['name']}")
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") == "apiserver":
            # kube's checks: etcd over TLS with the chart's client certificate, the delegation informers.
            url = f"https://{pod['status']['podIP']}:8443/readyz?verbose"
            with urllib.request.urlopen(url, timeout=5, context=insecure) as resp:
                text = resp.read().decode()
            for check in ("etcd", "etcd-readiness", "informer-sync", "shutdown"):
                assert f"[+]{check} ok" in text, text


def test_an_order_succeeds_with_the_images_controller_manager(stack: Stack) -> None:
    stack.kubectl.run("apply", "-k", str(DEPLOY_DIR / "examples"))

    def succeeded() -> bool:
        order = stack.kubectl.json(
            "get", "orders.arc.opendefense.cloud", "-n", "arc-demo", "mirror-base-images"
        )
        return order.get("status", {}).get("phase") == "Succeeded"

    eventually(succeeded, timeout=300, interval=2, what=f"Order Succeeded; {stack.diagnostics()}")
    # The work was done by the image's controller manager: no ARC process runs on the host.
    logs = "".join(
        p.read_text(errors="replace") for p in (stack.state_dir / "pods").glob("*/controller-manager.log")
    )
    assert '"msg": "artifact workflow created"' in logs and "mirror-base-images" in logs
    workflows = stack.kubectl.json("get", "workflows.argoproj.io", "-n", "arc-demo")["items"]
    assert len(workflows) == 2 and all(w["status"]["phase"] == "Succeeded" for w in workflows)
    lease = stack.kubectl.json("get", "lease", "-n", NAMESPACE, "arc-controller-manager")
    holder = lease["spec"]["holderIdentity"]
    managers = [p["metadata"]["name"] for p in stack.pods() if "controller-manager" in p["metadata"]["name"]]
    assert any(holder.startswith(name) for name in managers), (holder, managers)


def test_a_rolling_upgrade_replaces_the_real_pods_and_keeps_etcds_data(stack: Stack) -> None:
    """helm upgrade with a changed value: new API server pods start for real, the old ones stop, and the
    Order written before is still served (it lives in etcd's claim, not in a pod)."""
    before = {p["metadata"]["uid"] for p in stack.pods() if "apiserver" in p["metadata"]["name"]}
    helm = [str(binary_path("helm")), "--kubeconfig", str(stack.cluster.kubeconfig)]
    upgrade = subprocess.run(
        [*helm, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
         "--set", "apiserver.logLevel=DEBUG", "--wait", "--timeout", "5m"],
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr

    def replaced() -> bool:
        pods = [p for p in stack.pods() if "apiserver" in p["metadata"]["name"]]
        uids = {p["metadata"]["uid"] for p in pods}
        running = stack.podman("ps", "--filter", "status=running", "--format", "{{.Labels}}")
        return (
            not uids & before
            and all(uid in running for uid in uids)
            and not any(uid in running for uid in before)
        )

    eventually(replaced, timeout=180, interval=2, what=f"API server pods replaced; {stack.diagnostics()}")
    args = [
        c["args"]
        for p in stack.pods()
        for c in p["spec"]["containers"]
        if "apiserver" in p["metadata"]["name"]
    ]
    assert all("--log-level=DEBUG" in a for a in args), args

    def served() -> bool:
        order = stack.kubectl.run(
            "get", "orders.arc.opendefense.cloud", "-n", "arc-demo", "mirror-base-images", "-o", "json",
            check=False,
        )  # fmt: skip
        return '"phase": "Succeeded"' in order

    eventually(
        served, timeout=120, interval=2, what=f"the Order served after the upgrade; {stack.diagnostics()}"
    )
