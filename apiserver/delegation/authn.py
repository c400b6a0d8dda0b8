"""Delegated authentication: front-proxy request headers, client certificates and TokenReview.

``ExtensionAuthentication`` keeps ``kube-system/extension-apiserver-authentication`` (published by
kube-apiserver) in memory: the request-header CA, allowed proxy names and header names, and the cluster's
client CA. It is reloaded whenever the ConfigMap changes; new CAs are added to the TLS server's trust
store so that clients can present certificates, while every trust *decision* is made here against the
current ConfigMap.

- :class:`RequestHeaderAuthenticator`: ``X-Remote-User``/``-Uid``/``-Group``/``-Extra-*`` are trusted only
  on a connection whose verified client certificate was issued by the request-header CA and whose CN is
  allowed. Spoofed headers without that certificate authenticate nobody.
- :class:`ClientCertificateAuthenticator`: certificates of the client CA: CN is the user, O the groups.
- :class:`TokenReviewAuthenticator`: bearer tokens of direct clients, reviewed by kube-apiserver, cached 10 s.

Every authenticated user also gets the group ``system:authenticated``.

Behind a local TLS terminator (``--tls-terminator-socket``: HAProxy speaking HTTP/2 to kube-apiserver's
aggregator, see docs/performance.md) the TLS handshake happens in the terminator, which forwards requests over
a Unix socket with the client certificate it verified in one header (RFC 9440 ``Client-Cert``). On that
socket — and only there, never on the TCP listener — the header stands for the TLS peer certificate, and
every check above still runs on it in this process (issuer against the live ConfigMap, validity, allowed
names, client-auth usage). A malformed header is refused like a certificate that does not verify.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.auth import AUTHENTICATED, AuthenticationError, UserInfo
from apiserver.delegation.cache import ListWatchCache
from apiserver.delegation.client import DelegationClient, DelegationError

logger = logging.getLogger(__name__)

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"


def _certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


def _json_list(raw: str | None) -> list[str]:
    if not raw:
        return []
    value = orjson.loads(raw)
    return [str(v) for v in value] if isinstance(value, list) else []


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


@dataclass
class AuthenticationConfig:
    """The parsed ConfigMap."""

    client_ca: list[x509.Certificate] = field(default_factory=list)
    requestheader_ca: list[x509.Certificate] = field(default_factory=list)
    allowed_names: list[str] = field(default_factory=list)
    username_headers: list[str] = field(default_factory=list)
    uid_headers: list[str] = field(default_factory=list)
    group_headers: list[str] = field(default_factory=list)
    extra_prefixes: list[str] = field(default_factory=list)
    pems: str = ""

    @classmethod
    def from_configmap(cls, data: dict[str, str]) -> AuthenticationConfig:
        client_pem = data.get("client-ca-file", "")
        header_pem = data.get("requestheader-client-ca-file", "")
        return cls(
            client_ca=_certs(client_pem),
            requestheader_ca=_certs(header_pem),
            allowed_names=_json_list(data.get("requestheader-allowed-names")),
            username_headers=_json_list(data.get("requestheader-username-headers")),
            uid_headers=_json_list(data.get("requestheader-uid-headers")),
            group_headers=_json_list(data.get("requestheader-group-headers")),
            extra_prefixes=_json_list(data.get("requestheader-extra-headers-prefix")),
            pems=client_pem + "\n" + header_pem,
        )


class ExtensionAuthentication:
    """The live ``extension-apiserver-authentication`` ConfigMap; ``trust`` adds CAs to the TLS server."""

    def __init__(self, client: DelegationClient, *, trust: Callable[[str], None] | None = None) -> None:
        self.config = AuthenticationConfig()
        self._trust = trust
        self._trusted: set[str] = set()
        self.informer = ListWatchCache(
            client,
            f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps",
            params={"fieldSelector": f"metadata.name={CONFIGMAP_NAME}"},
            on_change=self._reload,
        )

    def _reload(self) -> None:
        cm = self.informer.items.get(f"{CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}")
        if cm is None:
            self.config = AuthenticationConfig()
            return
        try:
            self.config = AuthenticationConfig.from_configmap(cm.get("data") or {})
        except (ValueError, TypeError) as err:
            logger.error("cannot parse the authentication ConfigMap", extra={"error": str(err)})
            return
        digest = hashlib.sha256(self.config.pems.encode()).hexdigest()
        if self._trust is not None and digest not in self._trusted and self.config.pems.strip():
            self._trust(self.config.pems)
            self._trusted.add(digest)
        logger.info(
            "authentication configuration loaded",
            extra={"requestheader_allowed_names": self.config.allowed_names},
        )


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """A client certificate and what authentication reads from it, parsed once per certificate."""

    cert: x509.Certificate
    common_name: str
    organizations: tuple[str, ...]
    not_before: float
    not_after: float
    client_auth: bool
    """Go's ``VerifyOptions{KeyUsages: [ExtKeyUsageClientAuth]}``: no EKU extension means any usage."""

    def valid_at(self, now: float) -> bool:
        return self.not_before <= now <= self.not_after


