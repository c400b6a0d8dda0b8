"""OpenTelemetry settings of both programs: OTLP export and sampling from flags, then the standard ``OTEL_*``.

The API server (`apiserver.observability`) and the controller manager (`controllers.runtime.tracing`) resolve
the same flags and variables the same way and build the same SDK tracer provider; each decides when to install
it. It lives in ``api/`` because that is the one layer both programs may import (``.importlinter``), as
`api.incluster` does: it reads flags and the environment and builds SDK objects, nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["EXPORTERS", "PROTOCOLS", "TracingSettings", "add_tracing_flags", "tracer_provider"]


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

    @classmethod
    def from_flags(cls, args: argparse.Namespace) -> TracingSettings:
        """`resolve` of the flags `add_tracing_flags` defined (raises ValueError for bad ones)."""
        return cls.resolve(
            exporter=args.tracing_exporter,
            endpoint=args.tracing_endpoint,
            protocol=args.tracing_protocol,
            sampling_rate=args.tracing_sampling_rate,
        )

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


def add_tracing_flags(parser: argparse.ArgumentParser, *exporter_aliases: str) -> None:
    """``--tracing-exporter`` (and ``exporter_aliases``), ``--tracing-endpoint``, ``--tracing-protocol`` and
    ``--tracing-sampling-rate``: each one unset leaves the choice to the environment (``resolve``)."""
    parser.add_argument(
        "--tracing-exporter",
        *exporter_aliases,
        dest="tracing_exporter",
        choices=EXPORTERS,
        default=None,
        help="where spans go (default: $OTEL_TRACES_EXPORTER; otlp when an OTLP endpoint is set; else none)",
    )
    parser.add_argument(
        "--tracing-endpoint",
        default=None,
        help="OTLP collector URL, e.g. http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.add_argument(
        "--tracing-protocol",
        choices=PROTOCOLS,
        default=None,
        help="OTLP transport (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)",
    )
    parser.add_argument(
        "--tracing-sampling-rate",
        type=float,
        default=None,
        help="fraction of new traces recorded, parent-based as kube-apiserver's samplingRatePerMillion"
        " (default: $OTEL_TRACES_SAMPLER, else every trace)",
    )
