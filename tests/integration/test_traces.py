"""ARC's spans reach a real trace backend: Jaeger all-in-one (hack/binaries.txt) over OTLP/HTTP and
OTLP/gRPC, as the local stack and a cluster's collector receive them.

The real ``arc-apiserver`` process, started with ``--tracing-endpoint``, continues an incoming
``traceparent``: its request span is the child of the caller's span and the parent of its etcd span, in the
caller's trace.
The controller manager's provider (``controllers.runtime.tracing``) exports over gRPC.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from controllers.runtime import tracing
from hack.arcapiserver import ArcApiServer
from hack.binaries import binary_path
from hack.etcd import EtcdServer
from hack.jaeger import Jaeger, Trace
from hack.process import Component, free_port

T = TypeVar("T")
GV = "/apis/arc.opendefense.cloud/v1alpha1"


def eventually(probe: Callable[[], T | None], *, timeout: float = 30, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    try:
        binary_path("jaeger-all-in-one")
    except FileNotFoundError as exc:
        pytest.fail(f"the trace tests need Jaeger: {exc}")
    server = Jaeger(*(free_port() for _ in range(7)))
    component = Component("jaeger", tmp_path_factory.mktemp("jaeger"))
    component.start(server.argv())
    try:
        component.wait_until(server.ready, timeout=60, what="ready")
        yield server
    finally:
        component.stop(timeout=10)


@pytest.fixture(scope="module")
def traced_apiserver(
    jaeger: Jaeger, etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArcApiServer]:
    server = ArcApiServer(
        tmp_path_factory.mktemp("arc-traced"),
        etcd_server.client_url,
        name="arc-apiserver-traced",
        etcd_prefix="/arc-traces",
        extra_args=("--tracing-exporter=otlp", f"--tracing-endpoint={jaeger.otlp_http_endpoint}"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def get(server: ArcApiServer, path: str, headers: dict[str, str]) -> int:
    token = server.token_file.read_text().split(",", 1)[0]
    context = ssl.create_default_context(cafile=str(server.cert_dir / "apiserver.crt"))
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"Bearer {token}", **headers}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_the_apiserver_continues_the_callers_trace_into_jaeger(
    jaeger: Jaeger, traced_apiserver: ArcApiServer
) -> None:
    trace_id, caller_span = "5a1e0c2b9d4f4e6a8b7c6d5e4f3a2b1c", "1f2e3d4c5b6a7988"
    status = get(
        traced_apiserver,
        f"{GV}/namespaces/team-a/orders/missing",
        {"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert status == 404

    def complete() -> Trace | None:
        found = jaeger.trace(trace_id)
        return found if found and any(s.name.startswith("etcd.") for s in found.spans) else None

    found = eventually(complete, what=f"trace {trace_id} with an etcd span in Jaeger")
    (request_span,) = [s for s in found.of_service("arc-apiserver") if s.kind == "server"]
    assert request_span.parent_id == caller_span, found.describe()
    assert request_span.tags["http.response.status_code"] == 404
    etcd_spans = [s for s in found.spans if s.name.startswith("etcd.")]
    assert etcd_spans and all(found.parent(s) == request_span for s in etcd_spans), found.describe()
    assert etcd_spans[0].tags["db.system"] == "etcd"
    assert "/arc-traces/" in str(etcd_spans[0].tags["etcd.key"])


def test_a_request_without_traceparent_starts_its_own_trace(
    jaeger: Jaeger, traced_apiserver: ArcApiServer
) -> None:
    assert get(traced_apiserver, f"{GV}/namespaces/team-b/orders/nothing-here", {}) == 404

    def root() -> Trace | None:
        for found in jaeger.find_traces("arc-apiserver", limit=50):
            for span in found.of_service("arc-apiserver"):
                if span.kind == "server" and span.parent_id is None and "team-b" in str(span.tags):
                    return found
        return None

    eventually(root, what="a root request span for team-b in Jaeger")


def test_the_controller_managers_provider_exports_over_grpc(
    jaeger: Jaeger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the standard variables: the endpoint and protocol come from the environment, as in a pod."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{jaeger.otlp_grpc_endpoint}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    settings = tracing.TracingSettings.resolve()
    assert (settings.exporter, settings.protocol, settings.endpoint) == ("otlp", "grpc", None)
    provider = tracing.tracer_provider(settings, "arc-controller-manager-test")
    with provider.get_tracer("t").start_as_current_span("reconcile test") as span:
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    found = eventually(lambda: jaeger.trace(trace_id), what=f"trace {trace_id} in Jaeger")
    assert [(s.service, s.name) for s in found.spans] == [("arc-controller-manager-test", "reconcile test")]
