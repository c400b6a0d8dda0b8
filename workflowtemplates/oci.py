"""``arc-oci``: copy an OCI image between registries with skopeo (SPEC §6).

Parameter contract (besides :data:`~workflowtemplates.common.COMMON_PARAMETERS`); an Order artifact
``{type: oci, spec: {image: library/alpine:3.20, tlsVerify: {dst: false}, scan: true}}`` becomes
``specImage=library/alpine:3.20``, ``specTlsVerifyDst=false``, ``specScan=true``:

========================  =========================  =====================================================
parameter                 default                    meaning
========================  =========================  =====================================================
``specImage``             (required)                 ``repository:tag`` or ``repository@sha256:…`` below
                                                     the source Endpoint's remoteURL
``specDstImage``          ``""`` (= ``specImage``)   name below the destination Endpoint's remoteURL
``specTlsVerifySrc/Dst``  ``"true"``                 verify TLS per side (``http://`` URLs: never)
``specScan``              ``"false"``                gate: scan the source image first, copy nothing if it
                                                     has vulnerabilities of ``specScanSeverity``
``specScanSeverity``      ``HIGH,CRITICAL``          trivy ``--severity`` (the type's; see below)
``specScanDbRepository``  ``""`` (trivy's default)   trivy ``--db-repository`` (a mirror, in an air gap)
``specCopySignatures``    ``"false"``                also copy cosign signatures (``sha256-<hex>.sig`` tags)
========================  =========================  =====================================================

The scan gate's severity and database belong to the ArtifactType: the Order controller drops an Order's
``scan.severity``/``scan.dbRepository`` unless the type has ``allowTenantScanSettings: "true"``
(``controllers.order.parameters``), so a tenant cannot weaken a gate the type forces.

Steps: ``scan`` (when ``specScan``; trivy) → ``copy`` (``skopeo copy --all --preserve-digests``) →
``copy-signatures`` (when ``specCopySignatures``; skopeo with sigstore attachments enabled, which re-copies
the image — its blobs are already there — together with its ``.sig`` attachments; ``.att``/``.sbom`` tags and
OCI 1.1 referrers are not copied).
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
    StepSpec,
    build_template,
    copy_step,
    flag,
    when_true,
)

NAME = "arc-oci"

SCAN = flag("specScan", "Scan the source image with trivy first; copy only if it passes.")
COPY_SIGNATURES = flag(
    "specCopySignatures", "Also copy the image's cosign signatures (sha256-<digest>.sig tags)."
)

PARAMETERS: tuple[Param, ...] = (
    *COMMON_PARAMETERS,
    Param("specImage", "Image below the source remoteURL: repository:tag or repository@sha256:digest."),
    Param("specDstImage", "Image name below the destination remoteURL; empty: same as specImage.", ""),
    *TLS_PARAMETERS,
    SCAN,
    Param(
        "specScanSeverity",
        "Severities that fail the scan gate (trivy --severity). The ArtifactType's: an Order's value is"
        " dropped unless the type sets allowTenantScanSettings=true.",
        "HIGH,CRITICAL",
    ),
    Param(
        "specScanDbRepository",
        "trivy --db-repository (a trivy-db mirror); empty: trivy's default. The ArtifactType's, as"
        " specScanSeverity.",
        "",
    ),
    COPY_SIGNATURES,
    COPY_REFERRERS,
    *VERIFY_PARAMETERS,
)

#: The scan gate's verdict (vulnerabilities found) is final; anything else (a deleted pod, a registry
#: hiccup) is retried.
SCAN_RETRY_EXPRESSION = (
    f"lastRetry.status == 'Error' || "
    f"(lastRetry.status == 'Failed' && lastRetry.exitCode != '{scripts.SCAN_GATE_EXIT_CODE}')"
)


def build(images: dict[str, str]) -> ClusterWorkflowTemplate:
    """The ``arc-oci`` ClusterWorkflowTemplate; ``images`` maps tool names to pinned references."""
    return build_template(
        name=NAME,
        title="ARC: OCI image copy",
        description="skopeo copy --all --preserve-digests; optional trivy scan gate and signature copy",
        params=PARAMETERS,
        steps=[
            StepSpec(
                name="scan",
                image=images["trivy"],
                script=scripts.OCI_SCAN,
                mounts=("src",),
                when=when_true(SCAN),
                resources={"cpu": "500m", "memory": "1Gi"},
                retry_expression=SCAN_RETRY_EXPRESSION,
            ),
            copy_step("copy", images["skopeo"], scripts.oci_copy_verified()),
            StepSpec(
                name="copy-signatures",
                image=images["skopeo"],
                script=scripts.oci_copy(signatures=True),
                when=when_true(COPY_SIGNATURES),
            ),
        ],
    )
