"""Leader election on a coordination.k8s.io/v1 Lease (client-go `leaderelection`, LeaseLock).

A candidate tries every `retry_period` to create the Lease or to take it over once it has expired. Expiry
is judged by the *local* clock from when this candidate last saw the record change (client-go's
`observedTime`), never by comparing timestamps written by another machine. The leader renews every
`retry_period`; if it cannot renew for `renew_deadline` it stops leading (`run` raises `LostLeadershipError`,
the manager exits, like client-go's `OnStoppedLeading` → `klog.Fatal`). On a graceful stop the leader
releases the Lease (holder cleared, duration 1 s) so a successor takes over at once.

Defaults are client-go's: leaseDuration 15 s, renewDeadline 10 s, retryPeriod 2 s.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from api.resources import format_rfc3339_micro
from controllers.kube import AlreadyExistsError, ConflictError, KubeClient, KubeError, NotFoundError
from controllers.kube.resources import LEASES

__all__ = ["LeaderElectionConfig", "LeaderElector", "LostLeadershipError"]

logger = logging.getLogger(__name__)


class LostLeadershipError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True


class LeaderElector:
    def __init__(self, client: KubeClient, config: LeaderElectionConfig) -> None:
        self.client = client
        self.config = config
        self.is_leader = False
        self._observed: dict[str, Any] | None = None
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Acquire the Lease, then run `lead()` while renewing; raise LostLeadershipError if renewal fails."""
        await self._acquire()
        try:
            async with asyncio.TaskGroup() as tg:
                lead_task = tg.create_task(lead(), name="leader")
                tg.create_task(self._renew_loop(lead_task), name="lease-renew")
        finally:
            was_leader = self.is_leader
            self.is_leader = False
            if was_leader and self.config.release_on_cancel:
                await self._release()

    async def _acquire(self) -> None:
        logger.info("attempting to acquire leader lease", extra={"lease": self.config.name})
        while True:
            if await self._try_acquire_or_renew():
                self.is_leader = True
                logger.info(
                    "acquired leader lease",
                    extra={"lease": self.config.name, "identity": self.config.identity},
                )
                return
            await asyncio.sleep(self.config.retry_period * random.uniform(1.0, 1.2))

    async def _renew_loop(self, lead_task: asyncio.Task[None]) -> None:
        cfg = self.config
        while not lead_task.done():
            deadline = self._now() + cfg.renew_deadline
            renewed = False
            while self._now() < deadline:
                try:
                    async with asyncio.timeout(max(0.1, deadline - self._now())):
                        renewed = await self._try_acquire_or_renew()
                except TimeoutError:
                    renewed = False
                if renewed:
                    break
                await asyncio.sleep(min(cfg.retry_period, max(0.0, deadline - self._now())))
            if not renewed:
                self.is_leader = False
                logger.error("failed to renew leader lease, stopping", extra={"lease": cfg.name})
                raise LostLeadershipError(cfg.name)
            await asyncio.sleep(cfg.retry_period)

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        now = format_rfc3339_micro()
        desired_spec = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": int(cfg.lease_duration),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        try:
            lease = await self.client.get(LEASES, cfg.namespace, cfg.name)
        except NotFoundError:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": desired_spec,
            }
            try:
                self._remember(await self.client.create(LEASES, cfg.namespace, body))
            except (AlreadyExistsError, KubeError) as exc:
                logger.debug("lease create failed", extra={"error": str(exc)})
                return False
            return True
        except KubeError as exc:
            logger.warning("lease get failed", extra={"error": str(exc)})
            return False

        spec: dict[str, Any] = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = self._now()
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        held_by_me = holder == cfg.identity
        if holder and not held_by_me and self._now() < self._observed_at + duration:
            return False  # someone else holds a valid lease
        new_spec = dict(desired_spec)
        transitions = int(spec.get("leaseTransitions") or 0)
        if held_by_me:
            new_spec["acquireTime"] = spec.get("acquireTime") or now
            new_spec["leaseTransitions"] = transitions
        else:
            new_spec["leaseTransitions"] = transitions + 1
        lease["spec"] = new_spec
        try:
            self._remember(await self.client.replace(LEASES, cfg.namespace, cfg.name, lease))
        except (ConflictError, KubeError) as exc:
            logger.debug("lease update failed", extra={"error": str(exc)})
            return False
        if not held_by_me:
            logger.info("took over leader lease", extra={"previous": holder or None})
        return True

    def _remember(self, lease: dict[str, Any]) -> None:
        self._observed = lease
        self._observed_spec = dict(lease.get("spec") or {})
        self._observed_at = self._now()

    async def _release(self) -> None:
        cfg = self.config
        if self._observed is None:
            return
        lease = dict(self._observed)
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != cfg.identity:
            return
        now = format_rfc3339_micro()
        spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now})
        lease["spec"] = spec
        try:
            async with asyncio.timeout(5):
                await self.client.replace(LEASES, cfg.namespace, cfg.name, lease)
            logger.info("released leader lease", extra={"lease": cfg.name})
        except (KubeError, TimeoutError) as exc:
            logger.warning("lease release failed", extra={"error": str(exc)})
