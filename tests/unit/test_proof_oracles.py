"""The proof suites' oracles can fail: the fuzzer's Status check and 5xx rule, the fault ledger, and the
tenant matrix's expectation, each shown a wrong answer (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_tenant_matrix import CELLS, by_construction
from tests.integration.apiserver.faults import MARKER, Ledger
from tests.integration.apiserver.openapi_fuzz import (
    Answer,
    FuzzRequest,
    KnownFinding,
    Operation,
    Oracle,
    operations,
    request_strategy,
    status_problem,
)

OP = Operation(
    "GET", "/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders", "list", None, (), (), False
)
REQUEST = FuzzRequest("GET", "/x", [], {}, None, OP)
SPEC = Path(__file__).resolve().parents[2] / "api/openapi-spec/v2.json"
OPS = operations(json.loads(SPEC.read_text()))


def status(code: int, reason: str, **extra: object) -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "m", "reason": reason}
    return json.dumps({**body, "code": code, **extra}).encode()


def test_a_kube_status_passes_and_anything_else_is_named() -> None:
    assert status_problem(Answer(404, status(404, "NotFound"), "application/json")) is None
    assert status_problem(Answer(422, status(422, "Invalid"), "application/json")) is None
    assert "not JSON" in (status_problem(Answer(400, b"Bad Request", "text/plain")) or "")
    assert "code" in (status_problem(Answer(400, status(404, "BadRequest"), "")) or "")
    assert "reason" in (status_problem(Answer(404, status(404, "BadRequest"), "")) or "")
    assert "kind" in (status_problem(Answer(409, b'{"kind":"Order","apiVersion":"v1"}', "")) or "")


def test_the_oracle_counts_5xx_except_from_a_stopped_etcd_or_a_too_large_resource_version() -> None:
    oracle = Oracle()
    oracle.check(REQUEST, Answer(500, status(500, "InternalError"), ""))
    oracle.check(REQUEST, Answer(503, status(503, "ServiceUnavailable"), ""))
    too_large = status(504, "Timeout", details={"causes": [{"reason": "ResourceVersionTooLarge"}]})
    oracle.check(REQUEST, Answer(504, too_large, ""))
    assert sorted(oracle.findings) == [f"{OP.key} -> 500", f"{OP.key} -> 503"]
    stopped = Oracle(etcd_stopped=lambda: True)
    stopped.check(REQUEST, Answer(503, status(503, "ServiceUnavailable"), ""))
    stopped.check(REQUEST, Answer(500, status(500, "InternalError"), ""))
    assert sorted(stopped.findings) == [f"{OP.key} -> 500"]


def test_a_known_finding_is_counted_apart_and_only_what_it_explains() -> None:
    known = KnownFinding("bug", lambda _r, a: a.status == 500, "ValueError: x")
    oracle = Oracle(known=[known])
    oracle.check(REQUEST, Answer(500, b"", ""))
    oracle.check(REQUEST, Answer(502, b"", ""))
    assert list(oracle.findings) == [f"{OP.key} -> 502"]
    log = '{"exc_info": "Traceback ... ValueError: x"}\n{"exc_info": "Traceback ... KeyError: y"}\nfine\n'
    assert [line for line in oracle.tracebacks(log)] == ['{"exc_info": "Traceback ... KeyError: y"}']
    assert oracle.known_counts == {"bug": 1, "traceback: bug": 1}


def _stored(rv: int, marker: str) -> dict[str, object]:
    return {"metadata": {"resourceVersion": str(rv), "annotations": {MARKER: marker}}}


def test_the_ledger_finds_lost_and_rolled_back_writes() -> None:
    ledger = Ledger()
    ledger.ack("a", _stored(5, "m1"))  # type: ignore[arg-type]
    ledger.ack("b", _stored(6, "m2"))  # type: ignore[arg-type]
    ledger.unknown("b", "m3")
    assert ledger.check_stored({"a": _stored(5, "m1"), "b": _stored(9, "m3")}) == []  # type: ignore[dict-item]
    problems = ledger.check_stored({"b": _stored(4, "m0")})  # type: ignore[dict-item]
    assert any("a: acknowledged" in p for p in problems)
    assert any("older than" in p for p in problems)
    assert any("stored marker 'm0'" in p for p in problems)


def test_the_tenant_expectation_follows_the_roles() -> None:
    assert by_construction("orders", "", "create", "own")
    assert not by_construction("orders", "", "create", "other")
    assert not by_construction("orders", "", "list", "cluster")
    assert not by_construction("orders", "status", "update", "own")
    assert by_construction("orders", "status", "get", "own")
    assert not by_construction("artifacttypes", "", "create", "own")
    assert by_construction("artifactworkflows", "", "delete", "own")
    assert not by_construction("artifactworkflows", "", "create", "own")
    assert by_construction("clusterartifacttypes", "", "watch", "other")
    assert not by_construction("clusterartifacttypes", "", "delete", "cluster")
    assert len(CELLS) == 384


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.data())
def test_generated_requests_stay_inside_their_operation_and_bounds(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(OPS))
    request = data.draw(request_strategy(op, ("fz-a", "fz-b")))
    assert request.method == op.method
    assert request.path.count("/") == op.path.count("/")
    assert len(request.body or b"") < 64 * 1024
    if op.action in ("watch", "watchlist") or ("watch", "true") in request.query:
        assert ("timeoutSeconds", "1") in request.query
