"""arc-oci's signature gate, digest-pinned copy, referrers and evidence, with the real cosign (v2.2.4,
hack/binaries.txt) against two local docker-registry instances.

Every cosign run (the test's own signing and the step's verification) is offline by construction: keys are
generated here, signing skips the transparency log, verification uses ``--offline --insecure-ignore-tlog``,
and ``HTTPS_PROXY``/``HTTP_PROXY`` point at a closed loopback port with only loopback exempt, so an
unexpected lookup (TUF, Rekor, Fulcio) fails on loopback instead of leaving the machine.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controllers.artifactworkflow.provenance import provenance_from_workflow
from tests.integration.workflowtemplates.support import (
    Layout,
    Registry,
    chart_archive,
    find_tool,
    outputs,
    run_step,
    sha256,
    write_dockerconfigjson,
)
from workflowtemplates import scripts

pytestmark = pytest.mark.integration

SANDBOX = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}


@dataclass
class Cosign:
    """The cosign binary with a private HOME, the dead proxy and an optional registry login."""

    binary: Path
    home: Path

    def run(self, *args: str, docker_config: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "COSIGN_PASSWORD": "test-only",
            "COSIGN_YES": "true",
            **SANDBOX,
        }
        if docker_config is not None:
            env["DOCKER_CONFIG"] = str(docker_config)
        return subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )

    def ok(self, *args: str, docker_config: Path | None = None) -> str:
        proc = self.run(*args, docker_config=docker_config)
        assert proc.returncode == 0, f"cosign {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def key_pair(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        prefix = directory / "cosign"
        self.ok("generate-key-pair", "--output-key-prefix", str(prefix))
        return Path(f"{prefix}.key"), Path(f"{prefix}.pub")


INSECURE = ("--allow-insecure-registry", "--allow-http-registry")


@pytest.fixture(scope="module")
def cosign(tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    binary = find_tool("cosign")
    if binary is None:
        pytest.fail("cosign is missing: hack/build-binaries.sh cosign (hack/binaries.txt pins it)")
    home = tmp_path_factory.mktemp("cosign-home")
    return Cosign(binary, home)


@pytest.fixture(scope="module")
def keys(cosign: Cosign, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("keys")
    key, pub = cosign.key_pair(base / "trusted")
    other_key, other_pub = cosign.key_pair(base / "other")
    yield {"key": key, "pub": pub, "other_key": other_key, "other_pub": other_pub}


def fingerprint(pub: Path) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo (the PEM body), as the step computes it."""
    body = "".join(line for line in pub.read_text().splitlines() if not line.startswith("-----"))
    return sha256(base64.b64decode(body))


def params(src: Registry, dst: Registry, **spec: str) -> dict[str, str]:
    return {
        "srcType": "oci",
        "srcRemoteURL": src.host,
        "dstType": "oci",
        "dstRemoteURL": dst.host,
        "specTlsVerifySrc": "false",
        "specTlsVerifyDst": "false",
        **spec,
    }


def push_image(registry: Registry, work: Path, ref: str, content: str) -> dict[str, str]:
    """A two-architecture image at ``ref``: its index and platform digests."""
    layout = Layout(work)
    amd, arm = layout.image(f"amd64 {content}"), layout.image(f"arm64 {content}", arch="arm64")
    index = layout.index([amd, arm])
    layout.tag(index, "t")
    registry.push_layout(layout.path, "t", ref)
    return {"digest": index["digest"], "amd64": amd["digest"], "arm64": arm["digest"]}


def run_copy(
    tmp_path: Path,
    src: Registry,
    dst: Registry,
    pub: Path | None,
    *,
    dst_auth: Path | None = None,
    with_oras: bool = False,
    **spec: str,
) -> subprocess.CompletedProcess[str]:
    values = params(src, dst, **spec)
    if dst_auth is not None:
        values["dstSecret"] = "true"
    if pub is not None:
        values["verifyCosignPublicKey"] = pub.read_text()
        values["verifyCosignKeyIdentity"] = "ArtifactType/team/signed-images"
    cosign = find_tool("cosign")
    assert cosign is not None
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    if not (tools / "cosign").exists():
        (tools / "cosign").symlink_to(cosign)
    if with_oras and not (tools / "oras").exists():
        oras = find_tool("oras")
        assert oras is not None, "oras is not built: hack/build-binaries.sh oras"
        (tools / "oras").symlink_to(oras)
    return run_step(
        "oci.yaml",
        "copy",
        values,
        work=tmp_path,
        dst_auth=dst_auth,
        tools=[tools],
        extra_env=SANDBOX,
    )


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return f"team/signed-{tmp_path.name[-10:].lower().strip('_')}"


