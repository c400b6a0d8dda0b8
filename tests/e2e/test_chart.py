"""deploy/charts/arc against the real control plane: every rendered manifest accepted by kube-apiserver in
a namespace enforcing Pod Security "restricted"; prerequisites checked online; `helm install` (every object
created, pods scheduled and Ready on the kwok nodes, PDBs, a leader Lease taken with the chart's RBAC),
`helm upgrade` (same CA and caBundle, same etcd volume), `helm uninstall` (all gone but etcd's volumes).

The session's cluster serves ARC from a host process behind an APIService of the same name, and its demo
installs the ClusterWorkflowTemplates the chart ships: the module takes both away while the release exists and
puts them back afterwards (APIService Available again), so the tests after it see the cluster as before.
Nothing serves behind the chart's Service here (kwok runs no containers), and kube-apiserver's aggregator
dials a Service's ClusterIP: the Service range is blackholed while the module runs, so no packet leaves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack import crds as optional_crds
from hack.binaries import REPO_ROOT, binary_path
from hack.cluster import ARC_APISERVICE, FAKE_NODES, SERVICE_CLUSTER_IP_RANGE, LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.support import eventually, kubectl_proc
from tests.integration.chart.support import CHART_DIR, CI_VALUES, documents, helm, helm_env

pytestmark = pytest.mark.e2e

RELEASE = "arc-e2e"
SHIPPED_TEMPLATES = ("arc-oci", "arc-helm", "arc-file")
# Kinds of optional prerequisites the local stack does not run: their CRDs are served during the dry run.
OPTIONAL_KINDS = [
    ("cert-manager.io", "Certificate"),
    ("cert-manager.io", "Issuer"),
    ("monitoring.coreos.com", "ServiceMonitor"),
]
APPLY_SCRIPT = CHART_DIR / "files" / "apply-clusterartifacttypes.py"


@dataclass
class Release:
    """The chart's release in its own restricted namespace, and what the test made for it."""

    namespace: str
    home: Path
    kubeconfig: Path
    bin_dir: Path

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return helm(*args, "--kubeconfig", str(self.kubeconfig), home=self.home, check=check, timeout=timeout)

    def run_doc_block(self, name: str) -> str:
        """The ``<!-- e2e: name -->`` block of docs/install.md, run as written but for the namespace and the
        release name, with this cluster's kubeconfig and the pinned helm."""
        script = doc_block(name).replace("arc-system", self.namespace)
        script = RELEASE_IN_DOCS.sub(rf"\1 {RELEASE}\2", script)
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO_ROOT,
            env={
                **helm_env(self.home),
                "KUBECONFIG": str(self.kubeconfig),
                "PATH": f"{self.bin_dir}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"docs/install.md {name}:\n{script}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout


DOCS = REPO_ROOT / "docs" / "install.md"
RELEASE_IN_DOCS = re.compile(
    r"(helm (?:install|upgrade|template|uninstall|history|get manifest)) arc( |$)", re.M
)


def doc_block(name: str) -> str:
    """The shell block following ``<!-- e2e: name -->`` in docs/install.md."""
    text = DOCS.read_text()
    marker = f"<!-- e2e: {name} -->\n```sh\n"
    assert marker in text, f"docs/install.md has no {name} block"
    return text.split(marker, 1)[1].split("```", 1)[0]


def _blackhole_service_range() -> bool:
    """Drop (locally) whatever would be sent to the Service range; False if a route for it already exists."""
    if subprocess.run(
        ["ip", "route", "show", SERVICE_CLUSTER_IP_RANGE], capture_output=True, text=True
    ).stdout:
        return False
    subprocess.run(["ip", "route", "add", "blackhole", SERVICE_CLUSTER_IP_RANGE], check=True)
    return True


def _restore_arc(cluster: LocalCluster, kubectl: Kubectl) -> None:
    """The session's own ARC registration and demo templates, and the APIService Available again."""
    cluster.register_arc_apiserver()
    eventually(cluster.apiservice_available, timeout=120, interval=1, what=f"{ARC_APISERVICE} Available")
    cluster.install_demo()


def _persistent_volume(name: str, claim: str, namespace: str, path: Path) -> dict[str, Any]:
    """A hostPath PersistentVolume bound ahead to one claim. The local stack has no provisioner and no
    default StorageClass: claims without a class bind to volumes of class "", as in such clusters."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"arc.opendefense.cloud/e2e": "chart"}},
        "spec": {
            "capacity": {"storage": "8Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }


@pytest.fixture(scope="module")
def release(
    local_cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "helm").symlink_to(binary_path("helm"))
    rel = Release(
        namespace=f"arc-chart-{suffix}",
        home=tmp_path_factory.mktemp("helm-home"),
        kubeconfig=local_cluster.kubeconfig,
        bin_dir=bin_dir,
    )
    blackholed = _blackhole_service_range()
    try:
        kubectl.run("create", "namespace", rel.namespace)
        kubectl.run(
            "label",
            "namespace",
            rel.namespace,
            *(f"pod-security.kubernetes.io/{mode}=restricted" for mode in ("enforce", "warn", "audit")),
        )
        data = tmp_path_factory.mktemp("etcd-volumes")
        for claim in (f"data-{RELEASE}-etcd-0", f"{RELEASE}-etcd-snapshots"):
            pv = _persistent_volume(f"{rel.namespace}-{claim}", claim, rel.namespace, data / claim)
            kubectl.run("create", "-f", "-", stdin=json.dumps(pv))
        # The chart brings its own APIService and ClusterWorkflowTemplates: the session's give way meanwhile.
        kubectl.run("delete", "apiservice", ARC_APISERVICE)
        kubectl.run("delete", "clusterworkflowtemplates", *SHIPPED_TEMPLATES, "--ignore-not-found")
        yield rel
    finally:
        rel.helm("uninstall", RELEASE, "--namespace", rel.namespace, "--wait", check=False)
        _restore_arc(local_cluster, kubectl)
        kubectl.run("delete", "pvc", "--all", "-n", rel.namespace, "--wait=false", check=False)
        kubectl.run("delete", "namespace", rel.namespace, "--wait=false", check=False)
        kubectl.run("delete", "pv", "-l", "arc.opendefense.cloud/e2e=chart", "--wait=false", check=False)
        if blackholed:
            subprocess.run(["ip", "route", "del", "blackhole", SERVICE_CLUSTER_IP_RANGE], check=False)


def test_missing_prerequisites_fail_the_install_naming_them(release: Release) -> None:
    proc = release.helm(
        "install",
        f"{RELEASE}-prereq",
        str(CHART_DIR),
        "--namespace",
        release.namespace,
        "--dry-run=server",
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "tls.mode=cert-manager",
        check=False,
    )
    assert proc.returncode != 0
    assert "ARC's prerequisites are missing from this cluster" in proc.stderr, proc.stderr
    assert "cert-manager's CRDs (certificates.cert-manager.io: tls.mode=cert-manager)" in proc.stderr
    assert "the Prometheus Operator's CRDs (servicemonitors.monitoring.coreos.com" in proc.stderr
    assert "Argo" not in proc.stderr  # the local stack has Argo's CRDs


def test_every_rendered_manifest_is_accepted_by_kube_apiserver(release: Release, kubectl: Kubectl) -> None:
    """Server-side dry run of every object of every ci/*-values.yaml (hooks included), in the restricted
    namespace: admission, schema validation and Pod Security (warn) of the real kube-apiserver.
    cert-manager's and the Prometheus Operator's CRDs (from their modules, hack/crds.py) are served
    meanwhile, so their objects meet their real schemas too, and the prerequisite check lets them through."""
    crds = [optional_crds.crd(group, kind) for group, kind in OPTIONAL_KINDS]
    names = [c["metadata"]["name"] for c in crds]
    kubectl.run("create", "-f", "-", stdin="\n---\n".join(json.dumps(c) for c in crds))
    try:
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
        for values in CI_VALUES:
            rendered = documents(
                release.helm(
                    "template",
                    RELEASE,
                    str(CHART_DIR),
                    "--namespace",
                    release.namespace,
                    "--values",
                    str(values),
                ).stdout
            )
            proc = kubectl_proc(
                kubectl,
                "apply",
                "--dry-run=server",
                "-f",
                "-",
                stdin="\n---\n".join(yaml.safe_dump(o) for o in rendered),
                timeout=120,
            )
            assert proc.returncode == 0, f"{values.name}: {proc.stderr}"
            assert "Warning" not in proc.stderr, f"{values.name}: {proc.stderr}"
            assert proc.stdout.count("(server dry run)") == len(rendered), proc.stdout
        checked = release.helm(
            "install",
            f"{RELEASE}-prereq",
            str(CHART_DIR),
            "--namespace",
            release.namespace,
            "--dry-run=server",
            "--values",
            str(CHART_DIR / "ci" / "cert-manager-values.yaml"),
        )
        assert "STATUS: pending-install" in checked.stdout, checked.stdout
    finally:
        kubectl.run("delete", "crd", *names, "--ignore-not-found")


def _release_objects(release: Release) -> list[dict[str, Any]]:
    manifest = release.helm("get", "manifest", RELEASE, "--namespace", release.namespace).stdout
    return documents(manifest)


def _exists(kubectl: Kubectl, obj: dict[str, Any], namespace: str) -> bool:
    ns = obj["metadata"].get("namespace", namespace)
    kind = (
        f"{obj['kind'].lower()}.{obj['apiVersion'].rsplit('/', 1)[0]}"
        if "/" in obj["apiVersion"]
        else obj["kind"]
    )
    proc = kubectl_proc(kubectl, "get", kind, obj["metadata"]["name"], "-n", ns, "-o", "name")
    if proc.returncode != 0 and "NotFound" not in proc.stderr:
        raise AssertionError(proc.stderr)
    return proc.returncode == 0


def _pods(kubectl: Kubectl, namespace: str, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    return list(kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"])


def _running_and_ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return pod.get("status", {}).get("phase") == "Running" and conditions.get("Ready") == "True"


def test_install_as_docs_install_md_says(release: Release, kubectl: Kubectl) -> None:
    """Every object created, pods scheduled on the kwok nodes and Ready, PDBs, the APIService with the CA."""
    out = release.run_doc_block("install")  # its last line lists every object of the release (kubectl get)
    objects = _release_objects(release)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert out.count("(server dry run)") == len(objects) + 1  # + the hook Job
    assert len(objects) >= 40
    missing = [
        f"{o['kind']}/{o['metadata']['name']}" for o in objects if not _exists(kubectl, o, release.namespace)
    ]
    assert not missing, missing

    expected = {"apiserver": 2, "controller-manager": 2, "etcd": 1}
    for component, count in expected.items():
        pods = _pods(kubectl, release.namespace, component)
        assert len(pods) == count, (component, [p["metadata"]["name"] for p in pods])
        for pod in pods:
            assert pod["spec"]["nodeName"] in FAKE_NODES
            assert _running_and_ready(pod), pod["status"]
    # The post-install hook Job (default ClusterArtifactTypes) ran to completion and was removed.
    assert not _exists(
        kubectl,
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"{RELEASE}-clusterartifacttypes"}},
        release.namespace,
    )

    pdbs = {p["metadata"]["name"]: p for p in kubectl.json("get", "pdb", "-n", release.namespace)["items"]}
    assert set(pdbs) == {f"{RELEASE}-apiserver", f"{RELEASE}-controller-manager"}
    assert pdbs[f"{RELEASE}-apiserver"]["status"]["currentHealthy"] == 2
    apiservice = kubectl.json("get", "apiservice", ARC_APISERVICE)
    assert apiservice["spec"]["service"] == {
        "name": f"{RELEASE}-apiserver",
        "namespace": release.namespace,
        "port": 443,
    }
    ca = kubectl.json("get", "secret", f"{RELEASE}-apiserver-tls", "-n", release.namespace)["data"]["ca.crt"]
    assert apiservice["spec"]["caBundle"] == ca
    pvc = kubectl.json("get", "pvc", f"data-{RELEASE}-etcd-0", "-n", release.namespace)
    assert pvc["status"]["phase"] == "Bound"


def _token_kubeconfig(kubectl: Kubectl, cluster: LocalCluster, namespace: str, sa: str, path: Path) -> Path:
    token = kubectl.run("create", "token", sa, "-n", namespace, "--duration=10m").strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": cluster.server,
                            "certificate-authority": str(cluster.pki_dir / "ca.crt"),
                        },
                    }
                ],
                "users": [{"name": sa, "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_the_charts_controller_manager_takes_the_lease_with_the_charts_rbac(
    release: Release, kubectl: Kubectl, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """kwok runs no container, so the Deployment's own command line runs here, as the chart's service account:
    its leader election succeeds with exactly the chart's RBAC and leaves the Lease the pods would hold."""
    deployment = kubectl.json("get", "deployment", f"{RELEASE}-controller-manager", "-n", release.namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/local/bin/arc-controller-manager"]
    # On the host, every listener binds loopback (the pod's are ':<port>' on the pod's own network).
    args = [
        a
        for a in container["args"]
        if not a.startswith(("--metrics-bind-address", "--health-probe-bind-address"))
    ]
    kubeconfig = _token_kubeconfig(
        kubectl, local_cluster, release.namespace, f"{RELEASE}-controller-manager", tmp_path / "kubeconfig"
    )
    log = (tmp_path / "controller-manager.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controllers",
            *args,
            f"--kubeconfig={kubeconfig}",
            "--metrics-bind-address=127.0.0.1:0",
            # the session's Endpoints name remotes off this machine: probe none of them; kwok's nodes serve
            # no logs (kube-apiserver would look their names up)
            "--endpoint-probe-allowed-hosts=127.0.0.1",
            "--failed-step-log-lines=0",
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )
    try:
        lease_id = next(a.split("=", 1)[1] for a in args if a.startswith("--leader-election-id="))

        def held() -> bool:
            assert proc.poll() is None, (tmp_path / "controller-manager.log").read_text()
            got = kubectl_proc(kubectl, "get", "lease", lease_id, "-n", release.namespace, "-o", "json")
            return got.returncode == 0 and bool(json.loads(got.stdout)["spec"].get("holderIdentity"))

        eventually(held, timeout=60, what=f"Lease {lease_id} held")
        _metrics_need_the_charts_metrics_reader(kubectl, release, tmp_path / "controller-manager.log")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _metrics_need_the_charts_metrics_reader(kubectl: Kubectl, release: Release, log: Path) -> None:
    """The chart's default --metrics-secure with the chart's RBAC: /metrics answers a token of a service
    account bound to the chart's ClusterRole <release>-metrics-reader, and no one else."""
    address = next(
        r["address"]
        for r in map(_json_or_empty, log.read_text().splitlines())
        if r.get("msg") == "serving metrics"
    )
    scraper = f"scraper-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "serviceaccount", scraper, "-n", release.namespace)
    kubectl.run(
        "create",
        "clusterrolebinding",
        scraper,
        f"--clusterrole={RELEASE}-metrics-reader",
        f"--serviceaccount={release.namespace}:{scraper}",
    )
    try:
        token = kubectl.run("create", "token", scraper, "-n", release.namespace, "--duration=10m").strip()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # self-signed: the chart mounts no metrics certificate

        def get(headers: dict[str, str]) -> int:
            request = urllib.request.Request(f"https://{address}/metrics", headers=headers)
            try:
                with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert get({}) == 401
        assert get({"Authorization": f"Bearer {token}"}) == 200
    finally:
        kubectl.run("delete", "clusterrolebinding", scraper, check=False)


def _json_or_empty(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def test_upgrade_keeps_the_ca_and_etcds_volume(release: Release, kubectl: Kubectl) -> None:
    before_ca = kubectl.json("get", "apiservice", ARC_APISERVICE)["spec"]["caBundle"]
    secrets = ("apiserver-ca", "apiserver-tls", "etcd-ca", "etcd-server", "etcd-client")
    before_secrets = {
        s: kubectl.json("get", "secret", f"{RELEASE}-{s}", "-n", release.namespace)["data"] for s in secrets
    }
    before_pvc = kubectl.json("get", "pvc", f"data-{RELEASE}-etcd-0", "-n", release.namespace)

    release.run_doc_block("upgrade")
    assert kubectl.json("get", "apiservice", ARC_APISERVICE)["spec"]["caBundle"] == before_ca
    for s in secrets:
        assert (
            kubectl.json("get", "secret", f"{RELEASE}-{s}", "-n", release.namespace)["data"]
            == before_secrets[s]
        ), s
    after_pvc = kubectl.json("get", "pvc", f"data-{RELEASE}-etcd-0", "-n", release.namespace)
    assert after_pvc["metadata"]["uid"] == before_pvc["metadata"]["uid"]
    assert after_pvc["spec"]["volumeName"] == before_pvc["spec"]["volumeName"]
    assert after_pvc["status"]["phase"] == "Bound"

    pods = _pods(kubectl, release.namespace, "apiserver")
    eventually(
        lambda: len(_pods(kubectl, release.namespace, "apiserver")) == 3, timeout=60, what="3 API servers"
    )
    assert all(_running_and_ready(p) for p in _pods(kubectl, release.namespace, "apiserver")), pods
    history = json.loads(
        release.helm("history", RELEASE, "--namespace", release.namespace, "-o", "json").stdout
    )
    assert [h["status"] for h in history] == ["superseded", "deployed"]


def test_uninstall_removes_everything_but_etcds_volumes(release: Release, kubectl: Kubectl) -> None:
    objects = _release_objects(release)
    volumes = {f"data-{RELEASE}-etcd-0", f"{RELEASE}-etcd-snapshots"}
    release.helm(
        "uninstall", RELEASE, "--namespace", release.namespace, "--wait", "--timeout", "5m", timeout=400
    )

    left = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if _exists(kubectl, o, release.namespace)]
    assert left == [f"PersistentVolumeClaim/{RELEASE}-etcd-snapshots"]  # helm.sh/resource-policy: keep
    claims = {p["metadata"]["name"]: p for p in kubectl.json("get", "pvc", "-n", release.namespace)["items"]}
    assert set(claims) == volumes
    assert all(c["status"]["phase"] == "Bound" for c in claims.values())
    pvs = kubectl.json("get", "pv", "-l", "arc.opendefense.cloud/e2e=chart")["items"]
    assert {pv["spec"]["claimRef"]["name"] for pv in pvs if pv["status"]["phase"] == "Bound"} == volumes
    eventually(
        lambda: not kubectl.json("get", "pods", "-n", release.namespace)["items"],
        timeout=120,
        what="the release's pods gone",
    )
    assert not _exists(
        kubectl,
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": ARC_APISERVICE},
        },
        release.namespace,
    )


def test_the_hook_script_creates_then_merges_clusterartifacttypes(
    release: Release, kubectl: Kubectl, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """The hook Job's program, against the session's real ARC (restored first), as a service account allowed
    exactly what the chart's bootstrap ClusterRole allows."""
    _restore_arc(local_cluster, kubectl)
    rendered = documents(
        release.helm("template", RELEASE, str(CHART_DIR), "--namespace", release.namespace).stdout
    )
    config_map = next(
        o
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-clusterartifacttypes")
    )
    role = next(
        o for o in rendered if o["kind"] == "ClusterRole" and o["metadata"]["name"] == f"{RELEASE}-bootstrap"
    )
    objects = json.loads(config_map["data"]["clusterartifacttypes.json"])
    assert sorted(o["metadata"]["name"] for o in objects) == ["file", "helm", "oci"]
    suffix = uuid.uuid4().hex[:6]
    for obj in objects:
        obj["metadata"]["name"] = f"e2e-{suffix}-{obj['metadata']['name']}"
    names = [o["metadata"]["name"] for o in objects]
    role["metadata"] = {"name": f"e2e-{suffix}-bootstrap"}
    role["rules"][0]["resourceNames"] = names
    sa = f"e2e-{suffix}-bootstrap"
    kubectl.run("create", "serviceaccount", sa, "-n", release.namespace)
    kubectl.run("create", "-f", "-", stdin=json.dumps(role))
    kubectl.run(
        "create",
        "clusterrolebinding",
        sa,
        f"--clusterrole={sa}",
        f"--serviceaccount={release.namespace}:{sa}",
    )
    try:
        token = tmp_path / "token"
        token.write_text(
            kubectl.run("create", "token", sa, "-n", release.namespace, "--duration=10m").strip()
        )
        objects_file = tmp_path / "objects.json"
        objects_file.write_text(json.dumps(objects))
        env = {
            **os.environ,
            "ARC_KUBE_SERVER": local_cluster.server,
            "ARC_TOKEN_FILE": str(token),
            "ARC_CA_FILE": str(local_cluster.pki_dir / "ca.crt"),
            "ARC_WAIT_SECONDS": "60",
        }
        first = subprocess.run(
            [sys.executable, str(APPLY_SCRIPT), str(objects_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count(" created") == 3, first.stdout
        objects[0]["spec"]["ttl"] = {"afterSucceeded": "2h", "afterFailed": "48h"}
        objects_file.write_text(json.dumps(objects))
        second = subprocess.run(
            [sys.executable, str(APPLY_SCRIPT), str(objects_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count(" configured") == 3, second.stdout
        stored = kubectl.json("get", "clusterartifacttypes", names[0])
        assert stored["spec"]["ttl"] == {"afterSucceeded": "2h", "afterFailed": "48h"}
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        # Anything but 409 is an error naming the server's reason: an invalid spec is refused with 422.
        objects_file.write_text(json.dumps([{**objects[1], "spec": {"workflowTemplateRef": {}}}]))
        bad = subprocess.run(
            [sys.executable, str(APPLY_SCRIPT), str(objects_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode == 1
        assert "failed: 422" in bad.stdout, bad.stdout
    finally:
        kubectl.run("delete", "clusterartifacttypes", *names, "--ignore-not-found", check=False)
        kubectl.run("delete", "clusterrolebinding,clusterrole", sa, "--ignore-not-found", check=False)
