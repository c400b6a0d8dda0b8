"""What an admission plugin sees and what it is (kube's `admission.Attributes` and `admission.Interface`).

Defined here, below the HTTP layer, so that plugins depend on attributes and never on the handlers that
build them (`handlers.py` fills them in from the request it parsed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from api.resources import ResourceInfo
from apiserver.auth import UserInfo

if TYPE_CHECKING:
    from apiserver.registry.store import RequestScope

__all__ = ["AdmissionAttributes", "AdmissionPlugin"]


@dataclass(frozen=True)
class AdmissionAttributes:
    """What an admission plugin sees (``admission.Attributes``)."""

    operation: str  # CREATE, UPDATE, DELETE
    info: ResourceInfo
    namespace: str | None
    name: str
    subresource: str | None
    obj: Mapping[str, Any] | None
    dry_run: bool
    user: UserInfo | None = None
    """Who writes (``admission.Attributes.GetUserInfo``): plugins that authorize more than the request."""
    scope: RequestScope | None = None
    """The write's scope: a plugin may add ``final_checks`` on the object as it will be stored."""
    patch: tuple[str, Any] | None = None
    """(media type, document) of a PATCH, whose result the plugin does not see (``obj`` is None)."""


class AdmissionPlugin(Protocol):
    """Validating admission: raise a StatusError to reject. Runs before the object is written."""

    async def admit(self, attributes: AdmissionAttributes) -> None: ...
