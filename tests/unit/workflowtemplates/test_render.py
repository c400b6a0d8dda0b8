"""The rendered ClusterWorkflowTemplates: up to date, deterministic, and what the controller expects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflowtemplates import file, helm, oci, scripts
from workflowtemplates.__main__ import main
from workflowtemplates.common import (
    COMMON_PARAMETERS,
    DST_SECRET_VOLUME,
    OUTPUT_DIR,
    OUTPUTS,
    SRC_SECRET_VOLUME,
    Param,
)
from workflowtemplates.images import ARC_TOOLS, LOCK_FILE, TOOL_IMAGES, is_pinned, load_lock, resolve_images
from workflowtemplates.render import DEFAULT_DOCS, DEFAULT_OUT, TEMPLATE_NAMES, TEMPLATES, render

FILES = sorted(TEMPLATES)


def load(filename: str) -> dict[str, Any]:
    doc = yaml.safe_load((DEFAULT_OUT / filename).read_text())
    assert isinstance(doc, dict)
    return doc


def step_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in doc["spec"]["templates"] if t["name"] != "main"]


def test_checked_in_yaml_and_docs_are_up_to_date() -> None:
    # Fails when someone changed workflowtemplates/ without `python -m workflowtemplates render`.
    assert main(["--check"]) == 0, "run `python -m workflowtemplates render` and commit the result"
    assert sorted(p.name for p in DEFAULT_OUT.glob("*.yaml")) == FILES


def test_rendering_is_deterministic() -> None:
    assert render() == render()


def test_check_reports_stale_and_render_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--check", "--out", str(out), "--no-docs"]) == 1
    assert main(["render", "--out", str(out), "--no-docs"]) == 0
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert main(["--check", "--out", str(out), "--no-docs"]) == 0
    (out / "oci.yaml").write_text((out / "oci.yaml").read_text() + "# edited by hand\n")
    assert main(["--check", "--out", str(out), "--no-docs"]) == 1


def test_image_override_must_be_pinned(tmp_path: Path) -> None:
    pinned = "registry.zone/tools/skopeo@sha256:" + "a" * 64
    assert main(["render", "--out", str(tmp_path), "--no-docs", "--image", f"skopeo={pinned}"]) == 0
    assert f"image: {pinned}" in (tmp_path / "oci.yaml").read_text()
    with pytest.raises(SystemExit):
        main(["render", "--out", str(tmp_path), "--no-docs", "--image", "skopeo=quay.io/skopeo/stable:v1"])
    with pytest.raises(ValueError, match="unknown tool image"):
        resolve_images({"crane": pinned})


@pytest.mark.parametrize("filename", FILES)
def test_kind_name_and_entrypoint(filename: str) -> None:
    doc = load(filename)
    assert doc["apiVersion"] == "argoproj.io/v1alpha1"
    assert doc["kind"] == "ClusterWorkflowTemplate"
    assert doc["metadata"]["name"] == TEMPLATE_NAMES[filename]
    assert "namespace" not in doc["metadata"]
    assert doc["spec"]["entrypoint"] == "main"


@pytest.mark.parametrize("filename", FILES)
def test_parameters_follow_the_controller_contract(filename: str) -> None:
    declared = load(filename)["spec"]["arguments"]["parameters"]
    names = [p["name"] for p in declared]
    # The fixed ones first, in the controller's order (SPEC §4.1), then spec-derived ones, then the type-owned
    # verify* ones (an Order's spec only ever makes spec* names, so a tenant cannot set those).
    assert names[:6] == ["srcType", "srcRemoteURL", "dstType", "dstRemoteURL", "srcSecret", "dstSecret"]
    assert len(set(names)) == len(names)
    for p in declared[6:]:
        assert re.fullmatch(r"(spec|verify)[A-Z][A-Za-z0-9]*", p["name"]), p["name"]
    for p in declared:
        assert p.get("description"), p["name"]
        if "enum" in p:
            assert p["enum"] == ["true", "false"] and p["value"] in p["enum"], p
    # Required = no default; only the fixed four and the artifact's essentials are required.
    required = {p["name"] for p in declared if "value" not in p}
    essentials = {
        "oci.yaml": {"specImage"},
        "helm.yaml": {"specChart", "specVersion"},
        "file.yaml": {"specUrl", "specArtifact"},
    }[filename]
    assert required == {"srcType", "srcRemoteURL", "dstType", "dstRemoteURL", *essentials}


@pytest.mark.parametrize("filename", FILES)
def test_every_reference_is_a_declared_workflow_parameter(filename: str) -> None:
    # argo lint does not check {{workflow.parameters.x}} in a ClusterWorkflowTemplate; this does.
    text = (DEFAULT_OUT / filename).read_text()
    declared = {p["name"] for p in load(filename)["spec"]["arguments"]["parameters"]}
    references = re.findall(r"\{\{([^}]*)\}\}", text)
    assert references
    for ref in references:
        kind, _, name = ref.strip().rpartition(".")
        assert kind == "workflow.parameters" and name in declared, ref
    # Every declared parameter reaches the steps.
    assert {r.rpartition(".")[2] for r in references} == declared


@pytest.mark.parametrize("filename", FILES)
def test_steps_retry_mount_credentials_read_only_and_declare_only_evidence_outputs(filename: str) -> None:
    doc = load(filename)
    spec = doc["spec"]
    # Volumes and pod metadata come from the Workflow (controllers/artifactworkflow/workflow.py).
    assert "volumes" not in spec and "podMetadata" not in spec and "podSpecPatch" not in spec
    main_steps = [t for t in spec["templates"] if t["name"] == "main"]
    assert len(main_steps) == 1 and set(main_steps[0]) == {"name", "steps"}
    for template in step_templates(doc):
        allowed = {"name", "container", "retryStrategy", "activeDeadlineSeconds", "outputs"}
        assert set(template) <= allowed, template
        assert "resource" not in template and "metadata" not in template
        if "outputs" in template:
            # Evidence only: parameters read from files, each with a default (a step that writes none still
            # succeeds), named as the controller reads them.
            assert set(template["outputs"]) == {"parameters"}
            params = template["outputs"]["parameters"]
            assert [p["name"] for p in params] == [name for name, _ in OUTPUTS]
            for p in params:
                assert p["valueFrom"] == {"path": f"{OUTPUT_DIR}/{p['name']}", "default": ""}
            assert {"name": "ARC_OUTPUT_DIR", "value": OUTPUT_DIR} in template["container"]["env"]
        retry = template["retryStrategy"]
        assert retry["retryPolicy"] == "Always" and int(retry["limit"]) >= 1 and "backoff" in retry
        assert "maxDuration" not in retry["backoff"]  # would count time queued in Kueue
        container = template["container"]
        assert is_pinned(container["image"]), container["image"]
        assert container["command"][:2] == ["/bin/sh", "-c"] and "args" not in container
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        mounts = container["volumeMounts"]
        assert mounts and all(m["readOnly"] is True for m in mounts)
        assert {m["name"] for m in mounts} <= {SRC_SECRET_VOLUME, DST_SECRET_VOLUME}
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["ARC_SRC_AUTH_DIR"] == "/var/run/arc/src" and env["ARC_DST_AUTH_DIR"] == "/var/run/arc/dst"


def test_secret_volume_names_match_the_controller() -> None:
    from controllers.artifactworkflow import workflow

    assert (workflow.SRC_SECRET_VOLUME, workflow.DST_SECRET_VOLUME) == (SRC_SECRET_VOLUME, DST_SECRET_VOLUME)


@pytest.mark.parametrize(
    ("module", "spec"),
    [
        (oci, {"image": "library/alpine:3.20", "tlsVerify": {"src": False, "dst": True}, "scan": True}),
        (oci, {"image": "nginx@sha256:" + "1" * 64, "dstImage": "mirror/nginx", "copySignatures": True}),
        (helm, {"chart": "nginx", "version": "18.2.4+build.1"}),
        (file, {"url": "releases/t.tgz", "sha256": "ab" * 32, "artifact": "tools/t:v1", "name": "t.tgz"}),
    ],
)
def test_controller_parameters_of_an_artifact_are_all_declared(module: Any, spec: dict[str, Any]) -> None:
    from controllers.order.parameters import build_parameters

    params = build_parameters(
        src_type="oci",
        src_remote_url="docker.io",
        dst_type="oci",
        dst_remote_url="registry.internal.example/mirror",
        src_secret=True,
        dst_secret=False,
        spec=spec,
    )
    declared: dict[str, Param] = {p.name: p for p in module.PARAMETERS}
    passed = {p["name"] for p in params}
    assert passed <= set(declared), passed - set(declared)
    assert {n for n, p in declared.items() if p.default is None} <= passed


def test_when_conditions() -> None:
    by_step = {
        f: {s["name"]: s.get("when") for group in t["steps"] for s in group}
        for f in FILES
        for t in load(f)["spec"]["templates"]
        if t["name"] == "main"
    }
    assert by_step["oci.yaml"] == {
        "scan": "'{{workflow.parameters.specScan}}' == 'true'",
        "copy": None,
        "copy-signatures": "'{{workflow.parameters.specCopySignatures}}' == 'true'",
    }
    assert by_step["helm.yaml"] == {
        "copy-oci": "'{{workflow.parameters.srcType}}' == 'oci'",
        "copy-classic": "'{{workflow.parameters.srcType}}' != 'oci'",
    }
    assert by_step["file.yaml"] == {"copy": None}


def test_scan_step_does_not_retry_its_verdict() -> None:
    scan = next(t for t in load("oci.yaml")["spec"]["templates"] if t["name"] == "scan")
    assert f"lastRetry.exitCode != '{scripts.SCAN_GATE_EXIT_CODE}'" in scan["retryStrategy"]["expression"]
    assert f"--exit-code {scripts.SCAN_GATE_EXIT_CODE}" in scan["container"]["command"][2]


@pytest.mark.parametrize("filename", FILES)
def test_scripts_are_posix_sh(filename: str) -> None:
    for template in step_templates(load(filename)):
        script = template["container"]["command"][2]
        assert "{{" not in script
        proc = subprocess.run(["dash", "-n", "-c", script], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (template["name"], proc.stderr)


def test_images_are_pinned_by_the_lock_and_documented() -> None:
    for image in TOOL_IMAGES.values():
        assert is_pinned(image.reference)
        assert image == ARC_TOOLS == load_lock(LOCK_FILE)
    assert not is_pinned("quay.io/skopeo/stable:v1.16.1")
    assert not is_pinned("quay.io/skopeo/stable@sha256:abc")
    docs = DEFAULT_DOCS.read_text()
    assert ARC_TOOLS.digest in docs and "sha256:" + "0" * 64 not in docs


def test_a_placeholder_digest_in_the_lock_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock.json"
    entry = {"repository": "r/arc-tools", "tag": "t", "contents": "c", "digest": "sha256:" + "0" * 64}
    lock.write_text(json.dumps({"arc-tools": entry}))
    with pytest.raises(ValueError, match="not a real sha256 digest"):
        load_lock(lock)


def test_no_parameter_looks_like_a_credential() -> None:
    for module in (oci, helm, file):
        for p in module.PARAMETERS:
            assert not re.search(r"password|token|creds|credential|auth", p.name, re.I), p.name
    # Nor any evidence output: they hold references, digests, a public key's fingerprint and versions.
    for name, _ in OUTPUTS:
        assert not re.search(r"password|token|creds|credential|auth|secret", name, re.I), name
    assert [p.name for p in COMMON_PARAMETERS][-2:] == ["srcSecret", "dstSecret"]
