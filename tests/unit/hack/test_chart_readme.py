"""hack/chart_readme: the values table from helm-docs style ``# --`` comments."""

from __future__ import annotations

from pathlib import Path

from hack.chart_readme import BEGIN, END, Value, documented_values, render_readme

VALUES = """\
# A file comment, not a value's.

# -- The image.
image:
  # -- Where it comes from,
  # on two lines.
  repository: example.org/arc
  tag: ""
items:
  - name: a
    # -- not documented: inside a list
    value: x
# -- Replicas.
replicas: 2
"""


def test_documented_keys_with_types_defaults_and_joined_comments(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(VALUES)
    assert documented_values(path) == [
        Value("image", "object", '{"repository": "example.org/arc", "tag": ""}', "The image."),
        Value("image.repository", "string", '"example.org/arc"', "Where it comes from, on two lines."),
        Value("replicas", "int", "2", "Replicas."),
    ]


def test_the_table_replaces_only_the_marked_section() -> None:
    readme = f"# Chart\n\nintro\n\n{BEGIN}\nold | table\n{END}\n\nafter\n"
    rendered = render_readme(readme, [Value("a.b", "bool", "true", "Flag | with a pipe.")])
    assert rendered == (
        f"# Chart\n\nintro\n\n{BEGIN}\n| Key | Type | Default | Description |\n|---|---|---|---|\n"
        f"| `a.b` | bool | `true` | Flag \\| with a pipe. |\n{END}\n\nafter\n"
    )
