"""ARC's etcd backups as the chart runs them and docs/install.md restores them, for real: the snapshot
CronJob's two containers (etcdctl snapshot save; the rename-and-prune program in ARC's image), the defrag
CronJob's command, and the docs' restore steps (etcdutl snapshot restore with the StatefulSet's --initial-*
flags) — against the chart's etcd member, its certificates and its command line, on loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hack.binaries import REPO_ROOT, binary_path
from tests.integration.chart.support import EtcdMember, render

pytestmark = pytest.mark.integration

SNAPSHOT_NAME = re.compile(r"^arc-etcd-\d{8}T\d{6}Z\.db$")


def _job_containers(objects: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    cronjob = next(o for o in objects if o["kind"] == "CronJob" and o["metadata"]["name"] == name)
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def _run(member: EtcdMember, container: dict[str, Any], programs: dict[str, str]) -> str:
    """A container's command and env, localized for this host; its program resolved in ``programs``."""
    command = [member.localize(part) for part in container["command"]]
    command[0] = programs[command[0]]
    env = {e["name"]: member.localize(e["value"]) for e in container.get("env", [])}
    proc = subprocess.run(
        command, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture
def objects(tmp_path: Path) -> list[dict[str, Any]]:
    return render(tmp_path / "helm-home", sets=["etcd.snapshot.keep=2"])


def test_snapshot_cronjob_saves_renames_and_keeps_the_newest(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    member = EtcdMember(objects, tmp_path / "member")
    programs = {"etcdctl": str(binary_path("etcdctl")), "python3": sys.executable}
    containers = _job_containers(objects, "arc-etcd-snapshot")
    assert list(containers) == ["snapshot", "rotate"]
    (member.work / "snapshots").mkdir()
    old = member.work / "snapshots" / "arc-etcd-20000101T000000Z.db"
    old.write_bytes(b"an old snapshot")
    member.start()
    try:
        member.put("/registry/arc.opendefense.cloud/orders/ns/o1", "order one")
        out = _run(member, containers["snapshot"], programs)
        assert "Snapshot saved at" in out, out
        out = _run(member, containers["rotate"], programs)
        assert "kept 2 snapshots" in out, out
    finally:
        member.stop()
    kept = sorted(p.name for p in (member.work / "snapshots").iterdir())
    assert len(kept) == 2 and old.name in kept, kept  # keep=2: the old one and the new one
    assert all(SNAPSHOT_NAME.match(name) for name in kept), kept
    assert not (member.work / "snapshots" / ".partial.db").exists()


def test_defrag_cronjob_defragments_every_member(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    member = EtcdMember(objects, tmp_path / "member")
    programs = {"etcdctl": str(binary_path("etcdctl"))}
    member.start()
    try:
        out = _run(member, _job_containers(objects, "arc-etcd-defrag")["defrag"], programs)
    finally:
        member.stop()
    assert f"Finished defragmenting etcd member[https://127.0.0.1:{member.client_port}]" in out, out


def test_restore_as_docs_install_md_says(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """Snapshot, then the docs' restore: etcdutl snapshot restore into <volume>/restored with the member's
    name and the StatefulSet's --initial-cluster/--initial-advertise-peer-urls, moved to <volume>/data; the
    member starts from it with its own command line and has the data of the snapshot, not what came later."""
    docs = (REPO_ROOT / "docs" / "install.md").read_text()
    assert "etcdutl snapshot restore" in docs and "--data-dir /var/lib/etcd/restored" in docs
    member = EtcdMember(objects, tmp_path / "member")
    programs = {"etcdctl": str(binary_path("etcdctl")), "python3": sys.executable}
    containers = _job_containers(objects, "arc-etcd-snapshot")
    (member.work / "snapshots").mkdir()
    member.start()
    try:
        member.put("/registry/kept", "before the snapshot")
        _run(member, containers["snapshot"], programs)
        _run(member, containers["rotate"], programs)
        member.put("/registry/lost", "after the snapshot")
    finally:
        member.stop()
    snapshot = next((member.work / "snapshots").iterdir())
    flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in member.container["args"] if "=" in a}
    shutil.rmtree(member.data)  # a lost volume, or a restore over it
    subprocess.run(
        [
            str(binary_path("etcdutl")),
            "snapshot",
            "restore",
            str(snapshot),
            "--data-dir",
            str(member.work / "restored"),
            "--name",
            member.name,
            "--initial-cluster",
            flags["--initial-cluster"],
            "--initial-advertise-peer-urls",
            flags["--initial-advertise-peer-urls"].replace("$(POD_NAME)", member.name),
            "--initial-cluster-token",
            flags["--initial-cluster-token"],
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (member.work / "restored").rename(member.data)
    member.start()
    try:
        assert member.get("/registry/kept") == "before the snapshot"
        assert member.get("/registry/lost") is None
    finally:
        member.stop()
