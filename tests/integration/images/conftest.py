"""One image build per session (``python -m hack.images build`` into ``.arc/images``, what ``make images``
writes — warm from ``~/.cache/arc/images`` after the first time), and a podman with its own storage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hack.binaries import REPO_ROOT
from hack.images.build import DEFAULT_OUT

#: At or below this VM's limits: runc applies them; crun cannot (setrlimit is refused here).
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def require(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is missing: `make apt` installs it (hack/apt-packages.txt)")


def build(out: Path, *extra: str, python: str = sys.executable) -> dict[str, Any]:
    subprocess.run(
        [python, "-m", "hack.images", "build", "--out", str(out), *extra],
        cwd=REPO_ROOT,
        check=True,
        timeout=1800,
    )
    summary: dict[str, Any] = json.loads((out / "images.json").read_text())
    return summary


def another_interpreter_path() -> str:
    """The running interpreter under another of its names in the same directory (``python3`` for
    ``python``…): the same program, but a different ``sys.executable``, which pip writes into shebangs."""
    here = Path(sys.executable)
    for name in ("python3", "python", f"python{sys.version_info.major}.{sys.version_info.minor}"):
        if name != here.name and (here.parent / name).is_file():
            return str(here.parent / name)
    pytest.fail(f"no other name of {here} in {here.parent}")


@pytest.fixture(scope="session")
def built() -> dict[str, Any]:
    """``images.json`` of the session's build in ``.arc/images``."""
    require("mmdebstrap")
    return build(DEFAULT_OUT)


@dataclass
class Podman:
    """podman with the runc runtime, overlay storage in a temporary directory, no network."""

    root: Path

    def args(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "overlay",
            "--runtime",
            "runc",
        ]

    def load(self, layout: Path, tag: str, name: str) -> str:
        """Copy ``oci:<layout>:<tag>`` into this storage as ``localhost/<name>:<tag>``."""
        image = f"localhost/{name}:{tag}"
        storage = f"containers-storage:[overlay@{self.root / 'storage'}+{self.root / 'run'}]{image}"
        subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:{tag}", storage], check=True, timeout=600)
        return image

    def run(self, image: str, *args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [*self.args(), "run", "--rm", "--network", "none", *ULIMITS]
        if entrypoint is not None:
            command += ["--entrypoint", entrypoint]
        return subprocess.run(
            [*command, image, *args], capture_output=True, text=True, timeout=300, check=False
        )


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    require("podman")
    require("runc")
    p = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield p
    finally:
        subprocess.run(
            [*p.args(), "system", "reset", "--force"], capture_output=True, timeout=300, check=False
        )
