"""Command-line options → validated, completed ``Config`` (sample-apiserver's Options → Config)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from api.duration import parse_duration
from api.tracing import add_tracing_flags
from apiserver.connections import IDLE_TIMEOUT, MAX_CONNECTIONS, READ_HEADER_TIMEOUT
from apiserver.delegation.authn import CLIENT_CERT_HEADER
from apiserver.delegation.authz import AUTHORIZED_TTL, UNAUTHORIZED_TTL
from apiserver.listing import MAX_IN_FLIGHT, MAX_QUEUED
from apiserver.server import Config
from apiserver.tlsconfig import (
    DEFAULT_MIN_VERSION,
    TLS_VERSIONS,
    TLSConfigError,
    min_version,
    openssl_ciphers,
)


@dataclass
class ServingOptions:
    bind_address: str
    secure_port: int
    tls_cert_file: Path | None
    tls_private_key_file: Path | None
    generated_cert: tuple[bytes, bytes] | None = None
    """PEM certificate and key generated in memory (no ``--cert-dir``, no ``--tls-cert-file``)."""
    shutdown_delay: float = 0.0
    tls_min_version: str = "VersionTLS12"
    tls_cipher_suites: tuple[str, ...] = ()
    read_header_timeout: float = READ_HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    workers: int = 1
    """API server processes on the port (``SO_REUSEPORT``), supervised by the started one (``workers``)."""
    tls_terminator_socket: Path | None = None
    """Also serve HTTP/1.1 on this Unix socket, for a local TLS terminator (HTTP/2 to the aggregator)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="arc-apiserver", description="ARC's Kubernetes extension API server.")
    p.add_argument(
        "--etcd-servers",
        default="http://127.0.0.1:2379",
        help="comma-separated etcd endpoints (ARC's own etcd; every member, for failover)",
    )
    p.add_argument("--etcd-cafile", type=Path, help="SSL Certificate Authority file to verify etcd with")
    p.add_argument("--etcd-certfile", type=Path, help="SSL certification file for etcd (client certificate)")
    p.add_argument("--etcd-keyfile", type=Path, help="SSL key file for etcd (client certificate)")
    p.add_argument("--etcd-prefix", default="/registry", help="key prefix of ARC's objects in etcd")
    p.add_argument("--etcd-request-timeout", type=float, default=10.0, help="seconds per etcd call")
    p.add_argument(
        "--etcd-healthcheck-timeout", type=float, default=2.0, help="seconds for the etcd check of the probes"
    )
    p.add_argument(
        "--etcd-readycheck-timeout", type=float, default=2.0, help="seconds for the etcd-readiness check"
    )
    p.add_argument(
        "--etcd-compaction-interval",
        type=float,
        default=300.0,
        help="seconds between compactions of old revisions (0 disables)",
    )
    p.add_argument(
        "--read-header-timeout",
        type=float,
        default=READ_HEADER_TIMEOUT,
        help="seconds a new connection has for its TLS handshake and first request head (kube: 32)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT,
        help="seconds an idle keep-alive connection is kept open (kube: 90)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="open client connections at most; more are answered 429 and closed",
    )
    p.add_argument(
        "--max-inflight-lists",
        type=int,
        default=MAX_IN_FLIGHT,
        help="whole-collection reads (LISTs, initial events of watches) served at once",
    )
    p.add_argument(
        "--max-queued-lists",
        type=int,
        default=MAX_QUEUED,
        help="distinct whole-collection reads waiting for a slot; more are answered 429",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API server processes serving the port (SO_REUSEPORT), each with its own etcd watches; "
        "the started process supervises them (restarts a dead one, SIGTERM drains all). One uses one core",
    )
    p.add_argument(
        "--tls-terminator-socket",
        type=Path,
        help="also serve HTTP/1.1 on this Unix socket (mode 0600) for a local TLS terminator in front of ARC "
        "(HAProxy speaking HTTP/2 to kube-apiserver's aggregator: docs/performance.md); requests on it "
        "authenticate with the client certificate of --tls-terminator-client-cert-header, checked as a TLS "
        "client certificate is. Aggregated mode only. Whoever can connect to the socket is trusted with that "
        "header: keep it in a directory only the terminator shares",
    )
    p.add_argument(
        "--tls-terminator-client-cert-header",
        default=CLIENT_CERT_HEADER,
        help="the header in which the terminator passes the client certificate it verified, base64 DER as "
        f"RFC 9440 (default {CLIENT_CERT_HEADER}); honoured on the Unix socket only, never on the TCP port",
    )
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=8443)
    p.add_argument("--tls-cert-file", type=Path)
    p.add_argument("--tls-private-key-file", type=Path)
    p.add_argument(
        "--tls-min-version",
        default=DEFAULT_MIN_VERSION,
        help=f"minimum TLS version: {', '.join(TLS_VERSIONS)} (default {DEFAULT_MIN_VERSION})",
    )
    p.add_argument(
        "--tls-cipher-suites",
        default="",
        help="comma-separated IANA cipher suite names for TLS 1.2 and below (default: ECDHE with AES-GCM or"
        " ChaCha20-Poly1305, no CBC); TLS 1.3 suites are not configurable",
    )
    p.add_argument(
        "--cert-dir",
        type=Path,
        default=None,
        help="where a self-signed certificate is written (and reused) when --tls-cert-file is not given; "
        "without it the certificate is generated in memory at each start, as kube's generic API server does "
        "(nothing is written: fits a read-only, non-root pod)",
    )
    p.add_argument(
        "--shutdown-delay-duration",
        type=float,
        default=0.0,
        help="seconds between SIGTERM (from which /readyz fails) and closing the listener, so that "
        "endpoints drop the pod before it stops serving (kube's flag of that name)",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="serve kubectl directly: authenticate with --token-auth-file, allow every authenticated user",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="kube-apiserver to delegate authentication, authorization and admission to "
        "(aggregated mode; in a pod the service account is used when this is not given)",
    )
    p.add_argument("--token-auth-file", type=Path, help='static tokens: token,user,uid[,"group1,group2"]')
    p.add_argument(
        "--authorization-webhook-cache-authorized-ttl",
        type=_duration,
        default=AUTHORIZED_TTL,
        metavar="DURATION",
        help="how long an 'authorized' answer of kube-apiserver's SubjectAccessReview is cached (a Go "
        "duration such as 10s or 1m, or seconds; 0: not cached) — the delegating authorizer's flag",
    )
    p.add_argument(
        "--authorization-webhook-cache-unauthorized-ttl",
        type=_duration,
        default=UNAUTHORIZED_TTL,
        metavar="DURATION",
        help="how long an 'unauthorized' answer is cached (as above)",
    )
    p.add_argument(
        "--watch-bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument("--log-level", default="INFO")
    add_tracing_flags(p)
    return p


def _duration(text: str) -> float:
    """A Go duration (``10s``, ``1m30s``, ``0``) or a number of seconds, as kube's duration flags read."""
    seconds = parse_duration(text)
    if seconds is None:
        try:
            seconds = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 10s, 1m30s)") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must not be negative")
    return seconds