CLIENT_CERT_HEADER = "Client-Cert"
"""RFC 9440's header: the client's DER certificate as a structured-field byte sequence, ``:<base64>:``."""


def peer_certificate(request: web.Request, *, terminator_header: str | None = None) -> PeerCertificate | None:
    """The client's verified leaf certificate, if it presented one.

    On a TLS connection: the TLS peer's. ``terminator_header`` (``--tls-terminator-socket``): on a Unix-socket
    connection — only the local TLS terminator can reach it — the certificate in that header, which the
    terminator took from its own TLS handshake (raises :class:`AuthenticationError` if it is malformed). A
    connection that is neither TLS nor a Unix socket presents none, whatever its headers say.
    """
    transport = request.transport
    if transport is None:
        return None
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is not None:
        der = ssl_object.getpeercert(binary_form=True)
        return _load_certificate(der) if der else None
    if terminator_header is None or not is_unix_socket(transport):
        return None
    value = request.headers.get(terminator_header)
    return _header_certificate(value) if value else None


def is_unix_socket(transport: Any) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family == socket.AF_UNIX


@functools.lru_cache(maxsize=1024)
def _header_certificate(value: str) -> PeerCertificate:
    """RFC 9440 ``:<base64 DER>:`` (bare base64 accepted too) → the parsed certificate; cached per value."""
    text = value.strip()
    if len(text) >= 2 and text[0] == ":" and text[-1] == ":":
        text = text[1:-1]
    try:
        return _load_certificate(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as err:
        raise AuthenticationError(
            f"x509: malformed client certificate from the TLS terminator: {err}"
        ) from None


@functools.lru_cache(maxsize=1024)
def _load_certificate(der: bytes) -> PeerCertificate:
    """Parsed once per certificate: every proxied request carries the same front-proxy certificate."""
    cert = x509.load_der_x509_certificate(der)
    return PeerCertificate(
        cert=cert,
        common_name=_common_name(cert),
        organizations=tuple(
            str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        client_auth=allows_client_auth(cert),
    )


@functools.lru_cache(maxsize=4096)
def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca`` issued ``cert`` (name and signature). Cached: every proxied request carries the same
    front-proxy certificate, and a signature check costs more than the rest of authentication."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):
        return False
    return True


def issued_by(peer: PeerCertificate, cas: list[x509.Certificate]) -> bool:
    """Whether one of ``cas`` issued ``peer`` and it is valid now (checked on every request)."""
    now = time.time()
    return any(_signed_by(peer.cert, ca) and peer.valid_at(now) for ca in cas)


def allows_client_auth(cert: x509.Certificate) -> bool:
    """Go's ``VerifyOptions{KeyUsages: [ExtKeyUsageClientAuth]}``: no EKU extension means any usage."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def verify_client_certificate(peer: PeerCertificate, cas: list[x509.Certificate]) -> None:
    """Raise ``AuthenticationError`` (worded like Go's x509 errors) unless one of ``cas`` issued the
    certificate for client authentication and it is valid now."""
    if not issued_by(peer, cas):
        raise AuthenticationError(
            f"verifying certificate {_describe(peer)} failed: x509: certificate signed by unknown authority"
        )
    if not peer.client_auth:
        raise AuthenticationError(
            f"verifying certificate {_describe(peer)} failed: x509: certificate specifies an incompatible "
            "key usage"
        )


def _describe(peer: PeerCertificate) -> str:
    """Which certificate, for the log line (kube's ``certificateIdentifier`` prints SN/SKID/AKID)."""
    return f'CN="{peer.common_name}", SN={peer.cert.serial_number}'


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


class RequestHeaderAuthenticator:
    """kube's ``x509request.Verifier`` around ``headerrequest``: no client certificate ⇒ not recognised;
    a certificate not issued by the request-header CA, or with a CN outside the allowed names ⇒ error;
    a valid proxy certificate without a user header ⇒ not recognised."""

    def __init__(self, source: ExtensionAuthentication, *, terminator_header: str | None = None) -> None:
        self.source = source
        self.terminator_header = terminator_header

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        config = self.source.config
        if not config.requestheader_ca or not config.username_headers:
            return None
        peer = peer_certificate(request, terminator_header=self.terminator_header)
        if peer is None:
            return None
        verify_client_certificate(peer, config.requestheader_ca)
        if config.allowed_names and peer.common_name not in config.allowed_names:
            raise AuthenticationError(f"x509: subject with cn={peer.common_name} is not in the allowed list")
        headers = request.headers
        name = next((headers[h] for h in config.username_headers if headers.get(h)), "")
        if not name:
            return None
        uid = next((headers[h] for h in config.uid_headers if headers.get(h)), "")
        groups: list[str] = []
        for header in config.group_headers:
            groups.extend(headers.getall(header, ()))
        extra: dict[str, tuple[str, ...]] = {}
        if config.extra_prefixes:
            lowered = [(header.lower(), header, value) for header, value in headers.items()]
            for prefix in config.extra_prefixes:
                wanted = prefix.lower()
                for lowered_header, header, value in lowered:
                    if lowered_header.startswith(wanted):
                        key = urllib.parse.unquote(header[len(prefix) :]).lower()
                        extra[key] = (*extra.get(key, ()), value)
        return with_authenticated(UserInfo(name, uid, tuple(groups), extra))


class ClientCertificateAuthenticator:
    """kube's ``x509.Authenticator``: a certificate of the client CA is the user CN in the groups O; any
    other certificate is an error."""

    def __init__(self, source: ExtensionAuthentication, *, terminator_header: str | None = None) -> None:
        self.source = source
        self.terminator_header = terminator_header

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        peer = peer_certificate(request, terminator_header=self.terminator_header)
        if peer is None or not self.source.config.client_ca:
            return None
        verify_client_certificate(peer, self.source.config.client_ca)
        return with_authenticated(UserInfo(peer.common_name, "", peer.organizations))


class TokenReviewAuthenticator:
    """Bearer tokens reviewed by kube-apiserver (``authentication.k8s.io/v1`` TokenReview), cached.

    A token the review does not authenticate, or a review that fails, is an error (kube's bearer-token
    authenticator: "invalid bearer token"); only answers of the review are cached.
    """

    def __init__(self, client: DelegationClient, *, ttl: float = 10.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, UserInfo | None]] = {}

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return _authenticated_or_raise(cached[1], "")
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token.strip()},
        }
        try:
            result: dict[str, Any] = await self.client.create(
                "/apis/authentication.k8s.io/v1/tokenreviews", review
            )
        except DelegationError as err:
            logger.warning("token review failed", extra={"error": str(err)})
            raise AuthenticationError(f"token review failed: {err}") from None
        status = result.get("status") or {}
        user: UserInfo | None = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            extra = {k: tuple(v) for k, v in (info.get("extra") or {}).items()}
            user = with_authenticated(
                UserInfo(
                    info.get("username", ""), info.get("uid", ""), tuple(info.get("groups") or ()), extra
                )
            )
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.ttl, user)
        return _authenticated_or_raise(user, str(status.get("error") or ""))


def _authenticated_or_raise(user: UserInfo | None, error: str) -> UserInfo:
    if user is None:
        raise AuthenticationError(error or "invalid bearer token")
    return user
