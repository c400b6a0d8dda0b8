"""hack/build-binaries.sh never rebuilds a binary that is already in the cache."""

from __future__ import annotations

import subprocess

import pytest

from hack.binaries import HACK_DIR, binary_path, pinned_versions

pytestmark = pytest.mark.integration


def test_second_build_reuses_every_cached_binary() -> None:
    before = {name: binary_path(name).stat().st_mtime_ns for name in pinned_versions()}
    proc = subprocess.run(
        [str(HACK_DIR / "build-binaries.sh")], capture_output=True, text=True, check=True, timeout=120
    )
    lines = proc.stdout.splitlines()
    for name, version in pinned_versions().items():
        assert f"[build-binaries] {name} {version}: cached ({binary_path(name)})" in lines
    assert "building" not in proc.stdout
    assert {name: binary_path(name).stat().st_mtime_ns for name in pinned_versions()} == before


def test_every_binary_reports_its_pinned_version() -> None:
    versions = pinned_versions()
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        out = subprocess.run(
            [str(binary_path(name)), "--version"], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == f"Kubernetes {versions[name]}"
    out = subprocess.run([str(binary_path("etcd")), "--version"], capture_output=True, text=True, check=True)
    assert f"etcd Version: {versions['etcd'].removeprefix('v')}" in out.stdout
    # The sixth column of binaries.txt stamps the version into programs that would otherwise say "dev".
    out = subprocess.run([str(binary_path("trivy")), "--version"], capture_output=True, text=True, check=True)
    assert f"Version: {versions['trivy']}" in out.stdout
    # Prometheus' module tag v0.316.0 is release 3.16.0; the stamp says so, and remove_all_sd took effect.
    for name in ("prometheus", "promtool"):
        out = subprocess.run(
            [str(binary_path(name)), "--version"], capture_output=True, text=True, check=True
        )
        assert f"{name}, version 3.16.0 " in out.stdout, out.stdout
        assert "tags:             remove_all_sd" in out.stdout, out.stdout
