"""Logging context for reconciles (controller-runtime's `log.WithValues("reconcileID", …)`).

`controller`, `namespace`, `name` and `reconcile_id` live in contextvars set by the worker around each
reconcile; `ContextFilter` copies them, and the current span's `trace_id`/`span_id` (the reconcile's span,
whose trace id is also on the objects the reconcile creates), into every log record, and
`configure_logging` emits JSON lines.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

__all__ = ["CONTROLLER", "NAME", "NAMESPACE", "RECONCILE_ID", "ContextFilter", "configure_logging"]

CONTROLLER: ContextVar[str | None] = ContextVar("controller", default=None)
NAMESPACE: ContextVar[str | None] = ContextVar("namespace", default=None)
NAME: ContextVar[str | None] = ContextVar("name", default=None)
RECONCILE_ID: ContextVar[str | None] = ContextVar("reconcile_id", default=None)

_VARS = (
    ("controller", CONTROLLER),
    ("namespace", NAMESPACE),
    ("object_name", NAME),  # `name` is taken: LogRecord.name is the logger's name
    ("reconcile_id", RECONCILE_ID),
)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for attr, var in _VARS:
            value = var.get()
            if value is not None and not hasattr(record, attr):
                setattr(record, attr, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid and not hasattr(record, "trace_id"):
            record.trace_id = f"{span.trace_id:032x}"
            record.span_id = f"{span.span_id:016x}"
        return True


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if json_output:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
