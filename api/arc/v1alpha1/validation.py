"""Validation for arc.opendefense.cloud/v1alpha1 (SPEC §3): every field error at once, kube's paths.

Entry points (all return `list[FieldError]`; empty means valid):
- `validate(obj)`: on create, after defaulting — object meta (DNS-subdomain name, namespace required
  or forbidden per the resource table, labels, annotations, owners, finalizers) plus the kind's rules.
- `validate_update(new, old)`: on update of the main resource — `ValidateObjectMetaUpdate` plus the
  kind's rules, plus ArtifactWorkflow spec immutability.
- `validate_status_update(new, old)`: on update of `/status` — metadata update rules plus conditions.

Per-kind functions (`validate_order`, `validate_endpoint_update`, ...) are public too.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
from pydantic import BaseModel

from api import fields as f
from api import resources
from api.arc.v1alpha1.types import (
    ENDPOINT_USAGES,
    ArtifactType,
    ArtifactTypeSpec,
    ArtifactWorkflow,
    ArtifactWorkflowSpec,
    ClusterArtifactType,
    ConcurrencyPolicy,
    Cron,
    Endpoint,
    LocalObjectReference,
    Order,
    OrderArtifact,
    Parameter,
    WorkflowTemplateRef,
)
from api.cron import CronError, load_timezone, parse_schedule
from api.fields import FieldError, FieldPath
from api.meta import Condition, ObjectMeta, dump
from api.validation_meta import (
    FIELD_IMMUTABLE_ERROR_MSG,
    validate_conditions,
    validate_object_meta,
    validate_object_meta_update,
)

__all__ = [
    "validate",
    "validate_artifact_type",
    "validate_artifact_workflow",
    "validate_artifact_workflow_update",
    "validate_cluster_artifact_type",
    "validate_endpoint",
    "validate_order",
    "validate_status_update",
    "validate_update",
]

_SPEC: Final = FieldPath("spec")
MAX_ARTIFACTS_PER_ORDER: Final = 1000
"""How many artifacts one Order may hold: each becomes an ArtifactWorkflow (and an Argo Workflow), so one
write must not be able to start an unbounded number of them; 1,000 also keeps an Order and its status map
well under etcd's 1.5 MiB request limit."""
_DURATION_RE: Final = re.compile(r"(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")


def _meta(obj: Any) -> list[FieldError]:
    info = resources.info_for(obj)
    meta: ObjectMeta = obj.metadata
    return validate_object_meta(meta, requires_namespace=info.namespaced)


def _validate_ref(ref: LocalObjectReference | None, path: FieldPath) -> list[FieldError]:
    if ref is not None and not ref.name:
        return [f.required(path.child("name"))]
    return []


