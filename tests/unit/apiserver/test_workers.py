"""apiserver/workers: the supervisor of ``--workers`` (restarts a dead worker, SIGTERM to all, failed start).

The supervisor runs in a child Python process (it installs signal handlers, which only a main thread may),
with workers that serve nothing: each writes its ready byte and sleeps until SIGTERM, recording its pid and
its stop in files. No sockets; the real server's workers are tested in tests/integration/apiserver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hack.process import pid_alive

SUPERVISOR = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from apiserver import workers

    out = Path(sys.argv[1])
    mode = sys.argv[2]

    def worker(index, ready):
        if mode == "fail" and index == 1:
            sys.exit(3)
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        (out / f"worker-{index}-{os.getpid()}").write_text("")
        ready.send_bytes(b"1")
        ready.close()
        while not stopping:
            time.sleep(0.05)
        (out / f"stopped-{os.getpid()}").write_text("")

    sys.exit(workers.Supervisor(2, worker).run())
    """
)


def workers_of(out: Path) -> dict[int, int]:
    """index -> pid of the newest worker of each index."""
    found: dict[int, tuple[float, int]] = {}
    for path in out.glob("worker-*"):
        _, index, pid = path.name.split("-")
        mtime = path.stat().st_mtime
        if int(index) not in found or mtime >= found[int(index)][0]:
            found[int(index)] = (mtime, int(pid))
    return {index: pid for index, (_, pid) in found.items()}


def wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_dead_worker_is_restarted_and_sigterm_stops_every_worker(tmp_path: Path) -> None:
    proc = start(tmp_path, "ok")
    try:
        wait(lambda: len(workers_of(tmp_path)) == 2, "two workers")
        first = workers_of(tmp_path)
        os.kill(first[0], signal.SIGKILL)  # its first crash: restarted at once (kubelet's first back-off)
        wait(lambda: workers_of(tmp_path)[0] != first[0], "worker 0 restarted")
        assert workers_of(tmp_path)[1] == first[1]  # the other one was left alone
        current = workers_of(tmp_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        for pid in current.values():  # each got SIGTERM and finished its own shutdown
            assert (tmp_path / f"stopped-{pid}").exists()
            assert not pid_alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_that_exits_before_serving_fails_the_start(tmp_path: Path) -> None:
    proc = start(tmp_path, "fail")
    try:
        assert proc.wait(timeout=20) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    started = workers_of(tmp_path)
    assert list(started) == [0]
    assert (tmp_path / f"stopped-{started[0]}").exists()  # the one that started was stopped again
