"""Probing an Endpoint's remote from the manager: is it reachable, is TLS valid, are the credentials accepted.

An OCI Endpoint is probed at the distribution API's ping, ``GET <base>/v2/``, as a registry client does it:
anonymously first; on ``401`` the ``WWW-Authenticate`` challenge says how to authenticate — ``Basic`` (send
the credentials) or ``Bearer realm=…,service=…`` (fetch a token from the realm with the credentials, then
send the token). Any other Endpoint is probed with ``HEAD <remoteURL>`` (with Basic credentials after a
``401`` Basic challenge).

Because the manager holds cluster credentials and a tenant controls ``remoteURL``, the probe is hardened
against server-side request forgery and leaks:
- every address it connects to is resolved first and checked against an `AddressPolicy` (link-local and
  cloud-metadata addresses are refused by default; `--endpoint-probe-denied-cidrs` changes that); the
  check is made on the very addresses the connection uses (a resolver in the connector), so a name that
  resolves differently the second time gains nothing, and IP literals are checked before any request;
- redirects are followed only within the origin (scheme, host, port) of the first request, and only those
  requests carry credentials;
- credentials are sent only to the registry's origin and to the token realm the registry named, never over
  plain HTTP unless the Endpoint's own ``remoteURL`` says ``http://``;
- every probe has a total deadline, at most ``concurrency`` run at once, and bodies are read up to 64 KiB;
- messages name hosts and status lines only (bounded in length), never credentials, tokens or user info of
  a URL.

The outcome is two `Check`s, one per condition (`Reachable`, `Authenticated`); `ready` summarises them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "DEFAULT_DENIED_CIDRS",
    "AddressPolicy",
    "Check",
    "Credentials",
    "ProbeResult",
    "Prober",
    "Target",
    "credentials_from_secret",
    "ready",
]

ConditionStatus = Literal["True", "False", "Unknown"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENIED_CIDRS: Final = (
    "0.0.0.0/8",  # "this network": connect() to 0.0.0.0 reaches the manager's own listeners
    "::/128",
    "169.254.0.0/16",  # link-local, with the metadata services of AWS, GCP, Azure, OpenStack at .169.254
    "fe80::/10",
    "fd00:ec2::254/128",  # AWS's IPv6 metadata service
    "100.100.100.200/32",  # Alibaba Cloud's metadata service
)
"""Refused unless `--endpoint-probe-denied-cidrs` says otherwise (loopback is the operator's call: in a pod
it is the pod itself)."""

MAX_BODY: Final = 64 * 1024
MAX_MESSAGE: Final = 256
MAX_REDIRECTS: Final = 5
USER_AGENT: Final = "arc-controller-manager/endpoint-probe"


# --- inputs and outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for the remote; never printed."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True, slots=True)
class Target:
    type: str
    remote_url: str
    credentials: Credentials | None = None
    ca_bundle: str | None = field(default=None, repr=False)
    """PEM CA certificates trusted for this remote in addition to the system's (the Secret's ``ca.crt``)."""


@dataclass(frozen=True, slots=True)
class Check:
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    reachable: Check
    authenticated: Check


def ready(result: ProbeResult) -> Check:
    """`Ready`: False when either check is False (its reason and message), True when the remote answered
    and the credentials were not rejected (Unknown ones — not exercised — do not block), else Unknown."""
    for check in (result.reachable, result.authenticated):
        if check.status == "False":
            return check
    if result.reachable.status == "True":
        return Check("True", "Ready", _ready_message(result))
    return Check("Unknown", result.reachable.reason, result.reachable.message)


def _ready_message(result: ProbeResult) -> str:
    if result.authenticated.status == "True":
        return result.authenticated.message
    return f"{result.reachable.message}; {result.authenticated.message}"


def credentials_from_secret(
    data: Mapping[str, str] | None, remote_url: str
) -> tuple[Credentials | None, str | None]:
    """Credentials and CA bundle from a Secret's ``data`` (base64 values), as the workflows read them:
    ``.dockerconfigjson`` (the entry of the remote's host, and of no other host), else ``username`` and
    ``password`` (``kubernetes.io/basic-auth``); ``ca.crt`` is the CA bundle. Unusable values are None."""
    values = {k: _b64(v) for k, v in (data or {}).items()}
    ca = values.get("ca.crt")
    ca_text = ca.decode("utf-8", "replace") if ca else None
    config = values.get(".dockerconfigjson")
    if config is not None:
        return _docker_credentials(config, _host(remote_url)), ca_text
    username, password = values.get("username"), values.get("password")
    if username and password:
        return Credentials(username.decode("utf-8", "replace"), password.decode("utf-8", "replace")), ca_text
    return None, ca_text


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _docker_credentials(raw: bytes, host: str) -> Credentials | None:
    try:
        auths = json.loads(raw).get("auths") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(auths, dict):
        return None
    for key in (host, f"{host}/", f"https://{host}", f"https://{host}/", f"http://{host}", f"http://{host}/"):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]))
        decoded = _b64(str(entry.get("auth") or ""))
        if decoded and b":" in decoded:
            user, _, password = decoded.decode("utf-8", "replace").partition(":")
            return Credentials(user, password)
    return None


def _host(remote_url: str) -> str:
    """``host[:port]`` of a remoteURL (``registry.example/mirror``, ``https://h:5000/x``)."""
    rest = remote_url.strip().split("://", 1)[-1]
    return rest.split("/", 1)[0].rpartition("@")[2]


# --- the address policy ---------------------------------------------------------------------------------


class AddressNotAllowedError(OSError):
    """A probe target resolved to an address the policy refuses."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, which endpoint probes may not reach")
        self.host = host
        self.address = address


class HostNotAllowedError(OSError):
    """A probe target's host is not in `AddressPolicy.allowed_hosts`."""

    def __init__(self, host: str) -> None:
        super().__init__(f"host {host} is not among the hosts endpoint probes may reach")
        self.host = host


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    denied: tuple[IPNetwork, ...]
    allowed_hosts: frozenset[str] | None = None
    """When set, only these host names or IP literals are probed (checked before anything is resolved)."""

    @classmethod
    def parse(cls, cidrs: Iterable[str], allowed_hosts: Iterable[str] = ()) -> AddressPolicy:
        """From CIDR strings and host names (blank entries skipped; no hosts: any host); ValueError names a
        bad CIDR."""
        networks: list[IPNetwork] = []
        for text in cidrs:
            if text.strip():
                try:
                    networks.append(ipaddress.ip_network(text.strip(), strict=False))
                except ValueError as exc:
                    raise ValueError(f"invalid CIDR {text.strip()!r}: {exc}") from exc
        hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts if h.strip())
        return cls(tuple(networks), hosts or None)

    def check_host(self, host: str) -> None:
        if self.allowed_hosts is not None and host.lower().strip("[]") not in self.allowed_hosts:
            raise HostNotAllowedError(host)

    def allows(self, address: str) -> bool:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not any(ip in net for net in self.denied)

    def check(self, host: str, addresses: Iterable[str]) -> None:
        for address in addresses:
            if not self.allows(address):
                raise AddressNotAllowedError(host, address)


class _PolicyResolver(AbstractResolver):
    """aiohttp's resolver, then the policy on every address (all must pass: no retry onto a good one)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


# --- the prober ------------------------------------------------------------------------------------------


class _Refused(Exception):
    """The probe would have to break a rule (credentials over plain HTTP); its message says which."""


@dataclass(slots=True)
class _Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    url: str


class Prober:
    def __init__(self, policy: AddressPolicy, *, timeout: float = 5.0, concurrency: int = 8) -> None:
        self.policy = policy
        self.timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)

    async def probe(self, target: Target) -> ProbeResult:
        """Probe `target` within the deadline; never raises for anything the remote does."""
        try:
            base = _base_url(target)
        except ValueError as exc:
            return ProbeResult(
                Check("False", "InvalidURL", _bounded(str(exc))),
                Check("Unknown", "NotProbed", "the remote was not probed"),
            )
        async with self._semaphore:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._probe(target, base)
            except TimeoutError:
                return ProbeResult(
                    Check("False", "Timeout", f"{_origin(base)} did not answer within {self.timeout:g}s"),
                    Check("Unknown", "NotProbed", "the remote was not reached"),
                )

    async def _probe(self, target: Target, base: str) -> ProbeResult:
        context = ssl.create_default_context()
        if target.ca_bundle:
            try:
                context.load_verify_locations(cadata=target.ca_bundle)
            except (ssl.SSLError, ValueError):
                return ProbeResult(
                    Check("False", "InvalidCABundle", "ca.crt of the Endpoint's Secret holds no valid PEM"),
                    Check("Unknown", "NotProbed", "the remote was not probed"),
                )
        connector = aiohttp.TCPConnector(
            resolver=_PolicyResolver(self.policy), ssl=context, force_close=True, limit=4
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
            trust_env=False,
        ) as session:
            try:
                if _is_oci(target):
                    return await self._oci(session, target, base)
                return await self._http(session, target, base)
            except _Refused as exc:
                return ProbeResult(
                    Check("True", "Reachable", f"{_origin(base)} answered"),
                    Check("False", "CredentialsNotSent", _bounded(str(exc))),
                )
            except (aiohttp.ClientError, OSError) as exc:
                return ProbeResult(
                    _transport_failure(base, exc), Check("Unknown", "NotProbed", "the remote was not reached")
                )

    # --- OCI ----------------------------------------------------------------------------------------

    async def _oci(self, session: aiohttp.ClientSession, target: Target, base: str) -> ProbeResult:
        ping = base + "/v2/"
        first = await self._request(session, "GET", ping, origin=ping)
        origin = _origin(ping)
        if first.status == 404:
            return ProbeResult(
                Check(
                    "False",
                    "NotARegistry",
                    f"{origin} answered GET /v2/ with {_status_line(first)}: no OCI registry API",
                ),
                Check("Unknown", "NotProbed", "credentials were not tried"),
            )
        reachable = _answered(origin, first)
        challenge = _challenge_to_answer(origin, reachable, first, target, schemes=("basic", "bearer"))
        if isinstance(challenge, ProbeResult):
            return challenge
        if challenge.scheme == "basic":
            _refuse_plain_http(ping, base)
            answer = await self._request(
                session, "GET", ping, origin=ping, authorization=challenge.credentials.basic()
            )
            return ProbeResult(reachable, _verdict(origin, answer))
        token_or_check = await self._token(session, challenge.params, challenge.credentials, base)
        if isinstance(token_or_check, Check):
            return ProbeResult(reachable, token_or_check)
        answer = await self._request(
            session, "GET", ping, origin=ping, authorization=f"Bearer {token_or_check}"
        )
        return ProbeResult(reachable, _verdict(origin, answer))

    async def _token(
        self, session: aiohttp.ClientSession, params: Mapping[str, str], credentials: Credentials, base: str
    ) -> str | Check:
        """The Bearer token from the challenge's realm (GET with Basic credentials, docker's token flow)."""
        realm = params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return Check(
                "Unknown", "UnsupportedChallenge", "the registry's token realm is not an http(s) URL"
            )
        _refuse_plain_http(realm, base)
        query = [(k, params[k]) for k in ("service", "scope") if params.get(k)]
        url = realm + (("&" if parts.query else "?") + urlencode(query) if query else "")
        answer = await self._request(session, "GET", url, origin=url, authorization=credentials.basic())
        realm_origin = _origin(realm)
        if answer.status in (401, 403):
            return Check(
                "False",
                "Unauthorized",
                f"the token service {realm_origin} rejected the credentials ({_status_line(answer)})",
            )
        if answer.status != 200:
            return Check(
                "Unknown",
                "TokenServiceError",
                f"the token service {realm_origin} answered {_status_line(answer)}",
            )
        try:
            document = json.loads(answer.body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            return Check(
                "Unknown", "TokenServiceError", f"the token service {realm_origin} returned no token"
            )
        return token

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _http(self, session: aiohttp.ClientSession, target: Target, base: str) -> ProbeResult:
        first = await self._request(session, "HEAD", base, origin=base)
        origin = _origin(base)
        reachable = _answered(origin, first)
        if first.status == 404:
            reachable = Check(
                "False", "NotFound", f"{origin} answered HEAD {_path(base)} with {_status_line(first)}"
            )
        challenge = _challenge_to_answer(origin, reachable, first, target, schemes=("basic",))
        if isinstance(challenge, ProbeResult):
            return challenge
        _refuse_plain_http(base, base)
        answer = await self._request(
            session, "HEAD", base, origin=base, authorization=challenge.credentials.basic()
        )
        return ProbeResult(reachable, _verdict(origin, answer))

    # --- one request, redirects within the origin ------------------------------------------------------

    async def _request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        origin: str,
        authorization: str | None = None,
    ) -> _Response:
        for _ in range(MAX_REDIRECTS + 1):
            self._check_literal(url)
            headers = {"Authorization": authorization} if authorization else {}
            async with session.request(method, url, headers=headers, allow_redirects=False) as resp:
                body = await resp.content.read(MAX_BODY) if method != "HEAD" else b""
                location = resp.headers.get("Location")
                if resp.status in (301, 302, 303, 307, 308) and location:
                    target = urljoin(url, location)
                    if _origin(target) != _origin(origin):
                        return _Response(resp.status, resp.reason or "", dict(resp.headers), body, target)
                    url = target
                    continue
                return _Response(resp.status, resp.reason or "", dict(resp.headers), body, url)
        return _Response(310, "Too many redirects", {}, b"", url)

    def _check_literal(self, url: str) -> None:
        """The allowed hosts before anything is resolved; IP literals skip the resolver: check them here."""
        host = urlsplit(url).hostname or ""
        self.policy.check_host(host)
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return
        self.policy.check(host, [host])


# --- helpers ---------------------------------------------------------------------------------------------


def _is_oci(target: Target) -> bool:
    return target.type.lower() == "oci" or target.remote_url.strip().lower().startswith("oci://")


def _base_url(target: Target) -> str:
    """The URL to probe: https:// unless the remoteURL names http(s); an OCI remote's host only (its
    path is a repository prefix, the API is at the root). No user info, query or fragment."""
    raw = target.remote_url.strip()
    if not raw:
        raise ValueError("spec.remoteURL is empty")
    if raw.lower().startswith("oci://"):
        raw = "https://" + raw[len("oci://") :]
    elif "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme!r} of spec.remoteURL cannot be probed (http, https, oci)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"spec.remoteURL has an invalid port: {exc}") from None
    host = parts.hostname
    if not host:
        raise ValueError("spec.remoteURL has no host")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if _is_oci(target):
        return f"{parts.scheme}://{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def _path(url: str) -> str:
    return _bounded(urlsplit(url).path or "/")


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def _status_line(resp: _Response) -> str:
    return _bounded(f"{resp.status} {resp.reason}".strip())


def _refuse_plain_http(url: str, base: str) -> None:
    """Credentials go over plain HTTP only to the remote the Endpoint itself names with ``http://``."""
    if urlsplit(url).scheme != "https" and _origin(url) != _origin(base):
        raise _Refused(f"credentials are not sent over plain HTTP to {_origin(url)}")


