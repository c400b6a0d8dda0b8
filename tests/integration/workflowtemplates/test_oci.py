"""arc-oci's steps, run for real: skopeo between two docker-registry instances (plain HTTP, loopback)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.integration.workflowtemplates.support import Layout, Registry, run_step, sha256

pytestmark = pytest.mark.integration


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


@pytest.fixture
def pushed_image(tmp_path: Path, open_registry: Registry) -> dict[str, str]:
    """A two-architecture image in the open registry: its ref and index digest."""
    layout = Layout(tmp_path / "layout")
    index = layout.index([layout.image("amd64 says hi"), layout.image("arm64 says hi", arch="arm64")])
    layout.tag(index, "1.0")
    ref = f"team/hello-{tmp_path.name[-12:].lower().strip('_')}:1.0"
    open_registry.push_layout(layout.path, "1.0", ref)
    return {"ref": ref, "digest": index["digest"]}


def test_copy_preserves_every_architecture_and_the_digest(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    proc = run_step(
        "oci.yaml",
        "copy",
        params(open_registry, auth_registry, dstSecret="true", specImage=pushed_image["ref"]),
        work=tmp_path,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "--dest-authfile" in proc.stderr and "--src-no-creds" in proc.stderr
    copied = auth_registry.raw_manifest(pushed_image["ref"])
    assert sha256(copied) == pushed_image["digest"] == sha256(open_registry.raw_manifest(pushed_image["ref"]))
    repository = pushed_image["ref"].rpartition(":")[0]
    for child in json.loads(copied)["manifests"]:  # --all: every platform's manifest is there too
        assert sha256(auth_registry.raw_manifest(f"{repository}@{child['digest']}")) == child["digest"]


def test_copy_from_an_authenticated_source_to_another_name(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    # Stage the image in the authenticated registry, then copy it out of there under a new name.
    first = run_step(
        "oci.yaml",
        "copy",
        params(open_registry, auth_registry, dstSecret="true", specImage=pushed_image["ref"]),
        work=tmp_path / "1",
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
    )
    assert first.returncode == 0, first.stderr
    proc = run_step(
        "oci.yaml",
        "copy",
        params(
            auth_registry,
            open_registry,
            srcSecret="true",
            specImage=pushed_image["ref"],
            specDstImage="mirror/renamed:v1",
        ),
        work=tmp_path / "2",
        src_auth=auth_registry.auth_dir(tmp_path / "src-auth"),
    )
    assert proc.returncode == 0, proc.stderr
    assert sha256(open_registry.raw_manifest("mirror/renamed:v1")) == pushed_image["digest"]


def test_copy_by_digest(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    by_digest = pushed_image["ref"].rpartition(":")[0] + "@" + pushed_image["digest"]
    proc = run_step(
        "oci.yaml",
        "copy",
        params(open_registry, auth_registry, dstSecret="true", specImage=by_digest),
        work=tmp_path,
        dst_auth=auth_registry.auth_dir(tmp_path / "dst-auth"),
    )
    assert proc.returncode == 0, proc.stderr
    assert sha256(auth_registry.raw_manifest(by_digest)) == pushed_image["digest"]


def test_copy_without_credentials_is_refused_by_the_authenticated_registry(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    # Negative control for the test above: the registry's auth is real, and dstSecret=false sends none.
    ref = "unauthorised/" + pushed_image["ref"]
    proc = run_step(
        "oci.yaml",
        "copy",
        params(open_registry, auth_registry, specImage=pushed_image["ref"], specDstImage=ref),
        work=tmp_path,
    )
    assert proc.returncode != 0
    assert not auth_registry.has(ref)


def test_a_secret_flag_without_a_mounted_secret_fails_clearly(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    proc = run_step(
        "oci.yaml",
        "copy",
        params(open_registry, auth_registry, dstSecret="true", specImage=pushed_image["ref"]),
        work=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "destination credentials missing" in proc.stderr and "kubernetes.io/dockerconfigjson" in proc.stderr
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"specTlsVerifySrc": "yes"}, 'parameter specTlsVerifySrc must be "true" or "false", got "yes"'),
        ({"srcSecret": ""}, 'parameter srcSecret must be "true" or "false"'),
        ({"specImage": ""}, "parameter specImage is required"),
        ({"dstRemoteURL": "https:///"}, "parameter dstRemoteURL is required"),
    ],
)
def test_bad_parameters_fail_with_a_message_naming_them(
    tmp_path: Path, open_registry: Registry, override: dict[str, str], message: str
) -> None:
    values = params(open_registry, open_registry, specImage="team/x:1") | override
    proc = run_step("oci.yaml", "copy", values, work=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_parameters_never_become_shell_code(tmp_path: Path, open_registry: Registry) -> None:
    marker = tmp_path / "pwned"
    for hostile in (
        f"x; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"x' && touch {marker} '",
    ):
        proc = run_step(
            "oci.yaml", "copy", params(open_registry, open_registry, specImage=hostile), work=tmp_path
        )
        assert proc.returncode != 0
    assert not marker.exists()


def test_copy_signatures_copies_the_cosign_signature_and_plain_copy_does_not(
    tmp_path: Path, open_registry: Registry, auth_registry: Registry, pushed_image: dict[str, str]
) -> None:
    repository, digest = pushed_image["ref"].rpartition(":")[0], pushed_image["digest"]
    sig_tag = f"{digest.replace(':', '-')}.sig"
    # A cosign-style signature: simple-signing payload layer with the signature in an annotation.
    layout = Layout(tmp_path / "sig")
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{open_registry.host}/{repository}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    signature = layout.artifact(
        (config, "application/vnd.oci.image.config.v1+json"),
        [
            (
                payload,
                "application/vnd.dev.cosign.simplesigning.v1+json",
                {"dev.cosignproject.cosign/signature": "MEUCIQDfakesignature=="},
            )
        ],
    )
    layout.tag(signature, "sig")
    open_registry.push_layout(layout.path, "sig", f"{repository}:{sig_tag}")
    dst_auth = auth_registry.auth_dir(tmp_path / "dst-auth")

    plain_ref = "plain/" + pushed_image["ref"]
    proc = run_step(
        "oci.yaml",
        "copy",
        params(
            open_registry,
            auth_registry,
            dstSecret="true",
            specImage=pushed_image["ref"],
            specDstImage=plain_ref,
        ),
        work=tmp_path / "plain",
        dst_auth=dst_auth,
    )
    assert proc.returncode == 0, proc.stderr
    assert not auth_registry.has(f"{plain_ref.rpartition(':')[0]}:{sig_tag}")

    proc = run_step(
        "oci.yaml",
        "copy-signatures",
        params(
            open_registry,
            auth_registry,
            dstSecret="true",
            specImage=pushed_image["ref"],
            specCopySignatures="true",
        ),
        work=tmp_path / "signed",
        dst_auth=dst_auth,
    )
    assert proc.returncode == 0, proc.stderr
    assert sha256(auth_registry.raw_manifest(pushed_image["ref"])) == digest
    # skopeo rewrites the .sig manifest (its own config), but the signature layers — payload and
    # signature annotation, what `cosign verify` checks — arrive byte for byte.
    copied = json.loads(auth_registry.raw_manifest(f"{repository}:{sig_tag}"))
    original = json.loads(layout.read_blob(signature["digest"]))
    assert copied["layers"] == original["layers"]


FAKE_TRIVY = """#!/bin/sh
# Stand-in for trivy (not installable here): records its arguments and the credentials it was given.
printf '%s\\n' "$@" >"$ARC_TEST_OUT/args"
if [ -f "$DOCKER_CONFIG/config.json" ]; then cp "$DOCKER_CONFIG/config.json" "$ARC_TEST_OUT/config.json"; fi
exit "${ARC_TEST_EXIT:-0}"
"""


@pytest.mark.parametrize("verdict", [0, 3])
def test_scan_step_command_line(tmp_path: Path, auth_registry: Registry, verdict: int) -> None:
    # Only the command line is tested: trivy itself is not available here (no Debian package).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "trivy").write_text(
        FAKE_TRIVY.replace("$ARC_TEST_OUT", str(tmp_path)).replace("${ARC_TEST_EXIT:-0}", str(verdict))
    )
    (bin_dir / "trivy").chmod(stat.S_IRWXU)
    src_auth = auth_registry.auth_dir(tmp_path / "src-auth")
    proc = run_step(
        "oci.yaml",
        "scan",
        params(auth_registry, auth_registry, srcSecret="true", specImage="team/x:1", specScan="true")
        | {"specScanDbRepository": "mirror.zone/trivy-db:2"},
        work=tmp_path,
        src_auth=src_auth,
        tools=[bin_dir],
    )
    assert proc.returncode == verdict, proc.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:2] == ["image", "--image-src"]
    assert args[args.index("--exit-code") + 1] == "3"
    assert args[args.index("--severity") + 1] == "HIGH,CRITICAL"
    assert args[args.index("--db-repository") + 1] == "mirror.zone/trivy-db:2"
    assert "--insecure" in args
    assert args[-1] == f"{auth_registry.host}/team/x:1"
    assert (tmp_path / "config.json").read_text() == (src_auth / ".dockerconfigjson").read_text()
