"""docs/operations.md: a runbook entry for every alert ARC ships (and the alerts' runbook_url anchors lead to
it), the scrape jobs it documents are the ones the rules and the local stack use, and its promtool commands
run as written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hack.binaries import REPO_ROOT, binary_path
from hack.prometheus import Prometheus

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "operations.md"
RULES = REPO_ROOT / "deploy" / "prometheus" / "arc-rules.yaml"
RUNBOOK = "https://github.com/opendefensecloud/arc/blob/main/docs/operations.md#"


def _alerts() -> dict[str, str]:
    """Alert name → runbook_url."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["annotations"]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r}


def _runbook_headings() -> list[str]:
    section = DOC.read_text().split("## Alerts and runbook", 1)[1]
    return re.findall(r"^### (\S+)$", section, re.M)


def test_every_alert_has_a_runbook_entry_and_nothing_else_does() -> None:
    alerts = _alerts()
    assert len(alerts) >= 9
    assert sorted(_runbook_headings()) == sorted(alerts)
    for name, url in alerts.items():
        # GitHub's anchor of "### ARCFoo" is "#arcfoo".
        assert url == RUNBOOK + name.lower(), (name, url)


def test_the_documented_jobs_are_the_ones_scraped(tmp_path: Path) -> None:
    table = DOC.read_text().split("## What to scrape", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", table, re.M))
    local = Prometheus(tmp_path, 1, *(tmp_path / f for f in ("ca", "crt", "key")), "a:1", "b:2", "c:3", "d:4")
    scraped = {job["job_name"] for job in local.config()["scrape_configs"]}
    assert documented == scraped
    assert scraped == {
        "arc-apiserver",
        "arc-controller-manager",
        "kube-apiserver",
        "argo-workflow-controller",
    }
    selected = set(re.findall(r'job=~?"([^"]+)"', RULES.read_text()))
    assert {j for s in selected for j in s.split("|")} <= documented


def test_the_promtool_commands_run_as_written(tmp_path: Path) -> None:
    block = DOC.read_text().split("<!-- test: promtool -->\n```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / "promtool").symlink_to(binary_path("promtool"))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") >= 2, result.stdout
