"""Fuzzing the API server from its own OpenAPI document (issue 14): no 5xx, only Status bodies, no traceback.

A server of its own (``arc-apiserver`` under ``prlimit --as``, on an etcd of its own) so that its log holds
only the fuzzer's requests and etcd can be stopped. Every operation of ``/openapi/v2`` (and the
non-resource GETs) gets the same number of generated requests (``openapi_fuzz``), then etcd is killed and
a slice of them runs again, where 503/504 are the only 5xx allowed.

The bounded slice runs in ``make test`` (fixed: ``derandomize=True``); ``make fuzz`` runs the long one
(``FUZZ_REQUESTS``, default 100,000, under ``FUZZ_SECONDS``) with one hypothesis seed per round.
"""

from __future__ import annotations

import os
import signal
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from hack.arcapiserver import ArcApiServer
from hack.etcd import EtcdServer
from hack.process import pid_alive
from tests.integration.apiserver.bounded import BoundedApiServer, start_small_etcd
from tests.integration.apiserver.conftest import admin_token
from tests.integration.apiserver.openapi_fuzz import (
    Client,
    Oracle,
    Target,
    assert_clean,
    delete_options_reproduce,
    fuzz,
    get,
    known_findings,
    limit_overflow_reproduces,
    malformed_name_reproduces,
    operations,
    warning_header_reproduces,
    watch_disconnect_reproduces,
)

pytestmark = pytest.mark.integration

NAMESPACES = ("fz-a", "fz-b")


@dataclass
class Standalone(Target):
    """The fuzz suite's own etcd and API server."""

    etcd: EtcdServer | None = None
    server: ArcApiServer | None = None


def make_client(server: ArcApiServer) -> Client:
    context = ssl.create_default_context(cafile=str(server.cert_dir / "apiserver.crt"))
    return Client("127.0.0.1", server.port, context, {"Authorization": f"Bearer {admin_token(server)}"})


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    work = tmp_path_factory.mktemp("fuzz")
    etcd = EtcdServer.allocate("etcd-fuzz", work)
    start_small_etcd(etcd)
    server = BoundedApiServer(
        work,
        etcd.client_url,
        name="arc-apiserver-fuzz",
        etcd_prefix="/arc-fuzz",
        extra_args=("--etcd-request-timeout=1",),
    )
    try:
        server.start()
        client = make_client(server)
        document = orjson.loads(client.send(get("/openapi/v2")).body)
        ops = operations(document)
        yield Standalone(client, ops, NAMESPACES, server.component.log_file, etcd=etcd, server=server)
        client.close()
    finally:
        server.stop()
        etcd.stop()


def test_malformed_name_is_a_4xx_status(target: Standalone) -> None:
    assert not malformed_name_reproduces(target)


def test_delete_options_of_the_wrong_type_are_a_400(target: Standalone) -> None:
    assert not delete_options_reproduce(target)


def test_oversized_limit_of_a_deletecollection_is_a_400(target: Standalone) -> None:
    assert not limit_overflow_reproduces(target)


def test_unknown_field_with_a_control_character_is_answered(target: Standalone) -> None:
    assert not warning_header_reproduces(target)


def test_watch_client_going_away_logs_no_traceback(target: Standalone) -> None:
    assert not watch_disconnect_reproduces(target)


def kill_etcd(etcd: EtcdServer) -> None:
    pid = etcd.component.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)


def outage_slice(target: Standalone, oracle: Oracle, *, per_operation: int, deadline: float) -> None:
    """The same generator with etcd killed (503/504 allowed), then etcd back and the server serving again."""
    stopped = True
    oracle.etcd_stopped = lambda: stopped
    assert target.etcd is not None
    kill_etcd(target.etcd)
    try:
        fuzz(
            target,
            oracle,
            per_operation=per_operation,
            deadline=deadline,
            ops=[op for op in target.ops if op.method != "GET" or "{" in op.path][::3],
        )
    finally:
        start_small_etcd(target.etcd)
    give_up = time.monotonic() + 60
    probe = get(f"/apis/arc.opendefense.cloud/v1alpha1/namespaces/{NAMESPACES[0]}/orders", action="list")
    while target.client.send(probe).status != 200:
        assert time.monotonic() < give_up, "the server did not serve again after etcd came back"
        time.sleep(0.2)
    stopped = False


def test_every_operation_answers_without_5xx_or_traceback(target: Standalone) -> None:
    """The bounded slice for ``make test``: ~25 requests per operation, then ~2 each with etcd killed."""
    per_operation = int(os.environ.get("FUZZ_PER_OPERATION", "25"))
    log_start = len(target.log_text())
    oracle = Oracle(known=known_findings(target))
    deadline = time.monotonic() + float(os.environ.get("FUZZ_SECONDS", "100"))
    fuzz(target, oracle, per_operation=per_operation, deadline=deadline)
    outage_slice(target, oracle, per_operation=2, deadline=deadline + 30)
    assert oracle.requests >= len(target.ops) * min(per_operation, 5)
    assert_clean(target, oracle, log_start)


@pytest.mark.fuzz
def test_long_fuzz(target: Standalone) -> None:
    """``make fuzz``: ``FUZZ_REQUESTS`` requests (default 100,000) in rounds of fresh seeds, an etcd outage
    every 5 rounds, bounded by ``FUZZ_SECONDS`` (default 3,000)."""
    wanted = int(os.environ.get("FUZZ_REQUESTS", "100000"))
    deadline = time.monotonic() + float(os.environ.get("FUZZ_SECONDS", "3000"))
    log_start = len(target.log_text())
    oracle = Oracle(known=known_findings(target))
    round_ = 0
    while oracle.requests < wanted and time.monotonic() < deadline:
        fuzz(target, oracle, per_operation=100, deadline=deadline, seed=round_)
        round_ += 1
        print(f"round {round_}: {oracle.requests} requests, {dict(sorted(oracle.statuses.items()))}")
        if round_ % 5 == 0:
            outage_slice(target, oracle, per_operation=3, deadline=deadline)
    print(f"long fuzz: {round_} rounds")
    assert oracle.requests >= wanted, f"only {oracle.requests} of {wanted} requests within FUZZ_SECONDS"
    assert_clean(target, oracle, log_start)
