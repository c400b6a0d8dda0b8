"""EndpointReconciler: probe each Endpoint's remote and say in its status whether it works.

Level-based, controller-runtime style. A reconcile of Endpoint ns/x:
1. Gone or being deleted → forget it.
2. The probe's inputs are the Endpoint's `generation` and the data of its Secret (the shared Secret
   informer keeps only a keyed hash of it). When they are what the last probe of this process saw and that
   probe is younger than its (jittered) interval, nothing is done: the reconcile that the status write
   itself triggers, and every metadata-only edit, end here with `requeue_after` the time left.
3. Otherwise read the Secret (GET, only now, never cached), probe (`probe.Prober`: bounded in time and
   concurrency, SSRF-guarded), and write `Reachable`, `Authenticated`, `Ready` (observedGeneration on each),
   `status.observedGeneration` and `status.lastProbeTime` through `/status`; requeue after the interval
   with jitter, so Endpoints created together are not probed together for ever.
Ready flipping records an Event (`EndpointReady` / `EndpointNotReady`).

The record of the last probe lives in memory: a new leader re-probes every Endpoint once, which is what a
freshly started prober should do anyway.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from api.arc.v1alpha1.types import Endpoint, EndpointStatus
from api.meta import Condition, dump
from api.resources import format_rfc3339
from controllers.controllerutil import set_condition
from controllers.endpoint.probe import (
    Check,
    Credentials,
    Prober,
    ProbeResult,
    Target,
    credentials_from_secret,
    ready,
)
from controllers.kube import ConflictError, KubeClient, NotFoundError
from controllers.kube.resources import ENDPOINTS, SECRETS
from controllers.runtime import EventRecorder, Informer, Request, Result
from controllers.runtime.written import LastWritten

__all__ = ["EndpointReconciler", "SecretVersion"]

logger = logging.getLogger(__name__)

REACHABLE = "Reachable"
AUTHENTICATED = "Authenticated"
READY = "Ready"
JITTER = 0.2
"""Up to this fraction of the interval is added to each requeue (client-go's wait.Jitter)."""


class SecretVersion(Protocol):
    """What the shared Secret informer keeps of a Secret: its name and a hash of its data."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def data_hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Probed:
    inputs: tuple[int | None, str | None]
    at: float
    """The clock's time of the probe."""
    due: float
    """Seconds after `at` when the next probe is due (interval with jitter)."""


class EndpointReconciler:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        *,
        endpoints: Informer[Endpoint],
        secrets: Informer[SecretVersion],
        prober: Prober,
        interval: float = 300.0,
        clock: Callable[[], float] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`interval`: seconds between probes of an unchanged Endpoint (0: only on changes); `clock`: the
        event loop's by default (virtual time in tests, as the work queue's delays)."""
        self.client = client
        self.recorder = recorder
        self.endpoints = endpoints
        self.secrets = secrets
        self.prober = prober
        self.interval = interval
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._jitter = jitter
        self._probed: dict[tuple[str, str], _Probed] = {}
        self._written: LastWritten[Endpoint] = LastWritten()

    async def reconcile(self, request: Request) -> Result:
        key = (request.namespace, request.name)
        endpoint = self._written.fresher(
            request.namespace, request.name, self.endpoints.get(request.namespace, request.name)
        )
        if endpoint is None or endpoint.metadata.deletion_timestamp:
            self._probed.pop(key, None)
            return Result()
        inputs = (endpoint.metadata.generation, self._secret_version(endpoint))
        last = self._probed.get(key)
        now = self._clock()
        if last is not None and last.inputs == inputs and self._status_current(endpoint):
            if self.interval <= 0:
                return Result()
            left = last.at + last.due - now
            if left > 0:
                return Result(requeue_after=left)
        target, secret_check = await self._target(endpoint)
        started = self._clock()
        result = await self.prober.probe(target)
        logger.info(
            "endpoint probed",
            extra={
                "reachable": result.reachable.reason,
                "authenticated": result.authenticated.reason,
                "seconds": round(self._clock() - started, 3),
            },
        )
        if secret_check is not None:
            result = ProbeResult(result.reachable, secret_check)
        due = self.interval * (1.0 + JITTER * self._jitter()) if self.interval > 0 else 0.0
        written = await self._write_status(endpoint, result)
        if written is None:
            return Result(requeue=True)
        self._probed[key] = _Probed(inputs, now, due)
        return Result(requeue_after=due) if due > 0 else Result()

    # --- inputs --------------------------------------------------------------------------------------

    def _secret_name(self, endpoint: Endpoint) -> str:
        ref = endpoint.spec.secret_ref
        return ref.name if ref is not None and ref.name else ""

    def _secret_version(self, endpoint: Endpoint) -> str | None:
        """The hash of the Secret's data; "" without a secretRef; None when the Secret does not exist."""
        name = self._secret_name(endpoint)
        if not name:
            return ""
        record = self.secrets.get(endpoint.metadata.namespace or "", name)
        return record.data_hash if record is not None else None

    @staticmethod
    def _status_current(endpoint: Endpoint) -> bool:
        status = endpoint.status
        return (
            status is not None
            and status.observed_generation == endpoint.metadata.generation
            and status.last_probe_time is not None
        )

    async def _target(self, endpoint: Endpoint) -> tuple[Target, Check | None]:
        """The probe's target with the Secret's credentials (read now, used once, never kept); a Check that
        replaces `Authenticated` when the Secret is missing or holds nothing usable."""
        spec = endpoint.spec
        name = self._secret_name(endpoint)
        if not name:
            return Target(spec.type, spec.remote_url), None
        try:
            secret: dict[str, Any] = await self.client.get(SECRETS, endpoint.metadata.namespace, name)
        except NotFoundError:
            return Target(spec.type, spec.remote_url), Check(
                "False", "SecretNotFound", f'secret "{name}" not found'
            )
        credentials: Credentials | None
        credentials, ca_bundle = credentials_from_secret(secret.get("data"), spec.remote_url)
        check = None
        if credentials is None:
            check = Check(
                "False",
                "CredentialsNotFound",
                f'secret "{name}" holds no credentials for this remote (.dockerconfigjson with an entry for'
                " its host, or username and password)",
            )
        return Target(spec.type, spec.remote_url, credentials, ca_bundle), check

    # --- status --------------------------------------------------------------------------------------

    async def _write_status(self, endpoint: Endpoint, result: ProbeResult) -> Endpoint | None:
        generation = endpoint.metadata.generation
        old = endpoint.status or EndpointStatus()
        probed_at = format_rfc3339()
        conditions = list(old.conditions or [])
        for type_, check in (
            (REACHABLE, result.reachable),
            (AUTHENTICATED, result.authenticated),
            (READY, ready(result)),
        ):
            conditions = set_condition(
                conditions,
                Condition(
                    type=type_,
                    status=check.status,
                    reason=check.reason,
                    message=check.message,
                    observed_generation=generation,
                ),
                now=probed_at,
            )
        status = EndpointStatus(
            observed_generation=generation, conditions=conditions, last_probe_time=probed_at
        )
        body = {**dump(endpoint), "status": dump(status)}
        try:
            updated = await self.client.replace(
                ENDPOINTS,
                endpoint.metadata.namespace,
                endpoint.metadata.name or "",
                body,
                subresource="status",
            )
        except ConflictError:
            return None
        except NotFoundError:
            return endpoint
        new = Endpoint.model_validate(updated)
        self._written.remember(new)
        was = _condition(old, READY)
        now_ready = _condition(status, READY)
        if now_ready is not None and (was is None or was.status != now_ready.status):
            if now_ready.status == "True":
                self.recorder.record(endpoint, "Normal", "EndpointReady", now_ready.message or "ready")
            elif now_ready.status == "False":
                self.recorder.record(
                    endpoint, "Warning", "EndpointNotReady", f"{now_ready.reason}: {now_ready.message}"
                )
        return new


def _condition(status: EndpointStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions or [] if c.type == type_), None)
