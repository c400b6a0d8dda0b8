"""The two images, ``arc`` and ``arc-tools``: what goes into each, their configs, labels and SBOMs.

- ``arc`` — Debian base (``python3``, ``ca-certificates``, ``tzdata``, ``libstdc++6`` for grpcio) + ARC's app
  layer. Entrypoint ``/usr/local/bin/arc-apiserver`` (the console script of ``python -m apiserver``); the
  controller manager runs from the same image with the command ``/usr/local/bin/arc-controller-manager``.
  Labels carry the version, the git revision and ``created`` = ``SOURCE_DATE_EPOCH`` (see
  :func:`source_date_epoch`).
- ``arc-tools`` — Debian base (``skopeo``, ``curl``, ``ca-certificates``; ``dash``, coreutils and sed come
  with the essential set) + the Go-built ``cosign``, ``helm``, ``oras`` and ``trivy`` from
  ``~/.cache/arc/bin``. Nothing in it depends on the ARC commit (no revision label, ``created`` = the base's
  fixed epoch), so the digest that ``workflowtemplates/images.py`` pins (via ``deploy/images.lock.json``)
  only changes when the tools do.

Both run as the non-root user 65532 (``nonroot``), with no shell in their entrypoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hack.binaries import HACK_DIR, REPO_ROOT, binary_path, pinned_versions
from hack.images import sbom
from hack.images.app import BIN_DIR, app_layer
from hack.images.oci import (
    Entry,
    Image,
    Layer,
    canonical_json,
    dir_info,
    file_info,
    image_config,
    write_atomic,
    write_layer,
    write_layout,
)
from hack.images.rootfs import BASE_EPOCH, NONROOT_NAME, NONROOT_UID, Base, BaseSpec, base, cache_root

log = logging.getLogger("hack.images")

DEFAULT_OUT = REPO_ROOT / ".arc" / "images"
LOCK_FILE = REPO_ROOT / "deploy" / "images.lock.json"
#: Where the released images live (the repository the lock and the rendered templates name).
REPOSITORY_PREFIX = "ghcr.io/opendefensecloud"
SOURCE_URL = "https://github.com/opendefensecloud/arc"

ARC_BASE = BaseSpec("arc", ("python3", "ca-certificates", "tzdata", "libstdc++6"))
#: skopeo's package depends on a container network stack (containernetworking-plugins, 46 MB); skopeo never
#: runs it, so its files are left out.
TOOLS_BASE = BaseSpec(
    "arc-tools", ("ca-certificates", "curl", "skopeo", "tzdata"), excludes=("/usr/lib/cni/*",)
)
TOOLS_PROGRAMS = ("cosign", "helm", "oras", "trivy")
#: The tools image's tag: names its base (the digest pins the content).
TOOLS_TAG = "bookworm"
#: skopeo reads its trust policy from here; the template steps copy between registries the Endpoint names.
SKOPEO_POLICY = b'{"default":[{"type":"insecureAcceptAnything"}]}\n'

IMAGE_NAMES = ("arc", "arc-tools")


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


#: The files the app layer is made of (its wheel's sources and pins).
APP_SOURCES = (
    "api",
    "apiserver",
    "controllers",
    "workflowtemplates",
    "pyproject.toml",
    "README.md",
    "hack/constraints.txt",
)


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH``, else the time of the last commit that changed :data:`APP_SOURCES` — not HEAD's,
    so a commit that only touches docs or tests leaves the app layer (and its cache entry) as it was."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    return int(value) if value else int(_git("log", "-1", "--format=%ct", "HEAD", "--", *APP_SOURCES))


def revision() -> str:
    """HEAD's commit, with ``-dirty`` when the files that go into the image differ from it."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *APP_SOURCES)
    return commit + ("-dirty" if dirty else "")


def project_version() -> str:
    version: str = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def _user_config(**extra: Any) -> dict[str, Any]:
    return {
        "User": f"{NONROOT_UID}:{NONROOT_UID}",
        "WorkingDir": f"/home/{NONROOT_NAME}",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"HOME=/home/{NONROOT_NAME}", "LANG=C.UTF-8"],
        **extra,
    }


