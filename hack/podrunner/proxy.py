"""kube-proxy's userspace mode, for the ClusterIPs the harness's pods dial.

A listener on ``clusterIP:port`` (the ClusterIP is a /32 address of the harness's bridge) accepts a pod's
connection, picks the next ready endpoint of the Service port (round robin over the EndpointSlices' ready
addresses, the port matched by name as kube-proxy matches it) and copies bytes both ways. TLS passes
through untouched: clients verify the server they reach by the name they dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Endpoints = Callable[[], list[tuple[str, int]]]
"""The ready (address, port) pairs of one Service port, looked up at each new connection."""


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    cluster_ip: str
    port: int


class ServiceProxy:
    def __init__(self, *, connect_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self._servers: dict[ServicePort, asyncio.Server] = {}
        self._endpoints: dict[ServicePort, Endpoints] = {}
        self._turn = itertools.count()
        self.connections = 0

    @property
    def ports(self) -> set[ServicePort]:
        return set(self._servers)

    async def serve(self, service_port: ServicePort, endpoints: Endpoints) -> None:
        """Listen for ``service_port`` (again: only the endpoint lookup is replaced)."""
        self._endpoints[service_port] = endpoints
        if service_port in self._servers:
            return

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._forward(service_port, reader, writer)

        self._servers[service_port] = await asyncio.start_server(
            handle, service_port.cluster_ip, service_port.port, reuse_address=True
        )
        log.info(
            "proxying %s/%s at %s:%d",
            service_port.namespace, service_port.name, service_port.cluster_ip, service_port.port,
        )  # fmt: skip

    async def stop(self, service_port: ServicePort) -> None:
        server = self._servers.pop(service_port, None)
        self._endpoints.pop(service_port, None)
        if server is not None:
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        for port in list(self._servers):
            await self.stop(port)

    async def _forward(
        self, service_port: ServicePort, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        targets = self._endpoints[service_port]()
        try:
            if not targets:
                log.warning("no ready endpoint for %s/%s", service_port.namespace, service_port.name)
                return
            host, port = targets[next(self._turn) % len(targets)]
            try:
                async with asyncio.timeout(self.connect_timeout):
                    upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError) as exc:
                log.warning("endpoint %s:%d of %s unreachable: %r", host, port, service_port.name, exc)
                return
            try:
                await asyncio.gather(_copy(reader, upstream_writer), _copy(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        with contextlib.suppress(Exception):
            writer.close()
