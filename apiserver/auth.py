"""Who is asking (authentication) and may they (authorization).

The seams are kube-apiserver's: an ``Authenticator`` turns a request into a ``UserInfo`` (or nobody), an
``Authorizer`` decides on (user, request attributes). Standalone mode uses a static token file (kube's
``--token-auth-file`` format) and allows every authenticated user; the aggregated mode (front-proxy
request headers, delegated TokenReview and SubjectAccessReview) plugs into the same seams.
"""

from __future__ import annotations

import csv
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aiohttp import web

from apiserver.requestinfo import RequestInfo

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_anonymous(self) -> bool:
        return self.name == ANONYMOUS


ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))
USER: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)
"""The authenticated user of a request (set by the authentication middleware)."""


class AuthenticationError(Exception):
    """Credentials were presented but authenticate nobody: a client certificate no trusted CA issued (or
    whose CN is not an allowed proxy name), a bearer token nobody knows.

    kube's authenticators return an error here instead of "not recognised"; the union keeps trying the
    others, and if none succeeds the request is a 401 — never ``system:anonymous`` (anonymous is only for
    requests that present no credentials at all).
    """


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        """The user; ``None`` when the request carries no credentials of this kind; raises
        ``AuthenticationError`` when it carries such credentials but they are not valid."""
        ...


@dataclass(frozen=True)
class AuthorizationAttributes:
    """What an authorizer decides on (kube's ``authorizer.Attributes``): who asks, and the RequestInfo of what
    they ask — not the HTTP request, so authorizers live below the HTTP layer."""

    user: UserInfo
    request: RequestInfo


class Authorizer(Protocol):
    async def authorize(self, attributes: AuthorizationAttributes) -> tuple[bool, str]:
        """(allowed, reason). ``reason`` is appended to kube's 403 message when denied."""
        ...


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenFileAuthenticator:
    """Static bearer tokens: CSV lines ``token,user,uid[,"group1,group2"]`` (kube's ``--token-auth-file``)."""

    def __init__(self, path: Path) -> None:
        self._users: dict[str, UserInfo] = {}
        with path.open(newline="") as handle:
            for row in csv.reader(handle):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 3:
                    raise ValueError(f"{path}: a token line needs at least token,user,uid")
                groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
                self._users[row[0]] = UserInfo(row[1], row[2], (*groups, AUTHENTICATED))

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        token = _bearer_token(request)
        if token is None:
            return None
        for known, user in self._users.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        raise AuthenticationError("invalid bearer token")


class UnionAuthenticator:
    """The first authenticator that recognises the request wins (kube's union authenticator).

    An ``AuthenticationError`` of one does not stop the others; when none succeeds, the errors are raised
    together (``unionAuthRequestHandler`` without FailOnError).
    """

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self.authenticators = list(authenticators)

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        failures: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(request)
            except AuthenticationError as err:
                failures.append(str(err))
                continue
            if user is not None:
                return user
        if failures:
            raise AuthenticationError("[" + ", ".join(failures) + "]" if len(failures) > 1 else failures[0])
        return None


class AuthenticatedAllowedAuthorizer:
    """Standalone mode: every authenticated user may do everything; anonymous only the public paths."""

    async def authorize(self, attributes: AuthorizationAttributes) -> tuple[bool, str]:
        if not attributes.user.is_anonymous or attributes.request.path in PUBLIC_PATHS:
            return True, ""
        return False, ""
