"""Spans recorded in memory for the unit tests: one SDK tracer provider per process, installed as the
global provider only inside ``recorded_spans()``.

One provider for the whole session because OpenTelemetry's proxy tracers (module-level ``get_tracer`` in
apiserver.middleware, controllers.runtime.controller, …) bind to the first real provider they see, forever;
re-installing the same one keeps them consistent. Outside the block the global provider is what it was
(normally the API's proxy), so other tests keep running without recording spans.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


class Spans:
    """The spans finished inside the block, by name."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    @property
    def all(self) -> tuple[ReadableSpan, ...]:
        return self._exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]


def _install(provider: trace.TracerProvider | None) -> None:
    # The API allows one set_tracer_provider per process; tests swap it back and forth (as the SDK's
    # own test helpers do) by resetting its set-once guard.
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = provider  # type: ignore[attr-defined]


@contextmanager
def recorded_spans() -> Iterator[Spans]:
    previous = trace._TRACER_PROVIDER  # type: ignore[attr-defined]
    _EXPORTER.clear()
    _install(_PROVIDER)
    try:
        yield Spans(_EXPORTER)
    finally:
        _install(previous)