def _answered(origin: str, resp: _Response) -> Check:
    if resp.status >= 500:
        return Check("False", "ServerError", f"{origin} answered {_status_line(resp)}")
    if 300 <= resp.status < 400:
        return Check("True", "Redirected", f"{origin} redirects to {_origin(resp.url)} (not followed)")
    return Check("True", "Reachable", f"{origin} answered {_status_line(resp)}")


def _anonymous_ok(origin: str, resp: _Response, target: Target) -> Check:
    if 300 <= resp.status < 400:
        return Check("Unknown", "NotExercised", "the remote redirects elsewhere; credentials were not tried")
    if resp.status == 403:
        return Check("False", "Forbidden", f"{origin} answered {_status_line(resp)}")
    if target.credentials is None:
        return Check("True", "Anonymous", f"{origin} serves anonymous requests")
    return Check(
        "Unknown", "NotExercised", f"{origin} serves anonymous requests; the credentials were not needed"
    )


def _verdict(origin: str, resp: _Response) -> Check:
    if 200 <= resp.status < 300:
        return Check("True", "Authenticated", f"{origin} accepted the credentials")
    if resp.status in (401, 403):
        return Check("False", "Unauthorized", f"{origin} rejected the credentials ({_status_line(resp)})")
    return Check("Unknown", "Inconclusive", f"{origin} answered {_status_line(resp)} with credentials")


