"""api.duration: Go's time.ParseDuration."""

from __future__ import annotations

import pytest

from api.duration import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("0", 0.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("", None),
        ("1d", None),
        ("h", None),
        ("1h 2m", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
