"""The SubjectAccessReview authorizer caches answers as kube's webhook authorizer does
(k8s.io/apiserver plugin/pkg/authorizer/webhook): key = the whole review spec, an LRU of 8,192 entries,
allowed and denied answers each with their own TTL, nothing cached for oversized attributes, and the
delegating authorizer's request metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from apiserver import errors
from apiserver.auth import AuthorizationAttributes, UserInfo
from apiserver.delegation.authz import (
    AUTHORIZED_TTL,
    CACHE_SIZE,
    UNAUTHORIZED_TTL,
    LRUExpireCache,
    SubjectAccessReviewAuthorizer,
)
from apiserver.delegation.client import DelegationClient, DelegationError
from apiserver.requestinfo import new_request_info
from apiserver.server import AUTHORIZER, Config, create_app
from apiserver.storage.memory import MemoryStorage

CONTROLLER = UserInfo(
    "system:serviceaccount:arc-system:arc-controller-manager", groups=("system:authenticated",)
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """kube-apiserver's SubjectAccessReview endpoint: answers from `allow(spec)`, records every review."""

    def __init__(self, allow: bool = True, fail: int = 0) -> None:
        self.allow = allow
        self.fail = fail
        self.reviews: list[dict[str, Any]] = []

    async def create(self, path: str, body: Any) -> Any:
        assert path == "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        self.reviews.append(body["spec"])
        if self.fail:
            raise DelegationError(self.fail, {"message": "boom"})
        return {**body, "status": {"allowed": self.allow, "reason": "" if self.allow else "RBAC: nope"}}


def make(kube: FakeKube, clock: Clock, **kwargs: Any) -> SubjectAccessReviewAuthorizer:
    return SubjectAccessReviewAuthorizer(cast(DelegationClient, kube), clock=clock, **kwargs)


def attrs(method: str, path: str, user: UserInfo = CONTROLLER) -> AuthorizationAttributes:
    return AuthorizationAttributes(user, new_request_info(method, path))


ORDER = "/apis/arc.opendefense.cloud/v1alpha1/namespaces/bench/orders"


def counter(name: str, code: str) -> float:
    return REGISTRY.get_sample_value(name, {"code": code}) or 0.0


def test_defaults_are_the_delegating_authorizers() -> None:
    # k8s.io/apiserver/pkg/server/options/authorization.go: AllowCacheTTL and DenyCacheTTL 10 s
    assert (AUTHORIZED_TTL, UNAUTHORIZED_TTL, CACHE_SIZE) == (10.0, 10.0, 8192)


async def test_same_spec_is_asked_once_until_the_ttl_passes() -> None:
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock, allow_ttl=300.0, deny_ttl=30.0)
    for _ in range(3):
        assert await authz.authorize(attrs("POST", ORDER)) == (True, "")
    assert len(kube.reviews) == 1
    clock.now += 299.0
    await authz.authorize(attrs("POST", ORDER))
    assert len(kube.reviews) == 1
    clock.now += 2.0
    await authz.authorize(attrs("POST", ORDER))
    assert len(kube.reviews) == 2


async def test_denied_answers_have_their_own_ttl() -> None:
    kube, clock = FakeKube(allow=False), Clock()
    authz = make(kube, clock, allow_ttl=300.0, deny_ttl=30.0)
    assert await authz.authorize(attrs("GET", f"{ORDER}/o-1")) == (False, "RBAC: nope")
    clock.now += 29.0
    assert await authz.authorize(attrs("GET", f"{ORDER}/o-1")) == (False, "RBAC: nope")
    assert len(kube.reviews) == 1
    clock.now += 2.0
    kube.allow = True
    assert await authz.authorize(attrs("GET", f"{ORDER}/o-1")) == (True, "")
    assert len(kube.reviews) == 2


async def test_the_key_is_the_whole_spec() -> None:
    """The object's name, the subresource, the verb and the user's groups each make a different review."""
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock)
    other = UserInfo(CONTROLLER.name, groups=("system:authenticated", "team-a"))
    requests = [
        attrs("PATCH", f"{ORDER}/o-1"),
        attrs("PATCH", f"{ORDER}/o-2"),
        attrs("PUT", f"{ORDER}/o-1/status"),
        attrs("PUT", f"{ORDER}/o-1"),
        attrs("PATCH", f"{ORDER}/o-1", other),
    ]
    for request in requests + requests:
        await authz.authorize(request)
    assert len(kube.reviews) == len(requests)
    assert kube.reviews[0]["resourceAttributes"] == {
        "namespace": "bench",
        "verb": "patch",
        "group": "arc.opendefense.cloud",
        "version": "v1alpha1",
        "resource": "orders",
        "subresource": "",
        "name": "o-1",
    }


