"""``/healthz``, ``/livez`` and ``/readyz`` with kube-apiserver's checks, names and output.

The shape is ``k8s.io/apiserver/pkg/server/healthz``: each endpoint runs a list of named checks; success is
``ok`` (``?verbose`` lists ``[+]<check> ok`` lines and ``<endpoint> check passed``), failure is always
verbose and a 500, with ``[-]<check> failed: reason withheld`` (the endpoints are public; the reason goes
to the log); ``?exclude=<check>`` skips a check; ``/<endpoint>/<check>`` runs one check and, being
authorized like any other path, does say why it failed.

The checks are the generic API server's (``AddHealthChecks`` puts a check on all three endpoints,
``AddReadyzChecks`` on readyz only):

- ``ping`` — the event loop answers (all endpoints);
- ``etcd`` — ARC's etcd answers a read within 2 s (all endpoints, as in kube: a probe that must not kill
  the pod during an etcd outage uses ``/livez?exclude=etcd``);
- ``etcd-readiness``, ``informer-sync``, ``shutdown`` — readyz only: etcd again (kube's separate ready
  check), the delegation informers (the front-proxy CA ConfigMap and the namespaces of NamespaceLifecycle)
  have listed, and the server is not shutting down (SIGTERM flips it at once, while requests still drain
  for ``--shutdown-delay-duration``, so endpoints drop the pod before it stops serving).

At most one etcd probe per check is in flight: concurrent probes (kubelet, aggregator, load balancers)
share its answer, so a probe storm never becomes an etcd load. Answers are not reused after that (kube
rate-limits its probe and may repeat an old answer for a second; an outage or a recovery shows here at the
next probe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

logger = logging.getLogger(__name__)

CheckFunc = Callable[[], Awaitable[None]]
"""Returns when healthy; raises (any Exception, its text is the reason) when not."""


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: CheckFunc


async def _ping() -> None:
    return None


PING = HealthCheck("ping", _ping)


class SharedProbe:
    """A probe with a timeout, shared by concurrent callers: at most one call is in flight."""

    def __init__(self, probe: CheckFunc, *, timeout: float = 2.0) -> None:
        self._probe = probe
        self.timeout = timeout
        self._inflight: asyncio.Future[None] | None = None

    async def __call__(self) -> None:
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._run())
            # Retrieved even when every caller was cancelled (no "exception never retrieved").
            self._inflight.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.shield(self._inflight)

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._probe()
        except TimeoutError:
            raise TimeoutError(f"no answer within {self.timeout:g}s") from None
        finally:
            self._inflight = None


class ShutdownCheck:
    """kube's ``shutdown`` readyz check: fails once ``initiate()`` was called (on SIGTERM)."""

    name = "shutdown"

    def __init__(self) -> None:
        self.initiated = asyncio.Event()

    def initiate(self) -> None:
        self.initiated.set()

    async def __call__(self) -> None:
        if self.initiated.is_set():
            raise RuntimeError("process is shutting down")

    def check(self) -> HealthCheck:
        return HealthCheck(self.name, self)


@dataclass
class HealthChecks:
    """The checks of each endpoint (``healthz`` and ``livez`` share theirs, as in kube)."""

    livez: list[HealthCheck]
    readyz: list[HealthCheck]

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for endpoint, checks in (("healthz", self.livez), ("livez", self.livez), ("readyz", self.readyz)):
            routes.append(web.get(f"/{endpoint}", _aggregate_handler(endpoint, checks), allow_head=False))
            for check in checks:
                routes.append(web.get(f"/{endpoint}/{check.name}", _single_handler(check), allow_head=False))
        return routes


def _text(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _excluded(request: web.Request) -> list[str]:
    """``?exclude=a&exclude=b`` and ``?exclude=a,b`` (kube's getExcludedChecks)."""
    names: list[str] = []
    for value in request.query.getall("exclude", []):
        names += [part.strip() for part in value.split(",") if part.strip()]
    return names


async def _run(check: HealthCheck) -> str | None:
    """The failure reason, or None when healthy."""
    try:
        await check.check()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


def _aggregate_handler(
    endpoint: str, checks: Sequence[HealthCheck]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        excluded = _excluded(request)
        unmatched = [name for name in dict.fromkeys(excluded) if name not in {c.name for c in checks}]
        active = [c for c in checks if c.name not in excluded]
        reasons = dict(
            zip([c.name for c in active], await asyncio.gather(*(_run(c) for c in active)), strict=True)
        )
        lines: list[str] = []
        for check in checks:
            if check.name not in reasons:
                lines.append(f"[+]{check.name} excluded: ok")
            elif reasons[check.name] is None:
                lines.append(f"[+]{check.name} ok")
            else:
                lines.append(f"[-]{check.name} failed: reason withheld")
        if unmatched:
            quoted = ", ".join(f'"{name}"' for name in sorted(unmatched))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
        failed = {name: reason for name, reason in reasons.items() if reason is not None}
        if failed:
            logger.warning(f"{endpoint} check failed", extra={"checks": failed, "endpoint": endpoint})
            return _text("\n".join(lines) + f"\n{endpoint} check failed\n", status=500)
        if "verbose" not in request.query:
            return _text("ok")
        return _text("\n".join(lines) + f"\n{endpoint} check passed\n")

    return handler


def _single_handler(check: HealthCheck) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        reason = await _run(check)
        if reason is not None:
            return _text(f"internal server error: {reason}\n", status=500)
        return _text("ok")

    return handler