_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True, slots=True)
class _Challenge:
    """A WWW-Authenticate challenge the probe will answer with the Endpoint's credentials."""

    scheme: str
    params: Mapping[str, str]
    credentials: Credentials


def _challenge_to_answer(
    origin: str, reachable: Check, first: _Response, target: Target, *, schemes: tuple[str, ...]
) -> _Challenge | ProbeResult:
    """After the first answer: the result when no credentials can or need be tried, else the challenge."""
    if reachable.status != "True":
        return ProbeResult(reachable, Check("Unknown", "NotProbed", "credentials were not tried"))
    if first.status != 401:
        return ProbeResult(reachable, _anonymous_ok(origin, first, target))
    challenge = _challenge(first.headers.get("WWW-Authenticate", ""))
    if challenge is None or challenge[0] not in schemes:
        return ProbeResult(
            reachable,
            Check(
                "Unknown",
                "UnsupportedChallenge",
                f"{origin} asked for an authentication scheme the probe does not speak",
            ),
        )
    if target.credentials is None:
        return ProbeResult(
            reachable,
            Check("False", "NoCredentials", f"{origin} requires credentials and the Endpoint has none"),
        )
    return _Challenge(challenge[0], challenge[1], target.credentials)


def _challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """The first ``Basic`` or ``Bearer`` challenge of a WWW-Authenticate header, with its parameters."""
    for scheme in ("bearer", "basic"):
        match = re.search(rf"(?i)(?:^|,)\s*{scheme}(?:\s+|$)", header)
        if match is None:
            continue
        params: dict[str, str] = {}
        rest = header[match.end() :]
        pos = 0
        while pos < len(rest):
            m = _PARAM.match(rest, pos)
            if m is None or m.end() == pos:
                break
            params[m.group(1).lower()] = (
                m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
            )
            pos = m.end()
        return scheme, params
    return None