def _validate_parameters(params: Sequence[Parameter] | None, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, p in enumerate(params or ()):
        name_path = path.index(i).child("name")
        if not p.name:
            errs.append(f.required(name_path))
        elif p.name in seen:
            errs.append(f.duplicate(name_path, p.name))
        seen.add(p.name)
    return errs


def _validate_template_ref(ref: WorkflowTemplateRef | None, path: FieldPath) -> list[FieldError]:
    if ref is None:
        return [f.required(path)]
    if not ref.name:
        return [f.required(path.child("name"))]
    return []


# --- Endpoint -------------------------------------------------------------------------------------------


def validate_endpoint(obj: Endpoint) -> list[FieldError]:
    return [*_meta(obj), *_validate_endpoint_spec(obj)]


def _validate_endpoint_spec(obj: Endpoint) -> list[FieldError]:
    spec = obj.spec
    errs: list[FieldError] = []
    if not spec.type:
        errs.append(f.required(_SPEC.child("type")))
    if not spec.remote_url:
        errs.append(f.required(_SPEC.child("remoteURL")))
    errs.extend(_validate_ref(spec.secret_ref, _SPEC.child("secretRef")))
    if spec.usage is not None and spec.usage not in ENDPOINT_USAGES:
        errs.append(f.not_supported(_SPEC.child("usage"), spec.usage, ENDPOINT_USAGES))
    return errs


# --- ArtifactType / ClusterArtifactType -----------------------------------------------------------------


def _validate_type_spec(spec: ArtifactTypeSpec, *, cluster: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    ref_path = _SPEC.child("workflowTemplateRef")
    errs.extend(_validate_template_ref(spec.workflow_template_ref, ref_path))
    if (
        cluster
        and spec.workflow_template_ref is not None
        and spec.workflow_template_ref.cluster_scope is not True
    ):
        errs.append(
            f.invalid(
                ref_path.child("clusterScope"),
                bool(spec.workflow_template_ref.cluster_scope),
                "a ClusterArtifactType must reference a ClusterWorkflowTemplate (clusterScope: true)",
            )
        )
    errs.extend(_validate_parameters(spec.parameters, _SPEC.child("parameters")))
    if spec.ttl is not None:
        for name, value in (
            ("afterSucceeded", spec.ttl.after_succeeded),
            ("afterFailed", spec.ttl.after_failed),
        ):
            if value is not None and _DURATION_RE.fullmatch(value) is None:
                errs.append(
                    f.invalid(_SPEC.child("ttl", name), value, "must be a duration such as 30m, 1h or 1h30m")
                )
    if spec.verification is not None and spec.verification.cosign is not None:
        errs.extend(_validate_public_key(spec.verification.cosign.public_key))
    return errs


_PEM_PUBLIC_KEY: Final = re.compile(
    r"\s*-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----\s*"
)


def _validate_public_key(pem: str) -> list[FieldError]:
    """One PEM ``PUBLIC KEY`` block (a DER SubjectPublicKeyInfo), as cosign.pub holds it."""
    path = _SPEC.child("verification", "cosign", "publicKey")
    if not pem:
        return [f.required(path, "")]
    match = _PEM_PUBLIC_KEY.fullmatch(pem)
    body = re.sub(r"\s+", "", match.group(1)) if match else ""
    try:
        der = base64.b64decode(body, validate=True) if body else b""
    except ValueError:
        der = b""
    if not der or der[0] != 0x30:
        return [
            f.invalid(
                path,
                "<PEM>" if match else pem[:64],
                "must be one PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)",
            )
        ]
    return []


def validate_artifact_type(obj: ArtifactType) -> list[FieldError]:
    return [*_meta(obj), *_validate_type_spec(obj.spec, cluster=False)]


def validate_cluster_artifact_type(obj: ClusterArtifactType) -> list[FieldError]:
    return [*_meta(obj), *_validate_type_spec(obj.spec, cluster=True)]


# --- Order ----------------------------------------------------------------------------------------------


def _effective_name(own: LocalObjectReference | None, default: LocalObjectReference | None) -> str:
    if own is not None and own.name:
        return own.name
    if default is not None and default.name:
        return default.name
    return ""


def _artifact_identity(a: OrderArtifact, src: str, dst: str) -> bytes:
    spec = {} if a.spec is None else a.spec
    try:
        return orjson.dumps([a.type, src, dst, spec], option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, which only Python's json writes
        return json.dumps([a.type, src, dst, spec], sort_keys=True, separators=(",", ":")).encode()


MAX_SCHEDULES: Final = 20
"""Schedules of one cron: each is evaluated on every reconcile of the Order."""


def _validate_cron(cron: Cron | None, path: FieldPath) -> list[FieldError]:
    """A cron as CronJob validates its schedule and timeZone (robfig's grammar, IANA zones), plus the
    Go ARC's list of schedules and CronJob's policy, deadline and history limits."""
    if cron is None:
        return []
    errs: list[FieldError] = []
    schedules_path = path.child("schedules")
    if not cron.schedules:
        errs.append(f.required(schedules_path, "at least one schedule is required"))
    elif len(cron.schedules) > MAX_SCHEDULES:
        errs.append(f.too_many(schedules_path, len(cron.schedules), MAX_SCHEDULES))
    else:
        for i, text in enumerate(cron.schedules):
            try:
                parse_schedule(text)
            except CronError as exc:
                errs.append(f.invalid(schedules_path.index(i), text, str(exc)))
    if cron.timezone is not None:
        try:
            load_timezone(cron.timezone)
        except CronError as exc:
            errs.append(f.invalid(path.child("timezone"), cron.timezone, str(exc)))
    if cron.concurrency_policy is not None and cron.concurrency_policy not in tuple(ConcurrencyPolicy):
        errs.append(
            f.not_supported(
                path.child("concurrencyPolicy"), cron.concurrency_policy, tuple(ConcurrencyPolicy)
            )
        )
    for name, value in (
        ("startingDeadlineSeconds", cron.starting_deadline_seconds),
        ("successfulJobsHistoryLimit", cron.successful_jobs_history_limit),
        ("failedJobsHistoryLimit", cron.failed_jobs_history_limit),
    ):
        if value is not None and value < 0:
            errs.append(f.invalid(path.child(name), value, "must be greater than or equal to 0"))
    return errs


def validate_order(obj: Order) -> list[FieldError]:
    return [*_meta(obj), *_validate_order_spec(obj)]


def _validate_order_spec(obj: Order) -> list[FieldError]:
    spec = obj.spec
    errs: list[FieldError] = []
    defaults = spec.defaults
    default_src = defaults.src_ref if defaults is not None else None
    default_dst = defaults.dst_ref if defaults is not None else None
    if defaults is not None:
        errs.extend(_validate_ref(default_src, _SPEC.child("defaults", "srcRef")))
        errs.extend(_validate_ref(default_dst, _SPEC.child("defaults", "dstRef")))
        errs.extend(_validate_cron(defaults.cron, _SPEC.child("defaults", "cron")))
    artifacts_path = _SPEC.child("artifacts")
    if not spec.artifacts:
        errs.append(f.required(artifacts_path, "at least one artifact is required"))
        return errs
    if len(spec.artifacts) > MAX_ARTIFACTS_PER_ORDER:
        # kube's ``field.TooMany``: checking each of them would only cost more.
        errs.append(f.too_many(artifacts_path, len(spec.artifacts), MAX_ARTIFACTS_PER_ORDER))
        return errs
    seen: dict[bytes, int] = {}
    for i, a in enumerate(spec.artifacts):
        p = artifacts_path.index(i)
        if not a.type:
            errs.append(f.required(p.child("type")))
        errs.extend(_validate_ref(a.src_ref, p.child("srcRef")))
        errs.extend(_validate_ref(a.dst_ref, p.child("dstRef")))
        errs.extend(_validate_cron(a.cron, p.child("cron")))
        src = _effective_name(a.src_ref, default_src)
        dst = _effective_name(a.dst_ref, default_dst)
        if not src and (a.src_ref is None or a.src_ref.name):
            errs.append(f.required(p.child("srcRef"), "no srcRef and no spec.defaults.srcRef"))
        if not dst and (a.dst_ref is None or a.dst_ref.name):
            errs.append(f.required(p.child("dstRef"), "no dstRef and no spec.defaults.dstRef"))
        if a.spec is not None and not isinstance(a.spec, dict):
            errs.append(f.invalid(p.child("spec"), _json_type(a.spec), "must be a JSON object"))
            continue
        identity = _artifact_identity(a, src, dst)
        if identity in seen:
            errs.append(f.duplicate(p, dump(a)))
        else:
            seen[identity] = i
    return errs


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- ArtifactWorkflow -----------------------------------------------------------------------------------


def validate_artifact_workflow(obj: ArtifactWorkflow) -> list[FieldError]:
    return [*_meta(obj), *_validate_artifact_workflow_spec(obj.spec)]


def _validate_artifact_workflow_spec(spec: ArtifactWorkflowSpec) -> list[FieldError]:
    errs: list[FieldError] = []
    if not spec.type:
        errs.append(f.required(_SPEC.child("type")))
    errs.extend(_validate_template_ref(spec.workflow_template_ref, _SPEC.child("workflowTemplateRef")))
    errs.extend(_validate_parameters(spec.parameters, _SPEC.child("parameters")))
    return errs


def validate_artifact_workflow_update(new: ArtifactWorkflow, old: ArtifactWorkflow) -> list[FieldError]:
    """Metadata update rules, spec rules, and the spec is immutable: one error per changed spec field."""
    errs = [*validate_object_meta_update(new.metadata, old.metadata)]
    errs.extend(_validate_artifact_workflow_spec(new.spec))
    errs.extend(_immutable_spec(new.spec, old.spec))
    return errs


def _immutable_spec(new: BaseModel, old: BaseModel) -> list[FieldError]:
    errs: list[FieldError] = []
    for name, info in type(new).model_fields.items():
        new_v, old_v = getattr(new, name), getattr(old, name)
        if new_v != old_v:
            shown = new_v if new_v is None or isinstance(new_v, str | int | bool) else f.OMIT_VALUE
            errs.append(f.invalid(_SPEC.child(info.alias or name), shown, FIELD_IMMUTABLE_ERROR_MSG))
    return errs


# --- dispatch -------------------------------------------------------------------------------------------


def _spec_update(check: Callable[[Any], list[FieldError]]) -> Callable[[Any, Any], list[FieldError]]:
    """Update validation of a kind whose spec may change: metadata update rules, then the spec's rules."""

    def validate_kind_update(new: Any, old: Any) -> list[FieldError]:
        return [*validate_object_meta_update(_metadata(new), _metadata(old)), *check(new)]

    return validate_kind_update


_CREATE: Final[Mapping[type[BaseModel], Callable[[Any], list[FieldError]]]] = {
    Order: validate_order,
    Endpoint: validate_endpoint,
    ArtifactType: validate_artifact_type,
    ClusterArtifactType: validate_cluster_artifact_type,
    ArtifactWorkflow: validate_artifact_workflow,
}
"""Create-time validation per kind."""

_UPDATE: Final[Mapping[type[BaseModel], Callable[[Any, Any], list[FieldError]]]] = {
    Order: _spec_update(_validate_order_spec),
    Endpoint: _spec_update(_validate_endpoint_spec),
    ArtifactType: _spec_update(lambda obj: _validate_type_spec(obj.spec, cluster=False)),
    ClusterArtifactType: _spec_update(lambda obj: _validate_type_spec(obj.spec, cluster=True)),
    ArtifactWorkflow: validate_artifact_workflow_update,  # spec immutable
}
"""Update-time validation per kind (main resource)."""


def validate(obj: BaseModel) -> list[FieldError]:
    """Create-time validation of any ARC object (after `set_defaults`)."""
    check = _CREATE.get(type(obj))
    if check is None:
        raise TypeError(f"not an ARC object: {type(obj).__name__}")
    return check(obj)


def validate_update(new: BaseModel, old: BaseModel) -> list[FieldError]:
    """Update-time validation of the main resource (after `set_defaults` of `new`).

    Like kube's `ValidateObjectMetaUpdate` this requires `new.metadata.resourceVersion`: for an
    unconditional PUT (no resourceVersion sent) the server copies the stored one in first, as kube's
    generic store does.
    """
    check = _UPDATE.get(type(new))
    if check is None:
        raise TypeError(f"not an ARC object: {type(new).__name__}")
    return check(new, old)


def validate_status_update(new: BaseModel, old: BaseModel) -> list[FieldError]:
    """Update-time validation of `/status`: metadata update rules plus `status.conditions`."""
    errs = validate_object_meta_update(_metadata(new), _metadata(old))
    status = getattr(new, "status", None)
    conditions: list[Condition] | None = getattr(status, "conditions", None) if status is not None else None
    errs.extend(validate_conditions(conditions, FieldPath("status", "conditions")))
    return errs


def _metadata(obj: BaseModel) -> ObjectMeta:
    meta = getattr(obj, "metadata", None)
    if not isinstance(meta, ObjectMeta):
        raise TypeError(f"not an ARC object: {type(obj).__name__}")
    return meta
