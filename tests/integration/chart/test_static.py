"""Static checks of deploy/charts/arc with the real tools: helm lint --strict, chart-testing's ct lint,
the helm-unittest suites (deploy/charts/arc/tests/), kubernetes-validate (Kubernetes 1.33 schemas, strict)
of every rendered object for every ci/*-values.yaml, Argo's own CRD schema for the ClusterWorkflowTemplates,
and the values schema refusing bad values with a message naming them."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hack import crds
from hack.binaries import REPO_ROOT, binary_path
from tests.integration.chart.support import CHART_DIR, CI_VALUES, documents, helm, helm_env, render
from tests.integration.workflowtemplates.support import Registry

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


def test_ci_values_cover_the_modes() -> None:
    assert {p.name for p in CI_VALUES} >= {
        "default-values.yaml",
        "ha-values.yaml",
        "cert-manager-values.yaml",
        "external-etcd-values.yaml",
    }


def test_helm_lint_strict(home: Path) -> None:
    for values in [None, *CI_VALUES]:
        args = ["lint", "--strict", str(CHART_DIR)] + (["--values", str(values)] if values else [])
        out = helm(*args, home=home).stdout
        assert "1 chart(s) linted, 0 chart(s) failed" in out, out


def test_ct_lint(home: Path, tmp_path: Path) -> None:
    """chart-testing with its shipped Chart.yaml schema and yamllint rules (hack/ct/), helm lint per ci
    values file."""
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    (path_dir / "helm").symlink_to(binary_path("helm"))
    env = {**helm_env(home), "PATH": f"{path_dir}:{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(binary_path("ct")), "lint", "--config", "hack/ct/ct.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All charts linted successfully" in proc.stdout
    for values in CI_VALUES:
        assert f'Linting chart with values file "deploy/charts/arc/ci/{values.name}"' in proc.stdout


def test_helm_unittest_suites(home: Path, tmp_path: Path) -> None:
    """helm-unittest installed as a helm plugin from a local directory (the shipped plugin.yaml declares
    platformHooks, which helm 3.16 rejects)."""
    plugin = tmp_path / "unittest"
    plugin.mkdir()
    (plugin / "untt").symlink_to(binary_path("helm-unittest"))
    (plugin / "plugin.yaml").write_text(
        "name: unittest\nversion: 1.1.2\nusage: unit test for helm charts\n"
        "description: unit test for helm charts\ncommand: $HELM_PLUGIN_DIR/untt\n"
    )
    if "unittest" not in helm("plugin", "list", home=home).stdout:
        helm("plugin", "install", str(plugin), home=home)
    out = helm("unittest", "--color=false", str(CHART_DIR), home=home).stdout
    suites = sorted((CHART_DIR / "tests").glob("*_test.yaml"))
    assert f"Test Suites: {len(suites)} passed, {len(suites)} total" in out, out
    assert " 0 passed" not in out.split("Tests:")[1].splitlines()[0], out


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_every_rendered_object_is_valid_for_kubernetes_1_33(home: Path, tmp_path: Path, values: Path) -> None:
    """kubernetes-validate --strict: unknown fields and wrong types in built-in kinds fail. Kinds of CRDs have
    no schema there: Argo's are checked below, cert-manager's and the Prometheus Operator's are counted."""
    objects = render(home, values=[values])
    files = []
    for i, obj in enumerate(objects):
        path = tmp_path / f"{i:03d}-{obj['kind']}-{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        files.append(str(path))
    proc = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "-k", "1.33.0", "--strict", "--quiet", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unvalidated = {
        line.split(" for kind ")[1].split(" for kubernetes")[0]
        for line in proc.stdout.splitlines()
        if "Couldn't find schema" in line
    }
    allowed = {
        "ClusterWorkflowTemplate with api version argoproj.io/v1alpha1",
        "Certificate with api version cert-manager.io/v1",
        "Issuer with api version cert-manager.io/v1",
        "ServiceMonitor with api version monitoring.coreos.com/v1",
    }
    assert unvalidated <= allowed, unvalidated
    assert "ERROR" not in proc.stdout, proc.stdout


def _strict(schema: Any) -> Any:
    """A CRD's structural schema with unknown fields refused, as kube-apiserver's strict field validation
    does (objects without properties or marked x-kubernetes-preserve-unknown-fields keep any field)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
        strict["properties"].setdefault("apiVersion", {"type": "string"})
    return strict


@functools.cache
def _crd_validator(group: str, version: str, kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strict(crds.schema(group, version, kind)))


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_custom_resources_match_their_projects_crd_schemas(home: Path, values: Path) -> None:
    """ClusterWorkflowTemplates against Argo's full CRD, Certificates/Issuers against cert-manager's,
    ServiceMonitors against the Prometheus Operator's (hack/crds.py), unknown fields refused."""
    checked = set()
    for obj in render(home, values=[values]):
        group, _, version = obj["apiVersion"].rpartition("/")
        if group not in ("argoproj.io", *crds.CRD_MODULES):
            continue
        _crd_validator(group, version, obj["kind"]).validate(obj)
        checked.add(obj["kind"])
    assert "ClusterWorkflowTemplate" in checked
    if values.name == "cert-manager-values.yaml":
        assert checked == {"ClusterWorkflowTemplate", "Certificate", "Issuer", "ServiceMonitor"}


