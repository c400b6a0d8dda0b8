"""Where the upstream programs built by ``hack/build-binaries.sh`` live.

``hack/binaries.txt`` is the single list of binaries and their pinned versions; the shell script builds
them, this module finds them.
"""

from __future__ import annotations

import os
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent
REPO_ROOT = HACK_DIR.parent


def cache_dir() -> Path:
    """The cache directory outside the checkout (``$ARC_CACHE_DIR``, default ``~/.cache/arc``)."""
    return Path(os.environ.get("ARC_CACHE_DIR", Path.home() / ".cache" / "arc"))


def pinned_versions() -> dict[str, str]:
    """Binary name → pinned version, as listed in ``hack/binaries.txt``."""
    versions: dict[str, str] = {}
    for line in (HACK_DIR / "binaries.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, version, *_ = line.split()
        versions[name] = version
    return versions


def go_module_cache() -> Path:
    """GOMODCACHE used by the builds: it holds the exact sources of every built program."""
    return cache_dir() / "go" / "mod"


def binary_path(name: str) -> Path:
    """The built binary ``name`` at its pinned version; raises FileNotFoundError if it is not built yet."""
    versions = pinned_versions()
    if name not in versions:
        raise KeyError(f"{name!r} is not listed in hack/binaries.txt")
    path = cache_dir() / "bin" / f"{name}-{versions[name]}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make binaries` (hack/build-binaries.sh {name})")
    return path
