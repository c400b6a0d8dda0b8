"""deploy/prometheus/: the rules pass `promtool check rules`, their unit tests pass `promtool test rules`, and
every metric they read is one ARC exports (or one announced by issue 20 that another change is adding)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hack.binaries import REPO_ROOT, binary_path

pytestmark = pytest.mark.integration

RULES_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "arc-rules.yaml"
RULE_TESTS = RULES_DIR / "tests" / "arc-rules-test.yaml"

# Metrics the rules read that ARC's code does not define yet: issue 20 names them and another change adds
# them (the ArtifactWorkflow controller's completions, reconcile errors by reason, Endpoint readiness).
ANNOUNCED = frozenset(
    {"arc_artifactworkflow_completions_total", "arc_reconcile_errors_total", "arc_endpoint_ready"}
)
# Series Prometheus itself writes for every target.
PROMETHEUS_OWN = frozenset({"up"})
_METRIC = re.compile(
    r"(?<![:\w])((?:arc|apiserver|etcd|controller_runtime|workqueue)_[a-z0-9_]+|up)(?![:\w]|\s*\()"
)
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary_path("promtool")), *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the same tests against a backlog threshold ten times higher fail."""
    backlog = 'workqueue_depth{job="arc-controller-manager"}) > 100'
    changed = RULES.read_text().replace(backlog, backlog + "0")
    assert changed != RULES.read_text()
    (tmp_path / "arc-rules.yaml").write_text(changed)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "arc-rules-test.yaml").write_text(RULE_TESTS.read_text())
    result = subprocess.run(
        [str(binary_path("promtool")), "test", "rules", "tests/arc-rules-test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0, result.stdout
    assert "ARCWorkqueueBacklog" in result.stdout + result.stderr


def _code_metric_names() -> set[str]:
    """Every quoted metric-like name in ARC's code (prometheus_client takes the name as a literal)."""
    names: set[str] = set()
    for package in ("apiserver", "controllers"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            names.update(re.findall(r"\"([a-z_][a-z0-9_]*)\"", path.read_text()))
    return names


def rule_metric_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    names: set[str] = set()
    for group in groups:
        for rule in group["rules"]:
            names.update(m for m in _METRIC.findall(rule["expr"]) if ":" not in m)
    return names


def test_every_metric_the_rules_read_exists() -> None:
    exported = _code_metric_names()
    used = rule_metric_names()
    assert {"arc_artifactworkflows", "workqueue_depth", "etcd_request_duration_seconds_bucket"} <= used
    missing = set()
    for name in used - ANNOUNCED - PROMETHEUS_OWN:
        base = next((name.removesuffix(s) for s in _HISTOGRAM_SUFFIXES if name.endswith(s)), name)
        if base not in exported and name not in exported:
            missing.add(name)
    assert not missing, f"rules read metrics ARC does not export: {sorted(missing)}"
