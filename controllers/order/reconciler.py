"""OrderReconciler: every artifact of an Order becomes one ArtifactWorkflow (SPEC §4.1).

One reconcile, level-based, reading the Order and its inputs from the informer caches:
1. Gone → forget. Being deleted → delete the owned ArtifactWorkflows; once none is left (checked against
   the API, not just the cache), drop the finalizer `arc.opendefense.cloud/order`. Else ensure the finalizer.
2. Annotations: `force-at` newer than `status.lastForceAt` sets it (it is part of every hash, so every
   artifact gets a new ArtifactWorkflow); `retry-failed-at` newer than `status.lastRetryAt` deletes the
   Failed/Error artifacts' ArtifactWorkflows and marks them Pending, so they are recreated under the same
   names once gone. Unparsable → one Warning event `InvalidAnnotation` per value.
3. Per artifact: hash and name (even when it cannot start), then
   - its ArtifactWorkflow exists → mirror its phase (adopt it if it has no controller);
   - it is gone and the artifact had finished by running → keep the result (an Order is a job);
   - otherwise resolve Endpoints, Secrets and the type; a failure marks only this artifact Failed with
     SPEC's message, the rest create (or recreate) their ArtifactWorkflow (AlreadyExists → adopt).
4. Owned ArtifactWorkflows whose hash is no longer desired are deleted (an Endpoint edit, a rotated
   Secret, a removed artifact, force-at).
5. Status (entries, progress, phase, Ready, message, observedGeneration) through `/status`, only when it
   changed; Events for the user-visible transitions (`Rerun` for force-at, retry-failed-at and for
   artifacts re-run because an Endpoint or Secret they use changed).

Reads come from caches that may lag our own writes. ArtifactWorkflows are safe (create → AlreadyExists →
adopt; delete → NotFound). For the Order itself, whose status feeds the hash (`lastForceAt`), the reconciler
remembers the last object it wrote and prefers it over an older cached one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from opentelemetry import trace

from api.arc.v1alpha1.types import (
    API_VERSION,
    USAGE_PULL_ONLY,
    USAGE_PUSH_ONLY,
    ArtifactType,
    ArtifactWorkflow,
    ClusterArtifactType,
    Endpoint,
    Order,
    OrderArtifact,
    OrderArtifactWorkflowStatus,
    OrderStatus,
)
from api.meta import dump
from api.resources import parse_rfc3339
from controllers.artifactworkflow.workflow import (
    ANNOTATION_ARTIFACT_INDEX,
    ANNOTATION_DST_ENDPOINT,
    ANNOTATION_SRC_ENDPOINT,
)
from controllers.kube import AlreadyExistsError, ConflictError, KubeClient, NotFoundError
from controllers.kube.resources import ARTIFACT_WORKFLOWS, ORDERS
from controllers.order.naming import artifact_hash, label_value, workflow_name
from controllers.order.parameters import build_parameters
from controllers.order.status import FAILED, FINISHED, set_condition, summarize
from controllers.runtime import EventRecorder, Informer, Request, Result
from controllers.runtime.written import LastWritten

__all__ = [
    "ANNOTATION_FORCE_AT",
    "ANNOTATION_ORDER_NAME",
    "ANNOTATION_RETRY_FAILED_AT",
    "FINALIZER",
    "LABEL_ARTIFACT_TYPE",
    "LABEL_ORDER",
    "OrderReconciler",
    "SecretRecord",
    "parse_annotation_time",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

FINALIZER: Final = "arc.opendefense.cloud/order"
LABEL_ORDER: Final = "arc.opendefense.cloud/order"
LABEL_ARTIFACT_TYPE: Final = "arc.opendefense.cloud/artifact-type"
ANNOTATION_ORDER_NAME: Final = "arc.opendefense.cloud/order-name"
ANNOTATION_FORCE_AT: Final = "arc.opendefense.cloud/force-at"
ANNOTATION_RETRY_FAILED_AT: Final = "arc.opendefense.cloud/retry-failed-at"
ANNOTATION_TRACE_ID: Final = "arc.opendefense.cloud/trace-id"

_START_FAILURE = re.compile(r'^(endpoint|secret|artifact type|endpoint type) "')
"""Messages of artifacts that could not start (SPEC §4.1); such an artifact is retried by itself."""


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """What the Order controller keeps of a Secret: who it is and the hash of its data."""

    namespace: str
    name: str
    data_hash: str


@dataclass(slots=True)
class _Artifact:
    index: int
    artifact: OrderArtifact
    hash: str
    name: str
    error: str | None = None
    body: dict[str, Any] | None = None
    type_name: str = ""
    src_name: str = ""
    dst_name: str = ""


@dataclass(slots=True)
class _Plan:
    entries: dict[str, OrderArtifactWorkflowStatus] = field(default_factory=dict)
    requeue_after: float = 0.0


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


def format_time(ts: datetime) -> str:
    if ts.microsecond:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


class OrderReconciler:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        *,
        orders: Informer[Order],
        artifact_workflows: Informer[ArtifactWorkflow],
        endpoints: Informer[Endpoint],
        secrets: Informer[SecretRecord],
        artifact_types: Informer[ArtifactType],
        cluster_artifact_types: Informer[ClusterArtifactType],
        parallel_writes: int = 8,
        workflow_finalizers: Sequence[str] = (),
    ) -> None:
        """`workflow_finalizers`: put on every ArtifactWorkflow when it is created — the ArtifactWorkflow
        controller's finalizer when it runs in this manager, which saves it a PATCH per ArtifactWorkflow
        (as kube's Job controller creates its Pods with its tracking finalizer). Never set it when nothing
        will remove it: the Order's deletion waits for its ArtifactWorkflows to be gone."""
        self.client = client
        self.workflow_finalizers = list(workflow_finalizers)
        self.parallel_writes = parallel_writes
        self.recorder = recorder
        self.orders = orders
        self.artifact_workflows = artifact_workflows
        self.endpoints = endpoints
        self.secrets = secrets
        self.artifact_types = artifact_types
        self.cluster_artifact_types = cluster_artifact_types
        self._written: LastWritten[Order] = LastWritten()
        self._warned: set[tuple[str, str, str]] = set()

    # --- entry point ---------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        order = self._written.fresher(
            request.namespace, request.name, self.orders.get(request.namespace, request.name)
        )
        if order is None:
            return Result()

        if order.metadata.deletion_timestamp:
            return await self._finalize(order)
        if FINALIZER not in (order.metadata.finalizers or []):
            order = await self._patch_finalizers(order, [*(order.metadata.finalizers or []), FINALIZER])
        return await self._reconcile(order)

    # --- deletion ------------------------------------------------------------------------------------

    def _owned(self, order: Order) -> dict[str, ArtifactWorkflow]:
        return {
            aw.metadata.name or "": aw
            for aw in self.artifact_workflows.by_index("owner", order.metadata.uid or "")
        }

    async def _finalize(self, order: Order) -> Result:
        if FINALIZER not in (order.metadata.finalizers or []):
            return Result()
        ns = order.metadata.namespace or ""
        listed = await self.client.list(
            ARTIFACT_WORKFLOWS, ns, label_selector=f"{LABEL_ORDER}={label_value(order.metadata.name or '')}"
        )
        remaining = [
            aw
            for aw in listed.get("items") or []
            if any(
                ref.get("uid") == order.metadata.uid and ref.get("controller")
                for ref in (aw.get("metadata") or {}).get("ownerReferences") or []
            )
        ]
        remaining_names = {aw["metadata"]["name"] for aw in remaining}
        for aw in self._owned(order).values():
            if aw.metadata.name not in remaining_names and aw.metadata.deletion_timestamp is None:
                remaining.append(dump(aw))
        if not remaining:
            await self._patch_finalizers(
                order, [f for f in order.metadata.finalizers or [] if f != FINALIZER]
            )
            logger.info("order finalized")
            return Result()
        await self._all(
            [
                self._delete_workflow(order, meta["name"], meta.get("uid"), "the Order is being deleted")
                for meta in (aw.get("metadata") or {} for aw in remaining)
                if not meta.get("deletionTimestamp")
            ]
        )
        return Result()

    async def _patch_finalizers(self, order: Order, finalizers: list[str]) -> Order:
        patched = await self.client.patch(
            ORDERS,
            order.metadata.namespace,
            order.metadata.name or "",
            {
                "metadata": {
                    "finalizers": finalizers or None,
                    "resourceVersion": order.metadata.resource_version,
                }
            },
        )
        new = Order.model_validate(patched)
        self._written.remember(new)
        return new

    async def _delete_workflow(self, order: Order, name: str, uid: str | None, why: str) -> None:
        try:
            await self.client.delete(
                ARTIFACT_WORKFLOWS, order.metadata.namespace, name, uid=uid, propagation_policy="Background"
            )
        except NotFoundError:
            return
        except ConflictError:
            return  # a different object of that name now: not ours to delete
        logger.info("artifact workflow deleted", extra={"artifact_workflow": name, "why": why})
        self.recorder.record(
            order, "Normal", "ArtifactWorkflowDeleted", f"Deleted ArtifactWorkflow {name}: {why}"
        )

    # --- annotations ---------------------------------------------------------------------------------

    def _annotation_time(self, order: Order, annotation: str) -> datetime | None:
        value = (order.metadata.annotations or {}).get(annotation)
        if value is None:
            return None
        ts = parse_annotation_time(value)
        if ts is None:
            warn_key = (order.metadata.uid or "", annotation, value)
            if warn_key not in self._warned:
                self._warned.add(warn_key)
                self.recorder.record(
                    order,
                    "Warning",
                    "InvalidAnnotation",
                    f"annotation {annotation}={value!r} is neither an RFC 3339 time nor unix seconds, "
                    "ignored",
                )
        return ts

    async def _all(self, writes: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
        """Run one reconcile's writes concurrently, at most `parallel_writes` in flight, results in order.

        Writes of different ArtifactWorkflows are independent, and an Order's reconcile used to spend most
        of its time waiting on them one after the other. Every write runs to its end; then the first
        failure is raised as itself (not as an ExceptionGroup), so the controller's switch sees a
        ConflictError as a conflict, and the retry finds the others' effects in place.
        """
        if len(writes) <= 1:
            return [await w for w in writes]
        limit = asyncio.Semaphore(self.parallel_writes)

        async def bounded(write: Coroutine[Any, Any, T]) -> T:
            async with limit:
                return await write

        results = await asyncio.gather(*(bounded(w) for w in writes), return_exceptions=True)
        out: list[T] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            out.append(result)
        return out

    # --- the main path -------------------------------------------------------------------------------

    async def _reconcile(self, order: Order) -> Result:
        old_status = order.status.model_copy(deep=True) if order.status is not None else OrderStatus()
        status = old_status.model_copy(deep=True)
        previous = dict(status.artifact_workflows or {})

        force_at = self._annotation_time(order, ANNOTATION_FORCE_AT)
        last_force = parse_rfc3339(status.last_force_at) if status.last_force_at else None
        forcing = force_at is not None and (last_force is None or force_at > last_force)
        if force_at is not None and forcing:
            status.last_force_at = format_time(force_at)
            self.recorder.record(
                order, "Normal", "Rerun", f"force-at {status.last_force_at}: re-running every artifact"
            )

        retry_at = self._annotation_time(order, ANNOTATION_RETRY_FAILED_AT)
        last_retry = parse_rfc3339(status.last_retry_at) if status.last_retry_at else None
        retrying = retry_at is not None and (last_retry is None or retry_at > last_retry)

        artifacts = self._desired(order, status.last_force_at)
        owned = self._owned(order)
        plan = _Plan()
        desired_names = set()
        reruns = self._input_reruns(order, old_status, artifacts, forcing=forcing)
        work: dict[str, Coroutine[Any, Any, OrderArtifactWorkflowStatus]] = {}
        for art in artifacts:
            if art.hash in work:
                continue  # identical artifacts (rejected by validation) share one workflow
            desired_names.add(art.name)
            work[art.hash] = self._artifact(order, art, previous.get(art.hash), owned, retrying, plan)
        plan.entries = dict(zip(work, await self._all(list(work.values())), strict=True))

        if retrying and retry_at is not None:
            status.last_retry_at = format_time(retry_at)
            self.recorder.record(
                order,
                "Normal",
                "Rerun",
                f"retry-failed-at {status.last_retry_at}: re-running failed artifacts",
            )

        await self._all(
            [
                self._delete_workflow(order, name, aw.metadata.uid, "no longer desired by the Order")
                for name, aw in owned.items()
                if name not in desired_names and aw.metadata.deletion_timestamp is None
            ]
        )

        await self._write_status(order, old_status, status, plan.entries, previous)
        if reruns:
            self.recorder.record(
                order,
                "Normal",
                "Rerun",
                f"Endpoint or Secret changed: re-running {len(reruns)} artifact"
                f"{'s' if len(reruns) > 1 else ''}: " + ", ".join(reruns),
            )
        return Result(requeue_after=plan.requeue_after)

    @staticmethod
    def _input_reruns(
        order: Order, old: OrderStatus, artifacts: list[_Artifact], *, forcing: bool
    ) -> list[str]:
        """The artifacts re-run because an Endpoint's spec or a Secret's data changed (for the `Rerun` event).

        With the Order's spec unchanged since the last status (observedGeneration == generation) and no
        force-at, an artifact's hash moves only when the generation of one of its Endpoints or the data of
        one of their Secrets changed. An artifact that could not start before (missing Endpoint, rule
        violation, ...) and now can is a first start, not a re-run; one that cannot start now is reported
        by `ArtifactFailed` instead.
        """
        if forcing or old.observed_generation != order.metadata.generation:
            return []
        before = {e.artifact_index: (h, e) for h, e in (old.artifact_workflows or {}).items()}
        desired = {a.hash for a in artifacts}
        out = []
        for art in artifacts:
            prior = before.get(art.index)
            if prior is None or prior[0] == art.hash or prior[0] in desired or art.error is not None:
                continue
            entry = prior[1]
            if entry.phase in FAILED and _START_FAILURE.match(entry.message or ""):
                continue
            out.append(f"#{art.index} ({art.name} replaces {entry.name})")
        return out

    def _desired(self, order: Order, last_force_at: str | None) -> list[_Artifact]:
        ns = order.metadata.namespace or ""
        defaults = order.spec.defaults
        out = []
        for i, artifact in enumerate(order.spec.artifacts or []):
            src_name = (artifact.src_ref.name if artifact.src_ref else "") or (
                defaults.src_ref.name if defaults and defaults.src_ref else ""
            )
            dst_name = (artifact.dst_ref.name if artifact.dst_ref else "") or (
                defaults.dst_ref.name if defaults and defaults.dst_ref else ""
            )
            spec = artifact.spec if artifact.spec is not None else {}
            src = self.endpoints.get(ns, src_name)
            dst = self.endpoints.get(ns, dst_name)
            h = artifact_hash(
                namespace=ns,
                type=artifact.type,
                spec=spec,
                src_name=src_name,
                src_generation=src.metadata.generation if src else None,
                dst_name=dst_name,
                dst_generation=dst.metadata.generation if dst else None,
                src_secret_hash=self._secret_hash(ns, src),
                dst_secret_hash=self._secret_hash(ns, dst),
                last_force_at=last_force_at,
            )
            art = _Artifact(
                index=i,
                artifact=artifact,
                hash=h,
                name=workflow_name(order.metadata.name or "", h),
                type_name=artifact.type,
                src_name=src_name,
                dst_name=dst_name,
            )
            self._resolve(order, art, src_name, src, dst_name, dst, spec)
            out.append(art)
        return out

    def _secret_hash(self, ns: str, endpoint: Endpoint | None) -> str | None:
        if endpoint is None or endpoint.spec.secret_ref is None or not endpoint.spec.secret_ref.name:
            return ""
        record = self.secrets.get(ns, endpoint.spec.secret_ref.name)
        return record.data_hash if record is not None else None

    def _resolve(
        self,
        order: Order,
        art: _Artifact,
        src_name: str,
        src: Endpoint | None,
        dst_name: str,
        dst: Endpoint | None,
        spec: Any,
    ) -> None:
        ns = order.metadata.namespace or ""
        type_name = art.artifact.type
        if src is None:
            art.error = f'endpoint "{src_name}" not found'
            return
        if dst is None:
            art.error = f'endpoint "{dst_name}" not found'
            return
        atype: ArtifactType | ClusterArtifactType | None = self.artifact_types.get(ns, type_name)
        if atype is None:
            atype = self.cluster_artifact_types.get("", type_name)
        if atype is None:
            art.error = f'artifact type "{type_name}" not found'
            return
        if (src.spec.usage or "All") == USAGE_PUSH_ONLY:
            art.error = f'endpoint "{src_name}" has usage PushOnly and cannot be a source'
            return
        if (dst.spec.usage or "All") == USAGE_PULL_ONLY:
            art.error = f'endpoint "{dst_name}" has usage PullOnly and cannot be a destination'
            return
        rules = atype.spec.rules
        if rules is not None and rules.src_types and src.spec.type not in rules.src_types:
            art.error = (
                f'endpoint type "{src.spec.type}" is not allowed as source by artifact type "{type_name}"'
            )
            return
        if rules is not None and rules.dst_types and dst.spec.type not in rules.dst_types:
            allowed = f'is not allowed as destination by artifact type "{type_name}"'
            art.error = f'endpoint type "{dst.spec.type}" {allowed}'
            return
        src_secret = src.spec.secret_ref.name if src.spec.secret_ref else ""
        dst_secret = dst.spec.secret_ref.name if dst.spec.secret_ref else ""
        for secret in (src_secret, dst_secret):
            if secret and self.secrets.get(ns, secret) is None:
                art.error = f'secret "{secret}" not found'
                return
        parameters = build_parameters(
            src_type=src.spec.type,
            src_remote_url=src.spec.remote_url,
            dst_type=dst.spec.type,
            dst_remote_url=dst.spec.remote_url,
            src_secret=bool(src_secret),
            dst_secret=bool(dst_secret),
            spec=spec,
            type_parameters=[(p.name, p.value) for p in atype.spec.parameters or []],
        )
        template = atype.spec.workflow_template_ref
        spec_body: dict[str, Any] = {
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
            spec_body["queueName"] = queue
        if atype.spec.service_account_name:
            spec_body["serviceAccountName"] = atype.spec.service_account_name
        art.body = self._workflow_body(order, art, spec_body)

    def _workflow_body(self, order: Order, art: _Artifact, spec: dict[str, Any]) -> dict[str, Any]:
        order_name = order.metadata.name or ""
        annotations: dict[str, str] = {
            ANNOTATION_ARTIFACT_INDEX: str(art.index),
            ANNOTATION_SRC_ENDPOINT: art.src_name,
            ANNOTATION_DST_ENDPOINT: art.dst_name,
        }
        if label_value(order_name) != order_name:
            annotations[ANNOTATION_ORDER_NAME] = order_name
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            annotations[ANNOTATION_TRACE_ID] = f"{ctx.trace_id:032x}"
        meta: dict[str, Any] = {
            "name": art.name,
            "namespace": order.metadata.namespace,
            "labels": {LABEL_ORDER: label_value(order_name), LABEL_ARTIFACT_TYPE: label_value(art.type_name)},
            "ownerReferences": [self._owner_ref(order)],
            "annotations": annotations,
        }
        if self.workflow_finalizers:
            meta["finalizers"] = list(self.workflow_finalizers)
        return {"apiVersion": API_VERSION, "kind": "ArtifactWorkflow", "metadata": meta, "spec": spec}

    @staticmethod
    def _owner_ref(order: Order) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "Order",
            "name": order.metadata.name,
            "uid": order.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    async def _artifact(
        self,
        order: Order,
        art: _Artifact,
        prev: OrderArtifactWorkflowStatus | None,
        owned: dict[str, ArtifactWorkflow],
        retrying: bool,
        plan: _Plan,
    ) -> OrderArtifactWorkflowStatus:
        entry = OrderArtifactWorkflowStatus(artifact_index=art.index, name=art.name, phase="Pending")
        ns = order.metadata.namespace or ""
        aw = owned.get(art.name) or self.artifact_workflows.get(ns, art.name)
        prev_finished = prev is not None and prev.phase in FINISHED
        prev_start_failure = (
            prev is not None and prev.phase in FAILED and bool(_START_FAILURE.match(prev.message or ""))
        )

        if retrying and prev is not None and prev.phase in FAILED and not prev_start_failure:
            entry.message = "retrying"
            if aw is not None and aw.metadata.deletion_timestamp is None:
                await self._delete_workflow(order, art.name, aw.metadata.uid, "retrying the failed artifact")
            return entry

        if aw is not None:
            controller = next((r for r in aw.metadata.owner_references or [] if r.controller), None)
            if controller is not None and controller.uid != order.metadata.uid:
                entry.message = f"waiting for ArtifactWorkflow {art.name} of another owner to go away"
                plan.requeue_after = max(plan.requeue_after, 5.0)
                return entry
            if aw.metadata.deletion_timestamp is not None:
                if prev is not None and prev_finished:
                    return prev.model_copy(update={"artifact_index": art.index})
                entry.message = "waiting for the previous ArtifactWorkflow to be deleted"
                return entry
            if controller is None:
                await self._adopt(order, aw)
            phase = aw.status.phase if aw.status is not None and aw.status.phase else "Pending"
            entry.phase = phase
            entry.message = aw.status.message if aw.status is not None else None
            return entry

        if prev is not None and prev_finished and not prev_start_failure:
            return prev.model_copy(update={"artifact_index": art.index, "name": art.name})

        if art.error is not None:
            entry.phase = "Failed"
            entry.message = art.error
            return entry
        assert art.body is not None
        await self._create(order, art, recreated=prev is not None and not prev_start_failure)
        return entry

    async def _adopt(self, order: Order, aw: ArtifactWorkflow) -> None:
        refs = [dump(r) for r in aw.metadata.owner_references or []]
        refs.append(self._owner_ref(order))
        await self.client.patch(
            ARTIFACT_WORKFLOWS,
            aw.metadata.namespace,
            aw.metadata.name or "",
            {"metadata": {"ownerReferences": refs, "resourceVersion": aw.metadata.resource_version}},
        )
        logger.info("artifact workflow adopted", extra={"artifact_workflow": aw.metadata.name})

    async def _create(self, order: Order, art: _Artifact, *, recreated: bool) -> None:
        assert art.body is not None
        try:
            await self.client.create(ARTIFACT_WORKFLOWS, order.metadata.namespace, art.body)
        except AlreadyExistsError:
            # Our cache is behind: it exists. Adopt it if nobody controls it; mirror it next time.
            existing = ArtifactWorkflow.model_validate(
                await self.client.get(ARTIFACT_WORKFLOWS, order.metadata.namespace, art.name)
            )
            if not any(r.controller for r in existing.metadata.owner_references or []):
                await self._adopt(order, existing)
            return
        verb = "Recreated" if recreated else "Created"
        logger.info(
            "artifact workflow created", extra={"artifact_workflow": art.name, "artifact_index": art.index}
        )
        self.recorder.record(
            order,
            "Normal",
            "ArtifactWorkflowCreated",
            f"{verb} ArtifactWorkflow {art.name} for artifact #{art.index} ({art.type_name})",
        )

    # --- status --------------------------------------------------------------------------------------

    async def _write_status(
        self,
        order: Order,
        old: OrderStatus,
        status: OrderStatus,
        entries: dict[str, OrderArtifactWorkflowStatus],
        previous: dict[str, OrderArtifactWorkflowStatus],
    ) -> None:
        summary = summarize(entries, order.metadata.generation)
        status.artifact_workflows = entries
        status.progress = summary.progress
        status.phase = summary.phase
        status.message = summary.ready.message
        status.observed_generation = order.metadata.generation
        status.conditions = set_condition(status.conditions, summary.ready)
        if dump(status) == dump(old):
            return
        body = dump(order)
        body["status"] = dump(status)
        updated = await self.client.replace(
            ORDERS, order.metadata.namespace, order.metadata.name or "", body, subresource="status"
        )
        self._written.remember(Order.model_validate(updated))
        for h, entry in entries.items():
            before = previous.get(h)
            if entry.phase in FAILED and (
                before is None or before.phase != entry.phase or before.message != entry.message
            ):
                self.recorder.record(
                    order,
                    "Warning",
                    "ArtifactFailed",
                    f"artifact #{entry.artifact_index} ({entry.name}) failed: {entry.message or entry.phase}",
                )
        if summary.phase == "Succeeded" and old.phase != "Succeeded":
            self.recorder.record(order, "Normal", "Succeeded", summary.ready.message)
