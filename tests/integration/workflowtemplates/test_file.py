"""arc-file's step, run for real: curl from a local HTTP server, sha256 check, skopeo push of the artifact."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.workflowtemplates.support import (
    FileServer,
    Layout,
    Registry,
    outputs,
    run_step,
    sha256,
    tool_dir,
    write_dockerconfigjson,
)

pytestmark = pytest.mark.integration

CONTENT = b"#!/bin/sh\necho an ARC-transferred tool\n" * 100


@pytest.fixture
def served(tmp_path: Path) -> FileServer:
    root = tmp_path / "www"
    (root / "releases" / "v1").mkdir(parents=True)
    (root / "releases" / "v1" / "tool.sh").write_bytes(CONTENT)
    return FileServer(root, user="fetcher", password='pa"ss\\word')


def file_params(server: FileServer, registry: Registry, **spec: str) -> dict[str, str]:
    return {
        "srcType": "http",
        "srcRemoteURL": f"http://{server.host}/releases/",
        "dstType": "oci",
        "dstRemoteURL": registry.host,
        "srcSecret": "true",
        "dstSecret": "true",
        "specTlsVerifyDst": "false",
        **spec,
    }


def run_file_step(
    tmp_path: Path, server: FileServer, registry: Registry, **spec: str
) -> subprocess.CompletedProcess[str]:
    src_auth = tmp_path / "src-auth"
    write_dockerconfigjson(src_auth, server.host, "fetcher", 'pa"ss\\word')
    return run_step(
        "file.yaml",
        "copy",
        file_params(server, registry, **spec),
        work=tmp_path / "work",
        src_auth=src_auth,
        dst_auth=registry.auth_dir(tmp_path / "dst-auth"),
    )


@pytest.mark.parametrize("url", ["v1/tool.sh", "/v1/tool.sh", "FULL"])
def test_file_is_fetched_checked_and_pushed_as_an_oci_artifact(
    tmp_path: Path, served: FileServer, auth_registry: Registry, url: str
) -> None:
    want = hashlib.sha256(CONTENT).hexdigest()
    artifact = f"tools/tool-{abs(hash(url)) % 10_000}:v1"
    with served:
        if url == "FULL":
            url = f"http://{served.host}/releases/v1/tool.sh"
        proc = run_file_step(
            tmp_path,
            served,
            auth_registry,
            specUrl=url,
            specSha256="sha256:" + want.upper(),
            specArtifact=artifact,
        )
        assert proc.returncode == 0, proc.stderr
        assert served.requests and all(auth for _, auth in served.requests)
    manifest_bytes = auth_registry.raw_manifest(artifact)
    manifest = json.loads(manifest_bytes)
    assert manifest["artifactType"] == "application/vnd.opendefense.arc.file.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    [layer] = manifest["layers"]
    assert layer["digest"] == "sha256:" + want and layer["size"] == len(CONTENT)
    assert layer["mediaType"] == "application/octet-stream"
    assert layer["annotations"] == {"org.opencontainers.image.title": "tool.sh"}
    # The content really is in the registry: copy it back into a local layout and read the blob.
    out = tmp_path / "pulled"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            *_creds(auth_registry, "src"),
            f"docker://{auth_registry.host}/{artifact}",
            f"oci:{out}:x",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert Layout(out).read_blob(layer["digest"]) == CONTENT
    assert sha256(manifest_bytes) == json.loads((out / "index.json").read_text())["manifests"][0]["digest"]
    # The evidence: the file's checksum, the pushed manifest's digest, and no credential.
    evidence = outputs(tmp_path / "work")
    assert evidence["sourceDigest"] == "sha256:" + want
    assert evidence["sourceRef"] == f"http://{served.host}/releases/v1/tool.sh"
    assert evidence["destinationRef"] == f"{auth_registry.host}/{artifact}"
    assert evidence["destinationDigest"] == sha256(manifest_bytes)
    assert 'pa"ss' not in json.dumps(evidence) and str(auth_registry.password) not in json.dumps(evidence)


def test_a_file_cannot_pass_a_signature_gate(
    tmp_path: Path, served: FileServer, auth_registry: Registry
) -> None:
    with served:
        proc = run_file_step(
            tmp_path,
            served,
            auth_registry,
            specUrl="v1/tool.sh",
            specArtifact="tools/gated:v1",
            verifyCosignPublicKey="-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        )
        assert not served.requests  # refused before fetching anything
    assert proc.returncode == 4, proc.stderr
    assert "signature gate: not possible here: a file is checked by its checksum" in proc.stderr
    assert not auth_registry.has("tools/gated:v1")


def _creds(registry: Registry, side: str) -> list[str]:
    return [f"--{side}-creds", f"{registry.user}:{registry.password}"]


def test_oras_pull_restores_the_file(tmp_path: Path, served: FileServer, auth_registry: Registry) -> None:
    tools = tool_dir(tmp_path / "bin", "oras")
    if tools is None:
        pytest.fail("oras is not built: run hack/build-binaries.sh oras")
    with served:
        proc = run_file_step(
            tmp_path,
            served,
            auth_registry,
            specUrl="v1/tool.sh",
            specArtifact="tools/oras:v1",
            specName="renamed.sh",
        )
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "oras-out"
    subprocess.run(
        [
            str(tools / "oras"),
            "pull",
            "--plain-http",
            "-u",
            str(auth_registry.user),
            "-p",
            str(auth_registry.password),
            "-o",
            str(out),
            f"{auth_registry.host}/tools/oras:v1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
        env={"HOME": str(tmp_path)},
    )
    assert (out / "renamed.sh").read_bytes() == CONTENT


def test_checksum_mismatch_pushes_nothing(
    tmp_path: Path, served: FileServer, auth_registry: Registry
) -> None:
    with served:
        proc = run_file_step(
            tmp_path,
            served,
            auth_registry,
            specUrl="v1/tool.sh",
            specSha256="0" * 64,
            specArtifact="tools/bad:v1",
        )
    assert proc.returncode == 2 and "sha256 mismatch" in proc.stderr
    assert not auth_registry.has("tools/bad:v1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"specUrl": "http://evil.example/releases/v1/tool.sh"}, "is not below the source endpoint's URL"),
        ({"specUrl": "FULL-PREFIX-TRICK"}, "is not below the source endpoint's URL"),
        ({"specUrl": "v1/../../secret"}, "must not contain . or .. segments"),
        ({"specUrl": "v1/tool.sh", "specSha256": "abc"}, "specSha256 must be 64 hex digits"),
        ({"specUrl": "v1/tool.sh", "specName": "../x"}, "file name"),
        ({"specUrl": "v1/tool.sh", "specMediaType": 'text/plain"}'}, "is not a media type"),
    ],
)
def test_refused_before_any_request(
    tmp_path: Path, served: FileServer, auth_registry: Registry, spec: dict[str, str], message: str
) -> None:
    with served:
        if spec["specUrl"] == "FULL-PREFIX-TRICK":  # same host and port, but outside the endpoint's path
            spec = {"specUrl": f"http://{served.host}/releases-other/v1/tool.sh"}
        proc = run_file_step(tmp_path, served, auth_registry, specArtifact="tools/refused:v1", **spec)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert served.requests == []


def test_wrong_source_credentials_fail(tmp_path: Path, served: FileServer, auth_registry: Registry) -> None:
    src_auth = tmp_path / "wrong-auth"
    with served:
        write_dockerconfigjson(src_auth, served.host, "fetcher", "wrong")
        proc = run_step(
            "file.yaml",
            "copy",
            file_params(served, auth_registry, specUrl="v1/tool.sh", specArtifact="tools/wrong:v1"),
            work=tmp_path / "work",
            src_auth=src_auth,
            dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
        )
    assert proc.returncode != 0 and "401" in proc.stderr
    assert not auth_registry.has("tools/wrong:v1")


# ---- credentials go only to the host they are for (issue 14) ----------------------------------------------
OTHER_HOST = "127.0.0.2"  # another loopback address: another host, as far as curl, Go and helm can tell


def test_a_secret_for_another_host_sends_nothing(
    tmp_path: Path, served: FileServer, auth_registry: Registry
) -> None:
    """An Endpoint names a Secret whose credential is for another registry: the step fails before sending
    it (the old step sent the Secret's first credential to whatever host remoteURL named)."""
    src_auth = tmp_path / "other-auth"
    write_dockerconfigjson(src_auth, f"{OTHER_HOST}:5000", "neighbour", "n3ighbour-pw")
    with served:
        proc = run_step(
            "file.yaml",
            "copy",
            file_params(served, auth_registry, specUrl="v1/tool.sh", specArtifact="tools/other-host:v1"),
            work=tmp_path / "work",
            src_auth=src_auth,
            dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
        )
    assert proc.returncode == 2 and f"no credentials for {served.host}" in proc.stderr, proc.stderr
    assert all(auth is None for _, auth in served.requests), served.requests
    assert "n3ighbour-pw" not in proc.stderr + proc.stdout


def test_a_redirect_to_another_host_gets_no_credentials(
    tmp_path: Path, served: FileServer, auth_registry: Registry
) -> None:
    """The endpoint's host redirects the download to another host (a CDN): the file arrives, the
    credential does not travel with the redirect."""
    cdn_root = tmp_path / "cdn"
    cdn_root.mkdir()
    (cdn_root / "tool.sh").write_bytes(CONTENT)
    with FileServer(cdn_root, address=OTHER_HOST) as cdn:
        origin = FileServer(
            served.root,
            user="fetcher",
            password='pa"ss\\word',
            redirects={"/releases/v1/tool.sh": f"http://{cdn.host}/tool.sh"},
        )
        with origin:
            proc = run_file_step(
                tmp_path,
                origin,
                auth_registry,
                specUrl="v1/tool.sh",
                specSha256=hashlib.sha256(CONTENT).hexdigest(),
                specArtifact="tools/redirected:v1",
            )
        assert proc.returncode == 0, proc.stderr
        assert [auth is not None for _, auth in origin.requests] == [True]  # the origin got it
        assert cdn.requests == [("/tool.sh", None)]  # the other host did not
    assert auth_registry.has("tools/redirected:v1")


def test_a_redirect_to_a_weaker_protocol_is_not_followed(
    tmp_path: Path, served: FileServer, auth_registry: Registry
) -> None:
    """Redirects are followed only to http(s) — from an https:// source only to https:// — never to ftp://
    or file:// (curl 7.x follows ftp:// redirects by default)."""
    with served:
        origin = FileServer(served.root, redirects={"/releases/v1/tool.sh": "ftp://127.0.0.1:1/tool.sh"})
        with origin:
            src_auth = tmp_path / "src-auth"
            write_dockerconfigjson(src_auth, origin.host, "fetcher", "x")
            proc = run_step(
                "file.yaml",
                "copy",
                {
                    **file_params(origin, auth_registry, specUrl="v1/tool.sh", specArtifact="tools/ftp:v1"),
                    "srcSecret": "false",
                },
                work=tmp_path / "work",
                dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
            )
    assert proc.returncode != 0 and "Protocol" in proc.stderr and "ftp" in proc.stderr, proc.stderr
    assert not auth_registry.has("tools/ftp:v1")
