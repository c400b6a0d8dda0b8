"""The controller manager's OpenTelemetry set-up: OTLP export and sampling from flags and ``OTEL_*``.

An SDK tracer provider is installed always, exporting or not: every reconcile span then has a real trace id,
which the reconcile records on the objects it creates (SPEC §5) and sends to kube-apiserver in ``traceparent``
(`controllers.kube.client`), so a trace starts at the reconcile and crosses kube-apiserver into ARC's API
server. The flags and ``OTEL_*`` variables resolve as the API server's do (`api.tracing`).
"""

from __future__ import annotations

from opentelemetry import trace

from api.tracing import EXPORTERS, PROTOCOLS, TracingSettings, tracer_provider

__all__ = ["EXPORTERS", "PROTOCOLS", "TracingSettings", "setup_tracing", "tracer_provider"]


def setup_tracing(settings: TracingSettings, service_name: str = "arc-controller-manager") -> None:
    """Install the SDK tracer provider for ``settings`` (always, see the module's docstring)."""
    trace.set_tracer_provider(tracer_provider(settings, service_name))
