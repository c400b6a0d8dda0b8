"""Workflow parameters of an artifact (SPEC §4.1), values always strings, names unique.

Order: the fixed ones (`srcType`, `srcRemoteURL`, `dstType`, `dstRemoteURL`, `srcSecret`, `dstSecret`),
then the artifact `spec` flattened under the prefix `spec` (sorted keys at every level, each capitalised;
list items indexed; numbers as written; booleans `true`/`false`; null → ""), then the ArtifactType's
parameters. A later source wins over an earlier one of the same name and takes the earlier one's position.

The scan gate's settings are the platform's, not the tenant's: an Order's `scan.severity` and
`scan.dbRepository` (`specScanSeverity`, `specScanDbRepository`) would let a tenant weaken a gate the
ArtifactType forces (`specScan: "true"`) — fail only on an unknown severity, or check against a database
of their own. They are dropped from an Order's spec unless the ArtifactType allows them with the parameter
`allowTenantScanSettings: "true"`; the type's own values (or the template's defaults) apply otherwise.
(Parameters a template does not declare, like `allowTenantScanSettings` itself, are ignored by Argo.)

The signature gate is the type's too: `spec.verification.cosign.publicKey` becomes `verifyCosignPublicKey`
and `verifyCosignKeyIdentity`, after the type's parameters; an Order's spec only ever makes `spec*` names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from api.arc.v1alpha1.types import ArtifactType, ClusterArtifactType
from controllers.kube.codec import JSONNumber

__all__ = [
    "ALLOW_TENANT_SCAN_SETTINGS",
    "TYPE_OWNED_PARAMETERS",
    "build_parameters",
    "flatten_spec",
    "scalar",
    "verify_parameters",
]

#: Parameters an Order's spec may not set unless its ArtifactType allows it (the scan gate's settings).
TYPE_OWNED_PARAMETERS = frozenset({"specScanSeverity", "specScanDbRepository"})
#: The ArtifactType parameter that lets Orders set `TYPE_OWNED_PARAMETERS` (value "true").
ALLOW_TENANT_SCAN_SETTINGS = "allowTenantScanSettings"


def scalar(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, JSONNumber):
        return value.text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return str(value)


def _capitalise(key: str) -> str:
    return key[:1].upper() + key[1:]


def flatten_spec(value: Any, prefix: str = "spec") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from flatten_spec(value[key], prefix + _capitalise(str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from flatten_spec(item, f"{prefix}{i}")
    else:
        yield prefix, scalar(value)


def build_parameters(
    *,
    src_type: str,
    src_remote_url: str,
    dst_type: str,
    dst_remote_url: str,
    src_secret: bool,
    dst_secret: bool,
    spec: Any,
    type_parameters: Iterable[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    type_parameters = list(type_parameters)
    allowed = any(n == ALLOW_TENANT_SCAN_SETTINGS and v == "true" for n, v in type_parameters)
    from_spec = flatten_spec(spec if spec is not None else {})
    if not allowed:
        from_spec = ((n, v) for n, v in from_spec if n not in TYPE_OWNED_PARAMETERS)
    fixed = (
        ("srcType", src_type),
        ("srcRemoteURL", src_remote_url),
        ("dstType", dst_type),
        ("dstRemoteURL", dst_remote_url),
        ("srcSecret", "true" if src_secret else "false"),
        ("dstSecret", "true" if dst_secret else "false"),
    )
    for source in (fixed, from_spec, type_parameters):
        for name, value in source:
            merged[name] = value  # an existing key keeps its position
    return [{"name": n, "value": v} for n, v in merged.items()]


def verify_parameters(atype: ArtifactType | ClusterArtifactType) -> list[tuple[str, str]]:
    """The signature gate of the type's ``spec.verification``: ``verifyCosignPublicKey`` (the PEM) and
    ``verifyCosignKeyIdentity`` (which type it is from; the step adds the key's SHA-256). They come last, so
    they win over a type parameter of the same name; an Order's spec only makes ``spec*`` names."""
    cosign = atype.spec.verification.cosign if atype.spec.verification is not None else None
    if cosign is None or not cosign.public_key:
        return []
    meta = atype.metadata
    identity = (
        f"ArtifactType/{meta.namespace}/{meta.name}"
        if isinstance(atype, ArtifactType)
        else f"ClusterArtifactType/{meta.name}"
    )
    return [("verifyCosignPublicKey", cosign.public_key), ("verifyCosignKeyIdentity", identity)]
