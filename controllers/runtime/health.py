"""The manager's probe endpoints, as controller-runtime's ``pkg/healthz`` serves them.

``/healthz`` (and ``/livez``, kube's name for the same thing) runs the liveness checks, ``/readyz`` the
readiness checks; each check also has its own path (``/readyz/informer-sync``). Success is ``ok``
(``?verbose`` lists ``[+]<check> ok`` lines and ``healthz check passed``, the text controller-runtime
writes for both endpoints); failure is a 500 and always verbose, with ``[-]<check> failed: reason
withheld`` (the probes are unauthenticated; the reason goes to the log). ``?exclude=<check>`` skips a
check. Checks are listed sorted by name, as controller-runtime sorts them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = ["Check", "probe_routes"]

logger = logging.getLogger(__name__)

Check = Callable[[], str | None]
"""Returns None when healthy, else the reason (for the log and the single-check path)."""


def _text(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _aggregate(
    endpoint: str, checks: Mapping[str, Check]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        excluded: set[str] = set()
        for value in request.query.getall("exclude", []):
            excluded.update(part.strip() for part in value.split(",") if part.strip())
        lines: list[str] = []
        failed: dict[str, str] = {}
        for name in sorted(checks):
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
                continue
            reason = checks[name]()
            if reason is None:
                lines.append(f"[+]{name} ok")
            else:
                failed[name] = reason
                lines.append(f"[-]{name} failed: reason withheld")
        unknown = sorted(excluded - set(checks))
        if unknown:
            quoted = ", ".join(f'"{name}"' for name in unknown)
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
        if failed:
            logger.info(f"{endpoint} check failed", extra={"checks": failed})
            return _text("\n".join(lines) + "\nhealthz check failed\n", status=500)
        if "verbose" not in request.query:
            return _text("ok")
        return _text("\n".join(lines) + "\nhealthz check passed\n")

    return handler


def _single(check: Check) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        reason = check()
        if reason is not None:
            return _text(f"internal server error: {reason}\n", status=500)
        return _text("ok")

    return handler


def probe_routes(liveness: Mapping[str, Check], readiness: Mapping[str, Check]) -> list[web.RouteDef]:
    """``/healthz``, ``/livez``, ``/readyz`` and one path per check."""
    routes: list[web.RouteDef] = []
    for endpoint, checks in (("healthz", liveness), ("livez", liveness), ("readyz", readiness)):
        routes.append(web.get(f"/{endpoint}", _aggregate(endpoint, checks), allow_head=False))
        routes += [web.get(f"/{endpoint}/{name}", _single(c), allow_head=False) for name, c in checks.items()]
    return routes
