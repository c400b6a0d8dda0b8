"""OrderReconciler: every artifact of an Order becomes one ArtifactWorkflow (SPEC §4.1) — the I/O half.

A reconcile reads, plans, writes (controller-runtime's shape):
1. Read the Order (gone → forget). Being deleted → delete the owned ArtifactWorkflows; once none is left
   (checked against the API, not just the cache), drop the finalizer `arc.opendefense.cloud/order`.
   Else ensure the finalizer.
2. Read what it refers to from the caches (`Inputs`), resolve it (`resolve.resolve_order`), read the
   ArtifactWorkflows that exist (`Children`), and plan (`plan.plan_order`, a pure function).
3. Write the plan: creates (AlreadyExists → adopt), adoptions and deletes concurrently (at most
   `parallel_writes` in flight), then the status through `/status` when it changed, then the Events.

Reads come from caches that may lag our own writes. ArtifactWorkflows are safe (create → AlreadyExists →
adopt; delete → NotFound). For the Order itself, whose status feeds the hash (`lastForceAt`), the reconciler
remembers the last object it wrote and prefers it over an older cached one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from opentelemetry import trace

from api.arc.v1alpha1.types import (
    API_VERSION,
    ArtifactType,
    ArtifactWorkflow,
    ClusterArtifactType,
    Endpoint,
    Order,
    OrderStatus,
)
from api.meta import dump
from controllers.controllerutil import (
    LABEL_ORDER,
    ORDER_FINALIZER,
    controller_ref,
    is_controlled_by,
    patch_finalizers,
    with_finalizer,
    without_finalizer,
)
from controllers.kube import AlreadyExistsError, ConflictError, KubeClient, NotFoundError
from controllers.kube.resources import ARTIFACT_WORKFLOWS, ORDERS
from controllers.order import schedule, schedulemetrics
from controllers.order.naming import label_value
from controllers.order.plan import Children, Create, Delete, Event, plan_order
from controllers.order.resolve import (
    ArtifactSchedule,
    Inputs,
    Resolved,
    SecretRecord,
    effective_refs,
    resolve_order,
)
from controllers.runtime import EventRecorder, Informer, Request, Result
from controllers.runtime.concurrency import gather_bounded
from controllers.runtime.written import LastWritten

__all__ = ["FINALIZER", "OrderReconciler"]

logger = logging.getLogger(__name__)

FINALIZER = ORDER_FINALIZER


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        argo_ui_base_url: str | None = None,
    ) -> None:
        """`workflow_finalizers`: put on every ArtifactWorkflow when it is created — the ArtifactWorkflow
        controller's finalizer when it runs in this manager, which saves it a PATCH per ArtifactWorkflow
        (as kube's Job controller creates its Pods with its tracking finalizer). Never set it when nothing
        will remove it: the Order's deletion waits for its ArtifactWorkflows to be gone.
        `argo_ui_base_url`: the Argo UI, linked from each artifact of the Order's status (`workflowURL`)."""
        self.client = client
        self.argo_ui_base_url = argo_ui_base_url
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
        self._warned: set[tuple[str, ...]] = set()
        self.clock = clock
        """The time scheduled Orders are evaluated at (tests give a virtual one)."""

    async def reconcile(self, request: Request) -> Result:
        order = self._written.fresher(
            request.namespace, request.name, self.orders.get(request.namespace, request.name)
        )
        if order is None:
            return Result()
        if order.metadata.deletion_timestamp:
            return await self._finalize(order)
        finalizers = with_finalizer(order.metadata, FINALIZER)
        if finalizers is not None:
            order = await self._patch_finalizers(order, finalizers)

        now = self.clock()
        decision = schedule.evaluate(order, self._owned(order), now)
        schedules = (
            {
                i: ArtifactSchedule(a.key, a.scheduled_time, a.awaiting, a.started)
                for i, a in decision.artifacts.items()
            }
            if decision is not None
            else None
        )
        resolved = resolve_order(order, self._inputs(order), schedules)
        self._warn_invalid(order, resolved)
        plan = plan_order(
            order,
            resolved,
            self._children(order, resolved),
            workflow_finalizers=self.workflow_finalizers,
            trace_id=_trace_id(),
            schedule=decision,
            argo_ui_base_url=self.argo_ui_base_url,
        )
        await gather_bounded(
            self.parallel_writes,
            [
                *(self._create(order, create) for create in plan.creates),
                *(self._adopt(order, aw) for aw in plan.adopts),
                *(self._delete(order, delete) for delete in plan.deletes),
            ],
        )
        if plan.status_changed:
            await self._write_status(order, plan.status)
        for event in plan.events:
            self.recorder.record(order, event.type, event.reason, event.message)
        for key, event in plan.once_events:
            self._record_once(order, key, event)
        schedulemetrics.observe(decision, now)
        return Result(requeue_after=plan.requeue_after)

    def _record_once(self, order: Order, key: tuple[str, ...], event: Event) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.recorder.record(order, event.type, event.reason, event.message)

    # --- reads ---------------------------------------------------------------------------------------

    def _inputs(self, order: Order) -> Inputs:
        ns = order.metadata.namespace or ""
        endpoints = {
            name: ep
            for name in {n for refs in effective_refs(order) for n in refs}
            if (ep := self.endpoints.get(ns, name)) is not None
        }
        secret_hashes = {
            ep.spec.secret_ref.name: record.data_hash
            for ep in endpoints.values()
            if ep.spec.secret_ref is not None
            and ep.spec.secret_ref.name
            and (record := self.secrets.get(ns, ep.spec.secret_ref.name)) is not None
        }
        types: dict[str, ArtifactType | ClusterArtifactType] = {}
        for artifact in order.spec.artifacts or []:
            atype = self.artifact_types.get(ns, artifact.type) or self.cluster_artifact_types.get(
                "", artifact.type
            )
            if atype is not None:
                types[artifact.type] = atype
        return Inputs(endpoints, secret_hashes, types)

    def _owned(self, order: Order) -> dict[str, ArtifactWorkflow]:
        return {
            aw.metadata.name or "": aw
            for aw in self.artifact_workflows.by_index("owner", order.metadata.uid or "")
        }

    def _children(self, order: Order, resolved: Resolved) -> Children:
        owned = self._owned(order)
        ns = order.metadata.namespace or ""
        named = {
            art.name: aw
            for art in resolved.artifacts
            if art.name not in owned and (aw := self.artifact_workflows.get(ns, art.name)) is not None
        }
        return Children(owned, named)

    def _warn_invalid(self, order: Order, resolved: Resolved) -> None:
        """One Warning event per unparsable annotation value (not one per reconcile)."""
        for annotation, value in resolved.invalid_annotations:
            key = (order.metadata.uid or "", annotation, value)
            if key in self._warned:
                continue
            self._warned.add(key)
            self.recorder.record(
                order,
                "Warning",
                "InvalidAnnotation",
                f"annotation {annotation}={value!r} is neither an RFC 3339 time nor unix seconds, ignored",
            )

    # --- writes --------------------------------------------------------------------------------------

    async def _create(self, order: Order, create: Create) -> None:
        try:
            await self.client.create(ARTIFACT_WORKFLOWS, order.metadata.namespace, create.body)
        except AlreadyExistsError:
            # Our cache is behind: it exists. Adopt it if nobody controls it; mirror it next time.
            existing = ArtifactWorkflow.model_validate(
                await self.client.get(ARTIFACT_WORKFLOWS, order.metadata.namespace, create.name)
            )
            if not any(r.controller for r in existing.metadata.owner_references or []):
                await self._adopt(order, existing)
            return
        logger.info(
            "artifact workflow created",
            extra={"artifact_workflow": create.name, "artifact_index": create.index},
        )
        self.recorder.record(
            order,
            "Normal",
            "ArtifactWorkflowCreated",
            f"{'Recreated' if create.recreated else 'Created'} ArtifactWorkflow {create.name}"
            f" for artifact #{create.index} ({create.type_name})",
        )

    async def _adopt(self, order: Order, aw: ArtifactWorkflow) -> None:
        refs = [dump(r) for r in aw.metadata.owner_references or []]
        refs.append(controller_ref(order, api_version=API_VERSION, kind="Order"))
        await self.client.patch(
            ARTIFACT_WORKFLOWS,
            aw.metadata.namespace,
            aw.metadata.name or "",
            {"metadata": {"ownerReferences": refs, "resourceVersion": aw.metadata.resource_version}},
        )
        logger.info("artifact workflow adopted", extra={"artifact_workflow": aw.metadata.name})

    async def _delete(self, order: Order, delete: Delete) -> None:
        try:
            await self.client.delete(
                ARTIFACT_WORKFLOWS,
                order.metadata.namespace,
                delete.name,
                uid=delete.uid,
                propagation_policy="Background",
            )
        except NotFoundError:
            return
        except ConflictError:
            return  # a different object of that name now: not ours to delete
        logger.info("artifact workflow deleted", extra={"artifact_workflow": delete.name, "why": delete.why})
        self.recorder.record(
            order,
            "Normal",
            "ArtifactWorkflowDeleted",
            f"Deleted ArtifactWorkflow {delete.name}: {delete.why}",
        )

    async def _write_status(self, order: Order, status: OrderStatus) -> None:
        body = dump(order)
        body["status"] = dump(status)
        updated = await self.client.replace(
            ORDERS, order.metadata.namespace, order.metadata.name or "", body, subresource="status"
        )
        self._written.remember(Order.model_validate(updated))

    async def _patch_finalizers(self, order: Order, finalizers: list[str]) -> Order:
        new = await patch_finalizers(self.client, ORDERS, order, finalizers, Order.model_validate)
        self._written.remember(new)
        return new

    # --- deletion ------------------------------------------------------------------------------------

    async def _finalize(self, order: Order) -> Result:
        finalizers = without_finalizer(order.metadata, FINALIZER)
        if finalizers is None:
            return Result()
        listed = await self.client.list(
            ARTIFACT_WORKFLOWS,
            order.metadata.namespace or "",
            label_selector=f"{LABEL_ORDER}={label_value(order.metadata.name or '')}",
        )
        remaining = {
            meta["name"]: (meta.get("uid"), bool(meta.get("deletionTimestamp")))
            for meta in ((aw.get("metadata") or {}) for aw in listed.get("items") or [])
            if is_controlled_by(meta.get("ownerReferences"), order.metadata.uid)
        }
        for name, aw in self._owned(order).items():
            if name not in remaining and aw.metadata.deletion_timestamp is None:
                remaining[name] = (aw.metadata.uid, False)
        if not remaining:
            await self._patch_finalizers(order, finalizers)
            logger.info("order finalized")
            return Result()
        why = "the Order is being deleted"
        await gather_bounded(
            self.parallel_writes,
            [
                self._delete(order, Delete(name, uid, why))
                for name, (uid, deleting) in remaining.items()
                if not deleting
            ],
        )
        return Result()


def _trace_id() -> str | None:
    """The current span's trace id, recorded on the ArtifactWorkflows this reconcile creates (SPEC §5)."""
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None
