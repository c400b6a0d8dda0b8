"""Logging context for reconciles (controller-runtime's `log.WithValues("reconcileID", …)`).

`controller`, `namespace`, `name` and `reconcile_id` live in contextvars set by the worker around each
reconcile; `ContextFilter` copies them into every log record, and `configure_logging` emits JSON lines.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

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
