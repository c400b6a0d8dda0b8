"""Tracing settings of both processes: flags first, then the standard ``OTEL_*`` variables, and the two
copies (apiserver.observability, controllers.runtime.tracing — the packages share no code) agree."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision

from apiserver import observability
from apiserver.options import parser as apiserver_parser
from controllers.__main__ import parse_args as controller_args
from controllers.runtime import tracing

IMPLEMENTATIONS = [observability, tracing]


@pytest.fixture(params=IMPLEMENTATIONS, ids=["apiserver", "controllers"])
def impl(request: pytest.FixtureRequest) -> Any:
    return request.param


ENDPOINT, PROTOCOL, H = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {}, ("none", H, None)),
        ({}, {ENDPOINT: "http://127.0.0.1:4318"}, ("otlp", H, None)),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp", H, None)),
        ({}, {"OTEL_TRACES_EXPORTER": "console"}, ("console", H, None)),
        ({}, {"OTEL_TRACES_EXPORTER": "otlp", PROTOCOL: "grpc"}, ("otlp", "grpc", None)),
        (
            {},
            {PROTOCOL: "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": H, ENDPOINT: "http://c:4318"},
            ("otlp", H, None),
        ),
        ({}, {"OTEL_SDK_DISABLED": "true", ENDPOINT: "http://c:4318"}, ("none", H, None)),
        (
            {"endpoint": "http://127.0.0.1:4317", "protocol": "grpc"},
            {},
            ("otlp", "grpc", "http://127.0.0.1:4317"),
        ),
        ({"exporter": "none"}, {ENDPOINT: "http://c:4318"}, ("none", H, None)),
        ({"exporter": "console"}, {"OTEL_TRACES_EXPORTER": "otlp"}, ("console", H, None)),
        ({"protocol": "grpc"}, {"OTEL_TRACES_EXPORTER": "otlp", PROTOCOL: H}, ("otlp", "grpc", None)),
    ],
)
def test_flags_win_over_the_environment(
    impl: Any, flags: dict[str, str], env: dict[str, str], expected: tuple[str, str, str | None]
) -> None:
    s = impl.TracingSettings.resolve(environ=env, **flags)
    assert (s.exporter, s.protocol, s.endpoint) == expected


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"exporter": "jaeger"}, {}, "tracing exporter 'jaeger'"),
        ({}, {"OTEL_TRACES_EXPORTER": "zipkin"}, "tracing exporter 'zipkin'"),
        ({"protocol": "http/json"}, {}, "OTLP protocol 'http/json'"),
        ({"sampling_rate": 1.5}, {}, "tracing sampling rate 1.5"),
        ({"sampling_rate": -0.1}, {}, "tracing sampling rate -0.1"),
    ],
)
def test_bad_settings_are_named(impl: Any, flags: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        impl.TracingSettings.resolve(environ=env, **flags)


@pytest.mark.parametrize(
    ("protocol", "endpoint", "expected"),
    [
        ("http/protobuf", "http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http/protobuf", "http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
        ("http/protobuf", "http://gw:8080/otlp/v1/traces", "http://gw:8080/otlp/v1/traces"),
        ("grpc", "http://127.0.0.1:4317", "http://127.0.0.1:4317"),
        ("http/protobuf", None, None),
    ],
)
def test_otlp_http_endpoint_gets_the_traces_path(
    impl: Any, protocol: str, endpoint: str | None, expected: str | None
) -> None:
    s = impl.TracingSettings(exporter="otlp", protocol=protocol, endpoint=endpoint)
    assert s.otlp_endpoint() == expected


def _decision(provider: Any, parent_sampled: bool | None) -> Decision:
    """The provider's sampler on a root span (None) or on a child of a (not) sampled remote parent."""
    context = None
    if parent_sampled is not None:
        parent = trace.SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if parent_sampled else 0),
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    return provider.sampler.should_sample(context, 0x4BF92F3577B34DA6A3CE929D0E0E4736, "x").decision


def test_sampling_rate_is_parent_based_as_kube_apiservers(impl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    none = impl.tracer_provider(impl.TracingSettings(sampling_rate=0.0), "svc")
    assert _decision(none, None) == Decision.DROP  # no new trace is started
    assert _decision(none, True) == Decision.RECORD_AND_SAMPLE  # the caller's decision is followed
    every = impl.tracer_provider(impl.TracingSettings(sampling_rate=1.0), "svc")
    assert _decision(every, None) == Decision.RECORD_AND_SAMPLE
    assert _decision(every, False) == Decision.DROP
    default = impl.tracer_provider(impl.TracingSettings(), "svc")
    assert _decision(default, None) == Decision.RECORD_AND_SAMPLE  # the SDK's parentbased_always_on


def test_otel_traces_sampler_applies_without_the_flag(impl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    provider = impl.tracer_provider(impl.TracingSettings(), "svc")
    assert _decision(provider, None) == Decision.DROP
    assert _decision(provider, True) == Decision.RECORD_AND_SAMPLE
    flagged = impl.tracer_provider(impl.TracingSettings(sampling_rate=1.0), "svc")
    assert _decision(flagged, None) == Decision.RECORD_AND_SAMPLE


def test_service_name_unless_otel_service_name(impl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = impl.tracer_provider(impl.TracingSettings(), "arc-x")
    assert provider.resource.attributes["service.name"] == "arc-x"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "arc-x-eu1")
    provider = impl.tracer_provider(impl.TracingSettings(), "arc-x")
    assert provider.resource.attributes["service.name"] == "arc-x-eu1"


def test_both_processes_take_the_same_flags() -> None:
    flags = ["--tracing-exporter", "otlp", "--tracing-endpoint", "http://127.0.0.1:4317",
             "--tracing-protocol", "grpc", "--tracing-sampling-rate", "0.25"]  # fmt: skip
    a = apiserver_parser().parse_args(flags)
    c = controller_args(flags)
    for args in (a, c):
        assert (args.tracing_exporter, args.tracing_endpoint, args.tracing_protocol) == (
            "otlp",
            "http://127.0.0.1:4317",
            "grpc",
        )
        assert args.tracing_sampling_rate == 0.25
    assert controller_args(["--trace-exporter", "console"]).tracing_exporter == "console"  # the old name
