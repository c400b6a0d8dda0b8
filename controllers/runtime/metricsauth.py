"""`--metrics-secure`: `/metrics` over HTTPS for callers kube-apiserver vouches for, as controller-runtime's
`filters.WithAuthenticationAndAuthorization` (the filter kubebuilder's `--metrics-secure` turns on).

Every request to `/metrics` needs a bearer token; kube-apiserver says whose it is (a TokenReview, cached a
minute) and whether that user may `get` the non-resource URL `/metrics` (a SubjectAccessReview with the
lower-cased HTTP method as verb and the request's path; allowed answers cached 5 minutes, denied ones 30
seconds). No token or a token nobody owns: 401 `Unauthorized`; a user who may not: 403 `Authorization
denied for user <name>`; kube-apiserver unreachable: 500, with controller-runtime's words. The probes
(`/healthz`, `/livez`, `/readyz`) stay open, as kubelet calls them without credentials.

The manager needs `create` on `tokenreviews` and `subjectaccessreviews` (deploy/controllers/rbac.yaml's
ClusterRole `arc-controller-manager-metrics-auth`); Prometheus needs `get` on `/metrics`
(deploy/prometheus/rbac.yaml's `arc-metrics-reader`).

The serving certificate is read from `--metrics-cert-dir` (`tls.crt`, `tls.key`, as controller-runtime's
`CertDir`) or, without one, made self-signed in memory at start (controller-runtime does the same).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controllers.kube import KubeClient
from controllers.kube.errors import KubeError
from controllers.kube.resources import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS

__all__ = ["MetricsAuth", "serving_context"]

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
AUTHN_TTL = 60.0
ALLOW_TTL = 300.0
DENY_TTL = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MetricsAuth:
    """Delegated authentication and authorization of `/metrics` (an aiohttp middleware)."""

    def __init__(self, client: KubeClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._users: dict[bytes, tuple[float, dict[str, Any] | None]] = {}
        self._decisions: dict[tuple[str, str, str], tuple[float, bool]] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        try:
            user = await self.authenticate(request.headers.get("Authorization", ""))
            if user is None:
                return web.Response(status=401, text="Unauthorized\n")
            name = str(user.get("username", ""))
            if not await self.authorize(user, request.method.lower(), request.path):
                logger.info("metrics: authorization denied", extra={"user": name, "path": request.path})
                return web.Response(status=403, text=f"Authorization denied for user {name}\n")
        except _ReviewFailedError as err:
            logger.error(str(err), extra={"error": str(err.__cause__)})
            return web.Response(status=500, text=f"{err}\n")
        return await handler(request)

    async def authenticate(self, authorization: str) -> dict[str, Any] | None:
        """The TokenReview's `status.user` of the bearer token, or None (no token, or nobody's)."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        cached = self._users.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        try:
            answer = await self.client.create(TOKEN_REVIEWS, None, review)
        except KubeError as err:
            raise _ReviewFailedError("Authentication failed") from err
        status = answer.get("status") or {}
        user = status.get("user") if status.get("authenticated") else None
        self._users[key] = (now + AUTHN_TTL, user)
        return user

    async def authorize(self, user: dict[str, Any], verb: str, path: str) -> bool:
        name = str(user.get("username", ""))
        key = (repr(sorted(user.items())), verb, path)
        now = self.clock()
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        spec: dict[str, Any] = {
            "user": name,
            "groups": list(user.get("groups") or []),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            answer = await self.client.create(SUBJECT_ACCESS_REVIEWS, None, review)
        except KubeError as err:
            raise _ReviewFailedError(f"Authorization for user {name} failed") from err
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._decisions[key] = (now + (ALLOW_TTL if allowed else DENY_TTL), allowed)
        return allowed


class _ReviewFailedError(Exception):
    """kube-apiserver could not answer a review (controller-runtime answers 500)."""


def serving_context(cert_dir: Path | None) -> ssl.SSLContext:
    """The TLS context of the secure metrics listener: `cert_dir`'s `tls.crt`/`tls.key`, or a self-signed
    pair for `localhost`/`127.0.0.1` made in memory (handed to `ssl` through an anonymous memory file,
    never the disk)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir is not None:
        context.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
        return context
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"arc-controller-manager@{int(now.timestamp())}")]
    )
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.memfd_create("arc-controller-manager-metrics", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return context
