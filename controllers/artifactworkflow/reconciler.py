"""ArtifactWorkflowReconciler: make the Argo Workflow match the ArtifactWorkflow, mirror its status back.

Level-based (a second reconcile in a row writes nothing):
1. Deleting: delete the Workflow (uid precondition), wait until it is gone, then remove the finalizer
   ``arc.opendefense.cloud/artifact-workflow`` — the ArtifactWorkflow outlives its Workflow.
2. Otherwise ensure the finalizer (the Order controller usually created it with it on), then the Workflow:
   create it when missing and the ArtifactWorkflow is not finished (``WorkflowCreated``;
   ``WorkflowRecreated`` when someone deleted it), adopt one that exists. Its title and description come from
   the annotations the Order controller put on the ArtifactWorkflow (or the Order's status), so there is no
   waiting for the Order's status.
3. Mirror phase, message (the failed step), start/finish times, a ``Ready`` condition and the steps'
   evidence (``status.provenance``, from the Workflow's output parameters — see provenance.py) through
   ``/status`` when they change; ``WorkflowSucceeded``/``WorkflowFailed`` Events on the transition, and a
   ``Transferred`` Event (``<src>@<digest> → <dst>@<digest>, signature verified by <key>``) when it succeeds
   with evidence.
4. Finished ArtifactWorkflows are deleted after their type's TTL (``spec.ttl.afterSucceeded/afterFailed``).
5. A failure explains itself (`failurelog.py`): the failed step's message ends with the last lines of its
   container log (``pods/log``, masked), read once when the phase turns Failed or Error.
6. Waiting explains itself (`admission.py`): a queue whose LocalQueue does not exist is reported before the
   Workflow is created (a ``LocalQueueNotFound`` Event; the Workflow is created all the same and runs once the
   queue exists), and while a step's pod is pending its Workload's reason is the message, re-checked every
   ``ADMISSION_POLL`` seconds.

The objects this reconciler wrote are preferred over older cached copies (`LastWritten`): the reconcile its
own status write triggers would otherwise compare with the stale copy and write again, into a 409.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry import trace
from prometheus_client import Counter

from api.arc.v1alpha1.types import ArtifactType, ArtifactWorkflow, ClusterArtifactType, Order
from api.duration import parse_duration
from api.meta import Condition, dump
from api.resources import parse_rfc3339
from controllers.artifactworkflow.admission import (
    ADMISSION_POLL,
    admission_message,
    has_pending_pods,
    missing_queue_message,
)
from controllers.artifactworkflow.failurelog import (
    LIMIT_BYTES,
    pod_name,
    secret_values,
    tail_message,
)
from controllers.artifactworkflow.metrics import record_completion
from controllers.artifactworkflow.provenance import event_message, provenance_from_workflow
from controllers.artifactworkflow.workflow import (
    FINISHED,
    build_workflow,
    failed_node,
    origin,
    workflow_state,
)
from controllers.controllerutil import (
    ARTIFACT_WORKFLOW_FINALIZER,
    READY,
    is_controlled_by,
    patch_finalizers,
    stamp_transition,
    with_finalizer,
    without_finalizer,
)
from controllers.kube.client import KubeClient
from controllers.kube.errors import AlreadyExistsError, ConflictError, KubeError, NotFoundError
from controllers.kube.resources import ARTIFACT_WORKFLOWS, LOCAL_QUEUES, SECRETS, WORKFLOWS, WORKLOADS
from controllers.runtime import Informer, Request, Result
from controllers.runtime.events import EventRecorder
from controllers.runtime.written import LastWritten

logger = logging.getLogger(__name__)

FINALIZER: Final = ARTIFACT_WORKFLOW_FINALIZER
#: Transfers that finished with evidence, by whether a signature was verified before the copy.
TRANSFERRED = Counter(
    "arc_artifacts_transferred_total",
    "Artifacts copied with recorded evidence (status.provenance), by signature verification.",
    ["signature"],
)
WAIT_FOR_DELETION: Final = 2.0


class ArtifactWorkflowReconciler:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        *,
        artifact_workflows: Informer[ArtifactWorkflow],
        workflows: Informer[dict[str, Any]],
        orders: Informer[Order],
        artifact_types: Informer[ArtifactType],
        cluster_artifact_types: Informer[ClusterArtifactType],
        log_lines: int = 0,
    ) -> None:
        """`log_lines`: how many of the failed step's last log lines end its failure message (0: none)."""
        self.client = client
        self.log_lines = log_lines
        self.recorder = recorder
        self.artifact_workflows = artifact_workflows
        self.workflows = workflows
        self.orders = orders
        self.artifact_types = artifact_types
        self.cluster_artifact_types = cluster_artifact_types
        self._written: LastWritten[ArtifactWorkflow] = LastWritten()

    async def reconcile(self, request: Request) -> Result:
        aw = self._written.fresher(
            request.namespace, request.name, self.artifact_workflows.get(request.namespace, request.name)
        )
        if aw is None:
            return Result()
        if aw.metadata.deletion_timestamp:
            return await self._finalize(aw)
        finalizers = with_finalizer(aw.metadata, FINALIZER)
        if finalizers is not None:
            aw = await self._patch_finalizers(aw, finalizers)
        workflow = self.workflows.get(request.namespace, request.name)
        if workflow is not None and not self._owned_by(workflow, aw):
            logger.warning("workflow not owned by this artifact workflow", extra={"workflow": request.name})
            workflow = None
            return await self._write_status(
                aw, "Error", "a Workflow of the same name exists and is not ours", None
            )
        phase = aw.status.phase if aw.status else None
        if workflow is None:
            if phase in FINISHED:
                return await self._expire(aw)
            missing = await self._missing_queue(aw)
            if missing is not None:  # caught before the Workflow exists; it is created all the same
                self.recorder.record(aw, "Warning", "LocalQueueNotFound", missing)
            workflow = await self._create_workflow(aw)
        state = workflow_state(workflow)
        message, poll = state.message, 0.0
        if state.phase in ("Failed", "Error"):
            message = await self._failure_message(aw, workflow, state.phase, state.message)
        if state.phase in ("Pending", "Running") and aw.spec.queue_name and has_pending_pods(workflow):
            waiting = await self._admission(aw)
            if waiting is not None:
                message, poll = waiting, ADMISSION_POLL
        await self._write_status(
            aw, state.phase, message, workflow, started=state.started_at, finished=state.finished_at
        )
        if state.phase in FINISHED:
            return await self._expire(aw)
        return Result(requeue_after=poll)

    # --- Workflow --------------------------------------------------------------------------------------

    @staticmethod
    def _owned_by(workflow: dict[str, Any], aw: ArtifactWorkflow) -> bool:
        return is_controlled_by((workflow.get("metadata") or {}).get("ownerReferences"), aw.metadata.uid)

    def _order(self, aw: ArtifactWorkflow) -> Order | None:
        for ref in aw.metadata.owner_references or []:
            if ref.controller and ref.kind == "Order":
                return self.orders.get(aw.metadata.namespace or "", ref.name)
        return None

    async def _create_workflow(self, aw: ArtifactWorkflow) -> dict[str, Any]:
        ns, name = aw.metadata.namespace or "", aw.metadata.name or ""
        order = self._order(aw)
        ctx = trace.get_current_span().get_span_context()
        trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else None
        body = build_workflow(aw, origin(aw, order), trace_id=trace_id)
        recreated = bool(aw.status and aw.status.workflow_name)
        try:
            created: dict[str, Any] = await self.client.create(WORKFLOWS, ns, body)
        except AlreadyExistsError:
            existing: dict[str, Any] = await self.client.get(WORKFLOWS, ns, name)
            if not self._owned_by(existing, aw):
                raise
            return existing
        reason = "WorkflowRecreated" if recreated else "WorkflowCreated"
        self.recorder.record(
            aw, "Normal", reason, f"{'Recreated' if recreated else 'Created'} Workflow {name}"
        )
        logger.info("workflow created", extra={"workflow": name, "recreated": recreated})
        return created

    # --- failures ---------------------------------------------------------------------------------------

    async def _failure_message(
        self, aw: ArtifactWorkflow, workflow: dict[str, Any], phase: str, message: str
    ) -> str:
        """The failed step's message with its log's last lines, read once when the phase turns Failed or
        Error (later reconciles keep the message written then)."""
        old = aw.status
        if old is not None and old.phase == phase:
            return old.message if old.message and old.message.startswith(message) else message
        node = failed_node(workflow.get("status") or {})
        if node is None or self.log_lines <= 0:
            return message
        ns = aw.metadata.namespace or ""
        try:
            log = await self.client.logs(
                ns,
                pod_name(workflow, node),
                container="main",
                tail_lines=self.log_lines,
                limit_bytes=LIMIT_BYTES,
            )
        except KubeError as exc:  # the pod is gone, its node unreachable: the step's name must do
            logger.info("no log of the failed step", extra={"error": str(exc)})
            return message
        secrets: set[str] = set()
        for ref in (aw.spec.src_secret_ref, aw.spec.dst_secret_ref):
            if ref is None or not ref.name:
                continue
            try:
                secret: dict[str, Any] = await self.client.get(SECRETS, ns, ref.name)
            except KubeError:
                return message  # what cannot be masked is not shown
            secrets |= secret_values(secret.get("data"))
        return tail_message(message, log, secrets, lines=self.log_lines)

    # --- Kueue admission --------------------------------------------------------------------------------

    async def _missing_queue(self, aw: ArtifactWorkflow) -> str | None:
        """SPEC 4.3's queue label names a LocalQueue: the message when it does not exist in the namespace."""
        ns, queue = aw.metadata.namespace or "", aw.spec.queue_name or ""
        if not queue:
            return None
        try:
            await self.client.get(LOCAL_QUEUES, ns, queue)
        except NotFoundError:
            return missing_queue_message(ns, queue)
        except KubeError as exc:  # no Kueue, no RBAC: say nothing rather than fail the transfer
            logger.debug("local queue not readable", extra={"error": str(exc)})
        return None

    async def _admission(self, aw: ArtifactWorkflow) -> str | None:
        """Why the Workflow's pending pods are not admitted (their Workloads), else a missing LocalQueue."""
        ns = aw.metadata.namespace or ""
        try:
            workloads = (await self.client.list(WORKLOADS, ns)).get("items") or []
        except KubeError as exc:
            logger.debug("workloads not readable", extra={"error": str(exc)})
            workloads = []
        return admission_message(workloads, aw.metadata.name or "") or await self._missing_queue(aw)

    # --- status ----------------------------------------------------------------------------------------

    async def _write_status(
        self,
        aw: ArtifactWorkflow,
        phase: str,
        message: str,
        workflow: dict[str, Any] | None,
        *,
        started: str | None = None,
        finished: str | None = None,
    ) -> Result:
        old = aw.status
        old_phase = old.phase if old else None
        status = dump(aw).get("status") or {}
        status.update({"phase": phase, "observedGeneration": aw.metadata.generation})
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        provenance = None
        if workflow is not None:
            status["workflowName"] = (workflow.get("metadata") or {}).get("name")
            provenance = provenance_from_workflow(workflow)
            if provenance is not None:
                status["provenance"] = dump(provenance)
        for key, value in (("startedAt", started), ("finishedAt", finished)):
            if value:
                status[key] = value
        previous = next((c for c in (old.conditions if old else None) or [] if c.type == READY), None)
        condition = stamp_transition(
            Condition(
                type=READY,
                status="True" if phase == "Succeeded" else "False",
                reason=phase,
                message=message or f"the workflow is {phase.lower()}",
                observed_generation=aw.metadata.generation,
            ),
            previous,
        )
        status["conditions"] = [dump(condition)]
        if status == (dump(aw).get("status") or {}):
            return Result()
        body = {**dump(aw), "status": status}
        try:
            updated = await self.client.replace(
                ARTIFACT_WORKFLOWS, aw.metadata.namespace, aw.metadata.name or "", body, subresource="status"
            )
        except ConflictError:
            return Result(requeue=True)
        self._written.remember(ArtifactWorkflow.model_validate(updated))
        if phase != old_phase and phase == "Succeeded":
            self.recorder.record(aw, "Normal", "WorkflowSucceeded", f"Workflow {aw.metadata.name} succeeded")
            transferred = event_message(provenance) if provenance is not None else None
            if transferred is not None:
                self.recorder.record(aw, "Normal", "Transferred", transferred)
                verified = provenance is not None and provenance.signature is not None
                TRANSFERRED.labels(signature="verified" if verified else "none").inc()
                logger.info(
                    "artifact transferred",
                    extra={
                        "digest": provenance.destination.digest
                        if provenance and provenance.destination
                        else None
                    },
                )
        elif phase != old_phase and phase in ("Failed", "Error"):
            self.recorder.record(
                aw, "Warning", "WorkflowFailed", message or f"Workflow {aw.metadata.name} {phase}"
            )
        if phase != old_phase and phase in FINISHED:
            record_completion(aw.metadata.namespace or "", aw.spec.type or "", phase, started, finished)
        return Result()

    # --- TTL -------------------------------------------------------------------------------------------

    def _ttl(self, aw: ArtifactWorkflow) -> float | None:
        type_name = aw.spec.type or ""
        artifact_type = self.artifact_types.get(aw.metadata.namespace or "", type_name)
        spec = artifact_type.spec if artifact_type is not None else None
        if spec is None:
            cluster_type = self.cluster_artifact_types.get("", type_name)
            spec = cluster_type.spec if cluster_type is not None else None
        if spec is None or spec.ttl is None:
            return None
        phase = aw.status.phase if aw.status else None
        raw = spec.ttl.after_succeeded if phase == "Succeeded" else spec.ttl.after_failed
        return parse_duration(raw) if raw else None

    async def _expire(self, aw: ArtifactWorkflow) -> Result:
        ttl = self._ttl(aw)
        finished_at = aw.status.finished_at if aw.status else None
        finished = parse_rfc3339(finished_at) if finished_at else None
        if ttl is None or finished is None:
            return Result()
        remaining = ttl - (datetime.now(UTC) - finished).total_seconds()
        if remaining > 0:
            return Result(requeue_after=remaining)
        with contextlib.suppress(NotFoundError):
            await self.client.delete(
                ARTIFACT_WORKFLOWS, aw.metadata.namespace, aw.metadata.name or "", uid=aw.metadata.uid
            )
        logger.info("artifact workflow expired", extra={"ttl_seconds": ttl})
        return Result()

    # --- deletion --------------------------------------------------------------------------------------

    async def _finalize(self, aw: ArtifactWorkflow) -> Result:
        finalizers = without_finalizer(aw.metadata, FINALIZER)
        if finalizers is None:
            return Result()
        ns, name = aw.metadata.namespace or "", aw.metadata.name or ""
        workflow = self.workflows.get(ns, name)
        if workflow is not None and self._owned_by(workflow, aw):
            meta = workflow.get("metadata") or {}
            if not meta.get("deletionTimestamp"):
                with contextlib.suppress(NotFoundError):
                    await self.client.delete(
                        WORKFLOWS, ns, name, uid=meta.get("uid"), propagation_policy="Background"
                    )
            return Result(requeue_after=WAIT_FOR_DELETION)
        try:
            await self.client.get(WORKFLOWS, ns, name)
        except NotFoundError:
            await self._patch_finalizers(aw, finalizers)
            return Result()
        return Result(requeue_after=WAIT_FOR_DELETION)

    async def _patch_finalizers(self, aw: ArtifactWorkflow, finalizers: list[str]) -> ArtifactWorkflow:
        new = await patch_finalizers(
            self.client, ARTIFACT_WORKFLOWS, aw, finalizers, ArtifactWorkflow.model_validate
        )
        self._written.remember(new)
        return new
