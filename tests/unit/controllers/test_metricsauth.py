"""controllers.runtime.metricsauth: `--metrics-secure`'s decisions, as controller-runtime's filter makes them
(401 without a token kube-apiserver vouches for, 403 without `get` on the path, 500 when the reviews fail),
with the reviews' caches, against a kube-apiserver double that answers TokenReviews and SARs."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from controllers.kube.errors import TransportError
from controllers.kube.resources import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS, Resource
from controllers.runtime.metricsauth import MetricsAuth, serving_context


class ReviewingAPI:
    """kube-apiserver's review endpoints: `tokens` maps a token to its user; `allowed` the users that may
    `get /metrics`. Records every review it is asked."""

    def __init__(self) -> None:
        self.tokens = {"reader-token": {"username": "system:serviceaccount:mon:prometheus", "groups": ["g"]}}
        self.tokens["other-token"] = {"username": "alice", "uid": "u-1"}
        self.allowed = {("system:serviceaccount:mon:prometheus", "get", "/metrics")}
        self.reviews: list[tuple[Resource, dict[str, Any]]] = []
        self.down = False

    async def create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        assert namespace is None
        self.reviews.append((resource, body))
        if self.down:
            raise TransportError("POST: connection refused")
        if resource == TOKEN_REVIEWS:
            user = self.tokens.get(body["spec"]["token"])
            return {**body, "status": {"authenticated": user is not None, **({"user": user} if user else {})}}
        assert resource == SUBJECT_ACCESS_REVIEWS
        spec = body["spec"]
        attrs = spec["nonResourceAttributes"]
        allowed = (spec["user"], attrs["verb"], attrs["path"]) in self.allowed
        return {**body, "status": {"allowed": allowed}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _served(request: web.Request) -> web.StreamResponse:
    return web.Response(text="metrics")


async def call(
    auth: MetricsAuth, path: str, token: str | None = None, method: str = "GET"
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = await auth.middleware(make_mocked_request(method, path, headers=headers), _served)
    assert isinstance(response, web.Response)
    return response.status, response.text or ""


async def test_no_token_or_an_unknown_one_is_401_and_only_known_tokens_are_reviewed() -> None:
    api = ReviewingAPI()
    auth = MetricsAuth(api)  # type: ignore[arg-type]
    assert await call(auth, "/metrics") == (401, "Unauthorized\n")
    assert api.reviews == []  # no token: nothing to ask
    assert await call(auth, "/metrics", "") == (401, "Unauthorized\n")
    assert await call(auth, "/metrics", "stolen") == (401, "Unauthorized\n")
    assert [r.plural for r, _ in api.reviews] == ["tokenreviews"]
    assert api.reviews[0][1]["spec"] == {"token": "stolen"}


async def test_a_user_without_get_on_the_path_is_403_with_controller_runtimes_words() -> None:
    api = ReviewingAPI()
    auth = MetricsAuth(api)  # type: ignore[arg-type]
    assert await call(auth, "/metrics", "other-token") == (403, "Authorization denied for user alice\n")
    sar = api.reviews[-1][1]["spec"]
    assert sar == {
        "user": "alice",
        "groups": [],
        "uid": "u-1",
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }


async def test_an_allowed_user_reads_metrics_and_the_verb_is_the_lower_cased_method() -> None:
    api = ReviewingAPI()
    auth = MetricsAuth(api)  # type: ignore[arg-type]
    assert await call(auth, "/metrics", "reader-token") == (200, "metrics")
    assert api.reviews[-1][1]["spec"]["groups"] == ["g"]
    # POST is verb "post": not granted by get.
    assert await call(auth, "/metrics", "reader-token", method="POST") == (
        403,
        "Authorization denied for user system:serviceaccount:mon:prometheus\n",
    )


async def test_the_probes_stay_open() -> None:
    api = ReviewingAPI()
    auth = MetricsAuth(api)  # type: ignore[arg-type]
    for path in ("/healthz", "/livez", "/readyz"):
        assert await call(auth, path) == (200, "metrics")
    assert api.reviews == []


async def test_reviews_are_cached_one_minute_allow_five_deny_thirty_seconds() -> None:
    api, clock = ReviewingAPI(), Clock()
    auth = MetricsAuth(api, clock=clock)  # type: ignore[arg-type]
    await call(auth, "/metrics", "reader-token")
    await call(auth, "/metrics", "other-token")
    assert len(api.reviews) == 4
    clock.now += 29
    await call(auth, "/metrics", "reader-token")
    await call(auth, "/metrics", "other-token")
    assert len(api.reviews) == 4  # everything cached
    clock.now += 32  # 61 s: tokens reviewed again; alice's denial (30 s) asked again, the allow (300 s) not
    await call(auth, "/metrics", "reader-token")
    await call(auth, "/metrics", "other-token")
    assert [r.plural for r, _ in api.reviews[4:]] == ["tokenreviews", "tokenreviews", "subjectaccessreviews"]


async def test_reviews_that_fail_are_500_and_not_cached() -> None:
    api = ReviewingAPI()
    auth = MetricsAuth(api)  # type: ignore[arg-type]
    api.down = True
    assert await call(auth, "/metrics", "reader-token") == (500, "Authentication failed\n")
    api.down = False
    assert await call(auth, "/metrics", "reader-token") == (200, "metrics")


def test_the_self_signed_serving_context_loads() -> None:
    context = serving_context(None)
    assert context.minimum_version.name == "TLSv1_2"