@dataclass(frozen=True)
class Built:
    image: Image
    repository: str
    layout: Path
    sbom: Path
    seconds: float


@dataclass(frozen=True)
class _Top:
    """What one image puts on its Debian base: the layer, how it was made (history), its description."""

    layer: Layer
    history: str
    description: str
    config: dict[str, Any]
    """The config's own keys (Entrypoint or Cmd, Env) beside the non-root user's."""
    contents: dict[str, Any]
    """The SBOM's entries for the layer: ``dists`` (Python) or ``programs`` (Go)."""


def _write_image(
    out: Path,
    name: str,
    tag: str,
    base_: Base,
    top: _Top,
    *,
    created: str,
    started: float,
    revision: str | None = None,
) -> Built:
    """Write image ``name`` (its base and ``top``) as an OCI layout under ``out`` with its SPDX SBOM."""
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.description": top.description,
        "org.opencontainers.image.version": tag,
        **({"org.opencontainers.image.revision": revision} if revision is not None else {}),
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.base.name": f"debian:{base_.spec.suite}",
    }
    layers = [base_.layer, top.layer]
    config = image_config(
        created=created,
        layers=layers,
        config=_user_config(**top.config, Labels=labels),
        history=[base_.spec.description, top.history],
    )
    layout = out / name
    image = write_layout(layout, name, tag, config, layers)
    repository = f"{REPOSITORY_PREFIX}/{name}"
    doc = sbom.document(
        image=name,
        repository=repository,
        digest=image.digest,
        created=created,
        suite=base_.spec.suite,
        debs=base_.packages,
        **top.contents,
    )
    sbom_path = out / f"{name}.spdx.json"
    sbom.write(sbom_path, doc)
    return Built(image, repository, layout, sbom_path, time.monotonic() - started)


def build_arc(out: Path, *, refresh_base: bool = False, rebuild: bool = False) -> Built:
    started = time.monotonic()
    epoch = source_date_epoch()
    base_ = base(ARC_BASE, refresh=refresh_base)
    app = app_layer(epoch, rebuild=rebuild)
    top = _Top(
        app.layer,
        history="pip install --target /usr/local/lib/python3.11/dist-packages arc",
        description="ARC, the Artifact Conduit: API server (entrypoint) and controller manager (command "
        "/usr/local/bin/arc-controller-manager)",
        config={
            "Entrypoint": [f"/{BIN_DIR}/arc-apiserver"],
            "Env": _user_config()["Env"] + ["PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"],
        },
        contents={"dists": app.dists},
    )
    return _write_image(
        out, "arc", project_version(), base_, top, created=iso(epoch), started=started, revision=revision()
    )


