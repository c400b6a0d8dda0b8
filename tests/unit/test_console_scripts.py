"""The images start ARC through its console scripts: they exist and name the programs' mains."""

from __future__ import annotations

from importlib.metadata import entry_points

import apiserver.__main__
import controllers.__main__


def test_console_scripts_name_the_mains() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.name.startswith("arc-")}
    assert scripts["arc-apiserver"].load() is apiserver.__main__.main
    assert scripts["arc-controller-manager"].load() is controllers.__main__.main