async def test_masters_and_health_paths_are_never_reviewed() -> None:
    kube, clock = FakeKube(allow=False), Clock()
    authz = make(kube, clock)
    admin = UserInfo("admin", groups=("system:masters",))
    assert await authz.authorize(attrs("DELETE", f"{ORDER}/o-1", admin)) == (True, "")
    assert await authz.authorize(attrs("GET", "/readyz")) == (True, "")
    assert kube.reviews == []


async def test_least_recently_used_entry_is_evicted() -> None:
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock, cache_size=2)
    a, b, c = (attrs("GET", f"{ORDER}/o-{i}") for i in "abc")
    await authz.authorize(a)
    await authz.authorize(b)
    await authz.authorize(a)  # a is now the most recently used
    await authz.authorize(c)  # evicts b
    await authz.authorize(a)
    assert len(kube.reviews) == 3
    await authz.authorize(b)
    assert len(kube.reviews) == 4


async def test_oversized_attributes_are_not_cached() -> None:
    """shouldCache: requester-controlled attributes of 10,000 bytes or more are reviewed every time."""
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock)
    long_name = "x" * 9_000
    request = attrs("GET", f"{ORDER}/{long_name}")  # the path counts too: > 10,000 in all
    await authz.authorize(request)
    await authz.authorize(request)
    assert len(kube.reviews) == 2


async def test_zero_ttl_caches_nothing() -> None:
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock, allow_ttl=0.0)
    await authz.authorize(attrs("GET", f"{ORDER}/o-1"))
    await authz.authorize(attrs("GET", f"{ORDER}/o-1"))
    assert len(kube.reviews) == 2


async def test_failures_are_500_never_cached_and_counted() -> None:
    kube, clock = FakeKube(fail=503), Clock()
    authz = make(kube, clock)
    before = counter("apiserver_delegated_authz_request_total", "503")
    for _ in range(2):
        with pytest.raises(errors.StatusError) as caught:
            await authz.authorize(attrs("GET", f"{ORDER}/o-1"))
        assert caught.value.code == 500
    assert len(kube.reviews) == 2
    assert counter("apiserver_delegated_authz_request_total", "503") - before == 2
    kube.fail = 0
    ok_before = counter("apiserver_delegated_authz_request_total", "201")
    await authz.authorize(attrs("GET", f"{ORDER}/o-1"))
    assert counter("apiserver_delegated_authz_request_total", "201") - ok_before == 1
    assert REGISTRY.get_sample_value(
        "apiserver_delegated_authz_request_duration_seconds_count", {"code": "201"}
    )


async def test_extra_checks_share_the_cache() -> None:
    """`allowed` (admission's "may the writer read this Secret") is cached by its spec as well."""
    kube, clock = FakeKube(), Clock()
    authz = make(kube, clock)
    secret = {"namespace": "bench", "verb": "get", "group": "", "resource": "secrets", "name": "creds"}
    assert await authz.allowed(CONTROLLER, secret) == (True, "")
    assert await authz.allowed(CONTROLLER, secret) == (True, "")
    assert len(kube.reviews) == 1


def test_lru_expire_cache_expires_on_read() -> None:
    clock = Clock()
    cache = LRUExpireCache(4, clock)
    cache.add(b"k", (True, ""), 5.0)
    assert cache.get(b"k") == (True, "")
    clock.now += 5.1
    assert cache.get(b"k") is None
    assert len(cache) == 0


def test_the_delegated_server_uses_the_configured_ttls(tmp_path: Path) -> None:
    """`--authorization-webhook-cache-*-ttl` reach the authorizer every request passes."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    app = create_app(
        Config(
            storage=MemoryStorage(),
            delegated=True,
            kubeconfig=kubeconfig,
            authorization_cache_authorized_ttl=300.0,
            authorization_cache_unauthorized_ttl=0.0,
        )
    )
    authorizer = app[AUTHORIZER]
    assert isinstance(authorizer, SubjectAccessReviewAuthorizer)
    assert (authorizer.allow_ttl, authorizer.deny_ttl) == (300.0, 0.0)
