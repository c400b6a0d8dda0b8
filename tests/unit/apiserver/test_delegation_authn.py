"""Delegated authentication decides like kube's: which credentials are "not recognised" (anonymous may
follow) and which are invalid (401), per k8s.io/apiserver's x509 Verifier/Authenticator, headerrequest and
the delegating union (authenticatorfactory/delegating.go)."""

from __future__ import annotations

import base64
import datetime
import socket
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.auth import (
    USER,
    AuthenticationError,
    AuthorizationAttributes,
    TokenFileAuthenticator,
    UnionAuthenticator,
    UserInfo,
)
from apiserver.connections import unix_listener
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


# --- behind a local TLS terminator (--tls-terminator-socket): the RFC 9440 Client-Cert header ----------

HEADER = "Client-Cert"


def _der(pair: pki.KeyPair) -> bytes:
    return x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(Encoding.DER)


def _client_cert(der: bytes) -> str:
    return ":" + base64.b64encode(der).decode() + ":"


class _Socket:
    def __init__(self, family: socket.AddressFamily) -> None:
        self.family = family


class _PlainTransport:
    """A connection without TLS: the terminator's Unix socket, or (never in ARC) plain TCP."""

    def __init__(self, family: socket.AddressFamily) -> None:
        self.sock = _Socket(family)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


class _TLSTransport(_Transport):
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return _Socket(socket.AF_INET)
        return super().get_extra_info(name, default)


@pytest.fixture
def behind_terminator(union: UnionAuthenticator) -> UnionAuthenticator:
    """The same authenticators, configured as with ``--tls-terminator-socket``."""
    source = cast(RequestHeaderAuthenticator, union.authenticators[0]).source
    return UnionAuthenticator(
        [
            RequestHeaderAuthenticator(source, terminator_header=HEADER),
            ClientCertificateAuthenticator(source, terminator_header=HEADER),
        ]
    )


def _via_terminator(pair: pki.KeyPair | None, headers: dict[str, str]) -> web.Request:
    if pair is not None:
        headers = {**headers, HEADER: _client_cert(_der(pair))}
    return make_mocked_request("GET", "/apis", headers=headers, transport=_PlainTransport(socket.AF_UNIX))


def _expired(certs: Certs) -> bytes:
    """The front proxy's name and key usage, issued by the request-header CA, expired yesterday."""
    ca_cert = x509.load_pem_x509_certificate(certs.proxy_ca.cert_pem)
    ca_key = serialization.load_pem_private_key(certs.proxy_ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-client")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


async def test_the_terminators_header_is_the_proxy_certificate_on_the_unix_socket(
    behind_terminator: UnionAuthenticator, certs: Certs
) -> None:
    headers = {**FORGED, "X-Remote-Uid": "u-1"}
    user = await behind_terminator.authenticate(_via_terminator(certs.proxy, headers))
    assert user == UserInfo("admin", "u-1", ("system:masters", "system:authenticated"))
    # bare base64 (without RFC 9440's colons) is the same certificate
    bare = {**headers, HEADER: base64.b64encode(_der(certs.proxy)).decode()}
    request = make_mocked_request("GET", "/apis", headers=bare, transport=_PlainTransport(socket.AF_UNIX))
    assert await behind_terminator.authenticate(request) == user


async def test_a_cluster_client_certificate_in_the_header_is_its_subject(
    behind_terminator: UnionAuthenticator, certs: Certs
) -> None:
    user = await behind_terminator.authenticate(_via_terminator(certs.dave, FORGED))
    assert user == UserInfo("dave", "", ("team-d", "system:authenticated"))


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("foreign_proxy", "certificate signed by unknown authority"),
        ("wrong_cn", "x509: subject with cn=mallory is not in the allowed list"),
        ("server_only", "incompatible key usage"),
    ],
)
async def test_bad_certificates_in_the_header_are_refused_as_over_tls(
    union: UnionAuthenticator, behind_terminator: UnionAuthenticator, certs: Certs, which: str, message: str
) -> None:
    pair = getattr(certs, which)
    with pytest.raises(AuthenticationError, match=message) as over_tls:
        await union.authenticate(_request(pair, FORGED))
    with pytest.raises(AuthenticationError, match=message) as over_header:
        await behind_terminator.authenticate(_via_terminator(pair, FORGED))
    assert str(over_header.value) == str(over_tls.value)


