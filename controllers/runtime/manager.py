"""The Manager: shared informers, controllers, the event recorder and the health/metrics server.

Everything long-lived is a child of one `asyncio.TaskGroup` (house rule 10): informers and the event
recorder run from the start (a standby replica keeps warm caches, as controller-runtime does); controllers
run only while this process holds the leader Lease. A stop request (SIGTERM) cancels the group; the
leader elector releases the Lease on the way out so a standby takes over at once. Losing the Lease raises
`LostLeadershipError` out of `run()`, and the process exits non-zero.

Two listeners, as controller-runtime's `--metrics-bind-address` and `--health-probe-bind-address`:
`/metrics` serves the Prometheus registry; the probes (`controllers.runtime.health`) are `/healthz` and
`/livez` (check `ping`: the event loop answers) and `/readyz` (check `informer-sync`: every informer has
listed — a standby replica is ready too, its caches are warm). Without a probe address the probes are
served next to `/metrics` (the local stack's single loopback port); an address of `0` turns a listener off.
With `metrics_secure` (`--metrics-secure`, the Helm chart's default) `/metrics` is served over HTTPS to
callers kube-apiserver authenticates and authorizes (`controllers.runtime.metricsauth`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from controllers.kube import KubeClient, Resource
from controllers.runtime.controller import Controller
from controllers.runtime.events import EventRecorder
from controllers.runtime.health import probe_routes
from controllers.runtime.informer import Informer, strip_managed_fields
from controllers.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from controllers.runtime.metricsauth import MetricsAuth, serving_context

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
        health_probe_bind_address: str | None = None,
        metrics_secure: bool = False,
        metrics_cert_dir: Path | None = None,
    ) -> None:
        """``bind_address`` serves ``/metrics`` (and the probes unless ``health_probe_bind_address`` is
        given); ``None``, ``""`` or ``"0"`` turns a listener off. ``metrics_secure``: HTTPS (certificate of
        ``metrics_cert_dir``, else self-signed) and delegated authentication and authorization."""
        self.client = client
        self.recorder = EventRecorder(client, component)
        self.leader_election = leader_election
        self.bind_address = bind_address
        self.health_probe_bind_address = health_probe_bind_address
        self.metrics_secure = metrics_secure
        self.metrics_cert_dir = metrics_cert_dir
        self.bound_port: int | None = None
        """The port of the metrics listener, once bound."""
        self.health_bound_port: int | None = None
        """The port the probes are served on, once bound."""
        self._informers: dict[Resource, Informer[Any]] = {}
        self._controllers: list[Controller] = []
        self.elector: LeaderElector | None = None
        self.leading = asyncio.Event()

    def informer(
        self,
        resource: Resource,
        decode: Callable[[dict[str, Any]], T],
        *,
        transform: Callable[[dict[str, Any]], dict[str, Any]] = strip_managed_fields,
    ) -> Informer[T]:
        """The shared informer for a resource (created on first use).

        `transform` prunes an object before it is decoded and cached (controller-runtime's
        `cache.Options.ByObject[...].Transform`): what it drops, no controller of this manager may read. A
        second controller asking for the same resource with another transform is a wiring error (it
        would read fields the first one pruned), raised as `ValueError`.
        """
        existing = self._informers.get(resource)
        if existing is not None:
            if existing.transform is not transform:
                raise ValueError(f"the informer of {resource} is already set up with another transform")
            return existing
        informer: Informer[T] = Informer(self.client, resource, decode, transform=transform)
        self._informers[resource] = informer
        return informer

    def add_controller(self, controller: Controller) -> None:
        self._controllers.append(controller)

    @property
    def ready(self) -> bool:
        return all(i.has_synced for i in self._informers.values())

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or the task is cancelled)."""
        runners = await self._start_http()
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
            for runner in runners:
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

    @staticmethod
    def _enabled(address: str | None) -> bool:
        return bool(address) and address != "0"

    async def _start_http(self) -> list[web.AppRunner]:
        """The metrics and probe listeners (one, when the probes share the metrics address)."""
        probes = probe_routes({"ping": lambda: None}, {"informer-sync": self._informers_synced})
        separate = self.health_probe_bind_address is not None
        runners: list[web.AppRunner] = []
        try:
            if self._enabled(self.bind_address):
                assert self.bind_address is not None
                routes = [web.get("/metrics", self._metrics, allow_head=False)]
                secure = (
                    (MetricsAuth(self.client), serving_context(self.metrics_cert_dir))
                    if self.metrics_secure
                    else None
                )
                runner, self.bound_port = await self._serve(
                    self.bind_address,
                    routes + ([] if separate else probes),
                    middlewares=[secure[0].middleware] if secure else [],
                    ssl_context=secure[1] if secure else None,
                )
                runners.append(runner)
                if not separate:
                    self.health_bound_port = self.bound_port
                logger.info(
                    "serving metrics",
                    extra={
                        "address": self._address(self.bind_address, self.bound_port),
                        "secure": self.metrics_secure,
                    },
                )
            if separate and self._enabled(self.health_probe_bind_address):
                assert self.health_probe_bind_address is not None
                runner, self.health_bound_port = await self._serve(self.health_probe_bind_address, probes)
                runners.append(runner)
                logger.info(
                    "serving health probes",
                    extra={"address": self._address(self.health_probe_bind_address, self.health_bound_port)},
                )
        except BaseException:
            for runner in runners:
                await runner.cleanup()
            raise
        return runners

    @staticmethod
    def _address(configured: str, port: int | None) -> str:
        return f"{configured.rpartition(':')[0]}:{port}"

    @staticmethod
    async def _serve(
        address: str,
        routes: list[web.RouteDef],
        *,
        middlewares: list[Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[web.AppRunner, int | None]:
        """Serve ``routes`` on ``host:port`` (an empty host is every interface, as Go's ``:8080``)."""
        host, _, port = address.rpartition(":")
        app = web.Application(middlewares=middlewares or [])
        app.add_routes(routes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host.strip("[]") or None, int(port or 0), ssl_context=ssl_context)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return runner, (sockets[0].getsockname()[1] if sockets else None)

    def _informers_synced(self) -> str | None:
        pending = [str(i.resource) for i in self._informers.values() if not i.has_synced]
        return f"informers not synced: {', '.join(pending)}" if pending else None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
