"""Delegated authentication decides like kube's: which credentials are "not recognised" (anonymous may
follow) and which are invalid (401), per k8s.io/apiserver's x509 Verifier/Authenticator, headerrequest and
the delegating union (authenticatorfactory/delegating.go)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from apiserver.auth import (
    USER,
    AuthenticationError,
    AuthorizationAttributes,
    TokenFileAuthenticator,
    UnionAuthenticator,
    UserInfo,
)
from apiserver.delegation.authn import (
    AuthenticationConfig,
    ClientCertificateAuthenticator,
    ExtensionAuthentication,
    RequestHeaderAuthenticator,
)
from apiserver.middleware import auth_middleware, context_middleware
from hack import pki

FORGED = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}


class Certs:
    def __init__(self, d: Path) -> None:
        self.cluster_ca = pki.create_ca(d, "ca", "cluster-ca")
        self.proxy_ca = pki.create_ca(d, "front-proxy-ca", "front-proxy-ca")
        self.other_ca = pki.create_ca(d, "other-ca", "other-ca")
        self.proxy = pki.issue(self.proxy_ca, d, "proxy", common_name="front-proxy-client", client=True)
        self.wrong_cn = pki.issue(self.proxy_ca, d, "wrong-cn", common_name="mallory", client=True)
        self.server_only = pki.issue(self.proxy_ca, d, "srv", common_name="front-proxy-client", server=True)
        self.foreign_proxy = pki.issue(
            self.other_ca, d, "foreign", common_name="front-proxy-client", client=True
        )
        self.dave = pki.issue(
            self.cluster_ca, d, "dave", common_name="dave", organizations=["team-d"], client=True
        )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def union(certs: Certs) -> UnionAuthenticator:
    config = AuthenticationConfig(
        client_ca=[x509.load_pem_x509_certificate(certs.cluster_ca.cert_pem)],
        requestheader_ca=[x509.load_pem_x509_certificate(certs.proxy_ca.cert_pem)],
        allowed_names=["front-proxy-client"],
        username_headers=["X-Remote-User"],
        uid_headers=["X-Remote-Uid"],
        group_headers=["X-Remote-Group"],
        extra_prefixes=["X-Remote-Extra-"],
    )
    source = cast(ExtensionAuthentication, SimpleNamespace(config=config))
    return UnionAuthenticator([RequestHeaderAuthenticator(source), ClientCertificateAuthenticator(source)])


class _SSLObject:
    def __init__(self, der: bytes | None) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.der


class _Transport:
    def __init__(self, pair: pki.KeyPair | None) -> None:
        self.ssl = _SSLObject(
            x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(Encoding.DER)
            if pair is not None
            else None
        )

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.ssl if name == "ssl_object" else default


def _request(pair: pki.KeyPair | None, headers: dict[str, str] | None = None) -> web.Request:
    return make_mocked_request("GET", "/apis", headers=headers or {}, transport=_Transport(pair))


async def test_forged_headers_without_a_certificate_are_not_recognised(union: UnionAuthenticator) -> None:
    assert await union.authenticate(_request(None, FORGED)) is None


async def test_the_proxy_certificate_makes_the_headers_count(union: UnionAuthenticator, certs: Certs) -> None:
    headers = {**FORGED, "X-Remote-Uid": "u-1", "X-Remote-Extra-Scopes%2fA": "x"}
    user = await union.authenticate(_request(certs.proxy, headers))
    assert user == UserInfo("admin", "u-1", ("system:masters", "system:authenticated"), {"scopes/a": ("x",)})


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("foreign_proxy", "certificate signed by unknown authority"),
        ("wrong_cn", "x509: subject with cn=mallory is not in the allowed list"),
        ("server_only", "incompatible key usage"),
    ],
)
async def test_bad_proxy_certificates_are_errors_not_anonymous(
    union: UnionAuthenticator, certs: Certs, which: str, message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message):
        await union.authenticate(_request(getattr(certs, which), FORGED))


async def test_proxy_certificate_without_a_user_header_is_an_error(
    union: UnionAuthenticator, certs: Certs
) -> None:
    # The request-header authenticator does not recognise it; the client-certificate one rejects it.
    with pytest.raises(AuthenticationError, match="unknown authority"):
        await union.authenticate(_request(certs.proxy))


async def test_cluster_client_certificate_is_its_subject_whatever_the_headers(
    union: UnionAuthenticator, certs: Certs
) -> None:
    user = await union.authenticate(_request(certs.dave, FORGED))
    assert user == UserInfo("dave", "", ("team-d", "system:authenticated"))


async def test_unknown_static_token_is_an_error(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("good,alice,1\n")
    auth = TokenFileAuthenticator(tokens)
    request = make_mocked_request("GET", "/apis", headers={"Authorization": "Bearer bad"})
    with pytest.raises(AuthenticationError, match="invalid bearer token"):
        await auth.authenticate(request)


class _Raising:
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        raise AuthenticationError("x509: certificate signed by unknown authority")


class _Nobody:
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        return None


class _AllowAll:
    async def authorize(self, attributes: AuthorizationAttributes) -> tuple[bool, str]:
        return True, ""


async def _serve(authenticator: Any) -> TestClient[Any, Any]:
    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"user": request[USER].name})

    app = web.Application(
        middlewares=[context_middleware, auth_middleware(authenticator, _AllowAll(), anonymous=True)]
    )
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/readyz", whoami)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_invalid_credentials_are_401_even_where_anonymous_is_allowed() -> None:
    client = await _serve(UnionAuthenticator([_Nobody(), _Raising(), _Nobody()]))
    try:
        for path in ("/whoami", "/readyz"):
            resp = await client.get(path)
            assert resp.status == 401
            body = await resp.json()
            assert (body["reason"], body["message"], body["code"]) == ("Unauthorized", "Unauthorized", 401)
    finally:
        await client.close()


async def test_no_credentials_are_anonymous() -> None:
    client = await _serve(UnionAuthenticator([_Nobody()]))
    try:
        resp = await client.get("/whoami")
        assert resp.status == 200
        assert (await resp.json()) == {"user": "system:anonymous"}
    finally:
        await client.close()
