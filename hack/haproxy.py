"""HAProxy (Debian's ``haproxy``, hack/apt-packages.txt) as the TLS + HTTP/2 terminator in front of ARC's API
server (``LocalCluster(h2_terminator=True)``, ``python -m hack.cluster up --h2-terminator``).

Why: kube-apiserver's aggregation proxy speaks HTTP/2 to a backend that offers ``h2`` by ALPN and multiplexes
every proxied request on one connection; aiohttp offers only HTTP/1.1, over which the proxy keeps at most 25
idle connections per backend and dials (and TLS-handshakes) continually above that concurrency. HAProxy
terminates TLS with ``alpn h2,http/1.1`` on the APIService's port, verifies the client certificate against
the cluster's client CA and the front-proxy CA, and forwards over ARC's ``--tls-terminator-socket`` (plain
HTTP/1.1, kept-alive connections reused by every stream: ``http-reuse always``), putting the certificate it
verified into ARC's RFC 9440 ``Client-Cert`` header after deleting any copy the client sent. ARC honours that
header on the Unix socket only and still makes every trust decision itself (``apiserver.delegation.authn``).
Measured gain and the method: docs/performance.md, "HTTP/2 to the aggregator (direction 1)".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

CLIENT_CERT_HEADER = "Client-Cert"
"""ARC's ``--tls-terminator-client-cert-header`` default (``apiserver.delegation.authn``)."""
MAX_CONCURRENT_STREAMS = 250
"""Streams per HTTP/2 connection (kube-apiserver's own ``--http2-max-streams-per-connection`` default is 1000,
Go's server default 250); above it Go's client transport opens another connection."""
WATCH_TIMEOUT = "2h"
"""How long a quiet request may last (watches: kube ends them after 30 to 60 min, bookmarks every minute)."""


def executable() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(path).exists():
        raise FileNotFoundError("haproxy is not installed: make apt (hack/apt-packages.txt)")
    return path


@dataclass(frozen=True)
class H2Terminator:
    """One HAProxy process: TLS with h2 on ``127.0.0.1:port``, ARC's Unix socket behind it."""

    work_dir: Path
    port: int
    backend_socket: Path
    cert_file: Path
    key_file: Path
    client_ca_files: tuple[Path, ...]
    """CAs whose client certificates are accepted in the TLS handshake (the cluster's client CA and the
    front-proxy CA); ARC checks the issuer again against the live ConfigMap."""
    threads: int = 1
    verify_chain: bool = True
    """``False``: accept a client certificate of any issuer in the handshake (``ca-ignore-err all
    crt-ignore-err all``; the handshake still proves the client holds its key) and leave the issuer check
    to ARC alone, which follows the live ConfigMap — so a rotated client or front-proxy CA needs no new
    ``ca-file`` here. client-go sends its certificate whatever CAs the server names
    (``transport.go``: ``GetClientCertificate`` returns it unconditionally). ``True`` (the local stack):
    HAProxy refuses other issuers in the handshake too, as ARC's own TLS port does."""
    name: str = "haproxy"
    """The directory under ``work_dir`` for the configuration and the stats socket."""

    @property
    def config_dir(self) -> Path:
        return self.work_dir / self.name

    @property
    def config_file(self) -> Path:
        return self.config_dir / "haproxy.cfg"

    @property
    def stats_socket(self) -> Path:
        return self.config_dir / "admin.sock"

    def config(self) -> str:
        d = self.config_dir
        return "\n".join(
            [
                "global",
                f"    nbthread {self.threads}",
                "    maxconn 4096",
                f"    stats socket {self.stats_socket} mode 600 level admin",
                "    log stdout format raw local0 notice",
                f"    tune.h2.max-concurrent-streams {MAX_CONCURRENT_STREAMS}",
                "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
                "    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
                "ECDHE-RSA-CHACHA20-POLY1305",
                "",
                "defaults",
                "    mode http",
                "    log global",
                "    option dontlognull",
                "    timeout connect 5s",
                "    timeout http-request 32s",  # kube's ReadHeaderTimeout
                "    timeout http-keep-alive 90s",  # kube's IdleTimeout
                f"    timeout client {WATCH_TIMEOUT}",
                f"    timeout server {WATCH_TIMEOUT}",
                "    timeout client-fin 30s",
                "",
                "frontend arc",
                f"    bind 127.0.0.1:{self.port} ssl crt {d / 'serving.pem'} alpn h2,http/1.1"
                f" verify optional ca-file {d / 'client-ca.crt'}"
                + ("" if self.verify_chain else " ca-ignore-err all crt-ignore-err all"),
                # only the certificate of this handshake may reach ARC in the header, never a client's copy
                f"    http-request del-header {CLIENT_CERT_HEADER}",
                f"    http-request set-header {CLIENT_CERT_HEADER} :%[ssl_c_der,base64]: if {{ ssl_c_used }}",
                "    default_backend arc",
                "",
                "backend arc",
                "    http-reuse always",
                f"    server arc {self.backend_socket}",
                "",
            ]
        )

    def write_config(self) -> Path:
        """The configuration, the serving certificate with its key (HAProxy reads one PEM) and the CA bundle,
        readable by this user only."""
        d = self.config_dir
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        self.backend_socket.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.backend_socket.parent, 0o700)
        pem = self.cert_file.read_bytes().rstrip(b"\n") + b"\n" + self.key_file.read_bytes()
        _write_private(d / "serving.pem", pem)
        _write_private(
            d / "client-ca.crt", b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in self.client_ca_files)
        )
        _write_private(self.config_file, self.config().encode())
        return self.config_file

    def argv(self) -> list[str]:
        self.write_config()
        # -db: foreground, no daemon (the local stack supervises it by PID file like every component)
        return [executable(), "-db", "-f", str(self.config_file)]

    def ready(self, ca_file: Path) -> bool:
        """TLS on the port and ``h2`` negotiated by ALPN."""
        return self.negotiated_protocol(ca_file) == "h2"

    def negotiated_protocol(self, ca_file: Path) -> str | None:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return tls.selected_alpn_protocol()

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the frontend and the backend server (``FRONTEND``, ``arc``), by column name."""
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        out: dict[str, dict[str, str]] = {}
        for line in lines[1:]:
            if not line.strip():
                continue
            row = dict(zip(header, line.split(","), strict=False))
            out[f"{row['pxname']}/{row['svname']}"] = row
        return out

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()


def _write_private(path: Path, data: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
