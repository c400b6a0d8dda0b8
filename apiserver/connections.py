"""Connection governance: kube's read-header deadline, its idle timeout, and a cap on open connections.

Before authentication a client costs the server a socket, a TLS session and a parser; a client that
opens thousands of connections and never finishes a request must not exhaust them. kube-apiserver's
``http.Server`` closes a connection whose TLS handshake and request headers take longer than
``ReadHeaderTimeout`` (32 s) and an idle keep-alive connection after ``IdleTimeout`` (90 s). aiohttp has
the idle timeout (``keepalive_timeout``) but no header deadline of its own, so:

- the TLS handshake gets the read-header timeout (``ssl_handshake_timeout``);
- once the handshake is done, a connection that has not delivered a complete request head within the
  same timeout (counted from its accept) is closed;
- at most ``max_connections`` connections are open (TLS handshakes included); a connection over the cap
  is answered ``429 TooManyRequests`` with ``Retry-After: 1`` (kube's answer when its in-flight limit is
  reached) and closed, so clients back off and retry instead of hanging in the listen queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any, cast

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

READ_HEADER_TIMEOUT = 32.0
"""kube-apiserver's ``ReadHeaderTimeout`` (``k8s.io/apiserver/pkg/server/secure_serving.go``)."""
IDLE_TIMEOUT = 90.0
"""kube-apiserver's ``IdleTimeout``: a keep-alive connection without a request for this long is closed."""
MAX_CONNECTIONS = 4096
"""ARC's default cap on open connections (kube has none: its in-flight limits act per request)."""
_REFUSAL_LOG_INTERVAL = 10.0

CONNECTIONS_REFUSED = Counter(
    "apiserver_connections_refused_total",
    "Connections closed at once because the connection cap was reached.",
)
CONNECTIONS_TIMED_OUT = Counter(
    "apiserver_connections_header_timeout_total",
    "Connections closed because no complete request head arrived within the read-header timeout.",
)
OPEN_CONNECTIONS = Gauge("apiserver_open_connections", "Open client connections (TLS handshakes included).")

_awaiting_head: dict[Any, None] = {}
"""Connections accepted less than the read-header timeout ago that have not delivered a request head
(strong references: aiohttp's handlers take no weak ones; each leaves at its first request or deadline)."""


def request_started(request: web.BaseRequest) -> None:
    """Called for every request (by the context middleware): its connection delivered a request head."""
    if _awaiting_head:
        _awaiting_head.pop(request.protocol, None)


_TOO_MANY = orjson.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too many open connections, please try again later",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1},
        "code": 429,
    }
)
_TOO_MANY_RESPONSE = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_TOO_MANY)).encode() + b"\r\n\r\n" + _TOO_MANY
)


class _Refused(asyncio.Protocol):
    """A connection over the cap: answer 429 and close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an ``asyncio.WriteTransport`` subclass, but writes like one.
        cast(asyncio.WriteTransport, transport).write(_TOO_MANY_RESPONSE)
        transport.close()


class ConnectionGovernor:
    """The protocol factory of the listening socket: counts, caps and times out connections."""

    def __init__(self, server: web.Server, *, read_header_timeout: float, max_connections: int) -> None:
        self.server = server
        self.read_header_timeout = read_header_timeout
        self.max_connections = max_connections
        self._handshaking: dict[RequestHandler, float] = {}
        self._last_refusal_log = 0.0
        self._refused_since_log = 0

    def open_connections(self) -> int:
        """Established connections plus TLS handshakes still within their deadline."""
        now = time.monotonic()
        self._handshaking = {
            h: deadline for h, deadline in self._handshaking.items() if h.transport is None and deadline > now
        }
        return len(self.server.connections) + len(self._handshaking)

    def __call__(self) -> asyncio.BaseProtocol:
        if self.open_connections() >= self.max_connections:
            CONNECTIONS_REFUSED.inc()
            self._log_refusal()
            return _Refused()
        handler = self.server()
        self._handshaking[handler] = time.monotonic() + self.read_header_timeout
        _awaiting_head[handler] = None
        asyncio.get_running_loop().call_later(self.read_header_timeout, self._check, handler)
        return handler

    def _check(self, handler: RequestHandler) -> None:
        """The deadline of one connection: close it unless it delivered a request head by now."""
        self._handshaking.pop(handler, None)
        if handler not in _awaiting_head:
            return
        del _awaiting_head[handler]
        transport = handler.transport
        if transport is None or transport.is_closing():
            return  # the handshake timed out (and closed it), or it is gone already
        CONNECTIONS_TIMED_OUT.inc()
        logger.debug(
            "closing a connection without a request head", extra={"timeout": self.read_header_timeout}
        )
        handler.force_close()
        transport.close()

    def _log_refusal(self) -> None:
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= _REFUSAL_LOG_INTERVAL:
            logger.warning(
                "connection cap reached, refusing connections",
                extra={"max_connections": self.max_connections, "refused": self._refused_since_log},
            )
            self._last_refusal_log = now
            self._refused_since_log = 0


class GovernedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionGovernor`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: Any = None,
        backlog: int = 1024,
        read_header_timeout: float = READ_HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._reuse_port = reuse_port
        self._host = host
        self._port = port
        self._read_header_timeout = read_header_timeout
        self._max_connections = max_connections
        self.governor: ConnectionGovernor | None = None

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        sockets = getattr(self._server, "sockets", None) or ()
        return int(sockets[0].getsockname()[1]) if sockets else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.governor = ConnectionGovernor(
            server, read_header_timeout=self._read_header_timeout, max_connections=self._max_connections
        )
        governor = self.governor
        OPEN_CONNECTIONS.set_function(governor.open_connections)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.governor,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
            ssl_handshake_timeout=self._read_header_timeout if self._ssl_context else None,
        )


def unix_listener(path: Path, *, backlog: int = 1024) -> socket.socket:
    """A listening Unix socket at ``path`` for the local TLS terminator (``--tls-terminator-socket``),
    readable and writable by this user only: whoever can connect to it can claim any client certificate it
    likes (the terminator is trusted to have done the TLS handshake). Bound once by the started process
    (``--workers`` share it: forked workers inherit the socket); a stale socket file is replaced."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
