"""What the schedule did, for SREs: metrics and log lines of a reconcile's schedule decision.

`schedule.py` decides (pure); this module reports, once per reconcile that decided something:
- `arc_order_scheduled_run_skew_seconds` (histogram): how late after its scheduled time a run was started —
  the counterpart of CronJob's `cronjob_controller_job_creation_skew_duration_seconds`;
- `arc_order_schedule_events_total{reason}`: `Started`, `MissedSchedule`, `AlreadyActive`, `InvalidSchedule`
  (a Forbid hold is counted per reconcile that saw it). No Order names as labels: cardinality stays fixed.
Log lines carry namespace/name from the reconcile's context (controllers.runtime.logs).
"""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client import Counter, Histogram

from api.resources import parse_rfc3339
from controllers.order.schedule import Decision

__all__ = ["SCHEDULE_EVENTS", "SKEW", "observe"]

logger = logging.getLogger(__name__)

SKEW = Histogram(
    "arc_order_scheduled_run_skew_seconds",
    "Time between a scheduled time and the reconcile that started its run.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600),
)
SCHEDULE_EVENTS = Counter(
    "arc_order_schedule_events_total",
    "Scheduled-Order decisions by reason: Started, MissedSchedule, AlreadyActive, InvalidSchedule.",
    ["reason"],
)


def observe(decision: Decision | None, now: datetime) -> None:
    if decision is None:
        return
    for art in decision.artifacts.values():
        if not art.started or art.scheduled_time is None:
            continue
        due = parse_rfc3339(art.scheduled_time)
        skew = (now - due).total_seconds() if due is not None else 0.0
        SKEW.observe(max(skew, 0.0))
        SCHEDULE_EVENTS.labels("Started").inc()
        logger.info(
            "scheduled run started",
            extra={"artifact_index": art.index, "scheduled_time": art.scheduled_time, "skew_seconds": skew},
        )
    for notice in decision.notices:
        SCHEDULE_EVENTS.labels(notice.reason).inc()
        log = logger.warning if notice.type == "Warning" else logger.info
        log("schedule: " + notice.reason, extra={"detail": notice.message})
