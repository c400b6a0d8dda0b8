"""The Manager: shared informers, controllers, the event recorder and the health/metrics server.

Everything long-lived is a child of one `asyncio.TaskGroup` (house rule 10): informers and the event
recorder run from the start (a standby replica keeps warm caches, as controller-runtime does); controllers
run only while this process holds the leader Lease. A stop request (SIGTERM) cancels the group; the
leader elector releases the Lease on the way out so a standby takes over at once. Losing the Lease raises
`LostLeadershipError` out of `run()`, and the process exits non-zero.

`/healthz` is always ok while the loop runs; `/readyz` is ok once every informer has synced; `/metrics`
serves the Prometheus registry. The server binds to the configured address (127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from controllers.kube import KubeClient, Resource
from controllers.runtime.controller import Controller
from controllers.runtime.events import EventRecorder
from controllers.runtime.informer import Informer
from controllers.runtime.leaderelection import LeaderElectionConfig, LeaderElector

__all__ = ["Manager"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Stop(Exception):
    pass


class Manager:
    def __init__(
        self,
        client: KubeClient,
        *,
        component: str = "arc-controller-manager",
        leader_election: LeaderElectionConfig | None = None,
        bind_address: str | None = "127.0.0.1:0",
    ) -> None:
        self.client = client
        self.recorder = EventRecorder(client, component)
        self.leader_election = leader_election
        self.bind_address = bind_address
        self.bound_port: int | None = None
        self._informers: dict[Resource, Informer[Any]] = {}
        self._controllers: list[Controller] = []
        self.elector: LeaderElector | None = None
        self.leading = asyncio.Event()

    def informer(self, resource: Resource, decode: Callable[[dict[str, Any]], T]) -> Informer[T]:
        """The shared informer for a resource (created on first use)."""
        existing = self._informers.get(resource)
        if existing is not None:
            return existing
        informer: Informer[T] = Informer(self.client, resource, decode)
        self._informers[resource] = informer
        return informer

    def add_controller(self, controller: Controller) -> None:
        self._controllers.append(controller)

    @property
    def ready(self) -> bool:
        return all(i.has_synced for i in self._informers.values())

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or the task is cancelled)."""
        runner = await self._start_http()
        try:
            async with asyncio.TaskGroup() as tg:
                for informer in self._informers.values():
                    tg.create_task(informer.run(), name=f"informer-{informer.resource}")
                tg.create_task(self.recorder.run(), name="event-recorder")
                tg.create_task(self._run_controllers(), name="controllers")
                if stop is not None:
                    tg.create_task(self._wait_stop(stop), name="stop")
        except* _Stop:
            logger.info("manager stopped")
        finally:
            if runner is not None:
                await runner.cleanup()

    @staticmethod
    async def _wait_stop(stop: asyncio.Event) -> None:
        await stop.wait()
        raise _Stop

    async def _run_controllers(self) -> None:
        async def lead() -> None:
            self.leading.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    for controller in self._controllers:
                        tg.create_task(controller.run(), name=f"controller-{controller.name}")
            finally:
                self.leading.clear()

        if self.leader_election is None:
            await lead()
            return
        self.elector = LeaderElector(self.client, self.leader_election)
        await self.elector.run(lead)

    # --- health and metrics --------------------------------------------------------------------------

    async def _start_http(self) -> web.AppRunner | None:
        if not self.bind_address:
            return None
        host, _, port = self.bind_address.rpartition(":")
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host or "127.0.0.1", int(port or 0))
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else None
        logger.info("serving health and metrics", extra={"address": f"{host}:{self.bound_port}"})
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ok")
        pending = [str(i.resource) for i in self._informers.values() if not i.has_synced]
        return web.Response(status=503, text=f"informers not synced: {', '.join(pending)}")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
