"""Orders run to the end: ArtifactWorkflows become Argo Workflows that run (on kwok) under Kueue quotas.

The real chain of issue 8: Order controller → ArtifactWorkflow → ArtifactWorkflow controller → Argo
Workflow (from a ClusterWorkflowTemplate or a namespaced WorkflowTemplate) → pods admitted by Kueue, run by
kwok (annotations ``arc.opendefense.cloud/simulate-exit-code`` / ``simulate-seconds`` make a step fail or
last) → status mirrored back up to the Order.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.binaries import binary_path
from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, eventually, unique
from tests.e2e.test_order_controller import ManagerProcess, manager_kubeconfig

pytestmark = pytest.mark.e2e

SECRET_PASSWORD = "s3cr3t-Pa55w0rd-never-in-a-workflow"


@pytest.fixture(scope="module")
def transfer_manager(
    local_cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagerProcess]:
    """A controller manager running both controllers (the session's stack starts none), as its service
    account (deploy/controllers/rbac.yaml)."""
    log = tmp_path_factory.mktemp("transfer-manager") / "manager.log"
    manager = ManagerProcess(manager_kubeconfig(local_cluster, kubectl), log, lease="arc-transfer-tests")
    # kwok serves pods' logs (LocalCluster.pod_logs_file): a failed step's last lines reach its message;
    # each artifact links its Workflow on the stack's argo-server
    manager.argv += [
        "--artifact-workflow-controller",
        "--failed-step-log-lines=2",
        f"--argo-ui-base-url=https://{local_cluster.argo_server.address}",
    ]
    manager.stop()
    manager.start()
    eventually(manager.ready, timeout=60, what=f"manager ready; log:\n{manager.logs()}")
    try:
        yield manager
    finally:
        manager.stop()


class Tenant:
    """A namespace with Endpoints, a credentials Secret and a Kueue LocalQueue."""

    def __init__(self, kubectl: Kubectl, name: str, *, cluster_queue: str = "arc") -> None:
        self.kubectl = kubectl
        self.ns = name
        kubectl.run("create", "namespace", name)
        auth = base64.b64encode(f"robot:{SECRET_PASSWORD}".encode()).decode()
        config = {"auths": {"docker.io": {"auth": auth}}}
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hub-creds"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
            },
            {
                "apiVersion": "kueue.x-k8s.io/v1beta1",
                "kind": "LocalQueue",
                "metadata": {"name": "arc"},
                "spec": {"clusterQueue": cluster_queue},
            },
            {
                "apiVersion": API_VERSION,
                "kind": "Endpoint",
                "metadata": {"name": "docker-hub"},
                "spec": {
                    "type": "oci",
                    "remoteURL": "docker.io",
                    "usage": "PullOnly",
                    "secretRef": {"name": "hub-creds"},
                },
            },
            {
                "apiVersion": API_VERSION,
                "kind": "Endpoint",
                "metadata": {"name": "internal"},
                "spec": {"type": "oci", "remoteURL": "registry.internal.example/mirror", "usage": "PushOnly"},
            },
        )

    def apply(self, *objs: dict[str, Any]) -> None:
        docs = "\n---\n".join(
            yaml.safe_dump({**o, "metadata": {**o["metadata"], "namespace": self.ns}}) for o in objs
        )
        self.kubectl.run("apply", "-f", "-", stdin=docs)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.kubectl.json("get", kind, "-n", self.ns, name)

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        return self.kubectl.json("get", kind, "-n", self.ns, *selector)["items"]

    def order(self, name: str, *artifacts: dict[str, Any]) -> None:
        self.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "Order",
                "metadata": {"name": name},
                "spec": {
                    "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
                    "artifacts": list(artifacts),
                },
            }
        )

    def phase(self, order: str) -> str:
        return (self.get("orders.arc.opendefense.cloud", order).get("status") or {}).get("phase", "")

    def delete(self) -> None:
        self.kubectl.run("delete", "namespace", self.ns, "--wait=false", check=False)


@pytest.fixture
def tenant(kubectl: Kubectl, transfer_manager: ManagerProcess) -> Iterator[Tenant]:
    t = Tenant(kubectl, unique("xfer"))
    try:
        yield t
    finally:
        t.delete()


def oci(image: str) -> dict[str, Any]:
    return {"type": "oci", "spec": {"image": image}}


def test_order_runs_to_succeeded_through_argo_and_kueue(tenant: Tenant) -> None:
    tenant.order("mirror", oci("library/alpine:3.20"), oci("library/nginx:1.27"))
    eventually(lambda: tenant.phase("mirror") == "Succeeded", timeout=120, what="Order Succeeded")
    order = tenant.get("orders.arc.opendefense.cloud", "mirror")
    assert order["status"]["progress"]["total"] == 2 and order["status"]["progress"]["succeeded"] == 2
    ready = next(c for c in order["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")

    aws = tenant.items("artifactworkflows.arc.opendefense.cloud")
    assert len(aws) == 2
    for aw in aws:
        status = aw["status"]
        assert status["phase"] == "Succeeded" and status["workflowName"] == aw["metadata"]["name"]
        assert status["startedAt"] and status["finishedAt"]
        wf = tenant.get("workflows.argoproj.io", aw["metadata"]["name"])
        labels, annotations = wf["metadata"]["labels"], wf["metadata"]["annotations"]
        assert labels["arc.opendefense.cloud/order"] == "mirror"
        assert labels["arc.opendefense.cloud/artifact-workflow"] == aw["metadata"]["name"]
        assert labels["arc.opendefense.cloud/artifact-type"] == "oci"
        assert labels["workflows.argoproj.io/cluster-workflow-template"] == "arc-oci"
        assert annotations["workflows.argoproj.io/title"] in ("mirror: oci #0", "mirror: oci #1")
        assert annotations["workflows.argoproj.io/description"] == (
            "docker-hub (docker.io) → internal (registry.internal.example/mirror)"
        )
        assert re.fullmatch(r"[0-9a-f]{32}", annotations["arc.opendefense.cloud/trace-id"])
        assert wf["spec"]["podMetadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "arc"
        assert {"name": "src-secret-vol", "secret": {"secretName": "hub-creds"}} in wf["spec"]["volumes"]
        assert {"name": "dst-secret-vol", "emptyDir": {}} in wf["spec"]["volumes"]
        dump = json.dumps(wf)
        assert SECRET_PASSWORD not in dump and base64.b64encode(SECRET_PASSWORD.encode()).decode() not in dump
        owner = wf["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "ArtifactWorkflow",
            aw["metadata"]["uid"],
            True,
        )
    pods = tenant.items("pods")
    assert pods and all(p["metadata"]["labels"].get("kueue.x-k8s.io/queue-name") == "arc" for p in pods)


FAILING_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: slow-or-failing
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: srcType, value: ""}
    - {name: srcRemoteURL, value: ""}
    - {name: dstType, value: ""}
    - {name: dstRemoteURL, value: ""}
    - {name: srcSecret, value: "false"}
    - {name: dstSecret, value: "false"}
    - {name: specExitCode, value: "0"}
    - {name: specSeconds, value: "1"}
  templates:
  - name: main
    steps:
    - - name: copy
        template: copy
  - name: copy
    metadata:
      annotations:
        arc.opendefense.cloud/simulate-exit-code: "{{workflow.parameters.specExitCode}}"
        arc.opendefense.cloud/simulate-seconds: "{{workflow.parameters.specSeconds}}"
    container:
      image: registry.example/tools@sha256:0000000000000000000000000000000000000000000000000000000000000000
      command: [/bin/true]
"""


def argo_cli_follows_the_order(tenant: Tenant, cluster: LocalCluster, failed: str) -> None:
    """What an SRE does with the argo CLI against argo-server (its API is what Argo's UI shows), with a
    token of their own (argo-server's --auth-mode=client: kube-apiserver's RBAC decides, here `view`)."""
    kubectl = tenant.kubectl
    kubectl.run("-n", tenant.ns, "create", "serviceaccount", "sre")
    kubectl.run(
        "-n",
        tenant.ns,
        "create",
        "rolebinding",
        "sre-view",
        "--clusterrole=view",
        f"--serviceaccount={tenant.ns}:sre",
    )
    token = kubectl.run("-n", tenant.ns, "create", "token", "sre").strip()
    env = {
        "PATH": "/usr/bin:/bin",
        "ARGO_SERVER": cluster.argo_server.address,
        "ARGO_INSECURE_SKIP_VERIFY": "true",  # argo-server's own self-signed certificate
        "ARGO_TOKEN": f"Bearer {token}",
        "KUBECONFIG": "/dev/null",  # nothing but argo-server and the token
    }

    def argo(*args: str) -> str:
        proc = subprocess.run(
            [str(binary_path("argo")), "-n", tenant.ns, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"argo {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    # the Workflows of one Order, by ARC's label
    listed = argo("list", "-l", "arc.opendefense.cloud/order=mixed", "-o", "name").split()
    assert failed in listed and len(listed) == 2, listed
    # one of them, with the title and description ARC gave it
    workflow = json.loads(argo("get", failed, "-o", "json"))
    annotations = workflow["metadata"]["annotations"]
    assert annotations["workflows.argoproj.io/title"] == "mixed: flaky #1", annotations
    assert annotations["workflows.argoproj.io/description"].startswith("docker-hub ("), annotations
    assert workflow["status"]["phase"] == "Failed"
    # the failed step's log, through argo-server, kube-apiserver and the fake node's kubelet (kwok)
    logs = argo("logs", failed, "--no-color")
    assert f'level=fatal msg="unauthorized" --creds robot:{SECRET_PASSWORD}' in logs, (
        logs
    )  # raw, as the pod logged it
    # the token decides: a namespace the SRE may not view answers 403
    denied = subprocess.run(
        [str(binary_path("argo")), "-n", "default", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.returncode != 0 and "PermissionDenied" in denied.stderr + denied.stdout, denied


def test_failing_step_fails_its_artifact_only_and_retry_reruns_only_it(
    tenant: Tenant, tmp_path: Path, kubectl: Kubectl, local_cluster: LocalCluster
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(FAILING_TEMPLATE)
    lint = subprocess.run(
        [str(binary_path("argo")), "lint", "--offline", str(template)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
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
    # What the failing step's main container "logged" (kwok serves this file as every main container's log,
    # through kube-apiserver's pods/log): the manager reads the last 2 lines, the Secret's password masked.
    with local_cluster.pod_logs_file.open("a") as log:
        log.write("2026-12-05T05:00:00.000000000Z stdout F copying library/busybox\n")
        log.write('2026-12-05T05:00:01.000000000Z stderr F level=info msg="authenticating"\n')
        log.write(
            '2026-12-05T05:00:02.000000000Z stderr F level=fatal msg="unauthorized" '
            f"--creds robot:{SECRET_PASSWORD}\n"
        )
    tenant.order(
        "mixed", oci("library/alpine:3.20"), {"type": "flaky", "spec": {"exitCode": 3, "seconds": 4}}
    )

    def aw_of(kind: str) -> dict[str, Any] | None:
        found = [
            a for a in tenant.items("artifactworkflows.arc.opendefense.cloud") if a["spec"]["type"] == kind
        ]
        return found[0] if found else None

    phases: set[str] = set()

    def flaky_failed() -> bool:
        aw = aw_of("flaky")
        phase = ((aw or {}).get("status") or {}).get("phase", "")
        phases.add(phase)
        return phase == "Failed"

    eventually(flaky_failed, timeout=120, interval=0.3, what="the flaky ArtifactWorkflow Failed")
    assert "Running" in phases, phases
    flaky = aw_of("flaky")
    assert flaky is not None
    assert flaky["status"]["message"].startswith('step "copy" failed'), flaky["status"]["message"]
    assert "exit code 3" in flaky["status"]["message"]
    # the step's last log lines, read through kube-apiserver from the fake node's kubelet (kwok), masked
    assert flaky["status"]["message"].endswith(
        'last log lines:\nlevel=info msg="authenticating"\nlevel=fatal msg="unauthorized" --creds ******'
    ), flaky["status"]["message"]
    assert SECRET_PASSWORD not in json.dumps(flaky)
    wf = tenant.get("workflows.argoproj.io", flaky["metadata"]["name"])
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "slow-or-failing"
    eventually(lambda: tenant.phase("mixed") == "Failed", timeout=60, what="Order Failed")
    described = kubectl.run("describe", "-n", tenant.ns, "orders.arc.opendefense.cloud", "mixed")
    assert 'step "copy" failed' in described and 'level=fatal msg="unauthorized" --creds ******' in described
    assert SECRET_PASSWORD not in described
    workflow_url = (
        f"https://{local_cluster.argo_server.address}/workflows/{tenant.ns}/{flaky['metadata']['name']}"
    )
    assert re.search(rf"Workflow URL:\s+{re.escape(workflow_url)}\n", described), described
    argo_cli_follows_the_order(tenant, local_cluster, flaky["metadata"]["name"])
    good = aw_of("oci")
    eventually(
        lambda: ((aw_of("oci") or {}).get("status") or {}).get("phase") == "Succeeded",
        timeout=60,
        what="the other artifact Succeeded",
    )
    good = aw_of("oci")
    assert good is not None

    # retry-failed-at re-runs only the failed artifact: a new ArtifactWorkflow (same name), not the other.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    tenant.kubectl.run(
        "annotate",
        "-n",
        tenant.ns,
        "orders.arc.opendefense.cloud",
        "mixed",
        f"arc.opendefense.cloud/retry-failed-at={now}",
        "--overwrite",
    )

    def rerun() -> bool:
        again = aw_of("flaky")
        return again is not None and again["metadata"]["uid"] != flaky["metadata"]["uid"]

    eventually(rerun, timeout=90, what="the failed artifact re-run")
    after = aw_of("oci")
    assert after is not None and after["metadata"]["uid"] == good["metadata"]["uid"]


def test_kueue_admits_pods_one_at_a_time(kubectl: Kubectl, transfer_manager: ManagerProcess) -> None:
    queue = unique("one")
    kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "kueue.x-k8s.io/v1beta1",
                "kind": "ClusterQueue",
                "metadata": {"name": queue},
                "spec": {
                    "namespaceSelector": {},
                    "resourceGroups": [
                        {
                            "coveredResources": ["cpu", "memory"],
                            "flavors": [
                                {
                                    "name": "default",
                                    "resources": [
                                        {"name": "cpu", "nominalQuota": "250m"},
                                        {"name": "memory", "nominalQuota": "256Mi"},
                                    ],
                                }
                            ],
                        }
                    ],
                },
            }
        ),
    )
    tenant = Tenant(kubectl, unique("kq"), cluster_queue=queue)
    try:
        tenant.order("five", *(oci(f"library/app{i}:1") for i in range(5)))
        max_running = 0

        def all_done() -> bool:
            nonlocal max_running
            pods = tenant.items("pods")
            running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
            max_running = max(max_running, len(running))
            return tenant.phase("five") == "Succeeded"

        eventually(all_done, timeout=240, interval=0.3, what="all five artifacts Succeeded one at a time")
        assert max_running == 1
        workloads = tenant.items("workloads.kueue.x-k8s.io")
        assert len(workloads) >= 5
        assert all(w["spec"]["queueName"] == "arc" for w in workloads)
    finally:
        tenant.delete()
        kubectl.run("delete", "clusterqueue", queue, "--wait=false", check=False)


def test_cluster_artifact_type_must_use_a_cluster_template(kubectl: Kubectl) -> None:
    doc = yaml.safe_dump(
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterArtifactType",
            "metadata": {"name": unique("bad")},
            "spec": {"workflowTemplateRef": {"name": "x", "clusterScope": False}},
        }
    )
    out = kubectl.run("apply", "-f", "-", stdin=doc, check=False)
    assert "is invalid" in out and "spec.workflowTemplateRef.clusterScope" in out, out


def test_deleting_the_order_deletes_artifact_workflows_workflows_and_pods(tenant: Tenant) -> None:
    tenant.order("gone", oci("library/alpine:3.20"))
    eventually(lambda: tenant.phase("gone") == "Succeeded", timeout=120, what="Order Succeeded")
    assert tenant.items("workflows.argoproj.io") and tenant.items("pods")
    tenant.kubectl.run(
        "delete", "-n", tenant.ns, "orders.arc.opendefense.cloud", "gone", "--timeout=120s", timeout=150
    )
    eventually(lambda: not tenant.items("artifactworkflows.arc.opendefense.cloud"), timeout=60, what="no AWs")
    eventually(lambda: not tenant.items("workflows.argoproj.io"), timeout=60, what="no Workflows")
    eventually(lambda: not tenant.items("pods"), timeout=90, what="no pods")
