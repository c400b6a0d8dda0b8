"""docs/security.md's "Securing etcd" commands are real: the certificate command makes the files it names,
every etcd flag exists in the pinned etcd, and the arc-apiserver command line parses into that config."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from apiserver.options import complete, parser
from hack.binaries import binary_path

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _section_commands() -> list[str]:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Securing etcd", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [
            line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
        ]
    return commands


def test_the_documented_commands(tmp_path: Path) -> None:
    commands = _section_commands()
    python, etcd, arc = (
        next(c for c in commands if c.startswith(p)) for p in ("python ", "etcd ", "arc-apiserver ")
    )

    argv = shlex.split(python)
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}, timeout=60
    )
    assert done.returncode == 0
    for name in ("etcd-arc-ca.crt", "etcd-arc-server.crt", "etcd-arc-server.key", "etcd-arc-client.crt"):
        assert (tmp_path / "pki" / name).is_file(), name
    assert (tmp_path / "pki" / "etcd-arc-client.key").stat().st_mode & 0o777 == 0o600

    helped = subprocess.run([str(binary_path("etcd")), "--help"], capture_output=True, text=True, timeout=30)
    known = set(re.findall(r"--[a-z0-9-]+", helped.stdout + helped.stderr))
    used = set(re.findall(r"--[a-z0-9-]+", etcd))
    assert used and used <= known, used - known

    (tmp_path / "tokens").write_text("t,u,1\n")
    args = parser().parse_args(
        [
            *shlex.split(arc)[1:],
            "--standalone",
            f"--token-auth-file={tmp_path / 'tokens'}",
            f"--cert-dir={tmp_path}",
        ]
    )
    config, _ = complete(args)
    assert len(config.etcd_servers.split(",")) == 3
    assert config.etcd_cafile == Path("pki/etcd-arc-ca.crt")
    assert config.etcd_certfile == Path("pki/etcd-arc-client.crt")
    assert config.etcd_keyfile == Path("pki/etcd-arc-client.key")
