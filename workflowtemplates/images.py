"""The tool image ARC's workflow steps run, pinned by digest — read from ``deploy/images.lock.json``.

Every step runs in ``arc-tools``, the image ``make images`` builds from Debian's packages and the Go-built
helm, oras and trivy (hack/images, docs/images.md). Its content does not depend on the ARC commit, so its
digest only changes when the tools do; ``python -m hack.images lock`` writes the digest of the build into
the lock file and renders the templates again, and a test checks that the lock, this module and the build
agree. Every image is rendered as ``<repository>:<tag>@<digest>``: the tag documents the version, the digest
is what the kubelet pulls (SPEC §6; tags are not trusted).

The step names (``skopeo``, ``helm``, ``trivy``) stay separate so a deployment can still point one of them
elsewhere (``python -m workflowtemplates render --image trivy=registry.zone/tools/trivy@sha256:…``); by
default they all name ``arc-tools``. To pull from the zone's registry, copy the image there with
``make push REGISTRY=…`` (digest preserved) and render with ``--image`` overrides for each step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = Path(__file__).resolve().parent.parent / "deploy" / "images.lock.json"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ToolImage:
    """One tool image: where it comes from, which version, which exact content."""

    repository: str
    tag: str
    digest: str
    contents: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


def load_lock(path: Path = LOCK_FILE) -> ToolImage:
    """The ``arc-tools`` entry of the lock file; ValueError when it is missing or not pinned."""
    entry = json.loads(path.read_text())["arc-tools"]
    image = ToolImage(entry["repository"], entry["tag"], entry["digest"], entry["contents"])
    if not _DIGEST.match(image.digest) or image.digest == "sha256:" + "0" * 64:
        raise ValueError(f"{path}: arc-tools digest {image.digest!r} is not a real sha256 digest")
    return image


#: The image every step runs in (``deploy/images.lock.json``).
ARC_TOOLS = load_lock()

#: step tool → image. All are ``arc-tools`` (skopeo, curl, coreutils, dash, helm, oras, trivy).
TOOL_IMAGES: dict[str, ToolImage] = {"skopeo": ARC_TOOLS, "helm": ARC_TOOLS, "trivy": ARC_TOOLS}


def is_pinned(reference: str) -> bool:
    """True when ``reference`` names its content by a sha256 digest (``…@sha256:<64 hex>``)."""
    _, sep, digest = reference.rpartition("@")
    return bool(sep) and _DIGEST.match(digest) is not None


def resolve_images(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """name → image reference to render: :data:`TOOL_IMAGES`, with ``overrides`` (name → reference) applied.

    Raises ValueError for an unknown name or an override that is not pinned by digest.
    """
    images = {name: image.reference for name, image in TOOL_IMAGES.items()}
    for name, reference in (overrides or {}).items():
        if name not in images:
            raise ValueError(f"unknown tool image {name!r}; known: {', '.join(sorted(images))}")
        if not is_pinned(reference):
            raise ValueError(f"image {name}={reference!r} must be pinned by digest (…@sha256:<64 hex>)")
        images[name] = reference
    return images
