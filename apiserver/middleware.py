"""The request pipeline around every handler: context, errors, metrics, tracing, authn/authz.

One middleware owns error serialization: a ``StatusError`` becomes its Status, aiohttp's own HTTP errors
(unknown path, wrong method, oversized body) become the Status kube would send, and anything else is
logged with its traceback and answered with a generic 500 that carries no internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from apiserver import errors
from apiserver.auth import (
    ANONYMOUS_USER,
    USER,
    AuthenticationError,
    Authenticator,
    AuthorizationAttributes,
    Authorizer,
    UserInfo,
)
from apiserver.connections import request_started
from apiserver.observability import REQUEST_DURATION, REQUEST_TOTAL, object_ref, request_id, tracing_enabled
from apiserver.requestinfo import RequestInfo, request_info_from
from apiserver.uid import new_uuid

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INFO: web.RequestKey[RequestInfo] = web.RequestKey("request_info", RequestInfo)


def status_response(err: errors.StatusError) -> web.Response:
    body = err.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    response = web.Response(body=orjson.dumps(body), status=err.code, content_type=None)
    response.headers["Content-Type"] = "application/json"
    if err.status.details is not None and err.status.details.retry_after_seconds:
        response.headers["Retry-After"] = str(err.status.details.retry_after_seconds)
    return response


def _from_http_exception(exc: web.HTTPException) -> errors.StatusError:
    if exc.status == 404:
        return errors.not_found_path()
    if exc.status == 405:
        err = errors.not_found_path()
        err.status.code, err.status.reason = 405, "MethodNotAllowed"
        err.status.message = "the server does not allow this method on the requested resource"
        return err
    if exc.status == 413:
        return errors.request_entity_too_large("limit is 3145728")
    if exc.status == 400:
        return errors.bad_request(exc.text or "bad request")
    return errors.internal_error(exc.reason)


def _metric_verb(info: RequestInfo, method: str) -> str:
    """kube's ``CleanVerb``: LIST and WATCH for collection GETs, APPLY for apply patches, else the method."""
    if info.verb == "list":
        return "LIST"
    if info.verb == "watch":
        return "WATCH"
    if method == "PATCH" and info.is_resource_request:
        return "PATCH"
    return method


_PROPAGATION_HEADERS = ("traceparent", "tracestate", "baggage")


_MetricChildren = tuple[Any, dict[str, Any]]
_metric_children: dict[tuple[str, ...], _MetricChildren] = {}


def _observe(info: RequestInfo, method: str, dry_run: bool, code: int, seconds: float) -> None:
    """``apiserver_request_duration_seconds`` and ``apiserver_request_total`` of one resource request.

    The labelled children are looked up once per label set and kept: ``labels(**kwargs)`` validates and
    locks on every call, which was a visible share of a GET's CPU.
    """
    key = (
        _metric_verb(info, method),
        "All" if dry_run else "",
        info.api_group,
        info.api_version,
        info.resource,
        info.subresource,
        "resource" if info.name else ("namespace" if info.namespace else "cluster"),
        "apiserver",
    )
    children = _metric_children.get(key)
    if children is None:
        children = _metric_children[key] = (REQUEST_DURATION.labels(*key), {})
    children[0].observe(seconds)
    counter = children[1].get(str(code))
    if counter is None:
        counter = children[1][str(code)] = REQUEST_TOTAL.labels(*key, str(code))
    counter.inc()


async def _serve(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response; every error becomes its Status (the one place that serializes them)."""
    try:
        return await handler(request)
    except errors.StatusError as err:
        return status_response(err)
    except web.HTTPException as exc:
        return status_response(_from_http_exception(exc))
    except TimeoutError:
        return status_response(errors.timeout("request did not complete within the allowed duration"))
    except Exception:
        logger.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return status_response(errors.internal_error("an unexpected error occurred"))


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, request info, trace span, metrics and error serialization.

    Without an SDK tracer provider and without incoming trace context, the span would be the no-op span
    of an empty context: it is then not created at all (measurably cheaper per request); an incoming
    ``traceparent`` is still attached to the request's context.
    """
    request_started(request)
    headers = request.headers
    rid = headers.get("Audit-ID") or new_uuid()
    token = request_id.set(rid)
    info = request_info_from(request.method, request.path, request.rel_url.raw_query_string)
    request[INFO] = info
    ref_token = object_ref.set(f"{info.namespace}/{info.name}" if info.name else "")
    started = time.perf_counter()
    code = 500
    traced = tracing_enabled() or any(h in headers for h in _PROPAGATION_HEADERS)
    attach = otel_context.attach(propagate.extract(dict(headers))) if traced else None
    try:
        if traced:
            with tracer.start_as_current_span(
                f"{request.method} {info.resource or request.path}",
                kind=trace.SpanKind.SERVER,
                attributes={
                    "http.request.method": request.method,
                    "url.path": request.path,
                    "k8s.verb": info.verb,
                    "k8s.resource": info.resource,
                    "k8s.namespace": info.namespace,
                },
            ) as span:
                response = await _serve(request, handler)
                code = response.status
                span.set_attribute("http.response.status_code", code)
        else:
            response = await _serve(request, handler)
            code = response.status
        response.headers["Audit-Id"] = rid
        return response
    finally:
        if info.is_resource_request:
            method = "APPLY" if request.content_type == "application/apply-patch+yaml" else request.method
            _observe(info, method, "dryRun" in request.query, code, time.perf_counter() - started)
        if attach is not None:
            otel_context.detach(attach)
        object_ref.reset(ref_token)
        request_id.reset(token)


def auth_middleware(
    authenticator: Authenticator, authorizer: Authorizer, *, anonymous: bool
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate (``system:anonymous`` when nobody is recognised), then authorize.

    Invalid credentials (``AuthenticationError``) are a 401 whatever the path, as in kube's authentication
    filter. Without ``anonymous`` a request without credentials is a 401 too; with it, authorization
    decides (a 403 as kube words it, naming ``system:anonymous``).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            user = await authenticator.authenticate(request) or ANONYMOUS_USER
        except AuthenticationError as err:
            logger.warning("unable to authenticate the request", extra={"error": str(err)})
            raise errors.unauthorized("Unauthorized") from None
        request[USER] = user
        allowed, reason = await authorizer.authorize(AuthorizationAttributes(user, request[INFO]))
        if not allowed:
            if user.is_anonymous and not anonymous:
                raise errors.unauthorized("Unauthorized")
            raise forbidden(user, request[INFO], reason)
        return await handler(request)

    return middleware


def forbidden(user: UserInfo, info: RequestInfo, reason: str) -> errors.StatusError:
    """kube's 403: ``User "alice" cannot list resource "orders" in API group "…" in the namespace "x"``."""
    from api.resources import GroupResource

    if not info.is_resource_request:
        message = f'User "{user.name}" cannot {info.verb} path "{info.path}"'
        return errors.forbidden(None, "", message + (f": {reason}" if reason else ""))
    resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
    message = f'User "{user.name}" cannot {info.verb} resource "{resource}" in API group "{info.api_group}"'
    message += f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    if reason:
        message += f": {reason}"
    return errors.forbidden(GroupResource(info.api_group, info.resource), info.name, message)
