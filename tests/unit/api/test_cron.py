"""Cron schedules (api/cron.py) and the Order's `cron` fields: grammar as CronJob (robfig/cron) accepts it,
time zones, validation with field paths, defaults. Pure functions of explicit times: no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.arc.v1alpha1 import defaults, validation
from api.arc.v1alpha1.types import Order
from api.cron import CronError, load_timezone, parse_schedule, parse_schedules
from api.fields import ErrorType

from . import fixtures as fx

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "*/5 * * * *",
        "0 3 * * *",
        "30 2 1,15 * MON-FRI",
        "0 9 ? JAN,dec sun",
        "5/15 * * * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@every 5s",
        "@every 1h30m",
        "@every 1.5m",
    ],
)
def test_accepted(text: str) -> None:
    parse_schedule(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("* * * *", "expected exactly 5 fields, found 4"),
        ("0 * * * * *", "expected exactly 5 fields, found 6"),  # no seconds field, as robfig's standard
        ("60 * * * *", "minute value 60 out of range (0-59)"),
        ("* 24 * * *", "hour value 24 out of range (0-23)"),
        ("* * 0 * *", "day of month value 0 out of range (1-31)"),
        ("* * * 13 *", "month value 13 out of range (1-12)"),
        ("* * * * 7", "day of week value 7 out of range (0-6)"),
        ("L * * * *", "failed to parse int from L"),
        ("H * * * *", "failed to parse int from H"),
        ("5-1 * * * *", "beyond end of range"),
        ("*/0 * * * *", "invalid step '0'"),
        ("0 0 30 2 *", "never fires"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@every", "@every needs a duration"),
        ("@every 5x", "invalid duration '5x'"),
        ("TZ=Europe/Berlin 0 3 * * *", "cannot use TZ or CRON_TZ in schedule"),
        ("CRON_TZ=UTC 0 3 * * *", "cannot use TZ or CRON_TZ in schedule"),
    ],
)
def test_refused(text: str, words: str) -> None:
    with pytest.raises(CronError, match=None) as err:
        parse_schedule(text)
    assert words in str(err.value)


def test_latest_and_next_of_a_cron_expression() -> None:
    every5 = parse_schedule("*/5 * * * *")
    assert every5.latest(T0 - timedelta(hours=1), T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=5)
    assert every5.latest(T0, T0) is None  # (anchor, now]: the anchor itself is not a new time
    assert every5.latest(T0 - timedelta(seconds=1), T0) == T0  # a time exactly at now counts
    assert every5.latest(T0 + timedelta(minutes=5), T0 + timedelta(minutes=9, seconds=59)) is None
    assert every5.next(T0) == T0 + timedelta(minutes=5)
    assert every5.next(T0 - timedelta(microseconds=1)) == T0


def test_every_counts_from_its_anchor_in_whole_seconds() -> None:
    every = parse_schedule("@every 5s")
    anchor = T0 + timedelta(microseconds=700)  # robfig cuts the anchor to the second
    assert every.next(anchor) == T0 + timedelta(seconds=5)
    assert every.latest(anchor, T0 + timedelta(seconds=4.9)) is None
    assert every.latest(anchor, T0 + timedelta(seconds=12.3)) == T0 + timedelta(seconds=10)
    assert parse_schedule("@every 300ms").next(T0) == T0 + timedelta(seconds=1)  # at least a second


def test_time_zone_and_daylight_saving() -> None:
    berlin = parse_schedules(["0 3 * * *"], "Europe/Berlin")
    assert berlin.next(datetime(2026, 7, 1, 12, tzinfo=UTC)) == datetime(2026, 7, 2, 1, tzinfo=UTC)  # CEST
    assert berlin.next(datetime(2026, 12, 1, 12, tzinfo=UTC)) == datetime(2026, 12, 2, 2, tzinfo=UTC)  # CET
    # 02:30 does not exist on 29 March 2026 in Berlin: the run happens once, at the first valid time
    gap = parse_schedules(["30 2 * * *"], "Europe/Berlin")
    assert gap.next(datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_several_schedules_are_a_union() -> None:
    plan = parse_schedules(["0 3 * * *", "0 15 * * *"], None)
    assert plan.next(T0) == T0.replace(hour=15)
    assert plan.latest(T0 - timedelta(days=1), T0) == T0.replace(hour=3)


@pytest.mark.parametrize("name", ["Local", "Mars/Olympus", "../etc/passwd", "/etc/localtime", ""])
def test_unknown_time_zones(name: str) -> None:
    with pytest.raises(CronError):
        load_timezone(name)


def test_unset_time_zone_is_utc() -> None:
    assert load_timezone(None) is UTC
    assert str(load_timezone("Asia/Tokyo")) == "Asia/Tokyo"


def _order_errors(mutate: Any) -> list[tuple[str, ErrorType, str]]:
    wire = fx.order()
    mutate(wire)
    order = Order.model_validate(wire)
    defaults.set_defaults(order)
    return [(e.field, e.type, e.detail) for e in validation.validate(order)]


def test_valid_cron_on_defaults_and_artifact() -> None:
    def mutate(wire: dict[str, Any]) -> None:
        wire["spec"]["defaults"]["cron"] = {"schedules": ["0 3 * * *"], "timezone": "Europe/Berlin"}
        wire["spec"]["artifacts"][1]["cron"] = {
            "schedules": ["@every 6h"],
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
        }

    assert _order_errors(mutate) == []


def test_every_cron_problem_at_once_with_its_path() -> None:
    def mutate(wire: dict[str, Any]) -> None:
        wire["spec"]["defaults"]["cron"] = {"schedules": ["0 3 * *", "@hourly"], "timezone": "Mars/Olympus"}
        wire["spec"]["artifacts"][1]["cron"] = {
            "schedules": [],
            "concurrencyPolicy": "Sometimes",
            "startingDeadlineSeconds": -1,
            "successfulJobsHistoryLimit": -2,
            "failedJobsHistoryLimit": -3,
        }

    errs = _order_errors(mutate)
    assert [(field, kind) for field, kind, _ in errs] == [
        ("spec.defaults.cron.schedules[0]", ErrorType.INVALID),
        ("spec.defaults.cron.timezone", ErrorType.INVALID),
        ("spec.artifacts[1].cron.schedules", ErrorType.REQUIRED),
        ("spec.artifacts[1].cron.concurrencyPolicy", ErrorType.NOT_SUPPORTED),
        ("spec.artifacts[1].cron.startingDeadlineSeconds", ErrorType.INVALID),
        ("spec.artifacts[1].cron.successfulJobsHistoryLimit", ErrorType.INVALID),
        ("spec.artifacts[1].cron.failedJobsHistoryLimit", ErrorType.INVALID),
    ]
    assert errs[0][2] == "expected exactly 5 fields, found 4: 0 3 * *"
    assert errs[1][2] == "unknown time zone Mars/Olympus"


def test_cron_defaults() -> None:
    wire = fx.order()
    wire["spec"]["defaults"]["cron"] = {"schedules": ["@daily"]}
    wire["spec"]["artifacts"][0]["cron"] = {"schedules": ["@hourly"], "concurrencyPolicy": "Replace"}
    order = Order.model_validate(wire)
    defaults.set_defaults(order)
    assert order.spec.defaults is not None and order.spec.defaults.cron is not None
    got = order.spec.defaults.cron.model_dump(by_alias=True, exclude_none=True)
    assert got == {
        "schedules": ["@daily"],
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }
    assert order.spec.artifacts is not None and order.spec.artifacts[0].cron is not None
    assert order.spec.artifacts[0].cron.concurrency_policy == "Replace"
    assert order.spec.artifacts[1].cron is None  # falls back to spec.defaults.cron in the controller
