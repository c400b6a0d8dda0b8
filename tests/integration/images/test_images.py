"""The images ``make images`` builds: reproducible, pushable, runnable, described by SBOMs, pinned by the
lock.

Everything runs against the session's build (``conftest.built``); the reproducibility test builds once more
into a temporary directory with ``--rebuild`` (pip and the tools layer again; the cached Debian bases are the
same bytes by design, see docs/images.md).
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hack.binaries import REPO_ROOT, pinned_versions
from hack.etcd import EtcdServer
from hack.images import sbom
from hack.images.build import DEFAULT_OUT, LOCK_FILE, NONROOT_UID, TOOLS_PROGRAMS
from hack.images.oci import diff_layouts
from hack.process import free_port
from tests.integration.images.conftest import ULIMITS, Podman, another_interpreter_path, build, require
from tests.integration.workflowtemplates.support import (
    DOCKER_REGISTRY,
    Layout,
    Registry,
    sha256,
    step,
    write_dockerconfigjson,
)
from workflowtemplates import images as tool_images

pytestmark = pytest.mark.integration

DOCS = REPO_ROOT / "docs" / "images.md"


def docs_block(name: str) -> list[str]:
    """The command lines of the ```sh block after ``<!-- tested: name``, continuation lines joined."""
    text = DOCS.read_text()
    start = text.index(f"<!-- tested: {name}")
    begin = text.index("```sh\n", start) + 6
    block = text[begin : text.index("\n```", begin)]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def sh(command: str, **replacements: str) -> str:
    for old, new in replacements.items():
        command = command.replace(old, new)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-4000:])
    return proc.stdout


