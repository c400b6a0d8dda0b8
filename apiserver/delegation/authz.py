"""Delegated authorization: a SubjectAccessReview for every request, as ``k8s.io/apiserver`` does it.

``system:masters`` and the health paths are always allowed (the delegating authorizer's defaults);
everything else is asked of kube-apiserver with the attributes kube's RequestInfo computes, and the answer
is cached (allowed and denied, 10 s each).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiohttp import web

from apiserver import errors
from apiserver.auth import UserInfo
from apiserver.delegation.kubeclient import KubeApiError, KubeClient
from apiserver.middleware import INFO

logger = logging.getLogger(__name__)

ALWAYS_ALLOW_GROUPS = frozenset({"system:masters"})
ALWAYS_ALLOW_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


class SubjectAccessReviewAuthorizer:
    def __init__(self, client: KubeClient, *, allow_ttl: float = 10.0, deny_ttl: float = 10.0) -> None:
        self.client = client
        self.allow_ttl = allow_ttl
        self.deny_ttl = deny_ttl
        self._cache: dict[bytes, tuple[float, bool, str]] = {}

    def review(self, user: UserInfo, request: web.Request) -> dict[str, Any]:
        info = request[INFO]
        spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        if info.is_resource_request:
            spec["resourceAttributes"] = {
                "namespace": info.namespace,
                "verb": info.verb,
                "group": info.api_group,
                "version": info.api_version,
                "resource": info.resource,
                "subresource": info.subresource,
                "name": info.name,
            }
        else:
            spec["nonResourceAttributes"] = {"path": info.path, "verb": info.verb}
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}

    async def authorize(self, user: UserInfo, request: web.Request) -> tuple[bool, str]:
        if ALWAYS_ALLOW_GROUPS.intersection(user.groups) or request.path in ALWAYS_ALLOW_PATHS:
            return True, ""
        return await self._ask(self.review(user, request))

    async def allowed(self, user: UserInfo, resource_attributes: dict[str, str]) -> tuple[bool, str]:
        """May ``user`` do what ``resource_attributes`` (a SAR's ``resourceAttributes``) say? For checks
        beyond the request's own verb, such as admission's "may the writer read this Secret"; answered
        and cached like requests (``system:masters`` always may)."""
        if ALWAYS_ALLOW_GROUPS.intersection(user.groups):
            return True, ""
        spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        spec["resourceAttributes"] = dict(resource_attributes)
        return await self._ask(
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        )

    async def _ask(self, review: dict[str, Any]) -> tuple[bool, str]:
        key = orjson.dumps(review["spec"], option=orjson.OPT_SORT_KEYS)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        try:
            result = await self.client.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        except KubeApiError as err:
            logger.warning("subject access review failed", extra={"error": str(err)})
            raise errors.internal_error("the authorization check could not be completed") from None
        status = result.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        if len(self._cache) > 8192:
            self._cache.clear()
        self._cache[key] = (now + (self.allow_ttl if allowed else self.deny_ttl), allowed, reason)
        return allowed, reason
