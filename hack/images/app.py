"""ARC's own layer: its wheel and the locked runtime dependencies, installed with pip from PyPI.

``pip install --target`` puts them into ``/usr/local/lib/python3.11/dist-packages``, which Debian's
``python3`` already has on ``sys.path``: no virtualenv, no ``PYTHONPATH``. Only runtime dependencies
(``-c hack/constraints.txt`` pins their versions; the ``dev`` extra is not installed). The wheel is built
from a copy of the sources, so stale ``build/`` directories in the checkout can never leak into it.

Reproducibility: pip's ``direct_url.json`` (it names the wheel's temporary path) is dropped, byte-code is
compiled by us in ``unchecked-hash`` mode with the in-image path (``compileall -d``), and the layer's files
get ``SOURCE_DATE_EPOCH`` (the last commit of its sources). The wheel's build backend is pinned
(``hack/build-constraints.txt``), dependencies are installed from wheels only (``--only-binary :all:``: a
locally built sdist differs from build to build), and every Python step runs with ``PYTHONHASHSEED=0`` (set
iteration order, and so marshalled frozensets, would follow the random hash seed). The console scripts
``arc-apiserver`` and ``arc-controller-manager`` are written here with ``#!/usr/bin/python3`` (pip's would
name the build host's interpreter). The finished layer is cached per hash of the inputs, so an unchanged tree
rebuilds nothing.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hack.binaries import REPO_ROOT
from hack.images.oci import Entry, Layer, file_info, tree_entries, write_atomic, write_layer
from hack.images.rootfs import cache_root

log = logging.getLogger("hack.images")

SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
BIN_DIR = "usr/local/bin"
#: The project's packages (setuptools' include list) and the files that decide the installed content.
PACKAGES = ("api", "apiserver", "controllers", "workflowtemplates")
INPUT_FILES = ("pyproject.toml", "README.md", "hack/constraints.txt", "hack/build-constraints.txt")
#: Bump when the way the layer is made changes.
APP_FORMAT = 3


@dataclass(frozen=True)
class PythonDist:
    name: str
    version: str


@dataclass(frozen=True)
class AppLayer:
    layer: Layer
    dists: tuple[PythonDist, ...]
    scripts: tuple[str, ...]


def inputs_key(epoch: int) -> str:
    """Hash of every input of the app layer: the project's sources, pins, interpreter and mtime."""
    h = hashlib.sha256()
    h.update(f"{APP_FORMAT}\0{epoch}\0{sys.version}\0{_pip_version()}\0".encode())
    paths = [REPO_ROOT / f for f in INPUT_FILES]
    for package in PACKAGES:
        paths += sorted(
            p for p in (REPO_ROOT / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for path in paths:
        h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def app_layer(epoch: int, *, rebuild: bool = False) -> AppLayer:
    """The cached app layer for the current tree, built now if missing or ``rebuild`` (about a minute, most
    of it pip)."""
    directory = cache_root() / "app" / inputs_key(epoch)
    meta_path = directory / "meta.json"
    if meta_path.is_file() and not rebuild:
        meta = json.loads(meta_path.read_text())
        layer = Layer.from_json(directory / "layer.tar.gz", meta["layer"])
        if layer.path.is_file() and layer.path.stat().st_size == layer.size:
            dists = tuple(PythonDist(d["name"], d["version"]) for d in meta["dists"])
            return AppLayer(layer, dists, tuple(meta["scripts"]))
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="arc-app-") as tmp:
        work = Path(tmp)
        wheel = _build_wheel(work, epoch)
        site = work / "site"
        _pip(
            epoch,
            "install",
            "--quiet",
            "--no-compile",
            "--no-warn-script-location",
            "--only-binary",
            ":all:",
            "--target",
            str(site),
            "-c",
            str(REPO_ROOT / "hack" / "constraints.txt"),
            str(wheel),
        )
        drop_build_host_files(site)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-j",
                "1",
                "--invalidation-mode",
                "unchecked-hash",
                "-d",
                "/" + SITE_PACKAGES,
                str(site),
            ],
            check=True,
            env=_build_env(epoch),
        )
        scripts = _console_scripts(site)
        entries: list[Entry] = list(tree_entries(site, SITE_PACKAGES, epoch))
        for name, text in scripts.items():
            data = text.encode()
            entries.append(Entry(file_info(f"{BIN_DIR}/{name}", len(data), epoch, 0o755), data=data))
        dists = tuple(_dists(site))
        layer = write_layer(entries, directory / "layer.tar.gz")
    meta = {
        "layer": layer.to_json(),
        "dists": [{"name": d.name, "version": d.version} for d in dists],
        "scripts": sorted(scripts),
    }
    write_atomic(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    log.info("app layer: built in %.0f s (%s)", time.monotonic() - started, layer.digest)
    return AppLayer(layer, dists, tuple(sorted(scripts)))


def drop_build_host_files(site: Path) -> None:
    """Remove what pip wrote for the build host and not for the image: ``bin/`` (scripts whose shebang names
    the host's interpreter, so their hashes in every RECORD changed with the virtualenv's path) and
    ``direct_url.json`` (the wheel's temporary path), and their lines in each RECORD."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for path in site.glob("*.dist-info/direct_url.json"):
        path.unlink()
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        dropped = ("../../bin/", f"{record.parent.name}/direct_url.json,")
        kept = [x for x in lines if not x.startswith(dropped)]
        if kept != lines:
            record.write_text("".join(kept))


def _build_env(epoch: int) -> dict[str, str]:
    """The environment of every step that makes the layer: a fixed hash seed and source date, and the pinned
    build backend for pip's isolated build environment."""
    return {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "SOURCE_DATE_EPOCH": str(epoch),
        "PIP_CONSTRAINT": str(REPO_ROOT / "hack" / "build-constraints.txt"),
    }


def _pip_version() -> str:
    from pip import __version__

    return __version__


def _pip(epoch: int, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True, env=_build_env(epoch)
    )


def _build_wheel(work: Path, epoch: int) -> Path:
    src = work / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / f, src / f)
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    dist = work / "dist"
    _pip(epoch, "wheel", "--quiet", "--no-deps", "-w", str(dist), str(src))
    (wheel,) = dist.glob("arc-*.whl")
    return wheel


def _console_scripts(site: Path) -> dict[str, str]:
    """name → script text for the ``console_scripts`` of ARC's own distribution."""
    (entry_points,) = site.glob("arc-*.dist-info/entry_points.txt")
    parser = configparser.ConfigParser()
    parser.read_string(entry_points.read_text())
    scripts = {}
    for name, target in parser["console_scripts"].items():
        module, _, func = target.partition(":")
        scripts[name] = (
            f"#!/usr/bin/python3\nimport sys\n\nfrom {module} import {func}\n\nsys.exit({func}())\n"
        )
    return scripts


def _dists(site: Path) -> list[PythonDist]:
    dists = []
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        fields: dict[str, str] = {}
        for line in metadata.read_text(errors="replace").splitlines():
            if not line:
                break
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        dists.append(PythonDist(fields["Name"], fields["Version"]))
    return sorted(dists, key=lambda d: d.name.lower())
