"""The evidence a Workflow's steps wrote, read back into ``status.provenance`` (pure functions, no I/O).

The copy steps of ARC's templates write their evidence as Argo output parameters (workflowtemplates/common.py
``OUTPUTS``): plain strings, lists one item a line. Argo's wait container reports them in a
``WorkflowTaskResult`` and the workflow-controller copies them into ``status.nodes[<id>].outputs.parameters``
(``[{name, value, valueFrom}]``, Argo v3.6.5 ``NodeStatus.Outputs``). Only Pod nodes are read — a Retry node
repeats its successful child's outputs — in the order they finished, later non-empty values winning, so the
attempt that succeeded is what is recorded.

Nothing here can carry a credential: the steps never write one (their inputs are parameters and mounted
files, and the scripts only emit references, digests, key fingerprints and tool versions), and the parser
keeps only the fields of :class:`ArtifactWorkflowProvenance`, each bounded in length.
"""

from __future__ import annotations

import re
from typing import Any, Final

from api.arc.v1alpha1.types import (
    ArtifactWorkflowProvenance,
    PlatformDigest,
    ProvenanceReference,
    Referrer,
    SignatureVerification,
    ToolVersion,
)

__all__ = ["EVIDENCE_PARAMETERS", "event_message", "provenance_from_workflow"]

#: Longest value kept of one field (a reference is at most ~2 KiB in any registry).
MAX_VALUE: Final = 4096
#: Most list items kept (platforms, referrers, tools).
MAX_ITEMS: Final = 64
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: The output parameters read here (the only ones an informer's cache keeps of a Workflow's nodes).
EVIDENCE_PARAMETERS: Final = frozenset(
    {
        "sourceRef",
        "sourceDigest",
        "destinationRef",
        "destinationDigest",
        "platforms",
        "signatureKey",
        "signedDigest",
        "referrers",
        "tools",
    }
)


def _outputs(workflow: dict[str, Any]) -> dict[str, str]:
    nodes = ((workflow.get("status") or {}).get("nodes") or {}).values()
    pods = sorted(
        (n for n in nodes if isinstance(n, dict) and n.get("type") == "Pod"),
        key=lambda n: (str(n.get("finishedAt") or "~"), str(n.get("id") or "")),
    )
    merged: dict[str, str] = {}
    for node in pods:
        for param in (node.get("outputs") or {}).get("parameters") or []:
            if not isinstance(param, dict):
                continue
            name, value = param.get("name"), param.get("value")
            if isinstance(name, str) and isinstance(value, str) and value.strip():
                merged[name] = value.strip()[:MAX_VALUE]
    return merged


def _reference(value: str | None) -> str | None:
    """A reference without URL userinfo (``user:password@host/...`` → ``host/...``): a remoteURL written with
    credentials in it must not carry them into status and Events."""
    if value is None:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    return f"{scheme}{sep}{host}{slash}{path}"


def _digest(value: str | None) -> str | None:
    return value if value is not None and _DIGEST.fullmatch(value) else None


def _lines(value: str | None) -> list[list[str]]:
    return [line.split() for line in (value or "").splitlines() if line.strip()][:MAX_ITEMS]


def provenance_from_workflow(workflow: dict[str, Any]) -> ArtifactWorkflowProvenance | None:
    """``status.provenance`` from a Workflow's node outputs; None when no step wrote any evidence."""
    out = _outputs(workflow)
    prov = ArtifactWorkflowProvenance()
    if out.get("sourceRef") or out.get("sourceDigest"):
        prov.source = ProvenanceReference(
            reference=_reference(out.get("sourceRef")), digest=_digest(out.get("sourceDigest"))
        )
    if out.get("destinationRef") or out.get("destinationDigest"):
        prov.destination = ProvenanceReference(
            reference=_reference(out.get("destinationRef")), digest=_digest(out.get("destinationDigest"))
        )
    platforms = [
        PlatformDigest(platform=parts[0], digest=parts[1])
        for parts in _lines(out.get("platforms"))
        if len(parts) == 2 and _digest(parts[1])
    ]
    prov.platforms = platforms or None
    if out.get("signatureKey"):
        prov.signature = SignatureVerification(
            verified=True, key=out["signatureKey"], signed_digest=_digest(out.get("signedDigest"))
        )
    referrers = [
        Referrer(kind=parts[0], digest=parts[1], reference=_reference(parts[2]) if len(parts) > 2 else None)
        for parts in _lines(out.get("referrers"))
        if len(parts) >= 2 and _digest(parts[1])
    ]
    prov.referrers = referrers or None
    tools: dict[str, str] = {}
    for parts in _lines(out.get("tools")):
        if len(parts) == 2:
            tools.setdefault(parts[0], parts[1])
    prov.tools = [ToolVersion(name=n, version=v) for n, v in tools.items()] or None
    if prov == ArtifactWorkflowProvenance():
        return None
    return prov


def event_message(prov: ArtifactWorkflowProvenance) -> str | None:
    """``Transferred: <src>@<digest> → <dst>@<digest>[, signature verified by <key>]``; None without both
    sides' digests."""
    src, dst = prov.source, prov.destination
    if src is None or dst is None or not src.digest or not dst.digest:
        return None
    message = f"Transferred: {_strip(src.reference)}@{src.digest} → {_strip(dst.reference)}@{dst.digest}"
    if prov.signature is not None and prov.signature.verified:
        message += f", signature verified by {prov.signature.key}"
    else:
        message += ", signature not verified (the type requires none)"
    return message


def _strip(reference: str | None) -> str:
    """The repository of a reference: its @digest or :tag removed (the digest follows in the message)."""
    ref = reference or "?"
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return ref.rsplit(":", 1)[0] if ":" in last else ref
