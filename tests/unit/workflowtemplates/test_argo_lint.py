"""The real `argo lint --offline` (Argo v3.6.5, built by hack/) on every rendered template."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.binaries import binary_path
from workflowtemplates.render import DEFAULT_OUT, TEMPLATES

FILES = sorted(TEMPLATES)


@pytest.fixture(scope="module")
def argo() -> Path:
    try:
        return binary_path("argo")
    except FileNotFoundError as exc:
        pytest.fail(f"these tests need the argo CLI: {exc}")


def lint(argo: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(argo), "lint", "--offline", "--output", "simple", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("filename", FILES)
def test_argo_lint_accepts_the_rendered_template(argo: Path, filename: str) -> None:
    proc = lint(argo, DEFAULT_OUT / filename)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _broken(tmp_path: Path, filename: str, breakage: str) -> Path:
    doc: dict[str, Any] = yaml.safe_load((DEFAULT_OUT / filename).read_text())
    main = next(t for t in doc["spec"]["templates"] if t["name"] == "main")
    if breakage == "undefined-template":
        main["steps"][0][0]["template"] = "no-such-template"
    elif breakage == "unknown-field":
        doc["spec"]["templates"][0]["activeDeadlinSeconds"] = 1
    elif breakage == "bad-retry-policy":
        doc["spec"]["templates"][0]["retryStrategy"]["retryPolicy"] = "Sometimes"
    path = tmp_path / f"{breakage}-{filename}"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("breakage", ["undefined-template", "unknown-field", "bad-retry-policy"])
@pytest.mark.parametrize("filename", FILES)
def test_argo_lint_rejects_a_broken_copy(argo: Path, tmp_path: Path, filename: str, breakage: str) -> None:
    # Negative control: lint really looks at the file (a copy that only differs by the breakage fails).
    proc = lint(argo, _broken(tmp_path, filename, breakage))
    assert proc.returncode != 0, proc.stdout


def _workflow(template: str, parameters: list[dict[str, str]], *, src_secret: str) -> dict[str, Any]:
    """A Workflow as controllers/artifactworkflow/workflow.py builds it for an ArtifactWorkflow."""
    from api.arc.v1alpha1.types import ArtifactWorkflow
    from controllers.artifactworkflow.workflow import Origin, build_workflow

    aw = ArtifactWorkflow.model_validate(
        {
            "metadata": {"name": "order-0123456789abcdef", "namespace": "arc-demo", "uid": "u-1"},
            "spec": {
                "type": "oci",
                "workflowTemplateRef": {"name": template, "clusterScope": True},
                "parameters": parameters,
                "srcSecretRef": {"name": src_secret},
                "queueName": "transfers",
            },
        }
    )
    return build_workflow(aw, Origin("order", 0, "src", "dst"))


@pytest.mark.parametrize("template", ["arc-oci", "no-such-template"])
def test_argo_lint_resolves_a_controller_built_workflow_against_the_template(
    argo: Path, tmp_path: Path, template: str
) -> None:
    from controllers.order.parameters import build_parameters

    params = build_parameters(
        src_type="oci",
        src_remote_url="docker.io",
        dst_type="oci",
        dst_remote_url="registry.internal.example/mirror",
        src_secret=True,
        dst_secret=False,
        spec={"image": "library/alpine:3.20", "scan": True},
    )
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(yaml.safe_dump(_workflow(template, params, src_secret="docker-hub-creds")))
    proc = lint(argo, workflow, DEFAULT_OUT / "oci.yaml")
    if template == "arc-oci":
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        assert proc.returncode != 0 and "no-such-template" in proc.stdout + proc.stderr
