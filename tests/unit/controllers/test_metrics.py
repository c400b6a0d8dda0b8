"""ARC's own metrics for alerting: names, types and label names as exposed on /metrics (an alert rule or
dashboard breaks when one of them changes), and `arc_reconcile_errors_total` by reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

import controllers.artifactworkflow.metrics  # noqa: F401  (registers the ArtifactWorkflow metrics)
from api.meta import Status
from controllers.kube import ConflictError, NotFoundError, TransportError
from controllers.runtime import Controller, Request, Result, TerminalError
from controllers.runtime.controller import error_reason

pytestmark = pytest.mark.looptime


def exposition() -> str:
    return generate_latest(REGISTRY).decode()


@pytest.mark.parametrize(
    ("name", "type_", "labels"),
    [
        ("arc_reconcile_errors_total", "counter", ("controller", "reason")),
        ("arc_artifactworkflow_completions_total", "counter", ("namespace", "artifact_type", "result")),
        ("arc_artifactworkflow_duration_seconds", "histogram", ("artifact_type", "result")),
    ],
)
def test_names_types_and_labels(name: str, type_: str, labels: tuple[str, ...]) -> None:
    family = next(
        (m for m in REGISTRY.collect() if m.name == name.removesuffix("_total")),
        None,
    )
    assert family is not None, name
    assert family.type == type_
    assert f"# TYPE {name} {type_}" in exposition()
    for sample in family.samples:
        assert set(sample.labels) - {"le"} == set(labels), sample
    if type_ == "histogram":
        assert "order" not in labels and "namespace" not in labels, "bounded cardinality"


def _api_error(cls: Any, code: int, reason: str) -> Any:
    return cls(Status(status="Failure", code=code, reason=reason, message="x"))


def test_error_reasons() -> None:
    assert error_reason(_api_error(ConflictError, 409, "Conflict")) == "Conflict"
    assert error_reason(_api_error(NotFoundError, 404, "NotFound")) == "NotFound"
    assert error_reason(_api_error(NotFoundError, 404, "SomethingAServerMadeUp")) == "Unknown"
    assert error_reason(TransportError("reset")) == "Transport"
    assert error_reason(TerminalError("bad input")) == "Terminal"
    assert error_reason(KeyError("x")) == "KeyError"


async def test_reconcile_errors_are_counted_by_controller_and_reason() -> None:
    outcomes: dict[str, list[Any]] = {
        "conflict": [_api_error(ConflictError, 409, "Conflict"), Result()],
        "gone": [_api_error(NotFoundError, 404, "NotFound"), Result()],
        "bad": [TerminalError("no")],
        "bug": [KeyError("k"), Result()],
        "fine": [Result()],
    }

    class Rec:
        async def reconcile(self, request: Request) -> Result:
            outcome = outcomes[request.name].pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            assert isinstance(outcome, Result)
            return outcome

    def count(reason: str) -> float:
        value = REGISTRY.get_sample_value(
            "arc_reconcile_errors_total", {"controller": "metrics-test", "reason": reason}
        )
        return value or 0.0

    before = {r: count(r) for r in ("Conflict", "NotFound", "Terminal", "KeyError")}
    controller = Controller("metrics-test", Rec(), concurrency=2)
    task = asyncio.create_task(controller.run())
    try:
        for name in outcomes:
            controller.enqueue(Request("ns", name))
        await asyncio.sleep(30)  # virtual: every outcome is used up within the backoff's first steps
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not any(outcomes.values())
    assert {r: count(r) - before[r] for r in before} == {
        "Conflict": 1,
        "NotFound": 1,
        "Terminal": 1,
        "KeyError": 1,
    }
