"""``arc-apiserver`` / ``python -m apiserver``: Options → validate → complete → Config → run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import multiprocessing.connection
import signal
import socket
import ssl
import sys
import tempfile
from pathlib import Path

import uvloop
from aiohttp import web

from apiserver.certs import load_cert_chain_from_memory
from apiserver.connections import GovernedSite, unix_listener
from apiserver.observability import TracingSettings, setup_logging, setup_tracing
from apiserver.options import ServingOptions, complete, parser
from apiserver.server import SHUTDOWN, Config, create_app
from apiserver.tlsconfig import apply_tls_options
from apiserver.workermetrics import WorkerMetrics
from apiserver.workers import Supervisor

logger = logging.getLogger("apiserver")


def serving_context(serving: ServingOptions) -> ssl.SSLContext:
    """The server's TLS context: ``--tls-min-version``/``--tls-cipher-suites`` (``tlsconfig``).

    No TLS 1.3 session tickets: issuing them cost a third of the server's handshake CPU, and neither
    kube-apiserver's proxy nor client-go resume sessions (Go's transport has no ClientSessionCache). That
    matters because kube-apiserver's proxy keeps at most 25 idle connections per backend (client-go's
    transport), so under more concurrent requests it dials a new TLS connection for many of them.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    apply_tls_options(
        context, min_version_name=serving.tls_min_version, cipher_suites=serving.tls_cipher_suites
    )
    if serving.generated_cert is not None:
        load_cert_chain_from_memory(context, *serving.generated_cert)
    else:
        assert serving.tls_cert_file is not None and serving.tls_private_key_file is not None
        context.load_cert_chain(serving.tls_cert_file, serving.tls_private_key_file)
    context.num_tickets = 0
    return context


async def serve(
    config: Config,
    serving: ServingOptions,
    *,
    worker: int | None = None,
    ready: multiprocessing.connection.Connection | None = None,
    metrics_dir: Path | None = None,
    terminator: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT. ``worker``: this process's index under ``--workers`` (``ready`` gets one
    byte once it listens; the port is then shared with the other workers by ``SO_REUSEPORT``);
    ``metrics_dir``: where the workers serve their own metrics to each other (``workermetrics``);
    ``terminator``: the listening Unix socket of ``--tls-terminator-socket`` (shared by all workers)."""
    context = serving_context(serving)
    if worker is not None and metrics_dir is not None:
        config = dataclasses.replace(config, worker_metrics=WorkerMetrics(metrics_dir, worker))
    if config.delegated:
        # Clients may present certificates (the front proxy's, users' from the client CA); which CA a
        # certificate must come from is decided per request against the live ConfigMap.
        context.verify_mode = ssl.CERT_OPTIONAL
        config.ssl_context = context
    app = create_app(config)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=5,
        keepalive_timeout=serving.idle_timeout,
    )
    await runner.setup()
    site = GovernedSite(
        runner,
        serving.bind_address,
        serving.secure_port,
        ssl_context=context,
        backlog=1024,
        read_header_timeout=serving.read_header_timeout,
        max_connections=serving.max_connections,
        reuse_port=worker is not None,
    )
    await site.start()
    if terminator is not None:
        # Plain HTTP/1.1 from the local TLS terminator; no connection governor (the terminator has the
        # read-header deadline and connection cap towards the clients), keep-alive as on the TCP port.
        await web.SockSite(runner, terminator).start()
    # Everything allocated up to here (modules, schemas, the OpenAPI documents, clients) lives as long as
    # the process: move it out of the collector's generations, so that a full collection under load
    # walks only what requests allocated (a full collection of the started server took ~20 ms, a pause
    # every request in flight waits for).
    gc.collect()
    gc.freeze()
    address = f"https://{serving.bind_address}:{serving.secure_port}"
    logger.info("serving", extra={"address": address, **({"worker": worker} if worker is not None else {})})
    if ready is not None:
        with contextlib.suppress(OSError):  # a restarted worker's supervisor does not wait for it
            ready.send_bytes(b"1")
        ready.close()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # kube's graceful termination: /readyz fails at once (endpoints drop this pod), requests keep being
    # served for --shutdown-delay-duration, then the listener closes and in-flight requests drain.
    app[SHUTDOWN].initiate()
    logger.info("shutting down", extra={"delay_seconds": serving.shutdown_delay})
    if serving.shutdown_delay > 0:
        await asyncio.sleep(serving.shutdown_delay)
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config, serving = complete(args)
    setup_logging(args.log_level, config.log_format)
    try:
        tracing = TracingSettings.from_flags(args)
    except ValueError as exc:
        raise SystemExit(f"arc-apiserver: {exc}") from exc
    terminator = (
        unix_listener(serving.tls_terminator_socket) if serving.tls_terminator_socket is not None else None
    )
    try:
        return _run(config, serving, tracing, terminator)
    finally:
        if terminator is not None and serving.tls_terminator_socket is not None:
            terminator.close()
            with contextlib.suppress(FileNotFoundError):
                serving.tls_terminator_socket.unlink()


def _run(
    config: Config, serving: ServingOptions, tracing: TracingSettings, terminator: socket.socket | None
) -> int:
    if serving.workers == 1:
        setup_tracing(tracing, "arc-apiserver")
        uvloop.run(serve(config, serving, terminator=terminator))
        return 0

    def worker_main(index: int, ready: multiprocessing.connection.Connection) -> None:
        # A forked worker starts with the supervisor's Python signal handlers; serve() installs its own.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        setup_tracing(tracing, "arc-apiserver")  # its exporter's thread is per process
        uvloop.run(
            serve(
                config,
                serving,
                worker=index,
                ready=ready,
                metrics_dir=Path(metrics_dir.name),
                terminator=terminator,
            )
        )

    # The workers' metrics sockets: a directory only this user may open, removed when the server exits.
    metrics_dir = tempfile.TemporaryDirectory(prefix="arc-apiserver-metrics-")
    with metrics_dir:
        return Supervisor(serving.workers, worker_main, shutdown_delay=serving.shutdown_delay).run()


if __name__ == "__main__":
    sys.exit(main())
