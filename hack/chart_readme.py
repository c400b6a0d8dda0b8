"""The values table of the chart's README, generated from the ``# --`` comments of its values.yaml.

    python -m hack.chart_readme [--check]

helm-docs' comment convention (``# -- text`` above a key, continued by plain ``#`` lines) without helm-docs,
which the module proxy cannot build here. The table sits between ``<!-- values:begin -->`` and
``<!-- values:end -->`` in deploy/charts/arc/README.md; ``--check`` exits 1 when it is stale (a unit test
runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.binaries import REPO_ROOT

CHART_DIR = REPO_ROOT / "deploy" / "charts" / "arc"
BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):")


@dataclass(frozen=True)
class Value:
    key: str
    type: str
    default: str
    description: str


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _lookup(values: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    """(found, value) of a path of map keys; keys inside list items are not values of their own."""
    node: Any = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def documented_values(values_file: Path) -> list[Value]:
    """Every key with a ``# --`` comment, in file order, with its type and default."""
    text = values_file.read_text()
    values = yaml.safe_load(text)
    stack: list[tuple[int, str]] = []
    comment: list[str] | None = None
    documented: list[Value] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not match:
            comment = None if not stripped.startswith("-") else comment
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        found, default = _lookup(values, [key for _, key in stack])
        if comment is not None and found:
            path = [key for _, key in stack]
            documented.append(
                Value(
                    key=".".join(path),
                    type=_type_of(default),
                    default=json.dumps(default, separators=(", ", ": ")),
                    description=" ".join(comment),
                )
            )
            comment = None
    return documented


def table(values: list[Value]) -> str:
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for v in values:
        default = v.default.replace("|", "\\|")
        description = v.description.replace("|", "\\|")
        rows.append(f"| `{v.key}` | {v.type} | `{default}` | {description} |")
    return "\n".join(rows)


def render_readme(readme: str, values: list[Value]) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table(values)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.chart_readme", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table is stale")
    args = parser.parse_args(argv)
    readme_file = CHART_DIR / "README.md"
    readme = readme_file.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"{readme_file}: no {BEGIN} … {END} section", file=sys.stderr)
        return 1
    wanted = render_readme(readme, documented_values(CHART_DIR / "values.yaml"))
    if args.check:
        if wanted != readme:
            print(f"{readme_file} is stale: run `python -m hack.chart_readme`", file=sys.stderr)
            return 1
        return 0
    readme_file.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
