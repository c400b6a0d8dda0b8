"""Kubernetes Status errors: one exception type, built only by the named constructors below.

The constructors mirror ``k8s.io/apimachinery/pkg/api/errors`` (codes, reasons, messages, details), so
clients that test ``IsNotFound``/``IsConflict``/``IsInvalid``… and users reading kubectl's output see exactly
what kube-apiserver would say. One middleware (``apiserver.middleware``) turns a ``StatusError`` into the
JSON response; nothing else writes an error body.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.fields import FieldError, invalid_message, to_causes
from api.meta import Status, StatusCause, StatusDetails
from api.resources import GroupKind, GroupResource


class StatusError(Exception):
    """An error that is answered with a ``Status`` body and its ``code``."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message or status.reason or "")
        self.status = status

    @property
    def code(self) -> int:
        return self.status.code or 500

    @property
    def reason(self) -> str:
        return self.status.reason or ""

    @property
    def is_resource_version_too_large(self) -> bool:
        """``storage.IsTooLargeResourceVersion``: a 504 with cause ``ResourceVersionTooLarge``."""
        details = self.status.details
        return self.code == 504 and any(
            c.reason == "ResourceVersionTooLarge" for c in (details.causes or [] if details else [])
        )


def _failure(code: int, reason: str, message: str, details: StatusDetails | None = None) -> StatusError:
    return StatusError(Status(status="Failure", message=message, reason=reason, details=details, code=code))


def _qualified(resource: GroupResource) -> str:
    return f"{resource.resource}.{resource.group}" if resource.group else resource.resource


def _resource_details(resource: GroupResource, name: str) -> StatusDetails:
    return StatusDetails(name=name or None, group=resource.group or None, kind=resource.resource or None)


def not_found(resource: GroupResource, name: str) -> StatusError:
    """404 NotFound: ``orders.arc.opendefense.cloud "x" not found``."""
    return _failure(
        404, "NotFound", f'{_qualified(resource)} "{name}" not found', _resource_details(resource, name)
    )


def not_found_path() -> StatusError:
    """404 for a path the server does not serve (kube's ``NotFound`` from the generic handler)."""
    return _failure(404, "NotFound", "the server could not find the requested resource", StatusDetails())


def already_exists(resource: GroupResource, name: str) -> StatusError:
    """409 AlreadyExists."""
    return _failure(
        409,
        "AlreadyExists",
        f'{_qualified(resource)} "{name}" already exists',
        _resource_details(resource, name),
    )


def generate_name_conflict(resource: GroupResource, name: str, retry_after_seconds: int = 1) -> StatusError:
    """409 AlreadyExists for a ``generateName`` collision (the client retries)."""
    details = _resource_details(resource, name)
    details.retry_after_seconds = retry_after_seconds
    return _failure(
        409,
        "AlreadyExists",
        f'{_qualified(resource)} "{name}" already exists, the server was not able to generate a unique '
        "name for the object",
        details,
    )


OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(resource: GroupResource, name: str, message: str = OBJECT_MODIFIED) -> StatusError:
    """409 Conflict: ``Operation cannot be fulfilled on orders.arc.opendefense.cloud "x": <message>``."""
    return _failure(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": {message}',
        _resource_details(resource, name),
    )


def apply_conflict(causes: Sequence[tuple[str, str]], message: str) -> StatusError:
    """409 Conflict of a server-side apply (``NewApplyConflict``): one ``FieldManagerConflict`` cause per
    (field, message), details without name or kind."""
    details = StatusDetails(
        causes=[StatusCause(reason="FieldManagerConflict", message=text, field=path) for path, text in causes]
    )
    return _failure(409, "Conflict", message, details)


def invalid(kind: GroupKind, name: str, errs: Sequence[FieldError]) -> StatusError:
    """422 Invalid with one cause per field error (``NewInvalid``)."""
    details = StatusDetails(
        name=name or None,
        group=kind.group or None,
        kind=kind.kind,
        causes=[StatusCause.model_validate(cause) for cause in to_causes(errs)],
    )
    return _failure(422, "Invalid", invalid_message(kind.kind, kind.group, name, errs), details)


