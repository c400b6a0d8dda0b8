"""``arc-file``: fetch a file over HTTP(S), verify its checksum, push it as an OCI artifact.

Parameter contract (besides :data:`~workflowtemplates.common.COMMON_PARAMETERS`); an Order artifact
``{type: file, spec: {url: releases/v1/tool.tar.gz, sha256: …, artifact: tools/tool:v1}}`` becomes
``specUrl=…``, ``specSha256=…``, ``specArtifact=tools/tool:v1``:

========================  ==============================  ===================================================
parameter                 default                         meaning
========================  ==============================  ===================================================
``specUrl``               (required)                      path below the source Endpoint's remoteURL, or a
                                                          full URL that starts with it (anything else is
                                                          refused: the source's credentials stay with it)
``specArtifact``          (required)                      ``repository:tag`` below the destination remoteURL
``specSha256``            ``""`` (no check)               expected SHA-256 (hex, ``sha256:`` prefix allowed)
``specName``              ``""`` (last URL path segment)  file name recorded in the artifact
``specMediaType``         ``application/octet-stream``    media type of the file's layer
``specTlsVerifySrc/Dst``  ``"true"``                      verify TLS per side (``http://`` URLs: never)
========================  ==============================  ===================================================

One step, ``copy``, in the skopeo image (which has curl): ``curl`` (basic auth from the ``auth`` entry of the
source dockerconfigjson when ``srcSecret``), ``sha256sum`` check, then the artifact ``oras push`` would make
(artifactType ``application/vnd.opendefense.arc.file.v1``, empty config, one layer annotated
``org.opencontainers.image.title``, so ``oras pull`` restores the file) written as an OCI layout and pushed
with ``skopeo copy``.
"""

from __future__ import annotations

from hera.workflows import ClusterWorkflowTemplate

from workflowtemplates import scripts
from workflowtemplates.common import (
    COMMON_PARAMETERS,
    TLS_PARAMETERS,
    VERIFY_PARAMETERS,
    Param,
    build_template,
    copy_step,
)

NAME = "arc-file"

PARAMETERS: tuple[Param, ...] = (
    *COMMON_PARAMETERS,
    Param("specUrl", "Path below the source remoteURL, or a full URL starting with it."),
    Param("specArtifact", "Destination repository:tag below the destination remoteURL."),
    Param("specSha256", "Expected SHA-256 of the file (hex); empty: not checked.", ""),
    Param("specName", "File name recorded in the artifact; empty: the URL's last path segment.", ""),
    Param("specMediaType", "Media type of the file's layer.", "application/octet-stream"),
    *TLS_PARAMETERS,
    *VERIFY_PARAMETERS,
)


def build(images: dict[str, str]) -> ClusterWorkflowTemplate:
    """The ``arc-file`` ClusterWorkflowTemplate; ``images`` maps tool names to pinned references."""
    return build_template(
        name=NAME,
        title="ARC: file as OCI artifact",
        description="curl, sha256 check, push as a one-layer OCI artifact (oras-compatible) with skopeo",
        params=PARAMETERS,
        steps=[
            copy_step("copy", images["skopeo"], scripts.FILE_COPY),
        ],
    )
