"""Logs, metrics and traces of the API server.

- Logs: JSON lines (python-json-logger) with the request id and, where known, the object's
  namespace/name, taken from ``contextvars`` by a logging filter.
- Metrics: kube-apiserver's names — ``apiserver_request_total``, ``apiserver_request_duration_seconds``
  (the storage layer adds ``etcd_request_duration_seconds``) — in the default Prometheus registry.
- Traces: an OpenTelemetry span per request (W3C ``traceparent`` accepted) and per storage call, exported
  over OTLP (gRPC or HTTP) when flags or the standard ``OTEL_*`` variables ask for it; off by default. Log
  records written inside a span carry its ``trace_id`` and ``span_id``. The flags and variables resolve as
  the controller manager's do (`api.tracing`).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import TYPE_CHECKING, Literal

from opentelemetry import trace
from prometheus_client import Counter, Histogram

from api.tracing import EXPORTERS, PROTOCOLS, TracingSettings, tracer_provider

if TYPE_CHECKING:
    pass

__all__ = [
    "EXPORTERS",
    "PROTOCOLS",
    "TracingSettings",
    "setup_tracing",
    "tracer_provider",
    "tracing_enabled",
]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
object_ref: contextvars.ContextVar[str] = contextvars.ContextVar("object_ref", default="")

LATENCY_BUCKETS = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2,
    3,
    4,
    5,
    6,
    8,
    10,
    15,
    20,
    30,
    45,
    60,
)
"""kube-apiserver's buckets for request and etcd latency histograms."""

REQUEST_LABELS = (
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
    "code",
)
REQUEST_TOTAL = Counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
    "scope, component, and HTTP response code.",
    REQUEST_LABELS,
)
REQUEST_DURATION = Histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
    "subresource, scope and component.",
    REQUEST_LABELS[:-1],
    buckets=LATENCY_BUCKETS,
)

ADMISSION_DURATION = Histogram(
    "apiserver_admission_controller_admission_duration_seconds",
    "Admission controller latency histogram in seconds, identified by name and broken out for each "
    "operation and API resource and type (validate or admit).",
    ("name", "operation", "rejected", "type"),
    buckets=(0.005, 0.025, 0.1, 0.5, 1.0, 2.5),
)


class ContextFilter(logging.Filter):
    """Copies the request id, the object reference and the current span's ids into every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = f"{span.trace_id:032x}"
            record.span_id = f"{span.span_id:016x}"
        ref = object_ref.get()
        if ref:
            namespace, _, name = ref.rpartition("/")
            record.namespace = namespace
            record.name_ = name
        return True


def setup_logging(level: str = "INFO", fmt: Literal["json", "text"] = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "ts", "name_": "name", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def tracing_enabled() -> bool:
    """Whether an SDK tracer provider records spans (:func:`setup_tracing` installs one only on request).

    Without one, hot paths skip creating their non-recording spans altogether (a few percent of a request).
    """
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def setup_tracing(settings: TracingSettings, service_name: str) -> None:
    """Install an SDK tracer provider when spans are exported.

    With exporter ``none`` the API's no-op provider stays: spans are non-recording (almost free on the hot
    path) and an incoming W3C ``traceparent`` is still propagated into the request's context.
    """
    if settings.exporter == "none":
        return
    trace.set_tracer_provider(tracer_provider(settings, service_name))