def _transport_failure(base: str, exc: BaseException) -> Check:
    origin = _origin(base)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            cause = cause.certificate_error
            continue
        if isinstance(cause, HostNotAllowedError):
            return Check("False", "HostNotAllowed", _bounded(str(cause)))
        if isinstance(cause, AddressNotAllowedError):
            return Check("False", "AddressNotAllowed", _bounded(str(cause)))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Check(
                "False", "TLSError", _bounded(f"{origin}: certificate not trusted: {cause.verify_message}")
            )
        if isinstance(cause, ssl.SSLError):
            return Check(
                "False", "TLSError", _bounded(f"{origin}: TLS handshake failed: {cause.reason or cause}")
            )
        if isinstance(cause, ConnectionRefusedError):
            return Check("False", "ConnectionRefused", f"{origin} refused the connection")
        if isinstance(cause, socket.gaierror):
            return Check("False", "DNSFailure", _bounded(f"{_host(base)} does not resolve: {cause.strerror}"))
        if isinstance(cause, aiohttp.ClientConnectorError) and cause.os_error is not cause:
            cause = cause.os_error
            continue
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return Check("False", "ConnectionClosed", f"{origin} closed the connection")
    return Check("False", "ProbeFailed", _bounded(f"{origin}: {type(exc).__name__}"))
