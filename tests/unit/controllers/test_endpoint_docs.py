"""docs/api.md's Endpoint and metrics sections say what the code does: every flag in the flags table exists
with the default it shows, every `--endpoint-*` flag is in the table, and every metric in the metrics table
is exposed with the type and labels it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from controllers.__main__ import parse_args
from controllers.endpoint import setup_endpoint_controller
from controllers.endpoint.probe import AddressPolicy, Prober
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import SECRETS
from controllers.order import setup_order_controller
from controllers.order.hashkey import HashKey
from controllers.order.setup import decode_secret
from controllers.runtime import Manager

DOC = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text()


def _table(heading: str) -> list[list[str]]:
    section = DOC.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def _flag_rows() -> list[list[str]]:
    return [r for r in _table("Endpoints: do they work?") if r[0].startswith("`--")]


def test_every_documented_flag_exists_with_its_default() -> None:
    defaults = vars(parse_args(["--kubeconfig", "/dev/null"]))
    rows = _flag_rows()
    assert len(rows) == 6
    for flag, default, _ in rows:
        name = flag.strip("`").removeprefix("--").replace("-", "_")
        assert name in defaults, flag
        value = defaults[name]
        if default.startswith("off"):
            assert value is False, flag
        elif default == "any":
            assert value == "", flag
        else:
            assert str(value).removesuffix(".0") == default.strip("`"), flag


def test_the_failure_section_names_a_real_flag_and_default() -> None:
    section = DOC.split("## Failures and waiting explain themselves", 1)[1].split("\n## ", 1)[0]
    assert "`--failed-step-log-lines N`" in section
    assert vars(parse_args(["--kubeconfig", "/dev/null"]))["failed_step_log_lines"] == 0
    assert "failedStepLogLines: 10" in section


def test_every_endpoint_flag_is_documented() -> None:
    documented = {r[0].strip("`") for r in _flag_rows()}
    flags = set(
        re.findall(
            r'"(--endpoint-[a-z-]+)"',
            (Path(__file__).resolve().parents[3] / "controllers" / "__main__.py").read_text(),
        )
    )
    assert flags == documented


@pytest.fixture(scope="module")
def registered() -> None:
    """The collectors that the controllers' setup registers (a manager that never runs)."""
    manager = Manager(FakeKubeClient(), bind_address=None)
    key = HashKey(b"k" * 32)
    setup_order_controller(manager, hash_key=key)
    setup_endpoint_controller(
        manager,
        secrets=manager.informer(SECRETS, lambda raw: decode_secret(raw, key=key)),
        prober=Prober(AddressPolicy(())),
    )


@pytest.mark.usefixtures("registered")
def test_every_documented_metric_is_exposed_with_its_type_and_labels() -> None:
    rows = _table("Metrics for alerting")
    assert len(rows) == 5
    families = {m.name: m for m in REGISTRY.collect()}
    for name, type_, labels, _ in rows:
        metric = name.strip("`")
        family = families.get(metric.removesuffix("_total"))
        assert family is not None, metric
        assert family.type == type_, metric
        want = {label.strip("`") for label in re.findall(r"`([a-z_]+)`", labels)}
        # the labels column names the label names first, then (for result) its values
        names = {
            w
            for w in want
            if w in ("namespace", "artifact_type", "result", "order", "controller", "reason", "endpoint")
        }
        exposed = {label for s in family.samples for label in s.labels} - {"le"}
        assert not exposed or exposed == names, (metric, exposed, names)
