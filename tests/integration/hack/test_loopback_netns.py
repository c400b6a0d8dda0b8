"""hack/loopback_netns.py: a program that binds every interface, run in a namespace with only loopback, still
dials the host's loopback (``--connect``) and is reached through the host's loopback (``--publish``), and
nothing it binds appears on the host; it stops with the launcher."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.binaries import REPO_ROOT
from hack.process import free_port

pytestmark = pytest.mark.integration

INNER = """
import http.server, sys, urllib.request
host_port, port = int(sys.argv[1]), int(sys.argv[2])
seen = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=10).read().decode()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"inside saw {seen}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass

http.server.HTTPServer(("0.0.0.0", port), H).serve_forever()
"""


class _Host(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"the host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return str(resp.read().decode())


def test_the_program_dials_the_host_and_is_reached_only_through_the_published_port(
    host_server: int, tmp_path: Path
) -> None:
    inner_port, published = free_port(), free_port()
    (tmp_path / "inner.py").write_text(INNER)
    launcher = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "hack" / "loopback_netns.py"),
            f"--connect={host_server}",
            f"--publish={published}:{inner_port}",
            "--",
            sys.executable,
            str(tmp_path / "inner.py"),
            str(host_server),
            str(inner_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        answer = ""
        while time.monotonic() < deadline and not answer:
            assert launcher.poll() is None, launcher.communicate()[0]
            try:
                answer = _get(published)
            except OSError:
                time.sleep(0.2)
        assert answer == "inside saw the host"
        # The program bound 0.0.0.0:<inner_port> in its own namespace: the host has nothing there.
        with pytest.raises(OSError):
            _get(inner_port)
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=20)
    assert code == 128 + signal.SIGTERM  # the program ended by the SIGTERM passed on, as a shell reports it
    with pytest.raises(OSError):
        _get(published)
