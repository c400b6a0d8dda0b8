"""The long proof suites (``fuzz``, ``chaos`` markers) run only from their make targets.

``make test`` must fit CI's budget, so tests marked ``fuzz`` or ``chaos`` are deselected unless
``ARC_LONG_SUITES=1`` (set by ``make fuzz`` and ``make chaos``); their bounded slices are ordinary tests.
"""

from __future__ import annotations

import os

import pytest

LONG_MARKERS = ("fuzz", "chaos")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ARC_LONG_SUITES") == "1":
        return
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(m) for m in LONG_MARKERS) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
