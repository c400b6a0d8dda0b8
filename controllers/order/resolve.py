"""An Order's artifacts resolved against what they refer to (SPEC §4.1) — pure functions, no I/O.

`Inputs` is what the reconciler read from its caches for one Order: the Endpoints, the hashes of their
Secrets' data and the artifact types. `resolve_order` turns the Order and those inputs into `Resolved`:
- the annotation triggers: `force-at` newer than `status.lastForceAt` (it is part of every hash, so every
  artifact gets a new ArtifactWorkflow), `retry-failed-at` newer than `status.lastRetryAt`; an unparsable
  value is reported, never acted on;
- per artifact, its hash and ArtifactWorkflow name (even when it cannot start, so its status entry has its
  final key and name from the beginning), then either the ArtifactWorkflow's spec or why it cannot start —
  a `StartFailureReason` with SPEC's message (missing Endpoint, Secret or type; usage or type rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.arc.v1alpha1.types import (
    USAGE_PULL_ONLY,
    USAGE_PUSH_ONLY,
    ArtifactType,
    ClusterArtifactType,
    Endpoint,
    Order,
    OrderArtifact,
    StartFailureReason,
)
from api.resources import format_rfc3339, format_rfc3339_micro, parse_rfc3339
from controllers.controllerutil import ANNOTATION_FORCE_AT, ANNOTATION_RETRY_FAILED_AT
from controllers.order.naming import artifact_hash, workflow_name
from controllers.order.parameters import build_parameters, verify_parameters

__all__ = [
    "Artifact",
    "ArtifactSchedule",
    "Inputs",
    "Resolved",
    "SecretRecord",
    "StartFailure",
    "effective_refs",
    "format_annotation_time",
    "not_ready",
    "parse_annotation_time",
    "resolve_order",
]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """What the Order controller keeps of a Secret: who it is and the hash of its data."""

    namespace: str
    name: str
    data_hash: str


@dataclass(frozen=True, slots=True)
class Inputs:
    """What one Order refers to, as read from the caches (all in the Order's namespace).

    `artifact_types` holds the effective type of each name: the ArtifactType, else the ClusterArtifactType.
    A name missing from a mapping does not exist.
    """

    endpoints: Mapping[str, Endpoint]
    secret_hashes: Mapping[str, str]
    artifact_types: Mapping[str, ArtifactType | ClusterArtifactType]


@dataclass(frozen=True, slots=True)
class StartFailure:
    reason: StartFailureReason
    message: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact of the Order, resolved: its identity and either its ArtifactWorkflow spec or a failure."""

    index: int
    hash: str
    name: str
    type_name: str
    src_name: str
    dst_name: str
    failure: StartFailure | None = None
    spec: dict[str, Any] | None = None
    """The ArtifactWorkflow's `spec` (wire form), when the artifact can start."""
    endpoint_notes: tuple[str, ...] = ()
    """Why its Endpoints do not work, when their probe says so (`endpoint "x" is not Ready: …`)."""
    schedule_key: str | None = None
    """Set for a scheduled artifact (`schedule.py`): the label its ArtifactWorkflows carry."""
    scheduled_time: str | None = None
    """The scheduled time its current run belongs to (part of its hash)."""
    awaiting_schedule: bool = False
    """Scheduled, before its first scheduled time: no ArtifactWorkflow yet."""


@dataclass(frozen=True, slots=True)
class Resolved:
    artifacts: list[Artifact]
    last_force_at: str | None
    """`status.lastForceAt` after this reconcile (part of every hash)."""
    force_at: str | None = None
    """Set when `force-at` is newer than the last one handled: every artifact re-runs."""
    retry_at: str | None = None
    """Set when `retry-failed-at` is newer than the last one handled: the failed artifacts re-run."""
    invalid_annotations: tuple[tuple[str, str], ...] = ()
    """(annotation, value) pairs that are neither RFC 3339 nor unix seconds."""
    scheduled_reruns: frozenset[int] = frozenset()
    """Indices of the artifacts whose scheduled time came in this reconcile (re-runs, not input changes)."""


@dataclass(frozen=True, slots=True)
class ArtifactSchedule:
    """What the schedule (`schedule.py`) tells the resolver about one scheduled artifact."""

    key: str
    scheduled_time: str | None
    awaiting: bool
    started: bool


def parse_annotation_time(value: str) -> datetime | None:
    """RFC 3339 or unix seconds; None when it is neither."""
    text = value.strip()
    ts = parse_rfc3339(text)
    if ts is not None:
        return ts.astimezone(UTC)
    try:
        seconds = float(text)
    except ValueError:
        return None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def format_annotation_time(ts: datetime) -> str:
    """RFC 3339 in UTC, with the fraction only when there is one (`status.lastForceAt`, `lastRetryAt`)."""
    return format_rfc3339_micro(ts) if ts.microsecond else format_rfc3339(ts)


def effective_refs(order: Order) -> list[tuple[str, str]]:
    """Each artifact's (source, destination) Endpoint names: its own refs, else the Order's defaults."""
    defaults = order.spec.defaults
    default_src = defaults.src_ref.name if defaults and defaults.src_ref else ""
    default_dst = defaults.dst_ref.name if defaults and defaults.dst_ref else ""
    return [
        (
            (artifact.src_ref.name if artifact.src_ref else "") or default_src,
            (artifact.dst_ref.name if artifact.dst_ref else "") or default_dst,
        )
        for artifact in order.spec.artifacts or []
    ]


def _newer(order: Order, annotation: str, last: str | None, invalid: list[tuple[str, str]]) -> str | None:
    """The annotation's time (formatted) when it is newer than `last`, else None."""
    value = (order.metadata.annotations or {}).get(annotation)
    if value is None:
        return None
    ts = parse_annotation_time(value)
    if ts is None:
        invalid.append((annotation, value))
        return None
    last_ts = parse_rfc3339(last) if last else None
    return format_annotation_time(ts) if last_ts is None or ts > last_ts else None


def resolve_order(
    order: Order, inputs: Inputs, schedules: Mapping[int, ArtifactSchedule] | None = None
) -> Resolved:
    """`schedules`: by artifact index, the scheduled artifacts (none: nothing is scheduled)."""
    schedules = schedules or {}
    status = order.status
    invalid: list[tuple[str, str]] = []
    force_at = _newer(order, ANNOTATION_FORCE_AT, status.last_force_at if status else None, invalid)
    retry_at = _newer(order, ANNOTATION_RETRY_FAILED_AT, status.last_retry_at if status else None, invalid)
    last_force_at = force_at or (status.last_force_at if status else None)
    artifacts = [
        _resolve(order, inputs, i, artifact, src, dst, last_force_at, schedules.get(i))
        for (i, artifact), (src, dst) in zip(
            enumerate(order.spec.artifacts or []), effective_refs(order), strict=True
        )
    ]
    started = frozenset(i for i, s in schedules.items() if s.started)
    return Resolved(artifacts, last_force_at, force_at, retry_at, tuple(invalid), started)


def _secret_hash(inputs: Inputs, endpoint: Endpoint | None) -> str | None:
    if endpoint is None or endpoint.spec.secret_ref is None or not endpoint.spec.secret_ref.name:
        return ""
    return inputs.secret_hashes.get(endpoint.spec.secret_ref.name)


def _resolve(
    order: Order,
    inputs: Inputs,
    index: int,
    artifact: OrderArtifact,
    src_name: str,
    dst_name: str,
    last_force_at: str | None,
    schedule: ArtifactSchedule | None = None,
) -> Artifact:
    spec = artifact.spec if artifact.spec is not None else {}
    src = inputs.endpoints.get(src_name)
    dst = inputs.endpoints.get(dst_name)
    h = artifact_hash(
        namespace=order.metadata.namespace or "",
        type=artifact.type,
        spec=spec,
        src_name=src_name,
        src_generation=src.metadata.generation if src else None,
        dst_name=dst_name,
        dst_generation=dst.metadata.generation if dst else None,
        src_secret_hash=_secret_hash(inputs, src),
        dst_secret_hash=_secret_hash(inputs, dst),
        last_force_at=last_force_at,
        scheduled_time=schedule.scheduled_time if schedule is not None else None,
    )
    name = workflow_name(order.metadata.name or "", h)
    sched: dict[str, Any] = (
        {
            "schedule_key": schedule.key,
            "scheduled_time": schedule.scheduled_time,
            "awaiting_schedule": schedule.awaiting,
        }
        if schedule is not None
        else {}
    )
    failure = _check(inputs, artifact.type, src_name, src, dst_name, dst)
    if failure is not None:
        return Artifact(index, h, name, artifact.type, src_name, dst_name, failure=failure, **sched)
    assert src is not None and dst is not None
    workflow_spec = _workflow_spec(order, inputs.artifact_types[artifact.type], artifact.type, src, dst, spec)
    notes = tuple(
        note
        for ep_name, ep in dict(((src_name, src), (dst_name, dst))).items()
        if (note := not_ready(ep_name, ep))
    )
    return Artifact(
        index, h, name, artifact.type, src_name, dst_name, spec=workflow_spec, endpoint_notes=notes, **sched
    )


def not_ready(name: str, endpoint: Endpoint) -> str | None:
    """`endpoint "x" is not Ready: <why>` when the Endpoint controller's last probe of its current spec
    says it does not work (Ready False); None when it is Ready, not probed yet, or probed inconclusively.
    An Endpoint that is not Ready does not stop an artifact (the probe may see less than the transfer)."""
    status = endpoint.status
    ready = next((c for c in (status.conditions if status else None) or [] if c.type == "Ready"), None)
    if ready is None or ready.status != "False":
        return None
    if ready.observed_generation is not None and ready.observed_generation != endpoint.metadata.generation:
        return None
    return f'endpoint "{name}" is not Ready: {ready.message or ready.reason}'


def _check(
    inputs: Inputs,
    type_name: str,
    src_name: str,
    src: Endpoint | None,
    dst_name: str,
    dst: Endpoint | None,
) -> StartFailure | None:
    """SPEC §4.1's checks, in order; the first failing one with its message."""
    if src is None:
        return StartFailure(StartFailureReason.ENDPOINT_NOT_FOUND, f'endpoint "{src_name}" not found')
    if dst is None:
        return StartFailure(StartFailureReason.ENDPOINT_NOT_FOUND, f'endpoint "{dst_name}" not found')
    atype = inputs.artifact_types.get(type_name)
    if atype is None:
        return StartFailure(
            StartFailureReason.ARTIFACT_TYPE_NOT_FOUND, f'artifact type "{type_name}" not found'
        )
    usage = StartFailureReason.ENDPOINT_USAGE_NOT_ALLOWED
    if (src.spec.usage or "All") == USAGE_PUSH_ONLY:
        return StartFailure(usage, f'endpoint "{src_name}" has usage PushOnly and cannot be a source')
    if (dst.spec.usage or "All") == USAGE_PULL_ONLY:
        return StartFailure(usage, f'endpoint "{dst_name}" has usage PullOnly and cannot be a destination')
    rules = atype.spec.rules
    kind = StartFailureReason.ENDPOINT_TYPE_NOT_ALLOWED
    if rules is not None and rules.src_types and src.spec.type not in rules.src_types:
        return StartFailure(
            kind, f'endpoint type "{src.spec.type}" is not allowed as source by artifact type "{type_name}"'
        )
    if rules is not None and rules.dst_types and dst.spec.type not in rules.dst_types:
        allowed = f'is not allowed as destination by artifact type "{type_name}"'
        return StartFailure(kind, f'endpoint type "{dst.spec.type}" {allowed}')
    for endpoint in (src, dst):
        secret = endpoint.spec.secret_ref.name if endpoint.spec.secret_ref else ""
        if secret and secret not in inputs.secret_hashes:
            return StartFailure(StartFailureReason.SECRET_NOT_FOUND, f'secret "{secret}" not found')
    return None


def _workflow_spec(
    order: Order,
    atype: ArtifactType | ClusterArtifactType,
    type_name: str,
    src: Endpoint,
    dst: Endpoint,
    spec: Any,
) -> dict[str, Any]:
    src_secret = src.spec.secret_ref.name if src.spec.secret_ref else ""
    dst_secret = dst.spec.secret_ref.name if dst.spec.secret_ref else ""
    parameters = build_parameters(
        src_type=src.spec.type,
        src_remote_url=src.spec.remote_url,
        dst_type=dst.spec.type,
        dst_remote_url=dst.spec.remote_url,
        src_secret=bool(src_secret),
        dst_secret=bool(dst_secret),
        spec=spec,
        type_parameters=[
            *((p.name, p.value) for p in atype.spec.parameters or []),
            *verify_parameters(atype),
        ],
    )
    template = atype.spec.workflow_template_ref
    body: dict[str, Any] = {
        "type": type_name,
        "workflowTemplateRef": {
            "name": template.name if template else "",
            "clusterScope": bool(template.cluster_scope) if template else False,
        },
        "parameters": parameters,
        "srcSecretRef": {"name": src_secret},
        "dstSecretRef": {"name": dst_secret},
    }
    queue = order.spec.queue_name or atype.spec.queue_name
    if queue:
        body["queueName"] = queue
    if atype.spec.service_account_name:
        body["serviceAccountName"] = atype.spec.service_account_name
    return body