def invalid_generic() -> StatusError:
    """422 Invalid without field errors: a JSON patch that does not apply (a failed ``test``, a missing path).

    kube answers ``NewGenericServerResponse(422, "", GroupResource{}, "", err.Error(), 0, false)``, which
    drops the patch library's message (no causes, empty details), so neither do we send ours.
    """
    return _failure(
        422, "Invalid", "the server rejected our request due to an error in our request", StatusDetails()
    )


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return _failure(400, "BadRequest", message)


def unauthorized(message: str = "") -> StatusError:
    """401 Unauthorized."""
    return _failure(401, "Unauthorized", message or "not authorized")


def forbidden(resource: GroupResource | None, name: str, message: str) -> StatusError:
    """403 Forbidden, worded like ``NewForbidden``."""
    if resource is None or not resource.resource:
        return _failure(403, "Forbidden", f"forbidden: {message}", StatusDetails())
    if not name:
        text = f"{_qualified(resource)} is forbidden: {message}"
    else:
        text = f'{_qualified(resource)} "{name}" is forbidden: {message}'
    return _failure(403, "Forbidden", text, _resource_details(resource, name))


def method_not_supported(resource: GroupResource, action: str) -> StatusError:
    """405 MethodNotAllowed."""
    return _failure(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{_qualified(resource)}"',
        StatusDetails(group=resource.group or None, kind=resource.resource or None),
    )


def not_acceptable(accepted: Sequence[str]) -> StatusError:
    """406 NotAcceptable (``NewNotAcceptableError`` in apiserver/pkg/endpoints/handlers/negotiation)."""
    return _failure(
        406, "NotAcceptable", f"only the following media types are accepted: {', '.join(accepted)}"
    )


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> StatusError:
    """415 UnsupportedMediaType, listing the media types the endpoint accepts."""
    del content_type  # kube does not echo the rejected type
    return _failure(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def expired(message: str, continue_token: str | None = None) -> StatusError:
    """410 Expired (``NewResourceExpired``); ``continue_token`` goes into ``metadata.continue``."""
    err = _failure(410, "Expired", message)
    if continue_token:
        err.status.metadata.continue_ = continue_token
    return err


def gone(message: str) -> StatusError:
    """410 Gone."""
    return _failure(410, "Gone", message)


def request_entity_too_large(message: str) -> StatusError:
    """413 RequestEntityTooLarge."""
    return _failure(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def too_many_requests(message: str, retry_after_seconds: int = 1) -> StatusError:
    """429 TooManyRequests."""
    return _failure(429, "TooManyRequests", message, StatusDetails(retry_after_seconds=retry_after_seconds))


def internal_error(message: str) -> StatusError:
    """500 InternalError; ``message`` must not carry internals (no tracebacks, no secrets)."""
    return _failure(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        StatusDetails(causes=[StatusCause(message=message)]),
    )


def server_timeout(resource: GroupResource, operation: str, retry_after_seconds: int = 2) -> StatusError:
    """500 ServerTimeout (``NewServerTimeout``)."""
    details = StatusDetails(name=operation, group=resource.group or None, kind=resource.resource or None)
    details.retry_after_seconds = retry_after_seconds
    return _failure(
        500,
        "ServerTimeout",
        f"The {operation} operation against {_qualified(resource)} could not be completed at this time, "
        "please try again.",
        details,
    )


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable: storage unreachable (never a 404: the GC would delete dependents)."""
    return _failure(503, "ServiceUnavailable", message)


def timeout(message: str, retry_after_seconds: int = 1) -> StatusError:
    """504 Timeout (``NewTimeoutError``)."""
    return _failure(
        504, "Timeout", f"Timeout: {message}", StatusDetails(retry_after_seconds=retry_after_seconds)
    )


def resource_version_too_large(message: str) -> StatusError:
    """504 Timeout with cause ``ResourceVersionTooLarge`` (``NewTooLargeResourceVersionError``)."""
    err = timeout(message, retry_after_seconds=1)
    assert err.status.details is not None
    err.status.details.causes = [
        StatusCause(reason="ResourceVersionTooLarge", message="Too large resource version")
    ]
    return err
