"""``arc-helm``: copy a Helm chart from an OCI registry or a classic chart repository to an OCI registry.

Parameter contract (besides :data:`~workflowtemplates.common.COMMON_PARAMETERS`); an Order artifact
``{type: helm, spec: {chart: nginx, version: 18.2.4}}`` becomes ``specChart=nginx``, ``specVersion=18.2.4``:

========================  ===========  ===============================================================
parameter                 default      meaning
========================  ===========  ===============================================================
``specChart``             (required)   chart name (classic repository) or repository path below the
                                       source registry (OCI), e.g. ``charts/nginx``
``specVersion``           (required)   exact chart version; its OCI tag has ``+`` replaced by ``_``
``specTlsVerifySrc/Dst``  ``"true"``   verify TLS per side (``http://`` URLs: never)
========================  ===========  ===============================================================

The source's kind follows its Endpoint type: ``srcType == "oci"`` is an OCI registry and the chart is copied
byte for byte by skopeo (step ``copy-oci``, digest preserved) to ``<dstRemoteURL>/<specChart>:<tag>``; any
other type (e.g. ``helm``) is a classic repository at ``srcRemoteURL`` (``index.yaml``), pulled with
``helm pull`` and pushed with ``helm push`` (step ``copy-classic``) to ``<dstRemoteURL>/<chart name>:<tag>``.
A classic repository's credentials are the ``auth`` entry of the source dockerconfigjson Secret (basic auth).
"""

from __future__ import annotations

from hera.workflows import ClusterWorkflowTemplate

from workflowtemplates import scripts
from workflowtemplates.common import (
    COMMON_PARAMETERS,
    COPY_REFERRERS,
    TLS_PARAMETERS,
    VERIFY_PARAMETERS,
    Param,
    build_template,
    copy_step,
    when_equals,
    when_not_equals,
)

NAME = "arc-helm"

PARAMETERS: tuple[Param, ...] = (
    *COMMON_PARAMETERS,
    Param("specChart", "Chart name (classic repository) or repository path below the source registry (OCI)."),
    Param("specVersion", "Exact chart version (its OCI tag has + replaced by _)."),
    *TLS_PARAMETERS,
    COPY_REFERRERS,
    *VERIFY_PARAMETERS,
)

_SRC_TYPE = COMMON_PARAMETERS[0]


def build(images: dict[str, str]) -> ClusterWorkflowTemplate:
    """The ``arc-helm`` ClusterWorkflowTemplate; ``images`` maps tool names to pinned references."""
    return build_template(
        name=NAME,
        title="ARC: Helm chart copy",
        description="OCI source: skopeo copy; classic repository: helm pull + helm push to OCI",
        params=PARAMETERS,
        steps=[
            copy_step(
                "copy-oci", images["skopeo"], scripts.HELM_COPY_OCI, when=when_equals(_SRC_TYPE, "oci")
            ),
            copy_step(
                "copy-classic",
                images["helm"],
                scripts.HELM_COPY_CLASSIC,
                when=when_not_equals(_SRC_TYPE, "oci"),
            ),
        ],
    )
