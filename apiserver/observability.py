"""Logs, metrics and traces of the API server.

- Logs: JSON lines (python-json-logger) with the request id and, where known, the object's
  namespace/name, taken from ``contextvars`` by a logging filter.
- Metrics: kube-apiserver's names — ``apiserver_request_total``, ``apiserver_request_duration_seconds``
  (the storage layer adds ``etcd_request_duration_seconds``) — in the default Prometheus registry.
- Traces: an OpenTelemetry span per request (W3C ``traceparent`` accepted) and per storage call, exported
  over OTLP (gRPC or HTTP) when flags or the standard ``OTEL_*`` variables ask for it; off by default. Log
  records written inside a span carry its ``trace_id`` and ``span_id``. (The controller manager resolves
  the same flags and variables in `controllers.runtime.tracing`: the packages share no code.)
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from opentelemetry import trace
from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

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


Exporter = Literal["none", "console", "otlp"]
Protocol = Literal["grpc", "http/protobuf"]
EXPORTERS: tuple[Exporter, ...] = ("none", "console", "otlp")
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go and which are kept, from flags first, then the standard ``OTEL_*`` variables.

    ``endpoint``/``sampling_rate`` of ``None`` leave the choice to the SDK, which reads
    ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` and ``OTEL_TRACES_SAMPLER[_ARG]`` itself (defaults: the
    protocol's localhost port, ``parentbased_always_on``).
    """

    exporter: Exporter = "none"
    protocol: Protocol = "http/protobuf"
    endpoint: str | None = None
    sampling_rate: float | None = None

    @classmethod
    def resolve(
        cls,
        *,
        exporter: str | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
        sampling_rate: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TracingSettings:
        """Flags win over the environment: ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` (an OTLP
        endpoint in the environment alone also turns OTLP on), ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``."""
        env = os.environ if environ is None else environ
        if exporter is None:
            if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
                exporter = "none"
            elif "OTEL_TRACES_EXPORTER" in env:
                exporter = env["OTEL_TRACES_EXPORTER"].split(",")[0].strip().lower()
            elif (
                endpoint
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            ):
                exporter = "otlp"
            else:
                exporter = "none"
        if exporter not in EXPORTERS:
            raise ValueError(f"tracing exporter {exporter!r}: one of {', '.join(EXPORTERS)}")
        if protocol is None:
            protocol = (
                env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).strip()
        if protocol not in PROTOCOLS:
            raise ValueError(f"OTLP protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
        if sampling_rate is not None and not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"tracing sampling rate {sampling_rate}: between 0 and 1")
        return cls(exporter, protocol, endpoint, sampling_rate)

    def otlp_endpoint(self) -> str | None:
        """The exporter's endpoint argument: a base URL given for OTLP/HTTP gets the ``/v1/traces`` path (as
        the SDK does for ``OTEL_EXPORTER_OTLP_ENDPOINT``); gRPC takes ``scheme://host:port`` as given."""
        if self.endpoint is None or self.protocol == "grpc":
            return self.endpoint
        if urlsplit(self.endpoint).path.strip("/"):
            return self.endpoint
        return self.endpoint.rstrip("/") + "/v1/traces"


def tracer_provider(settings: TracingSettings, service_name: str) -> TracerProvider:
    """An SDK tracer provider for ``settings`` (not installed): resource ``service.name`` (unless
    ``OTEL_SERVICE_NAME`` says otherwise), the sampler, and a batch processor for the exporter."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    sampler = (
        None if settings.sampling_rate is None else ParentBased(TraceIdRatioBased(settings.sampling_rate))
    )
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler)
    exporter: SpanExporter | None = None
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter(out=sys.stderr)
    elif settings.exporter == "otlp" and settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=settings.otlp_endpoint())
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=settings.otlp_endpoint())
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup_tracing(settings: TracingSettings, service_name: str) -> None:
    """Install an SDK tracer provider when spans are exported.

    With exporter ``none`` the API's no-op provider stays: spans are non-recording (almost free on the hot
    path) and an incoming W3C ``traceparent`` is still propagated into the request's context.
    """
    if settings.exporter == "none":
        return
    trace.set_tracer_provider(tracer_provider(settings, service_name))
