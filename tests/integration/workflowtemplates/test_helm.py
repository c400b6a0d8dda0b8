"""arc-helm's steps, run for real: OCI→OCI with skopeo; classic repository → OCI with helm (when built)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.workflowtemplates.support import (
    FileServer,
    Layout,
    Registry,
    chart_archive,
    classic_repository,
    outputs,
    run_step,
    sha256,
    tool_dir,
    write_dockerconfigjson,
)

pytestmark = pytest.mark.integration

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def test_oci_chart_is_copied_byte_for_byte_with_plus_as_underscore(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry
) -> None:
    layout = Layout(tmp_path / "chart")
    config = json.dumps({"apiVersion": "v2", "name": "hello", "version": "1.2.3+build.4"}).encode()
    chart = layout.artifact(
        (config, HELM_CONFIG), [(chart_archive("hello", "1.2.3+build.4"), HELM_CONTENT, {})]
    )
    layout.tag(chart, "c")
    open_registry.push_layout(layout.path, "c", "charts/hello:1.2.3_build.4")
    proc = run_step(
        "helm.yaml",
        "copy-oci",
        {
            "srcType": "oci",
            "srcRemoteURL": f"oci://{open_registry.host}/",
            "dstType": "oci",
            "dstRemoteURL": auth_registry.host,
            "dstSecret": "true",
            "specChart": "charts/hello",
            "specVersion": "1.2.3+build.4",
            "specTlsVerifySrc": "false",
            "specTlsVerifyDst": "false",
        },
        work=tmp_path,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
    )
    assert proc.returncode == 0, proc.stderr
    assert sha256(auth_registry.raw_manifest("charts/hello:1.2.3_build.4")) == chart["digest"]
    # The evidence: resolved by digest first, the same digest at the destination.
    out = outputs(tmp_path)
    assert out["sourceRef"] == f"{open_registry.host}/charts/hello:1.2.3_build.4"
    assert out["sourceDigest"] == out["destinationDigest"] == chart["digest"]
    assert out["destinationRef"] == f"{auth_registry.host}/charts/hello:1.2.3_build.4"
    assert out["signatureKey"] == "" and out["platforms"] == ""
    assert str(auth_registry.password) not in json.dumps(out)


def test_classic_repository_chart_is_pulled_and_pushed_with_helm(
    tmp_path: Path, auth_registry: Registry
) -> None:
    tools = tool_dir(tmp_path / "bin", "helm")
    if tools is None:
        pytest.fail("helm is not built: run hack/build-binaries.sh helm")
    repo = tmp_path / "repo" / "charts"
    repo.mkdir(parents=True)
    archive = classic_repository(repo, "hello", "0.1.0+gabc")
    with FileServer(repo.parent, user="reader", password="s3cret") as server:
        src_auth = tmp_path / "src-auth"
        write_dockerconfigjson(src_auth, server.host, "reader", "s3cret")
        proc = run_step(
            "helm.yaml",
            "copy-classic",
            {
                "srcType": "helm",
                "srcRemoteURL": f"http://{server.host}/charts/",
                "dstType": "oci",
                "dstRemoteURL": f"http://{auth_registry.host}",
                "srcSecret": "true",
                "dstSecret": "true",
                "specChart": "hello",
                "specVersion": "0.1.0+gabc",
            },
            work=tmp_path,
            src_auth=src_auth,
            dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
            tools=[tools],
        )
        assert proc.returncode == 0, proc.stderr
        assert all(auth is not None for _, auth in server.requests)  # basic auth on every request
    manifest = json.loads(auth_registry.raw_manifest("hello:0.1.0_gabc"))
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert [(layer["mediaType"], layer["digest"]) for layer in manifest["layers"]] == [
        (HELM_CONTENT, sha256(archive))
    ]
    assert "s3cret" not in proc.stderr and "s3cret" not in proc.stdout
    out = outputs(tmp_path)
    assert out["sourceDigest"] == sha256(archive)
    assert out["sourceRef"] == f"http://{server.host}/charts/hello-0.1.0+gabc"
    pushed = auth_registry.raw_manifest("hello:0.1.0_gabc")
    assert out["destinationRef"] == f"{auth_registry.host}/hello:0.1.0_gabc"
    assert out["destinationDigest"] == sha256(pushed)
    assert out["tools"].startswith("helm v3.16.2")
    assert "s3cret" not in json.dumps(out) and str(auth_registry.password) not in json.dumps(out)


def test_a_classic_repository_cannot_pass_a_signature_gate(tmp_path: Path, auth_registry: Registry) -> None:
    # The type requires a signature; a classic repository has none to check, so the step fails closed.
    proc = run_step(
        "helm.yaml",
        "copy-classic",
        {
            "srcType": "helm",
            "srcRemoteURL": "http://127.0.0.1:9/charts/",
            "dstType": "oci",
            "dstRemoteURL": f"http://{auth_registry.host}",
            "specChart": "hello",
            "specVersion": "0.1.0",
            "verifyCosignPublicKey": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        },
        work=tmp_path,
    )
    assert proc.returncode == 4, proc.stderr
    assert (
        "signature gate: not possible here: a classic chart repository has no cosign signatures"
        in proc.stderr
    )
    assert not auth_registry.has("hello:0.1.0")


def test_classic_chart_name_must_not_be_a_path(tmp_path: Path, open_registry: Registry) -> None:
    proc = run_step(
        "helm.yaml",
        "copy-classic",
        {
            "srcType": "helm",
            "srcRemoteURL": "https://charts.example",
            "dstType": "oci",
            "dstRemoteURL": open_registry.host,
            "specChart": "bitnami/nginx",
            "specVersion": "1.0.0",
        },
        work=tmp_path,
    )
    assert proc.returncode == 2 and "specChart must be a chart name" in proc.stderr


OTHER_HOST = "127.0.0.2"  # another loopback address: another host


def _classic(
    tmp_path: Path, server: FileServer, auth_registry: Registry, src_auth: Path, tools: Path
) -> subprocess.CompletedProcess[str]:
    return run_step(
        "helm.yaml",
        "copy-classic",
        {
            "srcType": "helm",
            "srcRemoteURL": f"http://{server.host}/charts/",
            "dstType": "oci",
            "dstRemoteURL": f"http://{auth_registry.host}",
            "srcSecret": "true",
            "dstSecret": "true",
            "specChart": "hello",
            "specVersion": "0.1.0+gabc",
        },
        work=tmp_path,
        src_auth=src_auth,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
        tools=[tools],
    )


def _helm(tmp_path: Path) -> Path:
    tools = tool_dir(tmp_path / "bin", "helm")
    if tools is None:
        pytest.fail("helm is not built: run hack/build-binaries.sh helm")
    return tools


def test_classic_repository_with_a_secret_for_another_host_sends_nothing(
    tmp_path: Path, auth_registry: Registry
) -> None:
    tools = _helm(tmp_path)
    repo = tmp_path / "repo" / "charts"
    repo.mkdir(parents=True)
    classic_repository(repo, "hello", "0.1.0+gabc")
    with FileServer(repo.parent, user="reader", password="s3cret") as server:
        src_auth = tmp_path / "src-auth"
        write_dockerconfigjson(src_auth, f"{OTHER_HOST}:443", "neighbour", "n3ighbour-pw")
        proc = _classic(tmp_path, server, auth_registry, src_auth, tools)
        assert proc.returncode == 2 and f"no credentials for {server.host}" in proc.stderr, proc.stderr
        assert all(auth is None for _, auth in server.requests)
    assert "n3ighbour-pw" not in proc.stderr + proc.stdout


def test_classic_chart_hosted_on_another_host_is_fetched_without_credentials(
    tmp_path: Path, auth_registry: Registry
) -> None:
    """The repository's index lists the chart archive on another host (a CDN): helm fetches it there
    without the repository's credentials (no --pass-credentials)."""
    tools = _helm(tmp_path)
    repo = tmp_path / "repo" / "charts"
    repo.mkdir(parents=True)
    archive = classic_repository(repo, "hello", "0.1.0+gabc")
    cdn_root = tmp_path / "cdn"
    cdn_root.mkdir()
    (cdn_root / "hello-0.1.0+gabc.tgz").write_bytes(archive)
    with FileServer(cdn_root, address=OTHER_HOST) as cdn:
        index = yaml.safe_load((repo / "index.yaml").read_text())
        index["entries"]["hello"][0]["urls"] = [f"http://{cdn.host}/hello-0.1.0+gabc.tgz"]
        (repo / "index.yaml").write_text(yaml.safe_dump(index))
        with FileServer(repo.parent, user="reader", password="s3cret") as server:
            src_auth = tmp_path / "src-auth"
            write_dockerconfigjson(src_auth, server.host, "reader", "s3cret")
            proc = _classic(tmp_path, server, auth_registry, src_auth, tools)
            assert proc.returncode == 0, proc.stderr
            assert server.requests and all(auth is not None for _, auth in server.requests)
        assert cdn.requests == [("/hello-0.1.0+gabc.tgz", None)]
    manifest = json.loads(auth_registry.raw_manifest("hello:0.1.0_gabc"))
    assert [layer["digest"] for layer in manifest["layers"]] == [sha256(archive)]