def complete(args: argparse.Namespace) -> tuple[Config, ServingOptions]:
    """Validate the options and fill in what was left out."""
    if args.standalone and args.token_auth_file is None:
        raise SystemExit("arc-apiserver: --standalone needs --token-auth-file")
    if (args.tls_cert_file is None) != (args.tls_private_key_file is None):
        raise SystemExit("arc-apiserver: --tls-cert-file and --tls-private-key-file go together")
    if (args.etcd_certfile is None) != (args.etcd_keyfile is None):
        raise SystemExit("arc-apiserver: --etcd-certfile and --etcd-keyfile go together")
    suites = tuple(name.strip() for name in args.tls_cipher_suites.split(",") if name.strip())
    try:
        min_version(args.tls_min_version)
        openssl_ciphers(suites)
    except TLSConfigError as err:
        raise SystemExit(f"arc-apiserver: {err}") from None
    serving = ServingOptions(
        args.bind_address,
        args.secure_port,
        None,
        None,
        shutdown_delay=args.shutdown_delay_duration,
        tls_min_version=args.tls_min_version,
        tls_cipher_suites=suites,
        read_header_timeout=args.read_header_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        workers=args.workers,
        tls_terminator_socket=args.tls_terminator_socket,
    )
    hosts = ["localhost", "127.0.0.1", args.bind_address]
    if args.tls_cert_file is not None:
        serving.tls_cert_file, serving.tls_private_key_file = args.tls_cert_file, args.tls_private_key_file
    elif args.cert_dir is not None:
        from apiserver.certs import ensure_self_signed

        serving.tls_cert_file, serving.tls_private_key_file = ensure_self_signed(args.cert_dir, hosts)
    else:
        from apiserver.certs import self_signed

        serving.generated_cert = self_signed(hosts)
    config = Config(
        etcd_servers=args.etcd_servers,
        etcd_cafile=args.etcd_cafile,
        etcd_certfile=args.etcd_certfile,
        etcd_keyfile=args.etcd_keyfile,
        etcd_prefix=args.etcd_prefix,
        etcd_request_timeout=args.etcd_request_timeout,
        etcd_healthcheck_timeout=args.etcd_healthcheck_timeout,
        etcd_readycheck_timeout=args.etcd_readycheck_timeout,
        compaction_interval=args.etcd_compaction_interval,
        bookmark_interval=args.watch_bookmark_interval,
        token_auth_file=args.token_auth_file,
        kubeconfig=args.kubeconfig,
        delegated=not args.standalone,
        log_format=cast(Literal["json", "text"], args.log_format),
        max_inflight_lists=args.max_inflight_lists,
        max_queued_lists=args.max_queued_lists,
        authorization_cache_authorized_ttl=args.authorization_webhook_cache_authorized_ttl,
        authorization_cache_unauthorized_ttl=args.authorization_webhook_cache_unauthorized_ttl,
        terminator_client_cert_header=(
            args.tls_terminator_client_cert_header if args.tls_terminator_socket is not None else None
        ),
    )
    if args.tls_terminator_socket is not None and args.standalone:
        raise SystemExit(
            "arc-apiserver: --tls-terminator-socket is for the aggregated mode, not --standalone"
        )
    if not args.tls_terminator_client_cert_header.strip():
        raise SystemExit("arc-apiserver: --tls-terminator-client-cert-header must not be empty")
    if args.max_inflight_lists < 1 or args.max_queued_lists < 1:
        raise SystemExit("arc-apiserver: --max-inflight-lists must be >= 1, --max-queued-lists >= 1")
    if args.workers < 1:
        raise SystemExit("arc-apiserver: --workers must be >= 1")
    if args.read_header_timeout <= 0 or args.idle_timeout <= 0 or args.max_connections < 1:
        raise SystemExit(
            "arc-apiserver: --read-header-timeout and --idle-timeout must be positive, --max-connections >= 1"
        )
    return config, serving