def test_strict_crd_validation_refuses_an_unknown_field(home: Path) -> None:
    certificate = next(o for o in render(home, sets=["tls.mode=cert-manager"]) if o["kind"] == "Certificate")
    certificate["spec"]["renewBefor"] = "1h"
    with pytest.raises(jsonschema.ValidationError, match="renewBefor"):
        _crd_validator("cert-manager.io", "v1", "Certificate").validate(certificate)


def test_workflow_templates_are_deploys_rendering(home: Path) -> None:
    """The chart ships deploy/workflowtemplates/ unchanged but for its labels."""
    shipped = {
        doc["metadata"]["name"]: doc
        for path in sorted((REPO_ROOT / "deploy" / "workflowtemplates").glob("*.yaml"))
        for doc in documents(path.read_text())
    }
    for template in (o for o in render(home) if o["kind"] == "ClusterWorkflowTemplate"):
        expected = shipped[template["metadata"]["name"]]
        labels = template["metadata"].pop("labels")
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels.items() >= expected["metadata"].pop("labels", {}).items()
        expected["metadata"].pop("labels", None)
        assert template == expected


def test_rbac_grants_exactly_what_deploy_grants(home: Path) -> None:
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in render(home)}
    for manifest in (
        "apiserver/rbac.yaml",
        "apiserver/user-roles.yaml",
        "controllers/rbac.yaml",
        "prometheus/rbac.yaml",
    ):
        for doc in documents((REPO_ROOT / "deploy" / manifest).read_text()):
            if doc["kind"] not in ("ClusterRole", "Role"):
                continue
            chart_name = "arc" + doc["metadata"]["name"].removeprefix("arc")  # release "arc": same names
            assert rendered[(doc["kind"], chart_name)]["rules"] == doc["rules"], chart_name


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["apiserver.replicas=two"], "apiserver.replicas: Invalid type. Expected: integer, given: string"),
        (["etcd.replicas=2"], "etcd.replicas: etcd.replicas must be one of the following: 1, 3, 5"),
        (["apiserver.replicaz=3"], "apiserver: Additional property replicaz is not allowed"),
        (["tls.mode=self-signed"], 'tls.mode: tls.mode must be one of the following: "helm", "cert-manager"'),
        (["image.digest=sha256:abc"], "image.digest: Does not match pattern"),
        (["etcd.enabled=false"], "externalEtcd.endpoints: Array must have at least 1 items"),
        (["externalEtcd.endpoints={http://etcd:2379}"], "externalEtcd.endpoints.0: Does not match pattern"),
        (["clusterArtifactTypes.queueName=Not_A_Name"], "clusterArtifactTypes.queueName: Does not match"),
    ],
)
def test_bad_values_fail_naming_the_value(home: Path, sets: list[str], message: str) -> None:
    args = ["template", "arc", str(CHART_DIR)]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args, home=home, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_object_counts(home: Path) -> None:
    """The figures docs/install.md quotes (hooks included)."""
    default = render(home)
    ha = render(home, values=[CHART_DIR / "ci" / "ha-values.yaml"])
    kinds = sorted({o["kind"] for o in default})
    print(json.dumps({"default": len(default), "ha": len(ha), "kinds": kinds}))
    assert len(default) == 48
    assert len(ha) == 49  # + the etcd PodDisruptionBudget
    assert {o["kind"] for o in ha} - set(kinds) == set()
    etcd = next(o for o in ha if o["kind"] == "StatefulSet")
    assert etcd["spec"]["replicas"] == 3


def test_chart_readme_values_table_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hack.chart_readme", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_air_gapped_chart_copy_through_an_oci_registry(home: Path, tmp_path: Path) -> None:
    """docs/install.md's air-gapped path for the chart: `helm package` (the files linked from deploy/ are
    copied into the archive), `helm push` to a registry (Debian's docker-registry on loopback), and the
    chart pulled back from there renders the same objects."""
    registry = Registry(tmp_path / "registry")
    registry.start()
    try:
        helm("package", str(CHART_DIR), "--destination", str(tmp_path / "dist"), home=home)
        archive = tmp_path / "dist" / "arc-0.1.0.tgz"
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert {f"arc/files/workflowtemplates/{n}.yaml" for n in ("oci", "helm", "file")} <= names
        assert "arc/files/controllers-rbac.yaml" in names
        pushed = helm("push", str(archive), f"oci://{registry.host}/arc/charts", "--plain-http", home=home)
        assert "Digest: sha256:" in pushed.stderr + pushed.stdout
        pulled = documents(
            helm(
                "template",
                "arc",
                f"oci://{registry.host}/arc/charts/arc",
                "--version",
                "0.1.0",
                "--plain-http",
                "--namespace",
                "arc-system",
                home=home,
            ).stdout
        )
    finally:
        registry.stop()
    local = render(home)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in pulled) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in local
    )
