"""Running helm (and its plugins) on deploy/charts/arc in an isolated helm home, rendering and splitting."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hack.binaries import REPO_ROOT, binary_path

CHART_DIR = REPO_ROOT / "deploy" / "charts" / "arc"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))


def helm_env(home: Path) -> dict[str, str]:
    """helm's config, cache, data and plugins under ``home`` (never the user's ~/.config/helm)."""
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_PLUGINS": str(home / "plugins"),
    }


def helm(
    *args: str,
    home: Path,
    check: bool = True,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(binary_path("helm")), *args],
        env={**helm_env(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


def documents(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def render(
    home: Path,
    *,
    values: Sequence[Path] = (),
    sets: Sequence[str] = (),
    release: str = "arc",
    namespace: str = "arc-system",
) -> list[dict[str, Any]]:
    """``helm template`` (hooks included) as a list of objects."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return documents(helm(*args, home=home).stdout)