async def test_an_expired_proxy_certificate_in_the_header_is_refused(
    behind_terminator: UnionAuthenticator, certs: Certs
) -> None:
    headers = {**FORGED, HEADER: _client_cert(_expired(certs))}
    request = make_mocked_request("GET", "/apis", headers=headers, transport=_PlainTransport(socket.AF_UNIX))
    with pytest.raises(AuthenticationError, match="unknown authority"):
        await behind_terminator.authenticate(request)


@pytest.mark.parametrize(
    "value",
    [":not base64!:", ":" + base64.b64encode(b"not a certificate").decode() + ":", "::"],
)
async def test_a_malformed_header_is_refused(behind_terminator: UnionAuthenticator, value: str) -> None:
    headers = {**FORGED, HEADER: value}
    request = make_mocked_request("GET", "/apis", headers=headers, transport=_PlainTransport(socket.AF_UNIX))
    with pytest.raises(AuthenticationError):
        await behind_terminator.authenticate(request)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
async def test_the_header_is_ignored_on_tcp(
    behind_terminator: UnionAuthenticator, certs: Certs, family: socket.AddressFamily
) -> None:
    headers = {**FORGED, HEADER: _client_cert(_der(certs.proxy))}
    plain = make_mocked_request("GET", "/apis", headers=headers, transport=_PlainTransport(family))
    assert await behind_terminator.authenticate(plain) is None
    tls_without_certificate = make_mocked_request(
        "GET", "/apis", headers=headers, transport=_TLSTransport(None)
    )
    assert await behind_terminator.authenticate(tls_without_certificate) is None
    # over TLS the handshake's certificate counts, not the header's
    tls_as_dave = make_mocked_request("GET", "/apis", headers=headers, transport=_TLSTransport(certs.dave))
    assert await behind_terminator.authenticate(tls_as_dave) == UserInfo(
        "dave", "", ("team-d", "system:authenticated")
    )


async def test_the_header_is_ignored_without_the_terminator_option(
    union: UnionAuthenticator, certs: Certs
) -> None:
    assert await union.authenticate(_via_terminator(certs.proxy, FORGED)) is None


async def test_over_real_sockets_only_the_unix_listener_honours_the_header(
    behind_terminator: UnionAuthenticator, certs: Certs, tmp_path: Path
) -> None:
    """The server as ``--tls-terminator-socket`` runs it: one application on TCP and on the Unix socket."""

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"user": request[USER].name, "groups": list(request[USER].groups)})

    app = web.Application(
        middlewares=[context_middleware, auth_middleware(behind_terminator, _AllowAll(), anonymous=True)]
    )
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    path = tmp_path / "arc.sock"
    listener = unix_listener(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await web.SockSite(runner, listener).start()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy = {**FORGED, HEADER: _client_cert(_der(certs.proxy))}
    forged = {**FORGED, HEADER: _client_cert(_der(certs.foreign_proxy))}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as unix:
            async with unix.get("http://arc/whoami", headers=proxy) as resp:
                assert resp.status == 200
                assert (await resp.json())["user"] == "admin"
            async with unix.get("http://arc/whoami", headers=forged) as resp:
                assert resp.status == 401
                assert (await resp.json())["reason"] == "Unauthorized"
            async with unix.get("http://arc/whoami", headers=FORGED) as resp:
                assert (await resp.json())["user"] == "system:anonymous"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/whoami", headers=proxy) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["user"] == "system:anonymous"
    finally:
        await runner.cleanup()
        listener.close()


def test_the_terminator_socket_is_private_replaces_a_stale_socket_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "arc.sock"
    first = unix_listener(path)
    first.close()  # a crashed server leaves its socket file behind
    second = unix_listener(path)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        second.close()
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    with pytest.raises(OSError):
        unix_listener(regular)
    assert regular.read_text() == "keep me"
