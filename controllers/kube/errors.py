"""The controllers' error family for kube-apiserver responses, mapped once at the I/O boundary.

Every non-2xx answer becomes an `ApiError` subclass chosen by HTTP status (and `reason` where the status is
ambiguous), carrying the server's `metav1.Status` as it was sent. Transport failures (connection refused,
TLS, timeouts) become `TransportError`. Nothing from aiohttp or kubernetes_asyncio leaks past
`controllers.kube`: a 2xx answer whose body is not the JSON expected becomes `DecodeError`, a kubeconfig that
cannot be loaded `ConfigError`.
"""

from __future__ import annotations

from typing import Any

from api.meta import Status

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "DecodeError",
    "ExpiredError",
    "ForbiddenError",
    "InternalError",
    "InvalidError",
    "KubeError",
    "NotFoundError",
    "ServiceUnavailableError",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "error_for",
]


class KubeError(Exception):
    """Anything that went wrong talking to the API server."""


class TransportError(KubeError):
    """The request did not get an HTTP answer (connection, TLS, timeout)."""


class DecodeError(KubeError):
    """A 2xx answer (or a watch line) that is not the JSON object expected."""


class ConfigError(KubeError):
    """The kubeconfig (or its credentials plugin) could not be loaded."""


class ApiError(KubeError):
    """A non-2xx answer; `status` is the server's metav1.Status (synthesised when the body was not one)."""

    def __init__(self, status: Status) -> None:
        self.status = status
        self.code = status.code or 0
        self.reason = status.reason or ""
        super().__init__(f"{self.code} {self.reason}: {status.message or ''}".strip())


class BadRequestError(ApiError):
    pass


class UnauthorizedError(ApiError):
    pass


class ForbiddenError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    """409 with reason Conflict: optimistic-concurrency failure; retry on a fresh read."""


class AlreadyExistsError(ApiError):
    """409 with reason AlreadyExists."""


class ExpiredError(ApiError):
    """410 Gone / Expired: the resourceVersion is too old; relist."""


class InvalidError(ApiError):
    """422 Invalid."""


class TooManyRequestsError(ApiError):
    pass


class InternalError(ApiError):
    pass


class ServiceUnavailableError(ApiError):
    pass


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: ExpiredError,
    422: InvalidError,
    429: TooManyRequestsError,
    500: InternalError,
    503: ServiceUnavailableError,
}


_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def error_for(code: int, body: Any) -> ApiError:
    """The ApiError for an HTTP status and a decoded body (a Status dict, or anything else)."""
    status: Status
    if isinstance(body, dict) and body.get("kind") == "Status":
        status = Status.model_validate(body)
        if status.code is None:
            status.code = code
    else:
        # client-go's synthesised Status for a body that is not one: a reason by code, the body as message
        status = Status(
            status="Failure",
            code=code,
            reason=_REASONS.get(code, "InternalError" if code >= 500 else "Unknown"),
            message=str(body)[:1000] if body else f"the server answered HTTP {code} without a body",
        )
    if code == 409:
        cls: type[ApiError] = AlreadyExistsError if status.reason == "AlreadyExists" else ConflictError
    else:
        cls = _BY_CODE.get(code, InternalError if code >= 500 else ApiError)
    return cls(status)