def _tools_programs() -> list[sbom.GoProgram]:
    versions = pinned_versions()
    modules = {}
    for line in (HACK_DIR / "binaries.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, module, *_ = line.split()
            modules[name] = module
    return [sbom.GoProgram(name, versions[name], modules[name]) for name in TOOLS_PROGRAMS]


def _tools_layer(programs: list[sbom.GoProgram], *, rebuild: bool = False) -> Layer:
    """The Go programs plus skopeo's trust policy, cached per content (seconds to rebuild anyway)."""
    paths = {p.name: binary_path(p.name) for p in programs}
    key_material = canonical_json(
        {name: [str(path), path.stat().st_size, path.stat().st_mtime_ns] for name, path in paths.items()}
    )
    directory = cache_root() / "tools" / hashlib.sha256(key_material + SKOPEO_POLICY).hexdigest()[:16]
    meta_path = directory / "meta.json"
    if meta_path.is_file() and not rebuild:
        layer = Layer.from_json(directory / "layer.tar.gz", json.loads(meta_path.read_text()))
        if layer.path.is_file() and layer.path.stat().st_size == layer.size:
            return layer
    entries = [
        Entry(file_info(f"{BIN_DIR}/{name}", path.stat().st_size, BASE_EPOCH, 0o755), source=path)
        for name, path in paths.items()
    ]
    entries.append(
        Entry(file_info("etc/containers/policy.json", len(SKOPEO_POLICY), BASE_EPOCH), data=SKOPEO_POLICY)
    )
    for directory_name in ("usr", "usr/local", BIN_DIR, "etc", "etc/containers"):
        entries.append(Entry(dir_info(directory_name, BASE_EPOCH)))
    directory.mkdir(parents=True, exist_ok=True)
    layer = write_layer(entries, directory / "layer.tar.gz")
    write_atomic(meta_path, (json.dumps(layer.to_json(), sort_keys=True) + "\n").encode())
    return layer


def build_tools(out: Path, *, refresh_base: bool = False, rebuild: bool = False) -> Built:
    started = time.monotonic()
    base_ = base(TOOLS_BASE, refresh=refresh_base)
    programs = _tools_programs()
    tools = _tools_layer(programs, rebuild=rebuild)
    versions = {d.name: d.version for d in base_.packages}
    top = _Top(
        tools,
        history="COPY " + " ".join(TOOLS_PROGRAMS) + " /usr/local/bin/",
        description="The programs ARC's workflow templates run: " + tools_contents(versions, programs),
        config={"Cmd": ["/bin/sh"]},
        contents={"programs": programs},
    )
    return _write_image(out, "arc-tools", TOOLS_TAG, base_, top, created=iso(BASE_EPOCH), started=started)


def tools_contents(debian: dict[str, str], programs: list[sbom.GoProgram]) -> str:
    """One line naming the tools and their versions (the image's description, the docs' table)."""
    names = [f"skopeo {debian.get('skopeo', '?')}", f"curl {debian.get('curl', '?')}"]
    names += [f"{p.name} {p.version}" for p in programs]
    return ", ".join(names) + f", coreutils {debian.get('coreutils', '?')}, dash {debian.get('dash', '?')}"


def build(
    out: Path, names: tuple[str, ...] = IMAGE_NAMES, *, refresh_base: bool = False, rebuild: bool = False
) -> dict[str, Built]:
    """Build ``names`` into ``out``. ``refresh_base``: fetch the Debian bases again; ``rebuild``: make the
    app and tools layers again instead of taking them from the cache (the bases are kept)."""
    built = {}
    for name in names:
        builder = build_arc if name == "arc" else build_tools
        built[name] = builder(out, refresh_base=refresh_base, rebuild=rebuild)
    summary_path = out / "images.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for name, b in built.items():
        summary[name] = {
            "repository": b.repository,
            "tag": b.image.tag,
            "digest": b.image.digest,
            "layout": str(b.layout.relative_to(out)),
            "reference": f"oci:{b.layout}:{b.image.tag}",
            "sbom": str(b.sbom.relative_to(out)),
            "size": b.image.size,
            "unpackedSize": b.image.unpacked_size,
        }
    write_atomic(summary_path, (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    return built


def lock_entry(out: Path) -> dict[str, Any]:
    """The lock's view of the built ``arc-tools`` layout in ``out``."""
    summary = json.loads((out / "images.json").read_text())["arc-tools"]
    doc = json.loads((out / summary["sbom"]).read_text())
    debian = sbom.versions(doc, "pkg:deb/")
    programs = sbom.versions(doc, "pkg:golang/")
    return {
        "repository": summary["repository"],
        "tag": summary["tag"],
        "digest": summary["digest"],
        "contents": tools_contents(
            debian, [sbom.GoProgram(name, version, "") for name, version in sorted(programs.items())]
        ),
        "programs": programs,
        "debian": {"suite": TOOLS_BASE.suite, "packages": debian},
    }


def lock_text(out: Path) -> str:
    return json.dumps({"arc-tools": lock_entry(out)}, indent=1, sort_keys=True) + "\n"