def test_two_builds_of_one_commit_have_the_same_digests(
    built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("images-again")
    # Under another path of the interpreter: pip's generated scripts name it, and every RECORD hashes them
    # (a CI run once got two digests this way).
    again = build(out, "--rebuild", python=another_interpreter_path())
    for name in ("arc", "arc-tools"):
        assert again[name]["digest"] == built[name]["digest"], (
            name,
            diff_layouts(DEFAULT_OUT / built[name]["layout"], out / again[name]["layout"]),
        )
        assert again[name]["size"] == built[name]["size"]
        # The SBOM is a function of the image too.
        assert (out / again[name]["sbom"]).read_text() == (DEFAULT_OUT / built[name]["sbom"]).read_text()


def _inspect(host: str, ref: str, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{host}/{ref}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    value: dict[str, Any] = json.loads(out)
    return value


def test_make_push_and_skopeo_inspect(built: dict[str, Any], tmp_path: Path) -> None:
    require("skopeo")
    registry = Registry(tmp_path / "registry")
    registry.start()
    try:
        outputs = [sh(line, **{"127.0.0.1:5000": registry.host}) for line in docs_block("push")]
        pushed = dict(re.findall(r"pushed \S+/(arc(?:-tools)?):\S+@(sha256:[0-9a-f]{64})", outputs[0]))
        assert pushed == {name: built[name]["digest"] for name in ("arc", "arc-tools")}

        arc = json.loads(outputs[1])
        assert arc["Digest"] == built["arc"]["digest"]
        labels = arc["Labels"]
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head.stdout.strip()
        assert labels["org.opencontainers.image.version"] == built["arc"]["tag"] == "0.1.0"
        assert labels["org.opencontainers.image.source"].startswith("https://")
        assert labels["org.opencontainers.image.title"] == "arc"
        assert arc["Created"].startswith(labels["org.opencontainers.image.created"].removesuffix("Z"))
        config = _inspect(registry.host, "arc/arc:0.1.0", "--config")["config"]
        assert config["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
        assert config["Entrypoint"] == ["/usr/local/bin/arc-apiserver"]

        tools = json.loads(outputs[2])
        assert tools["Digest"] == built["arc-tools"]["digest"]
        assert "org.opencontainers.image.revision" not in tools["Labels"]
        assert tools["Labels"]["org.opencontainers.image.created"] == "2025-01-01T00:00:00Z"
        tools_config = _inspect(registry.host, "arc/arc-tools:bookworm", "--config")["config"]
        assert tools_config["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
        # Pullable by the digest the lock pins.
        by_digest = _inspect(registry.host, f"arc/arc-tools@{built['arc-tools']['digest']}")
        assert by_digest["Digest"] == built["arc-tools"]["digest"]
    finally:
        registry.stop()


def test_air_gapped_copy_keeps_the_digests(built: dict[str, Any], tmp_path: Path) -> None:
    require(DOCKER_REGISTRY)
    zone = Registry(tmp_path / "zone")
    zone.start()
    try:
        for line in docs_block("airgap"):
            sh(
                line,
                **{
                    "127.0.0.1:5001": zone.host,
                    "/tmp/arc-zone": str(tmp_path / "carried"),
                    "arc-images.tar": str(tmp_path / "arc-images.tar"),
                },
            )
        assert _inspect(zone.host, "arc/arc:0.1.0")["Digest"] == built["arc"]["digest"]
        assert _inspect(zone.host, "arc/arc-tools:bookworm")["Digest"] == built["arc-tools"]["digest"]
    finally:
        zone.stop()


def test_arc_image_runs_both_entrypoints_as_nonroot(built: dict[str, Any], podman: Podman) -> None:
    image = podman.load(DEFAULT_OUT / built["arc"]["layout"], built["arc"]["tag"], "arc")
    proc = podman.run(image, "--help")  # the image's own entrypoint: arc-apiserver
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: arc-apiserver")
    proc = podman.run(image, "--help", entrypoint="/usr/local/bin/arc-controller-manager")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: arc-controller-manager")
    script = (
        "import os, subprocess, sys\n"
        "print(os.getuid(), os.getgid())\n"
        "for module in ('apiserver', 'controllers'):\n"
        "    out = subprocess.run([sys.executable, '-m', module, '--help'], capture_output=True, text=True)\n"
        "    print(module, out.returncode, out.stdout.split(chr(10))[0])\n"
        "import aiohttp, grpc, uvloop, orjson, cryptography\n"
        "print('imports ok', aiohttp.__version__)\n"
    )
    proc = podman.run(image, "-c", script, entrypoint="/usr/bin/python3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{NONROOT_UID} {NONROOT_UID}"
    assert lines[1].startswith("apiserver 0 usage:"), lines
    assert lines[2].startswith("controllers 0 usage:"), lines
    assert lines[3] == "imports ok 3.14.5"


#: Every program the workflow templates' scripts call (workflowtemplates/scripts.py), and how it says its
#: version ("" = only that it is on PATH).
TOOL_COMMANDS = {
    "skopeo": "skopeo --version",
    "curl": "curl --version",
    "helm": "helm version --short",
    "oras": "oras version",
    "trivy": "trivy --version",
    "cosign": "cosign version 2>&1 | grep GitVersion",
    "grep": "grep --version",
    "sha256sum": "sha256sum --version",
    "sed": "sed --version",
    "base64": "base64 --version",
    "mktemp": "mktemp --version",
    "tr": "tr --version",
    "wc": "wc --version",
    "head": "head --version",
    "cp": "cp --version",
    "mkdir": "mkdir --version",
    "sh": "",
}


def test_every_tool_the_templates_run_is_in_arc_tools(built: dict[str, Any], podman: Podman) -> None:
    image = podman.load(DEFAULT_OUT / built["arc-tools"]["layout"], built["arc-tools"]["tag"], "arc-tools")
    script = "id -u\n" + "".join(
        f'echo "== {name} $(command -v {name})"\n' + (f"{cmd} 2>&1 | head -n 1\n" if cmd else "")
        for name, cmd in TOOL_COMMANDS.items()
    )
    proc = podman.run(image, "-c", script, entrypoint="/bin/sh")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0] == str(NONROOT_UID)
    for name in TOOL_COMMANDS:
        assert re.search(rf"== {name} /\S+/{name}\n", out), (name, out)
    versions = pinned_versions()
    assert re.search(r"== helm \S+\n" + re.escape(versions["helm"]), out), out
    assert re.search(r"== oras \S+\nVersion:\s+" + re.escape(versions["oras"].removeprefix("v")), out), out
    assert re.search(r"== trivy \S+\nVersion: " + re.escape(versions["trivy"]), out), out
    assert re.search(r"== cosign \S+\nGitVersion:\s+" + re.escape(versions["cosign"]), out), out
    assert re.search(r"== skopeo \S+\nskopeo version \d+\.\d+", out), out
    assert re.search(r"== curl \S+\ncurl \d+\.\d+", out), out
    assert re.search(r"== sha256sum \S+\nsha256sum \(GNU coreutils\)", out), out
    # The steps' scripts are written for this shell (dash): one of them parses inside the image.
    from workflowtemplates.scripts import FILE_COPY

    proc = podman.run(image, "-n", "-c", FILE_COPY, entrypoint="/bin/sh")
    assert proc.returncode == 0, proc.stderr


def test_sboms_list_debian_and_python_packages_with_versions(built: dict[str, Any]) -> None:
    arc = json.loads((DEFAULT_OUT / built["arc"]["sbom"]).read_text())
    assert arc["spdxVersion"] == "SPDX-2.3"
    assert arc["name"] == f"arc@{built['arc']['digest']}"
    debs, dists = sbom.versions(arc, "pkg:deb/"), sbom.versions(arc, "pkg:pypi/")
    assert re.match(r"3\.11\.\d", debs["python3"]), debs.get("python3")
    assert "libstdc++6" in debs and "ca-certificates" in debs
    assert dists["aiohttp"] == "3.14.5"
    assert dists["arc"] == "0.1.0"
    assert "pytest" not in dists and "mypy" not in dists  # runtime dependencies only
    (listing,) = docs_block("sbom")
    listed = sh(listing).splitlines()
    assert f"aiohttp {dists['aiohttp']}" in listed and f"python3 {debs['python3']}" in listed
    tools = json.loads((DEFAULT_OUT / built["arc-tools"]["sbom"]).read_text())
    assert {"skopeo", "curl", "dash", "coreutils"} <= set(sbom.versions(tools, "pkg:deb/"))
    assert sbom.versions(tools, "pkg:golang/") == {
        name: version for name, version in pinned_versions().items() if name in TOOLS_PROGRAMS
    }
    assert not sbom.versions(tools, "pkg:pypi/")


def test_templates_pin_the_arc_tools_digest_this_build_produced(built: dict[str, Any]) -> None:
    lock = json.loads(LOCK_FILE.read_text())["arc-tools"]
    # What images.py renders is the lock, wherever the build's Debian state is.
    assert tool_images.ARC_TOOLS.digest == lock["digest"]
    assert {image.reference for image in tool_images.TOOL_IMAGES.values()} == {
        f"{lock['repository']}:{lock['tag']}@{lock['digest']}"
    }
    for rendered in (REPO_ROOT / "deploy" / "workflowtemplates").glob("*.yaml"):
        images = set(re.findall(r"image: (\S+)", rendered.read_text()))
        assert images == {tool_images.ARC_TOOLS.reference}, rendered
    placeholder = "sha256:" + "0" * 64
    for directory in ("workflowtemplates", "deploy"):
        for path in (REPO_ROOT / directory).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".yaml", ".json", ".md", ".tpl", ".txt"):
                assert placeholder not in path.read_text(), path

    if lock["digest"] != built["arc-tools"]["digest"]:
        doc = json.loads((DEFAULT_OUT / built["arc-tools"]["sbom"]).read_text())
        debs = sbom.versions(doc, "pkg:deb/")
        changed = sorted(
            name
            for name in set(debs) | set(lock["debian"]["packages"])
            if debs.get(name) != lock["debian"]["packages"].get(name)
        )
        if changed:
            pytest.skip(
                "this machine's Debian base differs from the locked one (Debian's mirror moved on): "
                + ", ".join(f"{n} {lock['debian']['packages'].get(n)} -> {debs.get(n)}" for n in changed[:10])
            )
        pytest.fail(
            f"arc-tools built as {built['arc-tools']['digest']} but the lock pins {lock['digest']} with the "
            "same Debian packages: run `python -m hack.images lock` (or the build is not reproducible)"
        )
    assert lock["programs"] == {n: v for n, v in pinned_versions().items() if n in TOOLS_PROGRAMS}


def test_a_template_step_runs_in_arc_tools(built: dict[str, Any], podman: Podman, tmp_path: Path) -> None:
    """The oci ``copy`` step, exactly as rendered (command, env, Secret mounts), in the arc-tools image:
    an image goes from an anonymous registry to one with basic auth, digest preserved. The container shares
    the host's network namespace only to reach the two loopback registries."""
    require(DOCKER_REGISTRY)
    image = podman.load(DEFAULT_OUT / built["arc-tools"]["layout"], built["arc-tools"]["tag"], "arc-tools")
    src = Registry(tmp_path / "src")
    dst = Registry(tmp_path / "dst", user="arc", password="s3cret-pw")
    src.start()
    dst.start()
    try:
        layout = Layout(tmp_path / "layout")
        index = layout.index([layout.image("amd64 says hi"), layout.image("arm64 says hi", arch="arm64")])
        layout.tag(index, "1.0")
        src.push_layout(layout.path, "1.0", "team/hello:1.0")
        values = {
            "srcType": "oci",
            "srcRemoteURL": src.host,
            "srcSecret": "false",
            "dstType": "oci",
            "dstRemoteURL": dst.host,
            "dstSecret": "true",
            "specImage": "team/hello:1.0",
            "specTlsVerifySrc": "false",
            "specTlsVerifyDst": "false",
        }
        found = step("oci.yaml", "copy")
        assert found["container"]["image"] == tool_images.ARC_TOOLS.reference
        for p in found["parameters"]:
            values.setdefault(p["name"], p.get("value") or "")
        args = [*podman.args(), "run", "--rm", "--network", "host", *ULIMITS]
        for entry in found["container"]["env"]:
            value = entry["value"]
            for name, given in values.items():
                value = value.replace("{{workflow.parameters." + name + "}}", given)
            assert "{{" not in value, value
            args += ["--env", f"{entry['name']}={value}"]
        mounts = {m["name"]: m["mountPath"] for m in found["container"]["volumeMounts"]}
        for name, path in mounts.items():
            source = tmp_path / "mounts" / name
            source.mkdir(parents=True)
            if path.endswith("/dst"):
                write_dockerconfigjson(source, dst.host, "arc", "s3cret-pw")
                (source / ".dockerconfigjson").chmod(0o644)
            source.chmod(0o755)
            args += ["--volume", f"{source}:{path}:ro"]
        command = found["container"]["command"]
        proc = subprocess.run(
            [*args, "--entrypoint", command[0], image, *command[1:]],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "--dest-authfile" in proc.stderr
        assert sha256(dst.raw_manifest("team/hello:1.0")) == index["digest"]
    finally:
        src.stop()
        dst.stop()


def test_arc_image_serves_the_api_from_a_read_only_root(
    built: dict[str, Any], podman: Podman, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    """The API server from the image, as a restricted pod runs it (read-only root filesystem, only /tmp
    writable, user 65532), standalone on the session's etcd: ready, and serving Orders. The container shares
    the host's network namespace only to reach the loopback etcd and be reached on loopback."""
    image = podman.load(DEFAULT_OUT / built["arc"]["layout"], built["arc"]["tag"], "arc")
    token = secrets.token_urlsafe(24)
    config = tmp_path / "config"
    config.mkdir()
    (config / "tokens.csv").write_text(f'{token},arc-admin,arc-admin,"system:masters"\n')
    (config / "tokens.csv").chmod(0o644)
    config.chmod(0o755)
    port = free_port()
    name = f"arc-image-{port}"
    command = [
        *podman.args(),
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        *ULIMITS,
        "--volume",
        f"{config}:/etc/arc:ro",
        image,
        "--standalone",
        "--token-auth-file=/etc/arc/tokens.csv",
        f"--etcd-servers={etcd_server.client_url}",
        f"--etcd-prefix=/arc-image-{port}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--cert-dir=/tmp/certs",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def get(path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    try:
        deadline = time.monotonic() + 90
        status: tuple[int, bytes] = (0, b"")
        while time.monotonic() < deadline:
            try:
                status = get("/readyz")
                if status[0] == 200:
                    break
            except OSError:
                running = subprocess.run(
                    [*podman.args(), "inspect", "--format", "{{.State.Running}}", name],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if running.stdout.strip() == "false":
                    break
            time.sleep(0.5)
        logs = subprocess.run([*podman.args(), "logs", name], capture_output=True, text=True, check=False)
        assert status[0] == 200, (status, logs.stdout[-3000:], logs.stderr[-3000:])
        code, body = get("/apis/arc.opendefense.cloud/v1alpha1/namespaces/default/orders")
        assert code == 200, body
        assert json.loads(body)["kind"] == "OrderList"
        code, body = get("/openapi/v2")
        assert code == 200 and b"arc.opendefense.cloud" in body
        inspect = subprocess.run(
            [*podman.args(), "top", name, "user"], capture_output=True, text=True, check=True, timeout=30
        )
        assert inspect.stdout.split()[1:] == ["nonroot"] or str(NONROOT_UID) in inspect.stdout, inspect.stdout
    finally:
        subprocess.run([*podman.args(), "rm", "--force", name], capture_output=True, timeout=120, check=False)
