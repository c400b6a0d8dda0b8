"""Debian base root filesystems from Debian's own packages (``mmdebstrap``), cached per definition.

A base is fetched from the current Debian mirror, so its content changes whenever Debian publishes an update
(point releases, security fixes). Two builds are therefore only comparable on the same *mirror state*: the
finished base layer is cached under ``~/.cache/arc/images/base/<name>-<key>/`` where the key hashes the
definition (suite, mirrors, package list, excludes, hooks, the layer format) — never the ARC commit — so every
build on one machine reuses the same bytes until the cache is refreshed (``--refresh-base``) or the definition
changes. The exact Debian package versions inside are read from the root filesystem's dpkg status and kept
with the layer (they go into the SBOM and the lock, where a changed mirror shows up as changed versions).

The base's files get one fixed mtime, :data:`BASE_EPOCH` (mmdebstrap's ``SOURCE_DATE_EPOCH``), unrelated to
the ARC commit: the tools image must not change when only ARC's code does. Python's byte-code is recompiled in
``unchecked-hash`` mode, because the timestamp-checked ``.pyc`` files Debian's postinst writes would never
match the fixed mtimes (every start would recompile the standard library in memory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.images.oci import Entry, Layer, canonical_json, normalize, write_atomic, write_layer

log = logging.getLogger("hack.images")

#: Fixed mtime of every file in a base layer and of the tools image (2025-01-01T00:00:00Z).
BASE_EPOCH = 1735689600
#: Bump when the way a base layer is made changes (invalidates every cached base).
BASE_FORMAT = 1

NONROOT_UID = 65532
NONROOT_NAME = "nonroot"
MMDEBSTRAP = "/usr/bin/mmdebstrap"

#: dpkg path excludes (and no Recommends, see ``mmdebstrap_args``): documentation, manuals and translations
#: are never read in a container.
PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")

#: Runs inside mmdebstrap's customize phase (``$1`` is the root directory): the non-root user, hash-checked
#: byte-code, and no apt/dpkg leftovers that differ per run.
CUSTOMIZE = (
    f'echo "{NONROOT_NAME}:x:{NONROOT_UID}:{NONROOT_UID}:{NONROOT_NAME}:/home/{NONROOT_NAME}:'
    '/usr/sbin/nologin" >>"$1/etc/passwd"',
    f'echo "{NONROOT_NAME}:x:{NONROOT_UID}:" >>"$1/etc/group"',
    f'echo "{NONROOT_NAME}:*:19000:0:99999:7:::" >>"$1/etc/shadow"',
    f'mkdir -p "$1/home/{NONROOT_NAME}" && chown {NONROOT_UID}:{NONROOT_UID} "$1/home/{NONROOT_NAME}"'
    f' && chmod 0750 "$1/home/{NONROOT_NAME}"',
    'if [ -x "$1/usr/bin/python3" ]; then'
    ' find "$1/usr/lib" -depth -type d -name __pycache__ -exec rm -rf {} +;'
    ' chroot "$1" /usr/bin/python3 -m compileall -q -j 1 --invalidation-mode unchecked-hash'
    " /usr/lib/python3.11 /usr/lib/python3/dist-packages >/dev/null; fi",
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/*'
    ' "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old',
)


@dataclass(frozen=True)
class BaseSpec:
    """What a base root filesystem is made of."""

    name: str
    packages: tuple[str, ...]
    #: more dpkg path excludes for this base (files of hard dependencies the image never runs)
    excludes: tuple[str, ...] = ()
    suite: str = "bookworm"
    mirrors: tuple[str, ...] = (
        "deb http://deb.debian.org/debian {suite} main",
        "deb http://deb.debian.org/debian {suite}-updates main",
        "deb http://deb.debian.org/debian-security {suite}-security main",
    )

    def mmdebstrap_args(self) -> list[str]:
        args = [MMDEBSTRAP, "--variant=essential", "--include=" + ",".join(self.packages), "--format=tar"]
        args.append('--aptopt=APT::Install-Recommends "false"')
        args += [f"--dpkgopt=path-exclude={p}" for p in (*PATH_EXCLUDES, *self.excludes)]
        args += [f"--customize-hook={hook}" for hook in CUSTOMIZE]
        return args

    @property
    def key(self) -> str:
        definition = {
            "format": BASE_FORMAT,
            "epoch": BASE_EPOCH,
            "suite": self.suite,
            "mirrors": self.mirrors,
            "args": self.mmdebstrap_args(),
        }
        return hashlib.sha256(canonical_json(definition)).hexdigest()[:16]

    @property
    def description(self) -> str:
        return f"mmdebstrap --variant=essential --include={','.join(self.packages)} {self.suite}"


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    architecture: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "source": self.source,
        }


@dataclass(frozen=True)
class Base:
    """A cached base layer and what is in it."""

    spec: BaseSpec
    layer: Layer
    packages: tuple[DebPackage, ...]
    fetched_at: str  # when the mirror was read (informational; not in any image)


def parse_dpkg_status(text: str) -> list[DebPackage]:
    """Installed packages from a dpkg ``status`` file, sorted by name."""
    packages = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "Package" not in fields or not fields.get("Status", "").endswith(" installed"):
            continue
        source = fields.get("Source", fields["Package"]).split(" ")[0]
        packages.append(
            DebPackage(fields["Package"], fields["Version"], fields.get("Architecture", ""), source)
        )
    return sorted(packages, key=lambda p: p.name)


def cache_root() -> Path:
    from hack.binaries import cache_dir

    return cache_dir() / "images"


def base(spec: BaseSpec, *, refresh: bool = False) -> Base:
    """The base layer for ``spec``: from the cache, or built now with mmdebstrap (about a minute)."""
    directory = cache_root() / "base" / f"{spec.name}-{spec.key}"
    meta_path = directory / "meta.json"
    if meta_path.is_file() and not refresh:
        cached = json.loads(meta_path.read_text())
        layer = Layer.from_json(directory / "layer.tar.gz", cached["layer"])
        if layer.path.is_file() and layer.path.stat().st_size == layer.size:
            return Base(spec, layer, tuple(DebPackage(**p) for p in cached["packages"]), cached["fetchedAt"])
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    fetched_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="arc-base-", dir=directory) as tmp:
        rootfs_tar = Path(tmp) / "rootfs.tar"
        mirrors = [m.format(suite=spec.suite) for m in spec.mirrors]
        args = [*spec.mmdebstrap_args(), spec.suite, str(rootfs_tar), *mirrors]
        log.info("base %s: %s", spec.name, spec.description)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(BASE_EPOCH), "LC_ALL": "C.UTF-8"}
        proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        layer, package_list = _base_layer(rootfs_tar, directory / "layer.tar.gz")
    packages = tuple(package_list)
    meta: dict[str, Any] = {
        "spec": {"name": spec.name, "suite": spec.suite, "packages": spec.packages, "mirrors": spec.mirrors},
        "fetchedAt": fetched_at,
        "layer": layer.to_json(),
        "packages": [p.to_json() for p in packages],
    }
    write_atomic(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    log.info("base %s: built in %.0f s (%s)", spec.name, time.monotonic() - started, layer.digest)
    return Base(spec, layer, packages, fetched_at)


def _base_layer(rootfs_tar: Path, out: Path) -> tuple[Layer, list[DebPackage]]:
    """The deterministic layer of mmdebstrap's tar: no device nodes (the runtime makes /dev), fixed mtimes."""
    with tarfile.open(rootfs_tar, "r:") as tar:
        entries = []
        status = ""
        for member in tar.getmembers():
            name = member.name.removeprefix("./").rstrip("/")
            if not name or (name.startswith("dev/") and not member.isdir()):
                continue
            if member.ischr() or member.isblk() or member.isfifo():
                continue
            info = normalize(member, BASE_EPOCH, clamp=False)
            entries.append(Entry(info, tar=tar, member=member))
            if name == "var/lib/dpkg/status":
                extracted = tar.extractfile(member)
                assert extracted is not None
                status = extracted.read().decode()
        layer = write_layer(entries, out)
    return layer, parse_dpkg_status(status)
