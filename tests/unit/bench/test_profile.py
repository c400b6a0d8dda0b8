"""bench/profile's readers of py-spy's and pprof's stacks and its categories (no processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.common import cpu_seconds
from bench.profile import (
    ARC_CATEGORIES,
    KUBE_CATEGORIES,
    categorise,
    hottest_leaves,
    parse_collapsed,
    parse_pprof_traces,
)

COLLAPSED = """\
<module> (apiserver/__main__.py:10);run (asyncio/runners.py:1);do_handshake (ssl.py:917) 30
<module> (apiserver/__main__.py:10);run (asyncio/runners.py:1);write (ssl.py:1) 10
<module> (apiserver/__main__.py:10);create (apiserver/registry/store.py:300);validate (api/v.py:5) 40
<module> (apiserver/__main__.py:10);create (apiserver/registry/store.py:300);txn (aetcd/client.py:9) 15
<module> (apiserver/__main__.py:10);select (selectors.py:1) 5
"""

# The shape `go tool pprof -traces` prints (leaf first, callers below it).
TRACES = """\
File: kube-apiserver
Type: cpu
Duration: 20s, Total samples = 1.50s ( 7.50%)
-----------+-------------------------------------------------------
     500ms   crypto/internal/fips140/aes/gcm.seal
             crypto/tls.(*Conn).writeRecordLocked
             net/http.(*persistConn).writeLoop
-----------+-------------------------------------------------------
     700ms   crypto/internal/fips140/bigmod.(*Nat).montgomeryMul
             crypto/tls.(*Conn).clientHandshake
             crypto/tls.(*Conn).handshakeContext
             net/http.(*persistConn).addTLS
-----------+-------------------------------------------------------
     300ms   runtime.scanobject
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
      10ms   k8s.io/apimachinery/pkg/util/proxy.(*UpgradeAwareHandler).ServeHTTP
-----------+-------------------------------------------------------
"""


def test_collapsed_stacks_are_read_root_first_with_their_counts() -> None:
    stacks = parse_collapsed(COLLAPSED)
    assert len(stacks) == 5
    frames, weight = stacks[0]
    assert frames[0].startswith("<module>") and frames[-1].startswith("do_handshake") and weight == 30


def test_pprof_traces_are_read_root_first_in_seconds() -> None:
    stacks = parse_pprof_traces(TRACES)
    assert [w for _, w in stacks] == pytest.approx([0.5, 0.7, 0.3, 0.01])
    assert stacks[1][0] == [
        "net/http.(*persistConn).addTLS",
        "crypto/tls.(*Conn).handshakeContext",
        "crypto/tls.(*Conn).clientHandshake",
        "crypto/internal/fips140/bigmod.(*Nat).montgomeryMul",
    ]


def test_a_sample_goes_to_the_first_category_found_anywhere_in_its_stack() -> None:
    shares = categorise(parse_collapsed(COLLAPSED), ARC_CATEGORIES)
    assert shares == {
        "TLS handshakes": 0.3,
        "TLS records (encrypt, decrypt)": 0.1,
        "etcd client (aetcd, grpc.aio)": 0.15,
        "store: decode, validate, patch, managedFields, encode": 0.4,
        "event loop (uvloop), threads, other": 0.05,
    }
    kube = categorise(parse_pprof_traces(TRACES), KUBE_CATEGORIES)
    assert kube["TLS handshakes"] == pytest.approx(0.7 / 1.51, abs=1e-4)
    assert kube["garbage collection"] == pytest.approx(0.3 / 1.51, abs=1e-4)
    assert kube["TLS records (encrypt, decrypt)"] == pytest.approx(0.5 / 1.51, abs=1e-4)
    assert sum(kube.values()) == pytest.approx(1.0, abs=1e-3)


def test_hottest_leaves_are_self_time_shares_in_order() -> None:
    leaves = hottest_leaves(parse_collapsed(COLLAPSED), n=2)
    assert leaves == [
        ("validate (api/v.py:5)", 0.4),
        ("do_handshake (ssl.py:917)", 0.3),
    ]


def test_the_benchmarks_own_cpu_leaves_out_the_servers_it_started() -> None:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        before, child_before = cpu_seconds(os.getpid()), cpu_seconds(child.pid)
        deadline = time.monotonic() + 20
        while cpu_seconds(child.pid) - child_before < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        child_spent = cpu_seconds(child.pid) - child_before
        assert child_spent >= 0.5
        assert cpu_seconds(os.getpid()) - before < child_spent / 2  # this process mostly slept
    finally:
        child.kill()
        child.wait()
