"""The tool images ARC's workflow steps run, pinned by digest — the one place to change them.

Every image is rendered as ``<repository>:<tag>@<digest>``: the tag documents the version, the digest is what
the kubelet pulls (SPEC §6; trivy's release pipeline was compromised in March 2026, so tags are not trusted).

The digests below are PLACEHOLDERS (:data:`PLACEHOLDER_DIGEST`): this repository is built without access to
any container registry, so no digest could be resolved and verified here. Before deploying to a real cluster,
mirror each image into the zone's registry, resolve its digest (``skopeo inspect --format '{{.Digest}}'
docker://<repository>:<tag>``) and either edit :data:`TOOL_IMAGES` or render with overrides
(``python -m workflowtemplates render --image skopeo=registry.zone/tools/skopeo@sha256:…``). The local stack
runs the steps on kwok's fake nodes, which never pull images, so the placeholders work there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Not a real digest: marks every image whose digest still has to be resolved (see the module docstring).
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64

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

    @property
    def is_placeholder(self) -> bool:
        return self.digest == PLACEHOLDER_DIGEST


#: name → image. ``skopeo``: Fedora-based, also has /bin/sh, curl, sha256sum, mktemp (used by oci, helm,
#: file); ``helm``: Alpine (busybox sh, sed, base64); ``trivy``: Alpine (busybox sh, mktemp).
TOOL_IMAGES: dict[str, ToolImage] = {
    "skopeo": ToolImage("quay.io/skopeo/stable", "v1.16.1", PLACEHOLDER_DIGEST, "skopeo, curl, coreutils"),
    "helm": ToolImage("docker.io/alpine/helm", "3.16.2", PLACEHOLDER_DIGEST, "helm, busybox"),
    "trivy": ToolImage("docker.io/aquasec/trivy", "0.58.2", PLACEHOLDER_DIGEST, "trivy, busybox"),
}


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
