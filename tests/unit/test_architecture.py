"""docs/architecture.md shows the import contracts `.importlinter` enforces, word for word."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layer_rows() -> dict[str, str]:
    """Each layers contract as the architecture page's table cell: `a / b \\| c / d`, packages relative."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    rows = {}
    for section in config.sections():
        contract = config[section]
        if contract.get("type") != "layers":
            continue
        layers = [line.strip() for line in contract["layers"].splitlines() if line.strip()]
        prefixes = {layer.split(".")[0] + "." for layer in layers if "." in layer}
        cells = []
        for layer in layers:
            for prefix in prefixes:
                layer = layer.replace(prefix, "")
            cells.append(layer.replace("|", "\\|"))
        rows[section.removeprefix("importlinter:contract:")] = " / ".join(cells)
    return rows


def test_every_layers_contract_is_on_the_architecture_page() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = layer_rows()
    assert set(rows) >= {"layers", "apiserver-layers", "controllers-layers"}
    for name, layers in rows.items():
        if name == "layers":
            layers = layers.replace(" / ", " over ")
        start = f"| `{name}` | "
        row = next((line for line in page.splitlines() if line.startswith(start)), None)
        assert row is not None, f"{name} is missing from docs/architecture.md"
        shown = re.sub(r" \([^)]*\)", "", row.removeprefix(start).rstrip(" |").replace("`", ""))
        assert shown == layers, name
