"""Cron schedules as Kubernetes' CronJob reads them (robfig/cron's `ParseStandard`), in a time zone.

Accepted: five fields (minute hour day-of-month month day-of-week) of `*`, `?`, numbers, month names
(JAN-DEC) and day names (SUN-SAT), lists (`,`), ranges (`-`) and steps (`/`); the descriptors `@yearly`,
`@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`; and `@every <duration>` (a Go
duration, cut to whole seconds, at least one second) — the forms CronJob, Argo's CronWorkflow and the Go
ARC's `Cron.schedules` accept. Not accepted (robfig rejects them too, or CronJob forbids them): seconds
fields, `L`/`W`/`#`/`H`, day-of-week 7, and `TZ=`/`CRON_TZ=` prefixes (the time zone is its own field).

The grammar is checked here, so what is valid does not depend on a library's extensions; the calendar
arithmetic (including daylight-saving gaps and repeats) is croniter's, and this is the only module that
imports it. `@every` ticks are counted from an anchor (the previous tick, or the Order's creation), as
robfig's `ConstantDelaySchedule` counts from the time it is asked about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

__all__ = ["CronError", "Schedule", "SchedulePlan", "load_timezone", "parse_schedule", "parse_schedules"]

_DESCRIPTORS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS: Final = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# (name, low, high, names)
_FIELDS: Final[tuple[tuple[str, int, int, dict[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
_GO_DURATION: Final = re.compile(r"((?:\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))")
_UNIT_SECONDS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
MAX_EVERY_SECONDS: Final = 100 * 365 * 24 * 3600


class CronError(ValueError):
    """A schedule or time zone that cannot be used; the message is what validation reports."""


def load_timezone(name: str | None) -> tzinfo:
    """The IANA zone `name`; UTC when unset. `Local` is refused (which machine's?), as CronJob does."""
    if name is None:
        return UTC
    if not name:
        raise CronError("must be a non-empty IANA time zone name")
    if name.lower() == "local" or name.startswith("/") or ".." in name:
        raise CronError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


def _every_seconds(text: str) -> int:
    """`@every`'s Go duration in whole seconds (robfig: at least 1 s, fractions of a second dropped)."""
    pos = 0
    total = 0.0
    if not text:
        raise CronError("@every needs a duration, e.g. @every 1h30m")
    while pos < len(text):
        m = _GO_DURATION.match(text, pos)
        if m is None:
            raise CronError(f"failed to parse duration @every {text}: time: invalid duration {text!r}")
        total += float(m.group(1)[: -len(m.group(2))]) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if total > MAX_EVERY_SECONDS:
        raise CronError(f"@every {text} is longer than 100 years")
    return max(1, int(total))


def _check_value(token: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise CronError(f"failed to parse int from {token}: invalid {what} value")
    value = int(token)
    if not low <= value <= high:
        raise CronError(f"{what} value {value} out of range ({low}-{high})")
    return value


def _check_field(text: str, low: int, high: int, names: dict[str, int], what: str) -> str:
    """One field checked against robfig's grammar; returned in croniter's spelling (`?` → `*`)."""
    out = []
    for part in text.split(","):
        rng, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise CronError(f"invalid step {step!r} in {what} field {text!r}")
        if rng in ("*", "?"):
            out.append("*" + (f"/{step}" if step else ""))
            continue
        lo_text, dash, hi_text = rng.partition("-")
        lo = _check_value(lo_text, low, high, names, what)
        if dash:
            hi = _check_value(hi_text, low, high, names, what)
            if hi < lo:
                raise CronError(f"beginning of range ({lo}) beyond end of range ({hi}) in {what} field")
            rng = f"{lo}-{hi}"
        elif step:
            rng = f"{lo}-{high}"  # robfig: `N/step` means N through the field's maximum
        else:
            rng = str(lo)
        out.append(rng + (f"/{step}" if step else ""))
    return ",".join(out)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One parsed schedule in a zone: either a cron expression or a constant delay (`@every`)."""

    text: str
    zone: tzinfo
    expression: str | None = None
    every: int | None = None

    def latest(self, anchor: datetime, now: datetime) -> datetime | None:
        """The latest time of the schedule in (anchor, now], or None."""
        if self.every is not None:
            first = anchor.replace(microsecond=0) + timedelta(seconds=self.every)
            if first > now:
                return None
            return first + timedelta(seconds=self.every * ((now - first) // timedelta(seconds=self.every)))
        assert self.expression is not None
        # croniter's get_prev is strict: start one second after `now` (ticks are whole seconds).
        start = now.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        prev = _cron_prev(self.expression, self.zone, start)
        return prev if prev is not None and prev > anchor else None

    def next(self, after: datetime) -> datetime | None:
        """The first time of the schedule after `after` (None if it never fires)."""
        if self.every is not None:
            return after.replace(microsecond=0) + timedelta(seconds=self.every)
        assert self.expression is not None
        return _cron_next(self.expression, self.zone, after.astimezone(UTC))


# Memoized: the many artifacts of one Order share a schedule and are evaluated at one `now`, and building a
# croniter (expanding its fields) is what costs (~0.2 ms each).
@lru_cache(maxsize=4096)
def _cron_prev(expression: str, zone: tzinfo, start: datetime) -> datetime | None:
    try:
        prev: datetime = croniter(expression, start.astimezone(zone)).get_prev(datetime)
    except (ValueError, KeyError, OverflowError):  # CroniterBadDateError: never fires (e.g. 30 Feb)
        return None
    return prev.astimezone(UTC)


@lru_cache(maxsize=4096)
def _cron_next(expression: str, zone: tzinfo, after: datetime) -> datetime | None:
    try:
        nxt: datetime = croniter(expression, after.astimezone(zone)).get_next(datetime)
    except (ValueError, KeyError, OverflowError):
        return None
    return nxt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """Several schedules of one artifact: it runs at every time of any of them."""

    schedules: Sequence[Schedule] = field(default_factory=tuple)

    def latest(self, anchor: datetime, now: datetime) -> datetime | None:
        times = [t for s in self.schedules if (t := s.latest(anchor, now)) is not None]
        return max(times) if times else None

    def next(self, after: datetime) -> datetime | None:
        times = [t for s in self.schedules if (t := s.next(after)) is not None]
        return min(times) if times else None


def parse_schedule(text: str, zone: tzinfo = UTC) -> Schedule:
    """Parse one schedule; `CronError` with robfig-like words when it is not one CronJob accepts."""
    spec = text.strip()
    if re.match(r"^(CRON_)?TZ=", spec):
        raise CronError("cannot use TZ or CRON_TZ in schedule, use the timezone field instead")
    if spec.startswith("@every"):
        rest = spec[len("@every") :]
        if rest and not rest[0].isspace():
            raise CronError(f"unrecognized descriptor: {spec}")
        return Schedule(text, zone, every=_every_seconds(rest.strip()))
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    parts = [
        _check_field(value, low, high, names, what)
        for value, (what, low, high, names) in zip(fields, _FIELDS, strict=True)
    ]
    expression = " ".join(parts)
    schedule = Schedule(text, zone, expression=expression)
    if schedule.next(datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise CronError(f"schedule {text} never fires")
    return schedule


def parse_schedules(texts: Sequence[str], timezone: str | None) -> SchedulePlan:
    """The schedules of one cron, in its zone (memoized: one Order's artifacts share their cron)."""
    return _parse_schedules(tuple(texts), timezone)


@lru_cache(maxsize=1024)
def _parse_schedules(texts: tuple[str, ...], timezone: str | None) -> SchedulePlan:
    zone = load_timezone(timezone)
    return SchedulePlan(tuple(parse_schedule(t, zone) for t in texts))
