"""Two real registries per module: ``open_registry`` (anonymous) and ``auth_registry`` (htpasswd)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.integration.workflowtemplates.support import DOCKER_REGISTRY, Registry


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is missing: `make apt` installs it (hack/apt-packages.txt)")


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    _require(DOCKER_REGISTRY)
    _require("skopeo")
    registry = Registry(tmp_path_factory.mktemp("registry-open"))
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    _require(DOCKER_REGISTRY)
    registry = Registry(tmp_path_factory.mktemp("registry-auth"), user="arc-pusher", password='p@ss "w0rd"')
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
