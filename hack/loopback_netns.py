"""Run a program that binds every interface in a network namespace of its own, where only loopback exists.

    python hack/loopback_netns.py --connect PORT ... --publish HOST_PORT:PORT ... -- PROGRAM ARGS...

Argo's workflow-controller v3.6.5 serves its metrics on ``:<port>`` and ``/healthz`` on ``:6060`` (hard-coded,
every interface). Started here, "every interface" is the namespace's ``lo`` only, so nothing is reachable
from outside the machine, while:

- ``--connect PORT``: the program dials ``127.0.0.1:PORT`` of the host (kube-apiserver): a listener on the
  namespace's ``127.0.0.1:PORT`` forwards each connection to the host's ``127.0.0.1:PORT``;
- ``--publish HOST_PORT:PORT``: a listener on the host's ``127.0.0.1:HOST_PORT`` forwards to the program's
  ``127.0.0.1:PORT`` inside (Prometheus scrapes Argo's metrics there).

A socket belongs to the namespace it was created in, so this one process holds sockets in both: it creates
the host's listeners first, enters a new namespace (``unshare(CLONE_NEWNET)``), creates the inner listeners
and starts the program there; a connection to the host is made on a socket created after ``setns`` back to
the host's namespace. The program dies with this process (``PR_SET_PDEATHSIG``); SIGTERM is passed on.
Needs CAP_SYS_ADMIN (root), as hack/podrunner's namespaces do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare_net() -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


class Namespaces:
    """The host's network namespace and the new one; sockets are made in either."""

    def __init__(self) -> None:
        self.host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        unshare_net()
        self.inner = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)

    @contextlib.contextmanager
    def on_host(self) -> Iterator[None]:
        setns(self.host)
        try:
            yield
        finally:
            setns(self.inner)


def listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def forward(
    new_socket: Callable[[], socket.socket], port: int
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection handler that dials ``127.0.0.1:port`` on a socket made by ``new_socket``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = new_socket()
        try:
            await asyncio.get_running_loop().sock_connect(upstream, ("127.0.0.1", port))
        except OSError:
            upstream.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hack/loopback_netns.py", description=__doc__.split("\n")[0])
    parser.add_argument("--connect", type=int, action="append", default=[], metavar="PORT")
    parser.add_argument("--publish", action="append", default=[], metavar="HOST_PORT:PORT")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.program[:1] == ["--"]:
        args.program = args.program[1:]
    if not args.program:
        parser.error("no program given")
    return args


async def _serve(
    program: list[str],
    spaces: Namespaces,
    inner_listeners: list[tuple[socket.socket, int]],
    host_listeners: list[tuple[socket.socket, int]],
) -> int:
    def host_socket() -> socket.socket:
        with spaces.on_host():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    def inner_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    servers = [await asyncio.start_server(forward(host_socket, p), sock=s) for s, p in inner_listeners]
    servers += [await asyncio.start_server(forward(inner_socket, p), sock=s) for s, p in host_listeners]
    child = await asyncio.create_subprocess_exec(
        *program, preexec_fn=lambda: _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, child.send_signal, signal.SIGTERM)
    code = await child.wait()
    for server in servers:
        server.close()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + signal number


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    published = [tuple(int(p) for p in spec.split(":")) for spec in args.publish]
    host_listeners = [(listener(host_port), port) for host_port, port in published]  # in the host's namespace
    spaces = Namespaces()
    inner_listeners = [(listener(port), port) for port in args.connect]
    return asyncio.run(_serve(args.program, spaces, inner_listeners, host_listeners))


if __name__ == "__main__":
    sys.exit(main())