def test_a_signed_image_is_verified_copied_by_digest_and_its_evidence_recorded(
    tmp_path: Path,
    open_registry: Registry,
    auth_registry: Registry,
    cosign: Cosign,
    keys: dict[str, Path],
    repo: str,
) -> None:
    image = push_image(open_registry, tmp_path / "layout", f"{repo}:1.0", "signed")
    cosign.ok(
        "sign",
        "--key",
        str(keys["key"]),
        "--tlog-upload=false",
        *INSECURE,
        f"{open_registry.host}/{repo}:1.0",
    )
    dst_auth = auth_registry.auth_dir(tmp_path / "dst-auth")
    proc = run_copy(
        tmp_path, open_registry, auth_registry, keys["pub"], dst_auth=dst_auth, specImage=f"{repo}:1.0"
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified with ArtifactType/team/signed-images sha256:" in proc.stderr
    # The destination serves exactly the digest that was verified, every platform included.
    assert sha256(auth_registry.raw_manifest(f"{repo}:1.0")) == image["digest"]
    for arch in ("amd64", "arm64"):
        assert auth_registry.has(f"{repo}@{image[arch]}")

    out = outputs(tmp_path)
    key_sum = fingerprint(keys["pub"])
    assert out["sourceRef"] == f"{open_registry.host}/{repo}:1.0"
    assert out["sourceDigest"] == out["destinationDigest"] == out["signedDigest"] == image["digest"]
    assert out["destinationRef"] == f"{auth_registry.host}/{repo}:1.0"
    assert out["signatureKey"] == f"ArtifactType/team/signed-images {key_sum}"
    assert out["platforms"].splitlines() == [f"linux/amd64 {image['amd64']}", f"linux/arm64 {image['arm64']}"]
    tools = dict(line.split(" ", 1) for line in out["tools"].splitlines())
    assert tools["skopeo"].startswith("1.") and tools["cosign"] == "v2.2.4"
    # No credential reaches the evidence.
    text = json.dumps(out)
    assert str(auth_registry.password) not in text and "arc-pusher" not in text

    # What the controller makes of it (the Argo node outputs carry these very strings).
    workflow = {
        "status": {
            "nodes": {
                "n": {
                    "type": "Pod",
                    "phase": "Succeeded",
                    "finishedAt": "2026-12-04T10:00:00Z",
                    "outputs": {"parameters": [{"name": k, "value": v} for k, v in out.items()]},
                }
            }
        }
    }
    prov = provenance_from_workflow(workflow)
    assert prov is not None and prov.signature is not None and prov.destination is not None
    assert prov.destination.digest == image["digest"] and prov.signature.signed_digest == image["digest"]
    assert len(prov.platforms or []) == 2


@pytest.mark.parametrize("case", ["unsigned", "wrong key", "re-pushed after signing"])
def test_the_gate_fails_with_its_own_message_and_pushes_nothing(
    tmp_path: Path,
    open_registry: Registry,
    auth_registry: Registry,
    cosign: Cosign,
    keys: dict[str, Path],
    repo: str,
    case: str,
) -> None:
    image = push_image(open_registry, tmp_path / "layout", f"{repo}:1.0", case)
    ref = f"{open_registry.host}/{repo}:1.0"
    if case == "wrong key":
        cosign.ok("sign", "--key", str(keys["other_key"]), "--tlog-upload=false", *INSECURE, ref)
    elif case == "re-pushed after signing":
        cosign.ok("sign", "--key", str(keys["key"]), "--tlog-upload=false", *INSECURE, ref)
        push_image(open_registry, tmp_path / "layout2", f"{repo}:1.0", "tampered")
    dst_auth = auth_registry.auth_dir(tmp_path / "dst-auth")
    proc = run_copy(
        tmp_path, open_registry, auth_registry, keys["pub"], dst_auth=dst_auth, specImage=f"{repo}:1.0"
    )
    assert proc.returncode == scripts.VERIFY_GATE_EXIT_CODE, proc.stderr
    expected = {
        "unsigned": "signature gate: no signature:",
        "wrong key": "signature gate: wrong key:",
        "re-pushed after signing": "signature gate: digest mismatch:",
    }[case]
    assert expected in proc.stderr, proc.stderr
    messages = {
        "signature gate: no signature:",
        "signature gate: wrong key:",
        "signature gate: digest mismatch:",
    }
    for other in messages - {expected}:
        assert other not in proc.stderr
    if case == "re-pushed after signing":
        assert image["digest"] in proc.stderr  # the signed digest is named
    # Nothing was pushed: neither the image nor any of its platforms.
    assert not auth_registry.has(f"{repo}:1.0")
    assert not auth_registry.has(f"{repo}@{image['amd64']}")
    out = outputs(tmp_path)
    assert out["signatureKey"] == "" and out["destinationDigest"] == ""


def test_without_a_key_there_is_no_gate_and_no_signature_evidence(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, repo: str
) -> None:
    image = push_image(open_registry, tmp_path / "layout", f"{repo}:2.0", "ungated")
    proc = run_copy(
        tmp_path,
        open_registry,
        auth_registry,
        None,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
        specImage=f"{repo}:2.0",
    )
    assert proc.returncode == 0, proc.stderr
    out = outputs(tmp_path)
    assert out["destinationDigest"] == image["digest"] and out["signatureKey"] == ""


def test_a_pinned_digest_the_registry_does_not_serve_is_a_digest_mismatch(
    tmp_path: Path, open_registry: Registry, repo: str
) -> None:
    push_image(open_registry, tmp_path / "layout", f"{repo}:1.0", "pinned")
    proc = run_copy(tmp_path, open_registry, open_registry, None, specImage=f"{repo}@sha256:{'0' * 64}")
    assert proc.returncode != 0
    assert not open_registry.has(f"{repo}@sha256:{'0' * 64}")


def test_signature_sbom_and_attestation_reach_the_destination_and_verify_there(
    tmp_path: Path,
    open_registry: Registry,
    auth_registry: Registry,
    cosign: Cosign,
    keys: dict[str, Path],
    repo: str,
) -> None:
    image = push_image(open_registry, tmp_path / "layout", f"{repo}:3.0", "referrers")
    src_ref = f"{open_registry.host}/{repo}@{image['digest']}"
    cosign.ok("sign", "--key", str(keys["key"]), "--tlog-upload=false", *INSECURE, src_ref)
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "hello", "packages": []}))
    cosign.ok("attach", "sbom", "--sbom", str(sbom), "--type", "spdx", *INSECURE, src_ref)
    predicate = tmp_path / "provenance.json"
    predicate.write_text(
        json.dumps({"buildType": "https://arc.test/build", "builder": {"id": "https://arc.test/builder"}})
    )
    cosign.ok(
        "attest",
        "--key",
        str(keys["key"]),
        "--tlog-upload=false",
        "--predicate",
        str(predicate),
        "--type",
        "slsaprovenance",
        *INSECURE,
        src_ref,
    )
    # An OCI 1.1 referrer too (oras attach: the referrers API, or on this registry its tag fallback).
    oras = find_tool("oras")
    assert oras is not None, "oras is not built: hack/build-binaries.sh oras"
    report = tmp_path / "scan.json"
    report.write_text('{"vulnerabilities": []}')
    attached = subprocess.run(
        [
            str(oras),
            "attach",
            "--plain-http",
            "--no-tty",
            "--artifact-type",
            "application/vnd.arc.test.scan+json",
            "--format",
            "json",
            src_ref,
            f"{report.name}:application/json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"HOME": str(tmp_path), **SANDBOX},
    )
    assert attached.returncode == 0, attached.stderr
    referrer = json.loads(attached.stdout)["digest"]
    dst_auth = auth_registry.auth_dir(tmp_path / "dst-auth")
    proc = run_copy(
        tmp_path,
        open_registry,
        auth_registry,
        keys["pub"],
        dst_auth=dst_auth,
        with_oras=True,
        specImage=f"{repo}:3.0",
        specCopyReferrers="true",
        srcRemoteURL=f"http://{open_registry.host}",
        dstRemoteURL=f"http://{auth_registry.host}",
    )
    assert proc.returncode == 0, proc.stderr
    prefix = image["digest"].replace(":", "-")
    lines = [line.split() for line in outputs(tmp_path)["referrers"].splitlines()]
    assert [parts for parts in lines if parts[0] == "referrer"] == [
        ["referrer", referrer, f"{auth_registry.host}/{repo}@{referrer}"]
    ]
    assert sha256(auth_registry.raw_manifest(f"{repo}@{referrer}")) == referrer
    copied = {parts[0]: parts for parts in lines if parts[0] != "referrer"}
    assert set(copied) == {"sig", "att", "sbom"}
    for kind, (_, digest, where) in copied.items():
        assert where == f"{auth_registry.host}/{repo}:{prefix}.{kind}"
        # Digest preserved: the destination serves the source's bytes.
        assert sha256(auth_registry.raw_manifest(f"{repo}:{prefix}.{kind}")) == digest
        assert sha256(open_registry.raw_manifest(f"{repo}:{prefix}.{kind}")) == digest

    # ... and they verify at the destination with the same key, as a consumer inside the zone would check.
    login = tmp_path / "docker"
    write_dockerconfigjson(login, auth_registry.host, str(auth_registry.user), str(auth_registry.password))
    (login / "config.json").write_text((login / ".dockerconfigjson").read_text())
    dst_ref = f"{auth_registry.host}/{repo}@{image['digest']}"
    offline = ("--insecure-ignore-tlog=true", "--offline=true", *INSECURE)
    cosign.ok("verify", "--key", str(keys["pub"]), *offline, dst_ref, docker_config=login)
    attested = cosign.ok(
        "verify-attestation",
        "--key",
        str(keys["pub"]),
        "--type",
        "slsaprovenance",
        *offline,
        dst_ref,
        docker_config=login,
    )
    statement = json.loads(base64.b64decode(json.loads(attested.splitlines()[0])["payload"]))
    assert statement["predicate"]["builder"]["id"] == "https://arc.test/builder"
    assert statement["subject"][0]["digest"]["sha256"] == image["digest"].removeprefix("sha256:")
    sbom_copy = cosign.ok("download", "sbom", *INSECURE, dst_ref, docker_config=login)
    assert json.loads(sbom_copy)["spdxVersion"] == "SPDX-2.3"
    # A wrong key does not verify the copy either (the check above is a real one).
    assert cosign.run(
        "verify", "--key", str(keys["other_pub"]), *offline, dst_ref, docker_config=login
    ).returncode


@pytest.mark.parametrize("signed", [True, False])
def test_an_oci_helm_chart_passes_the_same_gate(
    tmp_path: Path,
    open_registry: Registry,
    auth_registry: Registry,
    cosign: Cosign,
    keys: dict[str, Path],
    repo: str,
    signed: bool,
) -> None:
    layout = Layout(tmp_path / "chart")
    config = json.dumps({"apiVersion": "v2", "name": "hello", "version": "1.0.0"}).encode()
    chart = layout.artifact(
        (config, "application/vnd.cncf.helm.config.v1+json"),
        [(chart_archive("hello", "1.0.0"), "application/vnd.cncf.helm.chart.content.v1.tar+gzip", {})],
    )
    layout.tag(chart, "c")
    open_registry.push_layout(layout.path, "c", f"{repo}/hello:1.0.0")
    if signed:
        cosign.ok(
            "sign",
            "--key",
            str(keys["key"]),
            "--tlog-upload=false",
            *INSECURE,
            f"{open_registry.host}/{repo}/hello@{chart['digest']}",
        )
    tools = tmp_path / "tools"
    tools.mkdir()
    cosign_binary = find_tool("cosign")
    assert cosign_binary is not None
    (tools / "cosign").symlink_to(cosign_binary)
    proc = run_step(
        "helm.yaml",
        "copy-oci",
        {
            "srcType": "oci",
            "srcRemoteURL": f"http://{open_registry.host}",
            "dstType": "oci",
            "dstRemoteURL": f"http://{auth_registry.host}",
            "dstSecret": "true",
            "specChart": f"{repo}/hello",
            "specVersion": "1.0.0",
            "verifyCosignPublicKey": keys["pub"].read_text(),
            "verifyCosignKeyIdentity": "ClusterArtifactType/helm",
        },
        work=tmp_path,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
        tools=[tools],
        extra_env=SANDBOX,
    )
    out = outputs(tmp_path)
    if signed:
        assert proc.returncode == 0, proc.stderr
        assert out["signatureKey"] == f"ClusterArtifactType/helm {fingerprint(keys['pub'])}"
        assert out["destinationDigest"] == out["signedDigest"] == chart["digest"]
        assert sha256(auth_registry.raw_manifest(f"{repo}/hello:1.0.0")) == chart["digest"]
    else:
        assert proc.returncode == scripts.VERIFY_GATE_EXIT_CODE, proc.stderr
        assert "signature gate: no signature:" in proc.stderr
        assert not auth_registry.has(f"{repo}/hello:1.0.0")
