"""Delegated authorization: a SubjectAccessReview for every request, as ``k8s.io/apiserver`` does it.

``system:masters`` and the health paths are always allowed (the delegating authorizer's defaults);
everything else is asked of kube-apiserver with the attributes kube's RequestInfo computes, and the answer
is cached as kube's webhook authorizer caches it (``plugin/pkg/authorizer/webhook``): the key is the whole
SubjectAccessReview spec (user, groups, uid, extra and every attribute, the object's name included), the
cache is an LRU of 8,192 entries whose entries expire after the authorized or unauthorized TTL, and a
request whose requester-controlled attributes add up to 10,000 bytes or more is never cached (a DoS guard).
The TTLs default to what ``DelegatingAuthorizationOptions`` gives every extension API server (10 s each;
flags ``--authorization-webhook-cache-authorized-ttl`` / ``-unauthorized-ttl``) — not kube-apiserver's own
webhook defaults (5 min / 30 s), so a revoked RoleBinding stops working in ARC within seconds, as in any
sample-apiserver. A longer TTL would not save requests of a controller anyway: its writes name their object,
so each new object is a new key.

Metrics as upstream's delegating authorizer: ``apiserver_delegated_authz_request_total{code}`` and
``apiserver_delegated_authz_request_duration_seconds{code}`` per review sent (``code`` the HTTP status, or
``<error>`` when none came back).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import Counter, Histogram

from apiserver import errors
from apiserver.auth import AuthorizationAttributes, UserInfo
from apiserver.delegation.client import DelegationClient, DelegationError

logger = logging.getLogger(__name__)

ALWAYS_ALLOW_GROUPS = frozenset({"system:masters"})
ALWAYS_ALLOW_PATHS = frozenset({"/healthz", "/readyz", "/livez"})

AUTHORIZED_TTL = 10.0
"""``DelegatingAuthorizationOptions.AllowCacheTTL`` (k8s.io/apiserver/pkg/server/options/authorization.go)."""
UNAUTHORIZED_TTL = 10.0
"""``DelegatingAuthorizationOptions.DenyCacheTTL``."""
CACHE_SIZE = 8192
"""The webhook authorizer's ``cache.NewLRUExpireCache(8192)``."""
MAX_CONTROLLED_ATTR_CACHE_SIZE = 10_000
"""``maxControlledAttrCacheSize``: larger requester-controlled attributes are not cached."""

DELEGATED_AUTHZ_REQUESTS = Counter(
    "apiserver_delegated_authz_request_total", "Number of HTTP requests partitioned by status code.", ["code"]
)
DELEGATED_AUTHZ_DURATION = Histogram(
    "apiserver_delegated_authz_request_duration_seconds",
    "Request latency in seconds. Broken down by status code.",
    ["code"],
    buckets=(0.25, 0.5, 0.7, 1, 1.5, 3, 5, 10),
)


class LRUExpireCache:
    """apimachinery's ``cache.LRUExpireCache``: at most `size` entries, least recently used evicted first,
    each entry expiring `ttl` seconds after it was added (an expired entry is removed when read)."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, tuple[bool, str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[bool, str] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() > entry[0]:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def add(self, key: bytes, value: tuple[bool, str], ttl: float) -> None:
        self._entries[key] = (self.clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def controlled_attributes_size(spec: dict[str, Any], path: str = "") -> int:
    """``shouldCache``'s measure: namespace, verb, group, version, resource, subresource, name and path."""
    attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
    fields = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
    size = sum(len(str(attrs.get(f) or "")) for f in fields)
    return size + len(path or str(attrs.get("path") or ""))


class SubjectAccessReviewAuthorizer:
    def __init__(
        self,
        client: DelegationClient,
        *,
        allow_ttl: float = AUTHORIZED_TTL,
        deny_ttl: float = UNAUTHORIZED_TTL,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`allow_ttl`/`deny_ttl`: ``--authorization-webhook-cache-authorized-ttl``/``-unauthorized-ttl``
        (0 disables caching of that answer, as a zero TTL does upstream)."""
        self.client = client
        self.allow_ttl = allow_ttl
        self.deny_ttl = deny_ttl
        self.clock = clock
        self._cache = LRUExpireCache(cache_size, clock)

    def review(self, attributes: AuthorizationAttributes) -> dict[str, Any]:
        user, info = attributes.user, attributes.request
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

    async def authorize(self, attributes: AuthorizationAttributes) -> tuple[bool, str]:
        if (
            ALWAYS_ALLOW_GROUPS.intersection(attributes.user.groups)
            or attributes.request.path in ALWAYS_ALLOW_PATHS
        ):
            return True, ""
        return await self._ask(self.review(attributes), attributes.request.path)

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

    async def _ask(self, review: dict[str, Any], path: str = "") -> tuple[bool, str]:
        key = orjson.dumps(review["spec"], option=orjson.OPT_SORT_KEYS)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        try:
            result = await self.client.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        except DelegationError as err:
            code = str(err.status) if err.status else "<error>"
            DELEGATED_AUTHZ_REQUESTS.labels(code).inc()
            DELEGATED_AUTHZ_DURATION.labels(code).observe(time.perf_counter() - started)
            logger.warning("subject access review failed", extra={"error": str(err)})
            raise errors.internal_error("the authorization check could not be completed") from None
        DELEGATED_AUTHZ_REQUESTS.labels("201").inc()
        DELEGATED_AUTHZ_DURATION.labels("201").observe(time.perf_counter() - started)
        status = result.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        ttl = self.allow_ttl if allowed else self.deny_ttl
        if ttl > 0 and controlled_attributes_size(review["spec"], path) < MAX_CONTROLLED_ATTR_CACHE_SIZE:
            self._cache.add(key, (allowed, reason), ttl)
        return allowed, reason
